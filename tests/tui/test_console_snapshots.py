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
from console_helpers import settle, settled_screen
from console_workspace import push_image, untag_image
from textual.pilot import Pilot

from orbit_tui.app import OrbitApp
from orbit_tui.line_table import LineTable
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import QuitScreen
from orbit_tui.screens.solutions import SolutionsScreen
from orbit_tui.widgets import StateTable

MakeApp = Callable[..., OrbitApp]
Steps = Callable[[Pilot[Any]], Awaitable[None]]
BUILD_OP, SWEEP_OP, FAILED_OP = "20261124-120000-0001", "20261124-120000-0002", "20261124-120000-0003"


def keys(*pressed: str) -> Steps:
    async def run(pilot: Pilot[Any]) -> None:
        # Each key is pressed on a screen at rest: a dialog it opens shows the screen behind it as it finally looks.
        await settled_screen(pilot)
        for key in pressed:
            await pilot.press(key)
            await settled_screen(pilot)

    return run


def log_of(op_id: str, *pressed: str) -> Steps:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        pilot.app.open_log(op_id)  # type: ignore[attr-defined]
        await keys(*pressed)(pilot)

    return run


@pytest.fixture(autouse=True)
def lasting_flash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row changed by a refresh stays flagged for the whole test: what the snapshot shows cannot depend on
    whether the machine took more than the flag's 1.5 s to get there."""
    monkeypatch.setattr(StateTable, "FLASH_SECONDS", 3600)
    monkeypatch.setattr(LineTable, "FLASH_SECONDS", 3600)


@pytest.fixture
def snap(snap_compare: Any, fixed_home: Path, make_app: MakeApp) -> Callable[..., bool]:
    def compare(steps: Steps, *, read_only: bool = False) -> bool:
        return bool(snap_compare(make_app(fixed_home, read_only=read_only), terminal_size=SIZE, run_before=steps))

    return compare


@pytest.fixture
def snap_copy(snap_compare: Any, fixed_copy: Path, make_app: MakeApp) -> Callable[..., bool]:
    """Snapshots of a private copy of the fixed workspace, which the test changes first (frozen clocks)."""

    def compare(steps: Steps) -> bool:
        return bool(snap_compare(make_app(fixed_copy), terminal_size=SIZE, run_before=steps))

    return compare


def _engine(root: Path, first_id: int, kind: str, **what: Any) -> None:
    """Run a roll or a provision with the engine (as the CLI would), the store's clock and ids frozen."""
    import asyncio

    from console_workspace import frozen_engine_clock

    from orbit_ops.fleet.entries import plan_sweep, start_roll, start_sweep
    from orbit_ops.fleet.roll import plan_roll
    from orbit_ops.workspace import Workspace

    workspace = Workspace.open(root)
    specs = [spec for spec in workspace.solutions() if spec.id in what["ids"]]

    async def run() -> None:
        if kind == "roll":
            plan = plan_roll(workspace, what["component"], what["version"], specs)
            runner = start_roll(workspace, plan, provision=what.get("provision", True))
        else:
            runner = start_sweep(workspace, await plan_sweep(workspace, specs, skip_unreleased=True))
        async for _event in runner.events():
            pass

    with frozen_engine_clock(first_id):
        asyncio.run(run())
    workspace.operations().close()


def _move_tag(root: Path, tag: str, to: str) -> None:
    from console_workspace import FIXED_NOW, _git

    commit = _git(root, "rev-parse", f"{to}^{{commit}}")
    _git(root, "tag", "-f", "-a", tag, "-m", "moved", commit, when=FIXED_NOW)


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


def test_help_of_the_solution(snap: Callable[..., bool]) -> None:
    assert snap(keys("2", "enter", "question_mark"))


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


def test_roll_confirmation_names_the_solutions_lacking_a_variable(snap_copy: Callable[..., bool],
                                                                  fixed_copy: Path) -> None:
    push_image(fixed_copy, "orbit", "1.2.0", requires="MC_URL")  # neither acme-corp nor globex sets it
    assert snap_copy(keys("2", "space", "down", "space", "t", "enter"))


def test_solutions_pin_filter(snap: Callable[..., bool]) -> None:
    assert snap(keys("2", "slash", *"pin:orbit=1.2.0"))


def test_plan_with_updates(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _engine(fixed_copy, 4, "provision", ids=["globex"])
    path = fixed_copy / "solutions" / "globex.yaml"
    path.write_text(path.read_text().replace('orbit_tag: "1.1.0"', 'orbit_tag: "1.2.0"').replace(".com", ".org"))
    assert snap_copy(keys("2", "down", "space", "down", "down", "space", "p"))


def test_rows_changed_by_a_refresh(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        import asyncio

        await keys("2")(pilot)
        # another terminal provisions globex (in a thread: this test's loop is the console's)
        await asyncio.to_thread(_engine, fixed_copy, 4, "provision", ids=["globex"])
        assert isinstance(pilot.app.screen, SolutionsScreen) and isinstance(pilot.app, OrbitApp)
        pilot.app.model.fleet.sync()
        await settled_screen(pilot)

    assert snap_copy(run)


def test_rollback_pick(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _engine(fixed_copy, 4, "roll", ids=["globex"], component="orbit", version="1.2.0")
    assert snap_copy(keys("2", "down", "enter", "u"))


def test_rollback_confirmation(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _engine(fixed_copy, 4, "roll", ids=["globex"], component="orbit", version="1.2.0")
    assert snap_copy(keys("2", "down", "enter", "u", "enter"))


def test_integrity_on_components(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _move_tag(fixed_copy, "agent/v2.0.0", "agent/v1.0.0")
    assert snap_copy(keys())


def test_integrity_on_tags(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _move_tag(fixed_copy, "agent/v2.0.0", "agent/v1.0.0")
    assert snap_copy(keys("enter"))


def test_integrity_on_solutions(snap_copy: Callable[..., bool], fixed_copy: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    _move_tag(fixed_copy, "agent/v2.0.0", "agent/v1.0.0")
    # The records' check may end before or after the rows are first drawn (a refresh then flags the marked rows,
    # or not): what is shown here is the marks, so no row is flagged either way.
    monkeypatch.setattr(LineTable, "_flash", lambda self, keys: None)
    assert snap_copy(keys("2"))


def test_integrity_in_the_solution(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _move_tag(fixed_copy, "agent/v2.0.0", "agent/v1.0.0")
    assert snap_copy(keys("2", "enter"))


def _running(root: Path) -> None:
    """acme-corp running, globex's orbit 1.1.0 (its image deleted from the registry) failing to pull: healthy and
    degraded."""
    untag_image(root, "orbit", "1.1.0")
    _engine(root, 4, "provision", ids=["acme-corp", "globex"])


def test_solutions_with_health(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _running(fixed_copy)
    assert snap_copy(keys("2"))


def test_solutions_health_filter(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _running(fixed_copy)
    assert snap_copy(keys("2", "slash", *"health:degraded"))


def test_solution_revisions(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _running(fixed_copy)
    assert snap_copy(keys("2", "down", "enter"))


def _break_files(root: Path) -> None:
    """One malformed and one mis-typed solution file beside the fixed workspace's solutions (issue 12)."""
    (root / "solutions" / "broken.yaml").write_text('id: broken\nimages: {agent_tag: "2.0.0"\nenv: x\n')
    (root / "solutions" / "typed.yaml").write_text('id: typed\nenv: {agent: {N: 012}}\n')


def test_solutions_with_invalid_files(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _break_files(fixed_copy)
    assert snap_copy(keys("2"))


def test_invalid_solution_detail(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _break_files(fixed_copy)
    assert snap_copy(keys("2", "down", "enter"))


# --- operations and logs ------------------------------------------------------------------------------------


def test_operations(snap: Callable[..., bool]) -> None:
    assert snap(keys("3"))


def test_build_log(snap: Callable[..., bool]) -> None:
    assert snap(log_of(BUILD_OP))


def test_failed_build_log(snap: Callable[..., bool]) -> None:
    assert snap(log_of(FAILED_OP))


def test_sweep_log_with_members(snap: Callable[..., bool]) -> None:
    assert snap(log_of(SWEEP_OP))


def test_retry_confirmation(snap: Callable[..., bool]) -> None:
    assert snap(keys("3", "down", "r"))


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
        await settled_screen(pilot)

    assert snap(run)


def test_quit_dialog(snap: Callable[..., bool]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        pilot.app.push_screen(QuitScreen(["build orbit@1.3.0 · 20261124-120000-0004"]))
        await settled_screen(pilot)

    assert snap(run)


# --- rolls in waves ----------------------------------------------------------------------------------------


def _ring(root: Path) -> None:
    for solution_id, ring in {"acme-corp": "canary", "globex": "early", "hooli": "early"}.items():
        path = root / "solutions" / f"{solution_id}.yaml"
        path.write_text(path.read_text() + f"labels:\n  ring: {ring}\n")


def _waved_roll(root: Path, first_id: int, waves: str) -> None:
    """Roll orbit 1.1.0 to every solution in ``waves`` with the engine (as ``orbit roll --waves`` would), the store's
    clock and ids frozen."""
    import asyncio

    from console_workspace import frozen_engine_clock

    from orbit_ops.fleet.entries import start_waved_roll
    from orbit_ops.fleet.preflight import check_roll
    from orbit_ops.fleet.roll import plan_roll
    from orbit_ops.fleet.waves import WaveSettings, lay_out, parse_waves
    from orbit_ops.workspace import Workspace

    workspace = Workspace.open(root)
    specs = workspace.solutions()

    async def run() -> None:
        plan = await check_roll(workspace, plan_roll(workspace, "orbit", "1.1.0", specs))
        runner = start_waved_roll(workspace, plan, WaveSettings(lay_out(specs, parse_waves(waves))))
        async for _event in runner.events():
            pass

    with frozen_engine_clock(first_id):
        asyncio.run(run())
    workspace.operations().close()


def test_waves_form(snap: Callable[..., bool]) -> None:
    assert snap(keys("2", "a", "t", "down", "w"))


def test_waves_confirmation(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _ring(fixed_copy)
    assert snap_copy(keys("2", "a", "t", "down", "w", "enter"))


def test_roll_view_of_a_halted_roll(snap_copy: Callable[..., bool], fixed_copy: Path) -> None:
    _ring(fixed_copy)
    push_image(fixed_copy, "orbit", "1.1.0", requires="MC_URL")  # no fixture solution sets it: the canary fails
    _waved_roll(fixed_copy, 4, "ring=canary,ring=early,*")
    assert snap_copy(log_of("20261124-120000-0004"))


def test_roll_view_of_a_soaking_wave(snap_copy: Callable[..., bool], fixed_copy: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Started from the console and caught mid-soak: the countdown runs to the engine's deadline (its clock and the
    console's both stand at 12:00:00)."""
    import itertools
    from types import SimpleNamespace

    from console_workspace import _FrozenDatetime

    import orbit_ops.fleet.waved_roll
    import orbit_ops.operations.records
    import orbit_ops.operations.store
    from orbit_tui.screens.roll import RollScreen

    _ring(fixed_copy)
    counter = itertools.count(4)
    for module in (orbit_ops.operations.store, orbit_ops.operations.records, orbit_ops.fleet.waved_roll):
        monkeypatch.setattr(module, "datetime", _FrozenDatetime)
    monkeypatch.setattr(orbit_ops.operations.store, "secrets",
                        SimpleNamespace(token_hex=lambda _n: f"{next(counter):04d}"))

    async def run(pilot: Pilot[Any]) -> None:
        await keys("2", "a", "t", "down", "w", "tab")(pilot)
        await pilot.press("ctrl+u", *"10m", "enter")
        await settle(pilot)
        await pilot.press("y")
        screen = pilot.app.screen
        for _ in range(600):
            screen = pilot.app.screen
            if isinstance(screen, RollScreen) and "soaking until" in screen.messages.get("wave 1", ""):
                break
            await pilot.pause(0.1)
        assert isinstance(screen, RollScreen)
        await settle(pilot, skip=("operation", "log"))
        await pilot.pause(0.3)

    assert snap_copy(run)
