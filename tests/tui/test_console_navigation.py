"""Keys that move around the console: 1/2/3, Esc, Enter drill-down, help, the palette, read-only mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import SIZE
from console_helpers import settle, table_rows
from textual.command import CommandPalette
from textual.widgets import DataTable, OptionList

from orbit_tui.app import OrbitApp
from orbit_tui.screens.components import ComponentsScreen
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import HelpScreen
from orbit_tui.screens.operations import OperationsScreen
from orbit_tui.screens.solution import SolutionScreen
from orbit_tui.screens.solutions import SolutionsScreen
from orbit_tui.screens.tags import TagsScreen

MakeApp = Callable[..., OrbitApp]


async def test_keys_1_2_3_switch_screens_from_anywhere(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ComponentsScreen)
        for key, screen in [("2", SolutionsScreen), ("3", OperationsScreen), ("1", ComponentsScreen)]:
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, screen)
        await pilot.press("enter")  # agent's tags, pushed on the Components mode
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        assert isinstance(app.screen, OperationsScreen)


async def test_escape_goes_back_through_pushed_screens_then_modes(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "back" not in {b.binding.action for b in app.screen.active_bindings.values()}
        await pilot.press("2", "3", "enter")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        for expected in (OperationsScreen, SolutionsScreen, ComponentsScreen):
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, expected)


async def test_pressing_the_current_mode_key_returns_to_its_first_screen(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TagsScreen)
        await pilot.press("1")
        await settle(pilot)
        assert isinstance(app.screen, ComponentsScreen)


async def test_components_drill_down_shows_tags_with_records_and_pins(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert [row[0] for row in table_rows(app, "#components")] == ["agent", "mc", "orbit"]
        orbit = table_rows(app, "#components")[2]
        assert orbit[1:] == ["orbit/v1.3.0", "1.2.0", "1.3.0", "4/6", "ok"]  # initech floats onto 1.2.0
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, TagsScreen) and app.screen.component == "orbit"
        rows = table_rows(app, "#tags")
        assert [row[0] for row in rows] == ["1.3.0", "1.2.0", "1.1.0", "1.0.0"]
        assert rows[0][3:5] == ["annotated", "unreleased"]
        assert rows[1][3] == "lightweight" and rows[1][4] != "unreleased"
        assert [row[6] for row in rows] == ["1", "3", "1", ""]  # initech's "latest" counts as itself


async def test_solutions_enter_opens_the_solution(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, SolutionScreen) and app.screen.view.spec.id == "globex"
        history = table_rows(app, "#history")
        # globex's own state in the sweep is what its history shows (the sweep failed because globex did)
        assert [row[1:4] for row in history] == [["sweep", "3 solutions", "failed"]]


async def test_help_lists_every_key_of_the_current_screen(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "enter")
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(DataTable)
        keys = [str(table.get_row_at(index)[0]) for index in range(table.row_count)]
        for key in ("f", "/", "n", "N", "s", "esc", "1", "2", "3", "?", "q"):
            assert key in keys
        assert "c" not in keys  # a finished operation cannot be cancelled: not offered
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)


async def _palette_titles(pilot, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    await pilot.press("ctrl+p")
    await settle(pilot)
    assert isinstance(pilot.app.screen, CommandPalette)
    await pilot.press(*query)
    await settle(pilot)
    options = pilot.app.screen.query_one(OptionList)
    return [str(options.get_option_at_index(i).prompt).splitlines()[0] for i in range(options.option_count)]


async def test_palette_offers_the_screen_actions_and_runs_them(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = await _palette_titles(pilot, "build")
        assert "Build latest  (b)" in titles
        await pilot.press("escape")
        titles = await _palette_titles(pilot, "operations")
        assert titles[0] == "Operations  (3)"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, OperationsScreen)


async def test_read_only_hides_every_mutating_action(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "read-only" in app.sub_title
        screen = app.screen
        assert screen.check_action("build", ()) is False
        assert "b" not in screen.active_bindings
        await pilot.press("b")
        await settle(pilot)
        assert app.screen is screen  # no confirmation opened
        assert not any("Build" in title for title in await _palette_titles(pilot, "build"))
        await pilot.press("escape")
        await pilot.press("enter")  # tags of agent
        await settle(pilot)
        assert app.screen.check_action("build", ()) is False
        app.open_log("20261124-120000-0001")
        await settle(pilot)
        assert app.screen.check_action("cancel", ()) is False
