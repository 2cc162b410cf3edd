"""Operations: every operation in the store (this console's, the CLI's, CI's), refreshed on an interval."""

from __future__ import annotations

import asyncio

from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, Label

from orbit_tui.render import OPERATION_COLUMNS, clock_time, operation_row
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.widgets import StateTable


class OperationsScreen(OrbitScreen):
    """Mode 3: newest first; Enter opens the log. Reads the store in a worker, so a slow disk never freezes it."""

    MODE = "operations"

    def compose_body(self) -> ComposeResult:
        yield Label("Operations", classes="screen-title", id="operations-title", markup=False)
        yield StateTable(OPERATION_COLUMNS, id="operations")
        yield Label("", id="operations-as-of", classes="note", markup=False)

    def on_mount(self) -> None:
        self.orbit.workspace_changed.subscribe(self, lambda _: self.load())
        self.set_interval(self.orbit.refresh_seconds, self._tick)
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def _tick(self) -> None:
        if self.is_current:
            self.load()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load(self) -> None:
        records = await asyncio.to_thread(self.workspace.operations().list)
        self.query_one(StateTable).show_rows((record.id, operation_row(record)) for record in records)
        running = sum(1 for record in records if not record.finished)
        title = f"Operations: {len(records)}" + (f", {running} running" if running else "")
        self.query_one("#operations-title", Label).update(title)
        self.query_one("#operations-as-of", Label).update(
            f"as of {clock_time(self.orbit.clock())} UTC · refreshes every {self.orbit.refresh_seconds:g}s"
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.orbit.open_log(event.row_key.value)
