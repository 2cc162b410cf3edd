"""Provisioning from the Solutions screen: sync from the platform, `p` plan, `r`/`R` provision, `t` roll.

Every mutating action is asked first with its plan: cancel writes nothing; confirm runs the real engine on a copy
of the fixed workspace (the local backend), and the solution files and platform state are checked afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import SIZE
from console_helpers import open_solutions, provision_with_engine, record_notifications, settle, table_rows
from textual.widgets import Static

from orbit_ops.fleet.status import fleet_status
from orbit_ops.operations.locks import held, lock_path
from orbit_ops.workspace import Workspace
from orbit_tui.app import OrbitApp
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import ChoiceScreen, PlanScreen
from orbit_tui.screens.solution import SolutionScreen
from orbit_tui.screens.solutions import SolutionsScreen
from orbit_tui.widgets import OperationLog

MakeApp = Callable[..., OrbitApp]



async def _sync(root: Path) -> dict[str, str]:
    statuses, _ = await fleet_status(Workspace.open(root))
    return {status.id: status.sync for status in statuses}


def _drift(root: Path, solution_id: str) -> None:
    path = root / "solutions" / f"{solution_id}.yaml"
    path.write_text(path.read_text().replace("example.com", "example.org"))


def _text(app: OrbitApp) -> str:
    """What the dialog on top says: a plan's plain text, or the text of its widgets."""
    if isinstance(app.screen, PlanScreen):
        return app.screen.text
    return "\n".join(str(widget.render()) for widget in app.screen.query(Static))


# --- 1. sync --------------------------------------------------------------------------------------------------


async def test_sync_column_comes_from_the_platform_and_the_sync_filter_works(
    fixed_copy: Path, make_app: MakeApp
) -> None:
    await provision_with_engine(fixed_copy, "acme-corp", "globex")
    _drift(fixed_copy, "acme-corp")
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        sync = {row[1]: row[7] for row in table_rows(app, "#solutions")}
        assert sync == {
            "acme-corp": "drifted",
            "globex": "synced",
            "hooli": "missing",
            "initech": "missing",
            "umbrella-health": "missing",
            "wayne-enterprises": "missing",
        }
        await pilot.press("slash", *"sync:drifted", "enter")
        await settle(pilot)
        assert [row[1] for row in table_rows(app, "#solutions")] == ["acme-corp"]
        assert "not known" not in str(screen.query_one("#solutions-note").render())
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SolutionScreen)
        resources = table_rows(app, "#resources")
        drifted = [row for row in resources if row[2] == "drifted"]
        assert [(row[0], row[3]) for row in drifted] == [
            ("app", "env PUBLIC_BASE_URL https://acme-corp.example.com → https://acme-corp.example.org")]
        assert all(row[2] in ("synced", "drifted") for row in resources)


async def test_the_solution_screen_lists_missing_resources(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("enter")  # acme-corp, never provisioned
        await settle(pilot)
        rows = table_rows(app, "#resources")
        assert {row[0] for row in rows} == {"app", "share", "storage"}
        assert all(row[2] == "missing" and row[3] == "absent" for row in rows)


# --- 2. plan --------------------------------------------------------------------------------------------------


async def test_p_shows_the_plan_of_the_selection_with_refusals_and_writes_nothing(
    fixed_copy: Path, make_app: MakeApp
) -> None:
    await provision_with_engine(fixed_copy, "globex")
    _drift(fixed_copy, "globex")
    app = make_app(fixed_copy)
    before = len(app.workspace.operations().list())
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("space", "down", "space", "down", "down", "down", "space")  # acme, globex, umbrella
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        text = _text(app)
        assert "acme-corp  8 to create" in text
        assert "globex  1 to update" in text
        assert "env PUBLIC_BASE_URL https://globex.example.com → https://globex.example.org" in text
        assert "umbrella-health  refused\n    orbit 1.3.0 has no release record" in text
        assert "plan: 3 solution(s)" in text and "1 refused" in text
        assert not app.screen.query("#confirm")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, SolutionsScreen)
    assert len(app.workspace.operations().list()) == before
    assert (await _sync(fixed_copy))["acme-corp"] == "missing"


# --- 3. re-provision and sweep ------------------------------------------------------------------------------


async def test_r_cancel_writes_nothing(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    before = len(app.workspace.operations().list())
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("r")  # the cursor row: acme-corp
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        assert "Provision acme-corp?" in _text(app) or "acme-corp" in str(app.screen.title_text)
        await pilot.click("#dismiss")
        await settle(pilot)
        assert isinstance(app.screen, SolutionsScreen)
    assert len(app.workspace.operations().list()) == before
    assert (await _sync(fixed_copy))["acme-corp"] == "missing"


async def _provision_globex_and_initech(pilot: Any) -> None:
    """Select globex and initech on Solutions, press ``r``, confirm the plan; ends on the sweep's log."""
    screen = await open_solutions(pilot)
    await pilot.press("down", "space", "down", "down", "space")
    assert screen.selected_ids() == ["globex", "initech"]
    await pilot.press("r")
    await settle(pilot)
    assert isinstance(pilot.app.screen, PlanScreen)
    assert "Sweep 2 solutions?" in pilot.app.screen.title_text
    await pilot.click("#confirm")
    await settle(pilot)
    assert isinstance(pilot.app.screen, LogScreen)


async def test_r_confirmed_provisions_the_selection_and_opens_its_log(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await _provision_globex_and_initech(pilot)
        assert app.screen.state == "succeeded"
        op_id = app.screen.op_id
    record = app.workspace.operations().get(op_id)
    assert (record.kind, record.target, record.state) == ("sweep", "2 solutions", "succeeded")
    assert sorted(record.children) == ["globex", "initech"]
    sync = await _sync(fixed_copy)
    assert sync["globex"] == sync["initech"] == "synced" and sync["acme-corp"] == "missing"
    assert any("sweep 2 solutions succeeded" in message for message, _ in notes)


async def test_a_sweep_with_a_failed_member_shows_failed_not_succeeded(fixed_copy: Path, make_app: MakeApp) -> None:
    # A file where globex's share folder goes: the local platform cannot create that share.
    (fixed_copy / ".orbit" / "shares").mkdir(parents=True, exist_ok=True)
    (fixed_copy / ".orbit" / "shares" / "globex-customer").write_text("not a folder\n")
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await _provision_globex_and_initech(pilot)
        assert app.screen.state == "failed"
        assert list(app.screen.query_one(OperationLog).lines)[-1].endswith(
            "sweep 2 solutions failed: 1 of 2 solutions failed: globex")
        op_id = app.screen.op_id
        await pilot.press("3")
        await settle(pilot)
        rows = {row[0]: row for row in table_rows(app, "#operations")}
        assert rows[op_id][3:5] == ["failed", "2/2"]
    record = app.workspace.operations().get(op_id)
    assert record.state == "failed" and record.children["initech"].state == "succeeded"
    ended = [(message, kwargs) for message, kwargs in notes if "sweep 2 solutions" in message]
    assert ended and "failed: 1 of 2 solutions failed: globex" in ended[-1][0]
    assert ended[-1][1].get("severity") == "error"


async def test_the_console_log_says_who_holds_the_lock_a_member_waits_for(fixed_copy: Path,
                                                                          make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("down", "r")  # globex
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        async with held(lock_path(fixed_copy / ".orbit", "solution-globex"), what="solution globex",
                        op_id="20261201-213005-ab12", kind="roll"):
            await pilot.click("#confirm")
            for _ in range(200):
                await pilot.pause(0.05)
                if isinstance(app.screen, LogScreen) and any(
                        "waiting for solution globex: held by operation 20261201-213005-ab12 (roll, pid "
                        in line for line in app.screen.query_one(OperationLog).lines):
                    break
            else:
                raise AssertionError("the log never said who holds the lock")
            assert app.screen.state == "running"
        await settle(pilot)
        assert app.screen.state == "succeeded"


async def test_r_on_a_solution_pinning_an_unreleased_version_is_refused(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await open_solutions(pilot)
        await pilot.press("down", "down", "down", "down", "r")  # umbrella-health pins orbit 1.3.0
        await settle(pilot)
        assert isinstance(app.screen, SolutionsScreen)
    errors = [message for message, kwargs in notes if kwargs.get("severity") == "error"]
    assert errors and "never released" in errors[0]


async def test_R_sweeps_everything_and_skips_what_cannot_be_provisioned(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("R")
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        assert "Sweep all solutions?" in app.screen.title_text
        assert "umbrella-health  refused" in _text(app)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        op_id = app.screen.op_id
    record = app.workspace.operations().get(op_id)
    assert (record.kind, record.target) == ("sweep", "all solutions")
    assert record.children["umbrella-health"].state == "skipped"
    sync = await _sync(fixed_copy)
    assert all(sync[i] == "synced" for i in ("acme-corp", "globex", "hooli", "initech", "wayne-enterprises"))


# --- 4. roll --------------------------------------------------------------------------------------------------


async def test_t_offers_only_released_versions_and_cancel_changes_no_file(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    before = (fixed_copy / "solutions" / "globex.yaml").read_text()
    operations = len(app.workspace.operations().list())
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("down", "t")  # globex
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        offered = [key for key, _ in app.screen.choices]
        assert "orbit@1.2.0" in offered and "orbit@1.3.0" not in offered
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, SolutionsScreen)
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("enter")  # the first offer: orbit 1.2.0
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        assert "globex  orbit  1.1.0 → 1.2.0" in _text(app)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, SolutionsScreen)
    assert (fixed_copy / "solutions" / "globex.yaml").read_text() == before
    assert len(app.workspace.operations().list()) == operations


async def test_rolling_a_floating_pin_says_it_will_stop_floating(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("down", "down", "down", "t")  # initech pins orbit to latest
        await settle(pilot)
        await pilot.press("enter")  # orbit 1.2.0, the newest release
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        assert "initech  orbit  latest (=1.2.0) → 1.2.0 (was floating; it will stay on 1.2.0)" in _text(app)


async def test_t_confirmed_rolls_the_pin_provisions_and_opens_the_log(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        await pilot.press("space", "down", "space")  # acme-corp (already on 1.2.0), globex (1.1.0)
        assert screen.selected_ids() == ["acme-corp", "globex"]
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("enter")  # orbit 1.2.0
        await settle(pilot)
        text = _text(app)
        assert "globex  orbit  1.1.0 → 1.2.0" in text and "already on 1.2.0: acme-corp" in text
        await pilot.click("#confirm")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        assert app.screen.state == "succeeded"
        op_id = app.screen.op_id
    record = app.workspace.operations().get(op_id)
    assert record.kind == "roll" and record.target == "orbit@1.2.0 → 2 solutions"
    assert record.result["pins"] == [{"id": "globex", "component": "orbit", "from": "1.1.0", "to": "1.2.0"}]
    assert 'orbit_tag: "1.2.0"' in (fixed_copy / "solutions" / "globex.yaml").read_text()
    sync = await _sync(fixed_copy)
    assert sync["globex"] == sync["acme-corp"] == "synced"


# --- read-only ------------------------------------------------------------------------------------------------


async def test_read_only_hides_provision_sweep_and_roll_but_keeps_plan(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        shown = {binding.action for binding in (b.binding for b in screen.active_bindings.values())}
        assert "plan" in shown
        for action in ("provision", "sweep_all", "roll"):
            assert screen.check_action(action, ()) is False
        from orbit_tui.commands import screen_actions

        offered = {entry.action for entry in screen_actions(screen)}
        assert "plan" in offered and not offered & {"provision", "sweep_all", "roll"}
        await pilot.press("r", "R", "t")
        await settle(pilot)
        assert isinstance(app.screen, SolutionsScreen)
