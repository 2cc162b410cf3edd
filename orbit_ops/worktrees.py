"""Throwaway git worktrees under ``.orbit/worktrees/``: builds read a tag, never the operator's tree.

``git worktree add --detach`` checks the tag's commit out into a folder of its own; the operator's
working tree, index and HEAD are never read or touched. Hooks are switched off for these calls so an
operator's post-checkout hook cannot run against a build. Each worktree is named after the operation
that owns it, so a worktree left by a killed process is recognised and pruned at the next build.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orbit_ops.errors import GitError
from orbit_ops.gitrepo import run_git

WORKTREES_DIR = "worktrees"
_NO_HOOKS = ("-c", "core.hooksPath=/dev/null")


def add_worktree(repo: Any, folder: Path, commit: str) -> Path:
    """Check ``commit`` out, detached, into ``folder`` (which must not exist yet).

    Raises:
        GitError: git refused (unknown commit, folder in use).
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    run_git(repo, *_NO_HOOKS, "worktree", "add", "--detach", "--quiet", str(folder), commit)
    return folder


def remove_worktree(repo: Any, folder: Path) -> None:
    """Remove ``folder`` and git's record of it; never raises for a worktree that is already gone."""
    with contextlib.suppress(GitError):
        run_git(repo, *_NO_HOOKS, "worktree", "remove", "--force", "--force", str(folder))
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(GitError):
        run_git(repo, "worktree", "prune")


def prune_stale(repo: Any, root: Path, is_live: Callable[[str], bool]) -> list[str]:
    """Remove worktrees under ``root`` whose owning operation is no longer running.

    Returns the names removed.
    """
    removed: list[str] = []
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and not is_live(folder.name):
                remove_worktree(repo, folder)
                removed.append(folder.name)
    with contextlib.suppress(GitError):
        run_git(repo, "worktree", "prune")
    return removed


def registered_worktrees(repo: Any) -> list[Path]:
    """The worktrees git knows of (the main one first)."""
    output = run_git(repo, "worktree", "list", "--porcelain")
    return [Path(line.removeprefix("worktree ")) for line in output.splitlines() if line.startswith("worktree ")]
