"""The operation runner: runs a body, persists what it reports, and streams it as events.

An operation's body is an async function that reports through an ``OperationContext``;
``OperationRunner.events()`` runs it and yields the resulting ``orbit_ops.operations.events`` in order,
so the CLI and the TUI consume the same stream. Everything is stored before it is yielded, for other
processes: the index (``OperationStore``) and the log (``orbit_ops.operations.log``).

Events are written in batches: those a body reports within ``FLUSH_SECONDS`` (or the first
``FLUSH_EVENTS`` of them) go to the index in one transaction and to the log in one ``write``, index
first, and only then to the consumer. A sweep of 1,000 solutions reports some 5,000 events; one
transaction each was most of a no-op sweep's time. Nothing is yielded before it is stored, and a
crash loses at most the last batch of a run whose owner then reads as ``interrupted``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from typing import Any

from orbit_ops.errors import BackendError, InputError, OrbitError
from orbit_ops.operations import liveness
from orbit_ops.operations.events import (
    ChildChanged,
    Event,
    LogLine,
    OperationFinished,
    OperationStarted,
    ProgressChanged,
)
from orbit_ops.operations.kinds import MEMBER_ACTIVE_STATES, MemberState, OperationKind, OperationState
from orbit_ops.operations.log import open_append, write_lines
from orbit_ops.operations.records import utc_now
from orbit_ops.operations.store import OperationStore
from orbit_ops.redact import redact, redact_json

CANCEL_POLL_SECONDS = 0.2
FLUSH_SECONDS = 0.1  # the longest an event waits before it is stored and yielded
FLUSH_EVENTS = 500  # ...or this many events, whichever comes first
MIRROR_DRAIN_SECONDS = 30.0  # at its end, the longest an operation waits for the shared store to have it all
MAX_ERROR_LENGTH = 2000

Body = Callable[["OperationContext"], Coroutine[Any, Any, dict[str, Any] | None]]

_log = logging.getLogger(__name__)


class OperationStopped(Exception):
    """Raised by a body that stopped early on purpose, at a point it chose (a waved roll stopped by its operator
    between two waves): the operation ends ``cancelled`` with ``reason`` as its error, and keeps ``result``."""

    def __init__(self, reason: str, result: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = result


class OperationContext:
    """What an operation's body reports through; every call is persisted and then yielded.

    Text is redacted before it is stored. Calls made after the operation finished are ignored.
    Calls from a worker thread are handed to the event loop, keeping the events in one order.
    """

    def __init__(self, runner: OperationRunner) -> None:
        self._runner = runner

    @property
    def op_id(self) -> str:
        return self._runner.op_id

    @property
    def kind(self) -> OperationKind:
        return self._runner.kind

    def log(self, text: str, child: str | None = None) -> None:
        """Append ``text`` (one or more lines) to the log, optionally tagged with a sweep member."""
        if self._runner.hop(self.log, text, child):
            return
        lines = redact(str(text)).splitlines() or [""]
        at = utc_now()
        for line in lines:
            self._runner.emit(LogLine(self.op_id, at, line, child))

    def progress(self, done: int, total: int | None = None) -> None:
        """``done`` steps of ``total`` are complete (``total`` defaults to the last one given).

        Raises:
            InputError: a count is negative.
        """
        if self._runner.hop(self.progress, done, total):
            return
        total = self._runner.total if total is None else total
        if done < 0 or total < 0:
            raise InputError(f"progress must not be negative (got {done}/{total})")
        self._runner.total = total
        self._runner.emit(ProgressChanged(self.op_id, done, total))

    def child(self, child_id: str, state: MemberState, message: str = "") -> None:
        """A sweep member (e.g. a solution id) moved to ``state``, with an optional short message.

        Raises:
            ValueError: ``state`` is not a ``MemberState`` value.
        """
        if self._runner.hop(self.child, child_id, state, message):
            return
        self._runner.emit(ChildChanged(self.op_id, child_id, MemberState(state), redact(message)))


class OperationRunner:
    """Runs one operation's body and streams its events; also the in-process handle to cancel it.

    The operation is recorded as ``queued`` when the runner is made, so ``op_id`` is known before
    anything runs; ``events()`` runs it. Leaving the ``async for`` early (``aclose()``, best with
    ``contextlib.aclosing``) or cancelling the consuming task cancels the body and records
    ``cancelled``; the body's ``finally`` blocks run first.

    An operation with members (``OperationContext.child``: the solutions of a sweep or a roll) has
    succeeded only when every member has: a body that returns while any member failed, was skipped
    or did not finish ends ``failed``, its result kept, its error counting the members that did not
    succeed. A cancelled operation records its unfinished members ``cancelled`` too.
    """

    def __init__(
        self, store: OperationStore, kind: OperationKind, target: str, body: Body, *, total: int = 0
    ) -> None:
        """Record a new queued operation.

        Raises:
            ValueError: ``kind`` is not an ``OperationKind`` value.
            BackendError: the index cannot be written.
        """
        self.store = store
        self.kind = OperationKind(kind)
        self.target = redact(target)
        self.total = total
        self._body = body
        record = store.create(self.kind, self.target, total)
        self.op_id = record.id
        liveness.hold(self.op_id)
        weakref.finalize(self, liveness.let_go, self.op_id)
        self._queue: collections.deque[Event] = collections.deque()
        self._pending: list[Event] = []  # reported but not yet stored (see emit)
        self._pending_since = 0.0
        self._flush_timer: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[dict[str, Any] | None] | None = None
        self._cancel_wanted = False
        self._cancel_reason: str | None = None
        self._children: dict[str, MemberState] = {}  # each member's last state, in the order they appeared
        self._iterated = False
        self._closed = False
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_poll = 0.0
        self._thread = threading.get_ident()

    def cancel(self, reason: str | None = None) -> None:
        """Cancel the body (call from the event loop's thread; other processes use ``request_cancel``).

        ``reason`` (e.g. ``interrupted (Ctrl-C)``) becomes the cancelled operation's error, as it is shown.
        """
        if not self._cancel_wanted:
            self._cancel_reason = reason
        self._cancel_wanted = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def events(self) -> AsyncGenerator[Event, None]:
        """Run the body and yield its events, ending with ``OperationFinished``.

        The body's failures do not raise here: they end the stream with state ``failed`` and the
        error's message (an ``OrbitError``'s as is, any other as its type and message).

        Raises:
            RuntimeError: ``events()`` was already called on this runner.
            BackendError: the store cannot be written.
        """
        if self._iterated:
            raise RuntimeError(f"operation {self.op_id} is already running")
        self._iterated = True
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        try:
            self._fd = open_append(self.store.log_path(self.op_id))
            started = OperationStarted(self.op_id, self.kind, self.target, utc_now())
            self.store.mark_running(self.op_id, started.at)
            if self.store.mirror is not None:
                self.store.mirror.started(self.store.get(self.op_id))
            self.emit(started)
        except BaseException:
            # Nothing ran: let the next reader record the operation as interrupted.
            liveness.let_go(self.op_id)
            raise
        task = asyncio.create_task(self._body(OperationContext(self)), name=f"operation {self.op_id}")
        self._task = task
        if self._cancel_wanted:
            task.cancel()
        finished: OperationFinished | None = None
        try:
            self._next_poll = self._loop.time() + CANCEL_POLL_SECONDS
            while True:
                self._wake.clear()
                while self._queue:
                    yield self._queue.popleft()
                    self._poll_cancel(task)  # a busy body with a slow consumer must stay cancellable
                if task.done():
                    break
                await self._wait_for_news(task, max(0.0, self._next_poll - self._loop.time()))
                self._poll_cancel(task)
            finished = self._close(task)
        finally:
            if finished is None:
                # The consumer left or was cancelled: stop the body and let its cleanup run.
                task.cancel()
                try:
                    await asyncio.wait({task})
                finally:
                    self._close(task)
        while self._queue:
            yield self._queue.popleft()
        yield finished

    def hop(self, method: Callable[..., None], *args: Any) -> bool:
        """Re-schedule a context call made from another thread on the loop; True if it did."""
        if self._loop is None or threading.get_ident() == self._thread:
            return False
        self._loop.call_soon_threadsafe(method, *args)
        return True

    def emit(self, event: Event) -> None:
        """Add ``event`` to the batch; the batch is stored (index, then log) and queued for the consumer
        once it is ``FLUSH_SECONDS`` old or ``FLUSH_EVENTS`` long, and when the operation ends."""
        if self._closed or self._fd is None:
            return
        if isinstance(event, ChildChanged):
            self._children[event.child] = event.state
        now = time.monotonic()
        if not self._pending:
            self._pending_since = now
            if self._loop is not None and self._flush_timer is None:
                # Stored in time whatever the body and the consumer do next...
                self._flush_timer = self._loop.call_later(FLUSH_SECONDS, self._flush_on_time)
        self._pending.append(event)
        # ...and at once when the batch is full, or old, for a body that keeps the loop busy.
        if (isinstance(event, OperationStarted) or len(self._pending) >= FLUSH_EVENTS
                or now >= self._pending_since + FLUSH_SECONDS):
            self._flush()

    def _flush(self) -> None:
        """Store the batch (one index transaction, one log write) and hand it to the consumer.

        Raises:
            BackendError: the index or the log cannot be written (the batch stays, to be retried).
        """
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        events, self._pending = self._pending, []
        if not events or self._fd is None:
            return
        try:
            self.store.record_events(self.op_id, events)
            write_lines(self._fd, events)
        except BackendError:
            self._pending[:0] = events
            raise
        if self.store.mirror is not None:
            self.store.mirror.publish(self.op_id, events)
        self._queue.extend(events)
        self._wake.set()

    def _flush_on_time(self) -> None:
        self._flush_timer = None
        try:
            self._flush()
        except BackendError as exc:  # the next event or the end of the operation tries again
            _log.warning("operation %s: %s", self.op_id, exc)

    def _poll_cancel(self, task: asyncio.Task[Any]) -> None:
        """Cancel the body if another process asked to, checking the index at most every poll interval."""
        assert self._loop is not None
        now = self._loop.time()
        if now < self._next_poll:
            return
        self._next_poll = now + CANCEL_POLL_SECONDS
        mirror = self.store.mirror
        if not task.done() and not self._cancel_wanted and (
                self.store.cancel_requested(self.op_id)
                or (mirror is not None and mirror.cancel_requested(self.op_id))):
            self.cancel()

    async def _wait_for_news(self, task: asyncio.Task[Any], timeout: float) -> None:
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    def _close(self, task: asyncio.Task[dict[str, Any] | None]) -> OperationFinished:
        result_text = None
        if task.cancelled() or not task.done():
            state, error, result = OperationState.CANCELLED, self._cancel_reason, None
            # Members it stopped are cancelled too (stored with the batch below, whose errors are handled there).
            self._pending.extend(ChildChanged(self.op_id, child, MemberState.CANCELLED)
                                 for child, child_state in self._children.items()
                                 if child_state in MEMBER_ACTIVE_STATES)
        elif isinstance(stopped := task.exception(), OperationStopped):
            _state, _error, result, result_text = _outcome(stopped.result)
            state, error = OperationState.CANCELLED, redact(stopped.reason)
        elif (exc := task.exception()) is not None:
            state, error, result = OperationState.FAILED, _error_message(exc), None
        else:
            state, error, result, result_text = _outcome(task.result())
            shortfall = _members_shortfall(self._children)
            if state == OperationState.SUCCEEDED and shortfall is not None:
                state, error = OperationState.FAILED, shortfall
        finished = OperationFinished(self.op_id, state, utc_now(), error, result)
        try:
            self._flush()  # what the body reported last, cleanup included, precedes the end
        except BackendError as exc:
            _log.warning("operation %s: %s", self.op_id, exc)
        fd, self._fd = self._fd, None
        self._closed = True
        liveness.let_go(self.op_id)
        try:
            self.store.finish(finished, result_text)
            if fd is not None:
                write_lines(fd, [finished])
                with contextlib.suppress(OSError):
                    os.fsync(fd)
        finally:
            if fd is not None:
                os.close(fd)
            if self.store.mirror is not None:
                self.store.mirror.finish(self.op_id, [finished], timeout=MIRROR_DRAIN_SECONDS)
        return finished


def run_operation(
    store: OperationStore, kind: OperationKind, target: str, body: Body, *, total: int = 0
) -> AsyncGenerator[Event, None]:
    """Record a new operation and return its event stream (see ``OperationRunner.events``).

    The first event, ``OperationStarted``, carries the operation's id.

    Raises:
        BackendError: the index cannot be written.
    """
    return OperationRunner(store, kind, target, body, total=total).events()


# -- the outcome -----------------------------------------------------------------------------


def _outcome(value: object) -> tuple[OperationState, str | None, dict[str, Any] | None, str | None]:
    """State, error, result and the result as stored JSON text."""
    if value is None:
        return OperationState.SUCCEEDED, None, None, None
    if not isinstance(value, dict):
        return OperationState.FAILED, f"the operation returned {type(value).__name__}, not a dict", None, None
    # The stored and the yielded result must be the same plain data. redact_json copies into dicts,
    # lists and strings already; only a value JSON cannot hold (turned into its str) needs the text
    # parsed back.
    redacted: dict[str, Any] = redact_json(value)
    converted = False

    def as_text(item: object) -> str:
        nonlocal converted
        converted = True
        return str(item)

    text = json.dumps(redacted, default=as_text, ensure_ascii=False)
    result: dict[str, Any] = json.loads(text) if converted else redacted
    return OperationState.SUCCEEDED, None, result, text


def _members_shortfall(children: Mapping[str, MemberState]) -> str | None:
    """Why an operation whose body returned did not succeed: its members that did not; None if all did.

    Members are solutions (sweeps, provisions and rolls are the operations that have them):
    ``1 of 8 solutions failed: globex``, or with several states ``2 of 40 solutions did not
    succeed: 1 failed: globex; 1 skipped: cyberdyne``. A member whose name holds a space is a part of the
    operation, not a solution (a roll's ``wave 2``: solution ids hold none): it is named after the solutions,
    never counted among them (``…; wave 2 failed, wave 3 skipped``).
    """
    short: dict[MemberState, list[str]] = {}
    parts: list[str] = []
    solutions = 0
    for child, state in children.items():
        if " " in child:
            if state != MemberState.SUCCEEDED:
                parts.append(f"{child} {state}")
            continue
        solutions += 1
        if state != MemberState.SUCCEEDED:
            short.setdefault(state, []).append(child)
    if not short and not parts:
        return None
    others = ", ".join(parts)
    if not short:
        return others
    count = sum(len(members) for members in short.values())
    total = f"{solutions} solution{'s' if solutions != 1 else ''}"
    if len(short) == 1:
        ((state, members),) = short.items()
        text = f"{count} of {total} {state}: {_first_names(members)}"
    else:
        text = f"{count} of {total} did not succeed: " + "; ".join(
            f"{len(members)} {state}: {_first_names(members)}" for state, members in short.items())
    return f"{text}; {others}" if others else text


def _first_names(names: list[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, OrbitError):
        text = exc.message
    else:
        detail = str(exc).strip()
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    text = redact(text)
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 1] + "…"
    return text

