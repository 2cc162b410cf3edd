"""The log view: the engine's stream arrives in order; follow, search, save, cancel; sweeps show members."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import SIZE
from console_helpers import blocking_runner, settle, table_rows
from console_workspace import BUILD_LINES
from textual.widgets import Input, ProgressBar

from orbit_ops.operations.runner import OperationRunner
from orbit_tui.app import OrbitApp
from orbit_tui.screens.log import LogScreen
from orbit_tui.screens.modals import ConfirmScreen, PathScreen
from orbit_tui.widgets import OperationLog

MakeApp = Callable[..., OrbitApp]
BUILD_OP, SWEEP_OP = "20261124-120000-0001", "20261124-120000-0002"


def _log_lines(app: OrbitApp) -> list[str]:
    return list(app.screen.query_one(OperationLog).lines)


async def _open(pilot, op_id: str) -> LogScreen:  # type: ignore[no-untyped-def]
    await settle(pilot)
    pilot.app.open_log(op_id)
    await settle(pilot)
    assert isinstance(pilot.app.screen, LogScreen)
    return pilot.app.screen


async def test_the_engine_event_stream_reaches_the_log_in_order(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    expected = [f"line {index:03d}" for index in range(250)]

    async def body(ctx: Any) -> dict[str, Any]:
        for index, text in enumerate(expected, start=1):
            ctx.log(text)
            if index % 50 == 0:
                ctx.progress(index // 50, 5)
                await asyncio.sleep(0)  # let the console interleave with the body
        return {}

    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        run = app.runs.start(OperationRunner(app.workspace.operations(), "build", "test@1.0.0", body, total=5))
        app.open_log(run.op_id)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LogScreen)
        lines = _log_lines(app)
        assert [line[9:] for line in lines[:-1]] == expected
        assert lines[-1].endswith("build test@1.0.0 succeeded")
        bar = screen.query_one(ProgressBar)
        assert (bar.progress, bar.total) == (5, 5)
        assert screen.state == "succeeded"


async def test_f_toggles_following_the_end(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, BUILD_OP)
        log = screen.query_one(OperationLog)
        assert screen.following and log.auto_scroll
        await pilot.press("f")
        assert not screen.following and not log.auto_scroll
        await pilot.press("f")
        assert screen.following and log.auto_scroll


async def test_search_marks_matches_and_walks_them(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, BUILD_OP)
        await pilot.press("slash", *"TAGGED")
        await settle(pilot)
        tagged = [index for index, line in enumerate(BUILD_LINES) if "tagged" in line]
        assert screen.matches == tagged and screen.match_index == 0
        assert not screen.following  # searching stops the view from running away
        await pilot.press("enter")  # keeps the query, back to the log
        assert isinstance(app.focused, OperationLog)
        await pilot.press("n")
        assert screen.match_index == 1
        await pilot.press("n")
        assert screen.match_index == 0
        await pilot.press("N")
        assert screen.match_index == 1
        await pilot.press("escape")  # closes the search
        assert screen.matches == [] and not screen.query_one("#log-search", Input).display
        assert isinstance(app.screen, LogScreen)


async def test_save_writes_the_log_to_the_default_export_path(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, BUILD_OP)
        shown = _log_lines(app)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, PathScreen)
        assert app.screen.query_one(Input).value == f"~/ws/.orbit/exports/{BUILD_OP}.log"
        await pilot.press("enter")
        await settle(pilot)
    saved = fixed_copy / ".orbit" / "exports" / f"{BUILD_OP}.log"
    assert saved.read_text().splitlines() == shown


async def test_save_takes_relative_paths_from_the_workspace(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, SWEEP_OP)
        await pilot.press("s")
        await settle(pilot)
        app.screen.query_one(Input).value = "notes/sweep.log"
        await pilot.click("#save")
        await settle(pilot)
    assert "[globex] update app orbit-5f1c" in (fixed_copy / "notes" / "sweep.log").read_text()


async def test_cancel_asks_then_the_engine_cancels_the_operation(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    release = asyncio.Event()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        run = app.runs.start(blocking_runner(app, release))
        app.open_log(run.op_id)
        await settle(pilot, skip=("log",))
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await pilot.press("c")
        await settle(pilot, skip=("log",))
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")  # keep it running
        await settle(pilot, skip=("log",))
        assert not app.workspace.operations().get(run.op_id).cancel_requested
        await pilot.press("c")
        await settle(pilot, skip=("log",))
        await pilot.click("#confirm")
        await settle(pilot)  # the log stream ends with the operation
        assert screen.state == "cancelled"
        assert "c" not in screen.active_bindings  # nothing left to cancel
    record = app.workspace.operations().get(run.op_id)
    assert record.state == "cancelled" and record.cancel_requested


async def test_a_sweep_shows_a_row_per_member(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, SWEEP_OP)
        assert screen.query_one("#children").display
        assert table_rows(app, "#children") == [
            ["acme-corp", "succeeded", "no changes"],
            ["globex", "failed", "image pull failed"],
            ["initech", "succeeded", "no changes"],
        ]
        assert "[globex] update app orbit-5f1c: image pull failed (manifest unknown)" in _log_lines(app)[3]


async def test_a_build_log_has_no_member_table(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, BUILD_OP)
        assert not screen.query_one("#children").display


# --- long logs: decoded when shown ----------------------------------------------------------------------------


async def _finished_log(app: OrbitApp, lines: list[str]) -> str:
    """Record a finished build whose log holds ``lines``; its id."""

    async def body(ctx: Any) -> dict[str, Any]:
        for text in lines:
            ctx.log(text)
        return {}

    runner = OperationRunner(app.workspace.operations(), "build", "big@1.0.0", body)
    async for _event in runner.events():
        pass
    return runner.op_id


async def test_a_long_log_decodes_only_what_is_shown_and_keeps_every_line(
    fixed_copy: Path, make_app: MakeApp, monkeypatch: Any
) -> None:
    import orbit_tui.screens.log as log_screen

    decoded: list[bytes] = []
    real = log_screen.stored_log_text
    monkeypatch.setattr(log_screen, "stored_log_text", lambda raw: decoded.append(raw) or real(raw))
    expected = [f"step {index:05d} of the build" + (" needle" if index == 12_345 else "") for index in range(20_000)]
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        op_id = await _finished_log(app, expected)
        screen = await _open(pilot, op_id)
        log = screen.query_one(OperationLog)
        assert log.line_count == len(expected) + 1  # and the closing "succeeded" line
        # The screenful at the end, and whatever a loaded machine drew on the way there (131 lines once): a few
        # screenfuls, not 20,000 lines.
        assert len(decoded) < 5 * SIZE[1]
        assert log.is_vertical_scroll_end  # following: the end is shown, the view opens there
        await pilot.press("slash", *"needle")
        await settle(pilot)
        assert screen.matches == [12_345]  # search reads every line
        assert _log_lines(app)[12_345].endswith("step 12345 of the build needle")
        assert [line[9:] for line in screen.lines[:-1]] == expected


async def test_an_unreadable_stored_line_is_shown_in_its_place(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        op_id = await _finished_log(app, ["first", "second", "third"])
        path = app.workspace.operations().log_path(op_id)
        stored = path.read_bytes().split(b"\n")
        broken = next(index for index, line in enumerate(stored) if b'"text":"second"' in line)
        stored[broken] = stored[broken].replace(b'"text":"second"', b'"text":2')
        path.write_bytes(b"\n".join(stored))
        await _open(pilot, op_id)
        lines = _log_lines(app)
        assert [line[9:] for line in (lines[0], lines[2])] == ["first", "third"]
        assert lines[1] == "(unreadable log line: 'text' must be a string, not int)"


async def test_search_finds_matches_in_lines_that_arrive_later(fixed_copy: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_copy)
    later = asyncio.Event()

    async def body(ctx: Any) -> dict[str, Any]:
        ctx.log("a needle before")
        ctx.log("nothing here")
        await later.wait()
        ctx.log("a needle after")
        return {}

    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        run = app.runs.start(OperationRunner(app.workspace.operations(), "build", "live@1.0.0", body))
        app.open_log(run.op_id)
        await settle(pilot, skip=("log",))
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await pilot.press("slash", *"needle")
        await settle(pilot, skip=("log",))
        assert screen.matches == [0]
        later.set()
        await settle(pilot)  # the log stream ends with the operation
        assert screen.matches == [0, 2]
        assert "match 1/2" in str(screen.query_one("#log-mode").render())


async def test_a_long_sweep_log_still_shows_its_end_once_the_member_table_appears(
    fixed_copy: Path, make_app: MakeApp
) -> None:
    app = make_app(fixed_copy)

    async def body(ctx: Any) -> dict[str, Any]:
        for member in ("acme", "globex", "initech"):
            ctx.child(member, "running")
            for index in range(100):
                ctx.log(f"step {index}", child=member)
            ctx.child(member, "succeeded")
        return {}

    async with app.run_test(size=SIZE) as pilot:
        runner = OperationRunner(app.workspace.operations(), "sweep", "3 solutions", body)
        async for _event in runner.events():
            pass
        screen = await _open(pilot, runner.op_id)
        assert screen.query_one("#children").display  # the table took its rows from the log's height
        log = screen.query_one(OperationLog)
        assert log.line_count == 301 and log.is_vertical_scroll_end
        assert _log_lines(app)[-1].endswith("sweep 3 solutions succeeded")


async def test_typing_a_search_looks_again_only_at_the_lines_that_still_matched(
    fixed_copy: Path, make_app: MakeApp, monkeypatch: Any
) -> None:
    expected = [f"step {index:05d}" + (" needle" if index % 1000 == 0 else "") + (" x" if index == 3000 else "")
                for index in range(20_000)]
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        op_id = await _finished_log(app, expected)
        screen = await _open(pilot, op_id)
        await pilot.press("slash", *"needle")
        await settle(pilot)
        assert screen.matches == list(range(0, 20_000, 1000))
        scans: list[int] = []  # the first line of each scan of the log from a line on
        real = OperationLog.find

        def find(log: OperationLog, query: str, start: int = 0) -> list[int]:
            scans.append(start)
            return real(log, query, start)

        monkeypatch.setattr(OperationLog, "find", find)
        await pilot.press("space", "x")  # "needle x": only the 20 lines that held "needle" can hold it
        await settle(pilot)
        assert screen.matches == [3000] and scans == []  # the log was not scanned again
        assert "match 1/1" in str(screen.query_one("#log-mode").render())
        await pilot.press("backspace", "backspace", "backspace")  # "needl": each wider query scans the log once
        await settle(pilot)
        assert screen.matches == list(range(0, 20_000, 1000)) and scans == [0, 0, 0]
