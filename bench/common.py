"""Helpers for the benchmarks: timing medians side by side, machine description, isolated git."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@orbit.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@orbit.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def compiled(*roots: object) -> None:
    """Write the bytecode of Orbit's packages under each of ``roots``, as installing Orbit does: a machine with
    ``PYTHONDONTWRITEBYTECODE`` set (this one, seen 2026-12-03) would otherwise compile every module again in each
    fresh process, inside the timed commands that import lazily."""
    import sys
    from pathlib import Path

    folders = [str(folder) for root in roots for name in ("orbit_ops", "orbit_cli", "orbit_tui")
               if (folder := Path(str(root)) / name).is_dir()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], check=True)


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.system()} {platform.release()} · {cpu} · "
        f"{os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}"
    )


def side_by_side(runs: int, **candidates: Callable[[], object]) -> dict[str, float]:
    """Median seconds of each candidate, run interleaved so machine noise hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for func in candidates.values():  # warm-up: page cache, imports
        func()
    for _ in range(runs):
        for name, func in candidates.items():
            start = time.perf_counter()
            func()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
