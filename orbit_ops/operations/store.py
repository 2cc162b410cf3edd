"""The operations index: ``operations.sqlite`` under a workspace's ``.orbit/`` folder.

Every build, provision, sweep and roll runs as an operation (SPEC §3.5): the runner
(``orbit_ops.operations.runner``) records it here and appends its events to its log
(``orbit_ops.operations.log``). The index holds each operation's state, progress, members (children),
owner and cancel flag. WAL mode, a busy timeout and short ``BEGIN IMMEDIATE`` transactions make it safe
to share between the TUI, a CLI follower and a CI job at once; one instance may be shared by threads.

Reading an active operation checks its owner (``orbit_ops.operations.liveness``): one whose process is
gone is recorded ``interrupted``, in the index and at the end of its log. Cancel across processes is a
flag here that the owner polls. Nothing reaches the store unredacted. See
``docs/decisions/0007-operations-store.md``.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import secrets
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orbit_ops.errors import BackendError, NotFoundError, RefusedError
from orbit_ops.operations.events import ChildChanged, Event, OperationFinished, ProgressChanged
from orbit_ops.operations.kinds import (
    ACTIVE_STATES,
    MEMBER_ACTIVE_STATES,
    MemberState,
    OperationKind,
    OperationState,
)
from orbit_ops.operations.liveness import HOST, OWN_START, owner_gone
from orbit_ops.operations.log import LogReader, append_foreign
from orbit_ops.operations.records import (
    COLUMNS,
    OperationRecord,
    as_seen,
    group_children,
    record_from_row,
    utc_now,
)
from orbit_ops.operations.shared import OperationMirror
from orbit_ops.redact import redact
from orbit_ops.sqlitestore import SqliteStore
from orbit_ops.statedir import is_unwritable, make_private_dir

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
_ID_CHARS = re.compile(r"^[0-9a-z-]+$")


class OperationStore(SqliteStore):
    """The operations index (and where their logs are) under a workspace's ``.orbit/`` folder.

    One instance may be shared by threads; any number of instances, in any number of processes,
    may use the same folder.
    """

    LABEL = "operation store"
    SCHEMA_VERSION = _SCHEMA_VERSION
    # With a shared state store, where the runner also publishes each operation (``orbit_ops.operations.shared``).
    mirror: OperationMirror | None = None

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
        return as_seen(record)

    def list(self, limit: int | None = None, kind: OperationKind | None = None) -> builtins.list[OperationRecord]:
        """Operations newest first, optionally only the newest ``limit`` and only of ``kind``.

        Raises:
            BackendError: the index cannot be read.
        """
        records = self._query(limit, kind)
        if self._reap([r for r in records if not r.finished]):
            records = self._query(limit, kind)
        return [as_seen(record) for record in records]

    def read_events(self, ref: str) -> builtins.list[Event]:
        """Every complete event in the operation's log, in order (``orbit logs`` without follow).

        Raises:
            NotFoundError: see ``get``.
            BackendError: the log cannot be read.
        """
        return LogReader(self.log_path(self.get(ref).id)).read()

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

    # -- written by the runner (``orbit_ops.operations.runner``) --------------------------------

    def create(self, kind: OperationKind, target: str, total: int) -> OperationRecord:
        """Record a new ``queued`` operation owned by this process, under a fresh id.

        Raises:
            BackendError: the index cannot be written.
        """
        for _attempt in range(50):
            now = datetime.now(UTC)
            op_id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
            created_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            try:
                with self._write() as conn:
                    conn.execute(
                        "INSERT INTO operations"
                        " (id, kind, target, state, total, created_at, host, pid, pid_started)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (op_id, kind, redact(target), OperationState.QUEUED, total, created_at, HOST, os.getpid(),
                         OWN_START),
                    )
            except BackendError as exc:
                if isinstance(exc.__cause__, sqlite3.IntegrityError):
                    continue
                raise
            return self._fetch(op_id)
        raise BackendError(f"could not allocate a unique operation id in {self.path}")

    def mark_running(self, op_id: str, at: str) -> None:
        """Record that this process started running ``op_id`` at ``at``.

        Raises:
            BackendError: the index cannot be written.
        """
        with self._write() as conn:
            conn.execute(
                "UPDATE operations SET state = ?, started_at = ?, pid = ?, pid_started = ? WHERE id = ?",
                (OperationState.RUNNING, at, os.getpid(), OWN_START, op_id),
            )

    def record_events(self, op_id: str, events: builtins.list[Event]) -> None:
        """Store what a batch of events changes in the index (progress, children) in one transaction.

        Only the last progress and each child's last state matter; children keep the order in
        which they first appeared. A batch of log lines alone writes nothing here.

        Raises:
            BackendError: the index cannot be written.
        """
        progress: ProgressChanged | None = None
        children: dict[str, tuple[MemberState, str]] = {}
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

    def finish(self, event: OperationFinished, result: str | None = None) -> None:
        """Record the end; ``result`` is ``event.result`` as JSON when the caller has it already.

        Raises:
            BackendError: the index cannot be written.
        """
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
        such operations as interrupted all the same (``records.as_seen``), and whoever can write records it.
        """
        reaped = False
        if self.read_only is not None:
            return reaped
        for record in records:
            verdict = owner_gone(record.id, record.host, record.pid, record.pid_started)
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
                "UPDATE operations SET state = ?, finished_at = ?, error = ?"
                " WHERE id = ? AND state IN (?, ?) AND host = ? AND pid = ?",
                (OperationState.INTERRUPTED, at, reason, record.id, *ACTIVE_STATES, record.host, record.pid),
            )
            if cursor.rowcount != 1:
                return False  # finished meanwhile, or another reader got there first
            marks = ", ".join("?" for _ in MEMBER_ACTIVE_STATES)
            children = conn.execute(
                f"SELECT child FROM operation_children WHERE op_id = ? AND state IN ({marks}) ORDER BY rowid",
                (record.id, *MEMBER_ACTIVE_STATES),
            ).fetchall()
            conn.execute(
                f"UPDATE operation_children SET state = ? WHERE op_id = ? AND state IN ({marks})",
                (MemberState.INTERRUPTED, record.id, *MEMBER_ACTIVE_STATES),
            )
        # Only the reader whose update won writes the closing events, so they appear once.
        events: builtins.list[Event] = [
            ChildChanged(record.id, child, MemberState.INTERRUPTED) for (child,) in children
        ]
        events.append(OperationFinished(record.id, OperationState.INTERRUPTED, at, reason))
        append_foreign(self.log_path(record.id), events)
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
        row = self._fetchone(f"SELECT {COLUMNS} FROM operations WHERE id = ?", (op_id,))
        if row is None:
            raise NotFoundError(f"no operation {op_id!r}")
        children = self._fetchall(
            "SELECT op_id, child, state, message FROM operation_children WHERE op_id = ? ORDER BY rowid",
            (op_id,),
        )
        return record_from_row(row, group_children(children))

    def _query(self, limit: int | None, kind: OperationKind | None) -> builtins.list[OperationRecord]:
        where, params = ("WHERE kind = ?", (kind,)) if kind is not None else ("", ())
        selected = f"SELECT {COLUMNS}, seq FROM operations {where} ORDER BY seq DESC LIMIT ?"
        bounded = (*params, -1 if limit is None else max(limit, 0))
        rows = self._fetchall(selected, bounded)
        children = self._fetchall(
            f"SELECT c.op_id, c.child, c.state, c.message FROM operation_children c"
            f" JOIN ({selected}) o ON c.op_id = o.id ORDER BY c.rowid",
            bounded,
        )
        grouped = group_children(children)
        return [record_from_row(row, grouped) for row in rows]

    def _fetchone(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._guard():
            row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
            return row

    def _fetchall(self, sql: str, params: tuple[Any, ...]) -> builtins.list[tuple[Any, ...]]:
        with self._guard():
            return self._conn.execute(sql, params).fetchall()

