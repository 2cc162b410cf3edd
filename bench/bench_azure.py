"""Azure backend benchmarks against the HTTPS emulators with 20 ms added to every request (issue 5).

(a) ``orbit status --json`` over 1,000 and 2,000 provisioned solutions, and over 1,000 with half the
    page size: wall time and the request count, which must grow with pages, not with apps.
(b) ``orbit provision --all --concurrency 16`` over 500 solutions: the first sweep (creates ~4,000
    resources) and the second (must write nothing), against the ideal total calls × latency ÷ 16; and,
    interleaved with the first sweeps, the same SDK calls made by a script with no Orbit in it, once with
    the clients Orbit makes (its transport and LRO polling, decision 0024) and once with stock ones.

The emulators (tests/emulators, the ones the Azure tests use) run in this process on 127.0.0.1 with a
``latency`` fault of 20 ms on every request of both (ARM and Azure Files). Each measured command is a
fresh ``orbit`` process (the real CLI over the real SDKs and TLS); a two-line wrapper sets the client
options first: LRO polling at the hint the emulator gives (none: poll at once, as ARM's Retry-After
would say for a finished operation), no retry back-off, and ARM's pacing buckets either as shipped
(reads 250/25 s⁻¹, writes 200/10 s⁻¹) or widened (the emulator does not enforce ARM's limits, so a
widened bucket measures the client and the latency alone). Which one a row used is stated in it.

Run: ``python bench/bench_azure.py [runs] [--paced]`` (prints a markdown section for bench/RESULTS.md;
``--paced`` adds one first sweep of 500 with the shipped buckets, which takes about five minutes).
"""

from __future__ import annotations

import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GIT_ENV, machine
from emulators.arm import ArmEmulator
from emulators.files import FilesEmulator
from emulators.server import Emulator, Fault, Running, make_certificate, serve

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.02
CONCURRENCY = 16
FLEETS = ((1000, 100), (2000, 100), (1000, 50))  # (solutions, apps a page) of the status rows
SWEEP = 500  # solutions of the sweep rows
TOKEN = "bench-token-0f6c2d9e8b7a41c3a5e2"
ACCOUNT_KEY = base64.b64encode(b"bench-storage-account-key/" + bytes(range(38))).decode()
SUBSCRIPTION = "be7c0000-0000-4000-8000-00000000be70"
GROUP, ENVIRONMENT, ACCOUNT, REGISTRY, LOCATION = "orbit-bench", "orbit-env", "orbitfiles", "orbitacr", "westeurope"
PULL = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.ManagedIdentity/x/pull"
SHIPPED = ((250, 25), (200, 10))
WIDENED = ((1e9, 1e9), (1e9, 1e9))
WRITES = ("PUT", "PATCH", "POST", "DELETE")

# The client: the real CLI, after setting the SDK client options (see the module docstring).
CLIENT = """\
import json, sys
from orbit_ops.backends.azure import platform as p
reads, writes = json.loads(sys.argv[1])
p.DEFAULT_OPTIONS = p.ClientOptions(arm={"polling_interval": 0, "retry_backoff_factor": 0},
    files={"initial_backoff": 0, "increment_base": 0, "random_jitter_range": 0},
    reads=tuple(reads), writes=tuple(writes))
from orbit_cli.main import main
main(sys.argv[2:])
"""


# The reference: the same SDK calls a first sweep makes, with no Orbit around them, 16 solutions at once on a
# thread pool. Per solution: for each of its 3 storages GET (404) + PUT, for each of its 3 apps GET (404) + the
# create LRO (PUT, one status poll, the final GET), 2 share creates; the plan's listings are not repeated.
# Two kinds: "stock" clients (azure-core's requests transport and LRO poller thread; ``use_env_settings=False``
# as decision 0022 has it), and clients made as Orbit makes them ("orbit": its urllib3 transport and in-thread
# polling, decision 0024). What the SDK itself costs, with and without Orbit's changes to how it talks.
BARE = """\
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.appcontainers import ContainerAppsAPIClient, models
from azure.storage.fileshare import ShareServiceClient
from orbit_ops.backends.azure.common import credential
arm, files, ca, subscription, group, environment, account, key = sys.argv[1:9]
count, app, storages, kind = int(sys.argv[9]), json.loads(sys.argv[10]), json.loads(sys.argv[11]), sys.argv[12]
if kind == "orbit":
    from orbit_ops.backends.azure.arm_calls import inline_polling
    from orbit_ops.backends.azure.common import AzureEndpoints
    endpoints = AzureEndpoints(arm, files, ca)
    arm_options = endpoints.pooled_transport(arm, {"polling_interval": 0, "retry_backoff_factor": 0})
    files_options = endpoints.pooled_transport(files, {}, connection_timeout=20, read_timeout=60)
    polling = lambda: {"polling": inline_polling()(0, path_format_arguments={"endpoint": arm})}
else:
    arm_options = {"connection_verify": ca, "use_env_settings": False, "polling_interval": 0,
                   "retry_backoff_factor": 0}
    files_options = {"connection_verify": ca, "use_env_settings": False}
    polling = dict
apps = ContainerAppsAPIClient(credential(), subscription, base_url=arm, credential_scopes=[arm + "/.default"],
                              **arm_options)
shares = ShareServiceClient(account_url=files, credential={"account_name": account, "account_key": key},
                            **files_options)

def solution(index):
    for name, share, mode in storages:
        try:
            apps.managed_environments_storages.get(group, environment, f"{name}-{index}")
        except ResourceNotFoundError:
            pass
        apps.managed_environments_storages.create_or_update(group, environment, f"{name}-{index}",
            models.ManagedEnvironmentStorage(properties=models.ManagedEnvironmentStorageProperties(
                azure_file=models.AzureFileProperties(account_name=account, account_key=key, share_name=share,
                                                      access_mode=mode))))
    for component in ("orbit", "agent", "mc"):
        try:
            apps.container_apps.get(group, f"{component}-{index}")
        except ResourceNotFoundError:
            pass
        apps.container_apps.begin_create_or_update(group, f"{component}-{index}", models.ContainerApp(app),
                                                   **polling()).result()
    for kind in ("customer", "internal"):
        shares.create_share(f"bare-{index}-{kind}", quota=100, metadata={"orbit-solution": str(index)})

start = time.perf_counter()
with ThreadPoolExecutor(16) as pool:
    list(pool.map(solution, range(count)))
print(time.perf_counter() - start)
"""


class Cloud:
    """The ARM (Microsoft.App) and Azure Files emulators on 127.0.0.1, 20 ms added to every request."""

    def __init__(self, folder: Path) -> None:
        cert, key = make_certificate(folder / "tls")
        self.arm_server, self.files_server = Emulator(), Emulator()
        self.arm = ArmEmulator(self.arm_server, subscription=SUBSCRIPTION, resource_group=GROUP,
                               environment=ENVIRONMENT, location=LOCATION, token=TOKEN, page_size=100)
        self.files = FilesEmulator(self.files_server, account=ACCOUNT)
        self.running: list[Running] = [serve(self.arm_server, cert, key), serve(self.files_server, cert, key)]
        self.cert = cert
        self.latency = [server.inject(Fault("latency", seconds=LATENCY, count=-1))
                        for server in (self.arm_server, self.files_server)]

    def set_latency(self, seconds: float, kind: str = "latency") -> None:
        """``seconds`` added before every request is handled (``latency``), or every request answered ``seconds``
        after it arrived, the emulators' own work within that time (``response-time``: decision 0089)."""
        for fault in self.latency:
            fault.seconds, fault.kind = seconds, kind

    def azure_section(self) -> dict[str, str]:
        return {"subscription_id": SUBSCRIPTION, "resource_group": GROUP, "location": LOCATION, "registry": REGISTRY,
                "environment": ENVIRONMENT, "storage_account": ACCOUNT, "pull_identity": PULL,
                "arm_endpoint": self.running[0].url, "files_endpoint": f"{self.running[1].url}/{ACCOUNT}",
                "ca_bundle": str(self.cert)}

    def clear(self) -> None:
        with self.arm.emulator.lock:
            self.arm.apps.clear()
            self.arm.storages.clear()
            self.arm.operations.clear()
        self.files.shares.clear()
        self.clear_logs()

    def clear_logs(self) -> None:
        self.arm_server.clear_log()
        self.files_server.clear_log()

    def counts(self) -> dict[str, int]:
        arm, files = list(self.arm_server.log), list(self.files_server.log)
        return {"arm": len(arm), "files": len(files), "arm_writes": sum(r.method in WRITES for r in arm),
                "files_writes": sum(r.method in WRITES for r in files),
                "app_pages": sum(r.method == "GET" and r.path.endswith("/containerApps") for r in arm)}

    def stop(self) -> None:
        for server in self.running:
            server.stop()


def workspace(folder: Path, count: int, azure: dict[str, str]) -> Path:
    """A workspace on the azure backend with ``count`` solutions and released 1.0.0 of each component."""
    root = folder / f"ws-{count}"
    (root / "solutions").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=GIT_ENV)
    (root / ".gitignore").write_text(".orbit/\n")
    (root / "orbit.yaml").write_text(
        "platform_repo: .\nbackend: azure\n"
        "components:\n  orbit: {context: apps/orbit}\n  agent: {context: apps/agent}\n  mc: {context: apps/mc}\n"
        'defaults:\n  images: {orbit_tag: "1.0.0", agent_tag: "1.0.0", mc_tag: "1.0.0"}\n  share_quota_gib: 100\n'
        "azure:\n" + "".join(f"  {key}: {value}\n" for key, value in azure.items()))
    for index in range(count):
        (root / "solutions" / f"customer-{index:05d}.yaml").write_text(
            f"id: customer-{index:05d}\ndisplay_name: Customer {index}\n"
            f'env:\n  orbit: {{PUBLIC_BASE_URL: "https://customer-{index:05d}.example.com"}}\n')
    records = root / "releases" / "containers"
    records.mkdir(parents=True)
    for component in ("orbit", "agent", "mc"):
        (records / f"{component}.yaml").write_text(
            f"- component: {component}\n  version: 1.0.0\n  tag: {component}/v1.0.0\n  commit: {'ab' * 20}\n"
            f"  image: {REGISTRY}.azurecr.io/{component}:1.0.0\n  digest: sha256:{'cd' * 32}\n"
            f"  registry: {REGISTRY}.azurecr.io\n  run_id: cb1\n  built_at: '2026-11-01T10:00:00Z'\n  builder: acr\n")
    return root


def seed(cloud: Cloud, root: Path) -> None:
    """Store every solution's desired resources in the emulators directly (not measured, not logged),
    using the backend's own mapping of an app to its ARM document."""
    from orbit_ops.backends.azure.app_documents import new_app_model
    from orbit_ops.backends.azure.platform import AzurePlatform
    from orbit_ops.fleet.drift import desired_for
    from orbit_ops.workspace import Workspace

    space = Workspace.open(root)
    assert space.config.azure is not None
    platform = AzurePlatform(space.config.azure)
    releases, target = space.release_index(), space.target()
    for spec in space.solutions():
        desired = desired_for(spec, target, releases)
        assert desired is not None
        for share in desired.shares:
            cloud.files.put_share(share.name, share.quota_gib, dict(share.metadata))
        for storage in desired.storages:
            cloud.arm.put_storage(storage.name, {"properties": {"azureFile": {
                "accountName": storage.account_name, "accountKey": ACCOUNT_KEY, "shareName": storage.share_name,
                "accessMode": storage.access_mode}}})
        for app in desired.apps:
            cloud.arm.put_app(app.name, new_app_model(app, location=platform.settings.location,
                                                       environment_id=platform.environment_id).as_dict())


class Timed:
    """One measured command: wall seconds, CPU seconds of the ``orbit`` process and of the emulators."""

    def __init__(self, wall: float, client_cpu: float, emulator_cpu: float) -> None:
        self.wall, self.client_cpu, self.emulator_cpu = wall, client_cpu, emulator_cpu


def orbit(root: Path, buckets: Any, *args: str) -> tuple[Timed, str]:
    """Timing and stdout of one ``orbit`` process against the emulators (which run in this process)."""
    env = {**os.environ, **GIT_ENV, "ORBIT_AZURE_ACCESS_TOKEN": TOKEN, "ORBIT_STORAGE_ACCOUNT_KEY": ACCOUNT_KEY}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = time.process_time()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CLIENT, json.dumps(buckets), "-w", str(root), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timed = Timed(elapsed, after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime,
                  time.process_time() - own)
    if done.returncode != 0:
        raise SystemExit(f"orbit {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    print(f"orbit {' '.join(args[:2])} over {root.name}: {elapsed:.2f} s (CPU: orbit {timed.client_cpu:.1f} s, "
          f"emulators {timed.emulator_cpu:.1f} s)", file=sys.stderr, flush=True)
    return timed, done.stdout


def startup(root: Path) -> float:
    """Wall seconds of ``orbit names`` with the Azure SDK imported: what every measured process pays first."""
    code = CLIENT.replace("from orbit_cli.main import main", "import azure.mgmt.appcontainers, "
                          "azure.storage.fileshare\nfrom orbit_cli.main import main")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, json.dumps(SHIPPED), "names", "acme"], check=True,
                   capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def status_rows(cloud: Cloud, folder: Path, runs: int) -> list[str]:
    rows = []
    for count, page_size in FLEETS:
        cloud.clear()
        root = workspace(folder, count, cloud.azure_section()) if not (folder / f"ws-{count}").exists() \
            else folder / f"ws-{count}"
        seed(cloud, root)
        cloud.arm.page_size = page_size
        times, counts = [], None
        for _ in range(runs):
            cloud.clear_logs()
            timed, out = orbit(root, SHIPPED, "status", "--json")
            rows_json = json.loads(out)
            assert len(rows_json) == count and {row["sync"] for row in rows_json} == {"synced"}, "not all synced"
            times.append(timed)
            counts = cloud.counts()
        assert counts is not None
        sequential = (counts["arm"] + counts["files"]) * LATENCY
        rows.append(f"| status, {count:,} solutions ({3 * count:,} apps), page size {page_size} | "
                    f"{counts['arm']} ({counts['app_pages']} app pages + 1 storage list) | {counts['files']} | "
                    f"{_median(times, 'wall'):.2f} s | {sequential:.2f} s | {_median(times, 'client_cpu'):.2f} s | "
                    f"{_median(times, 'emulator_cpu'):.2f} s |")
    cloud.arm.page_size = 100
    return rows


def bare_sdk(cloud: Cloud, root: Path, kind: str) -> tuple[Timed, int]:
    """One run of ``BARE`` over ``SWEEP`` solutions with ``kind`` clients ("stock" or "orbit"; the storages
    its apps mount made first, not counted): timing of the process, and the calls the emulators saw."""
    from orbit_ops.backends.azure.app_documents import new_app_model
    from orbit_ops.backends.azure.platform import AzurePlatform
    from orbit_ops.fleet.drift import desired_for
    from orbit_ops.workspace import Workspace

    space = Workspace.open(root)
    assert space.config.azure is not None
    spec = next(iter(space.solutions()))
    desired = desired_for(spec, space.target(), space.release_index())
    assert desired is not None
    platform = AzurePlatform(space.config.azure)
    document = new_app_model(desired.apps[0], location=platform.settings.location,
                             environment_id=platform.environment_id).as_dict()
    cloud.clear()
    for storage in desired.storages:  # every app of the reference mounts the first solution's storages
        cloud.arm.put_storage(storage.name, {"properties": {"azureFile": {
            "accountName": storage.account_name, "accountKey": ACCOUNT_KEY, "shareName": storage.share_name,
            "accessMode": storage.access_mode}}})
    cloud.clear_logs()
    storages = [[f"bare-{s.name.split('-', 1)[1]}", s.share_name, s.access_mode] for s in desired.storages]
    azure = cloud.azure_section()
    env = {**os.environ, "ORBIT_AZURE_ACCESS_TOKEN": TOKEN}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = time.process_time()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", BARE, azure["arm_endpoint"], azure["files_endpoint"], azure["ca_bundle"],
                    SUBSCRIPTION, GROUP, ENVIRONMENT, ACCOUNT, ACCOUNT_KEY, str(SWEEP), json.dumps(document),
                    json.dumps(storages), kind], check=True, capture_output=True, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    counts = cloud.counts()
    print(f"bare SDK ({kind} clients) over {SWEEP}: {elapsed:.2f} s", file=sys.stderr, flush=True)
    return Timed(elapsed, after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime,
                 time.process_time() - own), counts["arm"] + counts["files"]


def sweep_rows(cloud: Cloud, folder: Path, runs: int, paced: bool) -> list[str]:
    root = folder / f"ws-{SWEEP}"
    if not root.exists():
        workspace(folder, SWEEP, cloud.azure_section())
    rows = []
    args = ("provision", "--all", "--yes", "--json", "--concurrency", str(CONCURRENCY))

    def sweep_once(buckets: Any, fresh: bool) -> tuple[Timed, dict[str, int], int]:
        if fresh:
            cloud.clear()
        cloud.clear_logs()
        timed, out = orbit(root, buckets, *args)
        result = json.loads(out)
        assert all(s["state"] == "succeeded" for s in result["solutions"]), "a solution failed"
        return timed, cloud.counts(), result["writes"]

    def measure(label: str, buckets: Any, fresh: bool, repeat: int, latency: float = LATENCY) -> None:
        times, counts, writes = [], None, None
        cloud.set_latency(latency)
        for _ in range(repeat):
            timed, counts, writes = sweep_once(buckets, fresh)
            times.append(timed)
        cloud.set_latency(LATENCY)
        assert counts is not None
        calls = counts["arm"] + counts["files"]
        ideal = calls * latency / CONCURRENCY
        wall = _median(times, "wall")
        pacing = max(0.0, (counts["arm_writes"] - SHIPPED[1][0]) / SHIPPED[1][1])
        bound = "— (widened)" if buckets == WIDENED else f"{pacing:.0f} s" if pacing else "—"
        ratio = f"**{wall / ideal:.2f}×**" if ideal else "—"
        rows.append(f"| {label} | {calls:,} ({counts['arm_writes']:,} ARM writes, {counts['files_writes']:,} share "
                    f"writes) | {writes:,} | {wall:.1f} s | {ideal:.2f} s | {ratio} | {bound} | "
                    f"{_median(times, 'client_cpu'):.1f} s / {_median(times, 'emulator_cpu'):.1f} s | {len(times)} |")

    # Orbit's first sweep and the bare SDK's (both kinds of clients), interleaved so the machine's noise falls
    # on all three alike.
    orbit_times: list[Timed] = []
    bare_times: dict[str, list[Timed]] = {"orbit": [], "stock": []}
    counts: dict[str, int] = {}
    bare_calls = writes = 0
    for _ in range(runs):
        timed, counts, writes = sweep_once(WIDENED, True)
        orbit_times.append(timed)
        for kind, times in bare_times.items():
            timed, bare_calls = bare_sdk(cloud, root, kind)
            times.append(timed)
    calls = counts["arm"] + counts["files"]
    for label, times, made, written in (
            ("first sweep, buckets widened", orbit_times, calls, f"{writes:,}"),
            ("**reference: the bare SDK making the same calls**, clients made as Orbit makes them",
             bare_times["orbit"], bare_calls, "—"),
            ("reference: the bare SDK making the same calls, stock clients (requests, a thread per LRO)",
             bare_times["stock"], bare_calls, "—")):
        wall, ideal = _median(times, "wall"), made * LATENCY / CONCURRENCY
        detail = (f"{counts['arm_writes']:,} ARM writes, {counts['files_writes']:,} share writes"
                  if times is orbit_times else "the same mix, no listings")
        rows.append(f"| {label} | {made:,} ({detail}) | {written} | {wall:.1f} s | {ideal:.2f} s | "
                    f"**{wall / ideal:.2f}×** | — (widened) | {_median(times, 'client_cpu'):.1f} s / "
                    f"{_median(times, 'emulator_cpu'):.1f} s | {len(times)} |")
    ratio = _median(orbit_times, "wall") / _median(bare_times["orbit"], "wall")
    rows.append(f"| Orbit ÷ bare SDK (clients made as Orbit makes them), same run | | | **{ratio:.2f}×** "
                "| | | | | |")
    measure("first sweep, buckets widened, **no added latency** (what the CPU costs alone)", WIDENED, True, runs, 0.0)
    measure("second sweep (no-op), buckets as shipped", SHIPPED, False, runs)
    if paced:
        measure("first sweep, buckets as shipped", SHIPPED, True, 1)
    return rows


def _median(times: list[Timed], what: str) -> float:
    return statistics.median(getattr(timed, what) for timed in times)


def main() -> None:
    runs = int(next((a for a in sys.argv[1:] if a.isdigit()), "5"))
    paced = "--paced" in sys.argv
    with tempfile.TemporaryDirectory(prefix="orbit-bench-azure-") as tmp:
        folder = Path(tmp)
        cloud = Cloud(folder)
        try:
            start_up = startup(folder)
            status = status_rows(cloud, folder, runs)
            sweeps = sweep_rows(cloud, folder, max(3, runs), paced)
        finally:
            cloud.stop()
    print("## Azure (emulated) (issue 5)\n")
    print(f"Machine: {machine()}. Emulators of tests/emulators on 127.0.0.1 over TLS, {LATENCY * 1000:.0f} ms "
          f"added to every request; each command a fresh `orbit` process (`python bench/bench_azure.py`). "
          f"A process start with the Azure SDK imported takes {start_up:.2f} s of each time below.\n")
    print(f"### Fleet status (medians of {runs} runs)\n")
    print("| what | ARM requests | Files requests | wall time | requests × 20 ms, one after another | "
          "CPU of orbit | CPU of the emulators |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(status))
    print(f"\n### Sweep of {SWEEP} solutions, concurrency {CONCURRENCY}\n")
    print("| run | calls (writes) | writes reported | wall time | ideal: calls × 20 ms ÷ 16 | wall ÷ ideal | "
          "ARM write pacing alone | CPU of orbit / of the emulators | runs |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(sweeps))


if __name__ == "__main__":
    main()
