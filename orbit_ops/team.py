"""The team's operations: this machine's index merged with the shared state store's, for ``orbit ops`` and the console.

Rows are ``OperationRecord.to_json`` dicts (SPEC §6.1 ``ops`` keys and more) with ``user`` added; an operation
this machine ran is shown as its own index has it (fresher than the store by up to one flush), with the user the
store recorded. When the store cannot be reached the local cache alone is returned, with the reason, so a front
end can say so.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from orbit_ops.errors import StateStoreUnreachableError
from orbit_ops.operations.events import Event
from orbit_ops.operations.kinds import MemberState, OperationKind, OperationState
from orbit_ops.operations.records import OperationRecord

if TYPE_CHECKING:
    from orbit_ops.workspace import Workspace


async def team_operations(workspace: Workspace, *, limit: int | None = None,
                          kind: OperationKind | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """The newest ``limit`` operations of ``kind`` the team ran, newest first, and why the store was left out
    (None when it was read, or there is none: ``state: local``).

    Raises:
        BackendError: this machine's index cannot be read.
    """
    import asyncio

    records = await asyncio.to_thread(workspace.operations().list, limit, kind)
    local = [record.to_json() | {"user": None} for record in records]
    shared = workspace.shared_operations()
    if shared is None:
        return local, None
    try:
        team = await shared.list_records()
    except StateStoreUnreachableError as exc:
        return local, str(exc)
    by_id = {row["id"]: row for row in local}
    for row in team:
        if kind is not None and row["kind"] != kind:
            continue
        mine = by_id.get(row["id"])
        if mine is None:
            by_id[row["id"]] = row
        else:
            mine["user"] = row.get("user")
    merged = sorted(by_id.values(), key=lambda row: (row["created_at"], row["id"]), reverse=True)
    return (merged if limit is None else merged[:limit]), None


async def team_records(workspace: Workspace) -> tuple[list[OperationRecord], str | None]:
    """:func:`team_operations` as records (what the console's Operations screen shows), each with its ``user``."""
    rows, unreachable = await team_operations(workspace)
    return [record_of(row) for row in rows], unreachable


def record_of(row: dict[str, Any]) -> OperationRecord:
    """The record of one ``team_operations`` row (a shared row lacks what only its owner's index holds)."""
    from orbit_ops.operations.records import ChildState

    progress = row.get("progress") or {}
    children = {name: ChildState(MemberState(child["state"]), child.get("message", ""))
                for name, child in (row.get("children") or {}).items()}
    return OperationRecord(
        id=row["id"], kind=OperationKind(row["kind"]), target=row.get("target") or "",
        state=OperationState(row["state"]), done=int(progress.get("done", 0)), total=int(progress.get("total", 0)),
        created_at=row.get("created_at") or "", started_at=row.get("started_at"),
        finished_at=row.get("finished_at"), error=row.get("error"), result=row.get("result"),
        host=row.get("host") or "", pid=int(row.get("pid") or 0), pid_started=row.get("pid_started"),
        cancel_requested=bool(row.get("cancel_requested")), children=children, user=row.get("user"))


async def operation_record(workspace: Workspace, op_id: str) -> OperationRecord:
    """Operation ``op_id`` (a unique prefix will do): this machine's, else the team's from the shared store.

    Raises:
        NotFoundError: neither this machine nor the shared store has it.
        StateStoreUnreachableError: it is not this machine's and the shared store cannot be reached.
    """
    import asyncio

    from orbit_ops.errors import NotFoundError

    try:
        return await asyncio.to_thread(workspace.operations().get, op_id)
    except NotFoundError:
        shared = workspace.shared_operations()
        if shared is None:
            raise
        row = await shared.record(op_id)
        if row is None:
            raise
        return record_of(row)


async def follow_operation(workspace: Workspace, op_id: str) -> AsyncGenerator[list[Event | bytes], None]:
    """Replay and tail operation ``op_id`` wherever it runs, in batches (see ``operations.log.follow_batches``;
    log lines of this machine's operations come as stored bytes). Another machine's operation is followed
    through the shared store (``SharedOperations.follow``: ranged reads from the last offset), an event a batch.

    Raises:
        NotFoundError: neither this machine nor the shared store has it.
        StateStoreUnreachableError: it is not this machine's and the shared store cannot be reached.
    """
    import asyncio
    import contextlib

    from orbit_ops.errors import NotFoundError
    from orbit_ops.operations.log import follow_batches

    store = workspace.operations()
    try:
        record = await asyncio.to_thread(store.get, op_id)
    except NotFoundError:
        record = None
    if record is not None:
        async with contextlib.aclosing(follow_batches(store, record.id, raw_log_lines=True)) as batches:
            async for batch in batches:
                yield batch
        return
    found = await operation_record(workspace, op_id)  # raises when the team's store has it not either
    shared = workspace.shared_operations()
    assert shared is not None  # operation_record found it there
    async with contextlib.aclosing(shared.follow(found.id)) as events:
        async for event in events:
            yield [event]


async def request_cancel(workspace: Workspace, op_id: str, *, by: str) -> OperationRecord:
    """Ask operation ``op_id`` to stop, wherever it runs: this machine's index, else the shared store (its owner
    sees the request within a few seconds). ``by`` (user on host) is recorded with a shared request.

    Raises:
        NotFoundError: no such operation here or in the shared store.
        RefusedError: it has already finished.
        StateStoreUnreachableError: it is not this machine's and the shared store cannot be reached.
    """
    import asyncio

    from orbit_ops.errors import NotFoundError

    try:
        return await asyncio.to_thread(workspace.operations().request_cancel, op_id)
    except NotFoundError:
        shared = workspace.shared_operations()
        if shared is None:
            raise
        return record_of(await shared.request_cancel(op_id, by=by) | {"cancel_requested": True})
