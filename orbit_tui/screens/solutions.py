"""Solutions: pins, freshness, sync, health and the last operation; plan, re-provision, sweep and roll.

The rows come from the fleet model (``orbit_tui.fleet_model``), which reads the solutions, then the platform, then
the records' integrity, and again on every interval while this screen is current; this screen renders what it
publishes, keeps the filter and the selection, and posts a request for everything it offers.

A solution file that breaks a rule is a row of its own (sync ``invalid``, Enter shows the error), never a reason
to show nothing. When the workspace cannot be read at all, the rows stay as they were, marked stale with the
reason, and nothing is offered that would act on them.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Label

from orbit_ops.bulk import bulk_built
from orbit_ops.config.model import InvalidSolution
from orbit_ops.text import visible
from orbit_tui.filters import FleetIndex, SolutionFilter, matches_invalid, narrows, parse_filter
from orbit_tui.line_table import LineTable, column_width
from orbit_tui.messages import (
    InvalidSolutionRequested,
    PlanRequested,
    ProvisionRequested,
    ReadRequested,
    RollRequested,
    SolutionRequested,
)
from orbit_tui.model import ConsoleModel
from orbit_tui.render import (
    INVALID_KEY_PREFIX,
    SOLUTION_COLUMNS,
    Cell,
    SolutionView,
    invalid_key,
    invalid_row,
    same_row,
    solution_column_texts,
    solution_row,
    worst_freshness,
)
from orbit_tui.screens.base import OrbitScreen

_SPEC_ID, _PINS = operator.attrgetter("spec.id"), operator.attrgetter("pins")
_HEALTH, _PROBLEMS = operator.attrgetter("health"), operator.attrgetter("problems")
FILTER_HELP = ("Filter: words, fresh:behind, sync:drifted, sync:invalid, health:degraded, pin:agent=1.2.0, "
               "label:ring=canary (Esc clears)")


class SolutionsScreen(OrbitScreen):
    """Mode 2: one row per solution file; ``/`` filters, space and ``a`` select, Enter opens the solution."""

    MODE = "solutions"
    AUTO_FOCUS = "LineTable"
    SHOWS = "fleet"
    MUTATING = frozenset({"provision", "sweep_all", "roll"})
    LEGEND = (
        "Pins: ↓ a newer release exists · ! never released (provisioning refused) · latest (x) floats on the "
        "newest · ⚠ its release record has a problem (Enter shows it).\n"
        "Health: does the latest revision of each app run (the worst app's; Enter shows its revisions and why).\n"
        "Colours: green synced/current/healthy/succeeded · yellow drifted/behind · blue progressing · "
        "red missing/unreleased/degraded/failed. "
        "A row flashes when a background refresh changed it. Filter terms: words, fresh:behind, "
        "sync:drifted,missing, health:degraded, pin:agent=1.2.0 (globs allowed), label:ring=canary (as --only)."
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

    def __init__(self, model: ConsoleModel) -> None:
        super().__init__(model)
        self.fleet = model.fleet
        self.selected: set[str] = set()
        self.wanted = SolutionFilter()
        self._cells: dict[str, tuple[SolutionView, bool, tuple[Cell, ...]]] = {}  # made once per view drawn
        # Per publication of the fleet (decisions 0075, 0088): the views' search words (made by the first filter),
        # every solution's key in view order and position by key, the columns' widths, the title's counts, the
        # last filter's positions (a filter typed further looks only within them), and the views shown before.
        self._index = FleetIndex([])
        self._keys: list[str] = []
        self._positions: dict[str, int] = {}
        self._widths: list[int] | None = None
        self._counts: str | None = None
        self._last: tuple[SolutionFilter, list[int]] | None = None
        self._before: Sequence[SolutionView] = []
        self._invalid_before: dict[str, tuple[Cell, ...]] = {}

    @property
    def views(self) -> list[SolutionView]:
        return self.fleet.views

    @property
    def invalid(self) -> list[InvalidSolution]:
        return self.fleet.invalid

    def compose_body(self) -> ComposeResult:
        yield Label("Solutions", classes="screen-title", id="solutions-title", markup=False)
        box = Input(
            placeholder="filter: words, fresh:behind, sync:drifted, health:degraded, pin:agent=1.2.0, "
            "label:ring=canary (Enter keeps, Esc clears)",
            id="solutions-filter",
            compact=True,
        )
        box.display = False  # before mounting, so auto-focus lands on the table
        yield box
        yield LineTable(SOLUTION_COLUMNS, id="solutions")
        yield Label("", id="solutions-note", classes="note", markup=False)
        yield Label("", id="solutions-as-of", classes="note", markup=False)

    def on_mount(self) -> None:
        self.fleet.changed.subscribe(self, self.on_fleet_changed)
        self.model.workspace_changed.subscribe(self, lambda _: self.post_message(ReadRequested("fleet")))
        self.post_message(ReadRequested("fleet"))

    def on_fleet_changed(self, changed: bool) -> None:
        """The fleet model published a load, a platform read or an integrity check: ``changed`` flags moved rows."""
        if self.selected and not self.fleet.load_error:
            self.selected &= {view.spec.id for view in self.views}
        self.show(changed=changed)

    # -- view -----------------------------------------------------------------------------------------------

    def _fleet(self) -> FleetIndex:
        """The index of the views published last (made again when the fleet model published new ones)."""
        views = self.views
        if self._index.views is not views:
            self._index = FleetIndex(views, self._index)
            self._widths, self._counts, self._last = None, None, None
            self._keys = list(map(_SPEC_ID, views))  # at C speed: every publication of 10,000 views
            self._positions = dict(zip(self._keys, range(len(self._keys)), strict=True))
        return self._index

    def shown_positions(self) -> list[int]:
        """The positions (in :attr:`views`) of the solutions the filter shows."""
        index = self._fleet()
        last = self._last
        if last is not None and last[0] == self.wanted:
            return last[1]
        within = last[1] if last is not None and narrows(last[0], self.wanted) else None
        positions = index.select(self.wanted, within)
        self._last = (self.wanted, positions)
        return positions

    def shown(self) -> list[SolutionView]:
        views = self.views
        return [views[position] for position in self.shown_positions()]

    def shown_invalid(self) -> list[InvalidSolution]:
        return [entry for entry in self.invalid if self.wanted.empty or matches_invalid(entry, self.wanted)]

    def _column_widths(self) -> list[int]:
        """How wide each column must be for every row of this publication, valid or not (decision 0088)."""
        self._fleet()
        if self._widths is None:
            columns = solution_column_texts(self.views)
            for entry in self.invalid:
                for texts, cell in zip(columns, invalid_row(entry), strict=True):
                    texts.add(cell.text)
            self._widths = [column_width(texts) for texts in columns]
        return self._widths

    def _changed_keys(self) -> set[str]:
        """The solutions whose row this publication changed against the one shown before it (views are kept by
        a refresh that changed nothing of them: identity first, then :func:`same_row`); this one is then the one
        shown before."""
        before, now = self._before, self.views
        self._before = now
        if before is now or not before:
            return set()
        old: dict[str, SolutionView] | None = None
        changed = set()
        for position, view in enumerate(now):
            old_view = before[position] if position < len(before) else None
            if old_view is view:
                continue
            if old_view is None or old_view.spec.id != view.spec.id:  # the fleet changed shape here: look it up
                if old is None:
                    old = {earlier.spec.id: earlier for earlier in before}
                old_view = old.get(view.spec.id)
            if old_view is not None and not same_row(old_view, view):
                changed.add(view.spec.id)
        return changed

    def _summary(self) -> str:
        """The title's counts over the whole fleet (once per publication)."""
        self._fleet()
        if self._counts is None:
            views = self.views
            # At C speed, every publication of 10,000 views: the freshness once per tuple of pins judged (shared by
            # the views, all alive here), counted by the tuples' identities.
            pins = list(map(_PINS, views))
            judged = dict(zip(map(id, pins), pins, strict=True))
            counts: dict[str, int] = {}
            for identity, count in Counter(map(id, pins)).items():
                freshness = worst_freshness(judged[identity])
                counts[freshness] = counts.get(freshness, 0) + count
            degraded = operator.countOf(map(_HEALTH, views), "degraded")
            flagged = sum(map(bool, map(_PROBLEMS, views)))
            parts = [f"{counts[name]} {name}" for name in ("behind", "unreleased", "floating") if name in counts]
            if degraded:
                parts.append(f"{degraded} degraded")
            if flagged:
                parts.append(f"{flagged} with integrity problems ⚠")
            self._counts = ", ".join(parts)
        return self._counts

    def show(self, *, changed: bool = False) -> None:
        """Redraw the table; ``changed`` (a refresh, not a filter or selection) flags the rows whose content moved."""
        with bulk_built():  # 10,000 rows' cells live on: no collector passes over the console while they are made
            self._show(changed)

    def _show(self, changed: bool) -> None:
        positions = self.shown_positions()
        all_keys = self._keys
        keys = all_keys if self.wanted.empty else [all_keys[position] for position in positions]
        invalid = {invalid_key(entry): invalid_row(entry) for entry in self.invalid}
        if invalid:  # in id order among the others
            shown = [*keys, *(invalid_key(entry) for entry in self.shown_invalid())]
            keys = sorted(shown, key=lambda key: (invalid[key][1].text if key in invalid else key, key))
        # Every show is what the next refresh is compared with, flagged or not.
        invalid_before, self._invalid_before = self._invalid_before, invalid
        flagged: set[str] = set()
        if changed:
            flagged = self._changed_keys()
            flagged.update(key for key, cells in invalid.items() if invalid_before.get(key, cells) != cells)
            if flagged and not self.wanted.empty:
                flagged.intersection_update(keys)
        else:
            self._before = self.views
        views, at = self.views, self._positions

        def cells_of(key: str) -> tuple[Cell, ...]:
            position = at.get(key)
            return invalid[key] if position is None else self.row(views[position])

        self.query_one(LineTable).show_keys(keys, cells_of, widths=self._column_widths(), changed=flagged)
        summary = self._summary()
        title = f"Solutions: {len(self.views)}" + (f" ({summary})" if summary else "")
        if self.invalid:
            title += f"  ·  {len(self.invalid)} invalid file{'s' if len(self.invalid) != 1 else ''} ⚠"
        if self.fleet.load_error:
            title += "  ·  ⚠ stale"
        if not self.wanted.empty:
            title += f"  ·  filter shows {len(keys)}"
        if self.selected:
            title += f"  ·  {len(self.selected)} selected"
            shown_ids = self.selected if self.wanted.empty else set(keys)
            hidden = len(self.selected) - len(self.selected & shown_ids)
            if hidden:
                title += f" ({hidden} hidden by the filter)"  # p, r and t act on them too: say so
        self.query_one("#solutions-title", Label).update(title)
        notes = list(self.wanted.problems)
        fleet = self.fleet
        if fleet.load_error:
            since = f" as of {fleet.loaded_at} UTC" if fleet.loaded_at else ""
            notes.append(f"⚠ the workspace could not be read again ({fleet.load_error}): the rows are the fleet"
                         f"{since}, and nothing is offered that would act on them; fix it and press ctrl+r")
        if fleet.live_error:
            notes.append(f"the platform could not be read: {fleet.live_error}")
        elif self.wanted.sync and not any(view.sync for view in self.views):
            notes.append("sync is not known yet: the platform is being read")
        elif self.wanted.health and not any(view.health for view in self.views):
            notes.append("health is not known yet: the platform is being read")
        self.query_one("#solutions-note", Label).update(visible("  ".join(notes), multiline=True))
        every = f"refreshes every {self.model.refresh_seconds:g}s"
        as_of = f"sync as of {fleet.synced_at} UTC" if fleet.synced_at else "reading the platform…"
        if fleet.judged_so_far is not None:  # a read still running has shown what it judged so far
            again = ", reading again:" if fleet.synced_at else ""
            as_of += f"{again} {fleet.judged_so_far:,} of {len(self.views):,} judged"
        as_of += f" · {every}"
        self.query_one("#solutions-as-of", Label).update(as_of)
        self.refresh_bindings()

    def row(self, view: SolutionView) -> tuple[Cell, ...]:
        """The cells of ``view`` (rendered again only when what the row shows or its selection changed: a refresh
        publishes new views, most of them showing what they showed)."""
        selected = view.spec.id in self.selected
        cached = self._cells.get(view.spec.id)
        if cached is not None and cached[1] == selected and (cached[0] is view or same_row(cached[0], view)):
            if cached[0] is not view:
                self._cells[view.spec.id] = (view, selected, cached[2])
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
        key = self.query_one(LineTable).current_key
        return [key] if key is not None and not key.startswith(INVALID_KEY_PREFIX) else []

    # -- actions --------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if allowed and action in ("toggle_select", "select_all") and not self.query_one(LineTable).row_count:
            return None
        if allowed and action in ("plan", "provision", "roll", "sweep_all") and self.fleet.load_error:
            return None  # the rows are stale: acting on them would act on what is no longer known
        if allowed and action in ("plan", "provision", "roll") and not self.acted_on():
            return None
        if allowed and action == "sweep_all" and not self.views:
            return None
        return allowed

    def action_plan(self) -> None:
        if ids := self.acted_on():
            self.post_message(PlanRequested(ids))

    def action_provision(self) -> None:
        if ids := self.acted_on():
            self.post_message(ProvisionRequested(ids))

    def action_sweep_all(self) -> None:
        self.post_message(ProvisionRequested(None))

    def action_roll(self) -> None:
        if ids := self.acted_on():
            self.post_message(RollRequested(ids))

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
            self.query_one(LineTable).focus()
            event.input.display = bool(event.value)

    def action_back(self) -> None:
        box = self.query_one("#solutions-filter", Input)
        if box.has_focus or not self.wanted.empty:
            box.value = ""
            box.display = False
            self.query_one(LineTable).focus()
            return
        super().action_back()

    def can_go_back(self) -> bool:
        return not self.wanted.empty or self.query_one("#solutions-filter", Input).has_focus or super().can_go_back()

    def action_toggle_select(self) -> None:
        key = self.query_one(LineTable).current_key
        if key is None or key.startswith(INVALID_KEY_PREFIX):
            return
        self.selected ^= {key}
        self.show()

    def action_select_all(self) -> None:
        shown = {view.spec.id for view in self.shown()}
        self.selected = self.selected - shown if shown <= self.selected else self.selected | shown
        self.show()

    def on_line_table_row_selected(self, event: LineTable.RowSelected) -> None:
        key = event.key
        if key.startswith(INVALID_KEY_PREFIX):
            entry = next((entry for entry in self.invalid if invalid_key(entry) == key), None)
            if entry is not None:
                self.post_message(InvalidSolutionRequested(entry))
            return
        if self.fleet.view(key) is not None:
            self.post_message(SolutionRequested(key))
