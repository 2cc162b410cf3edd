"""The console in a real terminal (tmux): launch → first Solutions rows on screen, and → the sync column filled,
with 10,000 solutions against 40, side by side (issue 17).

Run: ``python bench/bench_tmux.py [runs] [folder]``. ``folder`` may hold ``ws40`` and ``ws10000`` made before
(``bench_tui.make_workspaces``); otherwise they are made in a temporary folder (demo builds, a few minutes).

Each run starts ``orbit tui`` in a new detached tmux session of 160×45, sends ``2`` at once (the terminal holds
the key until the console reads it, as when an operator types it while the console starts), and reads the pane
(``tmux capture-pane``) every 10 ms: *first rows* is the first capture showing the Solutions title and the first
solution's row; *sync filled* is the first showing ``sync as of`` (the platform read has answered and its column
is drawn). The session is killed after each run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = Path(os.environ.get("ORBIT_REPO", HERE.parent))  # the code the console runs (another checkout to compare)
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from common import compiled, machine  # noqa: E402

SIZES = (40, 10_000)
TIMEOUT = 120.0
TMUX = ["tmux", "-L", f"orbit-bench-{os.getpid()}"]  # a server of its own: no other tmux user is touched


def capture(session: str) -> str:
    done = subprocess.run([*TMUX, "capture-pane", "-p", "-t", session], capture_output=True, text=True)
    return done.stdout


def one_launch(root: Path, first_id: str, count: int, index: int) -> tuple[float, float]:
    session = f"run-{index}"
    command = f"cd {root} && PYTHONPATH={REPO} {sys.executable} -c 'from orbit_cli.main import main; main()' tui"
    start = time.perf_counter()
    subprocess.run([*TMUX, "new-session", "-d", "-s", session, "-x", "160", "-y", "45", command], check=True)
    try:
        subprocess.run([*TMUX, "send-keys", "-t", session, "2"], check=True)
        rows = synced = 0.0
        while time.perf_counter() - start < TIMEOUT:
            pane = capture(session)
            now = time.perf_counter() - start
            if not rows and f"Solutions: {count}" in pane and f" {first_id} " in pane:
                rows = now
            if rows and "sync as of" in pane:
                synced = now
                break
            time.sleep(0.01)
        if not synced:
            raise TimeoutError(f"{root}: the console did not show its rows and sync in {TIMEOUT:.0f} s")
        return rows, synced
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", session], capture_output=True)


def main() -> None:
    from orbit_ops.workspace import Workspace

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    compiled(REPO)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tmp)
        roots = {size: folder / f"ws{size}" for size in SIZES}
        if not all((root / "orbit.yaml").exists() for root in roots.values()):
            from bench_tui import make_workspaces

            made, _ = make_workspaces(Path(tmp))
            roots = {size: made[size] for size in SIZES}
        first = {size: Workspace.open(root).solutions()[0].id for size, root in roots.items()}
        load_before = os.getloadavg()[0]
        samples: dict[int, list[tuple[float, float]]] = {size: [] for size in SIZES}
        subprocess.run([*TMUX, "new-session", "-d", "-s", "keep", "sleep 3600"], check=True)  # the server stays up
        try:
            one_launch(roots[40], first[40], 40, 0)  # warm-up: imports, page cache
            for run in range(runs):
                for size in SIZES:
                    samples[size].append(one_launch(roots[size], first[size], size, run * 100_000 + size))
        finally:
            subprocess.run([*TMUX, "kill-server"], capture_output=True)
    small, big = samples[40], samples[10_000]

    def of(values: list[tuple[float, float]], which: int) -> float:
        return statistics.median(value[which] for value in values)

    print("### The console in tmux (issue 17)\n")
    print(f"Machine: {machine()}. Medians of {runs} interleaved launches (`python bench/bench_tmux.py {runs}`, "
          f"code of {REPO}), tmux 160×45, `orbit tui` then `2`. Load average (1 min) at the start "
          f"{load_before:.1f}, at the end {os.getloadavg()[0]:.1f} (shared machine).\n")
    print("| what | 40 solutions | 10,000 solutions | ratio |")
    print("|---|---|---|---|")
    for label, which in (("launch → first Solutions rows shown", 0), ("launch → sync column filled", 1)):
        a, b = of(small, which), of(big, which)
        print(f"| {label} | {a:.2f} s | {b:.2f} s | **{b / a:.2f}×** |")
    print("\nRaw (first rows / sync, s): 40: " + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in small)
          + "; 10,000: " + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in big))


if __name__ == "__main__":
    main()
