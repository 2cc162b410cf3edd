"""The fleet at a glance: every solution's status against one live snapshot, and its last operation.

This is what the console's Solutions screen and ``orbit status`` show; it reads the platform with
one listing per resource type and the operation index once, whatever the size of the fleet.
"""

from __future__ import annotations

from dataclasses import dataclass

from orbit_ops.bulk import bulk_built
from orbit_ops.errors import BackendError
from orbit_ops.fleet.drift import LiveSnapshot, SolutionStatus, solution_status
from orbit_ops.fleet.provision import read_live
from orbit_ops.workspace import Workspace


@dataclass(frozen=True)
class LastOperation:
    """The newest operation that touched a solution, and how it went for that solution."""

    op_id: str
    kind: str
    state: str  # the solution's own state in it: succeeded, failed, skipped, running...
    at: str  # when the operation finished (or was created, while it runs)
    message: str = ""


def last_operations(workspace: Workspace, limit: int = 500) -> dict[str, LastOperation]:
    """Solution id → its newest operation among the newest ``limit`` operations."""
    found: dict[str, LastOperation] = {}
    for record in workspace.operations().list(limit=limit):  # newest first
        for child, state in record.children.items():
            if child not in found:
                found[child] = LastOperation(record.id, record.kind, state.state,
                                             record.finished_at or record.created_at, state.message)
    return found


async def fleet_status(workspace: Workspace) -> tuple[list[SolutionStatus], LiveSnapshot]:
    """Status of every solution; a platform that cannot be read gives ``unknown`` with the reason.

    Raises:
        ConfigError / InvalidFilesError: a solution file is invalid.
    """
    platform = workspace.platform()
    try:
        snapshot = await read_live(platform, platform)
    except BackendError as exc:
        snapshot = LiveSnapshot(apps={}, storages={}, shares={}, error=str(exc))
    releases = workspace.release_index()
    target = workspace.target()
    specs = workspace.solutions()
    with bulk_built():
        return [solution_status(spec, target, releases, snapshot) for spec in specs], snapshot
