"""The fleet at a glance: every solution's status against one live snapshot, and its last operation.

This is what the console's Solutions screen and ``orbit status`` show; it reads the platform with
one listing per resource type and the operation index once, whatever the size of the fleet, and the
revisions of only those apps whose listed state does not show them plainly healthy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from orbit_ops.backends.base import AppPlatform, ShareStore
from orbit_ops.bulk import bulk_built
from orbit_ops.config.model import SolutionSpec
from orbit_ops.errors import BackendError
from orbit_ops.fleet.drift import LiveSnapshot, SolutionStatus, Wanted, solution_status, wanted
from orbit_ops.fleet.health import AppFacts, AppHealth, Health, app_health, plainly_healthy
from orbit_ops.fleet.provision import LiveListings, read_live
from orbit_ops.fleet.resources import App
from orbit_ops.names import APP_COMPONENTS, azure_names
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
        health = {name: found for name in listed if (found := listed_health(states[name])) is not None}
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


def listed_health(facts: AppFacts) -> AppHealth | None:
    """The health of an app that its listing shows plainly healthy; None when its revisions are to be read."""
    if plainly_healthy(facts):
        return AppHealth(Health.HEALTHY, facts.latest_revision, facts.latest_ready_revision)
    return None


async def read_live_with_health(platform: AppPlatform, shares: ShareStore,
                                apps: Collection[str] | None = None) -> LiveSnapshot:
    """:func:`~orbit_ops.fleet.provision.read_live` plus the health of ``apps`` (default: every listed app).

    Raises:
        BackendError: a listing of resources failed (health that cannot be read is ``unknown`` instead).
    """
    snapshot = await read_live(platform, shares)
    wanted = snapshot.apps.keys() if apps is None else [name for name in apps if name in snapshot.apps]
    return replace(snapshot, health=await read_health(platform, wanted))


async def read_statuses(workspace: Workspace, specs: Sequence[SolutionSpec], apps: Collection[str] | None = None,
                        on_status: Callable[[SolutionStatus], None] | None = None,
                        ) -> tuple[list[SolutionStatus], LiveSnapshot]:
    """The status of each of ``specs`` against one :func:`read_live_with_health` (health of ``apps``, default
    every listed app), and that snapshot; ``on_status`` is told each status as it is judged, in no set order.

    Nothing is waited for that need not be (decisions 0087, 0091 and 0092): the desired state of each solution
    needs nothing live, so it is made while the listings are awaited, ``WANTED_CHUNK`` solutions at a time with the
    event loop looked at in between (unless the platform ``lists_at_once``); and once the storages and the shares
    are listed, a solution is judged as soon as the pages read so far hold all its apps and show them plainly
    healthy (its status against those pages is the one against the whole listing: it reads only its own
    resources). The others are judged once everything is read.

    Raises:
        BackendError: a listing of resources failed (health that cannot be read is ``unknown`` instead).
    """
    platform = workspace.platform()
    arrivals = _Arrivals(None if apps is None else set(apps))
    listings = LiveListings(platform, platform, arrivals.page)
    tasks = (listings.apps, listings.storages, listings.shares)
    judged: dict[int, SolutionStatus] = {}
    try:
        for task in tasks:
            task.add_done_callback(lambda _: arrivals.news.set())
        releases = workspace.release_index()
        target = workspace.target()
        known: list[Wanted | None] = [None] * len(specs)
        # A platform whose listings are work of this process, not waits (``lists_at_once``: the local one) has
        # nothing to hide the desired states behind: each is made as its solution is judged, after the listings
        # (making them all first, beside the listings' threads, is 15-20 % slower at 10,000 solutions).
        ahead = 0 if getattr(platform, "lists_at_once", False) else len(specs)
        for start in range(0, ahead, WANTED_CHUNK):
            await asyncio.sleep(0)
            with bulk_built():
                for index in range(start, min(start + WANTED_CHUNK, len(specs))):
                    spec = specs[index]
                    known[index] = done = wanted(spec, target, releases)
                    h = done.desired.h if done.desired is not None else azure_names(spec.id).h
                    arrivals.expect(index, [f"{component}-{h}" for component in APP_COMPONENTS])
        while True:
            others = listings.others()
            if others is not None and arrivals.ready:
                partial = LiveSnapshot(apps=arrivals.apps, storages=others[0], shares=others[1],
                                       health=arrivals.health)
                ready, arrivals.ready = arrivals.ready, []
                for start in range(0, len(ready), WANTED_CHUNK):
                    with bulk_built():
                        for index in ready[start:start + WANTED_CHUNK]:
                            judged[index] = status = solution_status(specs[index], target, releases, partial,
                                                                     known[index])
                            if on_status is not None:
                                on_status(status)
                    await asyncio.sleep(0)
                continue
            if all(task.done() for task in tasks):
                break
            arrivals.news.clear()
            await arrivals.news.wait()
        snapshot = await listings.snapshot()
    finally:
        await listings.close()
    # The health of the apps not judged from the pages: their revisions read where the listing shows them unwell.
    listed = snapshot.apps.keys() if apps is None else [name for name in apps if name in snapshot.apps]
    health = {name: arrivals.health[name] for name in listed if name in arrivals.health}
    health.update(await read_health(platform, [name for name in listed if name not in health]))
    snapshot = replace(snapshot, health=health)
    statuses = []
    with bulk_built():
        for index, (spec, made) in enumerate(zip(specs, known, strict=True)):
            early = judged.get(index) if index not in arrivals.again else None
            if early is None:
                early = solution_status(spec, target, releases, snapshot, made)
                if on_status is not None:
                    on_status(early)
            statuses.append(early)
    return statuses, snapshot


class _Arrivals:
    """The app pages a listing has told so far, and the solutions all of whose apps they hold, plainly healthy."""

    def __init__(self, health_of: Collection[str] | None) -> None:
        self.health_of = health_of  # the apps whose health is read (None: every listed app)
        self.apps: dict[str, App] = {}
        self.states: dict[str, AppFacts] = {}
        self.health: dict[str, AppHealth] = {}  # of the apps some solution waits for, where the listing shows it
        self.ready: list[int] = []  # solutions whose apps are all listed and healthy, not judged yet
        self.again: set[int] = set()  # solutions judged from the whole listing (an app unwell, or listed twice)
        self.news = asyncio.Event()  # a page, or the end of a listing
        self._waiting: dict[str, int] = {}  # app name → the solution waiting for it
        self._solution_of: dict[str, int] = {}
        self._missing: dict[int, int] = {}  # solution → how many of its apps are still to come

    def _healthy(self, name: str) -> bool:
        """Whether app ``name`` (listed) is plainly healthy in the listing, its health kept if so."""
        health_of = self.health_of
        facts = self.states.get(name)
        found = listed_health(facts) if facts is not None and (health_of is None or name in health_of) else None
        if found is None:
            self.health.pop(name, None)
            return False
        self.health[name] = found
        return True

    def expect(self, index: int, names: Sequence[str]) -> None:
        """Solution ``index`` has the apps ``names``."""
        missing = 0
        unwell = False
        for name in names:
            self._solution_of[name] = index
            if name in self.apps:
                unwell = not self._healthy(name) or unwell
            else:
                self._waiting[name] = index
                missing += 1
        if unwell:
            self.again.add(index)
        elif missing:
            self._missing[index] = missing
        else:
            self.ready.append(index)

    def page(self, apps: Mapping[str, App], states: Mapping[str, AppFacts]) -> None:
        """``AppPlatform.list_apps``'s ``on_page``."""
        for name, app in apps.items():
            twice = name in self.apps  # listed twice: the last one stands, as in the listing's result
            if twice and (seen := self._solution_of.get(name)) is not None:
                self.again.add(seen)
            self.apps[name] = app
            if name in states:
                self.states[name] = states[name]
            else:
                self.states.pop(name, None)
            if twice and name in self.health:
                self._healthy(name)  # from its last listing
            index = self._waiting.pop(name, None)
            if index is None:
                continue
            if not self._healthy(name):
                self.again.add(index)
                self._missing.pop(index, None)
            elif (left := self._missing.get(index)) is not None:
                if left == 1:
                    del self._missing[index]
                    self.ready.append(index)
                else:
                    self._missing[index] = left - 1
        self.news.set()


async def fleet_status(workspace: Workspace, on_status: Callable[[SolutionStatus], None] | None = None,
                       ) -> tuple[list[SolutionStatus], LiveSnapshot]:
    """Status of every solution, judged as the listings arrive (:func:`read_statuses`, as ``orbit status``
    judges them, ``on_status`` told each as :func:`read_statuses` tells it); a platform that cannot be read gives
    ``unknown`` with the reason (those are not told).

    Raises:
        ConfigError / InvalidFilesError: a solution file is invalid.
    """
    specs = workspace.solutions()
    try:
        return await read_statuses(workspace, specs, on_status=on_status)
    except BackendError as exc:
        snapshot = LiveSnapshot(apps={}, storages={}, shares={}, error=str(exc))
    releases = workspace.release_index()
    target = workspace.target()
    with bulk_built():
        return [solution_status(spec, target, releases, snapshot) for spec in specs], snapshot
