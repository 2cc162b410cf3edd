"""Issue 17's engine figures, side by side in one run with the code before it (a checkout given as ``--vs DIR``):

(a) reading and judging the solution files of a demo fleet of 1,000 and 10,000: before (no cache), this code with
    a cold cache (removed before each run: the files are read and the cache written) and with a warm one;
(b) ``orbit status --json`` on the Azure backend (the emulators of tests/emulators, 20 ms to every request: added
    before the emulator answers, and as the request's response time, the emulator's work within it, decision 0089)
    over 1,000 and 10,000 synced solutions, this code and the code before, each a fresh process: wall time, and
    the command's own time after start-up (the interpreter and the SDK imports, which every command pays, left
    out) against the requests' latency one after another, and against the same requests made one after another
    by a bare client (``BARE``) in a fresh process: the emulators' own time to answer is in that reference.

Each figure is the median of interleaved runs (before, cold, warm, ... in turn), each in a fresh process.

Run: ``python bench/bench_fleet_reads.py --vs DIR [runs] [--only files|azure]`` where DIR holds ``orbit_ops``
and ``orbit_cli`` of the reference (e.g. ``git archive <commit> orbit_ops orbit_cli | tar -x -C DIR``). Prints a
markdown section.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
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

LOAD = """\
import json, sys, time
from pathlib import Path
from orbit_ops.config.load import load_config, load_solution_set
config = load_config(Path(sys.argv[1]))
start, cpu = time.perf_counter(), time.process_time()
loaded = load_solution_set(config)
print(json.dumps([time.perf_counter() - start, time.process_time() - cpu, len(loaded.valid), len(loaded.invalid)]))
"""

# The Azure client of bench_azure.py, with the SDK imported before the clock starts and the command timed inside.
STATUS = azure.CLIENT.replace("from orbit_cli.main import main\nmain(sys.argv[2:])\n", """\
import time
import azure.mgmt.appcontainers, azure.storage.fileshare
from orbit_cli.main import main
start = time.perf_counter()
try:
    main(sys.argv[2:])
finally:
    sys.stderr.write(f"\\nbench-main-seconds {time.perf_counter() - start}\\n")
""")


# The reference for the Azure rows: the same requests as `orbit status` makes, made one after another by a bare
# client in a fresh process (urllib3 over one TLS connection per endpoint, each body read whole, the app pages' JSON
# parsed only to find the next link; the share listing signed by the storage SDK's own pipeline, its body left
# unread as XML). What the requests cost on these emulators and this machine with nothing of Orbit around them:
# the 20 ms, the emulators' own time to answer and the transfer, but no concurrency.
BARE = """\
import json, sys, time
import urllib3
from azure.storage.fileshare import ShareServiceClient
arm, files, ca, token, account, key, apps_path, storages_path = sys.argv[1:9]
pool = urllib3.connection_from_url(arm, ca_certs=ca, maxsize=1)
share_client = ShareServiceClient(account_url=files, credential={"account_name": account, "account_key": key},
                                  connection_verify=ca)
headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
pool.urlopen("GET", storages_path, headers=headers).data  # the connections made before the clock starts
start = time.perf_counter()
path, pages = apps_path, 0
while path:
    body = json.loads(pool.urlopen("GET", path, headers=headers).data)
    pages += 1
    path = body.get("nextLink", "").replace(arm, "", 1) or None
pool.urlopen("GET", storages_path, headers=headers).data
marker = None
while True:
    raw = b"".join(share_client._client.service.list_shares_segment(include=["metadata"], marker=marker, stream=True))
    marker = raw.rsplit(b"<NextMarker>", 1)[-1].split(b"</NextMarker>", 1)[0].decode() or None
    if not marker:
        break
print(json.dumps([time.perf_counter() - start, pages]))
"""


def bare(cloud: azure.Cloud) -> float:
    """Seconds the bare client of ``BARE`` takes for the requests of one ``orbit status``."""
    section = cloud.azure_section()
    group = f"/subscriptions/{azure.SUBSCRIPTION}/resourceGroups/{azure.GROUP}/providers/Microsoft.App"
    done = subprocess.run([sys.executable, "-c", BARE, section["arm_endpoint"], section["files_endpoint"],
                           section["ca_bundle"], azure.TOKEN, azure.ACCOUNT, azure.ACCOUNT_KEY,
                           f"{group}/containerApps?api-version=2026-07-01",
                           f"{group}/managedEnvironments/{azure.ENVIRONMENT}/storages?api-version=2026-07-01"],
                          capture_output=True, text=True, check=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds, _ = json.loads(done.stdout)
    return float(seconds)


def run_load(code_dir: Path, root: Path) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", LOAD, str(root)], capture_output=True, text=True, check=True,
                         cwd=code_dir, env={**os.environ, **GIT_ENV, "PYTHONPATH": str(code_dir)})
    seconds, cpu, _, _ = json.loads(out.stdout)
    return seconds, cpu


def solution_rows(folder: Path, before: Path, runs: int) -> list[str]:
    from orbit_ops.demo import create_demo

    rows = []
    for count in (1_000, 10_000):
        root = folder / f"demo-{count}"
        for line in create_demo(root, solutions=count):
            if "solutions written" in line:
                break  # the files are what is measured: no releases built, nothing provisioned
        cache = root / ".orbit" / "cache"
        time.sleep(1.1)  # older than the cache's racy window (solution_cache.RACY_NS)
        samples: dict[str, list[tuple[float, float]]] = {"before": [], "cold": [], "warm": []}
        run_load(ROOT, root)
        for _ in range(runs):
            samples["before"].append(run_load(before, root))
            shutil.rmtree(cache, ignore_errors=True)
            samples["cold"].append(run_load(ROOT, root))
            samples["warm"].append(run_load(ROOT, root))
        wall = {name: statistics.median(s[0] for s in values) for name, values in samples.items()}
        cpu = {name: statistics.median(s[1] for s in values) for name, values in samples.items()}
        shown = {name: f"{wall[name] * 1000:.0f} ms (CPU {cpu[name] * 1000:.0f} ms)" for name in wall}
        rows.append(f"| {count:,} solution files | {shown['before']} | {shown['cold']} → "
                    f"**{wall['cold'] / wall['before']:.2f}×** (CPU {cpu['cold'] / cpu['before']:.2f}×) | "
                    f"{shown['warm']} → **{wall['warm'] / wall['before']:.2f}×** "
                    f"(CPU {cpu['warm'] / cpu['before']:.2f}×) |")
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def status(code_dir: Path, root: Path) -> tuple[float, float, float, int]:
    """Wall seconds, seconds after start-up, CPU seconds of one ``orbit status --json`` run of ``code_dir``'s
    code, and how many rows it printed."""
    env = {**os.environ, **GIT_ENV, "ORBIT_AZURE_ACCESS_TOKEN": azure.TOKEN,
           "ORBIT_STORAGE_ACCOUNT_KEY": azure.ACCOUNT_KEY, "PYTHONPATH": str(code_dir)}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", STATUS, json.dumps(azure.SHIPPED), "-w", str(root), "status",
                           "--json"], capture_output=True, text=True, env=env, cwd=code_dir)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"status failed ({done.returncode}): {done.stderr[-2000:]}")
    rows = json.loads(done.stdout)
    assert {row["sync"] for row in rows} == {"synced"}, "not all synced"
    inside = float(done.stderr.rsplit("bench-main-seconds ", 1)[1].split()[0])
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return wall, inside, cpu, len(rows)


# How the 20 ms are added to every request (bench_azure.Cloud.set_latency): slept before the emulator handles it,
# its own work after (what this bench measured before decision 0089), or the request answered 20 ms after it
# arrived with the emulator's own work within that time, as a service's response time is (decision 0089).
LATENCY_KINDS = (("latency", "20 ms added before the emulator answers"),
                 ("response-time", "answered 20 ms after the request arrived (decision 0089)"))


def azure_rows(folder: Path, before: Path, runs: int) -> list[str]:
    cloud = azure.Cloud(folder)
    rows = []
    try:
        for count in (1_000, 10_000):
            cloud.clear()
            root = azure.workspace(folder, count, cloud.azure_section())
            azure.seed(cloud, root)
            time.sleep(1.1)
            samples: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
            bare_seconds: dict[str, list[float]] = {kind: [] for kind, _ in LATENCY_KINDS}
            status(ROOT, root)  # warm-up: page cache, and this code's solution cache
            counts = None
            for _ in range(runs):  # interleaved: each kind, each code, and the bare client in turn
                for kind, _ in LATENCY_KINDS:
                    cloud.set_latency(azure.LATENCY, kind)
                    for name, code_dir in (("before", before), ("now", ROOT)):
                        cloud.clear_logs()
                        emulator_cpu = time.process_time()
                        wall, inside, cpu, _ = status(code_dir, root)
                        samples.setdefault((kind, name), []).append(
                            (wall, inside, cpu, time.process_time() - emulator_cpu))
                        counts = cloud.counts()
                    bare_seconds[kind].append(bare(cloud))
            cloud.set_latency(azure.LATENCY)
            assert counts is not None
            requests = counts["arm"] + counts["files"]
            floor = requests * azure.LATENCY
            med = {key: [statistics.median(s[i] for s in values) for i in range(4)]
                   for key, values in samples.items()}
            for kind, how in LATENCY_KINDS:
                reference = statistics.median(bare_seconds[kind])
                for name, label in (("before", "the reference (--vs)"), ("now", "now")):
                    wall, inside, cpu, emulators = med[kind, name]
                    rows.append(f"| {count:,} solutions, {label}; {how} | {requests} ({counts['app_pages']} app "
                                f"pages) | {wall:.2f} s | {inside:.2f} s | {floor:.2f} s | **{inside / floor:.2f}×** | "
                                f"{reference:.2f} s | **{inside / reference:.2f}×** | "
                                f"{cpu:.2f} s ({cpu / count * 1000:.2f} ms a solution) | {emulators:.2f} s |")
                    print(rows[-1], file=sys.stderr, flush=True)
                now, then = med[kind, "now"], med[kind, "before"]
                rows.append(f"| {count:,} solutions, now ÷ before, same run; {how} | | **{now[0] / then[0]:.2f}×** "
                            f"| **{now[1] / then[1]:.2f}×** | | | | | **{now[2] / then[2]:.2f}×** | |")
    finally:
        cloud.stop()
    return rows


def main() -> None:
    args = sys.argv[1:]
    if "--vs" not in args:
        raise SystemExit("usage: bench_fleet_reads.py --vs DIR [runs] [--only files|azure]")
    before = Path(args[args.index("--vs") + 1]).resolve()
    runs = int(next((a for a in args if a.isdigit()), "5"))
    load = os.getloadavg()[0]
    only = args[args.index("--only") + 1] if "--only" in args else None
    compiled(ROOT, before)
    with tempfile.TemporaryDirectory(prefix="orbit-bench-reads-") as tmp:
        files = solution_rows(Path(tmp), before, runs) if only in (None, "files") else ["| (not run) | | | |"]
        statuses = azure_rows(Path(tmp), before, runs) if only in (None, "azure") else ["| (not run) |"]
    print("## Fleet-sized reads (issue 17)\n")
    print(f"Machine: {machine()}. Load average (1 min) {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end: "
          "the machine is shared with other work, read the ratios. Medians of "
          f"{runs} interleaved runs, each a fresh process (`python bench/bench_fleet_reads.py --vs DIR`), the "
          "reference being the code given as `--vs DIR` in the same run.\n")
    print("### Reading and judging the solution files (a demo fleet; in-process time of `load_solution_set`)\n")
    print("| fleet | before (no cache) | cold cache (read + cache written) → ÷ before | warm cache → ÷ before |")
    print("|---|---|---|---|")
    print("\n".join(files))
    print("\n### `orbit status --json`, Azure backend (emulators, 20 ms to every request, two ways)\n")
    print("| fleet, code | requests | wall time | after start-up | requests × 20 ms | after start-up ÷ that "
          "(target ≤ 1.5× at 1,000) | the same requests one after another, bare client | after start-up ÷ "
          "that | CPU of orbit | CPU of the emulators |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(statuses))


if __name__ == "__main__":
    main()
