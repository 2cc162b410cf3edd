"""The fleet at a glance: every solution's status against one live snapshot, and its last operation.

This is what the console's Solutions screen and ``orbit status`` show; it reads the platform with
one listing per resource type and the operation index once, whatever the size of the fleet, and the
revisions of only those apps whose listed state does not show them plainly healthy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from orbit_ops.backends.base import AppPlatform, ShareStore
from orbit_ops.bulk import bulk_built
from orbit_ops.config.model import SolutionSpec
from orbit_ops.errors import BackendError
from orbit_ops.fleet.drift import LiveSnapshot, SolutionStatus, Wanted, solution_status, wanted
from orbit_ops.fleet.health import AppHealth, Health, app_health, plainly_healthy
from orbit_ops.fleet.provision import read_live
from orbit_ops.workspace import Workspace

REVISION_READS = 8  # revision reads in flight at once
WANTED_CHUNK = 100  # solutions whose desired state is made between two looks at the listings (see read_statuses)


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


async def read_health(platform: AppPlatform, apps: Collection[str]) -> dict[str, AppHealth]:
    """The health of each app of ``apps``: one listing of app states, then the revisions of each app that is
    not plainly healthy. Never raises: what could not be read is ``unknown`` with the reason."""
    try:
        states = await platform.list_app_states()
    except BackendError as exc:
        return {name: AppHealth(Health.UNKNOWN, health_reason=f"app states not read: {exc}") for name in apps}
    listed = [name for name in apps if name in states]
    with bulk_built():
        health = {name: AppHealth(Health.HEALTHY, facts.latest_revision, facts.latest_ready_revision)
                  for name in listed if plainly_healthy(facts := states[name])}
    gate = asyncio.Semaphore(REVISION_READS)

    async def judged(name: str) -> tuple[str, AppHealth]:
        facts = states[name]
        async with gate:
            try:
                revisions = await platform.list_revisions(name)
            except BackendError as exc:
                return name, AppHealth(Health.UNKNOWN, facts.latest_revision or None,
                                       facts.latest_ready_revision or None, f"revisions not read: {exc}")
        # "now" after the read: an age from the service's createdTime is never short by the read's latency.
        return name, app_health(facts, revisions, datetime.now(UTC))

    health.update(await asyncio.gather(*(judged(name) for name in listed if name not in health)))
    return health


async def read_live_with_health(platform: AppPlatform, shares: ShareStore,
                                apps: Collection[str] | None = None) -> LiveSnapshot:
    """:func:`~orbit_ops.fleet.provision.read_live` plus the health of ``apps`` (default: every listed app).

    Raises:
        BackendError: a listing of resources failed (health that cannot be read is ``unknown`` instead).
    """
    snapshot = await read_live(platform, shares)
    wanted = snapshot.apps.keys() if apps is None else [name for name in apps if name in snapshot.apps]
    return replace(snapshot, health=await read_health(platform, wanted))


async def read_statuses(workspace: Workspace, specs: Sequence[SolutionSpec],
                        apps: Collection[str] | None = None) -> tuple[list[SolutionStatus], LiveSnapshot]:
    """The status of each of ``specs`` against one :func:`read_live_with_health` (health of ``apps``, default
    every listed app), and that snapshot.

    The desired state of each solution needs nothing live, so it is made while the listings are awaited
    (decision 0087), ``WANTED_CHUNK`` solutions at a time with the event loop looked at in between, so that the
    pages the listings' threads hand over are read without waiting for all of it.

    Raises:
        BackendError: a listing of resources failed (health that cannot be read is ``unknown`` instead).
    """
    platform = workspace.platform()
    reading = asyncio.ensure_future(read_live_with_health(platform, platform, apps))
    try:
        releases = workspace.release_index()
        target = workspace.target()
        known: list[Wanted] = []
        for start in range(0, len(specs), WANTED_CHUNK):
            await asyncio.sleep(0)
            with bulk_built():
                known += [wanted(spec, target, releases) for spec in specs[start:start + WANTED_CHUNK]]
        snapshot = await reading
    finally:
        if not reading.done():
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
    with bulk_built():
        return [solution_status(spec, target, releases, snapshot, done)
                for spec, done in zip(specs, known, strict=True)], snapshot


async def fleet_status(workspace: Workspace) -> tuple[list[SolutionStatus], LiveSnapshot]:
    """Status of every solution; a platform that cannot be read gives ``unknown`` with the reason.

    Raises:
        ConfigError / InvalidFilesError: a solution file is invalid.
    """
    platform = workspace.platform()
    try:
        snapshot = await read_live_with_health(platform, platform)
    except BackendError as exc:
        snapshot = LiveSnapshot(apps={}, storages={}, shares={}, error=str(exc))
    releases = workspace.release_index()
    target = workspace.target()
    specs = workspace.solutions()
    with bulk_built():
        return [solution_status(spec, target, releases, snapshot) for spec in specs], snapshot
