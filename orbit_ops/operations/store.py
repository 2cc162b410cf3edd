"""Operations: persisted, followable, cancellable streams of events.

Every build, provision, sweep and roll runs as an operation (SPEC §3.5). Its body is an async
function that reports through an ``OperationContext``; ``OperationRunner.events()`` runs it and
yields the resulting ``orbit_ops.operations.events`` in order, so the CLI and the TUI consume the same stream.
Everything is written under ``<workspace>/.orbit/`` before it is yielded, for other processes:

- ``operations.sqlite`` indexes the operations (state, progress, children, owner, cancel flag).
  WAL mode, a busy timeout and short ``BEGIN IMMEDIATE`` transactions make it safe to share
  between the TUI, a CLI follower and a CI job at once.
- ``logs/<id>.jsonl`` holds each operation's events, one JSON object a line, appended with
  ``O_APPEND``, so a follower never needs the index to read the log.

Events are written in batches: those a body reports within ``FLUSH_SECONDS`` (or the first
``FLUSH_EVENTS`` of them) go to the index in one transaction and to the log in one ``write``, index
first, and only then to the consumer. A sweep of 1,000 solutions reports some 5,000 events; one
transaction each was most of a no-op sweep's time. Nothing is yielded before it is stored, and a
crash loses at most the last batch of a run whose owner then reads as ``interrupted``.

A process that dies mid-operation cannot say so; whoever next reads the index checks the owner
(host, pid and the pid's start time, which survives pid reuse) and records ``interrupted``. Cancel
across processes is a flag in the index that the owner polls. Nothing reaches the store unredacted.
See ``docs/decisions/0007-operations-store.md``.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orbit_ops.errors import BackendError, InputError, NotFoundError, OrbitError, RefusedError
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
from orbit_ops.redact import redact, redact_json
from orbit_ops.sqlitestore import SqliteStore
from orbit_ops.statedir import PRIVATE_FILE_MODE, is_unwritable, make_private_dir

STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
KINDS = ("build", "provision", "sweep", "roll")  # what front ends start (``orbit ops --kind``)
ACTIVE_STATES = ("queued", "running")
CHILD_ACTIVE_STATES = ("queued", "pending", "running")
CANCEL_POLL_SECONDS = 0.2
FLUSH_SECONDS = 0.1  # the longest an event waits before it is stored and yielded
FLUSH_EVENTS = 500  # ...or this many events, whichever comes first
MAX_ERROR_LENGTH = 2000

Body = Callable[["OperationContext"], Coroutine[Any, Any, dict[str, Any] | None]]

_log = logging.getLogger(__name__)
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    error TEXT,
    result TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_started TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX operations_kind ON operations (kind, seq);
CREATE INDEX operations_state ON operations (state);
CREATE TABLE operation_children (
    op_id TEXT NOT NULL REFERENCES operations (id),
    child TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (op_id, child)
);
"""
_COLUMNS = (
    "id, kind, target, state, done, total, created_at, started_at, finished_at, error, result, host, pid,"
    " pid_started, cancel_requested"
)
_ID_CHARS = re.compile(r"^[0-9a-z-]+$")
_HOST = socket.gethostname()
_HAVE_PROC = os.path.exists("/proc/self/stat")

# One encoder for every log line: json.dumps builds a new one per call when given options.
_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# How every stored log event (``LogLine``) begins: ``to_json`` puts the ``type`` key first. A reader can tell
# log lines from the other events by these bytes and leave them undecoded until they are shown.
LOG_LINE_PREFIX = (_LINE_ENCODER.encode({"type": "log"})[:-1] + ",").encode()

# Operations whose runner is alive in this process: an owner pid equal to ours is only alive for these.
_LIVE_OPS: set[str] = set()


def utc_now() -> str:
    """The current UTC time as ISO 8601 with milliseconds and ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ChildState:
    """Where one member of a sweep (a solution) stands."""

    state: str
    message: str = ""


@dataclass(frozen=True)
class OperationRecord:
    """One operation as the index knows it."""

    id: str
    kind: str
    target: str
    state: str
    done: int
    total: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    result: dict[str, Any] | None
    host: str
    pid: int
    pid_started: str | None
    cancel_requested: bool
    children: Mapping[str, ChildState] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state not in ACTIVE_STATES

    def to_json(self) -> dict[str, Any]:
        """The SPEC §6.1 ``ops`` keys plus started_at, error, result, owner and children."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "state": self.state,
            "progress": {"done": self.done, "total": self.total},
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "result": self.result,
            "host": self.host,
            "pid": self.pid,
            "pid_started": self.pid_started,
            "cancel_requested": self.cancel_requested,
            "children": {name: {"state": c.state, "message": c.message} for name, c in self.children.items()},
        }


class OperationStore(SqliteStore):
    """The operations index and logs under a workspace's ``.orbit/`` folder.

    One instance may be shared by threads; any number of instances, in any number of processes,
    may use the same folder.
    """

    LABEL = "operation store"
    SCHEMA_VERSION = _SCHEMA_VERSION

    def __init__(self, state_dir: Path) -> None:
        """Open (creating if needed) the store in ``state_dir``.

        Raises:
            BackendError: the folder or the index cannot be created or read, or was written by a
                newer Orbit.
        """
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / "operations.sqlite"
        self.logs_dir = self.state_dir / "logs"
        folder_error = None
        try:
            make_private_dir(self.logs_dir)
        except OSError as exc:
            if not is_unwritable(exc):
                raise BackendError(f"cannot open the operation store {self.path}: {exc}") from exc
            folder_error = exc  # read-only or full: the store is opened for reading only
        self._open(self.path, folder_error)

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)

    def __enter__(self) -> OperationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_path(self, op_id: str) -> Path:
        return self.logs_dir / f"{op_id}.jsonl"

    # -- reading ------------------------------------------------------------------------------

    def get(self, ref: str) -> OperationRecord:
        """The operation whose id is ``ref`` or starts with it.

        An operation whose owner process is gone is recorded as ``interrupted`` first.

        Raises:
            NotFoundError: no operation matches, or several do (the message lists candidates).
            BackendError: the index cannot be read.
        """
        op_id = self._resolve(ref)
        record = self._fetch(op_id)
        if not record.finished and self._reap([record]):
            record = self._fetch(op_id)
        return _as_seen(record)

    def list(self, limit: int | None = None, kind: str | None = None) -> builtins.list[OperationRecord]:
        """Operations newest first, optionally only the newest ``limit`` and only of ``kind``.

        Raises:
            BackendError: the index cannot be read.
        """
        records = self._query(limit, kind)
        if self._reap([r for r in records if not r.finished]):
            records = self._query(limit, kind)
        return [_as_seen(record) for record in records]

    def read_events(self, ref: str) -> builtins.list[Event]:
        """Every complete event in the operation's log, in order (``orbit logs`` without follow).

        Raises:
            NotFoundError: see ``get``.
            BackendError: the log cannot be read.
        """
        record = self.get(ref)
        reader = _LogReader(self.log_path(record.id))
        try:
            return reader.read_new()
        finally:
            reader.close()

    def cancel_requested(self, op_id: str) -> bool:
        """Whether someone asked for ``op_id`` to be cancelled.

        Raises:
            BackendError: the index cannot be read.
        """
        row = self._fetchone("SELECT cancel_requested FROM operations WHERE id = ?", (op_id,))
        return bool(row and row[0])

    # -- cancelling ---------------------------------------------------------------------------

    def request_cancel(self, ref: str) -> OperationRecord:
        """Ask the process running the operation to cancel it; it does so within a poll interval.

        Returns the record with ``cancel_requested`` set; follow the operation to see it end.

        Raises:
            NotFoundError: see ``get``.
            RefusedError: the operation has already finished (the message says how).
            BackendError: the index cannot be written.
        """
        record = self.get(ref)
        if not record.finished:
            with self._write() as conn:
                cursor = conn.execute(
                    "UPDATE operations SET cancel_requested = 1 WHERE id = ? AND state IN (?, ?)",
                    (record.id, *ACTIVE_STATES),
                )
                changed = cursor.rowcount == 1
            record = self._fetch(record.id)
            if changed:
                return record
        raise RefusedError(f"operation {record.id} already {record.state}; there is nothing to cancel")

    # -- written by the runner ----------------------------------------------------------------

    def _create(self, kind: str, target: str, total: int) -> OperationRecord:
        for _attempt in range(50):
            now = datetime.now(UTC)
            op_id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
            created_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            try:
                with self._write() as conn:
                    conn.execute(
                        "INSERT INTO operations"
                        " (id, kind, target, state, total, created_at, host, pid, pid_started)"
                        " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                        (op_id, kind, redact(target), total, created_at, _HOST, os.getpid(), _OWN_START),
                    )
            except BackendError as exc:
                if isinstance(exc.__cause__, sqlite3.IntegrityError):
                    continue
                raise
            return self._fetch(op_id)
        raise BackendError(f"could not allocate a unique operation id in {self.path}")

    def _mark_running(self, op_id: str, at: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE operations SET state = 'running', started_at = ?, pid = ?, pid_started = ?"
                " WHERE id = ?",
                (at, os.getpid(), _OWN_START, op_id),
            )

    def _record_events(self, op_id: str, events: builtins.list[Event]) -> None:
        """Store what a batch of events changes in the index (progress, children) in one transaction.

        Only the last progress and each child's last state matter; children keep the order in
        which they first appeared. A batch of log lines alone writes nothing here.
        """
        progress: ProgressChanged | None = None
        children: dict[str, tuple[str, str]] = {}
        for event in events:
            if isinstance(event, ProgressChanged):
                progress = event
            elif isinstance(event, ChildChanged):
                children[event.child] = (event.state, event.message)
        if progress is None and not children:
            return
        with self._write() as conn:
            if progress is not None:
                conn.execute("UPDATE operations SET done = ?, total = ? WHERE id = ?",
                             (progress.done, progress.total, op_id))
            conn.executemany(
                "INSERT INTO operation_children (op_id, child, state, message) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (op_id, child)"
                " DO UPDATE SET state = excluded.state, message = excluded.message",
                [(op_id, child, state, message) for child, (state, message) in children.items()],
            )

    def _finish(self, event: OperationFinished, result: str | None = None) -> None:
        """Record the end; ``result`` is ``event.result`` as JSON when the caller has it already."""
        if result is None and event.result is not None:
            result = json.dumps(event.result, ensure_ascii=False)
        with self._write() as conn:
            conn.execute(
                "UPDATE operations SET state = ?, finished_at = ?, error = ?, result = ? WHERE id = ?",
                (event.state, event.at, event.error, result, event.op_id),
            )

    # -- liveness -----------------------------------------------------------------------------

    def _reap(self, records: builtins.list[OperationRecord]) -> bool:
        """Record ``interrupted`` for active operations whose owner is gone; True if any was.

        A store that cannot be written (read-only, or a full disk) records nothing: readers then see
        such operations as interrupted all the same (``_as_seen``), and whoever can write records it.
        """
        reaped = False
        if self.read_only is not None:
            return reaped
        for record in records:
            verdict = _owner_gone(record.id, record.host, record.pid, record.pid_started)
            try:
                if verdict is not None and self._mark_interrupted(record, verdict):
                    reaped = True
            except BackendError as exc:
                _log.warning("cannot record operation %s as interrupted: %s", record.id, exc)
        return reaped

    def _mark_interrupted(self, record: OperationRecord, reason: str) -> bool:
        at = utc_now()
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE operations SET state = 'interrupted', finished_at = ?, error = ?"
                " WHERE id = ? AND state IN (?, ?) AND host = ? AND pid = ?",
                (at, reason, record.id, *ACTIVE_STATES, record.host, record.pid),
            )
            if cursor.rowcount != 1:
                return False  # finished meanwhile, or another reader got there first
            marks = ", ".join("?" for _ in CHILD_ACTIVE_STATES)
            children = conn.execute(
                f"SELECT child FROM operation_children WHERE op_id = ? AND state IN ({marks}) ORDER BY rowid",
                (record.id, *CHILD_ACTIVE_STATES),
            ).fetchall()
            conn.execute(
                f"UPDATE operation_children SET state = 'interrupted' WHERE op_id = ? AND state IN ({marks})",
                (record.id, *CHILD_ACTIVE_STATES),
            )
        # Only the reader whose update won writes the closing events, so they appear once.
        events: builtins.list[Event] = [
            ChildChanged(record.id, child, "interrupted") for (child,) in children
        ]
        events.append(OperationFinished(record.id, "interrupted", at, reason))
        _append_foreign(self.log_path(record.id), events)
        return True

    # -- sqlite plumbing ----------------------------------------------------------------------

    def _resolve(self, ref: str) -> str:
        key = ref.strip().lower()
        if not key or not _ID_CHARS.match(key):
            raise NotFoundError(f"no operation {ref!r}: ids look like 20261124-154405-3fa2")
        if self._fetchone("SELECT 1 FROM operations WHERE id = ?", (key,)):
            return key
        # The id alphabet has no GLOB metacharacters, so the prefix needs no escaping.
        rows = self._fetchall(
            "SELECT id FROM operations WHERE id GLOB ? ORDER BY seq DESC LIMIT 11", (key + "*",)
        )
        if len(rows) == 1:
            return str(rows[0][0])
        if rows:
            shown = ", ".join(str(r[0]) for r in rows[:10])
            more = " and more" if len(rows) > 10 else ""
            raise NotFoundError(f"operation id {ref!r} is ambiguous: it matches {shown}{more}")
        recent = [
            str(r[0]) for r in self._fetchall("SELECT id FROM operations ORDER BY seq DESC LIMIT 5", ())
        ]
        hint = f"recent operations: {', '.join(recent)}" if recent else "no operations are recorded yet"
        raise NotFoundError(f"no operation matches {ref!r} ({hint})")

    def _fetch(self, op_id: str) -> OperationRecord:
        row = self._fetchone(f"SELECT {_COLUMNS} FROM operations WHERE id = ?", (op_id,))
        if row is None:
            raise NotFoundError(f"no operation {op_id!r}")
        children = self._fetchall(
            "SELECT op_id, child, state, message FROM operation_children WHERE op_id = ? ORDER BY rowid",
            (op_id,),
        )
        return _record(row, _group_children(children))

    def _query(self, limit: int | None, kind: str | None) -> builtins.list[OperationRecord]:
        where, params = ("WHERE kind = ?", (kind,)) if kind is not None else ("", ())
        selected = f"SELECT {_COLUMNS}, seq FROM operations {where} ORDER BY seq DESC LIMIT ?"
        bounded = (*params, -1 if limit is None else max(limit, 0))
        rows = self._fetchall(selected, bounded)
        children = self._fetchall(
            f"SELECT c.op_id, c.child, c.state, c.message FROM operation_children c"
            f" JOIN ({selected}) o ON c.op_id = o.id ORDER BY c.rowid",
            bounded,
        )
        grouped = _group_children(children)
        return [_record(row, grouped) for row in rows]

    def _fetchone(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._guard():
            row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
            return row

    def _fetchall(self, sql: str, params: tuple[Any, ...]) -> builtins.list[tuple[Any, ...]]:
        with self._guard():
            return self._conn.execute(sql, params).fetchall()


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
    def kind(self) -> str:
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

    def child(self, child_id: str, state: str, message: str = "") -> None:
        """A sweep member (e.g. a solution id) moved to ``state``, with an optional short message."""
        if self._runner.hop(self.child, child_id, state, message):
            return
        self._runner.emit(ChildChanged(self.op_id, child_id, state, redact(message)))


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

    def __init__(self, store: OperationStore, kind: str, target: str, body: Body, *, total: int = 0) -> None:
        """Record a new queued operation.

        Raises:
            BackendError: the index cannot be written.
        """
        self.store = store
        self.kind = kind
        self.target = redact(target)
        self.total = total
        self._body = body
        record = store._create(kind, self.target, total)
        self.op_id = record.id
        _LIVE_OPS.add(self.op_id)
        weakref.finalize(self, _LIVE_OPS.discard, self.op_id)
        self._queue: collections.deque[Event] = collections.deque()
        self._pending: list[Event] = []  # reported but not yet stored (see emit)
        self._pending_since = 0.0
        self._flush_timer: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[dict[str, Any] | None] | None = None
        self._cancel_wanted = False
        self._cancel_reason: str | None = None
        self._children: dict[str, str] = {}  # each member's last state, in the order they appeared
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
            self._fd = _open_append(self.store.log_path(self.op_id))
            started = OperationStarted(self.op_id, self.kind, self.target, utc_now())
            self.store._mark_running(self.op_id, started.at)
            self.emit(started)
        except BaseException:
            # Nothing ran: let the next reader record the operation as interrupted.
            _LIVE_OPS.discard(self.op_id)
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
            self.store._record_events(self.op_id, events)
            _write_lines(self._fd, events)
        except BackendError:
            self._pending[:0] = events
            raise
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
        if not task.done() and not self._cancel_wanted and self.store.cancel_requested(self.op_id):
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
            state, error, result = "cancelled", self._cancel_reason, None
            # Members it stopped are cancelled too (stored with the batch below, whose errors are handled there).
            self._pending.extend(ChildChanged(self.op_id, child, "cancelled")
                                 for child, child_state in self._children.items() if child_state in CHILD_ACTIVE_STATES)
        elif (exc := task.exception()) is not None:
            state, error, result = "failed", _error_message(exc), None
        else:
            state, error, result, result_text = _outcome(task.result())
            shortfall = _members_shortfall(self._children)
            if state == "succeeded" and shortfall is not None:
                state, error = "failed", shortfall
        finished = OperationFinished(self.op_id, state, utc_now(), error, result)
        try:
            self._flush()  # what the body reported last, cleanup included, precedes the end
        except BackendError as exc:
            _log.warning("operation %s: %s", self.op_id, exc)
        fd, self._fd = self._fd, None
        self._closed = True
        _LIVE_OPS.discard(self.op_id)
        try:
            self.store._finish(finished, result_text)
            if fd is not None:
                _write_line(fd, finished)
                with contextlib.suppress(OSError):
                    os.fsync(fd)
        finally:
            if fd is not None:
                os.close(fd)
        return finished


def run_operation(
    store: OperationStore, kind: str, target: str, body: Body, *, total: int = 0
) -> AsyncGenerator[Event, None]:
    """Record a new operation and return its event stream (see ``OperationRunner.events``).

    The first event, ``OperationStarted``, carries the operation's id.

    Raises:
        BackendError: the index cannot be written.
    """
    return OperationRunner(store, kind, target, body, total=total).events()


async def follow(
    store: OperationStore, op_id: str, *, from_start: bool = True, poll: float = 0.1
) -> AsyncGenerator[Event, None]:
    """Replay an operation's log (or, with ``from_start=False``, only what comes next) and tail it.

    Works from any process. The stream always ends with an ``OperationFinished``: the logged one,
    or one made from the index when the operation ended without logging it (e.g. its owner died
    and nobody has looked since, which this call's polling also detects).

    Raises:
        NotFoundError: see ``OperationStore.get``.
        BackendError: the store cannot be read.
    """
    record = store.get(op_id)
    reader = _LogReader(store.log_path(record.id))
    try:
        if not from_start:
            reader.skip_to_end()
        while True:
            events = reader.read_new()
            for event in events:
                yield event
                if isinstance(event, OperationFinished):
                    return
            if events:
                continue
            record = store.get(record.id)
            if record.finished:
                # The closing event may have landed between the read and the look at the index.
                for event in reader.read_new():
                    yield event
                    if isinstance(event, OperationFinished):
                        return
                at = record.finished_at or utc_now()
                yield OperationFinished(record.id, record.state, at, record.error, record.result)
                return
            await asyncio.sleep(poll)
    finally:
        reader.close()


# -- helpers ----------------------------------------------------------------------------------


class _LogReader:
    """Reads complete lines appended to a JSONL log; a line without its newline is not yet written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: io.FileIO | None = None
        self._partial = b""

    def skip_to_end(self) -> None:
        data = self._read()
        self._partial = data[data.rfind(b"\n") + 1 :]

    def read_new(self) -> builtins.list[Event]:
        data = self._read()
        if not data:
            return []
        *lines, self._partial = (self._partial + data).split(b"\n")
        events: builtins.list[Event] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                events.append(from_json(data))
            except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
                _log.warning("skipping a malformed line in %s: %s", self.path, exc)
        return events

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _read(self) -> bytes:
        try:
            if self._file is None:
                self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - kept open to tail
            return self._file.readall()
        except FileNotFoundError:
            return b""  # not started yet
        except OSError as exc:
            raise BackendError(f"cannot read {self.path}: {exc}") from exc


def _open_append(path: Path, *, readable: bool = False) -> int:
    mode = (os.O_RDWR if readable else os.O_WRONLY) | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, mode, PRIVATE_FILE_MODE)
    except OSError as exc:
        raise BackendError(f"cannot write the operation log {path}: {exc}") from exc


def _write_line(fd: int, event: Event) -> None:
    _write_lines(fd, [event])


def _write_lines(fd: int, events: builtins.list[Event]) -> None:
    """Append ``events`` to a log, one JSON line each, in as few ``write`` calls as the OS allows.

    A write cut short (a full disk) is taken back, so the log never keeps half a line that the next
    append would run into.
    """
    data = "".join(_LINE_ENCODER.encode(to_json(event)) + "\n" for event in events).encode()
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        written = len(data) - len(view)
        if written:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise BackendError(f"cannot write the log of operation {events[0].op_id}: {exc}") from exc


def _append_foreign(path: Path, events: builtins.list[Event]) -> None:
    """Append events to another process's log, starting a fresh line if it died mid-line."""
    try:
        fd = _open_append(path, readable=True)
    except BackendError as exc:
        _log.warning("%s", exc)
        return
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")
        for event in events:
            _write_line(fd, event)
    except (OSError, BackendError) as exc:
        _log.warning("cannot append to %s: %s", path, exc)
    finally:
        os.close(fd)


def _outcome(value: object) -> tuple[str, str | None, dict[str, Any] | None, str | None]:
    """State, error, result and the result as stored JSON text."""
    if value is None:
        return "succeeded", None, None, None
    if not isinstance(value, dict):
        return "failed", f"the operation returned {type(value).__name__}, not a dict", None, None
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
    return "succeeded", None, result, text


def _members_shortfall(children: Mapping[str, str]) -> str | None:
    """Why an operation whose body returned did not succeed: its members that did not; None if all did.

    Members are solutions (sweeps, provisions and rolls are the operations that have them):
    ``1 of 8 solutions failed: globex``, or with several states ``2 of 40 solutions did not
    succeed: 1 failed: globex; 1 skipped: cyberdyne``.
    """
    short: dict[str, builtins.list[str]] = {}
    for child, state in children.items():
        if state != "succeeded":
            short.setdefault(state, []).append(child)
    if not short:
        return None
    count = sum(len(members) for members in short.values())
    total = f"{len(children)} solution{'s' if len(children) != 1 else ''}"
    if len(short) == 1:
        ((state, members),) = short.items()
        return f"{count} of {total} {state}: {_first_names(members)}"
    parts = "; ".join(f"{len(members)} {state}: {_first_names(members)}" for state, members in short.items())
    return f"{count} of {total} did not succeed: {parts}"


def _first_names(names: builtins.list[str], shown: int = 5) -> str:
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


def _record(row: tuple[Any, ...], children: Mapping[str, dict[str, ChildState]]) -> OperationRecord:
    (
        op_id,
        kind,
        target,
        state,
        done,
        total,
        created_at,
        started_at,
        finished_at,
        error,
        result,
        host,
        pid,
        pid_started,
        cancel_requested,
    ) = row[:15]
    return OperationRecord(
        id=op_id,
        kind=kind,
        target=target,
        state=state,
        done=done,
        total=total,
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
        error=error,
        result=None if result is None else json.loads(result),
        host=host,
        pid=pid,
        pid_started=pid_started,
        cancel_requested=bool(cancel_requested),
        children=children.get(op_id, {}),
    )


def _as_seen(record: OperationRecord) -> OperationRecord:
    """``record`` as a reader should see it: an active operation whose owner is gone is ``interrupted``.

    Only needed where recording it failed (a store that cannot be written); otherwise a no-op.
    """
    if record.finished:
        return record
    verdict = _owner_gone(record.id, record.host, record.pid, record.pid_started)
    if verdict is None:
        return record
    children = {
        name: ChildState("interrupted", child.message) if child.state in CHILD_ACTIVE_STATES else child
        for name, child in record.children.items()
    }
    return dataclasses.replace(record, state="interrupted", finished_at=record.finished_at or utc_now(),
                               error=verdict, children=children)


def _group_children(rows: builtins.list[tuple[Any, ...]]) -> dict[str, dict[str, ChildState]]:
    grouped: dict[str, dict[str, ChildState]] = {}
    for op_id, child, state, message in rows:
        grouped.setdefault(op_id, {})[child] = ChildState(state, message)
    return grouped


def _process_started(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot, /proc/<pid>/stat field 22); None if dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None  # a zombie has exited; only its exit status is left
    return fields[19]


def _owner_gone(op_id: str, host: str, pid: int, pid_started: str | None) -> str | None:
    """Why the operation's owner is known to be gone, or None while it may still be running."""
    if host != _HOST:
        return None  # another machine's processes cannot be seen from here
    if pid == os.getpid() and pid_started == _OWN_START:
        if op_id in _LIVE_OPS:
            return None
        return f"abandoned by its process ({pid} on {host}) before it finished"
    if _HAVE_PROC:
        current = _process_started(pid)
        alive = current is not None and (pid_started is None or current == pid_started)
    else:
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
    return None if alive else f"its process ({pid} on {host}) ended before it finished"


_OWN_START = _process_started(os.getpid()) if _HAVE_PROC else None
