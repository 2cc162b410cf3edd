"""ConsoleRuns: operations started by the console run in their own tasks; followers read their events from the
operation's log (the store), never from the run's memory."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from orbit_ops.operations.events import LogLine, OperationFinished, OperationStarted
from orbit_ops.operations.log import follow
from orbit_ops.operations.runner import OperationRunner
from orbit_ops.operations.store import OperationStore
from orbit_tui.runs import ConsoleRun, ConsoleRuns


def _runner(store: OperationStore, release: asyncio.Event, lines: int = 3) -> OperationRunner:
    async def body(ctx: Any) -> dict[str, Any]:
        for index in range(lines):
            ctx.log(f"line {index}")
            if index == 0:
                await release.wait()
        return {}

    return OperationRunner(store, "build", "x@1.0.0", body)


async def test_every_follower_gets_every_event_in_order_even_when_it_joins_late(tmp_path: Path) -> None:
    store = OperationStore(tmp_path)
    release = asyncio.Event()
    ended: list[ConsoleRun] = []
    runs = ConsoleRuns()
    runs.on_finished = ended.append
    run = runs.start(_runner(store, release))

    async def collect() -> list[Any]:
        return [event async for event in follow(store, run.op_id, poll=0.01)]

    early = asyncio.create_task(collect())
    await asyncio.sleep(0)
    release.set()
    first = await early
    late = await collect()
    assert first == late
    assert isinstance(first[0], OperationStarted) and isinstance(first[-1], OperationFinished)
    assert [event.text for event in first if isinstance(event, LogLine)] == ["line 0", "line 1", "line 2"]
    assert ended == [run] and runs.active() == []


async def test_leaving_a_follower_does_not_stop_the_operation(tmp_path: Path) -> None:
    store = OperationStore(tmp_path)
    release = asyncio.Event()
    run = ConsoleRuns().start(_runner(store, release))
    waiter = asyncio.create_task(run.wait())
    follower = asyncio.create_task(anext(aiter(follow(store, run.op_id, poll=0.01))))
    await follower
    follower.cancel()
    waiter.cancel()  # what an exclusive worker replaced by the next one does to its wait
    release.set()
    assert await run.wait() is run.finished
    assert run.finished is not None and run.finished.state == "succeeded"


async def test_drain_cancelled_cancels_the_operations_and_reports_them(tmp_path: Path) -> None:
    store = OperationStore(tmp_path)
    runs = ConsoleRuns()
    run = runs.start(_runner(store, asyncio.Event()))
    said: list[str] = []
    drain = asyncio.create_task(runs.drain(said.append))
    await asyncio.sleep(0)
    drain.cancel()  # what Ctrl+C does to the process waiting for them
    with contextlib.suppress(asyncio.CancelledError):
        await drain
    assert run.finished is not None and run.finished.state == "cancelled"
    assert said[-1] == f"build x@1.0.0 cancelled · {run.op_id}"
    assert store.get(run.op_id).state == "cancelled"
