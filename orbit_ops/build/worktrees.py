"""Throwaway git worktrees under ``.orbit/worktrees/``: builds read a tag, never the operator's tree.

``git worktree add --detach`` checks the tag's commit out into a folder of its own; the operator's
working tree, index and HEAD are never read or touched. Hooks are switched off for these calls so an
operator's post-checkout hook cannot run against a build. Each worktree is named after the operation
that owns it, so a worktree left by a killed process is recognised and pruned at the next build.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orbit_ops.catalog.gitrepo import run_git
from orbit_ops.errors import GitError
from orbit_ops.statedir import make_private_dir

WORKTREES_DIR = "worktrees"
_NO_HOOKS = ("-c", "core.hooksPath=/dev/null")
_OP_NAME = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")  # operation ids, which name our worktrees


def add_worktree(repo: Any, folder: Path, commit: str) -> Path:
    """Check ``commit`` out, detached, into ``folder`` (which must not exist yet).

    Raises:
        GitError: git refused (unknown commit, folder in use).
    """
    make_private_dir(folder.parent)
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

    A process killed inside ``git worktree add`` can leave git's record of the worktree locked
    ("initializing") with or without its folder; such records are unlocked and removed too, since
    ``git worktree prune`` leaves locked records alone. Returns the names removed.
    """
    _drop_unfinished_adds(repo, root, is_live)
    stale: dict[str, Path] = {}
    if root.is_dir():
        for folder in root.iterdir():
            if folder.is_dir() and not is_live(folder.name):
                stale[folder.name] = folder
    with contextlib.suppress(GitError):
        resolved_root = root.resolve()
        for path in registered_worktrees(repo):
            if path.parent.resolve() == resolved_root and not is_live(path.name):
                stale.setdefault(path.name, root / path.name)
    for name in sorted(stale):
        with contextlib.suppress(GitError):
            run_git(repo, "worktree", "unlock", str(stale[name]))
        remove_worktree(repo, stale[name])
    with contextlib.suppress(GitError):
        run_git(repo, "worktree", "prune")
    return sorted(stale)


def _drop_unfinished_adds(repo: Any, root: Path, is_live: Callable[[str], bool]) -> None:
    """Delete git's records of worktree adds that a kill cut short.

    ``git worktree add`` writes its record under ``<git dir>/worktrees/<name>/`` one file at a time,
    starting with ``locked`` ("initializing"), which it removes once the checkout is done. A record
    cut short is never pruned by git (it is locked), and one cut before ``commondir`` is written
    makes later worktree commands fail. Only records named after one of our operations that is no
    longer running are touched.
    """
    admin_root = Path(repo.common_dir) / "worktrees"
    if not admin_root.is_dir():
        return
    for admin in admin_root.iterdir():
        if not _OP_NAME.match(admin.name) or is_live(admin.name):
            continue
        with contextlib.suppress(OSError):
            if (admin / "locked").read_text().strip() == "initializing":
                shutil.rmtree(admin, ignore_errors=True)
                shutil.rmtree(root / admin.name, ignore_errors=True)


def registered_worktrees(repo: Any) -> list[Path]:
    """The worktrees git knows of (the main one first)."""
    output = run_git(repo, "worktree", "list", "--porcelain")
    return [Path(line.removeprefix("worktree ")) for line in output.splitlines() if line.startswith("worktree ")]
