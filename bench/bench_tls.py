"""New TLS connections of Orbit's Azure transport with a production-sized CA bundle, side by side with the code
before (decision 0093).

In production the transport verifies against certifi's bundle (about 140 certificates) or the one
``REQUESTS_CA_BUNDLE`` names; the emulators' own bundle is one certificate, so the other benchmarks never see
what loading a real bundle costs. Here the bundle is certifi's with the emulator's certificate appended, and each
run is a fresh process that opens ``CONNECTIONS`` connections at once through one transport (a sweep's pool
filling: ``CONNECTIONS`` requests in flight at the ARM emulator, each answered 20 ms after it arrived), then sends
as many again over the connections kept. Its CPU time and wall time for both rounds are reported.

Run: ``python bench/bench_tls.py --vs DIR [runs]`` where DIR holds the reference's ``orbit_ops`` (e.g.
``git archive <commit> orbit_ops | tar -x -C DIR``). Prints a markdown section.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

import bench_azure as azure  # noqa: E402
from common import compiled, machine  # noqa: E402

CONNECTIONS = 16

CLIENT = """\
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from azure.core.rest import HttpRequest
from orbit_ops.backends.azure.transport import transport_class
url, bundle, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
transport = transport_class()(connection_verify=bundle, pool_size=count)
def one(_):
    return transport.send(HttpRequest("GET", url)).status_code
with ThreadPoolExecutor(count) as pool:
    list(pool.map(lambda _: None, range(count)))  # the threads started before the clock
    out = []
    for _ in range(2):  # new connections, then the kept ones
        start, cpu = time.perf_counter(), time.process_time()
        codes = set(pool.map(one, range(count)))
        out.append([time.perf_counter() - start, time.process_time() - cpu])
        assert codes == {401}, codes
transport.close()
print(json.dumps(out))
"""


def run(code: Path, url: str, bundle: Path) -> list[list[float]]:
    done = subprocess.run([sys.executable, "-c", CLIENT, url, str(bundle), str(CONNECTIONS)], capture_output=True,
                          text=True, cwd=code, env={**os.environ, "PYTHONPATH": str(code)})
    if done.returncode:
        raise SystemExit(f"the client failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def main() -> None:
    args = sys.argv[1:]
    if "--vs" not in args:
        raise SystemExit("usage: bench_tls.py --vs DIR [runs]")
    before = Path(args[args.index("--vs") + 1]).resolve()
    runs = int(next((a for a in args if a.isdigit()), "9"))
    compiled(ROOT, before)
    import certifi

    with tempfile.TemporaryDirectory(prefix="orbit-bench-tls-") as tmp:
        cloud = azure.Cloud(Path(tmp))
        try:
            cloud.set_latency(azure.LATENCY, "response-time")
            section = cloud.azure_section()
            bundle = Path(tmp) / "production-sized-bundle.pem"
            bundle.write_bytes(Path(certifi.where()).read_bytes() + Path(section["ca_bundle"]).read_bytes())
            url = (f"{section['arm_endpoint']}/subscriptions/{azure.SUBSCRIPTION}/resourceGroups/{azure.GROUP}"
                   "/providers/Microsoft.App/containerApps")  # 401 without a token: reached, verified
            codes = {"before": before, "now": ROOT}
            samples: dict[str, list[list[list[float]]]] = {name: [] for name in codes}
            for code in codes.values():  # warm-up: page cache
                run(code, url, bundle)
            for _ in range(runs):
                for name, code in codes.items():
                    samples[name].append(run(code, url, bundle))
        finally:
            cloud.stop()
    print("## New TLS connections with a production-sized CA bundle (decision 0093)\n")
    print(f"Machine: {machine()}. Medians of {runs} interleaved fresh processes (`python bench/bench_tls.py --vs "
          f"DIR {runs}`), the reference being the code given as `--vs DIR`. The bundle: certifi's "
          f"and the emulator's certificate; {CONNECTIONS} requests at once through one transport to the ARM "
          "emulator (each answered 20 ms after it arrived), first on new connections, then on the kept ones.\n")
    print("| code | new connections: wall | CPU | kept connections: wall | CPU |")
    print("|---|---|---|---|---|")
    med = {name: [[statistics.median(s[r][i] for s in values) for i in range(2)] for r in range(2)]
           for name, values in samples.items()}
    for name in codes:
        (new_wall, new_cpu), (kept_wall, kept_cpu) = med[name]
        print(f"| {name} | {new_wall * 1000:.0f} ms | {new_cpu * 1000:.0f} ms | {kept_wall * 1000:.0f} ms | "
              f"{kept_cpu * 1000:.0f} ms |")
    (now_wall, now_cpu), _ = med["now"]
    (then_wall, then_cpu), _ = med["before"]
    print(f"| now ÷ before | **{now_wall / then_wall:.2f}×** | **{now_cpu / then_cpu:.2f}×** | | |")


if __name__ == "__main__":
    main()
