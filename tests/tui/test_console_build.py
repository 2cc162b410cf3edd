"""Building from the console: confirm shows what will happen; cancel does nothing; confirm builds for real."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from conftest import SIZE
from console_helpers import record_notifications, settle
from textual.widgets import Static

from orbit_tui.app import OrbitApp
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import ConfirmScreen
from orbit_tui.screens.tags import TagsScreen
from orbit_tui.widgets import OperationLog

MakeApp = Callable[..., OrbitApp]


def _dialog_text(app: OrbitApp) -> str:
    return "\n".join(str(widget.render()) for widget in app.screen.query(Static))


async def _open_orbit_tags(pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot)
    await pilot.press("down", "down", "enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, TagsScreen)


async def test_build_confirmation_shows_tag_commit_and_images_and_cancel_starts_nothing(
    fixed_copy: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_copy)
    store = app.workspace.operations()
    before = len(store.list())
    async with app.run_test(size=SIZE) as pilot:
        await _open_orbit_tags(pilot)
        await pilot.press("b")  # cursor on 1.3.0, tagged but not released
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        text = _dialog_text(app)
        commit = app.workspace.tags().find("orbit", "1.3.0").commit
        assert "orbit/v1.3.0" in text and commit in text
        assert "oci:.orbit/registry/orbit:1.3.0" in text and "oci:.orbit/registry/orbit:latest" in text
        assert "already released" not in text
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, TagsScreen)
    assert len(store.list()) == before
    assert app.workspace.release_of("orbit", "1.3.0") is None


async def test_build_of_a_released_tag_says_so_and_close_does_nothing(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    before = len(app.workspace.operations().list())
    async with app.run_test(size=SIZE) as pilot:
        await _open_orbit_tags(pilot)
        await pilot.press("down", "b")  # 1.2.0 is released
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "is already released" in _dialog_text(app)
        assert str(app.screen.query_one("#confirm").label) == "Force rebuild"
        await pilot.click("#dismiss")
        await settle(pilot)
        assert isinstance(app.screen, TagsScreen)
    assert len(app.workspace.operations().list()) == before


async def test_confirmed_build_runs_and_its_live_log_shows_the_pushed_tags(demo_copy: Path, make_app: MakeApp) -> None:
    app = make_app(demo_copy)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await settle(pilot)
        await pilot.press("down", "down")  # orbit: its newest stable tag 1.3.0 is not released in the demo
        await pilot.press("b")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.click("#confirm")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        lines = list(app.screen.query_one(OperationLog).lines)
        assert any("tagged oci:.orbit/registry/orbit:1.3.0" in line for line in lines)
        assert lines[-1].endswith("build orbit@1.3.0 succeeded")
        assert app.screen.state == "succeeded"
        op_id = app.screen.op_id
    assert app.workspace.release_of("orbit", "1.3.0") is not None
    assert app.workspace.operations().get(op_id).state == "succeeded"
    assert any("build orbit@1.3.0 succeeded" in message for message, _ in notes)


async def test_a_moved_tag_is_refused_with_the_engine_message(fixed_copy: Path, make_app: MakeApp) -> None:
    subprocess.run(
        ["git", "tag", "-f", "orbit/v1.2.0", "orbit/v1.3.0^{commit}"], cwd=fixed_copy, check=True, capture_output=True
    )
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await _open_orbit_tags(pilot)
        await pilot.press("down", "b")
        await settle(pilot)
        assert isinstance(app.screen, TagsScreen)  # nothing to confirm
    errors = [(message, kwargs) for message, kwargs in notes if kwargs.get("severity") == "error"]
    assert len(errors) == 1
    message, kwargs = errors[0]
    assert message.startswith("tag orbit/v1.2.0 moved since it was released")
    assert "Traceback" not in message and kwargs.get("markup") is False
