"""A bad solution file in the console (issue 12, item 1): the fleet stays on screen with the invalid file as a row of
its own, a file that breaks while the console is open turns into such a row, and rows the console can no longer read
are marked stale with nothing offered that would act on them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import SIZE
from console_helpers import open_solutions, settle, table_rows
from textual.widgets import Label, Static

from orbit_tui.app import OrbitApp
from orbit_tui.line_table import LineTable
from orbit_tui.screens.modals import PlanScreen
from orbit_tui.screens.solution import InvalidSolutionScreen
from orbit_tui.screens.solutions import SolutionsScreen

MakeApp = Callable[..., OrbitApp]
BROKEN = 'id: globex\nimages: {agent_tag: "2.0.0"\n'  # the flow mapping never closes


def _title(screen: SolutionsScreen) -> str:
    return str(screen.query_one("#solutions-title", Label).render())


async def test_an_invalid_file_is_its_own_row_and_the_rest_stays_usable(fixed_copy: Path, make_app: MakeApp) -> None:
    (fixed_copy / "solutions" / "zeta.yaml").write_text("id: zeta\nenv: {agent: {N: 012}}\n")
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        components = {row[0]: row[4] for row in table_rows(app, "#components")}
        assert components["agent"].endswith("/6")  # the six valid solutions are counted, nothing is hidden
        screen = await open_solutions(pilot)
        rows = {row[1]: row for row in table_rows(app, "#solutions")}
        assert len(rows) == 7 and rows["zeta"][7] == "invalid"
        assert "1 invalid file ⚠" in _title(screen)
        table = screen.query_one(LineTable)
        table.move_cursor(row=table.row_count - 1)
        await settle(pilot)
        assert table.current_key == "file:zeta.yaml"
        assert screen.check_action("provision", ()) is None and screen.check_action("plan", ()) is None
        await pilot.press("space")  # an invalid row cannot be selected for an action
        assert screen.selected == set()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, InvalidSolutionScreen)
        detail = str(app.screen.query_one("#invalid-error", Static).render())
        assert "zeta.yaml" in detail and "line      2" in detail and "quote it" in detail
        await pilot.press("escape")
        table.move_cursor(row=0)
        await settle(pilot)
        assert screen.check_action("plan", ()) is True
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen) and "acme-corp" in app.screen.text


async def test_a_file_that_breaks_while_the_console_is_open_turns_into_an_invalid_row(
    fixed_copy: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        assert {row[1]: row[7] for row in table_rows(app, "#solutions")}["globex"] != "invalid"
        (fixed_copy / "solutions" / "globex.yaml").write_text(BROKEN)
        app.model.fleet.tick()  # the interval's work, now
        await settle(pilot)
        rows = {row[1]: row for row in table_rows(app, "#solutions")}
        assert rows["globex"][7] == "invalid" and rows["globex"][2] == "⚠ globex.yaml"
        assert "1 invalid file" in _title(screen)
        (fixed_copy / "solutions" / "globex.yaml").unlink()
        app.model.fleet.tick()
        await settle(pilot)
        assert "globex" not in {row[1] for row in table_rows(app, "#solutions")}


async def test_rows_that_cannot_be_read_again_are_marked_stale_and_not_acted_on(
    fixed_copy: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        records = fixed_copy / "releases" / "containers" / "agent.yaml"
        records.write_text("- {component: agent\n")  # a bad merge of the release records
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "⚠ stale" in _title(screen)
        note = str(screen.query_one("#solutions-note", Label).render())
        assert "could not be read again" in note and "agent.yaml" in note and "as of 12:00:00 UTC" in note
        assert len(table_rows(app, "#solutions")) == 6  # still shown, but said to be old
        for action in ("plan", "provision", "sweep_all", "roll"):
            assert screen.check_action(action, ()) is None, action
