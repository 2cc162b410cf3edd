"""Locks as renewable blob leases on Azurite: waiters name the holder, dead holders free the lock, lost leases fence.

Each test has its own container; two ``BlobLockStore``s (or a subprocess) stand for two operators' machines.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from state_fixtures import LEASE_SECONDS, add_state
from support import MINIMAL_CONFIG

from orbit_ops.backends.azure.state_blobs import StateContainer
from orbit_ops.backends.azure.state_locks import AUDIT_BLOB, BlobLockStore
from orbit_ops.errors import LockLostError, LockTimeoutError, NotFoundError, RefusedError

if TYPE_CHECKING:
    from conftest import StateStoreFixture  # tests/azure/conftest.py

HOLDER = """
import asyncio, sys, time
from orbit_ops.backends.azure.state_blobs import StateContainer
from orbit_ops.backends.azure.state_locks import BlobLockStore
from orbit_ops.config.state import StateSettings

async def main():
    settings = StateSettings(store="azure-blob", account_url=sys.argv[1], container=sys.argv[2], lease_seconds=15)
    store = BlobLockStore(StateContainer(settings))
    async with store.hold("solution-acme", what="solution acme", op_id=sys.argv[3], kind="provision"):
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


def start_holder(state_store: StateStoreFixture, op_id: str, user: str) -> subprocess.Popen[bytes]:
    """Another machine's process holding ``solution-acme``'s lease, once it has printed ``held``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "LOGNAME": user}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, state_store.settings.account_url or "",
                               state_store.container, op_id], stdout=subprocess.PIPE, env=env, start_new_session=True)
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    return holder


def store_of(state_store: StateStoreFixture) -> BlobLockStore:
    return BlobLockStore(StateContainer(state_store.settings))


def test_a_waiter_names_the_holders_operation_and_user_then_gets_the_lock_on_release(
        state_store: StateStoreFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    machine_a, machine_b = store_of(state_store), store_of(state_store)
    monkeypatch.setenv("LOGNAME", "alice")
    messages: list[str] = []

    async def scenario() -> tuple[bool, float]:
        async with machine_a.hold("solution-acme", what="solution acme", op_id="20261202-060000-aaaa",
                                  kind="provision"):
            with pytest.raises(LockTimeoutError) as caught:
                async with machine_b.hold("solution-acme", what="solution acme", timeout=1.5,
                                          on_wait=messages.append, op_id="20261202-060001-bbbb", kind="roll"):
                    pass
            assert "operation 20261202-060000-aaaa (provision, alice, pid" in str(caught.value)
            assert "orbit cancel 20261202-060000-aaaa" in str(caught.value)

            async def waiter() -> tuple[bool, float]:
                async with machine_b.hold("solution-acme", what="solution acme", op_id="20261202-060001-bbbb",
                                          kind="roll") as lock:
                    return lock.waited, time.monotonic()

            task = asyncio.create_task(waiter())
            await asyncio.sleep(1.5)
        freed_at = time.monotonic()
        waited, got_at = await task
        return waited, got_at - freed_at

    waited, delay = asyncio.run(scenario())
    assert messages == [f"waiting for solution acme: held by operation 20261202-060000-aaaa (provision, alice, "
                        f"pid {os.getpid()} on {os.uname().nodename}, since {messages[0].split('since ')[1]}"]
    assert waited and delay < 3  # the release is seen at the waiter's next poll (once a second)


def test_a_killed_holder_frees_the_lock_within_one_lease_period(state_store: StateStoreFixture) -> None:
    holder = start_holder(state_store, "20261202-061500-kill", "carol")
    try:
        os.killpg(holder.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        holder.wait(timeout=10)
        messages: list[str] = []

        async def take() -> bool:
            async with store_of(state_store).hold("solution-acme", what="solution acme", on_wait=messages.append,
                                                  op_id="20261202-061501-next", kind="provision") as lock:
                return lock.waited

        waited = asyncio.run(take())
        freed_after = time.monotonic() - killed_at
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
    assert waited
    assert "held by operation 20261202-061500-kill (provision, carol" in messages[0]
    assert freed_after < LEASE_SECONDS + 3, f"took {freed_after:.1f} s"


def test_a_broken_lease_stops_its_holder_before_its_next_write_and_records_who_broke_it(
        state_store: StateStoreFixture) -> None:
    machine_a, machine_b = store_of(state_store), store_of(state_store)

    async def scenario() -> None:
        async with machine_a.hold("solution-acme", what="solution acme", op_id="20261202-062000-hold",
                                  kind="sweep") as lock:
            await lock.ensure()  # held: the write may go ahead
            [listed] = await machine_b.list_locks()
            assert (listed.scope, listed.state, listed.holder and listed.holder.op_id) == (
                "solution-acme", "held", "20261202-062000-hold")
            before = await machine_b.break_lock("solution-acme", by="bob on host-b at 2026-12-02T06:20:00Z")
            assert before.holder is not None and before.holder.op_id == "20261202-062000-hold"
            with pytest.raises(LockLostError) as caught:
                await lock.ensure()
            assert "lost solution acme" in str(caught.value) and "stopped before writing again" in str(caught.value)
            # Broken: another operation takes it at once, and the old holder's exit leaves it alone.
            async with machine_b.hold("solution-acme", what="solution acme", wait=False,
                                      op_id="20261202-062001-next"):
                pass
        [after] = await machine_b.list_locks()
        assert after.state == "free"

    asyncio.run(scenario())
    audit = store_of(state_store).container.blob(AUDIT_BLOB).download_blob().readall().decode()
    [entry] = [json.loads(line) for line in audit.splitlines()]
    assert entry["event"] == "lock-broken" and entry["scope"] == "solution-acme"
    assert entry["by"] == "bob on host-b at 2026-12-02T06:20:00Z"
    assert entry["holder"]["op_id"] == "20261202-062000-hold"


def test_the_lease_is_renewed_in_the_background_past_its_period(state_store: StateStoreFixture) -> None:
    machine_a, machine_b = store_of(state_store), store_of(state_store)

    async def scenario() -> None:
        async with machine_a.hold("build-agent", what="the build of agent", op_id="20261202-063000-long",
                                  kind="build") as lock:
            await asyncio.sleep(LEASE_SECONDS + 4)
            with pytest.raises(RefusedError) as caught:
                async with machine_b.hold("build-agent", what="the build of agent", wait=False):
                    pass
            assert "20261202-063000-long" in str(caught.value)
            await lock.ensure()

    asyncio.run(scenario())


def test_breaking_a_lock_that_does_not_exist_or_is_free_is_refused(state_store: StateStoreFixture) -> None:
    store = store_of(state_store)

    async def scenario() -> None:
        with pytest.raises(NotFoundError):
            await store.break_lock("solution-nowhere", by="bob")
        async with store.hold("solution-acme", what="solution acme"):
            pass
        with pytest.raises(RefusedError) as caught:
            await store.break_lock("solution-acme", by="bob")
        assert "not held" in str(caught.value)

    asyncio.run(scenario())


def test_orbit_locks_lists_the_teams_holders_and_break_asks_then_records_who(
        state_store: StateStoreFixture, make_workspace: Callable[..., Path],
        run_cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_workspace(config=MINIMAL_CONFIG)
    add_state(root, state_store.azurite, state_store.container)
    holder = start_holder(state_store, "20261202-064000-cli", "dave")
    try:
        code, out, err = run_cli("-w", str(root), "locks", "--json")
        assert code == 0, err
        [listed] = json.loads(out)
        assert {key: listed[key] for key in ("scope", "state", "op_id", "kind", "user", "pid")} == {
            "scope": "solution-acme", "state": "held", "op_id": "20261202-064000-cli", "kind": "provision",
            "user": "dave", "pid": holder.pid}
        assert listed["since"] < listed["expires"]
        code, out, err = run_cli("-w", str(root), "locks", "break", "solution-acme")
        assert code == 2 and "needs confirmation; pass --yes" in err  # no terminal to ask on
        monkeypatch.setenv("LOGNAME", "erin")
        code, out, err = run_cli("-w", str(root), "locks", "break", "solution-acme", "--yes")
        assert code == 0, err
        assert "broke solution-acme (it was held by operation 20261202-064000-cli (provision, dave" in out
        code, out, err = run_cli("-w", str(root), "locks", "--json")
        [listed] = json.loads(out)
        assert listed["state"] == "broken" and listed["broken_by"].startswith("erin on ")
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    assert "AccountKey" not in out + err and state_store.azurite.blob_endpoint in run_cli("-w", str(root), "locks")[1]


def test_orbit_locks_on_the_local_store_lists_flock_holders_and_refuses_to_break(
        make_workspace: Callable[..., Path], run_cli: Callable[..., tuple[int, str, str]]) -> None:
    from orbit_ops.operations.locks import held, lock_path

    root = make_workspace(config=MINIMAL_CONFIG)

    async def listing_while_held() -> tuple[int, str, str]:
        async with held(lock_path(root / ".orbit", "solution-acme"), what="solution acme",
                        op_id="20261202-065000-flck", kind="roll"):
            return await asyncio.to_thread(run_cli, "-w", str(root), "locks", "--json")

    code, out, err = asyncio.run(listing_while_held())
    assert code == 0, err
    [listed] = json.loads(out)
    assert (listed["scope"], listed["state"], listed["op_id"], listed["pid"]) == (
        "solution-acme", "held", "20261202-065000-flck", os.getpid())
    code, out, err = run_cli("-w", str(root), "locks", "--json")
    assert [entry["state"] for entry in json.loads(out)] == ["free"]
    code, out, err = run_cli("-w", str(root), "locks", "break", "solution-acme", "--yes")
    assert code == 2 and "is a flock" in err
