"""Snapshots of every screen and dialog at 120×40 on the fixed workspace, clocks frozen (grouped by screen).

Review the SVGs before accepting a change: ``pytest tests/tui --snapshot-update`` then look at
``tests/tui/__snapshots__/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import SIZE
from console_helpers import settle
from textual.pilot import Pilot

from orbit_tui.app import OrbitApp
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import QuitScreen

MakeApp = Callable[..., OrbitApp]
Steps = Callable[[Pilot[Any]], Awaitable[None]]
BUILD_OP, SWEEP_OP, FAILED_OP = "20261124-120000-0001", "20261124-120000-0002", "20261124-120000-0003"


def keys(*pressed: str) -> Steps:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run


def log_of(op_id: str, *pressed: str) -> Steps:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        pilot.app.open_log(op_id)  # type: ignore[attr-defined]
        await keys(*pressed)(pilot)

    return run


@pytest.fixture
def snap(snap_compare: Any, fixed_home: Path, make_app: MakeApp) -> Callable[..., bool]:
    def compare(steps: Steps, *, read_only: bool = False) -> bool:
        return bool(snap_compare(make_app(fixed_home, read_only=read_only), terminal_size=SIZE, run_before=steps))

    return compare


# --- components ---------------------------------------------------------------------------------------------


def test_components(snap: Callable[..., bool]) -> None:
    assert snap(keys())


def test_components_read_only(snap: Callable[..., bool]) -> None:
    assert snap(keys(), read_only=True)


def test_tags(snap: Callable[..., bool]) -> None:
    assert snap(keys("down", "down", "enter"))


def test_build_confirmation(snap: Callable[..., bool]) -> None:
    assert snap(keys("down", "down", "enter", "b"))


def test_build_confirmation_of_a_released_tag(snap: Callable[..., bool]) -> None:
    assert snap(keys("down", "down", "enter", "down", "b"))


def test_help(snap: Callable[..., bool]) -> None:
    assert snap(keys("question_mark"))


# --- solutions ----------------------------------------------------------------------------------------------


def test_solutions(snap: Callable[..., bool]) -> None:
    assert snap(keys("2", "down", "space"))


def test_solutions_filtered(snap: Callable[..., bool]) -> None:
    assert snap(keys("2", "slash", *"fresh:behind"))


def test_solution(snap: Callable[..., bool]) -> None:
    assert snap(keys("2", "enter"))


def test_solutions_read_only(snap: Callable[..., bool]) -> None:
    assert snap(keys("2"), read_only=True)


def test_plan(snap: Callable[..., bool]) -> None:
    assert snap(keys("2", "space", "down", "down", "down", "down", "space", "p"))


def test_sweep_confirmation(snap: Callable[..., bool]) -> None:
    assert snap(keys("2", "R"))


def test_roll_pick(snap: Callable[..., bool]) -> None:
    assert snap(keys("2", "down", "t"))


def test_roll_confirmation(snap: Callable[..., bool]) -> None:
    assert snap(keys("2", "space", "down", "space", "t", "enter"))


# --- operations and logs ------------------------------------------------------------------------------------


def test_operations(snap: Callable[..., bool]) -> None:
    assert snap(keys("3"))


def test_build_log(snap: Callable[..., bool]) -> None:
    assert snap(log_of(BUILD_OP))


def test_failed_build_log(snap: Callable[..., bool]) -> None:
    assert snap(log_of(FAILED_OP))


def test_sweep_log_with_members(snap: Callable[..., bool]) -> None:
    assert snap(log_of(SWEEP_OP))


def test_log_search(snap: Callable[..., bool]) -> None:
    assert snap(log_of(BUILD_OP, "slash", *"tagged", "enter"))


def test_log_save_dialog(snap: Callable[..., bool]) -> None:
    assert snap(log_of(BUILD_OP, "s"))


def test_cancel_confirmation(snap: Callable[..., bool]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await log_of(BUILD_OP)(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, LogScreen)
        screen.state = "running"  # as if still running: the question is the same
        screen.action_cancel()
        await settle(pilot)

    assert snap(run)


def test_quit_dialog(snap: Callable[..., bool]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        pilot.app.push_screen(QuitScreen(["build orbit@1.3.0 · 20261124-120000-0004"]))
        await settle(pilot)

    assert snap(run)
