"""Operations as the index knows them: ``OperationRecord`` and its members' ``ChildState``.

A record is read from the index (``OperationStore``) and shown by ``orbit ops`` and the console; its
``to_json`` is the SPEC §6.1 shape. :func:`as_seen` is how a reader sees a record whose owner is gone
but that nobody could record as ``interrupted`` yet (a store that cannot be written).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orbit_ops.operations.kinds import (
    ACTIVE_STATES,
    MEMBER_ACTIVE_STATES,
    MemberState,
    OperationKind,
    OperationState,
)
from orbit_ops.operations.liveness import owner_gone

# The index's columns in the order :func:`record_from_row` reads them.
COLUMNS = (
    "id, kind, target, state, done, total, created_at, started_at, finished_at, error, result, host, pid,"
    " pid_started, cancel_requested"
)


def utc_now() -> str:
    """The current UTC time as ISO 8601 with milliseconds and ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ChildState:
    """Where one member of a sweep (a solution) stands."""

    state: MemberState
    message: str = ""


@dataclass(frozen=True)
class OperationRecord:
    """One operation as the index knows it."""

    id: str
    kind: OperationKind
    target: str
    state: OperationState
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
    user: str | None = None  # who started it, as the shared state store records it (None: this machine's index)

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


def record_from_row(row: tuple[Any, ...], children: Mapping[str, dict[str, ChildState]]) -> OperationRecord:
    """The record of one index row (``COLUMNS`` first), with its members from ``group_children``."""
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
        kind=OperationKind(kind),
        target=target,
        state=OperationState(state),
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


def group_children(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, ChildState]]:
    """Operation id → member → its state, from ``(op_id, child, state, message)`` rows in their order."""
    grouped: dict[str, dict[str, ChildState]] = {}
    for op_id, child, state, message in rows:
        grouped.setdefault(op_id, {})[child] = ChildState(MemberState(state), message)
    return grouped


def as_seen(record: OperationRecord) -> OperationRecord:
    """``record`` as a reader should see it: an active operation whose owner is gone is ``interrupted``.

    Only needed where recording it failed (a store that cannot be written); otherwise a no-op.
    """
    if record.finished:
        return record
    verdict = owner_gone(record.id, record.host, record.pid, record.pid_started)
    if verdict is None:
        return record
    children = {
        name: ChildState(MemberState.INTERRUPTED, child.message) if child.state in MEMBER_ACTIVE_STATES else child
        for name, child in record.children.items()
    }
    return dataclasses.replace(record, state=OperationState.INTERRUPTED,
                               finished_at=record.finished_at or utc_now(), error=verdict, children=children)
