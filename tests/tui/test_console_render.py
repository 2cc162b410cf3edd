"""The pure mappings behind the console: states to classes, pins to freshness, filters, small formats."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from orbit_ops.config.model import AzureSettings
from orbit_ops.fleet.drift import FRESHNESS_ORDER, SYNC_ORDER
from orbit_ops.fleet.health import Health
from orbit_ops.operations.kinds import OperationState
from orbit_ops.workspace import Workspace
from orbit_tui.filters import parse_filter
from orbit_tui.render import (
    STATE_CLASSES,
    SolutionView,
    clock_time,
    describe_target,
    display_path,
    images_to_push,
    pin_views,
    progress_text,
    solution_row,
    state_class,
    timestamp,
)


def test_every_engine_state_has_a_class_styled_in_the_stylesheet() -> None:
    stylesheet = (Path(__file__).parents[2] / "orbit_tui" / "orbit.tcss").read_text()
    states = (*SYNC_ORDER, "invalid", *FRESHNESS_ORDER, *Health, *OperationState)  # invalid: a solution file (SPEC §2)
    for state in states:
        name = state_class(state)
        assert name == f"-{state}"
        assert f"StateTable > .{name}" in stylesheet and f".state.{name}" in stylesheet
    assert state_class("not-a-state") is None
    known = (*states, "prerelease")
    assert set(STATE_CLASSES.values()) <= {f"-{s}" for s in known}


@pytest.mark.parametrize(
    ("solution", "freshness", "cells"),
    [
        ("acme-corp", ["current", "current", "current"], ["1.2.0", "2.0.0", "1.1.0"]),
        ("globex", ["behind", "current", "current"], ["1.1.0 ↓", "2.0.0", "1.1.0"]),
        ("hooli", ["current", "behind", "current"], ["1.2.0", "2.0.0-rc.1 ↓", "1.1.0"]),
        ("initech", ["floating", "current", "current"], ["latest (1.2.0)", "2.0.0", "1.1.0"]),
        ("umbrella-health", ["unreleased", "current", "current"], ["1.3.0 !", "2.0.0", "1.1.0"]),
        ("wayne-enterprises", ["current", "current", "behind"], ["1.2.0", "2.0.0", "1.0.0 ↓"]),
    ],
)
def test_pins_are_judged_against_the_release_records(
    fixed_root: Path, solution: str, freshness: list[str], cells: list[str]
) -> None:
    workspace = Workspace.open(fixed_root)
    spec = next(spec for spec in workspace.solutions() if spec.id == solution)
    pins = pin_views(spec, workspace.release_index())
    assert [pin.freshness for pin in pins] == freshness
    assert [pin.cell.text for pin in pins] == cells
    assert [pin.cell.state for pin in pins] == [f"-{value}" for value in freshness]
    view = SolutionView(spec, pins)
    worst = next(value for value in FRESHNESS_ORDER if value in freshness)
    row = solution_row(view)
    assert row[6].text == worst
    assert (row[7].text, row[8].text, row[9].text) == ("—", "—", "—")  # sync, health, last operation: not guessed


@pytest.mark.parametrize(
    ("text", "words", "sync", "fresh", "problems"),
    [
        ("", (), set(), set(), 0),
        ("Acme corp", ("acme", "corp"), set(), set(), 0),
        ("fresh:behind", (), set(), {"behind"}, 0),
        ("freshness:behind,unreleased sync:drifted", (), {"drifted"}, {"behind", "unreleased"}, 0),
        ("sync:sideways", (), set(), set(), 1),
        ("health:degraded,missing sync:synced", (), {"synced"}, set(), 0),
        ("health:sick", (), set(), set(), 1),
        ("team:red", ("team:red",), set(), set(), 0),
    ],
)
def test_filter_terms(text: str, words: tuple[str, ...], sync: set[str], fresh: set[str], problems: int) -> None:
    wanted = parse_filter(text)
    assert (wanted.words, set(wanted.sync), set(wanted.fresh), len(wanted.problems)) == (words, sync, fresh, problems)


def test_filter_matches_words_and_freshness(fixed_root: Path) -> None:
    from orbit_tui.filters import matches

    workspace = Workspace.open(fixed_root)
    views = [SolutionView(spec, pin_views(spec, workspace.release_index())) for spec in workspace.solutions()]

    def shown(text: str) -> list[str]:
        return [view.spec.id for view in views if matches(view, parse_filter(text))]

    assert shown("fresh:behind") == ["globex", "hooli", "wayne-enterprises"]
    assert shown("fresh:behind wayne") == ["wayne-enterprises"]
    assert shown("2.0.0-rc") == ["hooli"]
    assert shown("sync:drifted") == []  # sync is not known yet: nothing claims to be drifted


def test_small_formats(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert display_path(tmp_path / "ws") == "~/ws"
    assert display_path("/srv/orbit") == "/srv/orbit"
    assert timestamp("2026-11-24T16:18:15.123Z") == "2026-11-24 16:18:15"
    assert timestamp("2026-11-24T16:18:15Z", seconds=False) == "2026-11-24 16:18"
    assert timestamp(None) == ""
    assert progress_text(3, 5) == "3/5" and progress_text(0, 0) == "" and progress_text(2, 0) == "2"
    assert clock_time(datetime(2026, 1, 1, 13, 0, 5, tzinfo=timezone(timedelta(hours=1)))) == "12:00:05"
    assert clock_time(datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)) == "12:00:05"
    assert images_to_push("orbitacr.azurecr.io", "agent", "2.1.0+build.7") == [
        "orbitacr.azurecr.io/agent:2.1.0_build.7",
        "orbitacr.azurecr.io/agent:latest",
    ]


def test_the_target_names_subscription_group_and_registry(fixed_root: Path) -> None:
    config = Workspace.open(fixed_root).config
    assert describe_target(config) == "local"
    azure = AzureSettings(
        "00000000-0000-0000-0000-000000000000",
        "orbit-prod",
        "westeurope",
        "orbitacr",
        "orbit-env",
        "orbitfiles",
        "/subscriptions/x/identity",
    )
    cloud = dataclasses.replace(config, backend="azure", azure=azure)
    assert describe_target(cloud) == "azure 00000000-0000-0000-0000-000000000000 / orbit-prod / orbitacr.azurecr.io"


@pytest.mark.parametrize(
    ("state", "severity"),
    [("succeeded", "information"), ("cancelled", "warning"), ("failed", "error"), ("interrupted", "error")],
)
def test_operation_endings_are_announced_by_severity(state: str, severity: str) -> None:
    from orbit_tui.render import notification_severity

    assert notification_severity(state) == severity


def test_a_degraded_notice_names_five_solutions_with_their_reasons_and_counts_the_rest() -> None:
    from orbit_tui.health_render import degraded_notice

    solutions = [(f"s{index}", f"orbit: image pull failed: s{index}") for index in range(7)] + [("s7", None)]
    title, message = degraded_notice(solutions)
    assert title == "Health degraded: 8 solutions"
    assert message.splitlines() == [*(f"s{index}: orbit: image pull failed: s{index}" for index in range(5)),
                                    "… and 3 more (filter: health:degraded)"]
    assert degraded_notice([("s7", None)]) == ("Health degraded: 1 solution", "s7: no reason given")


def test_views_made_at_once_equal_the_dataclass_ones_and_keep_what_they_computed(fixed_root: Path) -> None:
    """``SolutionView.plain`` and ``with_live`` (decision 0088) give what ``SolutionView(...)`` and
    ``dataclasses.replace`` give, field for field; a live copy keeps the freshness and words already computed."""
    from orbit_ops.fleet.status import LastOperation

    workspace = Workspace.open(fixed_root)
    releases = workspace.release_index()
    judged: dict[tuple[str, ...], tuple] = {}
    last = LastOperation("op-1", "sweep", "failed", "2026-12-01T10:00:00Z", "boom")
    for spec in workspace.solutions():
        pins = pin_views(spec, releases, judged)
        assert pins == pin_views(spec, releases)  # judged once per versions pinned: the same judgement
        view = SolutionView.plain(spec, pins)
        assert view == SolutionView(spec, pins)
        assert dataclasses.asdict(view) == dataclasses.asdict(SolutionView(spec, pins))
        words, freshness = view.search_text, view.freshness
        live = view.with_live("drifted", "degraded", "agent: crash loop", last)
        assert live == dataclasses.replace(view, sync="drifted", health="degraded", health_reason="agent: crash loop",
                                           last_operation=last)
        assert (live.search_text, live.freshness) == (words, freshness)
        assert (view.sync, view.last_operation) == (None, None)  # the view copied is left as it was
        assert solution_row(live)[7:] == solution_row(dataclasses.replace(
            view, sync="drifted", health="degraded", last_operation=last))[7:]


def test_the_column_texts_hold_every_text_of_every_row(fixed_root: Path) -> None:
    """The Solutions table's widths come from each column's distinct texts made from one row per distinct look:
    every text any row shows (selected or not, with problems or live states) is among them."""
    from orbit_ops.fleet.status import LastOperation
    from orbit_tui.line_table import column_width, text_width
    from orbit_tui.render import solution_column_texts

    workspace = Workspace.open(fixed_root)
    releases = workspace.release_index()
    views = []
    for number, spec in enumerate(workspace.solutions()):
        view = SolutionView(spec, pin_views(spec, releases))
        if number % 2:
            view = dataclasses.replace(view, sync="drifted", health="progressing", problem_pins=frozenset({"agent"}),
                                       last_operation=LastOperation(f"op-{number}", "roll", "succeeded", "t"))
        views.append(view)
    columns = solution_column_texts(views)
    for view in views:
        for selected in (False, True):
            for texts, cell in zip(columns, solution_row(view, selected=selected), strict=True):
                assert cell.text in texts
    assert column_width({"acme", "wayne-enterprises"}) == len("wayne-enterprises")
    assert column_width({"tab\there", "ü"}) == max(text_width("tab\there"), 1) == len("tab     here")
    assert text_width("bell\x07") == len("bell\\x07")  # shown as its escape
    assert column_width(set()) == 0
