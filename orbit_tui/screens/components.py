"""Components: newest tag and release of each, unreleased tags, adoption of the latest; Enter opens its tags."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Label

from orbit_ops.workspace import ComponentSummary, summarize_components
from orbit_tui.render import COMPONENT_COLUMNS, component_row
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.widgets import StateTable


class ComponentsScreen(OrbitScreen):
    """Mode 1: one row per component of ``orbit.yaml``."""

    MODE = "components"
    MUTATING = frozenset({"build"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "build", "Build latest", tooltip="Build the component's newest stable tag (asks first)"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Label("Components", classes="screen-title", markup=False)
        yield StateTable(COMPONENT_COLUMNS, id="components")
        yield Label("", id="components-note", classes="note", markup=False)

    def on_mount(self) -> None:
        self.orbit.workspace_changed.subscribe(self, lambda _: self.load())
        self.load()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load(self) -> None:
        def read() -> tuple[list[ComponentSummary], str | None]:
            return summarize_components(self.workspace), self.workspace.tags().ignored_message()

        rows, ignored = await asyncio.to_thread(read)
        self.query_one(StateTable).show_rows((row.name, component_row(row)) for row in rows)
        self.query_one("#components-note", Label).update(ignored or "")
        self.refresh_bindings()

    def selected(self) -> str | None:
        return self.query_one(StateTable).current_key

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if allowed and action == "build" and self.selected() is None:
            return None
        return allowed

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from orbit_tui.screens.tags import TagsScreen

        if event.row_key.value is not None:
            self.app.push_screen(TagsScreen(event.row_key.value))

    def action_build(self) -> None:
        component = self.selected()
        if component is not None:
            self.orbit.build_release(component, None)
