"""Operations: every operation in the store (this console's, the CLI's, CI's), refreshed on an interval."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Label

from orbit_ops.fleet.entries import failed_members
from orbit_ops.operations.records import OperationRecord
from orbit_tui.messages import LogRequested, ReadRequested, RetryRequested
from orbit_tui.model import ConsoleModel, OperationsRead
from orbit_tui.render import OPERATION_COLUMNS, TEAM_COLUMNS, operation_row, team_cells
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.widgets import StateTable


class OperationsScreen(OrbitScreen):
    """Mode 3: newest first; Enter opens the log. Reads the store in a worker, so a slow disk never freezes it."""

    MODE = "operations"
    SHOWS = "operations"
    MUTATING = frozenset({"retry_failed"})
    LEGEND = (
        "Every operation of this workspace, also those started from the CLI or CI. r appears on a finished sweep "
        "with failures: it re-provisions only those (orbit provision --failed-from)."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "r",
            "retry_failed",
            "Retry failed",
            tooltip="Re-provision only the solutions that failed in the sweep under the cursor (asks first)",
        ),
    ]

    def __init__(self, model: ConsoleModel) -> None:
        super().__init__(model)
        self.records: dict[str, OperationRecord] = {}
        self.team = False

    def compose_body(self) -> ComposeResult:
        # With a shared state store the team's operations are listed, and who started each, from where.
        self.team = self.model.workspace.config.state.shared
        yield Label("Operations", classes="screen-title", id="operations-title", markup=False)
        yield StateTable(OPERATION_COLUMNS + (TEAM_COLUMNS if self.team else ()), id="operations")
        yield Label("", id="operations-as-of", classes="note", markup=False)

    def on_mount(self) -> None:
        self.model.operations_read.subscribe(self, self.on_operations_read)
        self.model.workspace_changed.subscribe(self, lambda _: self.request())
        self.request()

    def on_screen_resume(self) -> None:
        self.request()

    def request(self) -> None:
        self.post_message(ReadRequested("operations"))

    def on_operations_read(self, read: OperationsRead) -> None:
        records = read.records
        self.records = {record.id: record for record in records}
        self.query_one(StateTable).show_rows(
            (record.id, operation_row(record) + (team_cells(record) if self.team else ())) for record in records)
        running = sum(1 for record in records if not record.finished)
        title = f"Operations: {len(records)}" + (f", {running} running" if running else "")
        self.query_one("#operations-title", Label).update(title)
        self.query_one("#operations-as-of", Label).update(
            f"as of {read.at} UTC · refreshes every {self.model.refresh_seconds:g}s"
            + (f" · {read.note}: this machine's operations only" if read.note else "")
        )
        self.refresh_bindings()

    def cursor_record(self) -> OperationRecord | None:
        key = self.query_one(StateTable).current_key
        return self.records.get(key) if key is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if allowed and action == "retry_failed":
            record = self.cursor_record()
            # offered only where a failure can be retried: an ended operation with failed members
            return record is not None and record.finished and bool(failed_members(record))
        return allowed

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()

    def action_retry_failed(self) -> None:
        record = self.cursor_record()
        if record is not None:
            self.post_message(RetryRequested(record.id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(LogRequested(event.row_key.value))
