"""Provisioning waits for health (SPEC §3.6) on the local backend: one health read serves every member waiting.

The local platform decides a revision's health when it makes it, so each sweep here settles on its first
reads; a platform that reports apps still starting shows that waiting holds neither a concurrency slot nor
a solution's lock.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support import record_platform_calls

from orbit_ops.backends.local.platform import LocalPlatform
from orbit_ops.demo_apps import ENV_REQUIRING_RELEASE, MC_URL
from orbit_ops.errors import RefusedError
from orbit_ops.fleet.entries import start_roll
from orbit_ops.fleet.health import AppFacts
from orbit_ops.fleet.roll import plan_roll
from orbit_ops.fleet.wait import FIRST_INTERVAL, HealthWatcher
from orbit_ops.names import azure_names
from orbit_ops.operations.events import Event, LogLine, OperationFinished
from orbit_ops.operations.locks import held, lock_path
from orbit_ops.workspace import Workspace


@pytest.fixture
def ws(demo_workspace: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    return Workspace.open(root)


def roll(ws: Workspace, ids: list[str] | None = None, **options: Any) -> tuple[dict[str, Any], list[Event]]:
    component, version = ENV_REQUIRING_RELEASE
    specs = [spec for spec in ws.solutions() if ids is None or spec.id in ids]

    async def run() -> tuple[dict[str, Any], list[Event]]:
        events = [e async for e in start_roll(ws, plan_roll(ws, component, version, specs), **options).events()]
        finished = events[-1]
        assert isinstance(finished, OperationFinished) and finished.result is not None, finished
        return finished.result, events

    return asyncio.run(run())


def test_a_sweep_of_the_fleet_reads_health_once_per_interval_not_once_per_member(ws: Workspace) -> None:
    platform = record_platform_calls(ws)
    started = time.monotonic()
    result, _ = roll(ws)
    elapsed = time.monotonic() - started
    members = len(result["solutions"])
    lacking = {spec.id for spec in ws.solutions() if MC_URL not in spec.env.get("orbit", {})}
    assert members == len(ws.solutions())
    assert {s["id"] for s in result["solutions"] if s["state"] == "failed"} == lacking
    reads = sum(1 for method, _ in platform.calls if method == "list_app_states")
    assert 1 <= reads <= elapsed / FIRST_INTERVAL + 1  # never faster than the first pause, whoever waits
    assert reads < members / 4


def test_many_followers_at_once_are_answered_by_one_read(ws: Workspace) -> None:
    async def follow_all() -> tuple[int, list[Any]]:
        listed = await ws.platform().list_apps()
        ids = [spec.id for spec in ws.solutions() if azure_names(spec.id).apps["orbit"] in listed]
        async with HealthWatcher(ws.platform()) as watcher:
            watched = await asyncio.gather(*(watcher.follow(i, 60) for i in ids))
        return watcher.reads, watched

    reads, watched = asyncio.run(follow_all())
    assert len(watched) > 20 and all(w.settled for w in watched)  # the local platform decides at once
    assert reads == 1


class StartingPlatform(LocalPlatform):
    """The local platform, but its apps report ``Progressing`` for the first ``slow`` listings of their states;
    each listing records whether the lock of ``locked`` could be taken meanwhile."""

    def __init__(self, ws: Workspace, slow: int, locked: str) -> None:
        base = ws.platform()
        super().__init__(ws.config.state_dir, base.registry)
        self.slow = slow
        self.lock = lock_path(ws.config.state_dir, f"solution-{locked}")
        self.lock_free: list[bool] = []

    async def list_app_states(self) -> Mapping[str, AppFacts]:
        states = await super().list_app_states()
        try:
            async with held(self.lock, what="the test", wait=False):
                self.lock_free.append(True)
        except RefusedError:
            self.lock_free.append(False)
        if self.slow <= 0:
            return states
        self.slow -= 1
        return {name: replace(facts, running_status="Progressing") for name, facts in states.items()}


def test_a_member_waits_for_health_without_its_slot_or_its_lock(ws: Workspace) -> None:
    first, second = "acme-corp", "globex"  # in this order; both set MC_URL, so their new revisions run
    ws._platform = platform = StartingPlatform(ws, slow=2, locked=first)
    result, events = roll(ws, [first, second], concurrency=1)
    assert {(s["id"], s["state"], s["health"]) for s in result["solutions"]} == {
        (first, "succeeded", "healthy"), (second, "succeeded", "healthy")}
    lines = [(e.child, e.text) for e in events if isinstance(e, LogLine) and e.child]
    names = {i: azure_names(i).apps["orbit"] for i in (first, second)}
    written = next(n for n, (child, text) in enumerate(lines)
                   if child == second and text.startswith(f"updated app {names[second]}: image "))
    starting = [n for n, (child, text) in enumerate(lines) if child == first and text.endswith(": progressing "
                                                                                                "(starting)")]
    settled = [n for n, (child, text) in enumerate(lines) if child == first and text.endswith(": healthy")]
    assert starting and settled and written < settled[0]  # one slot, yet the second wrote while the first waited
    assert platform.lock_free and all(platform.lock_free)  # nobody waiting for health held the lock
