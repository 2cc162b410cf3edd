"""Health in the console (SPEC §3.6): the Solutions column and its filter, the detail's revisions, live changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SIZE
from console_helpers import open_solutions, record_notifications, settle, table_rows
from console_workspace import frozen_engine_clock, untag_image
from textual.widgets import Input, Label, Static

from orbit_ops.demo_apps import ENV_REQUIRING_RELEASE, MC_URL
from orbit_ops.fleet.entries import plan_sweep, start_roll, start_sweep
from orbit_ops.fleet.roll import plan_roll
from orbit_ops.workspace import Workspace
from orbit_tui.app import OrbitApp
from orbit_tui.screens.solution import SolutionScreen
from orbit_tui.screens.solutions import SolutionsScreen

MakeApp = Callable[..., OrbitApp]
HEALTH = 8  # the health column of a Solutions row


def provision(root: Path, *ids: str, first_id: int = 4) -> None:
    """Provision ``ids`` with the engine, as ``orbit provision`` in another terminal would (ids frozen)."""
    workspace = Workspace.open(root)
    specs = [spec for spec in workspace.solutions() if spec.id in ids]

    async def run() -> None:
        async for _event in start_sweep(workspace, await plan_sweep(workspace, specs, skip_unreleased=True)).events():
            pass

    with frozen_engine_clock(first_id):
        asyncio.run(run())
    workspace.operations().close()


def roll(root: Path, component: str, version: str, *ids: str) -> None:
    """Roll ``component`` ``version`` to ``ids`` and provision them with the engine (``orbit roll``)."""
    workspace = Workspace.open(root)
    specs = [spec for spec in workspace.solutions() if spec.id in ids]

    async def run() -> None:
        async for _event in start_roll(workspace, plan_roll(workspace, component, version, specs)).events():
            pass

    asyncio.run(run())
    workspace.operations().close()


@pytest.fixture
def running(fixed_copy: Path) -> Path:
    """The fixed workspace with acme-corp running and globex provisioned with an orbit 1.1.0 whose image was
    deleted from the local registry, so its orbit revision fails to pull."""
    untag_image(fixed_copy, "orbit", "1.1.0")
    provision(fixed_copy, "acme-corp", "globex")
    return fixed_copy


def health_column(app: OrbitApp) -> dict[str, str]:
    return {row[1]: row[HEALTH] for row in table_rows(app, "#solutions")}


async def test_the_health_column_shows_each_solutions_health_in_its_colour(running: Path, make_app: MakeApp) -> None:
    app = make_app(running)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        assert health_column(app) == {"acme-corp": "healthy", "globex": "degraded", "hooli": "missing",
                                      "initech": "missing", "umbrella-health": "missing",
                                      "wayne-enterprises": "missing"}
        states = {view.spec.id: screen.row(view)[HEALTH].state for view in screen.views}
        assert (states["acme-corp"], states["globex"], states["hooli"]) == ("-healthy", "-degraded", "-missing")
        assert "1 degraded" in str(screen.query_one("#solutions-title", Label).render())


FILTERS = [
    ("health:healthy", ["acme-corp"]),
    ("health:degraded", ["globex"]),
    ("health:missing", ["hooli", "initech", "umbrella-health", "wayne-enterprises"]),
    ("health:progressing,unknown", []),
    ("health:healthy,degraded sync:synced", ["acme-corp", "globex"]),
    ("health:missing fresh:behind", ["hooli", "wayne-enterprises"]),
    ("health:degraded glo", ["globex"]),
]


async def test_the_health_filter_combines_with_sync_freshness_and_words(running: Path, make_app: MakeApp) -> None:
    app = make_app(running)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        await pilot.press("slash", *"health:degraded")
        await settle(pilot)
        assert [row[1] for row in table_rows(app, "#solutions")] == ["globex"]
        box = screen.query_one("#solutions-filter", Input)
        for typed, shown in FILTERS:  # the rest written into the box at once (typing each is slow)
            box.value = typed
            await settle(pilot)
            assert [row[1] for row in table_rows(app, "#solutions")] == shown, typed


async def test_a_mistyped_health_says_which_values_are_allowed(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        await pilot.press("slash", *"health:degarded")
        await settle(pilot)
        note = str(screen.query_one("#solutions-note", Label).render())
        assert note.startswith("health:degarded is not one of degraded, healthy, missing, progressing, unknown "
                               "(did you mean 'degraded'?)")
        assert len(table_rows(app, "#solutions")) == 6  # the term is not applied, as for sync: and fresh:


async def test_invalid_files_have_no_health(fixed_copy: Path, make_app: MakeApp) -> None:
    (fixed_copy / "solutions" / "broken.yaml").write_text("id: broken\nimages: [\n")
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        assert health_column(app)["broken"] == "—"
        await pilot.press("slash", *"health:missing")
        await settle(pilot)
        assert "broken" not in health_column(app)


async def test_the_detail_shows_each_apps_revisions_and_why_it_is_degraded(running: Path, make_app: MakeApp) -> None:
    app = make_app(running)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("down", "enter")  # globex
        await settle(pilot)
        assert isinstance(app.screen, SolutionScreen) and app.screen.view.spec.id == "globex"
        revisions = table_rows(app, "#revisions")
        assert [row[:2] for row in revisions] == [["orbit", "degraded"], ["agent", "healthy"], ["mc", "healthy"]]
        orbit, agent = revisions[0], revisions[1]
        assert orbit[2].startswith("orbit-") and agent[2].startswith("agent-")
        assert orbit[3:9] == ["Failed", "Failed", "Unhealthy", "no", "0", "0"]
        assert agent[3:9] == ["Provisioned", "Running", "Healthy", "yes", "1", "0"]
        why = str(app.screen.query_one("#solution-health", Static).render())
        assert why == ("orbit  degraded: image pull failed: 'oci:.orbit/registry/orbit:1.1.0': the local registry "
                       "has no orbit:1.1.0 (it holds 1.0.0, 1.2.0, latest)")


async def test_the_detail_reads_its_revisions_again_while_it_is_open(running: Path, make_app: MakeApp) -> None:
    app = make_app(running)
    async with app.run_test(size=SIZE) as pilot:
        await open_solutions(pilot)
        await pilot.press("enter")  # acme-corp, healthy
        await settle(pilot)
        assert [row[:2] for row in table_rows(app, "#revisions")] == [
            ["orbit", "healthy"], ["agent", "healthy"], ["mc", "healthy"]]
        assert str(app.screen.query_one("#solution-health", Static).render()) == "every app's latest revision runs"
        # another terminal rolls acme-corp's orbit to 1.1.0, which the local registry does not hold
        await asyncio.to_thread(roll, running, "orbit", "1.1.0", "acme-corp")
        app.model.tick("solution", "acme-corp")  # the interval's work, now
        await settle(pilot)
        rows = table_rows(app, "#revisions")
        assert [row[:2] for row in rows[:3]] == [["orbit", "degraded"], ["", ""], ["agent", "healthy"]]
        assert [row[3] for row in rows[:2]] == ["Failed", "Provisioned"]  # newest first
        assert [row[6] for row in rows[:2]] == ["no", "yes"]  # the old revision still serves
        assert str(app.screen.query_one("#solution-health", Static).render()).startswith("orbit  degraded: ")


async def test_a_solution_turning_degraded_updates_its_row_and_says_why(demo_copy: Path, make_app: MakeApp) -> None:
    """The demo's env-requiring release, rolled for real: only the solution lacking MC_URL turns degraded."""
    specs = Workspace.open(demo_copy).solutions()
    lacking = next(spec.id for spec in specs if MC_URL not in spec.env.get("orbit", {}))
    having = next(spec.id for spec in specs if MC_URL in spec.env.get("orbit", {}))
    app = make_app(demo_copy)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_solutions(pilot)
        assert isinstance(screen, SolutionsScreen)
        assert (health_column(app)[lacking], health_column(app)[having]) == ("healthy", "healthy")
        told = record_notifications(app)
        component, version = ENV_REQUIRING_RELEASE
        await asyncio.to_thread(roll, demo_copy, component, version, lacking, having)
        app.model.fleet.sync()  # the interval's platform read, now
        await settle(pilot)
        assert (health_column(app)[lacking], health_column(app)[having]) == ("degraded", "healthy")
        degraded = [(message, kwargs) for message, kwargs in told if kwargs.get("title", "").startswith("Health")]
        assert len(degraded) == 1
        message, kwargs = degraded[0]
        assert kwargs["title"] == "Health degraded: 1 solution" and kwargs["severity"] == "error"
        assert message.startswith(f"{lacking}: orbit: ") and "MC_URL" in message
        app.model.fleet.sync()  # still degraded at the next read: not announced again
        await settle(pilot)
        assert len([1 for _message, kwargs in told if kwargs.get("title", "").startswith("Health")]) == 1
