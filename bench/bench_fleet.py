"""Fleet benchmarks on the local backend: ``orbit status --json`` for 1,000 and 10,000 provisioned
solutions (time and peak memory), and a no-op ``provision --all`` next to ``status`` over 1,000.

Run: ``python bench/bench_fleet.py [runs]`` (prints a markdown section for bench/RESULTS.md).
Setting up 10,000 provisioned solutions takes a few minutes (80,000 resources are created for real).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GIT_ENV, machine

from orbit_ops.demo import create_demo

MEASURE = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
    "elapsed = time.perf_counter() - start\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(elapsed, usage.ru_maxrss, done.returncode, len(done.stdout), usage.ru_utime + usage.ru_stime)\n"
)


def orbit(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "orbit_cli.main", "-w", str(root), *args]


def measure(command: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) and CPU seconds (user + system) of ``command`` in a fresh wrapper process.

    CPU time is reported beside wall time: on a machine shared with other work it moves far less.
    """
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True,
                         env={**os.environ, **GIT_ENV})
    seconds, rss, code, _, cpu = out.stdout.split()
    assert int(code) in (0, 1), command
    return float(seconds), int(rss), float(cpu)


def median(values: list[float]) -> float:
    return statistics.median(values)


def fleet(folder: Path, count: int) -> Path:
    root = folder / f"fleet-{count}"
    for _ in create_demo(root, solutions=count):
        pass
    start = time.perf_counter()
    subprocess.run(orbit(root, "provision", "--all", "--yes", "--json", "--exclude", "cyberdyne"),
                   stdout=subprocess.DEVNULL, check=False, env={**os.environ, **GIT_ENV})
    print(f"set-up of {count}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return root


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1_000, 10_000):
            root = fleet(Path(tmp), count)
            samples = [measure(orbit(root, "status", "--json")) for _ in range(runs)]
            rows.append(f"| `orbit status --json`, {count:,} provisioned solutions | "
                        f"{median([s[0] for s in samples]):.2f} s | {median([s[2] for s in samples]):.2f} s | "
                        f"{max(s[1] for s in samples) / 1024:.0f} MiB |"
                        + (" target < 3 s |" if count == 10_000 else " — |"))
            if count == 1_000:
                status_s, provision_s, writes = [], [], []
                for _ in range(runs):  # interleaved, side by side
                    status_s.append(measure(orbit(root, "status", "--json")))
                    provision_s.append(measure(orbit(root, "provision", "--all", "--yes", "--exclude",
                                                     "cyberdyne")))
                    done = subprocess.run(orbit(root, "provision", "--all", "--yes", "--json", "--exclude",
                                                "cyberdyne"), capture_output=True, text=True,
                                          env={**os.environ, **GIT_ENV})
                    writes.append(json.loads(done.stdout)["writes"])
                wall = [median([s[0] for s in samples]) for samples in (provision_s, status_s)]
                cpu = [median([s[2] for s in samples]) for samples in (provision_s, status_s)]
                noop = (f"| no-op `provision --all`, 1,000 solutions (writes: {max(writes)}) | "
                        f"{wall[0]:.2f} s | {cpu[0]:.2f} s | {max(s[1] for s in provision_s) / 1024:.0f} MiB | "
                        f"`status` same run: {wall[1]:.2f} s (CPU {cpu[1]:.2f} s) → **{wall[0] / wall[1]:.2f}×** "
                        f"(CPU {cpu[0] / cpu[1]:.2f}×; target ≤ 1.5×) |")
    print("## Fleet status and no-op provisioning, local backend (issue 4)\n")
    print(f"Machine: {machine()}. Medians of {runs} runs, each a fresh `orbit` process "
          "(`python bench/bench_fleet.py`); CPU is user + system time of the process; peak memory is its max "
          "RSS.\n")
    print("| what | time | CPU | peak memory | target / reference |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print(noop)


if __name__ == "__main__":
    main()
