"""Operations and their logs shared through the state container on Azurite, seen from another machine.

Machine A runs operations through the ordinary runner on its own ``.orbit/`` with the store's mirror; machine B
(another folder, another process where it matters) reads the team's operations back: listed, replayed,
followed live, and an owner killed outright read as ``interrupted`` from both machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from state_fixtures import LEASE_SECONDS, add_state
from support import MINIMAL_CONFIG

from orbit_ops.backends.azure.state_blobs import StateContainer
from orbit_ops.backends.azure.state_mirror import BlobOperationMirror
from orbit_ops.backends.azure.state_operations import BlobSharedOperations
from orbit_ops.operations.events import LogLine, OperationFinished
from orbit_ops.operations.kinds import MemberState, OperationKind
from orbit_ops.operations.runner import OperationContext, OperationRunner
from orbit_ops.operations.store import OperationStore

if TYPE_CHECKING:
    from conftest import StateStoreFixture  # tests/azure/conftest.py

OWNER = """
import asyncio, sys
from orbit_ops.backends.azure.state_blobs import StateContainer
from orbit_ops.backends.azure.state_mirror import BlobOperationMirror
from orbit_ops.config.state import StateSettings
from orbit_ops.operations.kinds import MemberState, OperationKind
from orbit_ops.operations.runner import OperationRunner
from orbit_ops.operations.store import OperationStore

async def body(ctx):
    ctx.child("acme", MemberState.RUNNING)
    ctx.log("converging acme", child="acme")
    print(ctx.op_id, flush=True)
    await asyncio.sleep(3600)

async def main():
    settings = StateSettings(store="azure-blob", account_url=sys.argv[1], container=sys.argv[2], lease_seconds=15)
    store = OperationStore(sys.argv[3])
    store.mirror = BlobOperationMirror(StateContainer(settings))
    async for _ in OperationRunner(store, OperationKind.SWEEP, "acme", body, total=1).events():
        pass

asyncio.run(main())
"""


def machine_a(tmp_path: Path, state_store: StateStoreFixture) -> OperationStore:
    store = OperationStore(tmp_path / "a" / ".orbit")
    store.mirror = BlobOperationMirror(StateContainer(state_store.settings))
    return store


def machine_b(state_store: StateStoreFixture) -> BlobSharedOperations:
    return BlobSharedOperations(StateContainer(state_store.settings))


def texts(events: list[Any]) -> list[str]:
    return [event.text for event in events if isinstance(event, LogLine)]


def test_an_operation_is_listed_replayed_and_followed_live_from_another_machine(
        tmp_path: Path, state_store: StateStoreFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "alice")
    store, reader = machine_a(tmp_path, state_store), machine_b(state_store)
    go_on = asyncio.Event()

    async def body(ctx: OperationContext) -> dict[str, Any]:
        for index in range(300):
            ctx.log(f"line {index}")
            if index == 100:
                await go_on.wait()  # B is following by now
            if index % 50 == 0:
                await asyncio.sleep(0.05)
        ctx.child("acme", MemberState.SUCCEEDED, "in sync")
        ctx.progress(1, 1)
        return {"writes": 0}

    async def scenario() -> tuple[str, list[Any], list[Any]]:
        runner = OperationRunner(store, OperationKind.SWEEP, "acme", body, total=1)
        consumed = asyncio.create_task(_consume(runner))
        while True:  # B follows from the start while A is still running
            document = await reader.record(runner.op_id)
            if document is not None and document["state"] == "running":
                break
            await asyncio.sleep(0.05)
        followed: list[Any] = []

        async def follow() -> None:
            async with contextlib.aclosing(reader.follow(runner.op_id, poll=0.1)) as events:
                async for event in events:
                    followed.append(event)
                    if isinstance(event, LogLine) and event.text == "line 100":
                        go_on.set()

        await asyncio.wait_for(follow(), timeout=60)
        await consumed
        return runner.op_id, followed, await reader.read_events(runner.op_id)

    op_id, followed, replayed = asyncio.run(scenario())
    local = store.read_events(op_id)
    assert texts(followed) == [f"line {index}" for index in range(300)] == texts(local)  # in order, none twice
    assert texts(replayed) == texts(local)
    assert isinstance(followed[-1], OperationFinished) and followed[-1].state == "succeeded"
    [listed] = asyncio.run(reader.list_records())
    assert {key: listed[key] for key in ("id", "kind", "target", "state", "user", "host")} == {
        "id": op_id, "kind": "sweep", "target": "acme", "state": "succeeded", "user": "alice",
        "host": os.uname().nodename}
    assert listed["progress"] == {"done": 1, "total": 1}
    document = asyncio.run(reader.record(op_id[:12]))  # a unique prefix will do, as locally
    assert document is not None and document["result"] == {"writes": 0}
    assert document["children"] == {"acme": {"state": "succeeded", "message": "in sync"}}


async def _consume(runner: OperationRunner) -> None:
    async for _ in runner.events():
        pass


def test_a_killed_owner_reads_interrupted_from_both_machines_once_its_lease_expires(
        tmp_path: Path, state_store: StateStoreFixture) -> None:
    state_a = tmp_path / "a" / ".orbit"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "LOGNAME": "carol"}
    owner = subprocess.Popen([sys.executable, "-c", OWNER, state_store.settings.account_url or "",
                              state_store.container, str(state_a)], stdout=subprocess.PIPE, env=env,
                             start_new_session=True)
    assert owner.stdout is not None
    op_id = owner.stdout.readline().decode().strip()
    reader_b, reader_a = machine_b(state_store), machine_b(state_store)
    deadline = time.monotonic() + 20
    while asyncio.run(reader_b.record(op_id)) is None or "converging acme" not in texts(
            asyncio.run(reader_b.read_events(op_id))):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert asyncio.run(reader_b.record(op_id))["state"] == "running"  # type: ignore[index]
    os.killpg(owner.pid, signal.SIGKILL)
    owner.wait(timeout=10)
    killed_at = time.monotonic()
    while (document := asyncio.run(reader_b.record(op_id))) is not None and document["state"] == "running":
        assert time.monotonic() - killed_at < LEASE_SECONDS + 5, "still running a lease period after the kill"
        time.sleep(0.5)
    assert document is not None and document["state"] == "interrupted"
    assert "stopped renewing its lease" in document["error"] and "carol" in document["error"]
    assert document["children"]["acme"]["state"] == "interrupted"
    # Machine A sees the same: in the shared store, and in its own index (its process is gone).
    assert asyncio.run(reader_a.record(op_id))["state"] == "interrupted"  # type: ignore[index]
    with OperationStore(state_a) as local:
        assert local.get(op_id).state == "interrupted"
    events = asyncio.run(reader_b.read_events(op_id))
    closing = [event for event in events if isinstance(event, OperationFinished)]
    assert len(closing) == 1 and closing[0].state == "interrupted"  # written once, by the reader that won


def test_orbit_ops_and_logs_on_machine_b_show_machine_a_operation(
        tmp_path: Path, state_store: StateStoreFixture, make_workspace: Callable[..., Path],
        run_cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "dave")
    store = machine_a(tmp_path, state_store)

    async def body(ctx: OperationContext) -> None:
        ctx.log("built on machine a")

    async def run() -> str:
        runner = OperationRunner(store, OperationKind.BUILD, "agent@1.2.0", body, total=1)
        await _consume(runner)
        return runner.op_id

    op_id = asyncio.run(run())
    root_b = make_workspace(config=MINIMAL_CONFIG)
    add_state(root_b, state_store.azurite, state_store.container)
    code, out, err = run_cli("-w", str(root_b), "ops", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["id"], row["kind"], row["target"], row["state"], row["user"]) == (
        op_id, "build", "agent@1.2.0", "succeeded", "dave")
    code, out, err = run_cli("-w", str(root_b), "logs", op_id)
    assert code == 0, err
    assert "built on machine a" in out and "build agent@1.2.0 succeeded (started by dave on" in out
    code, out, err = run_cli("-w", str(root_b), "logs", op_id, "--follow")
    assert code == 0, err
    assert "built on machine a" in out
    code, out, err = run_cli("-w", str(root_b), "logs", "20990101-000000-0000")
    assert code == 2


def test_orbit_cancel_on_machine_b_stops_machine_a_operation(
        tmp_path: Path, state_store: StateStoreFixture, make_workspace: Callable[..., Path],
        run_cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "erin")
    store = machine_a(tmp_path, state_store)
    root_b = make_workspace(config=MINIMAL_CONFIG)
    add_state(root_b, state_store.azurite, state_store.container)
    cleaned: list[str] = []

    async def body(ctx: OperationContext) -> None:
        ctx.child("acme", MemberState.RUNNING)
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append("cleanup ran")

    async def scenario() -> tuple[str, tuple[int, str, str], float]:
        runner = OperationRunner(store, OperationKind.SWEEP, "acme", body, total=1)
        consumed = asyncio.create_task(_consume(runner))
        reader = machine_b(state_store)
        while (document := await reader.record(runner.op_id)) is None or document["state"] != "running":
            await asyncio.sleep(0.05)
        asked = await asyncio.to_thread(run_cli, "-w", str(root_b), "cancel", runner.op_id)
        asked_at = time.monotonic()
        await asyncio.wait_for(consumed, timeout=30)
        return runner.op_id, asked, time.monotonic() - asked_at

    op_id, (code, out, err), took = asyncio.run(scenario())
    assert code == 0, err
    assert f"cancel requested for {op_id} (sweep acme, running, on {os.uname().nodename})" in out
    assert cleaned == ["cleanup ran"] and took < 10
    assert store.get(op_id).state == "cancelled"
    [row] = json.loads(run_cli("-w", str(root_b), "ops", "--json")[1])
    assert (row["id"], row["state"]) == (op_id, "cancelled")
    code, out, err = run_cli("-w", str(root_b), "cancel", op_id)
    assert code == 2 and "already cancelled" in err
