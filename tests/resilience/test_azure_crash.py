"""Crash safety on the Azure backend: SIGKILL `orbit provision --all` against the HTTPS emulators, 16 times.

The emulators run in this process; each `orbit provision --all --yes` is a subprocess pointed at them
(``ORBIT_AZURE_ACCESS_TOKEN``, ``ORBIT_STORAGE_ACCOUNT_KEY``), started through a tiny ``python -c`` shim
that sets the same zeroed SDK waits as the in-process fixture (``DEFAULT_OPTIONS``) before calling the
real entry point. The first runs are killed while they create the 200-solution fleet; once it exists,
hand-made drift (apps' images, environment storages' access mode, shares' quota) is put in before each
run so every sweep has writes to make when it dies. After every kill no operation stays ``running``;
at the end a ``--no-wait`` provision (which a leftover lock would fail) converges and the next writes 0.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kill_points import kill_delays
from support import GIT_ENV, report

from orbit_ops.operations.store import OperationStore

pytestmark = pytest.mark.resilience

KILLS = int(os.environ.get("ORBIT_CRASH_KILLS", "16"))
SOLUTIONS = int(os.environ.get("ORBIT_CRASH_SOLUTIONS", "200"))
READS, WRITES = (250.0, 500.0), (200.0, 400.0)  # as in test_azure_faults.py
SHIM = (
    "import sys\n"
    "from orbit_ops.backends.azure import platform as p\n"
    "p.DEFAULT_OPTIONS = p.ClientOptions(\n"
    "    arm={'polling_interval': 0, 'retry_backoff_factor': 0},\n"
    "    files={'initial_backoff': 0, 'increment_base': 0, 'random_jitter_range': 0},\n"
    f"    reads={READS!r}, writes={WRITES!r})\n"
    "from orbit_cli.main import main\n"
    "main(sys.argv[1:])\n"
)


def orbit(root: Path, emu: Any, *args: str, stdout: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    env = {**os.environ, **GIT_ENV, "ORBIT_AZURE_ACCESS_TOKEN": emu.token, "ORBIT_STORAGE_ACCOUNT_KEY": emu.account_key}
    return subprocess.Popen([sys.executable, "-c", SHIM, "-w", str(root), *args], stdout=stdout,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)


def kill_at_random(root: Path, emu: Any, delay: float, *args: str) -> tuple[bool, bool, float]:
    """Start ``orbit ARGS``; once its operation is recorded running, SIGKILL the group after ``delay`` seconds.

    Returns (whether the kill landed while the process lived, whether its operation was still recorded
    running just before the kill, seconds from start to the kill). A process can outlive its operation's
    end by a moment (printing the summary, exiting): a kill then is no interruption.
    """
    store = OperationStore(root / ".orbit")
    known = {record.id for record in store.list()}
    started = time.monotonic()
    process = orbit(root, emu, *args)
    try:
        while process.poll() is None:
            if any(r.id not in known and r.state == "running" for r in store.list(limit=5)):
                break
            time.sleep(0.01)
        time.sleep(delay)
        killed = process.poll() is None
        mid_run = killed and any(r.id not in known and r.state == "running" for r in store.list(limit=5))
        if killed:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=120)
        return killed, mid_run, time.monotonic() - started
    finally:
        store.close()


def operations(root: Path) -> list[Any]:
    store = OperationStore(root / ".orbit")
    try:
        return store.list()
    finally:
        store.close()


def drift(emu: Any, rng: random.Random, count: int) -> int:
    """Change ``count`` random managed fields by hand in the emulators' state; returns how many changed."""
    changed = 0
    apps, storages, shares = list(emu.arm.apps), list(emu.arm.storages), list(emu.files.shares)
    with emu.arm_server.lock, emu.files_server.lock:
        for _ in range(count):
            kind = rng.choice(("app", "storage", "share"))
            if kind == "app" and apps:
                container = emu.arm.apps[rng.choice(apps)]["properties"]["template"]["containers"][0]
                container["image"] = container["image"].rsplit(":", 1)[0] + ":0.9.0"
            elif kind == "storage" and storages:
                emu.arm.storages[rng.choice(storages)]["properties"]["azureFile"]["accessMode"] = "ReadOnly"
            elif kind == "share" and shares:
                emu.files.shares[rng.choice(shares)].quota = 7
            else:
                continue
            changed += 1
    return changed



def test_killed_azure_sweeps_leave_no_lock_and_converge(make_azure_workspace: Callable[..., Path],
                                                        emulators: Any) -> None:
    rng = random.Random(21)
    root = make_azure_workspace(SOLUTIONS)
    killed = mid_run = drifted = 0
    window = 0.9  # a drift-only sweep of the fleet runs ~1–2 s once recorded running; creating ones longer
    started = time.monotonic()
    seconds: list[float] = []
    delays = kill_delays(rng, KILLS, window)  # one kill in each slice of the window (tests/kill_points.py)
    for round_ in range(KILLS):
        if emulators.arm.apps and round_ >= 3:
            drifted += drift(emulators, rng, rng.randint(5, 40))
        landed, running_then, spent = kill_at_random(root, emulators, delays[round_], "provision", "--all", "--yes",
                                                    "--health-timeout", "0")
        killed += landed
        mid_run += running_then
        seconds.append(spent)
        running = [f"{r.id} {r.state}" for r in operations(root) if r.state in ("running", "queued")]
        assert running == [], f"round {round_}: {running}"
    loop = time.monotonic() - started

    # Killing writes is the subject; following revisions to health is test_azure_provision_health's.
    process = orbit(root, emulators, "provision", "--all", "--yes", "--no-wait", "--health-timeout", "0")
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()  # no lock was left behind: --no-wait would fail on one
    process = orbit(root, emulators, "provision", "--all", "--yes", "--json", "--health-timeout", "0",
                    stdout=subprocess.PIPE)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["writes"] == 0
    assert (len(emulators.arm.apps), len(emulators.arm.storages), len(emulators.files.shares)) == (
        3 * SOLUTIONS, 3 * SOLUTIONS, 2 * SOLUTIONS)

    records = [r for r in operations(root) if r.kind == "sweep"]
    interrupted = sum(1 for r in records if r.state == "interrupted")
    finished = sum(1 for r in records if r.state in ("succeeded", "failed"))
    report(f"azure sweep ({SOLUTIONS} solutions, emulators)", kills=KILLS, killed_alive=killed,
           killed_mid_run=mid_run, interrupted=interrupted, finished_before_kill=finished - 2,
           drift_changes=drifted, loop_s=round(loop, 1), mean_run_s=round(sum(seconds) / len(seconds), 2))
    assert mid_run > KILLS // 2
    # Each kill of a sweep still recorded running leaves it interrupted; the record may end in the moment
    # between that read and the kill, hence the slack of 2.
    assert interrupted >= mid_run - 2
