"""The Solutions screen: pins and freshness per row, `/` filter, space and `a` selection."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from conftest import SIZE
from console_helpers import open_solutions, settle, table_rows

from orbit_tui.app import OrbitApp
from orbit_tui.screens.solutions import SolutionsScreen

MakeApp = Callable[..., OrbitApp]


async def test_rows_show_pins_freshness_and_the_last_operation(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        rows = {row[1]: row for row in table_rows(app, "#solutions")}
        assert rows["initech"][2:] == [
            "Initech",
            "latest (1.2.0)",
            "2.0.0",
            "1.1.0",
            "floating",
            "missing",  # read from the (empty) local platform in a worker
            "missing",  # health: its apps do not exist
            "sweep succeeded",
        ]
        assert rows["umbrella-health"][3] == "1.3.0 !" and rows["umbrella-health"][6] == "unreleased"
        assert rows["hooli"][9] == "—"  # no operation named it


async def test_slash_filters_by_text_and_freshness_and_escape_clears(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        await pilot.press("slash", *"fresh:behind")
        await settle(pilot)
        assert [row[1] for row in table_rows(app, "#solutions")] == ["globex", "hooli", "wayne-enterprises"]
        await pilot.press("space", *"glo", "enter")  # Enter keeps the filter and returns to the table
        await settle(pilot)
        assert [row[1] for row in table_rows(app, "#solutions")] == ["globex"]
        assert app.focused is screen.query_one("#solutions")
        await pilot.press("escape")
        await settle(pilot)
        assert len(table_rows(app, "#solutions")) == 6
        assert isinstance(app.screen, SolutionsScreen)  # the first Esc only cleared the filter


async def test_a_sync_filter_before_the_platform_answered_says_sync_is_not_known_yet(
    fixed_root: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SolutionsScreen)
        app.workers.cancel_group(app, "fleet-sync")  # as if the platform had not answered yet
        fleet = app.model.fleet
        fleet.statuses = {}
        fleet.views = [dataclasses.replace(view, sync=None) for view in fleet.views]
        await pilot.press("slash", *"sync:drifted")
        await pilot.pause()
        assert table_rows(app, "#solutions") == []
        assert "sync is not known yet" in str(screen.query_one("#solutions-note").render())


async def test_space_selects_and_a_selects_everything_shown(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        await pilot.press("down", "space")
        assert screen.selected_ids() == ["globex"]
        assert table_rows(app, "#solutions")[1][0] == "✓"
        await pilot.press("space")
        assert screen.selected_ids() == []
        await pilot.press("slash", *"fresh:behind", "enter", "a")
        assert screen.selected_ids() == ["globex", "hooli", "wayne-enterprises"]
        await pilot.press("a")
        assert screen.selected_ids() == []


async def test_the_title_says_when_selected_solutions_are_hidden_by_the_filter(
    fixed_root: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        await pilot.press("space", "down", "space")  # acme-corp (current), globex (behind)
        await pilot.press("slash", *"fresh:behind", "enter")
        await settle(pilot)
        title = str(screen.query_one("#solutions-title").render())
        assert title.endswith("2 selected (1 hidden by the filter)")
        assert screen.acted_on() == ["acme-corp", "globex"]  # what p, r and t will act on, as the title says


async def test_a_click_puts_the_cursor_on_a_row_and_a_second_click_opens_it(
    fixed_root: Path, make_app: MakeApp
) -> None:
    from orbit_tui.line_table import LineTable
    from orbit_tui.screens.solution import SolutionScreen

    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        table = screen.query_one(LineTable)
        await pilot.click("#solutions", offset=(8, 3))  # the header is line 0: line 3 is the third row, hooli
        await settle(pilot)
        assert table.current_key == "hooli" and isinstance(app.screen, SolutionsScreen)
        await pilot.click("#solutions", offset=(0, 0))  # the header: nothing moves, nothing opens
        await settle(pilot)
        assert table.current_key == "hooli" and isinstance(app.screen, SolutionsScreen)
        await pilot.click("#solutions", offset=(8, 3))
        await settle(pilot)
        assert isinstance(app.screen, SolutionScreen) and app.screen.view.spec.id == "hooli"
