"""`u` rolls an app of a solution back to its previous pin; a roll can write pins only (`--no-provision`);
`r` on a finished sweep (Operations screen or its log) re-provisions only its failures (`--failed-from`).

Each runs the real engine on a copy of the fixed workspace; files, operations and platform state are checked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import SIZE
from console_helpers import open_solutions, record_notifications, settle, table_rows
from textual.widgets import OptionList

from orbit_ops.fleet.entries import start_roll
from orbit_ops.fleet.roll import plan_roll
from orbit_ops.fleet.status import fleet_status
from orbit_ops.workspace import Workspace
from orbit_tui.app import OrbitApp
from orbit_tui.commands import screen_actions
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import ChoiceScreen, PlanScreen
from orbit_tui.screens.operations import OperationsScreen
from orbit_tui.screens.solution import SolutionScreen

MakeApp = Callable[..., OrbitApp]
BUILD_OP, SWEEP_OP = "20261124-120000-0001", "20261124-120000-0002"


async def _roll(root: Path, component: str, version: str, *ids: str, provision: bool = False) -> None:
    """Roll with the engine directly (what ``orbit roll`` does)."""
    workspace = Workspace.open(root)
    specs = [spec for spec in workspace.solutions() if spec.id in ids]
    plan = plan_roll(workspace, component, version, specs)
    async for _event in start_roll(workspace, plan, provision=provision).events():
        pass


async def _sync(root: Path) -> dict[str, str]:
    statuses, _ = await fleet_status(Workspace.open(root))
    return {status.id: status.sync for status in statuses}


def _pin(root: Path, solution_id: str) -> str:
    return (root / "solutions" / f"{solution_id}.yaml").read_text()


async def _detail(pilot: Any, row: int) -> SolutionScreen:
    await pilot.press("2")
    await settle(pilot)
    await pilot.press(*(["down"] * row), "enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, SolutionScreen)
    return pilot.app.screen


# --- u: roll back ---------------------------------------------------------------------------------------------


async def test_u_rolls_an_app_back_to_its_previous_pin_after_the_plan(fixed_copy: Path, make_app: MakeApp) -> None:
    await _roll(fixed_copy, "orbit", "1.2.0", "globex")  # globex: orbit 1.1.0 → 1.2.0
    assert 'orbit_tag: "1.2.0"' in _pin(fixed_copy, "globex")
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await _detail(pilot, 1)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        assert app.screen.choices[0] == ("orbit@1.1.0", "orbit  1.2.0 → 1.1.0")
        options = app.screen.query_one(OptionList)
        assert [options.get_option_at_index(i).disabled for i in range(3)] == [False, True, True]
        assert "no roll set this pin" in app.screen.choices[1][1]
        await pilot.press("enter")  # the highlighted first option: orbit
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        assert app.screen.title_text == "Roll back orbit of globex to 1.1.0?"
        assert "globex  orbit  1.2.0 → 1.1.0" in app.screen.text
        await pilot.click("#confirm")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen) and app.screen.state == "succeeded"
        op_id = app.screen.op_id
    record = app.workspace.operations().get(op_id)
    assert record.kind == "roll" and record.result["pins"] == [
        {"id": "globex", "component": "orbit", "from": "1.2.0", "to": "1.1.0"}
    ]
    assert 'orbit_tag: "1.1.0"' in _pin(fixed_copy, "globex")
    assert (await _sync(fixed_copy))["globex"] == "synced"


async def test_u_without_any_roll_in_the_history_says_there_is_nothing_to_roll_back(
    fixed_copy: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await _detail(pilot, 0)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, SolutionScreen)
    errors = [message for message, kwargs in notes if kwargs.get("severity") == "error"]
    assert errors == [
        "no roll in the operation history changed a pin of acme-corp: nothing to roll back (roll the version you "
        "want with t)"
    ]


async def test_u_is_hidden_in_read_only_mode_and_listed_in_help_and_palette(
    fixed_root: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _detail(pilot, 0)
        offered = {entry.action: entry.key for entry in screen_actions(screen)}
        assert offered["roll_back"] == "u"
    app = make_app(fixed_root, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _detail(pilot, 0)
        assert screen.check_action("roll_back", ()) is False
        assert "roll_back" not in {entry.action for entry in screen_actions(screen, include_disabled=True)}


# --- roll: pins only ------------------------------------------------------------------------------------------


async def test_pins_only_rewrites_the_pins_and_provisions_nothing(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("down", "t")  # globex
        await settle(pilot)
        await pilot.press("enter")  # orbit 1.2.0
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        assert "Pins only" in str(app.screen.query_one("#pins-only").label)
        # the question shows the pin change, then what the sweep after it would write
        text = app.screen.text
        assert text.index("globex  orbit  1.1.0 → 1.2.0") < text.index("globex  8 to create")
        assert "image orbit:1.2.0" in text and "plan: 1 solution(s), 8 to create, 0 to update" in text
        await pilot.click("#pins-only")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen) and app.screen.state == "succeeded"
        op_id = app.screen.op_id
    record = app.workspace.operations().get(op_id)
    assert record.kind == "roll" and record.result["solutions"] == [] and record.result["writes"] == 0
    assert 'orbit_tag: "1.2.0"' in _pin(fixed_copy, "globex")
    assert (await _sync(fixed_copy))["globex"] == "missing"  # not provisioned


# --- r: retry the failures of a sweep -------------------------------------------------------------------------


async def test_r_on_a_sweep_with_failures_retries_only_them(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OperationsScreen)
        assert [row[0] for row in table_rows(app, "#operations")][:2] == ["20261124-120000-0003", SWEEP_OP]
        assert screen.check_action("retry_failed", ()) is False  # a build: nothing to retry, not offered
        await pilot.press("down")
        await settle(pilot)
        assert screen.check_action("retry_failed", ()) is True
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        assert app.screen.title_text == f"Retry the failures of {SWEEP_OP}: provision globex? (8 change(s))"
        await pilot.click("#confirm")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        op_id = app.screen.op_id
    record = app.workspace.operations().get(op_id)
    assert (record.kind, record.target, record.state) == ("provision", "globex", "succeeded")
    sync = await _sync(fixed_copy)
    assert sync["globex"] == "synced" and sync["acme-corp"] == "missing"


async def test_r_in_the_log_of_a_sweep_offers_the_retry_and_a_build_log_does_not(
    fixed_root: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_log(SWEEP_OP)
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        assert app.screen.check_action("retry_failed", ()) is True
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen) and "provision globex?" in app.screen.title_text
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        app.open_log(BUILD_OP)
        await settle(pilot)
        assert app.screen.check_action("retry_failed", ()) is False
    assert len(app.workspace.operations().list()) == 3  # nothing was started


async def test_retry_is_hidden_in_read_only_mode(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "down")
        await settle(pilot)
        assert app.screen.check_action("retry_failed", ()) is False
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, OperationsScreen)


async def test_solutions_show_each_solutions_own_state_in_its_last_operation(
    fixed_root: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        last = {row[1]: row[-1] for row in table_rows(app, "#solutions")}
    # each solution shows its own state in the scripted sweep (which failed as a whole, as globex did)
    assert last == {
        "acme-corp": "sweep succeeded",
        "globex": "sweep failed",
        "hooli": "—",
        "initech": "sweep succeeded",
        "umbrella-health": "—",
        "wayne-enterprises": "—",
    }


async def test_the_roll_pick_says_which_release_is_newest_and_how_many_it_changes(
    fixed_root: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("space", "down", "space", "t")  # acme-corp (orbit 1.2.0) and globex (orbit 1.1.0)
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        labels = dict(app.screen.choices)
    assert labels["orbit@1.2.0"] == "orbit  1.2.0        newest release  ·  changes 1 of 2"
    assert labels["orbit@1.1.0"] == "orbit  1.1.0        changes 1 of 2"
    assert labels["agent@2.0.0"] == "agent  2.0.0        newest release  ·  all 2 already on it"
    assert labels["agent@2.0.0-rc.1"] == "agent  2.0.0-rc.1   changes 2 of 2"
