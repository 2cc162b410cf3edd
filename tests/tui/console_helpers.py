"""Helpers for driving the console in Pilot tests: settling, reading tables and notifications."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from orbit_ops.fleet.entries import plan_sweep, start_sweep
from orbit_ops.operations.runner import OperationRunner
from orbit_ops.workspace import Workspace
from orbit_tui.app import OrbitApp
from orbit_tui.line_table import LineTable
from orbit_tui.screens.solutions import SolutionsScreen
from orbit_tui.widgets import StateTable


async def settle(pilot: Pilot[Any], *, skip: tuple[str, ...] = ()) -> None:
    """Let pending work finish, then the screen catch up with it (no sleeps: waits on the work itself; bounded).

    ``skip`` names worker groups not to wait for, e.g. ``("log",)`` while a log follows an operation that the
    test keeps running.
    """
    # Work starts work (a load hands over to the platform read once the table is drawn, which starts the integrity
    # check): the console model says when none of its own is running or scheduled (``at_rest``); the app's and the
    # screens' workers are waited for by name. At rest and no worker left after a pause that let the screen
    # process what it was sent: settled.
    model = _app(pilot).model
    for _ in range(250):
        await pilot.pause()
        running = [w for w in pilot.app.workers if w.group not in skip and not w.is_finished]
        if running:
            await asyncio.gather(*(w.wait() for w in running), return_exceptions=True)  # cancelled/failed: done
        elif not model.at_rest.is_set():
            await asyncio.wait_for(model.at_rest.wait(), timeout=60)
        else:
            await pilot.pause()  # what the last facts made the screen change is drawn before anyone looks
            if model.at_rest.is_set() and not any(
                w.group not in skip and not w.is_finished for w in pilot.app.workers
            ):
                break


def _app(pilot: Pilot[Any]) -> OrbitApp:
    app = pilot.app
    assert isinstance(app, OrbitApp)
    return app


async def settled_screen(pilot: Pilot[Any]) -> None:
    """:func:`settle`, then until the screen stops changing: what a snapshot shows is the screen at rest.

    A change that nothing waitable announces (a widget redrawn after its own idle) would otherwise be caught
    half-way on a busy machine. Bounded; compares the rendered screen of two consecutive pauses.
    """
    await settle(pilot)
    before = pilot.app.export_screenshot()
    for _ in range(20):
        await pilot.pause()
        now = pilot.app.export_screenshot()
        if now == before:
            return
        before = now
        await settle(pilot)


async def open_solutions(pilot: Pilot[Any]) -> SolutionsScreen:
    """Switch to the Solutions screen (``2``) and wait until it has loaded."""
    await pilot.press("2")
    await settle(pilot)
    assert isinstance(pilot.app.screen, SolutionsScreen)
    return pilot.app.screen


def table_rows(app: OrbitApp, selector: str) -> list[list[str]]:
    """The plain text of every row of a StateTable (or the Solutions screen's LineTable) on the current screen."""
    table = app.screen.query_one(selector)
    assert isinstance(table, StateTable | LineTable)
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


def record_notifications(app: OrbitApp) -> list[tuple[str, dict[str, Any]]]:
    """Every ``notify`` call the app makes from now on: (message, keyword arguments)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        calls.append((message, kwargs))
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return calls


def blocking_runner(app: OrbitApp, release: asyncio.Event, *, target: str = "orbit@9.9.9") -> OperationRunner:
    """A real operation (kind build) whose body waits for ``release``: a build that is still running."""

    async def body(ctx: Any) -> dict[str, Any]:
        ctx.log("waiting for the builder")
        ctx.progress(1, 2)
        await release.wait()
        ctx.log("done")
        ctx.progress(2, 2)
        return {"status": "built"}

    return OperationRunner(app.workspace.operations(), "build", target, body, total=2)


async def provision_with_engine(root: Path, *ids: str) -> None:
    """Provision ``ids`` with the engine directly, as ``orbit provision`` in another terminal would."""
    workspace = Workspace.open(root)
    specs = [spec for spec in workspace.solutions() if spec.id in ids]

    confirmed = await plan_sweep(workspace, specs, skip_unreleased=True)
    async for _event in start_sweep(workspace, confirmed).events():
        pass
