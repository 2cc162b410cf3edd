"""After a waved roll halted or was stopped: plan its resume, or the roll back of its failed wave (SPEC §3.7).

Both are planned here, shown by a front end (``orbit roll --resume``, the console's roll view) and then started
as operations of their own: the resume with :func:`orbit_ops.fleet.entries.start_waved_roll`, the roll back with
:func:`start_wave_rollback`. What was confirmed is what runs (decision 0062).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orbit_ops.errors import InputError, RefusedError
from orbit_ops.fleet.follow import DEFAULT_HEALTH_TIMEOUT, check_health_timeout
from orbit_ops.fleet.preflight import check_roll
from orbit_ops.fleet.roll import PinChange, RollPlan, plan_roll, roll_body
from orbit_ops.fleet.roll_layouts import Resumable, resumable, saved_layout
from orbit_ops.fleet.sweeps import DEFAULT_CONCURRENCY
from orbit_ops.fleet.waved_roll import _Progress
from orbit_ops.fleet.waves import Wave
from orbit_ops.operations.kinds import OperationKind
from orbit_ops.operations.locks import DEFAULT_LOCK_TIMEOUT
from orbit_ops.operations.records import OperationRecord
from orbit_ops.operations.runner import OperationContext, OperationRunner
from orbit_ops.workspace import Workspace


async def plan_resume(workspace: Workspace, op_id: str) -> tuple[Resumable, RollPlan]:
    """The waved roll ``op_id`` to continue, and the roll plan of its solutions as they are now (preflighted).

    Raises:
        NotFoundError: no such operation, or it is not a roll in waves.
        InputError: it still runs, every wave succeeded, it was resumed already, or a solution of its waves is
            gone or invalid now.
    """
    earlier = await asyncio.to_thread(resumable, workspace, op_id)
    wanted = {solution_id for wave in earlier.settings.waves for solution_id in wave.solutions}
    specs = [spec for spec in await asyncio.to_thread(workspace.solutions) if spec.id in wanted]
    missing = sorted(wanted - {spec.id for spec in specs})
    if missing:
        raise InputError(f"cannot resume {earlier.record.id}: solution(s) {', '.join(missing)} of its waves are "
                         "gone or invalid now")
    plan = await asyncio.to_thread(plan_roll, workspace, earlier.component, earlier.version, specs)
    return earlier, await check_roll(workspace, plan)


@dataclass(frozen=True)
class WaveRollback:
    """The failed wave of a waved roll, to pin back: one roll plan per version its solutions had before."""

    record: OperationRecord
    wave: Wave
    plans: tuple[RollPlan, ...]

    @property
    def changes(self) -> tuple[PinChange, ...]:
        return tuple(change for plan in self.plans for change in plan.changes)

    @property
    def target(self) -> str:
        count = len(self.changes)
        return (f"{self.plans[0].component} back: wave {self.wave.index} of {self.record.id} "
                f"→ {count} solution{'s' if count != 1 else ''}")


async def plan_wave_rollback(workspace: Workspace, op_id: str) -> WaveRollback:
    """The roll back of the wave at which waved roll ``op_id`` halted: each of its solutions the roll re-pinned,
    and still pinned so, goes back to the pin it had (a floating ``latest`` as ``latest``).

    Raises:
        NotFoundError: no such operation, or it is not a roll in waves.
        RefusedError: it still runs, did not halt at a wave, or left nothing of that wave to pin back (rolled
            back already, or pinned otherwise since).
    """
    record = await asyncio.to_thread(workspace.operations().get, op_id)
    layout = await asyncio.to_thread(saved_layout, workspace, record.id)
    if not record.finished:
        raise RefusedError(f"operation {record.id} is still {record.state}: roll a wave back once it ended")
    result = record.result or {}
    halted = result.get("halted_at")
    wave = next((wave for wave in layout.settings.waves if wave.index == halted), None)
    if wave is None:
        raise RefusedError(f"roll {record.id} did not halt at a failed wave: there is no wave to roll back")
    done = set(result.get("rolled_back", []))
    current = {spec.id: spec for spec in await asyncio.to_thread(workspace.solutions)}
    before: dict[str, str] = {}
    for pin in result.get("pins", []):
        solution_id = str(pin.get("id"))
        spec = current.get(solution_id)
        if (solution_id in wave.solutions and solution_id not in done and spec is not None
                and pin.get("component") == layout.component and spec.pin(layout.component) == pin.get("to")):
            before[solution_id] = str(pin["from"])
    if not before:
        raise RefusedError(f"nothing of wave {wave.index} of {record.id} to roll back: its solutions are not on "
                           f"{layout.component} {layout.version} from this roll (rolled back already, or re-pinned)")
    plans = []
    for version in sorted(set(before.values())):
        specs = [current[solution_id] for solution_id, pin in before.items() if pin == version]
        plan = await asyncio.to_thread(functools.partial(plan_roll, workspace, layout.component, version, specs,
                                                         allow_latest=True))
        plans.append(await check_roll(workspace, plan))
    return WaveRollback(record, wave, tuple(plans))


def start_wave_rollback(workspace: Workspace, confirmed: WaveRollback, *, concurrency: int = DEFAULT_CONCURRENCY,
                        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
                        health_timeout: float = DEFAULT_HEALTH_TIMEOUT) -> OperationRunner:
    """Record the roll back of the ``confirmed`` wave (a ``roll``: pins, then a sweep, per previous version).

    Raises:
        InputError: ``health_timeout`` is not a number of seconds.
        BackendError: the operation store cannot be written.
    """
    check_health_timeout(health_timeout)
    total = sum(len(plan.changes) + len(plan.unchanged) for plan in confirmed.plans)

    async def body(ctx: OperationContext) -> dict[str, Any]:
        progress = _Progress(ctx, total)
        merged: dict[str, Any] = {"component": confirmed.plans[0].component,
                                  "version": confirmed.plans[0].version if len(confirmed.plans) == 1 else None,
                                  "pins": [], "unchanged": [], "refused": [], "invalid": [], "solutions": [],
                                  "writes": 0, "rolls_back": {"op_id": confirmed.record.id,
                                                              "wave": confirmed.wave.index}}
        for plan in confirmed.plans:
            ctx.log(f"rolling back {', '.join(change.id for change in plan.changes)} to {plan.component} "
                    f"{plan.version} (wave {confirmed.wave.index} of {confirmed.record.id})")
            size, start = len(plan.changes) + len(plan.unchanged), progress.done
            rolled = await roll_body(workspace, plan, progress.shifted(size), provision=True,
                                     concurrency=concurrency, lock_timeout=lock_timeout,
                                     health_timeout=health_timeout)
            progress.done = start
            progress.add(size)
            for key in ("pins", "unchanged", "refused", "invalid", "solutions"):
                merged[key] += rolled.get(key, [])
            merged["writes"] += rolled.get("writes", 0)
        return merged

    return OperationRunner(workspace.operations(), OperationKind.ROLL, confirmed.target, body, total=total)


def layout_lines(plan: RollPlan, waves: Sequence[Wave], done: Sequence[int] = ()) -> list[str]:
    """The wave layout as an operator confirms it: per wave its selector, then each solution's pin change and
    labels (``    globex: orbit 1.2.0 → 1.3.0-rc.1  [ring=early]``)."""
    changes = {change.id: change for change in plan.changes}
    lines = []
    for wave in waves:
        lines.append(f"wave {wave.index} ({wave.selector}): {len(wave.solutions)} solution(s)"
                     + (" — succeeded before, not run again" if wave.index in done else ""))
        for solution_id in wave.solutions:
            spec = plan.specs.get(solution_id)
            labels = ",".join(f"{k}={v}" for k, v in sorted(spec.labels.items())) if spec else ""
            pending = changes.get(solution_id)
            lines.append(f"    {solution_id}: " + (pending.describe() if pending else f"already on {plan.version}")
                         + (f"  [{labels}]" if labels else ""))
    return lines
