"""The console's platform read on the Azure backend (issue 17, decision 0092), side by side with the code before
it (a checkout given as ``--vs DIR``).

The emulators of tests/emulators (as ``bench_azure.py`` runs them: HTTPS on 127.0.0.1, each request answered 20 ms
after it arrived, decision 0089) hold 1,000 and then 10,000 synced solutions. Each run is a fresh process that
starts the console headless (``App.run_test``, 160×45) over the workspace, switches to Solutions (``2``) and
records, from creating the app:
- *first sync shown*: the first moment a row of the model's views has a sync value (the column no longer "—");
- *whole read*: the moment the read's answer is published (``synced_at`` set): every row's sync, the "as of" time.

Before decision 0092 the two are the same moment. Medians of interleaved runs (reference, now, in turn).

Run: ``python bench/bench_console_sync.py --vs DIR [runs]``, DIR holding ``orbit_ops``, ``orbit_cli`` and
``orbit_tui`` of the reference (``git archive <commit> orbit_ops orbit_cli orbit_tui | tar -x -C DIR``).
Prints a markdown section.
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

import bench_azure as azure  # noqa: E402
from common import GIT_ENV, compiled, machine  # noqa: E402

FLEETS = (1_000, 10_000)

# The console, after the client options bench_azure.py sets; prints [first sync shown, whole read] in seconds.
CONSOLE = azure.CLIENT.replace("from orbit_cli.main import main\nmain(sys.argv[2:])\n", """\
import asyncio, time
from pathlib import Path
from orbit_ops.workspace import Workspace
from orbit_tui.app import OrbitApp

async def run():
    start = time.perf_counter()
    app = OrbitApp(Workspace.open(Path(sys.argv[2])), refresh_seconds=3600)
    first = None
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("2")
        fleet = app.model.fleet
        while fleet.synced_at is None:
            await asyncio.sleep(0.01)
            if first is None and any(view.sync for view in fleet.views):
                first = time.perf_counter() - start
        done = time.perf_counter() - start
        assert {view.sync for view in fleet.views} == {"synced"}, fleet.live_error
    print(json.dumps([done if first is None else first, done]))

asyncio.run(run())
""")


def console(code_dir: Path, root: Path) -> tuple[float, float]:
    env = {**os.environ, **GIT_ENV, "ORBIT_AZURE_ACCESS_TOKEN": azure.TOKEN,
           "ORBIT_STORAGE_ACCOUNT_KEY": azure.ACCOUNT_KEY, "PYTHONPATH": str(code_dir)}
    done = subprocess.run([sys.executable, "-c", CONSOLE, json.dumps(azure.SHIPPED), str(root)],
                          capture_output=True, text=True, env=env, cwd=code_dir)
    if done.returncode != 0:
        raise SystemExit(f"the console failed ({done.returncode}): {done.stderr[-2000:]}")
    first, whole = json.loads(done.stdout.strip().splitlines()[-1])
    return float(first), float(whole)


def main() -> None:
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "--vs":
        raise SystemExit("usage: python bench/bench_console_sync.py --vs DIR [runs]")
    before = Path(args[1]).resolve()
    runs = int(args[2]) if len(args) > 2 else 3
    compiled(ROOT, before)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cloud = azure.Cloud(folder)
        try:
            for count in FLEETS:
                cloud.clear()
                root = azure.workspace(folder, count, cloud.azure_section())
                azure.seed(cloud, root)
                time.sleep(1.1)  # the files older than the solution cache's racy window
                cloud.set_latency(azure.LATENCY, "response-time")
                console(ROOT, root)  # warm-up: page cache, the solution cache
                samples: dict[str, list[tuple[float, float]]] = {"before": [], "now": []}
                for _ in range(runs):
                    for name, code in (("before", before), ("now", ROOT)):
                        samples[name].append(console(code, root))
                cloud.set_latency(azure.LATENCY)
                med = {name: (statistics.median(s[0] for s in values), statistics.median(s[1] for s in values))
                       for name, values in samples.items()}
                (b_first, b_whole), (n_first, n_whole) = med["before"], med["now"]
                rows.append(f"| {count:,} | {b_first:.2f} s | {b_whole:.2f} s | **{n_first:.2f} s** | {n_whole:.2f} s "
                            f"| {n_first / b_first:.2f}× | {n_whole / b_whole:.2f}× |")
                print(rows[-1], file=sys.stderr, flush=True)
        finally:
            cloud.stop()
    print("## The console's platform read on Azure (issue 17, decision 0092)\n")
    print(f"Machine: {machine()}. `python bench/bench_console_sync.py --vs {args[1]} {runs}`: medians of {runs} "
          "interleaved fresh processes; emulators answering each request 20 ms after it arrived. From creating "
          "the app, the Solutions screen asked for at once.\n")
    print("| solutions | before: first sync shown | before: whole read | now: first sync shown | now: whole read "
          "| first ÷ before | whole ÷ before |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
