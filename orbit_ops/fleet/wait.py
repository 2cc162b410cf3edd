"""Waiting for health without writing (``orbit wait``, SPEC §3.6): poll until every solution has settled.

A solution has *settled* when its health is ``healthy`` or ``degraded``: the platform has decided whether its
latest revisions run. ``progressing``, ``missing`` and ``unknown`` may still change (a revision activating, an
app another operation is creating, a listing that failed once), so they are read again, at a bounded interval,
until they settle or the timeout passes. Each read is one app listing plus :func:`~orbit_ops.fleet.status.
read_health` (one listing of app states, revisions only of the apps not plainly healthy), and only the
solutions not yet settled are judged again. Nothing is written, and no operation is recorded: waiting is a
read, and runs beside whatever operation is rolling the fleet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orbit_ops.backends.base import AppPlatform
from orbit_ops.errors import BackendError
from orbit_ops.fleet.drift import LiveSnapshot
from orbit_ops.fleet.health import AppHealth, Health, solution_health
from orbit_ops.fleet.status import read_health
from orbit_ops.names import APP_COMPONENTS, azure_names

DEFAULT_WAIT_TIMEOUT = 300.0  # seconds `orbit wait` waits when no --timeout is given
POLL_INTERVAL = 2.0  # seconds between two reads of the platform (less when the timeout comes sooner)
SETTLED = (Health.HEALTHY, Health.DEGRADED)


@dataclass(frozen=True)
class SolutionHealth:
    """One solution's health: the worst of its apps', with the worst app's reason named."""

    id: str
    apps: Mapping[str, AppHealth]  # by component: orbit, agent, mc

    @property
    def health(self) -> Health:
        return solution_health(self.apps)[0]

    @property
    def health_reason(self) -> str | None:
        """``agent: image pull failed: …`` (as ``orbit status`` says it), None when healthy."""
        return solution_health(self.apps)[1]

    @property
    def settled(self) -> bool:
        return self.health in SETTLED

    def to_json(self) -> dict[str, Any]:
        """``{id, health, health_reason, apps: {component: {name, health, revision, ready_revision,
        health_reason}}}``: keyed as ``orbit status --json`` keys its apps, with the same health keys."""
        names = azure_names(self.id).apps
        return {"id": self.id, "health": str(self.health), "health_reason": self.health_reason,
                "apps": {component: {"name": names[component], "health": str(app.health), "revision": app.revision,
                                     "ready_revision": app.ready_revision, "health_reason": app.health_reason}
                         for component, app in self.apps.items()}}


@dataclass(frozen=True)
class WaitResult:
    """The health of every solution waited for (in the order asked) when all settled or the time ran out."""

    solutions: Sequence[SolutionHealth]
    timed_out: bool  # some solution had not settled when the timeout passed
    reads: int  # how many times the platform was read

    @property
    def exit_code(self) -> int:
        """0 when every solution is healthy, 1 otherwise (degraded, or not settled in time)."""
        return 0 if all(s.health is Health.HEALTHY for s in self.solutions) else 1


async def read_solution_health(platform: AppPlatform, ids: Sequence[str]) -> list[SolutionHealth]:
    """The health of each solution of ``ids``, from one app listing and one health read. Never raises: a
    listing that fails makes every app ``unknown`` with the reason."""
    names = {solution_id: azure_names(solution_id).apps for solution_id in ids}
    wanted = [name for apps in names.values() for name in apps.values()]
    try:
        listed = await platform.list_apps()
    except BackendError as exc:
        snapshot = LiveSnapshot(apps={}, storages={}, shares={}, error=f"apps not listed: {exc}")
    else:
        health = await read_health(platform, [name for name in wanted if name in listed])
        snapshot = LiveSnapshot(apps=listed, storages={}, shares={}, health=health)
    return [SolutionHealth(solution_id, {component: snapshot.health_of(apps[component])
                                         for component in APP_COMPONENTS})
            for solution_id, apps in names.items()]


async def wait_for_health(platform: AppPlatform, ids: Sequence[str], timeout: float = DEFAULT_WAIT_TIMEOUT, *,
                          interval: float = POLL_INTERVAL,
                          on_settled: Callable[[SolutionHealth], None] | None = None) -> WaitResult:
    """Read the health of ``ids`` until every one is healthy or degraded, or ``timeout`` seconds have passed.

    ``timeout`` 0 answers from one read. ``on_settled`` hears each solution once, when it settles.
    """
    deadline = time.monotonic() + timeout
    latest: dict[str, SolutionHealth] = {}
    pending = list(dict.fromkeys(ids))
    reads = 0
    while True:
        reads += 1
        for solution in await read_solution_health(platform, pending):
            latest[solution.id] = solution
            if solution.settled and on_settled is not None:
                on_settled(solution)
        pending = [solution_id for solution_id in pending if not latest[solution_id].settled]
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            break
        await asyncio.sleep(min(interval, left))
    return WaitResult([latest[solution_id] for solution_id in dict.fromkeys(ids)], bool(pending), reads)
