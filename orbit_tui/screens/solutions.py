"""Solutions: pins, freshness, sync and the last operation; plan, re-provision, sweep and roll.

Freshness is computed from config and release records alone and shown at once. Sync needs the platform:
``orbit_ops.fleet.status.fleet_status`` (one listing per resource type) runs in a worker of its own after every load and
on an interval while the screen is current, so the table never waits for it; until it answers, sync says "—".
A read still running when the interval comes round is left to finish (never restarted, so a slow platform still
answers). Rows whose content changed on a refresh are flagged (``-changed``) for a moment. Record integrity
(``orbit_ops.console_queries.integrity_report``: moved tags, lost images, vanished records) is checked in a
worker after each load, once the platform has answered, and marks the pins it concerns.

A solution file that breaks a rule is a row of its own (sync ``invalid``, Enter shows the error), never a reason
to show nothing; the files are looked at (one ``scandir``) on every interval, so a file that breaks while the console
is open turns into an invalid row instead of its old content staying on screen as current. When the workspace
cannot be read at all, the rows stay as they were, marked stale with the reason, and nothing is offered that
would act on them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, Label
from textual.worker import WorkerState

from orbit_ops.config.load import solution_files_stamp
from orbit_ops.config.model import InvalidSolution, SolutionSpec
from orbit_ops.console_queries import IntegrityReport, integrity_report
from orbit_ops.errors import OrbitError
from orbit_ops.fleet.drift import SolutionStatus
from orbit_ops.fleet.status import LastOperation, fleet_status, last_operations
from orbit_ops.text import visible
from orbit_tui.filters import SolutionFilter, matches, matches_invalid, parse_filter
from orbit_tui.render import (
    INVALID_KEY_PREFIX,
    SOLUTION_COLUMNS,
    Cell,
    SolutionView,
    clock_time,
    invalid_key,
    invalid_row,
    pin_views,
    solution_row,
)
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.widgets import StateTable

FILTER_HELP = "Filter: words, fresh:behind, sync:drifted, sync:invalid, pin:agent=1.2.0 (Esc clears)"
Stamp = tuple[tuple[str, int, int, int], ...]


class SolutionsScreen(OrbitScreen):
    """Mode 2: one row per solution file; ``/`` filters, space and ``a`` select, Enter opens the solution."""

    MODE = "solutions"
    MUTATING = frozenset({"provision", "sweep_all", "roll"})
    LEGEND = (
        "Pins: ↓ a newer release exists · ! never released (provisioning refused) · latest (x) floats on the "
        "newest · ⚠ its release record has a problem (Enter shows it).\n"
        "Colours: green synced/current/succeeded · yellow drifted/behind · red missing/unreleased/failed. "
        "A row flashes when a background refresh changed it. Filter terms: words, fresh:behind, "
        "sync:drifted,missing, pin:agent=1.2.0 (globs allowed)."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", tooltip=FILTER_HELP),
        Binding("space", "toggle_select", "Select", tooltip="Select or unselect the solution under the cursor"),
        Binding("a", "select_all", "Select all", tooltip="Select every solution shown (again: unselect them)"),
        Binding("p", "plan", "Plan", tooltip="What provisioning the selection (or the cursor row) would change"),
        Binding("r", "provision", "Provision", tooltip="Re-provision the selection or the cursor row (asks first)"),
        Binding("R", "sweep_all", "Sweep all", tooltip="Provision every solution as one sweep (asks first)"),
        Binding("t", "roll", "Roll", tooltip="Roll a released version of a component to the selection (asks first)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.views: list[SolutionView] = []
        self.invalid: list[InvalidSolution] = []  # solution files that break a rule, each its own row
        self.load_error: str | None = None  # why the last load failed: the rows shown are stale
        self.loaded_at: str | None = None  # HH:MM:SS of the last load that succeeded
        self._stamp: Stamp | None = None  # the solution files as the last load found them
        self.selected: set[str] = set()
        self.wanted = SolutionFilter()
        self.statuses: dict[str, SolutionStatus] = {}
        self.live_error: str | None = None
        self.synced_at: str | None = None  # HH:MM:SS of the last platform read
        self.integrity = IntegrityReport()
        self._integrity_due = True
        self._cells: dict[str, tuple[SolutionView, bool, tuple[Cell, ...]]] = {}  # rendered once per view

    def compose_body(self) -> ComposeResult:
        yield Label("Solutions", classes="screen-title", id="solutions-title", markup=False)
        box = Input(
            placeholder="filter: words, fresh:behind, sync:drifted, pin:agent=1.2.0 (Enter keeps, Esc clears)",
            id="solutions-filter",
            compact=True,
        )
        box.display = False  # before mounting, so auto-focus lands on the table
        yield box
        yield StateTable(SOLUTION_COLUMNS, id="solutions")
        yield Label("", id="solutions-note", classes="note", markup=False)
        yield Label("", id="solutions-as-of", classes="note", markup=False)

    def on_mount(self) -> None:
        self.orbit.workspace_changed.subscribe(self, lambda _: self.load())
        self.set_interval(self.orbit.refresh_seconds, self._tick)
        self.load()

    def _tick(self) -> None:
        if not self.is_current:
            return
        if not self._busy("sync"):
            self.load_sync()
        if not self._busy("load") and not self._busy("files"):
            self.check_files()

    def _busy(self, group: str) -> bool:
        return any(
            worker.group == group and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
            for worker in self.workers
            if worker.node is self
        )

    # -- data -----------------------------------------------------------------------------------------------

    @work(exclusive=True, group="files", exit_on_error=False)
    async def check_files(self) -> None:
        """Re-read the solutions when a solution file was added, removed or written since the last load."""
        stamp = await asyncio.to_thread(solution_files_stamp, self.workspace.config)
        if stamp != self._stamp and not self._busy("load"):
            self.workspace.refresh_solutions()
            self.load()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load(self) -> None:
        try:
            self.views, self.invalid, self._stamp = await asyncio.to_thread(self.read_views)
        except (OrbitError, OSError) as exc:
            # Keep what was read last, but never as current: say why and when it was read, and offer nothing.
            self.load_error = str(exc)
            self.show()
            return
        self.load_error = None
        self.loaded_at = clock_time(self.orbit.clock())
        known = {view.spec.id for view in self.views}
        self.selected &= known
        self._integrity_due = True
        self.show(changed=True)
        # The platform read is seconds of CPU for a large fleet: start it once the table has been drawn.
        self.call_after_refresh(self.load_sync)

    @work(exclusive=True, group="sync", exit_on_error=False)
    async def load_sync(self) -> None:
        """Read the platform (one listing per resource type) and fill the sync column; the table stays usable."""
        workspace = self.workspace
        # Judging 10,000 solutions is CPU work: the whole read runs in a thread (its own loop), never in the UI's.
        statuses, snapshot = await asyncio.to_thread(lambda: asyncio.run(fleet_status(workspace)))
        last = await asyncio.to_thread(self.read_last_operations, [view.spec for view in self.views])
        first = self.synced_at is None  # the first answer fills the sync column: not a change to flag
        self.statuses = {status.id: status for status in statuses}
        self.live_error = snapshot.error
        self.synced_at = clock_time(self.orbit.clock())
        sync = self.read_sync([view.spec for view in self.views])
        self.views = [
            dataclasses.replace(view, sync=sync.get(view.spec.id), last_operation=last.get(view.spec.id))
            for view in self.views
        ]
        self.show(changed=not first)
        if self._integrity_due:
            self._integrity_due = False
            self.check_integrity(statuses)

    @work(exclusive=True, group="integrity", exit_on_error=False)
    async def check_integrity(self, statuses: Sequence[SolutionStatus]) -> None:
        """Verify the release records behind every pin (git tags, registry images) in a thread; mark what fails."""
        self.integrity = await asyncio.to_thread(integrity_report, self.workspace, statuses)
        self.views = [self.with_problems(view) for view in self.views]
        self.show(changed=True)

    def with_problems(self, view: SolutionView) -> SolutionView:
        report = self.integrity
        flagged = frozenset(component for (solution, component) in report.pins if solution == view.spec.id)
        return dataclasses.replace(view, problems=report.solutions.get(view.spec.id, ()), problem_pins=flagged)

    def read_views(self) -> tuple[list[SolutionView], list[InvalidSolution], Stamp]:
        """Runs in a thread: every solution with its pins judged and what the last reads knew of it, every invalid
        solution file, and the files' stamp (taken first, so a write during the read is seen next time)."""
        workspace = self.workspace
        stamp = solution_files_stamp(workspace.config)
        with self.orbit.reading:
            solution_set = workspace.solution_set()
            releases = workspace.release_index()
        specs = solution_set.valid
        sync = self.read_sync(specs)
        last = self.read_last_operations(specs)
        views = [
            self.with_problems(
                SolutionView(spec, pin_views(spec, releases), sync=sync.get(spec.id), last_operation=last.get(spec.id))
            )
            for spec in specs
        ]
        return views, list(solution_set.invalid), stamp

    def read_sync(self, specs: Sequence[SolutionSpec]) -> Mapping[str, str]:
        """Solution id → sync (``synced|drifted|missing|unknown``) from the last platform read (:meth:`load_sync`).

        Empty until the first read answered; a missing id shows "—", never a guessed value.
        """
        wanted = {spec.id for spec in specs}
        return {solution_id: status.sync for solution_id, status in self.statuses.items() if solution_id in wanted}

    def read_last_operations(self, specs: Sequence[SolutionSpec]) -> Mapping[str, LastOperation]:
        """Solution id → the newest operation that touched it, with the solution's own state in it."""
        return last_operations(self.workspace)

    # -- view -----------------------------------------------------------------------------------------------

    def shown(self) -> list[SolutionView]:
        if self.wanted.empty:
            return self.views
        return [view for view in self.views if matches(view, self.wanted)]

    def shown_invalid(self) -> list[InvalidSolution]:
        return [entry for entry in self.invalid if self.wanted.empty or matches_invalid(entry, self.wanted)]

    def show(self, *, changed: bool = False) -> None:
        """Redraw the table; ``changed`` (a refresh, not a filter or selection) flags the rows whose content moved."""
        shown = self.shown()
        rows: list[tuple[str, tuple[Cell, ...]]] = [(view.spec.id, self.row(view)) for view in shown]
        if self.invalid:  # in id order among the others
            rows += [(invalid_key(entry), invalid_row(entry)) for entry in self.shown_invalid()]
            rows.sort(key=lambda row: (row[1][1].text, row[0]))
        self.query_one(StateTable).show_rows(rows, flash=changed)
        counts: dict[str, int] = {}
        for view in self.views:
            counts[view.freshness] = counts.get(view.freshness, 0) + 1
        summary = ", ".join(f"{counts[name]} {name}" for name in ("behind", "unreleased", "floating") if name in counts)
        flagged = sum(1 for view in self.views if view.problems)
        if flagged:
            summary += (", " if summary else "") + f"{flagged} with integrity problems ⚠"
        title = f"Solutions: {len(self.views)}" + (f" ({summary})" if summary else "")
        if self.invalid:
            title += f"  ·  {len(self.invalid)} invalid file{'s' if len(self.invalid) != 1 else ''} ⚠"
        if self.load_error:
            title += "  ·  ⚠ stale"
        if not self.wanted.empty:
            title += f"  ·  filter shows {len(rows)}"
        if self.selected:
            title += f"  ·  {len(self.selected)} selected"
            hidden = len(self.selected) - sum(1 for view in shown if view.spec.id in self.selected)
            if hidden:
                title += f" ({hidden} hidden by the filter)"  # p, r and t act on them too: say so
        self.query_one("#solutions-title", Label).update(title)
        notes = list(self.wanted.problems)
        if self.load_error:
            since = f" as of {self.loaded_at} UTC" if self.loaded_at else ""
            notes.append(f"⚠ the workspace could not be read again ({self.load_error}): the rows are the fleet{since}, "
                         "and nothing is offered that would act on them; fix it and press ctrl+r")
        if self.live_error:
            notes.append(f"the platform could not be read: {self.live_error}")
        elif self.wanted.sync and not any(view.sync for view in self.views):
            notes.append("sync is not known yet: the platform is being read")
        self.query_one("#solutions-note", Label).update(visible("  ".join(notes), multiline=True))
        every = f"refreshes every {self.orbit.refresh_seconds:g}s"
        as_of = f"sync as of {self.synced_at} UTC · {every}" if self.synced_at else f"reading the platform… · {every}"
        self.query_one("#solutions-as-of", Label).update(as_of)
        self.refresh_bindings()

    def row(self, view: SolutionView) -> tuple[Cell, ...]:
        """The cells of ``view`` (rendered again only when the view or its selection changed)."""
        selected = view.spec.id in self.selected
        cached = self._cells.get(view.spec.id)
        if cached is not None and cached[0] is view and cached[1] == selected:
            return cached[2]
        cells = solution_row(view, selected=selected)
        self._cells[view.spec.id] = (view, selected, cells)
        return cells

    def selected_ids(self) -> list[str]:
        """The selection, in table order (what provisioning actions will act on)."""
        return [view.spec.id for view in self.views if view.spec.id in self.selected]

    def acted_on(self) -> list[str]:
        """What ``p``, ``r`` and ``t`` act on: the selection, or else the solution under the cursor."""
        if self.selected:
            return self.selected_ids()
        key = self.query_one(StateTable).current_key
        return [key] if key is not None and not key.startswith(INVALID_KEY_PREFIX) else []

    # -- actions --------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if allowed and action in ("toggle_select", "select_all") and not self.query_one(StateTable).row_count:
            return None
        if allowed and action in ("plan", "provision", "roll", "sweep_all") and self.load_error:
            return None  # the rows are stale: acting on them would act on what is no longer known
        if allowed and action in ("plan", "provision", "roll") and not self.acted_on():
            return None
        if allowed and action == "sweep_all" and not self.views:
            return None
        return allowed

    def action_plan(self) -> None:
        if ids := self.acted_on():
            self.orbit.show_plan(ids)

    def action_provision(self) -> None:
        if ids := self.acted_on():
            self.orbit.provision_solutions(ids)

    def action_sweep_all(self) -> None:
        self.orbit.provision_solutions(None)

    def action_roll(self) -> None:
        if ids := self.acted_on():
            self.orbit.roll_solutions(ids)

    def action_filter(self) -> None:
        box = self.query_one("#solutions-filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "solutions-filter":
            self.wanted = parse_filter(event.value)
            self.show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "solutions-filter":
            self.query_one(StateTable).focus()
            event.input.display = bool(event.value)

    def action_back(self) -> None:
        box = self.query_one("#solutions-filter", Input)
        if box.has_focus or not self.wanted.empty:
            box.value = ""
            box.display = False
            self.query_one(StateTable).focus()
            return
        super().action_back()

    def can_go_back(self) -> bool:
        return not self.wanted.empty or self.query_one("#solutions-filter", Input).has_focus or super().can_go_back()

    def action_toggle_select(self) -> None:
        key = self.query_one(StateTable).current_key
        if key is None or key.startswith(INVALID_KEY_PREFIX):
            return
        self.selected ^= {key}
        self.show()

    def action_select_all(self) -> None:
        shown = {view.spec.id for view in self.shown()}
        self.selected = self.selected - shown if shown <= self.selected else self.selected | shown
        self.show()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from orbit_tui.screens.solution import InvalidSolutionScreen, SolutionScreen

        key = event.row_key.value or ""
        if key.startswith(INVALID_KEY_PREFIX):
            entry = next((entry for entry in self.invalid if invalid_key(entry) == key), None)
            if entry is not None:
                self.app.push_screen(InvalidSolutionScreen(entry))
            return
        view = next((view for view in self.views if view.spec.id == event.row_key.value), None)
        if view is not None:
            self.app.push_screen(SolutionScreen(view, self.statuses.get(view.spec.id)))
