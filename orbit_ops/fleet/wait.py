"""Waiting for health (SPEC §3.6): poll until solutions have settled, for ``orbit wait`` and for provisioning.

A solution has *settled* when its health is ``healthy`` or ``degraded``: the platform has decided whether its
latest revisions run. ``progressing``, ``missing`` and ``unknown`` may still change (a revision activating, an
app another operation is creating, a listing that failed once), so they are read again, at a bounded interval,
until they settle or the timeout passes. Each read is one app listing plus :func:`~orbit_ops.fleet.status.
read_health` (one listing of app states, revisions only of the apps not plainly healthy), and only the
solutions not yet settled are judged again. Nothing is written.

One loop does the polling, :class:`HealthWatcher`: ``orbit wait`` hands it every solution at once, and a sweep
hands it each member as its writes end (decision 0048). Whoever waits, each read covers every solution still
awaited, so a sweep of forty costs one read per interval, not forty. The first read comes at once and the
pauses between reads grow from :data:`FIRST_INTERVAL` to :data:`POLL_INTERVAL` (reset when a newcomer
arrives), so a platform that has already decided (the local one) costs one read and no sleep; a pause is
never shorter than the read before it took, so a slow platform (a large fleet on Azure) is read at most half
the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orbit_ops.backends.base import AppPlatform
from orbit_ops.errors import BackendError
from orbit_ops.fleet.drift import LiveSnapshot
from orbit_ops.fleet.health import AppHealth, Health, solution_health
from orbit_ops.fleet.provision import still_current
from orbit_ops.fleet.resources import App
from orbit_ops.fleet.status import read_health
from orbit_ops.names import APP_COMPONENTS, azure_names

DEFAULT_WAIT_TIMEOUT = 300.0  # seconds `orbit wait` waits when no --timeout is given
POLL_INTERVAL = 2.0  # the longest pause between two reads of the platform (less when a timeout comes sooner)
FIRST_INTERVAL = 0.2  # the first pause after a read; each further one doubles, up to POLL_INTERVAL
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

    def of(self, components: Collection[str]) -> tuple[Health, str | None]:
        """The health and reason of ``components`` only (the apps a sweep wrote), worded as :attr:`health_reason`."""
        return solution_health({component: app for component, app in self.apps.items() if component in components})

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


async def read_solution_health(platform: AppPlatform, ids: Sequence[str],
                               listed: Mapping[str, App] | None = None) -> list[SolutionHealth]:
    """The health of each solution of ``ids``, from one app listing (``listed``, when the caller has a current
    one) and one health read. Never raises: a listing that fails makes every app ``unknown`` with the reason."""
    names = {solution_id: azure_names(solution_id).apps for solution_id in ids}
    wanted = [name for apps in names.values() for name in apps.values()]
    try:
        if listed is None:
            listed = await platform.list_apps()
    except BackendError as exc:
        snapshot = LiveSnapshot(apps={}, storages={}, shares={}, error=f"apps not listed: {exc}")
    else:
        health = await read_health(platform, [name for name in wanted if name in listed])
        snapshot = LiveSnapshot(apps=listed, storages={}, shares={}, health=health)
    return [SolutionHealth(solution_id, {component: snapshot.health_of(apps[component])
                                         for component in APP_COMPONENTS})
            for solution_id, apps in names.items()]


@dataclass(frozen=True)
class Watched:
    """How a followed solution ended: its last health read, and whether the apps followed had settled."""

    solution: SolutionHealth
    settled: bool
    waited: float  # seconds from the start of the follow to the read that ended it


@dataclass(eq=False)
class _Waiter:
    id: str
    components: tuple[str, ...]
    deadline: float | None  # None: answered by the next read, never waited for
    started: float
    on_read: Callable[[SolutionHealth], None] | None
    future: asyncio.Future[Watched] = field(repr=False)

    def settled_by(self, solution: SolutionHealth) -> bool:
        return solution.of(self.components)[0] in SETTLED


class HealthWatcher:
    """One poller for everyone waiting on health: each read covers every solution still awaited.

    Use as ``async with HealthWatcher(platform) as watcher``; :meth:`follow` returns when its solution
    settles, its timeout passes, or (with no timeout) the next read has judged it. Leaving the block stops
    the poller.
    """

    def __init__(self, platform: AppPlatform, *, interval: float = POLL_INTERVAL,
                 listed: LiveSnapshot | None = None) -> None:
        self._platform = platform
        # A listing just read (a sweep's): the first read takes its apps while it is current (decision 0072).
        self._listed = listed
        self._longest = interval
        self._pause = min(FIRST_INTERVAL, interval)
        self._last_read = float("-inf")
        self._read_cost = 0.0  # how long the last read took: the pause after it is never shorter
        self._waiters: list[_Waiter] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reads = 0  # how many times the platform was read

    async def __aenter__(self) -> HealthWatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def follow(self, solution_id: str, timeout: float | None, *, components: Sequence[str] = APP_COMPONENTS,
                     on_read: Callable[[SolutionHealth], None] | None = None) -> Watched:
        """Wait until the apps ``components`` of ``solution_id`` are healthy or degraded (the worst of them), or
        ``timeout`` seconds have passed (0: one read); ``timeout`` None is answered by the next read whatever it
        says. ``on_read`` hears each read of the solution as it comes."""
        started = time.monotonic()
        waiter = _Waiter(solution_id, tuple(components), None if timeout is None else started + timeout, started,
                         on_read, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        self._pause = min(FIRST_INTERVAL, self._longest)  # a newcomer is read soon
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._poll())
        try:
            return await waiter.future
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def _poll(self) -> None:
        try:
            while self._waiters:
                due = min([self._last_read + max(self._pause, self._read_cost),
                           *(w.deadline for w in self._waiters if w.deadline is not None)])
                if (delay := due - time.monotonic()) > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
                    continue  # a newcomer may have brought the next read forward
                await self._read()
        except Exception as exc:  # a bug in a read must reach every waiter, not leave them waiting forever
            for waiter in self._waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(exc)

    async def _read(self) -> None:
        batch = list(self._waiters)
        self._last_read = time.monotonic()
        self.reads += 1
        listed, self._listed = self._listed, None
        apps = listed.apps if listed is not None and still_current(self._platform, listed) else None
        read = {solution.id: solution for solution in await read_solution_health(
            self._platform, list(dict.fromkeys(w.id for w in batch)), apps)}
        now = time.monotonic()
        self._read_cost = now - self._last_read
        for waiter in batch:
            solution = read[waiter.id]
            if waiter.on_read is not None:
                waiter.on_read(solution)
            settled = waiter.settled_by(solution)
            if settled or waiter.deadline is None or now >= waiter.deadline:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                if not waiter.future.done():
                    waiter.future.set_result(Watched(solution, settled, now - waiter.started))
        self._pause = min(self._pause * 2, self._longest)


async def wait_for_health(platform: AppPlatform, ids: Sequence[str], timeout: float = DEFAULT_WAIT_TIMEOUT, *,
                          interval: float = POLL_INTERVAL,
                          on_settled: Callable[[SolutionHealth], None] | None = None) -> WaitResult:
    """Read the health of ``ids`` until every one is healthy or degraded, or ``timeout`` seconds have passed.

    ``timeout`` 0 answers from one read; ``interval`` is the longest pause between reads. ``on_settled``
    hears each solution once, when it settles.
    """
    async with HealthWatcher(platform, interval=interval) as watcher:

        async def one(solution_id: str) -> Watched:
            watched = await watcher.follow(solution_id, timeout)
            if watched.settled and on_settled is not None:
                on_settled(watched.solution)
            return watched

        results = await asyncio.gather(*(one(solution_id) for solution_id in dict.fromkeys(ids)))
    latest = {watched.solution.id: watched for watched in results}
    return WaitResult([latest[solution_id].solution for solution_id in dict.fromkeys(ids)],
                      any(not watched.settled for watched in results), watcher.reads)
