"""Statuses judged as the app pages arrive (decision 0091) are the statuses judged against the whole listing.

The platform is the local reference backend with its app listing handed over in small pages, shuffled so that a
solution's apps lie on different pages, with a pause between pages (as a paged listing on Azure has): every page
is told to ``on_page`` before the listing returns, as ``AzurePlatform.list_apps`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from orbit_ops.backends.base import AppsRead
from orbit_ops.backends.local.platform import LocalPlatform
from orbit_ops.errors import BackendError
from orbit_ops.fleet.drift import SolutionStatus
from orbit_ops.fleet.health import AppFacts
from orbit_ops.fleet.resources import App
from orbit_ops.fleet.status import read_live_with_health, read_statuses
from orbit_ops.fleet.sweeps import statuses
from orbit_ops.names import azure_names
from orbit_ops.workspace import Workspace


class Paged(LocalPlatform):
    """The local platform, its apps listed a few at a time. ``first``: documents listed on the first page and
    again, as they really are, on a later one (the listing's result holds the later one)."""

    lists_at_once = False  # it pages, as Azure does: what may be judged early is
    page_size = 4
    first: Mapping[str, App] = {}
    first_states: Mapping[str, AppFacts] = {}  # the states the first page gives (else those of list_app_states)
    fail_after: int | None = None  # pages told before the listing fails
    failed: frozenset[str] = frozenset()  # apps whose listing says provisioningState: Failed

    async def list_app_states(self) -> dict[str, AppFacts]:
        states = await super().list_app_states()
        return {name: dataclasses.replace(facts, provisioning_state="Failed") if name in self.failed else facts
                for name, facts in states.items()}

    async def list_apps(self, on_page: AppsRead | None = None) -> dict[str, App]:
        apps = await super().list_apps()
        states = await self.list_app_states()
        names = list(apps)
        random.Random(7).shuffle(names)
        pages = [{name: self.first[name] for name in self.first}]
        pages += [{name: apps[name] for name in names[start:start + self.page_size]}
                  for start in range(0, len(names), self.page_size)]
        for number, page in enumerate(pages):
            if self.fail_after is not None and number == self.fail_after:
                raise BackendError("list the container apps of orbit-demo: Azure answered 500 (InternalError)")
            if on_page is not None:
                told = {name: states[name] for name in page if name in states}
                on_page(page, {**told, **self.first_states} if number == 0 else told)
            await asyncio.sleep(0.005)  # the next page is on its way
        return apps


@pytest.fixture
def ws(demo_workspace: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    workspace = Workspace.open(root)
    workspace._platform = Paged(workspace.config.state_dir)
    return workspace


def judged_after(ws: Workspace, specs: Any, apps: Any = None) -> list[SolutionStatus]:
    """The statuses against the whole listing, read first (the reference)."""
    platform = ws.platform()
    snapshot = asyncio.run(read_live_with_health(platform, platform, apps))
    return statuses(ws, specs, snapshot)


def test_statuses_judged_as_pages_arrive_are_those_judged_after_the_listing(ws: Workspace) -> None:
    specs = ws.solutions()
    expected = judged_after(ws, specs)
    assert {"synced", "drifted", "missing"} <= {row.sync for row in expected}
    assert {"healthy"} < {str(row.health) for row in expected}  # some not plainly healthy: judged at the end
    told: list[SolutionStatus] = []
    got, snapshot = asyncio.run(read_statuses(ws, specs, on_status=told.append))
    assert got == expected and [row.id for row in got] == [spec.id for spec in specs]
    assert {row.id: row for row in told} == {row.id: row for row in got}  # each final status was told
    assert snapshot.health == asyncio.run(read_live_with_health(ws.platform(), ws.platform())).health


def test_some_statuses_are_told_before_the_listing_ends(ws: Workspace) -> None:
    platform = ws.platform()
    assert isinstance(platform, Paged)
    told: list[SolutionStatus] = []
    pages: list[int] = []
    original = platform.list_apps

    async def watched(on_page: AppsRead | None = None) -> dict[str, App]:
        def page(apps: Mapping[str, App], states: Mapping[str, Any]) -> None:
            pages.append(len(told))
            assert on_page is not None
            on_page(apps, states)

        return await original(page)

    platform.list_apps = watched  # type: ignore[method-assign]
    asyncio.run(read_statuses(ws, ws.solutions(), on_status=told.append))
    assert pages[-1] > 0  # judged while pages were still to come
    assert pages[-1] < len(ws.solutions())


def healthy_and_synced(ws: Workspace) -> tuple[Paged, str, dict[str, str], dict[str, App]]:
    """The paged platform, a solution that is synced and healthy, its apps' names and the apps as listed."""
    platform = ws.platform()
    assert isinstance(platform, Paged)
    solution = next(row.id for row in judged_after(ws, ws.solutions())
                    if row.sync == "synced" and str(row.health) == "healthy")
    return platform, solution, azure_names(solution).apps, asyncio.run(platform.list_apps())


def test_an_app_listed_twice_is_judged_as_the_listing_ends_with_it(ws: Workspace) -> None:
    platform, solution, names, listed = healthy_and_synced(ws)
    agent = listed[names["agent"]]
    # All three apps on the first page (the solution is ready to judge from it), the agent with an older image.
    platform.first = {**{name: listed[name] for name in names.values()},
                      agent.name: dataclasses.replace(agent, image=agent.image.rsplit(":", 1)[0] + ":0.0.1")}
    specs = ws.solutions()
    got, _ = asyncio.run(read_statuses(ws, specs))
    assert got == judged_after(ws, specs)
    assert next(row for row in got if row.id == solution).sync == "synced"


def test_an_app_its_listing_shows_unwell_is_judged_from_its_revisions(ws: Workspace) -> None:
    platform, solution, names, _ = healthy_and_synced(ws)
    platform.failed = frozenset({names["mc"]})
    specs = ws.solutions()
    expected = judged_after(ws, specs)
    mine = next(row for row in expected if row.id == solution)
    assert str(mine.health) != "healthy" and "mc" in (mine.health_reason or "")
    got, _ = asyncio.run(read_statuses(ws, specs))
    assert got == expected


def test_an_app_listed_healthy_then_unwell_is_judged_unwell(ws: Workspace) -> None:
    platform, solution, names, listed = healthy_and_synced(ws)
    healthy_states = asyncio.run(platform.list_app_states())
    platform.first = {name: listed[name] for name in names.values()}
    platform.first_states = {names["mc"]: healthy_states[names["mc"]]}
    platform.failed = frozenset({names["mc"]})  # as the listing ends with it
    specs = ws.solutions()
    expected = judged_after(ws, specs)
    assert str(next(row for row in expected if row.id == solution).health) != "healthy"
    got, snapshot = asyncio.run(read_statuses(ws, specs))
    assert got == expected
    assert snapshot.health is not None and str(snapshot.health[names["mc"]].health) != "healthy"


def test_the_statuses_of_some_solutions_judge_only_their_apps(ws: Workspace) -> None:
    specs = ws.solutions()[:3]
    apps = [name for spec in specs for name in azure_names(spec.id).apps.values()]
    got, snapshot = asyncio.run(read_statuses(ws, specs, apps))
    assert got == judged_after(ws, specs, apps)
    assert snapshot.health is not None and set(snapshot.health) <= set(apps)


def test_a_listing_that_fails_after_some_pages_fails_the_statuses(ws: Workspace) -> None:
    platform = ws.platform()
    assert isinstance(platform, Paged)
    platform.fail_after = 3
    told: list[SolutionStatus] = []
    with pytest.raises(BackendError, match="Azure answered 500"):
        asyncio.run(read_statuses(ws, ws.solutions(), on_status=told.append))
