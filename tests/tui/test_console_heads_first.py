"""The Solutions screen drawn from the solution cache's heads before the specs are read (issue 17, decision 0094):
the rows are there at once and are the same once the specs arrive; a filter typed meanwhile holds; Enter opens the
detail as soon as the spec is read, unless the operator has left the screen; a file changed since the heads were
made is never shown from them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SIZE
from console_helpers import settle, table_rows
from textual.pilot import Pilot
from textual.widgets import Input

from orbit_ops.config import solution_cache
from orbit_ops.config.load import load_config, load_solution_set
from orbit_tui.app import OrbitApp
from orbit_tui.fleet_model import FleetModel
from orbit_tui.screens.solution import SolutionScreen
from orbit_tui.screens.solutions import SolutionsScreen

MakeApp = Callable[..., OrbitApp]


@pytest.fixture
def warm(fixed_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixed workspace with its solution cache written by a read of every file (trusted at once: the files were
    written seconds ago, the racy window has its own tests)."""
    monkeypatch.setattr(solution_cache, "RACY_NS", 0)
    load_solution_set(load_config(fixed_copy))
    solution_cache.wait_for_writes()
    return fixed_copy


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The console's read of the specs waits until the event is set (a large fleet's read, still under way)."""
    release = threading.Event()
    real = FleetModel.read_views

    def read_views(self: FleetModel) -> Any:
        assert release.wait(30)
        return real(self)

    monkeypatch.setattr(FleetModel, "read_views", read_views)
    yield release
    release.set()


async def heads_shown(pilot: Pilot[Any]) -> SolutionsScreen:
    """``2``, then until the Solutions table holds the rows drawn from the heads."""
    app = pilot.app
    assert isinstance(app, OrbitApp)
    await pilot.press("2")
    for _ in range(500):
        await pilot.pause(0.01)
        screen = app.screen
        if isinstance(screen, SolutionsScreen) and app.model.fleet.heads_only and table_rows(app, "#solutions"):
            return screen
    raise AssertionError("the heads were not shown")


async def test_the_rows_come_from_the_heads_then_the_specs_show_the_same(warm: Path, make_app: MakeApp,
                                                                         held: threading.Event) -> None:
    app = make_app(warm)
    async with app.run_test(size=SIZE) as pilot:
        await heads_shown(pilot)
        first = table_rows(app, "#solutions")
        assert [row[1] for row in first] == ["acme-corp", "globex", "hooli", "initech", "umbrella-health",
                                             "wayne-enterprises"]
        assert app.model.workspace._solutions is None  # no spec read yet
        held.set()
        await settle(pilot)
        assert not app.model.fleet.heads_only and app.model.workspace._solutions is not None
        after = table_rows(app, "#solutions")
        assert [row[:7] for row in after] == [row[:7] for row in first]  # select, id, name, pins, freshness


async def test_enter_on_a_head_opens_the_detail_once_its_spec_is_read(warm: Path, make_app: MakeApp,
                                                                      held: threading.Event) -> None:
    app = make_app(warm)
    async with app.run_test(size=SIZE) as pilot:
        await heads_shown(pilot)
        await pilot.press("down", "enter")  # globex
        await pilot.pause()
        assert isinstance(app.screen, SolutionsScreen)
        held.set()
        await settle(pilot)
        assert isinstance(app.screen, SolutionScreen) and app.screen.spec.id == "globex"
        assert "PUBLIC_BASE_URL=" in app.screen.env_text()  # the whole spec: its env


async def test_leaving_before_the_spec_is_read_drops_the_enter(warm: Path, make_app: MakeApp,
                                                               held: threading.Event) -> None:
    app = make_app(warm)
    async with app.run_test(size=SIZE) as pilot:
        await heads_shown(pilot)
        await pilot.press("enter", "1")
        held.set()
        await settle(pilot)
        assert app.current_mode == "components" and not isinstance(app.screen, SolutionScreen)


async def test_a_filter_typed_on_the_heads_holds_once_the_specs_arrive(warm: Path, make_app: MakeApp,
                                                                       held: threading.Event) -> None:
    app = make_app(warm)
    async with app.run_test(size=SIZE) as pilot:
        screen = await heads_shown(pilot)
        await pilot.press("slash", *"initech")
        await pilot.pause()
        assert [row[1] for row in table_rows(app, "#solutions")] == ["initech"]
        held.set()
        await settle(pilot)
        assert screen.query_one("#solutions-filter", Input).value == "initech"
        assert [row[1] for row in table_rows(app, "#solutions")] == ["initech"]


async def test_a_file_changed_since_the_heads_is_shown_as_it_is(warm: Path, make_app: MakeApp) -> None:
    path = warm / "solutions" / "globex.yaml"
    path.write_text(path.read_text().replace("display_name: Globex", "display_name: Globex, renamed"))
    app = make_app(warm)
    published: list[bool] = []
    async with app.run_test(size=SIZE) as pilot:
        app.model.fleet.changed.subscribe(app, lambda _changed: published.append(app.model.fleet.heads_only))
        await pilot.press("2")
        await settle(pilot)
        assert published and not any(published)  # never drawn from the heads
        names = {row[1]: row[2] for row in table_rows(app, "#solutions")}
        assert names["globex"] == "Globex, renamed"
