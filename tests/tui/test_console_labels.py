"""Solution labels in the console (issue 15): a ``label:`` filter that reads selectors as ``--only`` does, label
words, and the labels in the solution's detail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SIZE
from console_helpers import open_solutions, settle, table_rows
from textual.widgets import Label

from orbit_tui.app import OrbitApp

MakeApp = Callable[..., OrbitApp]
RINGS = {"acme-corp": "canary", "globex": "early", "hooli": "early"}


@pytest.fixture
def ringed(fixed_copy: Path) -> Path:
    for solution_id, ring in RINGS.items():
        path = fixed_copy / "solutions" / f"{solution_id}.yaml"
        path.write_text(path.read_text() + f"labels:\n  ring: {ring}\n  Tier: Gold\n")
    return fixed_copy


async def shown(pilot: object, app: OrbitApp, text: str) -> list[str]:
    box = app.screen.query_one("#solutions-filter")
    box.value = text  # type: ignore[attr-defined]
    await settle(pilot)  # type: ignore[arg-type]
    return [row[1] for row in table_rows(app, "#solutions")]


async def test_the_label_filter_selects_as_only_does(ringed: Path, make_app: MakeApp) -> None:
    app = make_app(ringed)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("slash")
        assert await shown(pilot, app, "label:ring=early") == ["globex", "hooli"]
        assert await shown(pilot, app, "label:ring!=early") == ["acme-corp", "initech", "umbrella-health",
                                                                "wayne-enterprises"]  # != takes the unlabelled too
        assert await shown(pilot, app, "label:ring=early,Tier=Gold label:ring!=canary") == ["globex", "hooli"]
        assert await shown(pilot, app, "label:tier=gold") == []  # keys and values keep their case
        assert await shown(pilot, app, "ring=canary") == ["acme-corp"]  # a label is a word too
        assert await shown(pilot, app, "label:ring=-x") == ["acme-corp", "globex", "hooli", "initech",
                                                             "umbrella-health", "wayne-enterprises"]
        note = str(app.screen.query_one("#solutions-note", Label).render())
        assert "label value '-x' is not valid" in note  # not applied, and said why


async def test_the_detail_shows_the_labels(ringed: Path, make_app: MakeApp) -> None:
    app = make_app(ringed)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("enter")  # acme-corp
        await settle(pilot)
        names = "\n".join(str(static.render()) for static in app.screen.query("#solution-names Static"))
        assert "labels    Tier=Gold, ring=canary" in names
