"""Solutions: pins, freshness, sync and the last operation; plan, re-provision, sweep and roll.

Freshness is computed from config and release records alone and shown at once. Sync needs the platform:
``orbit_ops.fleet.fleet_status`` (one listing per resource type) runs in a worker of its own after every load and
on an interval while the screen is current, so the table never waits for it; until it answers, sync says "—".
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

from orbit_ops.config import SolutionSpec
from orbit_ops.drift import SolutionStatus
from orbit_ops.fleet import fleet_status
from orbit_ops.operations import OperationRecord
from orbit_tui.filters import SolutionFilter, matches, parse_filter
from orbit_tui.render import SOLUTION_COLUMNS, SolutionView, pin_views, solution_row
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.widgets import StateTable

SOLUTION_KINDS = ("provision", "sweep", "roll")


class SolutionsScreen(OrbitScreen):
    """Mode 2: one row per solution file; ``/`` filters, space and ``a`` select, Enter opens the solution."""

    MODE = "solutions"
    MUTATING = frozenset({"provision", "sweep_all", "roll"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", tooltip="Filter by text, fresh:behind, sync:drifted (Esc clears)"),
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
        self.selected: set[str] = set()
        self.wanted = SolutionFilter()
        self.statuses: dict[str, SolutionStatus] = {}
        self.live_error: str | None = None

    def compose_body(self) -> ComposeResult:
        yield Label("Solutions", classes="screen-title", id="solutions-title", markup=False)
        box = Input(
            placeholder="filter: words, fresh:behind, sync:drifted (Enter keeps, Esc clears)",
            id="solutions-filter",
            compact=True,
        )
        box.display = False  # before mounting, so auto-focus lands on the table
        yield box
        yield StateTable(SOLUTION_COLUMNS, id="solutions")
        yield Label("", id="solutions-note", classes="note", markup=False)

    def on_mount(self) -> None:
        self.orbit.workspace_changed.subscribe(self, lambda _: self.load())
        self.set_interval(self.orbit.refresh_seconds, self._tick)
        self.load()

    def _tick(self) -> None:
        if self.is_current:
            self.load_sync()

    # -- data -----------------------------------------------------------------------------------------------

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load(self) -> None:
        self.views = await asyncio.to_thread(self.read_views)
        known = {view.spec.id for view in self.views}
        self.selected &= known
        self.show()
        self.load_sync()

    @work(exclusive=True, group="sync", exit_on_error=False)
    async def load_sync(self) -> None:
        """Read the platform (one listing per resource type) and fill the sync column; the table stays usable."""
        statuses, snapshot = await fleet_status(self.workspace)
        self.statuses = {status.id: status for status in statuses}
        self.live_error = snapshot.error
        sync = self.read_sync([view.spec for view in self.views])
        self.views = [dataclasses.replace(view, sync=sync.get(view.spec.id)) for view in self.views]
        self.show()

    def read_views(self) -> list[SolutionView]:
        """Runs in a thread: every solution with its pins judged, plus whatever the hooks supply."""
        workspace = self.workspace
        specs = workspace.solutions()
        releases = workspace.release_index()
        sync = self.read_sync(specs)
        last = self.read_last_operations(specs)
        return [
            SolutionView(spec, pin_views(spec, releases), sync=sync.get(spec.id), last_operation=last.get(spec.id))
            for spec in specs
        ]

    def read_sync(self, specs: Sequence[SolutionSpec]) -> Mapping[str, str]:
        """Solution id → sync (``synced|drifted|missing|unknown``) from the last platform read (:meth:`load_sync`).

        Empty until the first read answered; a missing id shows "—", never a guessed value.
        """
        wanted = {spec.id for spec in specs}
        return {solution_id: status.sync for solution_id, status in self.statuses.items() if solution_id in wanted}

    def read_last_operations(self, specs: Sequence[SolutionSpec]) -> Mapping[str, OperationRecord]:
        """HOOK: solution id → the newest provision, sweep or roll that named it (as target or sweep member)."""
        ids = {spec.id for spec in specs}
        newest: dict[str, OperationRecord] = {}
        for record in self.workspace.operations().list():  # newest first
            if record.kind not in SOLUTION_KINDS:
                continue
            for solution_id in {record.target, *record.children} & ids:
                newest.setdefault(solution_id, record)
        return newest

    # -- view -----------------------------------------------------------------------------------------------

    def shown(self) -> list[SolutionView]:
        return [view for view in self.views if matches(view, self.wanted)]

    def show(self) -> None:
        shown = self.shown()
        self.query_one(StateTable).show_rows(
            (view.spec.id, solution_row(view, selected=view.spec.id in self.selected)) for view in shown
        )
        counts: dict[str, int] = {}
        for view in self.views:
            counts[view.freshness] = counts.get(view.freshness, 0) + 1
        summary = ", ".join(f"{counts[name]} {name}" for name in ("behind", "unreleased", "floating") if name in counts)
        title = f"Solutions: {len(self.views)}" + (f" ({summary})" if summary else "")
        if not self.wanted.empty:
            title += f"  ·  filter shows {len(shown)}"
        if self.selected:
            title += f"  ·  {len(self.selected)} selected"
        self.query_one("#solutions-title", Label).update(title)
        notes = list(self.wanted.problems)
        if self.live_error:
            notes.append(f"the platform could not be read: {self.live_error}")
        elif self.wanted.sync and not any(view.sync for view in self.views):
            notes.append("sync is not known yet: the platform is being read")
        self.query_one("#solutions-note", Label).update("  ".join(notes))
        self.refresh_bindings()

    def selected_ids(self) -> list[str]:
        """The selection, in table order (what provisioning actions will act on)."""
        return [view.spec.id for view in self.views if view.spec.id in self.selected]

    def acted_on(self) -> list[str]:
        """What ``p``, ``r`` and ``t`` act on: the selection, or else the solution under the cursor."""
        if self.selected:
            return self.selected_ids()
        key = self.query_one(StateTable).current_key
        return [key] if key is not None else []

    # -- actions --------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if allowed and action in ("toggle_select", "select_all") and not self.query_one(StateTable).row_count:
            return None
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
        if key is None:
            return
        self.selected ^= {key}
        self.show()

    def action_select_all(self) -> None:
        shown = {view.spec.id for view in self.shown()}
        self.selected = self.selected - shown if shown <= self.selected else self.selected | shown
        self.show()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from orbit_tui.screens.solution import SolutionScreen

        view = next((view for view in self.views if view.spec.id == event.row_key.value), None)
        if view is not None:
            self.app.push_screen(SolutionScreen(view, self.statuses.get(view.spec.id)))
