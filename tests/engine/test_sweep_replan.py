"""A sweep applies the plan that was confirmed; a solution that changed since is planned again, and the log says so."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from orbit_ops.config.load import find_solution
from orbit_ops.config.pins import read_pin_file, write_pins
from orbit_ops.fleet import sweeps
from orbit_ops.fleet.entries import SweepPlan, plan_sweep, start_sweep
from orbit_ops.fleet.planned import PlannedSolution, describe, desired_changes, live_changes
from orbit_ops.fleet.provision import SolutionPlan, read_live
from orbit_ops.fleet.resources import App
from orbit_ops.names import azure_names
from orbit_ops.operations.events import LogLine, OperationFinished
from orbit_ops.workspace import Workspace

SOLUTION = "acme-corp"


@pytest.fixture
def ws(demo_workspace: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    workspace = Workspace.open(root)
    asyncio.run(_apply(workspace, asyncio.run(plan_sweep(workspace, workspace.solutions(), everything=True))))
    return Workspace.open(root)  # every solution converged (the demo left drift), read afresh


async def _apply(workspace: Workspace, confirmed: SweepPlan) -> tuple[OperationFinished, list[LogLine]]:
    events = [event async for event in start_sweep(workspace, confirmed).events()]
    finished = events[-1]
    assert isinstance(finished, OperationFinished) and finished.result is not None, finished
    return finished, [event for event in events if isinstance(event, LogLine)]


def _confirm(workspace: Workspace) -> SweepPlan:
    return asyncio.run(plan_sweep(workspace, [find_solution(workspace.config, SOLUTION)]))


def _stored_log(workspace: Workspace, op_id: str) -> list[str]:
    return [event.text for event in workspace.operations().read_events(op_id)
            if isinstance(event, LogLine) and event.child == SOLUTION]


def test_a_solution_edited_after_the_confirmation_is_planned_again_and_gets_its_current_desired_state(
        ws: Workspace) -> None:
    confirmed = _confirm(ws)
    assert confirmed.writes == 0  # what the operator confirmed: nothing to do
    spec = confirmed.solutions[0].spec
    version = "2.1.0" if spec.pin("agent") != "2.1.0" else "2.0.0"
    write_pins(read_pin_file(spec.path), {"agent": version})  # edited between the question and the apply

    finished, _ = asyncio.run(_apply(ws, confirmed))

    agent = azure_names(SOLUTION).apps["agent"]
    [solution] = finished.result["solutions"] if finished.result else []
    assert solution["state"] == "succeeded"
    assert [(a["name"], a["action"]) for a in solution["actions"] if a["action"] != "none"] == [(agent, "update")]
    live = asyncio.run(ws.platform().list_apps())[agent]
    assert live.image.endswith(f":{version}")  # the current desired state was applied, not the confirmed one
    [line] = [text for text in _stored_log(ws, finished.op_id) if text.startswith("re-planned")]
    assert "its solution file changed" in line and f"→ {version}" in line
    assert "confirmed: nothing to do" in line and f"applying: update app {agent}" in line


def test_a_solution_changed_live_after_the_confirmation_is_planned_again_and_converged(ws: Workspace) -> None:
    confirmed = _confirm(ws)
    assert confirmed.writes == 0
    platform = ws.platform()
    mc = azure_names(SOLUTION).apps["mc"]
    app = asyncio.run(platform.list_apps())[mc]
    asyncio.run(platform.update_app(replace(app, image=app.image.rsplit(":", 1)[0] + ":1.0.0")))  # by hand

    finished, _ = asyncio.run(_apply(ws, confirmed))

    assert finished.state == "succeeded" and finished.result is not None
    assert finished.result["writes"] == 1
    assert asyncio.run(platform.list_apps())[mc].image == app.image
    [line] = [text for text in _stored_log(ws, finished.op_id) if text.startswith("re-planned")]
    assert f"its live state changed (app {mc} changed: image " in line
    assert "confirmed: nothing to do" in line and f"applying: update app {mc}" in line


def test_an_unchanged_solution_gets_the_confirmed_plan_as_is(ws: Workspace,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    confirmed = _confirm(ws)

    def no_planning(*_args: object) -> SolutionPlan:
        raise AssertionError("the sweep planned a solution that had not changed")

    monkeypatch.setattr(sweeps, "plan_solution", no_planning)
    finished, lines = asyncio.run(_apply(ws, confirmed))
    assert finished.state == "succeeded"
    assert not [line for line in lines if line.text.startswith("re-planned")]
    assert "in sync: nothing to do" in [line.text for line in lines if line.child == SOLUTION]


def test_desired_and_live_changes_name_each_resource_that_differs(ws: Workspace) -> None:
    [planned] = _confirm(ws).solutions
    assert isinstance(planned, PlannedSolution) and planned.desired is not None and planned.live is not None
    desired = planned.desired
    agent = desired.app("agent")
    moved = replace(desired, apps=tuple(replace(a, image=a.image + "-rc") if a is agent else a for a in desired.apps))
    assert desired_changes(desired, desired) == []
    assert desired_changes(desired, moved) == [f"app {agent.name}: image {agent.image.rsplit(':', 1)[1]} → "
                                               f"{agent.image.rsplit(':', 1)[1]}-rc"]
    snapshot = asyncio.run(read_live(ws.platform(), ws.platform()))
    assert live_changes(desired, planned.live, snapshot) == []
    gone = replace(snapshot, apps={name: app for name, app in snapshot.apps.items() if name != agent.name})
    assert live_changes(desired, planned.live, gone) == [f"app {agent.name} disappeared"]
    assert live_changes(desired, gone, snapshot) == [f"app {agent.name} appeared"]
    assert describe(planned.plan) == "nothing to do"
    assert describe(None, "agent 9.9.9 has no release record") == "refused (agent 9.9.9 has no release record)"
    assert isinstance(snapshot.apps[agent.name], App)



def test_a_fleets_plan_shows_counts_in_its_repr_not_every_solutions_state(ws: Workspace) -> None:
    # asyncio formats the repr of asyncio.run's result (decision 0014): a plan of the fleet must stay short.
    confirmed = asyncio.run(plan_sweep(ws, ws.solutions(), everything=True))
    assert repr(confirmed) == (f"SweepPlan(kind='sweep', target='all solutions', solutions={len(ws.solutions())}, "
                               "invalid=0, writes=0)")
