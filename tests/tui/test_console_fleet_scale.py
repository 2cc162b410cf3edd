"""The Solutions screen over 10,000 solutions: what the operator sees (first rows, filter, page, selection, a
refresh of one row). Functional, not timed: the speed is bench/bench_tui.py's (decision 0075)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SIZE
from console_helpers import open_solutions, provision_with_engine, settle, table_rows
from support import screen_text
from textual.widgets import Input

from orbit_tui.app import OrbitApp
from orbit_tui.line_table import LineTable
from orbit_tui.screens.solutions import SolutionsScreen

MakeApp = Callable[..., OrbitApp]
FLEET = 10_000
EXTRA = FLEET - 6  # the fixed workspace's six, and these


def fleet_id(number: int) -> str:
    return f"fleet-{number:05d}"


MATCHING = [fleet_id(number) for number in range(9990, EXTRA + 1)]  # what "fleet-0999" finds


@pytest.fixture(scope="module")
def fleet_root(fixed_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixed workspace grown to 10,000 solutions: every 7th behind on orbit (1.1.0), every 100th labelled
    ring=canary. Shared by this module's tests, which do not write to it (the refresh test copies it)."""
    root = tmp_path_factory.mktemp("fleet") / "ws"
    shutil.copytree(fixed_root, root, symlinks=True)
    folder = root / "solutions"
    for number in range(1, EXTRA + 1):
        lines = [f"id: {fleet_id(number)}", f"display_name: Fleet customer {number}"]
        if number % 100 == 0:
            lines += ["labels:", "  ring: canary"]
        if number % 7 == 0:
            lines += ["images:", '  orbit_tag: "1.1.0"']
        lines += ["env:", "  orbit:", f'    PUBLIC_BASE_URL: "https://{fleet_id(number)}.example.com"']
        (folder / f"{fleet_id(number)}.yaml").write_text("\n".join(lines) + "\n")
    return root


def shown_ids(screen: SolutionsScreen) -> list[str]:
    """The ids in the rows the table paints now, top to bottom (the header and blank lines left out)."""
    table = screen.query_one(LineTable)
    lines = [table.render_line(y).text for y in range(1, table.size.height)]
    return [next(word for word in line.split() if word != "✓") for line in lines if line.strip()]


def title(screen: SolutionsScreen) -> str:
    return str(screen.query_one("#solutions-title").render())


async def filter_for(pilot: object, screen: SolutionsScreen, text: str) -> None:
    box = screen.query_one("#solutions-filter", Input)
    box.display = True
    box.value = text
    await settle(pilot)  # type: ignore[arg-type]


async def test_ten_thousand_solutions_show_their_first_rows_filter_and_page(
    fleet_root: Path, make_app: MakeApp
) -> None:
    app = make_app(fleet_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        assert title(screen).startswith(f"Solutions: {FLEET} (")
        assert len(table_rows(app, "#solutions")) == FLEET
        ids = sorted(["acme-corp", "globex", "hooli", "initech", "umbrella-health", "wayne-enterprises",
                      *(fleet_id(number) for number in range(1, EXTRA + 1))])
        first = shown_ids(screen)
        page = len(first)
        assert page >= 20 and first == ids[:page]  # the first rows, in id order
        assert " acme-corp " in screen_text(app) and " fleet-00001 " in screen_text(app)

        await pilot.press("pagedown")
        await settle(pilot)
        table = screen.query_one(LineTable)
        after = shown_ids(screen)
        assert after[0] == ids[page - 1] or after[0] == ids[page]  # the next page: it starts where the last ended
        assert after[-1] == ids[len(after) - 1 + ids.index(after[0])]
        assert table.current_key in after
        await pilot.press("end")
        await settle(pilot)
        assert shown_ids(screen)[-1] == ids[-1] == "wayne-enterprises" and table.current_key == "wayne-enterprises"
        # The names column was made as wide as the widest name of the fleet before that row was ever drawn.
        painted = [table.render_line(y).text for y in range(1, table.size.height)]
        assert any(" fleet-09994 " in line and " Fleet customer 9994 " in line for line in painted), painted

        await filter_for(pilot, screen, "fleet-0999")
        assert shown_ids(screen) == MATCHING
        assert title(screen).endswith(f"filter shows {len(MATCHING)}")
        await filter_for(pilot, screen, "label:ring=canary fresh:behind")  # every 700th: canary and behind
        expected = [fleet_id(number) for number in range(700, EXTRA + 1, 700)]
        assert [row[1] for row in table_rows(app, "#solutions")] == expected
        assert shown_ids(screen) == expected and title(screen).endswith(f"filter shows {len(expected)}")
        await filter_for(pilot, screen, "health:degarded")
        assert "health:degarded is not one of" in str(screen.query_one("#solutions-note").render())
        assert "(did you mean 'degraded'?)" in str(screen.query_one("#solutions-note").render())


async def test_only_the_rows_drawn_are_made(fleet_root: Path, make_app: MakeApp,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows materialised for the viewport (decision 0088): opening 10,000 solutions, paging and a refresh make
    the cells of the rows drawn, not of the fleet."""
    import orbit_tui.screens.solutions as solutions_module

    made: list[str] = []
    original = solutions_module.solution_row

    def counted(view: object, **kwargs: object) -> object:
        made.append(view.spec.id)  # type: ignore[attr-defined]
        return original(view, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(solutions_module, "solution_row", counted)
    app = make_app(fleet_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        page = len(shown_ids(screen))
        for _ in range(3):
            await pilot.press("pagedown")
        await settle(pilot)
        app.model.fleet.sync()
        await settle(pilot)
        assert page * 3 < len(set(made)) <= page * 5  # four pages drawn (a page step is a row less than a page)
        assert len(made) < 20 * page  # a row is made again only when what it shows changed: a refresh kept them


async def test_clearing_a_filter_keeps_the_cursor_row_in_view(fleet_root: Path, make_app: MakeApp) -> None:
    app = make_app(fleet_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        await filter_for(pilot, screen, "fleet-0999")
        table = screen.query_one(LineTable)
        table.focus()
        await pilot.press("down")  # the second match
        await settle(pilot)
        assert table.current_key == MATCHING[1]
        await pilot.press("escape")  # clears the filter: all 10,000 again
        await settle(pilot)
        assert title(screen).startswith(f"Solutions: {FLEET} (") and "filter shows" not in title(screen)
        assert table.current_key == MATCHING[1] and MATCHING[1] in shown_ids(screen)


async def test_a_selection_survives_a_filter_at_ten_thousand(fleet_root: Path, make_app: MakeApp) -> None:
    app = make_app(fleet_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        await pilot.press("down", "space")  # fleet-00001
        await settle(pilot)
        assert screen.selected == {fleet_id(1)}
        await filter_for(pilot, screen, "fleet-0999")
        assert "1 selected (1 hidden by the filter)" in title(screen)
        screen.query_one(LineTable).focus()
        await pilot.press("a")  # every solution shown: those of the filter
        await settle(pilot)
        assert screen.selected == {fleet_id(1), *MATCHING}
        assert all(row[0] == "✓" for row in table_rows(app, "#solutions"))
        await filter_for(pilot, screen, "")
        rows = table_rows(app, "#solutions")
        assert len(rows) == FLEET and f"{len(MATCHING) + 1} selected" in title(screen) and "hidden" not in title(screen)
        assert {row[1] for row in rows if row[0] == "✓"} == screen.selected
        assert screen.acted_on() == [fleet_id(1), *MATCHING]


async def test_a_refresh_that_changes_one_solution_redraws_its_row(
    fleet_root: Path, tmp_path: Path, make_app: MakeApp
) -> None:
    root = tmp_path / "ws"
    shutil.copytree(fleet_root, root, symlinks=True)
    app = make_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        sync = {row[1]: row[7] for row in table_rows(app, "#solutions")}
        assert sync[fleet_id(3)] == "missing" and set(sync.values()) == {"missing"}
        await provision_with_engine(root, fleet_id(3))  # another terminal provisions one of the 10,000
        app.model.fleet.sync()  # the interval's refresh
        await settle(pilot)
        rows = {row[1]: row for row in table_rows(app, "#solutions")}
        assert rows[fleet_id(3)][7] == "synced"
        assert [key for key, row in rows.items() if row[7] != "missing"] == [fleet_id(3)]
        table = screen.query_one(LineTable)
        painted = next(table.render_line(y).text for y in range(1, table.size.height)
                       if f" {fleet_id(3)} " in table.render_line(y).text)
        assert " synced " in painted  # the row on screen was drawn again, not only the data behind it
        assert set(table.flashing) == {fleet_id(3)}
