"""The platform repository, through GitPython: the one place git commands are run from.

GitPython's own errors are mapped to :class:`GitError` here, with git's message, so callers never see
``GitCommandError`` tracebacks. Arguments are always passed as a list (never through a shell), so a
component name or version can never be interpreted as a command.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orbit_ops.errors import GitError


def open_repo(path: Path) -> Any:
    """Open the git repository at ``path`` (a ``git.Repo``).

    Raises:
        GitError: ``path`` is not a git repository.
    """
    import git  # GitPython loads in ~70 ms: only commands that touch the repo pay for it

    try:
        return git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise GitError(f"{path} is not a git repository ({type(exc).__name__})") from None


def run_git(repo: Any, *args: str, strip: bool = True, env: dict[str, str] | None = None) -> str:
    """Run ``git <args>`` in ``repo`` and return its standard output (``env`` adds variables).

    Raises:
        GitError: git exited non-zero; the message carries git's own error line.
    """
    import git

    try:
        output: str = repo.git.execute(["git", *args], strip_newline_in_stdout=strip, env=env)
    except git.GitCommandError as exc:
        stderr = (exc.stderr or "").strip().removeprefix("stderr:").strip().strip("'").strip()
        raise GitError(f"git {_subcommand(args)} failed: {stderr or exc}") from None
    return output


def _subcommand(args: tuple[str, ...]) -> str:
    """The git command named in ``args``, past any leading ``-c key=value`` options."""
    rest = list(args)
    while len(rest) > 2 and rest[0] == "-c":
        rest = rest[2:]
    return rest[0] if rest else "git"


def stream_git(repo: Any, *args: str) -> Iterator[str]:
    """Run ``git <args>`` and yield its output lines as git writes them (parsing overlaps git's work).

    Raises:
        GitError: git exited non-zero.
    """
    import git

    process = repo.git.execute(["git", *args], as_process=True)
    try:
        for raw in process.proc.stdout:
            yield raw.decode("utf-8", "surrogateescape").rstrip("\n")
        process.wait()
    except git.GitCommandError as exc:
        stderr = (exc.stderr or "").strip().removeprefix("stderr:").strip().strip("'").strip()
        raise GitError(f"git {_subcommand(args)} failed: {stderr or exc}") from None


def object_type(repo: Any, spec: str) -> str | None:
    """The type (``commit``, ``tree``, ``blob``, ``tag``) of the object ``spec`` names, or None if none."""
    import git

    try:
        kind: str = repo.git.execute(["git", "cat-file", "-t", spec])
    except git.GitCommandError:
        return None
    return kind.strip()
