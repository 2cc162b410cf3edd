"""Quitting: at once when nothing runs; otherwise the operator chooses background, cancel, or stay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from conftest import SIZE
from console_helpers import blocking_runner, settle

from orbit_tui.app import OrbitApp
from orbit_tui.screens.components import ComponentsScreen
from orbit_tui.screens.modals import QuitScreen

MakeApp = Callable[..., OrbitApp]


def _record_exit(app: OrbitApp) -> list[bool]:
    exits: list[bool] = []
    app.exit = lambda *args, **kwargs: exits.append(True)  # type: ignore[method-assign]
    return exits


async def test_q_quits_at_once_when_nothing_runs(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        exits = _record_exit(app)
        await pilot.press("q")
        await settle(pilot)
        assert exits == [True]
        assert isinstance(app.screen, ComponentsScreen)


async def test_stay_keeps_the_console_and_the_operation(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    release = asyncio.Event()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        run = app.runs.start(blocking_runner(app, release))
        exits = _record_exit(app)
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, QuitScreen)
        assert app.screen.running == [f"build orbit@9.9.9 · {run.op_id}"]
        await pilot.click("#stay")
        await settle(pilot)
        assert isinstance(app.screen, ComponentsScreen) and exits == [] and not run.done
        release.set()
        await run.task
    assert run.finished is not None and run.finished.state == "succeeded"


async def test_cancel_them_cancels_waits_for_cleanup_and_quits(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        run = app.runs.start(blocking_runner(app, asyncio.Event()))
        exits = _record_exit(app)
        await pilot.press("q")
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)  # the quit worker waits for the cancelled operation to end
        assert exits == [True]
        assert run.done and run.finished is not None and run.finished.state == "cancelled"
    assert app.workspace.operations().get(run.op_id).state == "cancelled"


async def test_background_quits_and_the_operation_finishes_after_the_console(
    fixed_copy: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_copy)
    release = asyncio.Event()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        run = app.runs.start(blocking_runner(app, release))
        await pilot.press("q")
        await settle(pilot)
        await pilot.click("#background")
        await pilot.pause()
    assert not run.done  # the console closed; the build did not stop with it
    said: list[str] = []
    release.set()
    await app.runs.drain(said.append)
    assert said[0].startswith("1 operation(s) started in the console are still running")
    assert said[-1] == f"build orbit@9.9.9 succeeded · {run.op_id}"
    assert app.workspace.operations().get(run.op_id).state == "succeeded"
