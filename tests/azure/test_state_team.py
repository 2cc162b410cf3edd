"""Two operators' machines, one platform, one state container: the lease decides who writes.

Each machine is its own workspace folder (its own ``.orbit/``) on the same emulated Azure and the same state
container on Azurite, and runs ``orbit`` as its own process, as two laptops would.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from emulators.server import Fault
from state_fixtures import LEASE_SECONDS, add_state
from support import GIT_ENV

from orbit_ops.backends.azure.state_blobs import StateContainer
from orbit_ops.backends.azure.state_locks import BlobLockStore
from orbit_ops.backends.azure.state_operations import BlobSharedOperations

if TYPE_CHECKING:
    from conftest import AzureEmulators, StateStoreFixture  # tests/azure/conftest.py

SHIM = (
    "import sys\n"
    "from orbit_ops.backends.azure import platform as p\n"
    "p.DEFAULT_OPTIONS = p.ClientOptions(arm={'polling_interval': 0, 'retry_backoff_factor': 0},\n"
    "    files={'initial_backoff': 0, 'increment_base': 0, 'random_jitter_range': 0})\n"
    "from orbit_cli.main import main\n"
    "main(sys.argv[1:])\n"
)
WRITE_METHODS = ("PUT", "PATCH", "DELETE", "POST")


def machine(make_azure_workspace: Callable[..., Path], state_store: StateStoreFixture, name: str) -> Path:
    root = make_azure_workspace(2, name=name)
    add_state(root, state_store.azurite, state_store.container)
    return root


def orbit(root: Path, user: str, emulators: AzureEmulators, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **GIT_ENV, "LOGNAME": user, "PYTHONPATH": os.pathsep.join(sys.path),
           "ORBIT_AZURE_ACCESS_TOKEN": emulators.token, "ORBIT_STORAGE_ACCOUNT_KEY": emulators.account_key}
    return subprocess.Popen([sys.executable, "-c", SHIM, "-w", str(root), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def writes_to(emulators: AzureEmulators, solution: str) -> list[str]:
    """The write calls that reached the platform for ``solution``'s apps, storages and shares."""
    from orbit_ops.names import azure_names

    names = azure_names(solution)
    marks = [*names.apps.values(), *names.shares.values(), *names.storages.values()]
    logged = [*emulators.arm_server.log, *emulators.files_server.log]
    return [f"{r.method} {r.path}" for r in logged
            if r.method in WRITE_METHODS and r.status < 300 and any(r.path.endswith(mark) or f"/{mark}" in r.path
                                                                    for mark in marks)]


def test_two_machines_provisioning_one_solution_write_it_once_and_the_second_names_the_first(
        make_azure_workspace: Callable[..., Path], emulators: AzureEmulators,
        state_store: StateStoreFixture) -> None:
    laptop_a, laptop_b = (machine(make_azure_workspace, state_store, name) for name in ("laptop-a", "laptop-b"))
    # The first write of customer-00 takes 3 s: whoever holds the lock holds it while the other arrives.
    emulators.arm_server.inject(Fault("latency", method="PUT", path="/containerApps/", seconds=3, count=1))
    first = orbit(laptop_a, "alice", emulators, "provision", "customer-00", "--yes")
    time.sleep(0.3)
    second = orbit(laptop_b, "bob", emulators, "provision", "customer-00", "--yes")
    out_a, err_a = first.communicate(timeout=120)
    out_b, err_b = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, err_a + err_b
    texts = {"alice": out_a + err_a, "bob": out_b + err_b}
    waiting = [(user, text) for user, text in texts.items() if "waiting for solution customer-00" in text]
    assert len(waiting) == 1, texts
    waiter, text = waiting[0]
    holder = "alice" if waiter == "bob" else "bob"
    lines = [row for row in text.splitlines() if "waiting for solution customer-00" in row]
    line = lines[0]
    assert all(row.endswith(line.split("waiting for ", 1)[1]) for row in lines), lines  # one holder, told again
    holder_op = re.search(r"held by operation (\S+) \(provision, (\w+), pid \d+ on ", line)
    assert holder_op is not None and holder_op.group(2) == holder, line
    assert holder_op.group(1) in texts[holder]  # the op id the holder printed as its own
    assert len(writes_to(emulators, "customer-00")) == 8  # one set of writes: the waiter found it in sync
    assert "in sync: nothing to do" in text or "0 write call(s)" in text


def test_a_holder_killed_mid_provision_frees_the_solution_for_the_other_machine_within_one_lease(
        make_azure_workspace: Callable[..., Path], emulators: AzureEmulators,
        state_store: StateStoreFixture) -> None:
    laptop_a, laptop_b = (machine(make_azure_workspace, state_store, name) for name in ("laptop-a", "laptop-b"))
    emulators.arm_server.inject(Fault("latency", method="PUT", path="/containerApps/", seconds=4, count=1))
    doomed = orbit(laptop_a, "alice", emulators, "provision", "customer-01", "--yes")
    locks = BlobLockStore(StateContainer(state_store.settings))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if [info for info in asyncio.run(locks.list_locks()) if info.state == "held"]:
            break
        time.sleep(0.05)
    # It holds the lease and its first app write is in flight (held up 4 s at the emulator).
    time.sleep(0.5)
    os.killpg(doomed.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    doomed.communicate(timeout=10)
    survivor = orbit(laptop_b, "bob", emulators, "provision", "customer-01", "--yes")
    out, err = survivor.communicate(timeout=120)
    took = time.monotonic() - killed_at
    assert survivor.returncode == 0, out + err
    assert re.search(r"waiting for solution customer-01: held by operation \S+ \(provision, alice, pid "
                     rf"{doomed.pid} on ", out + err), out + err
    assert took < LEASE_SECONDS + 8, f"{took:.1f} s"
    assert "provision customer-01 succeeded" in out
    # The killed operation reads interrupted from both machines.
    killed = re.search(r"held by operation (\S+) ", out + err)
    assert killed is not None
    for root in (laptop_b, laptop_a):
        done = subprocess.run([sys.executable, "-c", SHIM, "-w", str(root), "ops", "--json"], capture_output=True,
                              text=True, env={**os.environ, **GIT_ENV, "PYTHONPATH": os.pathsep.join(sys.path)},
                              timeout=60)
        [row] = [row for row in json.loads(done.stdout) if row["id"] == killed.group(1)]
        assert (row["state"], row["user"], row["kind"]) == ("interrupted", "alice", "provision"), row


def test_a_provision_on_one_machine_is_followed_live_on_the_other(
        make_azure_workspace: Callable[..., Path], emulators: AzureEmulators,
        state_store: StateStoreFixture) -> None:
    laptop_a, laptop_b = (machine(make_azure_workspace, state_store, name) for name in ("laptop-a", "laptop-b"))
    emulators.arm_server.inject(Fault("latency", method="PUT", path="/containerApps/", seconds=3, count=1))
    running = orbit(laptop_a, "alice", emulators, "provision", "--all", "--yes")
    operations = BlobSharedOperations(StateContainer(state_store.settings))
    deadline = time.monotonic() + 30
    while not (rows := asyncio.run(operations.list_records())) or rows[0]["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    op_id = rows[0]["id"]
    follower = orbit(laptop_b, "bob", emulators, "logs", op_id, "--follow")
    out_b, err_b = follower.communicate(timeout=120)
    _, err_a = running.communicate(timeout=120)
    assert running.returncode == 0 and follower.returncode == 0, err_a + err_b
    replay = orbit(laptop_a, "alice", emulators, "logs", op_id)
    local, _ = replay.communicate(timeout=60)
    lines_b = [line for line in out_b.splitlines() if line[:2].isdigit() and line[2] == ":"]
    lines_a = [line for line in local.splitlines() if line[:2].isdigit() and line[2] == ":"]
    assert lines_b == lines_a and len(lines_a) > 10  # every line, in order, none twice
    assert "converged" in out_b


def test_a_lock_broken_mid_provision_stops_its_holder_before_its_next_platform_write(
        make_azure_workspace: Callable[..., Path], emulators: AzureEmulators,
        state_store: StateStoreFixture) -> None:
    laptop = machine(make_azure_workspace, state_store, "laptop-a")
    # The first app write is held up 3 s: the lock is broken while it is in flight.
    emulators.arm_server.inject(Fault("latency", method="PUT", path="/containerApps/", seconds=3, count=1))
    running = orbit(laptop, "alice", emulators, "provision", "customer-00", "--yes")
    locks = BlobLockStore(StateContainer(state_store.settings))
    deadline = time.monotonic() + 30
    while not [info for info in asyncio.run(locks.list_locks()) if info.state == "held"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    while not [r for r in emulators.arm_server.log if r.method == "PUT" and "/storages/" in r.path]:
        assert time.monotonic() < deadline  # the storages are written, the first app PUT is on its way
        time.sleep(0.05)
    time.sleep(0.5)
    asyncio.run(locks.break_lock("solution-customer-00", by="bob on laptop-b at now"))
    broken_at = time.monotonic()
    out, err = running.communicate(timeout=120)
    assert running.returncode == 1, out + err
    assert "lost solution customer-00" in out + err and "stopped before writing again" in out + err
    after = [r for r in [*emulators.arm_server.log, *emulators.files_server.log]
             if r.method in WRITE_METHODS and r.at > broken_at]
    # Only the write already in flight when the lease was broken lands (a fence cannot recall a sent request).
    assert [r.path.rsplit("/", 2)[-2] for r in after] == ["containerApps"], after
    assert len(writes_to(emulators, "customer-00")) < 8
