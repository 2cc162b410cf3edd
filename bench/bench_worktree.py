"""Worktree add + remove for a 2,000-file, ~20 MB repo: Orbit's calls next to bare git, same run.

Run: ``python bench/bench_worktree.py [runs]`` (prints a markdown section for bench/RESULTS.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GIT_ENV, machine, ms, side_by_side

from orbit_ops.build.worktrees import add_worktree, remove_worktree
from orbit_ops.catalog.gitrepo import open_repo


def make_repo(root: Path, files: int = 2000, size: int = 10_000) -> str:
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=GIT_ENV)
    for index in range(files):
        path = root / "app" / f"d{index % 40:02d}" / f"f{index:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size // 2).hex().encode())
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=GIT_ENV)
    subprocess.run(["git", "commit", "-q", "-m", "tree"], cwd=root, check=True, env=GIT_ENV)
    subprocess.run(["git", "tag", "app/v1.0.0"], cwd=root, check=True, env=GIT_ENV)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True,
                          env=GIT_ENV).stdout.strip()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        commit = make_repo(root)
        repo = open_repo(root)
        target = Path(tmp) / "wt"

        def bare() -> None:
            subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(target), commit], cwd=root,
                           check=True, env=GIT_ENV)
            subprocess.run(["git", "worktree", "remove", "--force", str(target)], cwd=root, check=True, env=GIT_ENV)

        def orbit() -> None:
            add_worktree(repo, target, commit)
            remove_worktree(repo, target)

        medians = side_by_side(runs, bare=bare, orbit=orbit)
    print("## Worktree add + remove (issue 3)\n")
    print(f"Machine: {machine()}. 2,000 files, ~20 MB checked out; medians of {runs} interleaved runs "
          "(`python bench/bench_worktree.py`).\n")
    print("| what | Orbit | bare git, same run | ratio |")
    print("|---|---|---|---|")
    print(f"| `git worktree add --detach` + `remove --force` | {ms(medians['orbit'])} | {ms(medians['bare'])} | "
          f"{medians['orbit'] / medians['bare']:.2f}× |")
    print("\nOrbit's removal also runs `git worktree prune`, so a worktree whose folder was already deleted "
          "leaves no record behind; that extra git call is the difference.")


if __name__ == "__main__":
    main()
