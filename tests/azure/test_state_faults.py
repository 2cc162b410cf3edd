"""The shared state store through a proxy that fails 30% of requests: 503, 429, and writes whose answer is lost.

Nothing may be lost or written twice: every event of an operation reaches the shared log exactly once, in order,
and is followed so by another machine reading through the same faults; locks still exclude each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from emulators.azurite import ACCOUNT
from emulators.blob_proxy import FaultyBlobProxy

from orbit_ops.backends.azure import state_blobs
from orbit_ops.backends.azure.state_blobs import StateContainer
from orbit_ops.backends.azure.state_locks import BlobLockStore
from orbit_ops.backends.azure.state_mirror import BlobOperationMirror
from orbit_ops.backends.azure.state_operations import BlobSharedOperations
from orbit_ops.config.state import StateSettings
from orbit_ops.operations.events import ChildChanged, LogLine, OperationFinished
from orbit_ops.operations.kinds import MemberState, OperationKind
from orbit_ops.operations.runner import OperationContext, OperationRunner
from orbit_ops.operations.store import OperationStore

if TYPE_CHECKING:
    from conftest import StateStoreFixture  # tests/azure/conftest.py


@pytest.fixture
def faulty(state_store: StateStoreFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FaultyBlobProxy,
                                                                                               StateSettings]]:
    """The store's settings through a proxy failing 30% of requests; retries fast and many (the odds of one
    call failing every attempt stay below one in 10^12)."""
    monkeypatch.setattr(state_blobs, "ATTEMPTS", 25)
    monkeypatch.setattr(state_blobs, "FIRST_BACKOFF", 0.005)
    monkeypatch.setattr(state_blobs, "MAX_BACKOFF", 0.05)
    proxy = FaultyBlobProxy(state_store.azurite.url, fault_rate=0.3)
    try:
        yield proxy, dataclasses.replace(state_store.settings, account_url=f"{proxy.url}/{ACCOUNT}")
    finally:
        proxy.stop()


def test_every_event_reaches_the_shared_log_exactly_once_and_is_followed_so_through_faults(
        tmp_path: Path, state_store: StateStoreFixture, faulty: tuple[FaultyBlobProxy, StateSettings]) -> None:
    proxy, settings = faulty
    store = OperationStore(tmp_path / "a" / ".orbit")
    store.mirror = BlobOperationMirror(StateContainer(settings))
    follower = BlobSharedOperations(StateContainer(settings))  # machine B, through the same faults
    clean = BlobSharedOperations(StateContainer(state_store.settings))

    async def body(ctx: OperationContext) -> dict[str, Any]:
        for index in range(400):
            ctx.log(f"line {index}", child=f"s{index % 8}")
            if index % 8 == 7:
                ctx.child(f"s{index // 8 % 8}", MemberState.SUCCEEDED)
            if index % 20 == 0:
                await asyncio.sleep(0.15)  # a batch each, so hundreds of appends meet the faults
        return {"lines": 400}

    async def scenario() -> tuple[str, list[Any]]:
        runner = OperationRunner(store, OperationKind.SWEEP, "fleet", body, total=8)

        async def consume() -> None:
            async for _ in runner.events():
                pass

        consumed = asyncio.create_task(consume())
        while await clean.record(runner.op_id) is None:
            await asyncio.sleep(0.05)
        followed: list[Any] = []
        async with contextlib.aclosing(follower.follow(runner.op_id, poll=0.05)) as events:
            async for event in events:
                followed.append(event)
        await consumed
        return runner.op_id, followed

    op_id, followed = asyncio.run(asyncio.wait_for(scenario(), timeout=240))
    expected = [f"line {index}" for index in range(400)]
    local = store.read_events(op_id)
    stored = asyncio.run(clean.read_events(op_id))
    assert [e.text for e in stored if isinstance(e, LogLine)] == expected  # exactly once each, in order
    assert [e.text for e in followed if isinstance(e, LogLine)] == expected
    assert [e for e in stored if isinstance(e, ChildChanged)] == [e for e in local if isinstance(e, ChildChanged)]
    assert len(stored) == len(local) and isinstance(stored[-1], OperationFinished)
    document = asyncio.run(clean.record(op_id))
    assert document is not None and document["state"] == "succeeded" and document["result"] == {"lines": 400}
    faults = proxy.counts["drop"] + proxy.counts["503"] + proxy.counts["429"]
    assert faults >= 20 and min(proxy.counts["drop"], proxy.counts["503"], proxy.counts["429"]) >= 3, proxy.counts


def test_locks_exclude_each_other_through_faults(faulty: tuple[FaultyBlobProxy, StateSettings]) -> None:
    proxy, settings = faulty
    machines = [BlobLockStore(StateContainer(settings)) for _ in range(2)]
    inside: list[str] = []
    overlaps: list[list[str]] = []

    async def operator(index: int) -> None:
        for turn in range(6):
            op_id = f"20261202-07{index}{turn}00-00{index}{turn}"
            async with machines[index].hold("solution-acme", what="solution acme", op_id=op_id) as lock:
                inside.append(op_id)
                if len(inside) > 1:
                    overlaps.append(list(inside))
                await lock.ensure()
                await asyncio.sleep(0.05)
                inside.remove(op_id)

    async def scenario() -> None:
        await asyncio.gather(operator(0), operator(1))

    asyncio.run(asyncio.wait_for(scenario(), timeout=240))
    assert overlaps == []
    assert sum(proxy.counts.values()) > 50 and proxy.counts["drop"] > 0, proxy.counts
