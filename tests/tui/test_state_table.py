"""The console's table widget on its own."""

from __future__ import annotations

from support import screen_text
from textual.app import App, ComposeResult

from orbit_tui.render import Cell
from orbit_tui.widgets import StateTable


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield StateTable(("id", "sync", "last operation"), id="table")


async def test_a_cell_that_widens_its_column_is_drawn_whole_though_the_screen_painted_before_it_was_measured() -> None:
    # A platform read turns sync "—" into "missing": the column grows from 4 to 7 when the table next goes idle.
    # On a busy machine the screen can paint in between; what it drew then must not outlive the new width.
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(StateTable)
        table.show_rows([("acme", (Cell("acme"), Cell("—"), Cell("sweep succeeded")))])
        await pilot.pause()
        assert " acme  —     sweep succeeded " in screen_text(app)

        table.show_rows([("acme", (Cell("acme"), Cell("missing", "missing"), Cell("sweep succeeded")))])
        screen_text(app)  # a paint before the table has measured the new cell
        await pilot.pause()
        assert " acme  missing  sweep succeeded " in screen_text(app)
