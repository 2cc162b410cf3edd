"""A waved roll stopped by its operator between waves (decision 0061), its soak deadline, and the roll back of a
failed wave planned after the roll (decision 0062), on the demo's embedded backend.

The demo's orbit 1.3.0-rc.1 requires MC_URL, which every fourth demo solution lacks: a wave holding one fails
for that real reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from orbit_ops.errors import NotFoundError, RefusedError
from orbit_ops.fleet.entries import start_roll, start_waved_roll
from orbit_ops.fleet.preflight import check_roll
from orbit_ops.fleet.roll import plan_roll
from orbit_ops.fleet.roll_layouts import request_stop, resumable, stop_requested
from orbit_ops.fleet.wave_recovery import plan_resume, plan_wave_rollback, start_wave_rollback
from orbit_ops.fleet.waved_roll import soak_deadline
from orbit_ops.fleet.waves import WaveSettings, lay_out, parse_waves, wave_child
from orbit_ops.operations.events import ChildChanged, OperationFinished
from orbit_ops.workspace import Workspace

RC = "1.3.0-rc.1"


@pytest.fixture
def ws(demo_workspace: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    return Workspace.open(root)


def pin(ws: Workspace, solution_id: str) -> str:
    return next(spec for spec in ws.solutions() if spec.id == solution_id).pin("orbit")


async def waved(ws: Workspace, waves: str, *, soak: float = 0.0, stop_on: str | None = None,
                ids: int = 6) -> tuple[str, OperationFinished, list[ChildChanged]]:
    """Roll orbit RC in ``waves`` over the first ``ids`` solutions; ask for a stop when ``stop_on`` soaks."""
    specs = ws.solutions()[:ids]
    plan = await check_roll(ws, plan_roll(ws, "orbit", RC, specs))
    runner = start_waved_roll(ws, plan, WaveSettings(lay_out(specs, parse_waves(waves)), soak), health_timeout=20)
    seen: list[ChildChanged] = []
    finished = None
    async for event in runner.events():
        if isinstance(event, ChildChanged):
            seen.append(event)
            if event.child == stop_on and event.message.startswith("soaking until"):
                request_stop(ws, runner.op_id[:-1])  # a prefix, as the CLI takes it
        if isinstance(event, OperationFinished):
            finished = event
    assert finished is not None
    return runner.op_id, finished, seen


async def test_a_stop_lets_the_current_wave_finish_and_starts_no_later_one(ws: Workspace) -> None:
    untouched = {spec.id: pin(ws, spec.id) for spec in ws.solutions()[:6]}
    op_id, finished, _ = await waved(ws, "1,1,*", soak=2.0, stop_on=wave_child(1))  # asked during its soak
    result: dict[str, Any] = finished.result or {}
    assert finished.state == "cancelled" and finished.error == "stopped by operator after wave 1"
    assert [(w["index"], w["state"]) for w in result["waves"]] == [(1, "succeeded"), (2, "skipped"), (3, "skipped")]
    assert result["stopped_after"] == 1 and result["halted_at"] is None
    first = result["waves"][0]["solutions"][0]
    assert pin(ws, first) == RC  # the wave that was running finished
    for wave in result["waves"][1:]:
        for solution_id in wave["solutions"]:
            assert pin(ws, solution_id) == untouched[solution_id]  # no later wave wrote a pin
    record = ws.operations().get(op_id)
    assert record.state == "cancelled"
    assert {name: child.message for name, child in record.children.items() if child.state == "skipped"} == {
        name: "stopped by operator after wave 1"
        for name in ["wave 2", "wave 3", *result["waves"][1]["solutions"], *result["waves"][2]["solutions"]]}
    assert resumable(ws, op_id).done == (1,)  # resumable from wave 2
    earlier, plan = await plan_resume(ws, op_id)
    assert earlier.record.id == op_id and first in plan.unchanged


async def test_a_stop_is_refused_for_a_finished_roll_and_one_not_in_waves(ws: Workspace) -> None:
    op_id, finished, _ = await waved(ws, "1,*", ids=2)
    with pytest.raises(RefusedError, match=f"operation {op_id} already {finished.state}"):
        request_stop(ws, op_id)
    assert not stop_requested(ws, op_id)
    plain = start_roll(ws, plan_roll(ws, "orbit", "1.2.0", ws.solutions()[:1]))
    with pytest.raises(NotFoundError, match="is not a roll in waves"):
        request_stop(ws, plain.op_id)


async def test_a_soaking_wave_says_when_its_soak_ends(ws: Workspace) -> None:
    _, finished, seen = await waved(ws, "1,*", soak=1.0, ids=2)
    soaking = [event for event in seen if event.child == wave_child(1) and "soaking until" in event.message]
    assert soaking and soaking[0].state == "running"
    deadline = soak_deadline(soaking[0].message)
    assert deadline is not None and "(1 s)" in soaking[0].message
    assert finished.at[:10] == deadline.strftime("%Y-%m-%d")
    assert soak_deadline("1: rolling 1") is None


async def test_the_failed_wave_of_a_halted_roll_rolls_back_to_where_each_was(ws: Workspace) -> None:
    before = {spec.id: pin(ws, spec.id) for spec in ws.solutions()[:6]}
    op_id, finished, _ = await waved(ws, "1,2,*")  # 6 solutions: one lacks MC_URL, and fails its wave
    result = finished.result or {}
    halted = result["halted_at"]
    assert finished.state == "failed" and halted in (2, 3)
    back = await plan_wave_rollback(ws, op_id)
    failed_wave = result["waves"][halted - 1]["solutions"]
    assert sorted(change.id for change in back.changes) == sorted(failed_wave)
    assert all(change.before == RC and change.after == before[change.id] for change in back.changes)
    async for event in start_wave_rollback(ws, back, health_timeout=20).events():
        if isinstance(event, OperationFinished):
            assert event.result and event.result["rolls_back"] == {"op_id": op_id, "wave": halted}
    for solution_id in failed_wave:
        assert pin(ws, solution_id) == before[solution_id]
    for solution_id in result["waves"][0]["solutions"]:
        assert pin(ws, solution_id) == RC  # the wave that succeeded stays
    with pytest.raises(RefusedError, match=f"nothing of wave {halted} .* to roll back"):
        await plan_wave_rollback(ws, op_id)
