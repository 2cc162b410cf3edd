"""The engine's entries for fleet operations: plan a sweep, start a sweep or a roll, pick a retry, read a result.

Front ends (the CLI, the console, the demo) only plan → ask → start → render: they call
:func:`plan_sweep` (or ``orbit_ops.fleet.roll.plan_roll``), show the plan, and hand the confirmed plan to
:func:`start_sweep` (or :func:`start_roll`), which decides the operation's kind, target, member count and
body and returns its runner, as ``orbit_ops.build.pipeline.start_build`` does for builds. The retry of an
operation's failures (``--failed-from``) and the reading of a finished sweep's result live here too, so the
front ends agree on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orbit_ops.config.model import InvalidSolution, SolutionSpec
from orbit_ops.fleet.follow import DEFAULT_HEALTH_TIMEOUT, check_health_timeout, health_counts
from orbit_ops.fleet.planned import PlannedSolution
from orbit_ops.fleet.preflight import NO_PREFLIGHT, Preflight, check_planned
from orbit_ops.fleet.roll import RollPlan, roll_body
from orbit_ops.fleet.roll_layouts import save_layout
from orbit_ops.fleet.sweeps import DEFAULT_CONCURRENCY, check_concurrency, plan_many, refuse_unreleased, sweep_body
from orbit_ops.fleet.waved_roll import members, waved_roll_body
from orbit_ops.fleet.waves import WaveSettings, is_wave_child
from orbit_ops.operations.events import OperationFinished
from orbit_ops.operations.kinds import SWEEPING_KINDS, MemberState, OperationKind
from orbit_ops.operations.locks import DEFAULT_LOCK_TIMEOUT
from orbit_ops.operations.records import OperationRecord
from orbit_ops.operations.runner import OperationContext, OperationRunner, OperationStopped
from orbit_ops.workspace import Workspace


@dataclass(frozen=True, repr=False)
class SweepPlan:
    """What the operator confirms before a provision or a sweep, and what the operation then applies."""

    solutions: tuple[PlannedSolution, ...]
    invalid: tuple[InvalidSolution, ...] = ()
    everything: bool = False  # every solution (``--all``, ``R``): the target reads "all solutions"
    preflight: Preflight = NO_PREFLIGHT  # the solutions lacking a variable their new image requires

    @property
    def kind(self) -> OperationKind:
        """``sweep`` for every solution or several, ``provision`` for one."""
        return OperationKind.SWEEP if self.everything or len(self.solutions) > 1 else OperationKind.PROVISION

    @property
    def target(self) -> str:
        if self.everything:
            return "all solutions"
        return self.solutions[0].id if len(self.solutions) == 1 else f"{len(self.solutions)} solutions"

    @property
    def writes(self) -> int:
        """The write calls the confirmed plan makes: nothing to confirm when 0."""
        return sum(planned.writes for planned in self.solutions)

    @property
    def members(self) -> int:
        return len(self.solutions) + len(self.invalid)

    def __repr__(self) -> str:
        # Counts, not contents: asyncio formats the repr of a finished ``asyncio.run`` task's result (through
        # its SIGINT handler, decision 0014), and a fleet's plan holds every solution's desired and live state.
        return (f"SweepPlan(kind={self.kind.value!r}, target={self.target!r}, solutions={len(self.solutions)}, "
                f"invalid={len(self.invalid)}, writes={self.writes})")


async def plan_sweep(workspace: Workspace, specs: Sequence[SolutionSpec], invalid: Sequence[InvalidSolution] = (),
                     *, everything: bool = False, skip_unreleased: bool = False) -> SweepPlan:
    """Plan provisioning ``specs`` (and list the ``invalid`` files left untouched); writes nothing.

    Solutions named one by one are refused outright when a pin was never released; a sweep of every solution
    (``everything``), or one told to ``skip_unreleased``, plans such a solution as refused and goes on. Each
    app the plan would write is preflighted (``orbit_ops.fleet.preflight``): a warning, never a refusal.

    Raises:
        RefusedError: a named solution pins an unreleased version.
        BackendError: the platform could not be listed.
    """
    if not everything and not skip_unreleased:
        await asyncio.to_thread(refuse_unreleased, workspace, specs)
    planned, preflight = await check_planned(workspace, await plan_many(workspace, specs) if specs else [])
    return SweepPlan(tuple(planned), tuple(invalid), everything, preflight)


def start_sweep(workspace: Workspace, confirmed: SweepPlan, *, concurrency: int = DEFAULT_CONCURRENCY,
                wait: bool = True, lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
                health_timeout: float = DEFAULT_HEALTH_TIMEOUT) -> OperationRunner:
    """Record the provision or sweep of the ``confirmed`` plan; iterate ``.events()`` of the result to run it.

    The operation applies the confirmed plan, planning a solution again only when its file or its live
    state changed since (``orbit_ops.fleet.sweeps.sweep_body``), and follows each new revision for up to
    ``health_timeout`` seconds.

    Raises:
        InputError: ``concurrency`` is below 1, or ``health_timeout`` is not a number of seconds.
        BackendError: the operation store cannot be written.
    """
    check_concurrency(concurrency)
    check_health_timeout(health_timeout)

    async def body(ctx: OperationContext) -> dict[str, Any]:
        return await sweep_body(workspace, confirmed.solutions, ctx, concurrency=concurrency, wait=wait,
                                lock_timeout=lock_timeout, health_timeout=health_timeout, invalid=confirmed.invalid)

    return OperationRunner(workspace.operations(), confirmed.kind, confirmed.target, body, total=confirmed.members)


def start_roll(workspace: Workspace, confirmed: RollPlan, *, provision: bool = True,
               concurrency: int = DEFAULT_CONCURRENCY, wait: bool = True,
               lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT, health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
               invalid: Sequence[InvalidSolution] = ()) -> OperationRunner:
    """Record the roll of the ``confirmed`` pin changes (then one sweep unless not ``provision``); run ``.events()``.

    Raises:
        InputError: ``concurrency`` is below 1, or ``health_timeout`` is not a number of seconds.
        BackendError: the operation store cannot be written.
    """
    check_concurrency(concurrency)
    check_health_timeout(health_timeout)

    async def body(ctx: OperationContext) -> dict[str, Any]:
        result = await roll_body(workspace, confirmed, ctx, provision=provision, concurrency=concurrency, wait=wait,
                                 lock_timeout=lock_timeout, health_timeout=health_timeout, invalid=invalid)
        return result | preflight_json(confirmed.preflight)

    target = confirmed.target
    if invalid:
        target += f" + {len(invalid)} invalid file{'s' if len(invalid) != 1 else ''}"
    total = len(confirmed.changes) + len(confirmed.unchanged) + len(invalid)
    return OperationRunner(workspace.operations(), OperationKind.ROLL, target, body, total=total)


def start_waved_roll(workspace: Workspace, confirmed: RollPlan, settings: WaveSettings, *,
                     done: Sequence[int] = (), resumed_from: str | None = None,
                     concurrency: int = DEFAULT_CONCURRENCY, wait: bool = True,
                     lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT, health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
                     invalid: Sequence[InvalidSolution] = ()) -> OperationRunner:
    """Record the roll of the ``confirmed`` pin changes in the waves of ``settings``; run ``.events()``.

    ``done`` (with ``resumed_from``, the roll continued) are waves that succeeded before and are not run again.

    Raises:
        InputError: ``concurrency`` is below 1, or ``health_timeout`` is not a number of seconds.
        BackendError: the operation store cannot be written.
    """
    check_concurrency(concurrency)
    check_health_timeout(health_timeout)

    async def body(ctx: OperationContext) -> dict[str, Any]:
        try:
            result = await waved_roll_body(workspace, confirmed, settings, ctx, done=done, resumed_from=resumed_from,
                                           concurrency=concurrency, wait=wait, lock_timeout=lock_timeout,
                                           health_timeout=health_timeout, invalid=invalid)
        except OperationStopped as stopped:  # stopped between two waves: the result keeps what was confirmed too
            stopped.result.update(preflight_json(confirmed.preflight))
            raise
        return result | preflight_json(confirmed.preflight)

    target = f"{confirmed.target} in {len(settings.waves)} wave{'s' if len(settings.waves) != 1 else ''}"
    if resumed_from:
        target += f" (resuming {resumed_from})"
    runner = OperationRunner(workspace.operations(), OperationKind.ROLL, target, body,
                             total=members(confirmed, settings) + len(invalid))
    save_layout(workspace, runner.op_id, confirmed, settings, resumed_from, done)
    return runner


def preflight_json(preflight: Preflight) -> dict[str, Any]:
    """A roll's preflight in its result, as ``orbit plan --json`` has it: the solutions lacking a variable their
    new image requires (``{"id", "lacking": [...]}``) and why image configs could not be read."""
    return {"preflight": [{"id": solution_id, "lacking": [lack.to_json() for lack in lacks]}
                          for solution_id, lacks in sorted(preflight.lacking.items())],
            "preflight_warnings": list(preflight.warnings)}


@dataclass(frozen=True)
class RetrySelection:
    """The solutions to provision again when retrying operation ``record`` (``--failed-from``)."""

    record: OperationRecord
    ids: tuple[str, ...]


def retry_selection(workspace: Workspace, op_id: str) -> RetrySelection:
    """The members that failed in operation ``op_id`` (a unique prefix will do), in the order they appeared.

    Raises:
        NotFoundError: no such operation.
    """
    record = workspace.operations().get(op_id)
    return RetrySelection(record, failed_members(record))


def failed_members(record: OperationRecord) -> tuple[str, ...]:
    """The solutions that failed in a provision, sweep or roll, in the order they appeared (what a retry takes).

    The console retries an operation only once it ended (``record.finished``); ``--failed-from`` takes the
    failures so far.
    """
    if record.kind not in SWEEPING_KINDS:
        return ()
    return tuple(name for name, child in record.children.items()
                 if child.state == MemberState.FAILED and not is_wave_child(name))


@dataclass(frozen=True)
class SweepOutcome:
    """A finished provision, sweep or roll read for its operator: who converged, what was refused, the writes."""

    finished: OperationFinished

    @property
    def result(self) -> dict[str, Any]:
        return self.finished.result or {}

    @property
    def solutions(self) -> list[dict[str, Any]]:
        return list(self.result.get("solutions", []))

    @property
    def not_converged(self) -> list[dict[str, Any]]:
        """The solutions of the result that did not succeed (failed, skipped, invalid)."""
        return [solution for solution in self.solutions if solution["state"] != "succeeded"]

    @property
    def unhealthy(self) -> list[dict[str, Any]]:
        """The solutions that succeeded but whose health is not ``healthy`` (not followed, or an app not written)."""
        return [solution for solution in self.solutions
                if solution["state"] == "succeeded" and solution.get("health") not in (None, "healthy")]

    @property
    def health_counts(self) -> dict[str, int]:
        """How many solutions of the result are in each health, worst first (``{"degraded": 2, "healthy": 38}``)."""
        return health_counts(solution.get("health") for solution in self.solutions)

    @property
    def refused(self) -> list[dict[str, Any]]:
        """A roll's solutions whose pin was not changed, each with ``error`` and whether the input was to blame."""
        return list(self.result.get("refused", []))

    @property
    def converged(self) -> int:
        return len(self.solutions) - len(self.not_converged)

    @property
    def writes(self) -> int:
        return int(self.result.get("writes", 0))

    @property
    def only_input_refused(self) -> bool:
        """A roll that wrote nothing at all and was refused only for its input: ``orbit roll`` exits 2 then.

        A roll that wrote a pin or provisioned anything, or was cancelled, is a failed operation instead.
        """
        wrote = bool(self.result.get("pins")) or bool(self.result.get("writes"))
        return (bool(self.refused) and not wrote and all(item.get("input", True) for item in self.refused)
                and self.finished.state != "cancelled")
