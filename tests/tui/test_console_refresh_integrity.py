"""The Solutions screen's background refresh ("as of", changed rows flagged, no restarted reads), the
`pin:COMPONENT=VERSION` filter, record integrity problems on every screen, and the batched log stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import SIZE
from console_helpers import open_solutions, provision_with_engine, settle, table_rows
from console_workspace import FIXED_NOW, _git

from orbit_ops.console_queries import pin_problems, rolled_versions
from orbit_ops.fleet.drift import ReleaseIndex
from orbit_ops.operations.events import LogLine, OperationFinished
from orbit_ops.operations.log import follow_batches
from orbit_ops.operations.runner import OperationRunner
from orbit_tui.app import REFRESH_ENV, OrbitApp, refresh_seconds_from_env
from orbit_tui.filters import parse_filter
from orbit_tui.line_table import LineTable
from orbit_tui.screens.components import ComponentsScreen
from orbit_tui.screens.solution import SolutionScreen
from orbit_tui.screens.tags import TagsScreen

MakeApp = Callable[..., OrbitApp]



def _move_tag(root: Path, tag: str, to: str) -> None:
    """Force-move ``tag`` to the commit of tag ``to`` (what the integrity check must catch)."""
    commit = _git(root, "rev-parse", f"{to}^{{commit}}")
    _git(root, "tag", "-f", "-a", tag, "-m", "moved", commit, when=FIXED_NOW)


# --- refresh --------------------------------------------------------------------------------------------------


async def test_the_solutions_screen_says_when_sync_was_read_and_how_often(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        assert str(screen.query_one("#solutions-as-of").render()) == "sync as of 12:00:00 UTC · refreshes every 3600s"


async def test_rows_changed_by_a_refresh_are_flagged_for_a_moment(
    fixed_copy: Path, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LineTable, "FLASH_SECONDS", 0.2)
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        table = screen.query_one(LineTable)
        assert table.flashing == {}  # the first answer of the platform is not a change
        await provision_with_engine(fixed_copy, "globex")  # behind the console's back, as another terminal would
        app.model.fleet.sync()  # the interval's refresh
        await settle(pilot)
        assert set(table.flashing) == {"globex"}
        assert table.get_row("globex")[7].plain == "synced"
        assert table.get_row("globex")[1].style.bgcolor is not None  # the whole row carries -changed
        assert table.get_row("acme-corp")[1].style.bgcolor is None
        app.model.fleet.sync()  # nothing changed since: nothing more is flagged
        await settle(pilot)
        assert set(table.flashing) <= {"globex"}
        await pilot.pause(0.5)
        assert table.flashing == {}
        assert table.get_row("globex")[1].style.bgcolor is None


async def test_a_reload_flags_only_the_row_whose_file_changed(
    fixed_copy: Path, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload makes every spec anew: only what a row shows decides whether it changed (decision 0088)."""
    monkeypatch.setattr(LineTable, "FLASH_SECONDS", 30)
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        table = screen.query_one(LineTable)
        app.action_reload()  # ctrl+r with nothing changed
        await settle(pilot)
        assert table.flashing == {}
        path = fixed_copy / "solutions" / "globex.yaml"
        path.write_text(path.read_text().replace("display_name: ", "display_name: Renamed ", 1))
        app.model.fleet.check_files()  # the interval's look at the files
        await settle(pilot)
        assert table.get_row("globex")[2].plain.startswith("Renamed ")
        assert set(table.flashing) == {"globex"}


async def test_another_operation_that_ended_the_same_is_not_a_change(
    fixed_copy: Path, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LineTable, "FLASH_SECONDS", 30)
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        table = screen.query_one(LineTable)
        await provision_with_engine(fixed_copy, "globex")
        app.model.fleet.sync()
        await settle(pilot)
        first = [text.plain for text in table.get_row("globex")]
        await pilot.pause(0.1)
        table.flashing.clear()
        await provision_with_engine(fixed_copy, "globex")  # again: the row reads the same
        app.model.fleet.sync()
        await settle(pilot)
        assert [text.plain for text in table.get_row("globex")] == first
        assert table.flashing == {}


async def test_a_tick_never_restarts_a_platform_read_still_running(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        reading = app.model.fleet.sync()
        app.model.fleet.tick()
        app.model.fleet.tick()
        syncing = [worker for worker in app.workers if worker.group == "fleet-sync" and not worker.is_finished]
        assert syncing == [reading]
        await settle(pilot)
        assert not reading.is_cancelled and reading.is_finished


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 2.0), ("", 2.0), ("5", 5.0), ("0.5", 0.5), ("0.1", "at least 0.5"), ("soon", "not a number")],
)
def test_the_refresh_interval_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: float | str
) -> None:
    from orbit_ops.errors import InputError

    if value is None:
        monkeypatch.delenv(REFRESH_ENV, raising=False)
    else:
        monkeypatch.setenv(REFRESH_ENV, value)
    if isinstance(expected, float):
        assert refresh_seconds_from_env() == expected
    else:
        with pytest.raises(InputError, match=expected):
            refresh_seconds_from_env()


# --- pin filter -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pins", "problems"),
    [
        ("pin:agent=1.2.0", {"agent": {"1.2.0"}}, []),
        ("pin:agent=1.2.0,2.* pin:mc=1.0.0", {"agent": {"1.2.0", "2.*"}, "mc": {"1.0.0"}}, []),
        ("pin:orbit=latest", {"orbit": {"latest"}}, []),
        ("pin:agent", {}, ["pin:agent is not pin:COMPONENT=VERSION (e.g. pin:agent=1.2.0)"]),
        ("pin:agent=", {}, ["pin:agent= is not pin:COMPONENT=VERSION (e.g. pin:agent=1.2.0)"]),
        ("pin:web=1.0.0", {}, ["pin:web is not one of orbit, agent, mc"]),
    ],
)
def test_pin_filter_terms(text: str, pins: dict[str, set[str]], problems: list[str]) -> None:
    wanted = parse_filter(text)
    assert {component: set(values) for component, values in wanted.pins} == pins
    assert list(wanted.problems) == problems


async def test_slash_pin_filter_shows_the_solutions_pinning_that_version(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)

        async def shown(text: str) -> list[str]:
            box = screen.query_one("#solutions-filter")
            box.value = ""  # type: ignore[attr-defined]
            await pilot.press("slash")
            box.value = text  # the one Changed that typing it ends with (Pilot settles ~0.1 s after each key)
            await pilot.press("enter")  # Enter keeps the filter and returns to the table
            await settle(pilot)
            return [row[1] for row in table_rows(app, "#solutions")]

        assert await shown("pin:orbit=1.1.0") == ["globex"]
        assert await shown("pin:agent=2.0.0-rc.1") == ["hooli"]
        assert await shown("pin:orbit=latest") == ["initech"]
        assert await shown("pin:mc=1.0.* fresh:behind") == ["wayne-enterprises"]
        assert len(await shown("pin:mc=1.*")) == 6
        assert await shown("pin:orbit=1.2.0 pin:mc=1.0.0") == ["wayne-enterprises"]
        assert len(await shown("pin:web=1")) == 6  # a term that is not understood is reported, not guessed
        assert "pin:web is not one of orbit, agent, mc" in str(screen.query_one("#solutions-note").render())


# --- integrity ------------------------------------------------------------------------------------------------


async def test_a_moved_tag_is_marked_on_components_tags_solutions_and_the_solution(
    fixed_copy: Path, make_app: MakeApp
) -> None:
    _move_tag(fixed_copy, "agent/v2.0.0", "agent/v1.0.0")
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ComponentsScreen)
        rows = {row[0]: row for row in table_rows(app, "#components")}
        assert rows["agent"][5] == "⚠ 1 record problem" and rows["orbit"][5] == rows["mc"][5] == "ok"
        problems = str(app.screen.query_one("#components-problems").render())
        assert problems.startswith("⚠ agent 2.0.0: the tag moved: record ")
        await pilot.press("enter")  # agent's tags
        await settle(pilot)
        assert isinstance(app.screen, TagsScreen)
        releases = {row[0]: row[4] for row in table_rows(app, "#tags")}
        assert releases["2.0.0"].endswith(" ⚠") and not releases["1.0.0"].endswith("⚠")
        assert "2.0.0: the tag moved" in str(app.screen.query_one("#tags-problems").render())
        screen = await open_solutions(pilot)
        agent = {row[1]: row[4] for row in table_rows(app, "#solutions")}
        assert agent["acme-corp"] == "2.0.0 ⚠" and agent["hooli"] == "2.0.0-rc.1 ↓"
        assert "5 with integrity problems ⚠" in str(screen.query_one("#solutions-title").render())
        await pilot.press("enter")  # acme-corp
        await settle(pilot)
        assert isinstance(app.screen, SolutionScreen)
        text = str(app.screen.query_one("#solution-problems").render())
        assert text.startswith("agent 2.0.0: the tag moved: record ")


async def test_the_records_are_verified_once_per_refresh_for_every_screen(
    fixed_copy: Path, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Components, Tags and Solutions show the same verification; ctrl+r verifies again, once."""
    import orbit_tui.record_checks as record_checks

    verified: list[str] = []
    real = record_checks.record_problems
    monkeypatch.setattr(record_checks, "record_problems", lambda ws: verified.append("all") or real(ws))
    _move_tag(fixed_copy, "agent/v2.0.0", "agent/v1.0.0")
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert {row[0]: row[5] for row in table_rows(app, "#components")}["agent"] == "⚠ 1 record problem"
        await pilot.press("enter")  # agent's tags
        await settle(pilot)
        assert {row[0]: row[4] for row in table_rows(app, "#tags")}["2.0.0"].endswith(" ⚠")
        await open_solutions(pilot)
        assert {row[1]: row[4] for row in table_rows(app, "#solutions")}["acme-corp"] == "2.0.0 ⚠"
        assert verified == ["all"]  # three screens, one verification
        _move_tag(fixed_copy, "agent/v2.0.0", "agent/v2.0.0-rc.1")  # moved again, elsewhere: seen after ctrl+r
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert verified == ["all", "all"]
        assert {row[1]: row[4] for row in table_rows(app, "#solutions")}["acme-corp"] == "2.0.0 ⚠"
        await pilot.press("1")  # back to the tags, read again after ctrl+r: the same verification
        await settle(pilot)
        assert {row[0]: row[4] for row in table_rows(app, "#tags")}["2.0.0"].endswith(" ⚠")
        await pilot.press("escape")
        await settle(pilot)
        assert {row[0]: row[5] for row in table_rows(app, "#components")}["agent"] == "⚠ 1 record problem"
        assert verified == ["all", "all"]


async def test_a_rebuild_with_another_digest_is_marked_like_any_record_problem(
    fixed_copy: Path, make_app: MakeApp
) -> None:
    """`build --force` recorded a second image of agent 2.0.0: one version, two images. Components counts it,
    Tags marks the version, and the solutions pinning it carry the mark (an app may run either image)."""
    import dataclasses

    from orbit_ops.catalog.releases import append_record, latest_record, load_records

    releases_dir = fixed_copy / "releases"
    first = latest_record(load_records(releases_dir, "agent"), "2.0.0")
    assert first is not None
    append_record(releases_dir, dataclasses.replace(first, digest="sha256:" + "c" * 64, run_id="rebuild",
                                                    built_at="2026-11-30T12:00:00Z"))
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        rows = {row[0]: row for row in table_rows(app, "#components")}
        assert rows["agent"][5] == "⚠ 1 record problem" and rows["orbit"][5] == rows["mc"][5] == "ok"
        problems = str(app.screen.query_one("#components-problems").render())
        assert problems.startswith(f"⚠ agent 2.0.0: 2 different digests in 2 records: {first.digest[:19]} (built ")
        assert "sha256:cccccccccccc (built 2026-11-30T12:00:00Z, current: the newest record)" in problems
        await pilot.press("enter")  # agent's tags
        await settle(pilot)
        releases = {row[0]: row[4] for row in table_rows(app, "#tags")}
        assert releases["2.0.0"].endswith(" ⚠") and not releases["1.0.0"].endswith("⚠")
        assert "2.0.0: 2 different digests in 2 records" in str(app.screen.query_one("#tags-problems").render())
        await open_solutions(pilot)
        agent = {row[1]: row[4] for row in table_rows(app, "#solutions")}
        assert agent["acme-corp"] == "2.0.0 ⚠"


async def test_without_problems_there_is_no_integrity_section(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert not app.screen.query("#solution-problems")


def test_a_pin_whose_record_vanished_is_a_problem_when_it_was_rolled_or_runs() -> None:
    releases = ReleaseIndex({})  # no record at all
    records = {("agent", "2.0.0"): ("the tag moved: record aaa, tag now bbb",)}
    rolled = {("orbit", "1.1.0")}
    pins = {"orbit": "1.1.0", "agent": "2.0.0", "mc": "1.0.0"}
    found = pin_problems("acme", pins, releases, records, rolled, live={"mc": "1.0.0"})
    assert found["orbit"] == (
        "orbit 1.1.0: its release record vanished (it was rolled out before); restore the record or rebuild: "
        "orbit build orbit@1.1.0 --force",
    )
    assert found["agent"][0] == "agent 2.0.0: the tag moved: record aaa, tag now bbb"
    assert "it runs live" in found["mc"][0]
    assert pin_problems("acme", {"mc": "1.0.0"}, releases, {}, set(), live={"mc": "0.9.0"}) == {}  # never released


def test_rolled_versions_counts_only_rolls_that_wrote_a_pin() -> None:
    from types import SimpleNamespace

    records = [
        SimpleNamespace(kind="roll", result={"component": "agent", "version": "2.0.0", "pins": [{"id": "a"}]}),
        SimpleNamespace(kind="roll", result={"component": "agent", "version": "3.0.0", "pins": []}),
        SimpleNamespace(kind="sweep", result={"component": "mc", "version": "1.0.0", "pins": [{"id": "a"}]}),
        SimpleNamespace(kind="roll", result=None),
    ]
    assert rolled_versions(records) == {("agent", "2.0.0")}  # type: ignore[arg-type]


# --- the batched log stream -----------------------------------------------------------------------------------


async def test_follow_batches_delivers_every_event_in_order_in_bounded_batches(tmp_path: Path) -> None:
    from orbit_ops.operations.store import OperationStore

    store = OperationStore(tmp_path)
    expected = [f"line {index:05d} " + "x" * 60 for index in range(3000)]
    release = asyncio.Event()

    async def body(ctx: Any) -> dict[str, Any]:
        for index, text in enumerate(expected):
            ctx.log(text)
            if index == 1500:
                await release.wait()  # half now, half while the follower tails the log
        return {}

    runner = OperationRunner(store, "build", "x@1.0.0", body)
    producer = asyncio.create_task(_drain(runner))
    got: list[str] = []
    sizes: list[int] = []
    ends = []
    async for batch in follow_batches(store, runner.op_id, poll=0.01, limit=16 * 1024):
        sizes.append(len(batch))
        got += [event.text for event in batch if isinstance(event, LogLine)]
        ends += [event for event in batch if isinstance(event, OperationFinished)]
        if len(got) > 1500:
            release.set()
    await producer
    store.close()
    assert got == expected
    assert len(ends) == 1 and ends[0].state == "succeeded" and isinstance(batch[-1], OperationFinished)
    assert max(sizes) <= 16 * 1024 // 60 and len(sizes) > 10


async def test_follow_batches_can_pass_log_lines_on_undecoded(tmp_path: Path) -> None:
    """With raw_log_lines the log lines arrive as the stored bytes, in their place among the other events,
    and decode_log_line gives back exactly the LogLine the operation logged."""
    from orbit_ops.operations.events import ChildChanged, ProgressChanged
    from orbit_ops.operations.log import LOG_LINE_PREFIX, decode_log_line
    from orbit_ops.operations.store import OperationStore

    store = OperationStore(tmp_path)

    async def body(ctx: Any) -> dict[str, Any]:
        ctx.log('plain "quoted" text \u00e9 and a {"type":"log",} look-alike')
        ctx.progress(1, 2)
        ctx.child("acme", "running")
        ctx.log("member line", child="acme")
        ctx.progress(2, 2)
        return {}

    runner = OperationRunner(store, "sweep", "all", body)
    await _drain(runner)
    items = [item async for batch in follow_batches(store, runner.op_id, raw_log_lines=True) for item in batch]
    store.close()
    kinds = [type(item).__name__ for item in items]
    assert kinds[0] == "OperationStarted" and kinds[-1] == "OperationFinished"
    raw = [item for item in items if isinstance(item, bytes)]
    assert all(line.startswith(LOG_LINE_PREFIX) for line in raw)
    logged = [decode_log_line(line) for line in raw]
    assert [(event.text, event.child) for event in logged] == [
        ('plain "quoted" text \u00e9 and a {"type":"log",} look-alike', None), ("member line", "acme")]
    assert [item.done for item in items if isinstance(item, ProgressChanged)] == [1, 2]
    assert any(isinstance(item, ChildChanged) for item in items)
    with pytest.raises(ValueError, match="not a log line"):
        decode_log_line(b'{"type":"progress","op_id":"x","done":1,"total":2}')
    with pytest.raises(ValueError):
        decode_log_line(b'{"type":"log","op_id":"x","at":"t","text":')


async def _drain(runner: OperationRunner) -> None:
    async for _event in runner.events():
        pass


async def test_help_explains_the_marks_and_colours_of_the_screen(fixed_root: Path, make_app: MakeApp) -> None:
    from orbit_tui.screens.modals import HelpScreen

    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        legend = str(app.screen.query_one("#legend").render())
        assert "↓ a newer release exists" in legend and "⚠ its release record has a problem" in legend
        assert "pin:agent=1.2.0" in legend
