"""The console's roll in waves (issue 15): ``w`` on the roll pick, the waves form, the layout in the confirmation,
the roll view (wave states, health, soak, halt reason), ``c`` stopping after the current wave, resume, roll back.

Each runs the real engine on a copy of the fixed workspace, labelled in rings; a wave fails for a real reason:
the image of orbit 1.1.0 is rebuilt to require MC_URL, which no fixture solution sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import SIZE
from console_helpers import record_notifications, settle, table_rows
from console_workspace import push_image
from textual.widgets import Input, Label

from orbit_ops.fleet.entries import start_waved_roll
from orbit_ops.fleet.roll import plan_roll
from orbit_ops.fleet.waves import WaveSettings, lay_out, parse_waves
from orbit_ops.operations.kinds import ACTIVE_STATES
from orbit_ops.workspace import Workspace
from orbit_tui.app import OrbitApp
from orbit_tui.commands import screen_actions
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import ConfirmScreen, PlanScreen
from orbit_tui.screens.operations import OperationsScreen
from orbit_tui.screens.roll import RollScreen
from orbit_tui.screens.waves import WavesScreen

MakeApp = Callable[..., OrbitApp]
RINGS = {"acme-corp": "canary", "globex": "early", "hooli": "early"}
BUSY = ("operation", "log")  # the worker that lasts as long as the roll, and the view following it


@pytest.fixture
def ringed(fixed_copy: Path) -> Path:
    for solution_id, ring in RINGS.items():
        path = fixed_copy / "solutions" / f"{solution_id}.yaml"
        path.write_text(path.read_text() + f"labels:\n  ring: {ring}\n")
    return fixed_copy


def orbit_pin(root: Path, solution_id: str) -> str | None:
    """The orbit pin written in the solution's file (None: it inherits orbit.yaml's)."""
    for line in (root / "solutions" / f"{solution_id}.yaml").read_text().splitlines():
        if line.strip().startswith("orbit_tag:"):
            return line.split(":", 1)[1].strip().strip('"')
    return None


async def waves_form(pilot: Any, *, version_row: int = 1) -> WavesScreen:
    """Solutions, select all, ``t``, the version on ``version_row`` (1: orbit 1.1.0), ``w``."""
    await pilot.press("2")
    await settle(pilot)
    await pilot.press("a", "t")
    await settle(pilot)
    await pilot.press(*(["down"] * version_row), "w")
    await settle(pilot)
    assert isinstance(pilot.app.screen, WavesScreen)
    return pilot.app.screen


async def fill(pilot: Any, **values: str) -> None:
    for name, value in values.items():
        pilot.app.screen.query_one(f"#waves-{name.replace('_', '-')}", Input).value = value
    await pilot.press("enter")
    await settle(pilot)


async def until_ended(pilot: Any, screen: RollScreen, *, seconds: float = 90) -> None:
    for _ in range(int(seconds * 10)):
        if screen.state not in ACTIVE_STATES:
            break
        await pilot.pause(0.1)
    await settle(pilot)
    assert screen.state not in ACTIVE_STATES


async def until(pilot: Any, check: Callable[[], bool], *, seconds: float = 60) -> None:
    for _ in range(int(seconds * 10)):
        if check():
            return
        await pilot.pause(0.1)
    raise AssertionError("the console never got there")


async def test_w_asks_for_waves_and_the_confirmation_shows_the_layout_with_labels(ringed: Path,
                                                                                  make_app: MakeApp) -> None:
    app = make_app(ringed)
    async with app.run_test(size=SIZE) as pilot:
        form = await waves_form(pilot)
        assert form.form.waves == "ring=canary,ring=early,*"  # the selection has rings: they are offered
        assert "Roll orbit 1.1.0 to 6 solution(s) in waves" in form.title_text
        await fill(pilot, soak="5s")
        assert isinstance(app.screen, PlanScreen) and app.screen.id == "confirm-waves"
        text = app.screen.text
        assert app.screen.title_text == "Roll orbit 1.1.0 in 3 waves?"
        assert "wave 1 (ring=canary): 1 solution(s)\n    acme-corp: orbit 1.2.0 → 1.1.0  [ring=canary]" in text
        assert "wave 2 (ring=early): 2 solution(s)" in text
        assert "    globex: already on 1.1.0  [ring=early]" in text
        assert "wave 3 (*): 3 solution(s)\n    initech: orbit latest (=1.2.0) → 1.1.0" in text
        assert "soak 5 s" in text
        await pilot.press("escape")  # nothing started
        await settle(pilot)
    assert app.workspace.operations().list(kind="roll") == []


async def test_a_refused_waves_form_comes_back_with_the_engines_message(ringed: Path, make_app: MakeApp) -> None:
    app = make_app(ringed)
    async with app.run_test(size=SIZE) as pilot:
        await waves_form(pilot)
        await fill(pilot, waves="ring=canery,*")
        assert isinstance(app.screen, WavesScreen)
        error = str(app.screen.query_one("#waves-error").render())
        assert "--waves: wave 1 (ring=canery) selects no solution: none left has ring=canery" in error
        assert "(the selection's values of ring: canary, early)" in error
        assert app.screen.form.waves == "ring=canery,*"  # what was typed stays, to be corrected
        await fill(pilot, waves="1,10%")
        assert "leaves 4 of 6 selected solution(s) in no wave" in str(app.screen.query_one("#waves-error").render())
        await fill(pilot, waves="1,*", soak="soon")
        assert "--soak 'soon' is not a duration" in str(app.screen.query_one("#waves-error").render())
    assert app.workspace.operations().list(kind="roll") == []
    assert orbit_pin(ringed, "acme-corp") is None  # nothing written


async def test_without_rings_the_form_offers_sizes(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        form = await waves_form(pilot)
        assert form.form.waves == "1,25%,*"


async def test_a_failing_wave_halts_and_the_view_says_why_then_u_rolls_it_back(ringed: Path,
                                                                              make_app: MakeApp) -> None:
    push_image(ringed, "orbit", "1.1.0", requires="MC_URL")
    app = make_app(ringed)
    async with app.run_test(size=SIZE) as pilot:
        await waves_form(pilot)
        await fill(pilot)
        await pilot.press("y")
        await settle(pilot, skip=BUSY)
        screen = app.screen
        assert isinstance(screen, RollScreen)
        await until_ended(pilot, screen)
        assert screen.state == "failed"
        waves = table_rows(app, "#waves")
        assert [row[:3] for row in waves] == [["1", "ring=canary", "failed"], ["2", "ring=early", "skipped"],
                                            ["3", "*", "skipped"]]
        assert waves[0][4] == "1 of 1 unhealthy (allowed: 0): acme-corp"
        solutions = {row[0]: row for row in table_rows(app, "#children")}
        assert solutions["acme-corp"][1:4] == ["1", "ring=canary", "failed"]
        assert "MC_URL" in solutions["acme-corp"][4]
        assert solutions["globex"][3:] == ["skipped", "not started: wave 1 failed"]
        halt = str(screen.query_one("#roll-halt", Label).render())
        assert halt.startswith("halted at wave 1 (ring=canary): 1 of 1 unhealthy (allowed: 0): acme-corp; later "
                               "waves not started")
        assert screen.check_action("stop_after_wave", ()) is False and screen.check_action("resume", ())
        assert orbit_pin(ringed, "acme-corp") == "1.1.0"
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen) and app.screen.id == "confirm-rollback-wave"
        assert "acme-corp  orbit  1.1.0 → 1.2.0" in app.screen.text
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen) and not isinstance(app.screen, RollScreen)
        assert app.screen.state == "succeeded"
    assert orbit_pin(ringed, "acme-corp") == "1.2.0"  # back where it was (written out, at the same version)
    assert orbit_pin(ringed, "globex") == "1.1.0" and orbit_pin(ringed, "initech") == "latest"  # never touched


async def test_c_stops_after_the_current_wave_and_r_resumes_from_the_next(ringed: Path, make_app: MakeApp) -> None:
    app = make_app(ringed)
    async with app.run_test(size=SIZE) as pilot:
        await waves_form(pilot)
        await fill(pilot, waves="ring=canary,*", soak="3s")
        await pilot.press("y")
        await settle(pilot, skip=BUSY)
        screen = app.screen
        assert isinstance(screen, RollScreen)
        await until(pilot, lambda: "soak:" in table_rows(app, "#waves")[0][4])
        assert table_rows(app, "#waves")[0][2] == "soaking"
        assert table_rows(app, "#waves")[0][4].endswith("UTC)")  # soak: N s left (ends HH:MM:SS UTC)
        await pilot.press("c")
        await settle(pilot, skip=BUSY)
        assert isinstance(app.screen, ConfirmScreen) and app.screen.title_text.startswith("Stop roll ")
        assert "after wave 1?" in app.screen.title_text
        await pilot.press("y")
        await settle(pilot, skip=BUSY)
        assert "stop requested" in str(screen.query_one("#roll-halt", Label).render())
        assert screen.check_action("stop_after_wave", ()) is False  # asked once
        await until_ended(pilot, screen)
        assert screen.state == "cancelled"
        assert [row[2] for row in table_rows(app, "#waves")] == ["succeeded", "skipped"]
        solutions = {row[0]: row for row in table_rows(app, "#children")}
        assert solutions["acme-corp"][3] == "succeeded" and solutions["acme-corp"][4].startswith(
            "health healthy · soaked ")  # watched through its soak
        assert solutions["initech"][3:] == ["skipped", "stopped by operator after wave 1"]
        assert str(screen.query_one("#roll-halt", Label).render()).startswith(
            "stopped by operator after wave 1; later waves not started")
        assert orbit_pin(ringed, "acme-corp") == "1.1.0" and orbit_pin(ringed, "initech") == "latest"
        stopped = screen.op_id
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen) and app.screen.id == "confirm-resume"
        assert app.screen.title_text.startswith(f"Resume {stopped}: orbit 1.1.0, from wave 2?")
        assert "wave 1 (ring=canary): 1 solution(s) — succeeded before, not run again" in app.screen.text
        await pilot.press("y")
        await settle(pilot, skip=BUSY)
        resumed = app.screen
        assert isinstance(resumed, RollScreen) and resumed.op_id != stopped
        await until_ended(pilot, resumed)
        assert resumed.state == "succeeded"
        assert [row[2] for row in table_rows(app, "#waves")] == ["succeeded", "succeeded"]
    assert orbit_pin(ringed, "initech") == "1.1.0"
    assert app.workspace.operations().get(resumed.op_id).result["resumed_from"] == stopped


async def test_a_waved_roll_from_the_cli_opens_in_the_roll_view_from_operations(ringed: Path,
                                                                                make_app: MakeApp) -> None:
    workspace = Workspace.open(ringed)
    specs = workspace.solutions()[:2]
    runner = start_waved_roll(workspace, plan_roll(workspace, "orbit", "1.1.0", specs),
                              WaveSettings(lay_out(specs, parse_waves("1,*"))))
    async for _event in runner.events():
        pass
    app = make_app(ringed)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        assert isinstance(app.screen, OperationsScreen)
        await pilot.press("enter")  # the newest operation: the roll
        await settle(pilot)
        assert isinstance(app.screen, RollScreen) and app.screen.op_id == runner.op_id
        assert [row[2] for row in table_rows(app, "#waves")] == ["succeeded", "succeeded"]
        solutions = {row[0]: row for row in table_rows(app, "#children")}
        assert solutions["acme-corp"][3:] == ["succeeded", "health healthy"]
        assert app.screen.check_action("resume", ()) is False  # it succeeded: nothing to resume


async def test_read_only_hides_stop_resume_and_roll_back(ringed: Path, make_app: MakeApp) -> None:
    push_image(ringed, "orbit", "1.1.0", requires="MC_URL")
    workspace = Workspace.open(ringed)
    specs = workspace.solutions()[:2]
    runner = start_waved_roll(workspace, plan_roll(workspace, "orbit", "1.1.0", specs),
                              WaveSettings(lay_out(specs, parse_waves("1,*"))))
    async for _event in runner.events():
        pass
    app = make_app(ringed, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RollScreen) and screen.state == "failed"
        offered = {entry.action for entry in screen_actions(screen, include_disabled=True)}
        assert not offered & {"stop_after_wave", "resume", "roll_back_wave", "cancel"}
        await pilot.press("r", "u")
        await asyncio.sleep(0)
        await settle(pilot)
        assert app.screen is screen and not [n for n in notes if n[1].get("severity") == "error"]


def test_the_soak_countdown_is_read_from_the_engines_deadline() -> None:
    from datetime import UTC, datetime

    from orbit_tui.roll_render import wave_message, wave_state

    message = "soaking until 2026-11-24T12:01:00Z (60 s)"
    now = datetime(2026, 11, 24, 12, 0, 18, 500000, tzinfo=UTC)
    assert wave_message(message, now) == "soak: 42 s left (ends 12:01:00 UTC)"
    assert wave_message(message, datetime(2026, 11, 24, 12, 2, tzinfo=UTC)) == "soak: 0 s left (ends 12:01:00 UTC)"
    assert (wave_state("running", message), wave_state("running", "1: rolling 1")) == ("soaking", "running")
    assert wave_message("1 of 3 unhealthy (allowed: 0): globex", now) == "1 of 3 unhealthy (allowed: 0): globex"
