"""Provisioning on the local platform: reconcile, idempotence, sweeps, locks, races."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from support import record_platform_calls

from orbit_ops.backends.local.builder import LocalBuilder
from orbit_ops.backends.local.platform import LocalPlatform
from orbit_ops.errors import BackendError
from orbit_ops.fleet.entries import SweepPlan, plan_sweep, start_sweep
from orbit_ops.fleet.provision import read_live
from orbit_ops.fleet.resources import App
from orbit_ops.fleet.sweeps import plan_many, statuses, sweep_body
from orbit_ops.names import azure_names
from orbit_ops.operations.events import ChildChanged, Event, OperationFinished
from orbit_ops.operations.locks import held, lock_path
from orbit_ops.workspace import Workspace


@pytest.fixture
def ws(demo_workspace: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    return Workspace.open(root)


def sweep(ws: Workspace, ids: list[str] | None = None, **options: Any) -> tuple[dict[str, Any], list[Event]]:
    specs = [s for s in ws.solutions() if ids is None or s.id in ids]

    async def run() -> tuple[dict[str, Any], list[Event]]:
        confirmed: SweepPlan = await plan_sweep(ws, specs, everything=ids is None, skip_unreleased=True)
        events = [e async for e in start_sweep(ws, confirmed, **options).events()]
        finished = events[-1]
        assert isinstance(finished, OperationFinished), finished
        assert finished.result is not None, finished.error
        return finished.result, events

    return asyncio.run(run())


def test_second_provision_writes_nothing(ws: Workspace) -> None:
    first, _ = sweep(ws)
    assert first["writes"] > 0  # the demo left drift and unprovisioned solutions
    record_platform_calls(ws)
    again, _ = sweep(ws)
    assert again["writes"] == 0
    assert ws.platform().writes == 0
    states = {s["id"]: s["state"] for s in again["solutions"]}
    assert states["acme-corp"] == "succeeded"


def test_provision_creates_missing_and_fixes_drift_then_converges(ws: Workspace) -> None:
    platform = ws.platform()
    before = statuses(ws, ws.solutions(), asyncio.run(read_live(platform, platform)))
    broken = {s.id for s in before if s.sync in ("drifted", "missing") and s.freshness != "unreleased"}
    assert broken, "the demo leaves drift and unprovisioned solutions"
    result, events = sweep(ws)
    assert result["writes"] > 0
    unreleased = [s for s in result["solutions"] if s["state"] == "skipped"]
    assert len(unreleased) == 1 and "has no release record" in unreleased[0]["error"]
    after = statuses(ws, ws.solutions(), asyncio.run(read_live(platform, platform)))
    assert {s.id for s in after if s.sync != "synced"} == {unreleased[0]["id"]}
    children = {e.child for e in events if isinstance(e, ChildChanged) and e.state == "succeeded"}
    assert broken <= children
    assert sweep(ws)[0]["writes"] == 0


def test_status_reads_the_fleet_with_listings_not_per_app(ws: Workspace) -> None:
    platform = record_platform_calls(ws)
    statuses(ws, ws.solutions(), asyncio.run(read_live(platform, platform)))
    assert sorted(method for method, _ in platform.calls) == ["list_apps", "list_shares", "list_storages"]


class RacingPlatform(LocalPlatform):
    """Another process creates the mc app (differently) between our snapshot and our create."""

    def __init__(self, state_dir: Path, app_name: str) -> None:
        super().__init__(state_dir, LocalBuilder(state_dir).local_registry)  # pulls as the workspace's does
        self.other = LocalPlatform(state_dir)
        self.app_name = app_name

    async def create_app(self, app: App) -> None:
        if app.name == self.app_name:
            await self.other.create_app(App(name=app.name, image="oci:.orbit/registry/mc:1.0.0"))
        await super().create_app(app)


def test_create_that_meets_exists_reconciles(ws: Workspace) -> None:
    spec = next(s for s in ws.solutions() if s.id == "zorg-industries")  # not provisioned by the demo
    names = azure_names(spec.id)
    ws._platform = RacingPlatform(ws.config.state_dir, names.apps["mc"])
    result, _ = sweep(ws, [spec.id])
    [solution] = result["solutions"]
    assert solution["state"] == "succeeded"
    mc = next(a for a in solution["actions"] if a["name"] == names.apps["mc"])
    assert mc["action"] == "update" and any(c.startswith("image 1.0.0 →") for c in mc["changes"])
    assert result["writes"] == 9  # 8 creates, one of which met "exists", plus the reconciling update
    ws._platform = None
    assert sweep(ws, [spec.id])[0]["writes"] == 0


class FlakyPlatform(LocalPlatform):
    """Fails every write for one solution's apps; counts solutions in flight."""

    def __init__(self, state_dir: Path, failing: str) -> None:
        super().__init__(state_dir, LocalBuilder(state_dir).local_registry)  # pulls as the workspace's does
        self.failing = azure_names(failing).h
        self.in_flight = 0
        self.most = 0

    async def create_share(self, share: Any) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0)  # let other solutions start
            await super().create_share(share)
        finally:
            self.in_flight -= 1

    async def create_app(self, app: App) -> None:
        if self.failing in app.name:
            raise BackendError(f"the platform refused {app.name}: 503 Service Unavailable")
        await super().create_app(app)


def test_sweep_continues_past_a_failed_solution_with_bounded_concurrency(ws: Workspace, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    shutil.copytree(ws.config.root, fresh, symlinks=True)
    (fresh / ".orbit" / "platform.sqlite").unlink()
    for leftover in (fresh / ".orbit").glob("platform.sqlite-*"):
        leftover.unlink()
    shutil.rmtree(fresh / ".orbit" / "shares", ignore_errors=True)
    workspace = Workspace.open(fresh)
    flaky = FlakyPlatform(workspace.config.state_dir, failing="globex")
    workspace._platform = flaky
    result, _ = sweep(workspace, None, concurrency=3)
    states = {s["id"]: s for s in result["solutions"]}
    assert states["globex"]["state"] == "failed" and "503" in states["globex"]["error"]
    assert sum(1 for s in states.values() if s["state"] == "succeeded") == len(states) - 2  # + the unreleased one
    assert 1 < flaky.most <= 3


def test_locked_solution_waits_or_fails_fast(ws: Workspace) -> None:
    async def scenario() -> tuple[dict[str, Any], list[str]]:
        path = lock_path(ws.config.state_dir, "solution-globex")
        async with held(path, what="solution globex"):
            specs = [s for s in ws.solutions() if s.id == "globex"]
            logs: list[str] = []

            class Ctx:
                op_id = "test"
                kind = "sweep"

                def log(self, text: str, child: str | None = None) -> None:
                    logs.append(text)

                def progress(self, done: int, total: int | None = None) -> None:
                    pass

                def child(self, child_id: str, state: str, message: str = "") -> None:
                    pass

            planned = await plan_many(ws, specs)
            fast = await sweep_body(ws, planned, Ctx(), wait=False)
            waiting = asyncio.create_task(sweep_body(ws, planned, Ctx(), wait=True))
            await asyncio.sleep(0.5)
            assert not waiting.done()
        await asyncio.wait_for(waiting, 10)
        return fast, logs

    fast, logs = asyncio.run(scenario())
    assert fast["solutions"][0]["state"] == "failed"
    assert "busy" in fast["solutions"][0]["error"]
    assert any(line.startswith("waiting for solution globex: held by process ") for line in logs)


def test_fleet_status_and_last_operation_per_solution(ws: Workspace) -> None:
    from orbit_ops.fleet.status import fleet_status, last_operations

    rows, snapshot = asyncio.run(fleet_status(ws))
    assert len(rows) == 40 and snapshot.error is None
    last = last_operations(ws)
    assert last["acme-corp"].kind == "sweep" and last["acme-corp"].state == "succeeded"
    assert "zorg-industries" not in last  # the demo never provisioned it
    sweep(ws, ["zorg-industries"])
    assert last_operations(ws)["zorg-industries"].state == "succeeded"


def test_fleet_status_of_a_platform_that_cannot_be_listed_is_unknown_with_the_reason(ws: Workspace) -> None:
    from orbit_ops.errors import BackendError
    from orbit_ops.fleet.status import fleet_status

    async def refused() -> dict[str, object]:
        raise BackendError("list the environment storages of orbit-demo: Azure answered 503 (ServiceUnavailable)")

    ws.platform().list_storages = refused  # type: ignore[method-assign]
    rows, snapshot = asyncio.run(fleet_status(ws))
    assert snapshot.error is not None and "503" in snapshot.error
    assert len(rows) == 40 and {row.sync for row in rows} == {"unknown"}
    assert all(row.reason == snapshot.error for row in rows if row.id == "acme-corp")


def test_statuses_judged_while_the_listings_are_read_are_those_judged_after(ws: Workspace) -> None:
    from orbit_ops.fleet.status import read_live_with_health, read_statuses

    platform = ws.platform()
    specs = ws.solutions()
    after = statuses(ws, specs, asyncio.run(read_live_with_health(platform, platform)))
    meanwhile, snapshot = asyncio.run(read_statuses(ws, specs))
    assert meanwhile == after and [row.id for row in meanwhile] == [spec.id for spec in specs]
    assert {"synced", "drifted", "missing"} <= {row.sync for row in meanwhile}
    assert any(row.freshness == "unreleased" and row.reason for row in meanwhile)  # a pin with no release
    assert snapshot.health is not None


def test_a_listing_that_fails_fails_the_statuses_judged_meanwhile(ws: Workspace) -> None:
    from orbit_ops.fleet.status import read_statuses

    class Unreadable(LocalPlatform):
        async def list_storages(self) -> Any:
            await asyncio.sleep(0)
            raise BackendError("list the storages of environment orbit-env: Azure answered 500 (InternalError)")

    ws._platform = Unreadable(ws.config.state_dir)
    with pytest.raises(BackendError, match="Azure answered 500"):
        asyncio.run(read_statuses(ws, ws.solutions()))
