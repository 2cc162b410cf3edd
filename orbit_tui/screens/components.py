"""Components: newest tag and release of each, unreleased tags, adoption of the latest, and whether their release
records still verify (``console_queries.record_problems``, read by the model after the summaries); Enter opens its
tags."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Label, Static

from orbit_ops.text import visible
from orbit_ops.workspace import ComponentSummary
from orbit_tui.charts import version_chart
from orbit_tui.messages import BuildRequested, ReadRequested, TagsRequested
from orbit_tui.model import ComponentsRead, ConsoleModel, RecordsVerified
from orbit_tui.render import COMPONENT_COLUMNS, PROBLEM_MARK, component_row
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.widgets import StateTable


class ComponentsScreen(OrbitScreen):
    """Mode 1: one row per component of ``orbit.yaml``."""

    MODE = "components"
    MUTATING = frozenset({"build"})
    ROW_ACTIONS = frozenset({"build"})
    LEGEND = (
        "on latest: solutions on the newest release / all; the chart shows every version their pins run. "
        "integrity: ⚠ a release record no longer tells the "
        "truth (its tag moved or vanished, its image is gone or changed, a rebuild recorded another image); the "
        "problems are listed under the table."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "build", "Build latest", tooltip="Build the component's newest stable tag (asks first)"),
    ]

    def __init__(self, model: ConsoleModel) -> None:
        super().__init__(model)
        self.summaries: list[ComponentSummary] = []
        self.ignored: str | None = None
        self.problems: dict[tuple[str, str], tuple[str, ...]] | None = None  # None: not verified yet

    def compose_body(self) -> ComposeResult:
        yield Label("Components", classes="screen-title", markup=False)
        yield StateTable(COMPONENT_COLUMNS, id="components")
        yield Label("", id="components-note", classes="note", markup=False)
        yield Label("", id="components-problems", classes="problems", markup=False)
        yield Label("Pinned versions across the fleet", classes="section-title", markup=False)
        yield Static(id="components-versions")

    def on_mount(self) -> None:
        self.model.components_read.subscribe(self, self.on_components_read)
        self.model.records_verified.subscribe(self, self.on_records_verified)
        self.model.workspace_changed.subscribe(self, lambda _: self.post_message(ReadRequested("components")))
        self.post_message(ReadRequested("components"))

    def on_components_read(self, read: ComponentsRead) -> None:
        self.summaries, self.ignored = list(read.summaries), read.ignored
        self.show()

    def on_records_verified(self, verified: RecordsVerified) -> None:
        self.problems = verified.problems
        self.show()

    def show(self) -> None:
        problems = self.problems

        def count(component: str) -> int | None:
            if problems is None:
                return None
            return sum(len(found) for (name, _), found in problems.items() if name == component)

        self.query_one(StateTable).show_rows((row.name, component_row(row, count(row.name))) for row in self.summaries)
        self.query_one("#components-note", Label).update(visible(self.ignored or "", multiline=True))
        lines = [
            f"{PROBLEM_MARK} {component} {version}: {problem}"
            for (component, version), found in sorted((problems or {}).items())
            for problem in found
        ]
        self.query_one("#components-problems", Label).update("\n".join(visible(line) for line in lines))
        self.query_one("#components-versions", Static).update(version_chart(self.summaries))
        self.refresh_bindings()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(TagsRequested(event.row_key.value))

    def action_build(self) -> None:
        component = self.cursor_key()
        if component is not None:
            self.post_message(BuildRequested(component, None))
