"""A roll in waves (SPEC §3.7): wave by wave, re-pin, provision, check health, soak; halt or roll back on failure.

One operation: a member per solution and one per wave (``wave 1``, … — never a solution id, which holds no
space). Each wave is an ordinary roll of its solutions (:func:`orbit_ops.fleet.roll.roll_body`: pins written
under each solution's lock, then one sweep, which follows the new revisions to health and reports each
member's health), then, for ``soak`` seconds, a watch of it: a solution that ends failed or skipped, or whose
apps are ``degraded`` when its sweep ends or at any read of the soak, is unhealthy. More than ``max_unhealthy``
unhealthy solutions fail the wave; no later wave starts (their solutions end ``skipped``) and, with
``on_failure="rollback"``, the failed wave's re-pinned solutions are pinned back to the version each had and
provisioned. An operator's stop (:func:`request_stop`) is taken between two waves: the roll ends ``cancelled``
after the wave it was in, resumable (decision 0061).

The layout and the roll's settings are written to ``.orbit/rolls/<operation>.json`` before the first wave,
so ``orbit roll --resume OP`` continues from the first wave that did not succeed, never redoing one that did
(decision 0059); the layout and stop files are ``orbit_ops.fleet.roll_layouts``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from orbit_ops.config.model import InvalidSolution
from orbit_ops.errors import OrbitError
from orbit_ops.fleet.follow import DEFAULT_HEALTH_TIMEOUT
from orbit_ops.fleet.health import Health
from orbit_ops.fleet.roll import RollPlan, plan_roll, roll_body
from orbit_ops.fleet.roll_layouts import stop_requested
from orbit_ops.fleet.sweeps import DEFAULT_CONCURRENCY, SweepContext
from orbit_ops.fleet.wait import POLL_INTERVAL, read_solution_health
from orbit_ops.fleet.waves import Wave, WaveSettings, wave_child
from orbit_ops.operations.kinds import MemberState
from orbit_ops.operations.locks import DEFAULT_LOCK_TIMEOUT
from orbit_ops.operations.runner import OperationStopped
from orbit_ops.workspace import Workspace

SOAK_NOTE_EVERY = 30.0  # seconds between two "soaking" lines in the log
SOAKING = "soaking until "  # a soaking wave's member message: "soaking until 2026-12-02T06:10:30Z (60 s)"
_SOAK_UNTIL = re.compile(r"soaking until (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")
STOPPED_BY_OPERATOR = "stopped by operator"


def soak_deadline(message: str) -> datetime | None:
    """When a soaking wave's soak ends, read from its member message (None: the wave is not soaking)."""
    found = _SOAK_UNTIL.search(message)
    return datetime.strptime(found[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if found else None


def members(plan: RollPlan, settings: WaveSettings) -> int:
    """The roll's member count: its solutions and its waves."""
    return len(plan.changes) + len(plan.unchanged) + len(settings.waves)


# -- the body ------------------------------------------------------------------------------------------------


async def waved_roll_body(workspace: Workspace, plan: RollPlan, settings: WaveSettings, ctx: SweepContext, *,
                          done: Sequence[int] = (), resumed_from: str | None = None,
                          invalid: Sequence[InvalidSolution] = (),
                          concurrency: int = DEFAULT_CONCURRENCY, wait: bool = True,
                          lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
                          health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
                          interval: float = POLL_INTERVAL) -> dict[str, Any]:
    """Roll ``plan`` wave by wave (see the module's docstring); returns the roll's result JSON plus ``waves``,
    ``halted_at`` (the failed wave's index, or None) and ``rolled_back`` (ids pinned back and provisioned).

    ``done`` are the indexes of waves that succeeded in the roll ``resumed_from``: they are not run again.
    The ``invalid`` solution files of the selection are members in state ``invalid``, in no wave, untouched.
    """
    total = members(plan, settings) + len(invalid)
    progress = _Progress(ctx, total)
    result: dict[str, Any] = {"component": plan.component, "version": plan.version, "pins": [], "unchanged": [],
                              "refused": [], "invalid": [], "solutions": [], "writes": 0, "waves": [],
                              "halted_at": None, "rolled_back": []}
    if resumed_from:
        result["resumed_from"] = resumed_from
    for entry in invalid:
        ctx.child(entry.id, MemberState.INVALID, str(entry.error))
        ctx.log(f"invalid, left untouched: {entry.error}", child=entry.id)
        result["invalid"].append(entry.to_json())
    progress.add(len(invalid))
    for wave in settings.waves:
        ctx.child(wave_child(wave.index), MemberState.QUEUED, f"{wave.selector}: {len(wave.solutions)} solution(s)")
    halted: Wave | None = None
    stopped: str | None = None  # why no later wave starts: the operator asked for a stop (see request_stop)
    last = max((wave.index for wave in settings.waves if wave.index not in done), default=0)
    for wave in settings.waves:
        name = wave_child(wave.index)
        if halted is None and stopped is None and wave.index not in done and stop_requested(workspace, ctx.op_id):
            previous = [earlier.index for earlier in settings.waves if earlier.index < wave.index]
            stopped = (f"{STOPPED_BY_OPERATOR} after wave {previous[-1]}" if previous
                       else f"{STOPPED_BY_OPERATOR} before wave {wave.index}")
            result["stopped_after"] = previous[-1] if previous else 0
            ctx.log(f"{stopped}: no later wave starts (orbit roll --resume {ctx.op_id} continues from wave "
                    f"{wave.index})")
        if halted is not None or stopped is not None:
            why = stopped or f"not started: wave {halted.index if halted else 0} failed"
            ctx.child(name, MemberState.SKIPPED, why)
            for solution_id in wave.solutions:
                ctx.child(solution_id, MemberState.SKIPPED, why)
                result["solutions"].append({"id": solution_id, "state": "skipped", "actions": [], "error": why})
            result["waves"].append({**wave.to_json(), "state": "skipped", "failed": []})
            progress.add(len(wave.solutions) + 1)
            continue
        if wave.index in done:
            for solution_id in wave.solutions:
                ctx.child(solution_id, MemberState.SUCCEEDED, f"wave {wave.index} succeeded in {resumed_from}")
            ctx.child(name, MemberState.SUCCEEDED, f"succeeded in {resumed_from}; not run again")
            result["waves"].append({**wave.to_json(), "state": "succeeded", "failed": [], "earlier": resumed_from})
            progress.add(len(wave.solutions) + 1)
            continue
        unhealthy = await _run_wave(workspace, plan, settings, wave, ctx, progress, result, concurrency=concurrency,
                                    wait=wait, lock_timeout=lock_timeout, health_timeout=health_timeout,
                                    interval=interval)
        failed = len(unhealthy) > settings.max_unhealthy
        verdict = (f"{len(unhealthy)} of {len(wave.solutions)} unhealthy (allowed: {settings.max_unhealthy})"
                   + (f": {', '.join(sorted(unhealthy))}" if unhealthy else ""))
        result["waves"].append({**wave.to_json(), "state": "failed" if failed else "succeeded",
                                "failed": sorted(unhealthy)})
        if failed:
            halted = wave
            result["halted_at"] = wave.index
            ctx.log(f"wave {wave.index} failed: {verdict}; no later wave starts")
            if settings.on_failure == "rollback":
                result["rolled_back"] = await _roll_back(workspace, plan, wave, ctx, concurrency=concurrency,
                                                         wait=wait, lock_timeout=lock_timeout,
                                                         health_timeout=health_timeout)
            ctx.child(name, MemberState.FAILED, verdict + (" — rolled back" if result["rolled_back"] else ""))
        else:
            ctx.log(f"wave {wave.index} succeeded: {verdict}")
            ctx.child(name, MemberState.SUCCEEDED, verdict)
        progress.add(1)
        if wave.index == last and halted is None and stop_requested(workspace, ctx.op_id):
            ctx.log("a stop was requested during the last wave: no later wave was left to stop")
    if stopped is not None:
        raise OperationStopped(stopped, result)
    return result


async def _run_wave(workspace: Workspace, plan: RollPlan, settings: WaveSettings, wave: Wave, ctx: SweepContext,
                    progress: _Progress, result: dict[str, Any], *, concurrency: int, wait: bool,
                    lock_timeout: float | None, health_timeout: float, interval: float) -> set[str]:
    """Roll one wave, then judge and soak it; returns its unhealthy solutions (and adds its result to ``result``)."""
    ctx.log(f"wave {wave.index} of {len(settings.waves)} ({wave.selector}): {', '.join(wave.solutions) or 'empty'}")
    ctx.child(wave_child(wave.index), MemberState.RUNNING, f"{wave.selector}: rolling {len(wave.solutions)}")
    if not wave.solutions:
        return set()
    sub = sub_plan(plan, wave.solutions)
    rolled = await roll_body(workspace, sub, progress.shifted(len(wave.solutions)), provision=True,
                             concurrency=concurrency, wait=wait, lock_timeout=lock_timeout,
                             health_timeout=health_timeout)
    for key in ("pins", "unchanged", "refused", "solutions"):
        result[key] += rolled.get(key, [])
    result["writes"] += rolled.get("writes", 0)
    unhealthy = {str(entry["id"]) for entry in rolled.get("refused", [])}
    unhealthy |= {str(entry["id"]) for entry in rolled.get("solutions", []) if entry.get("state") != "succeeded"}
    # The sweep followed each new revision and read every member's health as it ended: a member it left
    # succeeded but degraded (one that wrote no app, say) is unhealthy too, with no read of our own.
    degraded = {str(entry["id"]): str(entry.get("health_reason") or "degraded") for entry in rolled.get("solutions", [])
                if entry.get("state") == "succeeded" and entry.get("health") == "degraded"}
    for solution_id, why in degraded.items():
        ctx.child(solution_id, MemberState.FAILED, f"degraded: {why}")
    soaks = settings.soak > 0 and len(unhealthy) + len(degraded) <= settings.max_unhealthy
    for entry in rolled.get("solutions", []):  # the health the sweep read for each converged member, as it is
        if entry.get("state") == "succeeded" and entry["id"] not in degraded and entry.get("health"):
            ctx.child(str(entry["id"]), MemberState.SUCCEEDED, f"health {entry['health']}"
                      + (" · soaking" if soaks else ""))
    if soaks:
        watched = [solution_id for solution_id in wave.solutions if solution_id not in unhealthy | set(degraded)]
        degraded |= await _soak(workspace, watched, settings, wave, ctx, len(unhealthy) + len(degraded), interval)
    for entry in result["solutions"]:
        if entry["id"] in degraded:  # converged, but its new revision does not run: the roll failed for it
            entry.update(state="failed", error=f"degraded: {degraded[entry['id']]}")
    return unhealthy | set(degraded)


async def _soak(workspace: Workspace, ids: Sequence[str], settings: WaveSettings, wave: Wave, ctx: SweepContext,
                already: int, interval: float) -> dict[str, str]:
    """Watch the wave's healthy solutions for ``settings.soak`` seconds; returns those seen ``degraded``, with why.

    The first read comes one interval after the sweep's own; the soak stops early once the wave has more
    unhealthy solutions (``already`` of them before it) than it may have: it has failed then.
    """
    if not ids:
        return {}
    platform = workspace.platform()
    deadline = time.monotonic() + settings.soak
    until = (datetime.now(UTC) + timedelta(seconds=settings.soak)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ctx.child(wave_child(wave.index), MemberState.RUNNING, f"{SOAKING}{until} ({settings.soak:g} s)")
    ctx.log(f"wave {wave.index}: soaking for {settings.soak:g} s, until {until}")
    degraded: dict[str, str] = {}
    health: dict[str, str] = {}  # each watched solution's health at the last read
    noted = started = time.monotonic()
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(interval, left))
        for solution in await read_solution_health(platform, ids):
            health[solution.id] = solution.health.value
            if solution.health is Health.DEGRADED and solution.id not in degraded:
                degraded[solution.id] = solution.health_reason or "degraded"
                ctx.child(solution.id, MemberState.FAILED, f"degraded: {solution.health_reason}")
                ctx.log(f"degraded during the soak: {solution.health_reason}", child=solution.id)
        if already + len(degraded) > settings.max_unhealthy:
            break
        if time.monotonic() - noted >= SOAK_NOTE_EVERY:
            noted = time.monotonic()
            ctx.log(f"wave {wave.index}: soaking, {max(0.0, deadline - time.monotonic()):.0f} s left")
    cut = already + len(degraded) > settings.max_unhealthy
    for solution_id in ids:
        if solution_id not in degraded and solution_id in health:
            ctx.child(solution_id, MemberState.SUCCEEDED,
                      f"health {health[solution_id]} · " + ("soak cut short: the wave failed" if cut else
                                                           f"soaked {time.monotonic() - started:.0f} s"))
    return degraded


async def _roll_back(workspace: Workspace, plan: RollPlan, wave: Wave, ctx: SweepContext, *, concurrency: int,
                     wait: bool, lock_timeout: float | None, health_timeout: float) -> list[str]:
    """Pin the wave's re-pinned solutions back to the version each had, and provision them; returns those done."""
    before = {change.id: change.before for change in plan.changes if change.id in wave.solutions}
    back: list[str] = []
    quiet = _Quiet(ctx)
    for version in sorted(set(before.values())):
        ids = [solution_id for solution_id, pin in before.items() if pin == version]
        workspace.refresh()
        specs = [spec for spec in workspace.solutions() if spec.id in ids]
        ctx.log(f"rolling back {', '.join(ids)} to {plan.component} {version}")
        try:
            undo = plan_roll(workspace, plan.component, version, specs, allow_latest=True)
        except OrbitError as exc:
            ctx.log(f"could not roll back {', '.join(ids)}: {exc}")
            continue
        rolled = await roll_body(workspace, undo, quiet, provision=True, concurrency=concurrency, wait=wait,
                                 lock_timeout=lock_timeout, health_timeout=health_timeout)
        converged = {str(entry["id"]) for entry in rolled.get("solutions", []) if entry.get("state") == "succeeded"}
        for solution_id in ids:
            if solution_id in converged:
                back.append(solution_id)
                ctx.child(solution_id, MemberState.FAILED, f"rolled back to {plan.component} {version}")
                ctx.log(f"rolled back to {plan.component} {version}", child=solution_id)
            else:
                ctx.child(solution_id, MemberState.FAILED, f"roll back to {plan.component} {version} failed")
    return sorted(back)


def sub_plan(plan: RollPlan, ids: Sequence[str]) -> RollPlan:
    """The part of ``plan`` for the solutions ``ids``."""
    wanted = set(ids)
    return replace(plan, changes=tuple(change for change in plan.changes if change.id in wanted),
                   unchanged=tuple(solution_id for solution_id in plan.unchanged if solution_id in wanted),
                   files={key: value for key, value in plan.files.items() if key in wanted},
                   specs={key: value for key, value in plan.specs.items() if key in wanted})


class _Progress:
    """The roll's progress over all its members, as each wave's roll reports its own."""

    def __init__(self, ctx: SweepContext, total: int) -> None:
        self.ctx = ctx
        self.total = total
        self.done = 0

    def add(self, count: int) -> None:
        self.done += count
        self.ctx.progress(self.done, self.total)

    def shifted(self, size: int) -> _Shifted:
        return _Shifted(self, size)


class _Shifted:
    """A wave's roll's context: its progress counts on from the waves before it; the rest passes through."""

    def __init__(self, progress: _Progress, size: int) -> None:
        self._progress = progress
        self._start = progress.done
        self._size = size

    @property
    def op_id(self) -> str:
        return self._progress.ctx.op_id

    @property
    def kind(self) -> str:
        return self._progress.ctx.kind

    def log(self, text: str, child: str | None = None) -> None:
        self._progress.ctx.log(text, child)

    def progress(self, done: int, total: int | None = None) -> None:
        self._progress.done = self._start + min(done, self._size)
        self._progress.ctx.progress(self._progress.done, self._progress.total)

    def child(self, child_id: str, state: MemberState, message: str = "") -> None:
        self._progress.ctx.child(child_id, state, message)


class _Quiet(_Shifted):
    """A rollback's context: it logs, but moves neither the roll's progress nor its members (the roll says how
    each rolled-back solution ended)."""

    def __init__(self, ctx: SweepContext) -> None:
        super().__init__(_Progress(ctx, 0), 0)

    def progress(self, done: int, total: int | None = None) -> None:
        pass

    def child(self, child_id: str, state: MemberState, message: str = "") -> None:
        pass


def outcome_lines(result: Mapping[str, Any]) -> list[str]:
    """The waves of a finished roll in a line each, for the operator: ``wave 2 (25%): failed: globex, hooli``."""
    lines = []
    for wave in result.get("waves", []):
        failed = f": {', '.join(wave['failed'])}" if wave.get("failed") else ""
        lines.append(f"wave {wave['index']} ({wave['selector']}): {wave['state']}{failed}")
    if result.get("halted_at") is not None:
        lines.append(f"halted at wave {result['halted_at']}"
                     + (f"; rolled back: {', '.join(result['rolled_back'])}" if result.get("rolled_back") else ""))
    return lines

