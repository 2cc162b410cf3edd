"""The team's operations: this machine's index merged with the shared state store's, for ``orbit ops`` and the console.

Rows are ``OperationRecord.to_json`` dicts (SPEC §6.1 ``ops`` keys and more) with ``user`` added; an operation
this machine ran is shown as its own index has it (fresher than the store by up to one flush), with the user the
store recorded. When the store cannot be reached the local cache alone is returned, with the reason, so a front
end can say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orbit_ops.errors import StateStoreUnreachableError
from orbit_ops.operations.kinds import OperationKind

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
