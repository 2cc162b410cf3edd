"""Context packing: `pack_context` vs `git archive --format=tar.gz`, and peak memory at 20 MB vs 200 MB.

Run: ``python bench/bench_context.py [RUNS]`` (prints a markdown section for bench/RESULTS.md). Each tree is
2,000 files (70 % text-like, 30 % random bytes) in nested folders, committed to a throwaway git repo so
``git archive HEAD`` packs exactly the same files. Timings are medians of interleaved runs in one process;
memory is measured in a fresh child process per size (``ru_maxrss``, and separately the tracemalloc peak),
so the 20 MB and 200 MB numbers are comparable.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GIT_ENV, side_by_side

from orbit_ops.build.context import format_size, pack_context

FILES = 2_000
SIZES = {"20 MB": 20_000_000, "200 MB": 200_000_000}
_BLOCK = 1 << 16
_WORDS = (
    "def",
    "class",
    "return",
    "import",
    "self",
    "value",
    "config",
    "context",
    "build",
    "image",
    "layer",
    "digest",
    "release",
    "solution",
    "agent",
    "registry",
    "share",
    "mount",
    "path",
    "error",
    "raise",
    "yield",
    "async",
    "await",
    "for",
    "in",
    "if",
    "else",
    "try",
    "except",
    "with",
    "None",
    "True",
    "str",
    "bytes",
)


def make_tree(root: Path, total: int, seed: int) -> None:
    """``FILES`` files adding up to about ``total`` bytes under 20 x 5 folders, plus a Dockerfile."""
    rng = random.Random(seed)
    text_blocks = [" ".join(rng.choice(_WORDS) for _ in range(_BLOCK // 5)).encode()[:_BLOCK] for _ in range(32)]
    average = total // FILES
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY . /app\n")
    for index in range(FILES):
        folder = root / f"pkg{index % 20:02d}" / f"mod{index // 20 % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        size = int(average * rng.uniform(0.2, 1.8))
        if index % 10 < 7:
            chunks: list[bytes] = []
            filled = 0
            while filled < size:
                block = rng.choice(text_blocks)
                chunks.append(block[rng.randrange(len(block) // 2) :])
                filled += len(chunks[-1])
            data = b"".join(chunks)[:size]
            name = f"file{index:04d}.py"
        else:
            data = rng.randbytes(size)
            name = f"blob{index:04d}.bin"
        (folder / name).write_bytes(data)


def commit(root: Path) -> None:
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=GIT_ENV)


def child_memory(mode: str, context: Path, out: Path) -> dict[str, Any]:
    """Pack once in a fresh interpreter; report its peak RSS (KiB) or tracemalloc peak (bytes)."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(context), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run_child(mode: str, context: Path, out: Path) -> None:
    before = _current_rss_kib()  # after imports, before packing
    if mode == "trace":
        tracemalloc.start()
    packed = pack_context(context, context / "Dockerfile", out)
    peak = tracemalloc.get_traced_memory()[1] if mode == "trace" else 0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {"rss_before_kib": before, "rss_after_kib": after, "trace_peak": peak, "digest": packed.digest}
    report |= {"files": packed.file_count, "bytes": packed.total_bytes, "size": packed.size}
    print(json.dumps(report))


def _current_rss_kib() -> int:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    timing: list[str] = []
    memory: list[str] = []
    with tempfile.TemporaryDirectory(prefix="orbit-bench-context-") as tmp:
        work = Path(tmp)
        for label, total in SIZES.items():
            context = work / label.replace(" ", "") / "repo"
            make_tree(context, total, seed=total)
            commit(context)
            ours, theirs = work / "ours.tar.gz", work / "theirs.tar.gz"

            def orbit(context: Path = context, ours: Path = ours) -> None:
                pack_context(context, context / "Dockerfile", ours)

            def git(context: Path = context, theirs: Path = theirs) -> None:
                subprocess.run(
                    ["git", "archive", "--format=tar.gz", "-o", str(theirs), "HEAD"],
                    cwd=context,
                    check=True,
                    env=GIT_ENV,
                )

            reps = runs if total <= 50_000_000 else max(3, runs // 2)
            medians = side_by_side(reps, orbit=orbit, git=git)
            rss = child_memory("rss", context, work / "child.tar.gz")
            trace = child_memory("trace", context, work / "child.tar.gz")
            assert rss["digest"] == trace["digest"], "packing the same tree twice gave different bytes"
            timing.append(
                f"| {label} ({rss['files']:,} files, {format_size(rss['bytes'])}) | "
                f"{medians['orbit']:.2f} s | {medians['git']:.2f} s | **{medians['orbit'] / medians['git']:.2f}x** | "
                f"{format_size(rss['size'])} | {format_size(theirs.stat().st_size)} | {reps} |"
            )
            memory.append(
                f"| {label} | {rss['rss_before_kib'] / 1024:.1f} MiB | {rss['rss_after_kib'] / 1024:.1f} MiB | "
                f"{(rss['rss_after_kib'] - rss['rss_before_kib']) / 1024:.1f} MiB | "
                f"{format_size(trace['trace_peak'])} |"
            )
            for path in (ours, theirs, work / "child.tar.gz"):
                path.unlink(missing_ok=True)

    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    print("## Context packing (`python bench/bench_context.py`)\n")
    print(f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"- machine: `{uname}`")
    print(f"- nproc: {os.cpu_count()}; Python {platform.python_version()}; {git_version}")
    print(
        f"- trees: {FILES:,} files in 100 folders, 70 % text-like / 30 % random bytes, committed to a git repo; "
        "gzip level 6 on both sides\n"
    )
    print("### Time: `pack_context` vs `git archive --format=tar.gz HEAD` (medians of interleaved runs)\n")
    print("| tree | pack_context | git archive | ratio | our .tar.gz | git's .tar.gz | runs |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(timing))
    print("\n### Peak memory of one pack in a fresh process\n")
    print("| tree | RSS before packing | peak RSS (ru_maxrss) | growth | tracemalloc peak |")
    print("|---|---|---|---|---|")
    print("\n".join(memory))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        run_child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
