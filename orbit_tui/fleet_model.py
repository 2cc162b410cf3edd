"""The fleet as the Solutions screen shows it: solutions with their pins judged, sync, last operation, integrity.

Freshness is computed from config and release records alone and published at once. Sync needs the platform:
``orbit_ops.fleet.status.fleet_status`` (one listing per resource type) runs in a worker of its own after every load
(once the table has been drawn) and on every interval while the fleet is shown, so the table never waits for it;
until it answers, sync says "—". A read still running when the interval comes round is left to finish (never
restarted, so a slow platform still answers). The same read gives each solution's health (``fleet_status`` judges
as ``orbit status`` does, each solution as soon as its apps are listed: listings only for a healthy fleet,
revisions for the apps that are not plainly healthy); a solution whose health turns ``degraded`` between two reads
is published on ``degraded`` (decision 0052), so the app can say so whatever screen is shown. Record integrity
(``orbit_ops.console_queries.integrity_report``: moved tags, lost images, vanished records) is judged for the pins
after each load, once the platform has answered, from the records' verification the whole console shares
(``orbit_tui.record_checks``: once per refresh).

The solution files are looked at (one ``scandir``) on every interval, so a file that breaks while the console is
open turns into an invalid row instead of its old content staying on screen as current. When the workspace cannot
be read at all, what was read last stays, with ``load_error`` saying why. ``changed`` is published after every
change: True for a refresh (rows whose content moved are flagged), False when nothing in the world changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from textual.signal import Signal
from textual.worker import Worker

from orbit_ops.config.load import solution_files_stamp
from orbit_ops.config.model import InvalidSolution, Listed, SolutionHeads, SolutionSet
from orbit_ops.console_queries import IntegrityReport, integrity_report
from orbit_ops.errors import OrbitError
from orbit_ops.fleet.drift import LiveSnapshot, ReleaseIndex, SolutionStatus
from orbit_ops.fleet.health import Health
from orbit_ops.fleet.status import LastOperation, fleet_status, last_operations
from orbit_ops.workspace import Workspace
from orbit_tui.jobs import Jobs
from orbit_tui.record_checks import RecordChecks
from orbit_tui.render import PinView, SolutionView, clock_time, pin_views

Stamp = tuple[tuple[str, int, int, int], ...]
LOAD, SYNC, FILES, INTEGRITY, WORDS = "fleet-load", "fleet-sync", "fleet-files", "fleet-integrity", "fleet-words"
PARTIAL_SECONDS = 0.5  # while a platform read runs, what it has judged so far is shown this often


@dataclasses.dataclass(frozen=True)
class HealthDegraded:
    """Solutions whose health turned ``degraded`` since the read before: (id, the engine's reason), in table order."""

    solutions: Sequence[tuple[str, str | None]]


class FleetModel:
    """The solutions, their sync and integrity, and the policy that refreshes them."""

    def __init__(
        self,
        workspace: Workspace,
        jobs: Jobs,
        *,
        clock: Callable[[], datetime],
        reading: threading.Lock,
        checks: RecordChecks | None = None,
    ) -> None:
        self.workspace = workspace
        self.checks = checks or RecordChecks(workspace)
        self.jobs = jobs
        self.clock = clock
        self.reading = reading
        self.views: list[SolutionView] = []
        self.invalid: list[InvalidSolution] = []  # solution files that break a rule, each its own row
        self.load_error: str | None = None  # why the last load failed: what is shown is stale
        self.loaded_at: str | None = None  # HH:MM:SS of the last load that succeeded
        self.statuses: dict[str, SolutionStatus] = {}
        self.live_error: str | None = None
        self.synced_at: str | None = None  # HH:MM:SS of the last platform read
        self.judged_so_far: int | None = None  # statuses a platform read still running has shown so far
        self.integrity = IntegrityReport()
        self.heads_only = False  # the views hold the solution cache's heads: the specs are being read (decision 0094)
        self._stamp: Stamp | None = None  # the solution files as the last load found them
        self._recheck = False  # a look at the files was due while a load ran: look once it has ended
        self._integrity_due = True
        self.changed: Signal[bool] = Signal(jobs.host, "fleet-changed")
        self.degraded: Signal[HealthDegraded] = Signal(jobs.host, "fleet-degraded")

    def view(self, solution_id: str) -> SolutionView | None:
        return next((view for view in self.views if view.spec.id == solution_id), None)

    # -- policy -----------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """The interval while the fleet is shown: read the platform again, and the files if they changed."""
        if not self.jobs.busy(SYNC):
            self.sync()
        if self.jobs.busy(LOAD) or self.jobs.busy(FILES):
            self._recheck = True  # the running read may have looked at a file before a write: look after it
        else:
            self.check_files()

    def load(self, *, heads: bool = True) -> Worker[None]:
        """Read every solution (pins judged, what the last reads knew of it); then the platform, once drawn.

        ``heads``: while the solution set has not been read, show the solution cache's heads of it first when every
        file is as they were made from (decision 0094), then read the specs once they are on screen; False when
        the files are known to have changed (the heads could not be used)."""
        return self.jobs.run(LOAD, lambda: self._load(heads=heads))

    def sync(self) -> Worker[None]:
        """Read the platform (one listing per resource type) and fill in sync and the last operations."""
        return self.jobs.run(SYNC, self._sync)

    def check_files(self) -> Worker[None]:
        """Load again when a solution file was added, removed or written since the last load."""
        return self.jobs.run(FILES, self._check_files)

    # -- work -------------------------------------------------------------------------------------------------

    async def _check_files(self) -> None:
        workspace = self.workspace
        stamp = await asyncio.to_thread(solution_files_stamp, workspace.config)
        if stamp == self._stamp:
            if self._recheck:  # asked for while this look ran: a write may have come after its scan
                self._recheck = False
                self._look_again()
            return
        if self.jobs.busy(LOAD):
            self._recheck = True  # the load looks again when it ends
            return
        workspace.refresh_solutions()
        self.load(heads=False)  # it looks again when it ends, if a look was asked for meanwhile

    def _look_again(self) -> None:
        """A look at the files was due while one ran (or a load): take it once this job has ended."""
        self.jobs.after_refresh(self.check_files)

    async def _load(self, *, heads: bool) -> None:
        shown: Stamp | None = None  # the files' stamp of the heads shown first, if they were
        try:
            if heads and (listed := await asyncio.to_thread(self.read_head_views)) is not None:
                self.views, self.invalid, self._stamp = listed
                shown = self._stamp
                self.heads_only = True
                self.load_error = None
                self.loaded_at = clock_time(self.clock())
                self.changed.publish(True)
                await self._drawn()  # the specs are read once the heads are on screen and the table takes keys
            self.views, self.invalid, self._stamp = await asyncio.to_thread(self.read_views)
            self.heads_only = False
        except (OrbitError, OSError) as exc:
            # Keep what was read last, but never as current: say why (the screen offers nothing on stale rows).
            self.load_error = str(exc)
            self.changed.publish(False)
            return
        self.load_error = None
        self.loaded_at = clock_time(self.clock())
        self._integrity_due = True
        # The specs of the heads shown show the same rows when the files are the same: no row to compare, none moved.
        self.changed.publish(shown is None or shown != self._stamp)
        # The platform read is seconds of CPU for a large fleet: start it once the table has been drawn; and the
        # views' search words (what the first filter keystroke would otherwise make for every row) meanwhile.
        self.jobs.after_refresh(self.sync)
        self.jobs.after_refresh(lambda: self.jobs.run(WORDS, self._make_words))
        if self._recheck:  # a file may have been written while this load read the others: look now, not a tick on
            self._recheck = False
            self._look_again()

    async def _drawn(self) -> None:
        """Return once the screen has been drawn."""
        drawn = asyncio.Event()
        self.jobs.host.call_after_refresh(drawn.set)
        await drawn.wait()

    async def _make_words(self) -> None:
        """Make each view's search words in a thread (kept by the view, and by the views a refresh makes from it)."""
        views = self.views
        await asyncio.to_thread(lambda: [view.search_text for view in views])

    async def _sync(self) -> None:
        workspace = self.workspace
        before = self.statuses
        told: list[SolutionStatus] = []  # each status as the read judges it (appended by the read's thread)

        def read_platform() -> tuple[list[SolutionStatus], LiveSnapshot]:
            # Judging 10,000 solutions is CPU work: the whole read runs in a thread (its own loop), never the UI's.
            with self.reading:  # the solutions read once: a load running meanwhile reads them, this takes its set
                workspace.solutions()
            return asyncio.run(fleet_status(workspace, on_status=told.append))

        platform_read = asyncio.ensure_future(asyncio.to_thread(read_platform))
        shown = 0
        try:
            while not platform_read.done():
                # A long read (a large fleet's pages on Azure) shows what it has judged so far, every PARTIAL_SECONDS.
                await asyncio.wait([platform_read], timeout=PARTIAL_SECONDS)
                if not platform_read.done() and len(told) > shown:
                    fresh = told[shown:]  # one slice: the read's thread may append meanwhile
                    shown += len(fresh)
                    await self._show_judged(fresh, shown, platform_read)
            statuses, snapshot = await platform_read
        finally:
            self.judged_so_far = None  # shown with the whole read's answer, or after a read that failed
        by_id = {status.id: status for status in statuses}
        read = self.views

        def judged() -> tuple[Mapping[str, LastOperation], list[SolutionView]]:
            last = self.read_last_operations([view.spec for view in read])
            return last, [self.with_status(view, last.get(view.spec.id), by_id) for view in read]

        # The new views are made in the thread too (10,000 of them): the UI's loop only takes them.
        last, views = await asyncio.to_thread(judged)
        if self.views is not read:  # a load published other views meanwhile: these are the ones to judge
            views = [self.with_status(view, last.get(view.spec.id), by_id) for view in self.views]
        first = self.synced_at is None  # the first answer fills the sync column: not a change to flag
        self.statuses = by_id
        self.live_error = snapshot.error
        self.synced_at = clock_time(self.clock())
        self.views = views
        self.changed.publish(not first)
        turned = [
            (status.id, status.health_reason)
            for view in self.views
            if (status := self.statuses.get(view.spec.id)) is not None and status.health is Health.DEGRADED
            and (old := before.get(view.spec.id)) is not None and old.health is not Health.DEGRADED
        ]
        if turned:
            self.degraded.publish(HealthDegraded(turned))
        if self._integrity_due:
            self._integrity_due = False
            self.jobs.run(INTEGRITY, lambda: self._check_integrity(statuses))

    async def _show_judged(self, fresh: Sequence[SolutionStatus], told: int, read: asyncio.Future[Any]) -> None:
        """The statuses ``fresh`` judged by a platform read still running (``read``; ``told`` so far), shown with
        those known: sync and health fill in as the read goes (the last status told for a solution is its final
        one). Its last operation, the read's time and any degraded notice come with the whole read."""
        statuses = {**self.statuses, **{status.id: status for status in fresh}}
        views = self.views
        made = await asyncio.to_thread(
            lambda: [self.with_status(view, view.last_operation, statuses) for view in views])
        if read.done() or self.views is not views:  # the whole read, or a load, has published since: theirs stand
            return
        self.statuses = statuses
        self.views = made
        self.judged_so_far = told
        self.changed.publish(self.synced_at is not None)  # the first read fills the column: not a change to flag

    async def _check_integrity(self, statuses: Sequence[SolutionStatus]) -> None:
        """Verify the release records behind every pin (git tags, registry images) in a thread; mark what fails."""
        def report() -> IntegrityReport:
            return integrity_report(self.workspace, statuses, self.checks.problems())

        self.integrity = await asyncio.to_thread(report)
        flagged = self.flagged_pins()
        self.views = [self.with_problems(view, flagged) for view in self.views]
        self.changed.publish(True)

    # -- reads ------------------------------------------------------------------------------------------------

    def with_status(self, view: SolutionView, last: LastOperation | None,
                    statuses: Mapping[str, SolutionStatus] | None = None) -> SolutionView:
        """``view`` with its sync, health and health reason from the last platform read (``statuses``, else the
        model's: None until it answered, never a guess) and its last operation; ``view`` itself when none of them
        changed (the console redraws what changed, and tells by identity first)."""
        status = (self.statuses if statuses is None else statuses).get(view.spec.id)
        sync = status.sync if status else None
        health = str(status.health) if status else None
        reason = status.health_reason if status else None
        if (view.sync, view.health, view.health_reason, view.last_operation) == (sync, health, reason, last):
            return view
        return view.with_live(sync, health, reason, last)

    def flagged_pins(self) -> dict[str, frozenset[str]]:
        """Solution id → the components whose pin has an integrity problem (from the last report)."""
        found: dict[str, set[str]] = {}
        for solution, component in self.integrity.pins:
            found.setdefault(solution, set()).add(component)
        return {solution: frozenset(components) for solution, components in found.items()}

    def with_problems(self, view: SolutionView, flagged: Mapping[str, frozenset[str]] | None = None) -> SolutionView:
        """``view`` with its integrity problems from the last report (``view`` itself when they did not change);
        ``flagged``: :meth:`flagged_pins`, made once for a whole fleet."""
        if flagged is None:
            flagged = self.flagged_pins()
        problems = self.integrity.solutions.get(view.spec.id, ())
        pins = flagged.get(view.spec.id, frozenset())
        if view.problems == problems and view.problem_pins == pins:
            return view
        return dataclasses.replace(view, problems=problems, problem_pins=pins)

    def read_views(self) -> tuple[list[SolutionView], list[InvalidSolution], Stamp]:
        """Runs in a thread: every solution with its pins judged and what the last reads knew of it, every invalid
        solution file, and the files' stamp as the set was read from them (so a write during or since that read is
        seen by the next look: the set may be the one the Components screen's read made a moment before)."""
        with self.reading:
            solution_set = self.workspace.solution_set()
            releases = self.workspace.release_index()
        return self._views_of(solution_set, releases)

    def read_head_views(self) -> tuple[list[SolutionView], list[InvalidSolution], Stamp] | None:
        """Runs in a thread: as :meth:`read_views`, from the solution cache's heads of the set
        (``Workspace.cached_heads``: one ``lstat`` per file, no spec built); None when there are none to use (the
        set was read already, or a file changed since they were made)."""
        with self.reading:
            heads = self.workspace.cached_heads()
            if heads is None:
                return None
            releases = self.workspace.release_index()
        return self._views_of(heads, releases)

    def _views_of(self, solution_set: SolutionSet | SolutionHeads,
                  releases: ReleaseIndex) -> tuple[list[SolutionView], list[InvalidSolution], Stamp]:
        stamp = solution_set.stamp
        if stamp is None:  # not read from the folder: take the files' stamp now, as a look would
            stamp = solution_files_stamp(self.workspace.config)
        specs = solution_set.valid
        last = self.read_last_operations(specs)
        flagged = self.flagged_pins()
        judged: dict[tuple[str, ...], tuple[PinView, ...]] = {}  # the pins judged once per versions pinned
        # Only a solution the last reads know anything of differs from a new view (10,000 on the first load).
        known, marked = self.statuses.keys() | last.keys(), self.integrity.solutions.keys() | flagged.keys()
        plain = SolutionView.plain
        views = []
        for spec in specs:
            view = plain(spec, pin_views(spec, releases, judged))
            if spec.id in known:
                view = self.with_status(view, last.get(spec.id))
            if spec.id in marked:
                view = self.with_problems(view, flagged)
            views.append(view)
        return views, list(solution_set.invalid), stamp

    def read_last_operations(self, specs: Sequence[Listed]) -> Mapping[str, LastOperation]:
        """Solution id → the newest operation that touched it, with the solution's own state in it."""
        return last_operations(self.workspace)
