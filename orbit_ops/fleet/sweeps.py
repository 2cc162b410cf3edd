"""Provisioning many solutions as one operation: bounded concurrency, per-solution locks and results.

A sweep reads the live platform with listings, not a read per app (on the local backend the listing
``plan_many`` made is reused while nothing changed), then converges each solution with at most
``concurrency`` in flight. A failed solution is reported and the sweep goes on; the result lists
every solution's state and actions, and ``writes`` counts every write call made.
One operation per solution at a time across processes: each solution is converged under its lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from orbit_ops.bulk import bulk_built
from orbit_ops.config.model import InvalidSolution, SolutionSpec
from orbit_ops.errors import InputError, OrbitError, RefusedError
from orbit_ops.fleet.drift import ReleaseIndex, desired_for, solution_status
from orbit_ops.fleet.provision import (
    ResourceAction,
    SolutionPlan,
    WriteCounter,
    apply_solution,
    plan_solution,
    read_live,
    read_solution,
)
from orbit_ops.operations.kinds import MemberState
from orbit_ops.operations.locks import DEFAULT_LOCK_TIMEOUT, held, lock_path
from orbit_ops.workspace import Workspace

DEFAULT_CONCURRENCY = 8
State = Literal["planned", "succeeded", "failed", "skipped", "invalid"]


class SweepContext(Protocol):
    @property
    def op_id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def log(self, text: str, child: str | None = None) -> None: ...

    def progress(self, done: int, total: int | None = None) -> None: ...

    def child(self, child_id: str, state: MemberState, message: str = "") -> None: ...


@dataclass
class SolutionOutcome:
    id: str
    state: State
    actions: list[ResourceAction] = field(default_factory=list)
    error: str | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "state": self.state, "actions": [a.to_json() for a in self.actions]}
        if self.error:
            body["error"] = self.error
        if self.notes:
            body["notes"] = list(self.notes)
        return body


def result_json(outcomes: Sequence[SolutionOutcome], writes: int) -> dict[str, Any]:
    """The ``plan``/``provision`` JSON of SPEC §6.1."""
    return {"solutions": [outcome.to_json() for outcome in outcomes], "writes": writes}


def invalid_outcomes(invalid: Sequence[InvalidSolution]) -> list[SolutionOutcome]:
    """What a plan or sweep reports for invalid solution files: ``state: invalid``, nothing touched."""
    return [SolutionOutcome(entry.id, "invalid", error=str(entry.error)) for entry in invalid]


def by_id(outcomes: Sequence[SolutionOutcome]) -> list[SolutionOutcome]:
    """Outcomes in id order (valid and invalid solutions together, as listings show them); stable for equal ids."""
    return sorted(outcomes, key=lambda outcome: outcome.id)


def check_concurrency(concurrency: int) -> int:
    """Raises InputError unless ``concurrency`` is a positive whole number."""
    if concurrency < 1:
        raise InputError(f"--concurrency must be at least 1 (got {concurrency})")
    return concurrency


def unreleased_reason(workspace: Workspace, spec: SolutionSpec, releases: ReleaseIndex) -> str | None:
    """Why ``spec`` cannot be provisioned (a pin with no release record), or None."""
    problems = []
    for component in ("orbit", "agent", "mc"):
        pin = spec.pin(component)
        resolved = releases.resolve(component, pin)
        if resolved is None:
            problems.append(f"{component} pins latest but nothing is released")
        elif not releases.released(component, resolved):
            problems.append(f"{component} {resolved} has no release record (build it first: "
                            f"orbit build {component}@{resolved})")
    return "; ".join(problems) or None


def refuse_unreleased(workspace: Workspace, specs: Sequence[SolutionSpec]) -> None:
    """Refuse solutions named explicitly whose pins have no release record (nothing is written).

    A sweep of ``--all`` skips such solutions and reports them instead; naming one is an error.

    Raises:
        RefusedError: one or more of ``specs`` pin an unreleased version.
    """
    releases = workspace.release_index()
    problems = [f"{spec.id}: {reason}" for spec in specs if (reason := unreleased_reason(workspace, spec, releases))]
    if problems:
        raise RefusedError("cannot provision a pin that was never released: " + "; ".join(problems))


PlannedSolution = tuple[SolutionSpec, SolutionPlan | None, str | None]


async def plan_many(workspace: Workspace, specs: Sequence[SolutionSpec]) -> list[PlannedSolution]:
    """Plan every solution against one live snapshot; writes nothing.

    Returns (spec, plan or None, reason it cannot be provisioned or None) per solution.
    """
    platform = workspace.platform()
    snapshot = await read_live(platform, platform)
    releases = workspace.release_index()
    target = workspace.target()
    planned: list[PlannedSolution] = []
    with bulk_built():
        for spec in specs:
            reason = unreleased_reason(workspace, spec, releases)
            desired = desired_for(spec, target, releases)
            if reason is not None or desired is None:
                planned.append((spec, None, reason or "nothing to resolve 'latest' to"))
                continue
            planned.append((spec, plan_solution(spec, desired, snapshot), None))
    return planned


async def sweep_body(
    workspace: Workspace,
    specs: Sequence[SolutionSpec],
    ctx: SweepContext,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    wait: bool = True,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    invalid: Sequence[InvalidSolution] = (),
) -> dict[str, Any]:
    """Converge ``specs`` as the body of an operation; returns the provision result JSON.

    Per-solution failures are recorded in the result (state ``failed``), never raised; a solution
    whose lock another operation holds longer than ``lock_timeout`` seconds is one of them. Each of
    ``invalid`` (a solution file that breaks a rule) is a member in state ``invalid`` with its error, and is
    left untouched.

    Raises:
        BackendError: the platform could not be listed at all.
    """
    check_concurrency(concurrency)
    platform = workspace.platform()
    releases = workspace.release_index()
    target = workspace.target()
    total = len(specs) + len(invalid)  # an invalid file is a member too: done at once, left untouched
    ctx.log(f"reading the platform ({workspace.config.backend})")
    snapshot = await read_live(platform, platform)
    ctx.progress(len(invalid), total)
    counter = WriteCounter()
    outcomes: dict[str, SolutionOutcome] = {}
    semaphore = asyncio.Semaphore(concurrency)
    finished = len(invalid)

    async def one(spec: SolutionSpec) -> None:
        nonlocal finished
        async with semaphore:
            outcome = await _converge(workspace, spec, ctx, releases, target, snapshot, counter, wait,
                                      lock_timeout)
        outcomes[spec.id] = outcome
        finished += 1
        ctx.progress(finished, total)

    for entry in invalid:
        ctx.child(entry.id, MemberState.INVALID, str(entry.error))
        ctx.log(f"invalid, left untouched: {entry.error}", child=entry.id)
    for spec in specs:
        ctx.child(spec.id, MemberState.QUEUED)
    tasks = [asyncio.ensure_future(one(spec)) for spec in specs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # One member raised (the store could not be written) or the sweep was cancelled: stop the others
        # before the operation ends, so nothing is provisioned after it reads as finished.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    ordered = [outcomes[spec.id] for spec in specs]
    failed = [o.id for o in ordered if o.state == "failed"]
    skipped = [o.id for o in ordered if o.state == "skipped"]
    ctx.log(f"{len(specs) - len(failed) - len(skipped)} converged, {len(failed)} failed, {len(skipped)} skipped"
            + (f", {len(invalid)} invalid" if invalid else "") + f"; {counter.writes} write call(s)")
    return result_json(by_id([*ordered, *invalid_outcomes(invalid)]) if invalid else ordered, counter.writes)


async def _converge(workspace: Workspace, spec: SolutionSpec, ctx: SweepContext, releases: ReleaseIndex,
                    target: Any, snapshot: Any, counter: WriteCounter, wait: bool,
                    lock_timeout: float | None) -> SolutionOutcome:
    reason = unreleased_reason(workspace, spec, releases)
    desired = desired_for(spec, target, releases)
    if reason is not None or desired is None:
        message = f"refused: {reason}"
        ctx.child(spec.id, MemberState.SKIPPED, message)
        ctx.log(message, child=spec.id)
        return SolutionOutcome(spec.id, "skipped", error=message)
    ctx.child(spec.id, MemberState.RUNNING)
    platform = workspace.platform()
    try:
        log = _child_log(ctx, spec.id)
        async with held(lock_path(workspace.config.state_dir, f"solution-{spec.id}"), what=f"solution {spec.id}",
                        wait=wait, on_wait=log, timeout=lock_timeout, op_id=ctx.op_id, kind=ctx.kind) as waited:
            # After waiting, someone else converged it meanwhile: read it afresh, one resource at a time.
            live = await read_solution(platform, platform, desired) if waited else snapshot
            plan = plan_solution(spec, desired, live)
            for note in plan.notes:
                log(note)
            if not plan.writes:
                log("in sync: nothing to do")
            actions = await apply_solution(plan, platform, platform, log, counter)
    except OrbitError as exc:
        ctx.child(spec.id, MemberState.FAILED, str(exc))
        ctx.log(f"failed: {exc}", child=spec.id)
        return SolutionOutcome(spec.id, "failed", error=str(exc))
    written = sum(1 for a in actions if a.action != "none")
    ctx.child(spec.id, MemberState.SUCCEEDED, f"{written} change(s)" if written else "in sync")
    return SolutionOutcome(spec.id, "succeeded", actions=actions, notes=plan.notes)


def _child_log(ctx: SweepContext, child: str) -> Any:
    def log(text: str) -> None:
        ctx.log(text, child=child)

    return log


def statuses(workspace: Workspace, specs: Sequence[SolutionSpec], snapshot: Any) -> list[Any]:
    """Status of each solution against one snapshot (see ``orbit_ops.fleet.drift``)."""
    releases = workspace.release_index()
    target = workspace.target()
    with bulk_built():
        return [solution_status(spec, target, releases, snapshot) for spec in specs]
