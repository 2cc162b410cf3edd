"""Operations: event streams that persist, survive restarts, and can be followed and cancelled elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orbit_ops.errors import BackendError, BuildError, NotFoundError, RefusedError
from orbit_ops.operations.events import (
    ChildChanged,
    Event,
    LogLine,
    OperationFinished,
    OperationStarted,
    ProgressChanged,
    from_json,
    to_json,
)
from orbit_ops.operations.log import follow
from orbit_ops.operations.records import utc_now
from orbit_ops.operations.runner import FLUSH_EVENTS, OperationContext, OperationRunner, run_operation
from orbit_ops.operations.store import OperationStore
from orbit_ops.redact import clear_registered_secrets, register_secret

ROOT = Path(__file__).parents[2]
SAS_URL = "https://orbitacr.blob.core.windows.net/logs/run-7.log?sv=2022-11-02&se=2030-01-01&sr=b&sp=r&sig=Zx%2Fq%3D"
TIMEOUT = 20.0

# A separate process that runs a sweep-like operation until it is cancelled or killed; it prints the
# operation id once started and the final state at the end.
WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from orbit_ops.operations.runner import run_operation
    from orbit_ops.operations.store import OperationStore

    async def body(ctx):
        ctx.child("acme-corp", "running")
        ctx.child("globex", "succeeded", "nothing to do")
        try:
            tick = 0
            while True:
                ctx.log(f"tick {tick}", child="acme-corp")
                ctx.progress(tick, 0)
                tick += 1
                await asyncio.sleep(0.02)
        finally:
            ctx.log("cleaned up")

    async def main():
        store = OperationStore(Path(sys.argv[1]))
        last = None
        async for event in run_operation(store, "sweep", "2 solutions", body):
            if last is None:
                print(event.op_id, flush=True)
            last = event
        print(last.state, flush=True)

    asyncio.run(main())
    """
)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / ".orbit"


@pytest.fixture
def store(state_dir: Path) -> Iterator[OperationStore]:
    with OperationStore(state_dir) as opened:
        yield opened


@pytest.fixture
def worker(tmp_path: Path, state_dir: Path) -> Iterator[subprocess.Popen[str]]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=TIMEOUT)


def read_op_id(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, proc.stderr.read() if proc.stderr else "worker printed nothing"
    return line


async def collect(stream: AsyncIterator[Event]) -> list[Event]:
    async def drain() -> list[Event]:
        return [event async for event in stream]

    return await asyncio.wait_for(drain(), TIMEOUT)


def stamp(event: Event) -> str:
    assert isinstance(event, OperationStarted | LogLine | OperationFinished)
    return event.at


def logged_events(store: OperationStore, op_id: str) -> list[Event]:
    lines = store.log_path(op_id).read_text().splitlines()
    return [from_json(json.loads(line)) for line in lines]


async def reporting_body(ctx: OperationContext) -> dict[str, Any]:
    ctx.log("packing context")
    ctx.progress(1, 3)
    ctx.child("acme-corp", "running")
    await asyncio.sleep(0)
    ctx.child("acme-corp", "succeeded", "2 writes")
    ctx.progress(3)
    return {"digest": "sha256:" + "ab" * 32}


# -- lifecycle --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_successful_operation_streams_persisted_events_in_order(store: OperationStore) -> None:
    events = await collect(run_operation(store, "build", "agent@2.1.0", reporting_body))

    op_id = events[0].op_id
    assert [type(e) for e in events] == [
        OperationStarted,
        LogLine,
        ProgressChanged,
        ChildChanged,
        ChildChanged,
        ProgressChanged,
        OperationFinished,
    ]
    assert events[0] == OperationStarted(op_id, "build", "agent@2.1.0", stamp(events[0]))
    assert events[-1] == OperationFinished(
        op_id, "succeeded", stamp(events[-1]), None, {"digest": "sha256:" + "ab" * 32}
    )
    assert events[5] == ProgressChanged(op_id, 3, 3)
    assert logged_events(store, op_id) == events

    record = store.get(op_id)
    assert (record.state, record.done, record.total, record.error) == ("succeeded", 3, 3, None)
    assert record.result == {"digest": "sha256:" + "ab" * 32}
    assert record.children["acme-corp"].state == "succeeded"
    assert record.children["acme-corp"].message == "2 writes"
    assert record.created_at <= (record.started_at or "") <= (record.finished_at or "")
    assert record.finished_at == events[-1].at


@pytest.mark.asyncio
async def test_orbit_error_fails_the_operation_with_its_message(store: OperationStore) -> None:
    async def body(ctx: OperationContext) -> None:
        ctx.log("step 1/3")
        raise BuildError("step 2/3 failed: COPY failed: file not found in build context: app.py")

    events = await collect(run_operation(store, "build", "agent@2.1.0", body))

    finished = events[-1]
    assert isinstance(finished, OperationFinished)
    assert finished.state == "failed"
    assert finished.error == "step 2/3 failed: COPY failed: file not found in build context: app.py"
    assert store.get(finished.op_id).error == finished.error


@pytest.mark.asyncio
async def test_unexpected_exception_fails_with_a_short_redacted_message_and_no_traceback(
    store: OperationStore,
) -> None:
    async def body(ctx: OperationContext) -> None:
        raise ConnectionError(f"upload to {SAS_URL} reset by peer")

    events = await collect(run_operation(store, "build", "agent@2.1.0", body))

    finished = events[-1]
    assert isinstance(finished, OperationFinished)
    assert finished.error == (
        "ConnectionError: upload to https://orbitacr.blob.core.windows.net/logs/run-7.log?<redacted>"
        " reset by peer"
    )
    log = store.log_path(finished.op_id).read_text()
    assert "Traceback" not in log
    assert "sig=" not in log


@pytest.mark.asyncio
async def test_body_returning_something_other_than_a_dict_fails(store: OperationStore) -> None:
    async def body(ctx: OperationContext) -> Any:
        return ["not", "a", "dict"]

    events = await collect(run_operation(store, "build", "agent@2.1.0", body))

    assert events[-1] == OperationFinished(
        events[0].op_id, "failed", stamp(events[-1]), "the operation returned list, not a dict"
    )


@pytest.mark.asyncio
async def test_multiline_text_becomes_one_log_line_each_and_threads_may_log(store: OperationStore) -> None:
    async def body(ctx: OperationContext) -> None:
        ctx.log("first\nsecond\r\n")
        await asyncio.to_thread(ctx.log, "from a worker thread", "acme-corp")
        await asyncio.sleep(0.05)

    events = await collect(run_operation(store, "provision", "acme-corp", body))

    lines = [(e.text, e.child) for e in events if isinstance(e, LogLine)]
    assert lines == [("first", None), ("second", None), ("from a worker thread", "acme-corp")]


# -- cancellation -----------------------------------------------------------------------------


def cancellable_body(started: asyncio.Event, cleaned: list[str]) -> Any:
    async def body(ctx: OperationContext) -> None:
        try:
            ctx.log("waiting for the remote run")
            started.set()
            await asyncio.sleep(3600)
        finally:
            ctx.log("removed the worktree")
            cleaned.append(ctx.op_id)

    return body


@pytest.mark.asyncio
async def test_leaving_the_stream_cancels_the_body_and_runs_its_cleanup(store: OperationStore) -> None:
    started, cleaned = asyncio.Event(), list[str]()
    stream = run_operation(store, "build", "agent@2.1.0", cancellable_body(started, cleaned))
    async with contextlib.aclosing(stream):
        async for event in stream:
            if isinstance(event, LogLine):
                break

    op_id = event.op_id
    assert cleaned == [op_id]
    record = store.get(op_id)
    assert record.state == "cancelled"
    logged = logged_events(store, op_id)
    assert [e.text for e in logged if isinstance(e, LogLine)] == [
        "waiting for the remote run",
        "removed the worktree",
    ]
    assert isinstance(logged[-1], OperationFinished)
    assert logged[-1].state == "cancelled"


@pytest.mark.asyncio
async def test_cancelling_the_consuming_task_records_cancelled(store: OperationStore) -> None:
    started, cleaned = asyncio.Event(), list[str]()
    runner = OperationRunner(store, "build", "agent@2.1.0", cancellable_body(started, cleaned))
    consumer = asyncio.create_task(collect(runner.events()))
    await asyncio.wait_for(started.wait(), TIMEOUT)

    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer

    assert cleaned == [runner.op_id]
    assert store.get(runner.op_id).state == "cancelled"


@pytest.mark.asyncio
async def test_in_process_cancel_of_a_handle_ends_the_stream_cancelled(store: OperationStore) -> None:
    started, cleaned = asyncio.Event(), list[str]()
    runner = OperationRunner(store, "build", "agent@2.1.0", cancellable_body(started, cleaned))
    assert store.get(runner.op_id).state == "queued"

    events: list[Event] = []
    async for event in runner.events():
        events.append(event)
        if isinstance(event, LogLine) and event.text == "waiting for the remote run":
            runner.cancel()

    assert isinstance(events[-1], OperationFinished)
    assert events[-1].state == "cancelled"
    assert [e.text for e in events if isinstance(e, LogLine)][-1] == "removed the worktree"
    assert cleaned == [runner.op_id]


@pytest.mark.asyncio
async def test_cancel_requested_through_another_store_instance_stops_the_body(
    store: OperationStore, state_dir: Path
) -> None:
    started, cleaned = asyncio.Event(), list[str]()
    runner = OperationRunner(store, "build", "agent@2.1.0", cancellable_body(started, cleaned))
    consumer = asyncio.create_task(collect(runner.events()))
    await asyncio.wait_for(started.wait(), TIMEOUT)

    with OperationStore(state_dir) as other:
        requested = other.request_cancel(runner.op_id[:-1])
    assert requested.cancel_requested and requested.state == "running"

    events = await consumer
    assert isinstance(events[-1], OperationFinished)
    assert events[-1].state == "cancelled"
    assert cleaned == [runner.op_id]


@pytest.mark.asyncio
async def test_cancel_request_reaches_a_busy_body_whose_consumer_never_catches_up(
    store: OperationStore, state_dir: Path
) -> None:
    async def chatty(ctx: OperationContext) -> None:
        while True:
            ctx.log("still going")
            await asyncio.sleep(0)

    runner = OperationRunner(store, "build", "agent@2.1.0", chatty)
    with OperationStore(state_dir) as other:
        other.request_cancel(runner.op_id)
    count, last = 0, None
    async for event in runner.events():
        count, last = count + 1, event
        assert count < 200_000, "the cancel request was never seen"
        await asyncio.sleep(0)

    assert isinstance(last, OperationFinished) and last.state == "cancelled"


@pytest.mark.asyncio
async def test_cancelling_a_finished_operation_is_refused_with_its_state(store: OperationStore) -> None:
    events = await collect(run_operation(store, "build", "agent@2.1.0", reporting_body))

    with pytest.raises(RefusedError, match=f"operation {events[0].op_id} already succeeded"):
        store.request_cancel(events[0].op_id)


# -- persistence, lookup, listing -------------------------------------------------------------


@pytest.mark.asyncio
async def test_operations_survive_a_new_store_instance(store: OperationStore, state_dir: Path) -> None:
    events = await collect(run_operation(store, "build", "agent@2.1.0", reporting_body))
    store.close()

    with OperationStore(state_dir) as reopened:
        record = reopened.get(events[0].op_id)
        assert record.state == "succeeded"
        assert record.result == {"digest": "sha256:" + "ab" * 32}
        assert reopened.read_events(record.id) == events


def make_ids(store: OperationStore, count: int) -> list[str]:
    async def noop(ctx: OperationContext) -> None:
        return None

    async def run_all() -> list[str]:
        ids = []
        for index in range(count):
            events = await collect(
                run_operation(store, "provision" if index % 2 else "build", f"t{index}", noop)
            )
            ids.append(events[0].op_id)
        return ids

    return asyncio.run(run_all())


def test_ids_are_short_unique_and_time_sortable(store: OperationStore) -> None:
    ids = make_ids(store, 30)

    assert len(set(ids)) == 30
    assert all(len(op_id) == 20 and op_id[8] == "-" and op_id[15] == "-" for op_id in ids)
    assert [op_id[:15] for op_id in ids] == sorted(op_id[:15] for op_id in ids)


def test_list_is_newest_first_and_filters_by_kind(store: OperationStore) -> None:
    ids = make_ids(store, 6)

    assert [r.id for r in store.list()] == list(reversed(ids))
    assert [r.id for r in store.list(limit=2)] == list(reversed(ids))[:2]
    assert [r.target for r in store.list(kind="build")] == ["t4", "t2", "t0"]
    assert store.list(kind="roll") == []


def test_get_by_unique_prefix(store: OperationStore) -> None:
    op_id = make_ids(store, 1)[0]

    assert store.get(op_id).id == op_id
    assert store.get(op_id[:10].upper()).id == op_id


def test_ambiguous_prefix_lists_the_candidates(store: OperationStore) -> None:
    ids = make_ids(store, 3)

    with pytest.raises(NotFoundError, match="ambiguous") as caught:
        store.get(ids[0][:4])
    assert all(op_id in str(caught.value) for op_id in ids)


def test_unknown_id_names_recent_operations(store: OperationStore) -> None:
    op_id = make_ids(store, 1)[0]

    with pytest.raises(
        NotFoundError, match=f"no operation matches '19990101' \\(recent operations: {op_id}\\)"
    ):
        store.get("19990101")


@pytest.mark.parametrize("ref", ["no such op", "*", "", "20261124%"])
def test_malformed_id_is_not_found_with_the_id_shape(store: OperationStore, ref: str) -> None:
    with pytest.raises(NotFoundError, match="ids look like"):
        store.get(ref)


def test_to_json_has_the_spec_keys_and_the_extras(store: OperationStore) -> None:
    op_id = make_ids(store, 1)[0]

    data = store.get(op_id).to_json()

    assert {"id", "kind", "target", "state", "progress", "created_at", "finished_at"} <= data.keys()
    assert {"started_at", "error", "result", "pid", "children"} <= data.keys()
    assert data["progress"] == {"done": 0, "total": 0}
    assert data["state"] == "succeeded" and data["kind"] == "build" and data["target"] == "t0"
    for stamp in ("created_at", "started_at", "finished_at"):
        assert data[stamp].endswith("Z") and data[stamp][10] == "T"
    json.dumps(data)


def test_concurrent_processes_create_operations_safely(tmp_path: Path, state_dir: Path) -> None:
    script = tmp_path / "many.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, sys
            from pathlib import Path
            from orbit_ops.operations.runner import run_operation
            from orbit_ops.operations.store import OperationStore

            async def body(ctx):
                ctx.progress(1, 1)

            async def main():
                store = OperationStore(Path(sys.argv[1]))
                for _ in range(15):
                    async for _event in run_operation(store, "provision", "x", body):
                        pass

            asyncio.run(main())
            """
        )
    )
    procs = [subprocess.Popen([sys.executable, str(script), str(state_dir)], cwd=ROOT) for _ in range(3)]
    assert [proc.wait(timeout=60) for proc in procs] == [0, 0, 0]

    with OperationStore(state_dir) as store:
        records = store.list()
    assert len({r.id for r in records}) == 45
    assert {(r.state, r.done) for r in records} == {("succeeded", 1)}


# -- liveness ---------------------------------------------------------------------------------


def test_operation_of_a_killed_process_is_reported_interrupted(
    worker: subprocess.Popen[str], state_dir: Path
) -> None:
    op_id = read_op_id(worker)
    with OperationStore(state_dir) as store:
        deadline = time.monotonic() + TIMEOUT
        while store.get(op_id).done < 1:  # the body is well under way
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert store.get(op_id).state == "running"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=TIMEOUT)

        listed = store.list()[0]
        record = store.get(op_id)

    assert listed.state == record.state == "interrupted"
    assert record.error is not None and f"its process ({worker.pid} on" in record.error
    assert record.finished_at is not None
    assert record.children["acme-corp"].state == "interrupted"
    assert record.children["globex"].state == "succeeded"
    finished = [e for e in logged_events(store, op_id) if isinstance(e, OperationFinished)]
    assert [e.state for e in finished] == ["interrupted"]


def fabricate_running(store: OperationStore, **columns: Any) -> str:
    """A running operation owned by whatever ``columns`` say (pid, pid_started, host)."""
    runner = OperationRunner(store, "build", "agent@2.1.0", reporting_body)
    assignments = ", ".join(f"{name} = ?" for name in columns)
    with sqlite3.connect(store.path) as conn:
        conn.execute(
            f"UPDATE operations SET state = 'running', {assignments} WHERE id = ?",
            (*columns.values(), runner.op_id),
        )
    return runner.op_id


def test_running_row_of_a_dead_pid_is_interrupted(store: OperationStore) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()

    op_id = fabricate_running(store, pid=gone.pid)

    assert store.get(op_id).state == "interrupted"


def test_reused_pid_with_another_start_time_is_interrupted(store: OperationStore) -> None:
    op_id = fabricate_running(store, pid=os.getppid(), pid_started="1")

    assert store.get(op_id).state == "interrupted"


def test_operation_owned_by_another_host_is_left_alone(store: OperationStore) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()

    op_id = fabricate_running(store, pid=gone.pid, host="some-other-host")

    assert store.get(op_id).state == "running"


def test_queued_operation_abandoned_in_this_process_is_interrupted(store: OperationStore) -> None:
    runner = OperationRunner(store, "build", "agent@2.1.0", reporting_body)
    op_id = runner.op_id
    assert store.get(op_id).state == "queued"

    del runner

    record = store.get(op_id)
    assert record.state == "interrupted"
    assert record.error is not None and "abandoned" in record.error


# -- batching ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_sweep_of_many_children_stores_every_last_state_in_first_seen_order(
    store: OperationStore, state_dir: Path
) -> None:
    names = [f"solution-{index:04d}" for index in range(FLUSH_EVENTS * 2 + 7)]

    async def body(ctx: OperationContext) -> dict[str, Any]:
        for name in names:
            ctx.child(name, "queued")
        for done, name in enumerate(reversed(names), 1):
            ctx.child(name, "running")
            ctx.log("in sync: nothing to do", child=name)
            ctx.child(name, "succeeded", "in sync")
            ctx.progress(done, len(names))
        return {"solutions": len(names)}

    events = await collect(run_operation(store, "sweep", "all solutions", body))

    assert logged_events(store, events[0].op_id) == events
    with OperationStore(state_dir) as other:
        record = other.get(events[0].op_id)
    assert list(record.children) == names
    assert {child.state for child in record.children.values()} == {"succeeded"}
    assert (record.done, record.total, record.state) == (len(names), len(names), "succeeded")


@pytest.mark.asyncio
async def test_a_body_that_never_yields_is_stored_in_batches_while_it_runs(
    store: OperationStore, state_dir: Path
) -> None:
    seen_by_others: list[tuple[int, int]] = []

    async def body(ctx: OperationContext) -> None:
        for index in range(FLUSH_EVENTS + 1):
            ctx.child(f"s{index}", "succeeded")
        # No await since the start: only the size of the batch can have stored it.
        with OperationStore(state_dir) as other:
            children = len(other.get(ctx.op_id).children)
        lines = len(store.log_path(ctx.op_id).read_text().splitlines())
        seen_by_others.append((children, lines))

    await collect(run_operation(store, "sweep", "all solutions", body))

    children, lines = seen_by_others[0]
    assert children >= FLUSH_EVENTS  # index first...
    assert lines >= FLUSH_EVENTS  # ...then the log, before the consumer saw any of it


@pytest.mark.asyncio
async def test_a_batch_reaches_a_follower_while_body_and_consumer_both_wait(
    store: OperationStore, state_dir: Path
) -> None:
    release = asyncio.Event()

    async def body(ctx: OperationContext) -> None:
        ctx.log("waiting for the remote run")
        await release.wait()

    stream = run_operation(store, "build", "agent@2.1.0", body)
    started = await asyncio.wait_for(anext(stream), TIMEOUT)  # then the consumer looks away
    async def first_line(other: OperationStore) -> LogLine:
        async with contextlib.aclosing(follow(other, started.op_id, poll=0.01)) as follower:
            async for event in follower:
                if isinstance(event, LogLine):
                    return event
        raise AssertionError("the operation ended without a log line")

    with OperationStore(state_dir) as other:
        line = await asyncio.wait_for(first_line(other), TIMEOUT)
    assert line.text == "waiting for the remote run"
    release.set()
    rest = await collect(stream)
    assert [type(e) for e in rest] == [LogLine, OperationFinished]


def test_a_finished_event_abbreviates_a_large_result_in_its_repr() -> None:
    small = OperationFinished("id", "succeeded", "2026-01-01T00:00:00.000Z", None, {"writes": 0})
    large = OperationFinished("id", "succeeded", "2026-01-01T00:00:00.000Z", None,
                              {"solutions": [{"id": f"s{i}", "actions": []} for i in range(1000)], "writes": 0})

    assert repr(small) == ("OperationFinished(op_id='id', state='succeeded', at='2026-01-01T00:00:00.000Z', "
                           "error=None, result={'writes': 0})")
    assert len(repr(large)) < 400 and "..." in repr(large)


# -- following --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_follow_from_a_second_store_sees_events_in_order_while_they_are_written(
    store: OperationStore, state_dir: Path
) -> None:
    step = asyncio.Event()
    follower_saw: list[Event] = []

    async def body(ctx: OperationContext) -> dict[str, Any]:
        for index in range(5):
            ctx.log(f"line {index}")
            step.clear()
            await asyncio.wait_for(step.wait(), TIMEOUT)  # until the follower has seen it
        return {"lines": 5}

    runner = OperationRunner(store, "build", "agent@2.1.0", body)
    producer = asyncio.create_task(collect(runner.events()))
    with OperationStore(state_dir) as other:
        async for event in follow(other, runner.op_id, poll=0.01):
            follower_saw.append(event)
            if isinstance(event, LogLine):
                step.set()

    produced = await producer
    assert follower_saw == produced
    assert [e.text for e in follower_saw if isinstance(e, LogLine)] == [f"line {i}" for i in range(5)]


@pytest.mark.asyncio
async def test_follow_waits_for_a_partial_last_line_to_be_completed(store: OperationStore) -> None:
    async def never_run(ctx: OperationContext) -> None:
        return None

    runner = OperationRunner(store, "build", "agent@2.1.0", never_run)  # keeps the op alive, queued
    log = store.log_path(runner.op_id)
    first = json.dumps(to_json(LogLine(runner.op_id, "2026-01-01T00:00:00.000Z", "one"))) + "\n"
    second = json.dumps(to_json(LogLine(runner.op_id, "2026-01-01T00:00:01.000Z", "two")))
    finished = (
        json.dumps(to_json(OperationFinished(runner.op_id, "succeeded", "2026-01-01T00:00:02.000Z"))) + "\n"
    )
    log.write_text(first + second[:25])

    stream = follow(store, runner.op_id, poll=0.01)
    assert await asyncio.wait_for(anext(stream), TIMEOUT) == LogLine(
        runner.op_id, "2026-01-01T00:00:00.000Z", "one"
    )
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.1)
    assert not pending.done()

    with log.open("a") as handle:
        handle.write(second[25:] + "\n" + finished)
    assert await asyncio.wait_for(pending, TIMEOUT) == LogLine(
        runner.op_id, "2026-01-01T00:00:01.000Z", "two"
    )
    assert isinstance(await asyncio.wait_for(anext(stream), TIMEOUT), OperationFinished)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


@pytest.mark.asyncio
async def test_follow_from_now_on_a_finished_operation_yields_only_its_end(store: OperationStore) -> None:
    events = await collect(run_operation(store, "build", "agent@2.1.0", reporting_body))

    assert await collect(follow(store, events[0].op_id, from_start=False)) == [events[-1]]


@pytest.mark.asyncio
async def test_follow_and_cancel_an_operation_running_in_another_process(
    worker: subprocess.Popen[str], state_dir: Path
) -> None:
    op_id = await asyncio.to_thread(read_op_id, worker)
    seen: list[Event] = []
    with OperationStore(state_dir) as store:
        async for event in follow(store, op_id, poll=0.02):
            seen.append(event)
            if isinstance(event, LogLine) and event.text == "tick 3":
                store.request_cancel(op_id)
            assert len(seen) < 5000, "the worker did not stop"

    out, _err = await asyncio.to_thread(worker.communicate, timeout=TIMEOUT)
    assert out.strip() == "cancelled"
    assert isinstance(seen[0], OperationStarted)
    ticks = [e.text for e in seen if isinstance(e, LogLine) and e.child == "acme-corp"]
    assert ticks == [f"tick {i}" for i in range(len(ticks))] and len(ticks) >= 4
    assert [e.text for e in seen if isinstance(e, LogLine)][-1] == "cleaned up"
    assert isinstance(seen[-1], OperationFinished) and seen[-1].state == "cancelled"


@pytest.mark.asyncio
async def test_follow_ends_when_the_owner_process_dies(
    worker: subprocess.Popen[str], state_dir: Path
) -> None:
    op_id = await asyncio.to_thread(read_op_id, worker)
    with OperationStore(state_dir) as store:
        stream = follow(store, op_id, poll=0.02)
        await asyncio.wait_for(anext(stream), TIMEOUT)
        worker.kill()
        await asyncio.to_thread(worker.wait, TIMEOUT)
        rest = await collect(stream)

    assert isinstance(rest[-1], OperationFinished)
    assert rest[-1].state == "interrupted"


# -- secrets ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_secrets_reach_neither_the_stream_nor_the_files(store: OperationStore, state_dir: Path) -> None:
    account_key = "c3RvcmFnZS1hY2NvdW50LWtleS0xMjM0NTY3ODkw"
    register_secret(account_key)
    try:

        async def body(ctx: OperationContext) -> dict[str, Any]:
            ctx.log(f"streaming log from {SAS_URL}")
            ctx.child("acme-corp", "failed", f"mount with key {account_key} refused")
            return {"log_url": SAS_URL, "note": f"key={account_key}"}

        events = await collect(run_operation(store, "build", f"agent@2.1.0 {account_key}", body))
        store.close()
    finally:
        clear_registered_secrets()

    line = next(e for e in events if isinstance(e, LogLine))
    assert line.text == "streaming log from https://orbitacr.blob.core.windows.net/logs/run-7.log?<redacted>"
    for path in state_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"Zx%2Fq" not in data and account_key.encode() not in data, path
    assert "Zx%2Fq" not in repr(events) and account_key not in repr(events)


# -- event format -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        OperationStarted("id", "build", "agent@2.1.0", "2026-01-01T00:00:00.000Z"),
        LogLine("id", "2026-01-01T00:00:00.000Z", "text", None),
        LogLine("id", "2026-01-01T00:00:00.000Z", "text", "acme-corp"),
        ProgressChanged("id", 3, 12),
        ChildChanged("id", "acme-corp", "failed", "quota"),
        OperationFinished("id", "failed", "2026-01-01T00:00:00.000Z", "boom", None),
        OperationFinished("id", "succeeded", "2026-01-01T00:00:00.000Z", None, {"writes": 2}),
    ],
)
def test_events_round_trip_through_json(event: Event) -> None:
    data = to_json(event)
    assert from_json(json.loads(json.dumps(data))) == event


@pytest.mark.parametrize(
    "data",
    [
        {"type": "nope"},
        {"type": "log", "op_id": "x"},
        {"type": "progress", "op_id": "x", "done": "1", "total": 2},
        {"type": "started", "op_id": "x", "kind": "deploy", "target": "t", "at": "t"},
        {"type": "child", "op_id": "x", "child": "acme-corp", "state": "exploded"},
        {"type": "finished", "op_id": "x", "state": "done", "at": "t"},
    ],
    ids=["unknown-type", "missing-field", "wrong-type", "unknown-kind", "unknown-member-state", "unknown-state"],
)
def test_malformed_event_json_is_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        from_json(data)


def test_a_store_refuses_an_index_from_a_newer_orbit(state_dir: Path) -> None:
    OperationStore(state_dir).close()
    with sqlite3.connect(state_dir / "operations.sqlite") as conn:
        conn.execute("PRAGMA user_version = 99")

    with pytest.raises(BackendError, match="newer Orbit"):
        OperationStore(state_dir)


def test_timestamps_are_utc_with_z() -> None:
    stamp = utc_now()

    parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 5


# -- outcomes of operations with members --------------------------------------------------------


def members_body(outcomes: dict[str, str]) -> Any:
    async def body(ctx: OperationContext) -> dict[str, Any]:
        for member in outcomes:
            ctx.child(member, "queued")
        for done, (member, state) in enumerate(outcomes.items(), start=1):
            ctx.child(member, "running")
            ctx.child(member, state, "why" if state != "succeeded" else "")
            ctx.progress(done, len(outcomes))
        return {"solutions": [{"id": m, "state": s} for m, s in outcomes.items()], "writes": 3}

    return body


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("outcomes", "state", "error"),
    [
        ({"acme-corp": "succeeded", "globex": "succeeded"}, "succeeded", None),
        ({"acme-corp": "failed"}, "failed", "1 of 1 solution failed: acme-corp"),
        ({"acme-corp": "succeeded", "globex": "failed", "initech": "succeeded"}, "failed",
         "1 of 3 solutions failed: globex"),
        ({"a-1": "failed", "a-2": "skipped", "a-3": "succeeded", "a-4": "skipped"}, "failed",
         "3 of 4 solutions did not succeed: 1 failed: a-1; 2 skipped: a-2, a-4"),
        ({f"s-{i}": "failed" for i in range(8)}, "failed",
         "8 of 8 solutions failed: s-0, s-1, s-2, s-3, s-4 and 3 more"),
        ({"wave 1": "succeeded", "a-1": "succeeded", "wave 2": "failed", "a-2": "failed", "wave 3": "skipped",
          "a-3": "skipped"}, "failed",
         "2 of 3 solutions did not succeed: 1 failed: a-2; 1 skipped: a-3; wave 2 failed, wave 3 skipped"),
    ],
    ids=["all-succeeded", "only-member-failed", "one-of-three-failed", "failed-and-skipped", "many-failed",
         "waves-named-not-counted"],
)
async def test_an_operation_succeeds_only_when_every_member_does(
    store: OperationStore, outcomes: dict[str, str], state: str, error: str | None
) -> None:
    events = await collect(OperationRunner(store, "sweep", "t", members_body(outcomes)).events())
    finished = events[-1]
    assert isinstance(finished, OperationFinished)
    assert (finished.state, finished.error) == (state, error)
    assert finished.result is not None and finished.result["writes"] == 3  # the result is kept either way
    record = store.get(finished.op_id)
    assert (record.state, record.error, record.done, record.total) == (state, error, len(outcomes), len(outcomes))
    assert record.result == finished.result


@pytest.mark.asyncio
async def test_a_cancelled_operation_records_its_reason_and_its_unfinished_members_cancelled(
    store: OperationStore,
) -> None:
    started = asyncio.Event()

    async def body(ctx: OperationContext) -> None:
        ctx.child("acme-corp", "succeeded")
        ctx.child("globex", "running")
        ctx.child("initech", "queued")
        started.set()
        await asyncio.sleep(3600)

    runner = OperationRunner(store, "sweep", "3 solutions", body)
    consumer = asyncio.create_task(collect(runner.events()))
    await asyncio.wait_for(started.wait(), TIMEOUT)
    runner.cancel("interrupted (Ctrl-C)")
    events = await asyncio.wait_for(consumer, TIMEOUT)
    finished = events[-1]
    assert isinstance(finished, OperationFinished)
    assert (finished.state, finished.error) == ("cancelled", "interrupted (Ctrl-C)")
    record = store.get(runner.op_id)
    assert (record.state, record.error) == ("cancelled", "interrupted (Ctrl-C)")
    assert {name: child.state for name, child in record.children.items()} == {
        "acme-corp": "succeeded", "globex": "cancelled", "initech": "cancelled"}
    closing = [e for e in events if isinstance(e, ChildChanged) and e.state == "cancelled"]
    assert [e.child for e in closing] == ["globex", "initech"]  # streamed before the end, as every event is


@pytest.mark.asyncio
async def test_typed_kinds_and_states_are_stored_as_the_plain_strings(store: OperationStore, state_dir: Path) -> None:
    events = await collect(run_operation(store, "sweep", "1 solution", members_body({"acme-corp": "failed"})))
    finished = events[-1]
    assert isinstance(finished, OperationFinished)
    with sqlite3.connect(state_dir / "operations.sqlite") as conn:
        row = conn.execute("SELECT kind, typeof(kind), state, typeof(state) FROM operations").fetchone()
        children = conn.execute("SELECT state, typeof(state) FROM operation_children").fetchall()
    assert row == ("sweep", "text", "failed", "text")
    assert children == [("failed", "text")]
    lines = store.log_path(finished.op_id).read_bytes().splitlines()
    assert lines[0].startswith(b'{"type":"started","op_id":') and b'"kind":"sweep"' in lines[0]
    assert b'"state":"failed"' in lines[-1]
    record = store.get(finished.op_id)
    assert json.loads(json.dumps(record.to_json()))["state"] == "failed"
    assert (record.kind, record.state, record.children["acme-corp"].state) == ("sweep", "failed", "failed")
