"""Provisioning many solutions as one operation: bounded concurrency, per-solution locks and results.

A sweep reads the live platform with listings, not a read per app (on the local backend the listing
``plan_many`` made is reused while nothing changed), then converges each solution with at most
``concurrency`` in flight. A failed solution is reported and the sweep goes on; the result lists
every solution's state and actions, and ``writes`` counts every write call made.
One operation per solution at a time across processes: each solution is converged under its lock.

A sweep applies the plan the operator confirmed (``plan_many``'s ``PlannedSolution``s): at a solution's turn
the plan is kept unless its solution file or its live state changed since, in which case the solution is
planned again and the re-plan logged (``orbit_ops.fleet.planned``, decision 0037).

After its writes, out of its concurrency slot and its lock, a member follows the new revisions of the apps it
wrote until they are healthy or degraded, or the health timeout passes (``orbit_ops.fleet.follow``): all
members share one health watcher, so a sweep reads health once per interval whatever its size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from orbit_ops.bulk import bulk_built
from orbit_ops.config.load import load_solution
from orbit_ops.config.model import InvalidSolution, SolutionSpec
from orbit_ops.errors import InputError, OrbitError, RefusedError
from orbit_ops.fleet.drift import LiveSnapshot, ReleaseIndex, SolutionStatus, desired_for, solution_status
from orbit_ops.fleet.follow import DEFAULT_HEALTH_TIMEOUT, check_health_timeout, follow_health, health_counts
from orbit_ops.fleet.planned import PlannedSolution, desired_changes, file_fingerprint, live_changes, replan_line
from orbit_ops.fleet.provision import (
    ResourceAction,
    SolutionPlan,
    WriteCounter,
    apply_solution,
    plan_solution,
    read_live,
    read_solution,
    still_current,
)
from orbit_ops.fleet.resources import DesiredSolution, PlatformTarget
from orbit_ops.fleet.wait import HealthWatcher
from orbit_ops.names import azure_names
from orbit_ops.operations.kinds import MemberState
from orbit_ops.operations.locks import DEFAULT_LOCK_TIMEOUT
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
    health: str | None = None  # the solution's health after the sweep (None: not read, an invalid file)
    health_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "state": self.state, "actions": [a.to_json() for a in self.actions],
                                "health": self.health, "health_reason": self.health_reason}
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


async def plan_many(workspace: Workspace, specs: Sequence[SolutionSpec]) -> list[PlannedSolution]:
    """Plan every solution against one live snapshot; writes nothing.

    Raises:
        BackendError: the platform could not be listed.
    """
    platform = workspace.platform()
    return plan_against(workspace, specs, await read_live(platform, platform))


def plan_against(workspace: Workspace, specs: Sequence[SolutionSpec], snapshot: LiveSnapshot) -> list[PlannedSolution]:
    """Plan every solution against ``snapshot`` (pure but for reading the release records)."""
    releases = workspace.release_index()
    target = workspace.target()
    planned: list[PlannedSolution] = []
    with bulk_built():
        for spec in specs:
            fingerprint = file_fingerprint(spec.path)
            reason = unreleased_reason(workspace, spec, releases)
            desired = desired_for(spec, target, releases)
            if reason is not None or desired is None:
                planned.append(PlannedSolution(spec, None, reason or "nothing to resolve 'latest' to",
                                               fingerprint=fingerprint))
                continue
            planned.append(PlannedSolution(spec, plan_solution(spec, desired, snapshot), None, desired, snapshot,
                                           fingerprint))
    return planned


@dataclass(frozen=True)
class _Sweep:
    """What every member of one sweep shares: the desired-state inputs and the live snapshot read at its start."""

    workspace: Workspace
    ctx: SweepContext
    releases: ReleaseIndex
    target: PlatformTarget
    snapshot: LiveSnapshot
    counter: WriteCounter
    wait: bool
    lock_timeout: float | None
    health_timeout: float
    watcher: HealthWatcher


async def sweep_body(
    workspace: Workspace,
    confirmed: Sequence[PlannedSolution],
    ctx: SweepContext,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    wait: bool = True,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    invalid: Sequence[InvalidSolution] = (),
) -> dict[str, Any]:
    """Converge the solutions of the ``confirmed`` plan as the body of an operation; returns the result JSON.

    Each solution gets the plan confirmed for it, unless its solution file or its live state changed
    since: then it is planned again and the log says what was confirmed, what is applied and why.
    Per-solution failures are recorded in the result (state ``failed``), never raised; a solution
    whose lock another operation holds longer than ``lock_timeout`` seconds is one of them. Each of
    ``invalid`` (a solution file that breaks a rule) is a member in state ``invalid`` with its error, and is
    left untouched. A member that wrote an app follows its new revisions for up to ``health_timeout``
    seconds and fails when one is degraded or not settled by then (``orbit_ops.fleet.follow``).

    Raises:
        BackendError: the platform could not be listed at all.
    """
    check_concurrency(concurrency)
    check_health_timeout(health_timeout)
    platform = workspace.platform()
    seen = {id(planned.live): planned.live for planned in confirmed if planned.live is not None}
    confirmed_live = next(iter(seen.values())) if len(seen) == 1 else None
    if confirmed_live is not None and still_current(platform, confirmed_live):
        # The listing the plan read moments ago, with nothing written since: what was confirmed is what the
        # sweep starts from, and the fleet is listed once (decision 0072).
        ctx.log(f"reading the platform ({workspace.config.backend}): the plan's listing, nothing written since")
        snapshot = confirmed_live
    else:
        ctx.log(f"reading the platform ({workspace.config.backend})")
        snapshot = await read_live(platform, platform)
    return await _converge_all(workspace, confirmed, snapshot, ctx, concurrency=concurrency, wait=wait,
                               lock_timeout=lock_timeout, health_timeout=health_timeout, invalid=invalid)


async def plan_and_sweep(
    workspace: Workspace,
    specs: Sequence[SolutionSpec],
    ctx: SweepContext,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    wait: bool = True,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    invalid: Sequence[InvalidSolution] = (),
) -> dict[str, Any]:
    """Plan ``specs`` and converge them in one go, with one listing: the sweep of a roll, once its pins are written.

    The roll's confirmation was the pin changes; the provisioning that follows is planned when it starts.

    Raises:
        BackendError: the platform could not be listed at all.
    """
    check_concurrency(concurrency)
    check_health_timeout(health_timeout)
    platform = workspace.platform()
    ctx.log(f"reading the platform ({workspace.config.backend})")
    snapshot = await read_live(platform, platform)
    planned = plan_against(workspace, specs, snapshot)
    return await _converge_all(workspace, planned, snapshot, ctx, concurrency=concurrency, wait=wait,
                               lock_timeout=lock_timeout, health_timeout=health_timeout, invalid=invalid)


async def _converge_all(
    workspace: Workspace,
    confirmed: Sequence[PlannedSolution],
    snapshot: LiveSnapshot,
    ctx: SweepContext,
    *,
    concurrency: int,
    wait: bool,
    lock_timeout: float | None,
    health_timeout: float,
    invalid: Sequence[InvalidSolution],
) -> dict[str, Any]:
    """Converge each of ``confirmed`` against ``snapshot``, at most ``concurrency`` at once (see :func:`sweep_body`)."""
    async with HealthWatcher(workspace.platform(), listed=snapshot) as watcher:
        sweep = _Sweep(workspace, ctx, workspace.release_index(), workspace.target(), snapshot, WriteCounter(), wait,
                       lock_timeout, health_timeout, watcher)
        return await _members(sweep, confirmed, concurrency, invalid)


async def _members(sweep: _Sweep, confirmed: Sequence[PlannedSolution], concurrency: int,
                   invalid: Sequence[InvalidSolution]) -> dict[str, Any]:
    """Run every member of the sweep (see :func:`sweep_body`); returns the result JSON."""
    ctx = sweep.ctx
    total = len(confirmed) + len(invalid)  # an invalid file is a member too: done at once, left untouched
    ctx.progress(len(invalid), total)
    outcomes: dict[str, SolutionOutcome] = {}
    semaphore = asyncio.Semaphore(concurrency)
    finished = len(invalid)

    async def one(planned: PlannedSolution) -> None:
        nonlocal finished
        async with semaphore:
            outcome = await _converge(sweep, planned)
        # Out of the slot and the lock: waiting for health does not hold up the rest of the fleet.
        outcomes[planned.id] = await _with_health(sweep, outcome)
        finished += 1
        ctx.progress(finished, total)

    for entry in invalid:
        ctx.child(entry.id, MemberState.INVALID, str(entry.error))
        ctx.log(f"invalid, left untouched: {entry.error}", child=entry.id)
    for planned in confirmed:
        ctx.child(planned.id, MemberState.QUEUED)
    tasks = [asyncio.ensure_future(one(planned)) for planned in confirmed]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # One member raised (the store could not be written) or the sweep was cancelled: stop the others
        # before the operation ends, so nothing is provisioned after it reads as finished.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    ordered = [outcomes[planned.id] for planned in confirmed]
    failed = [o.id for o in ordered if o.state == "failed"]
    skipped = [o.id for o in ordered if o.state == "skipped"]
    ctx.log(f"{len(confirmed) - len(failed) - len(skipped)} converged, {len(failed)} failed, {len(skipped)} skipped"
            + (f", {len(invalid)} invalid" if invalid else "") + f"; {sweep.counter.writes} write call(s)"
            + _health_tally(ordered))
    return result_json(by_id([*ordered, *invalid_outcomes(invalid)]) if invalid else ordered, sweep.counter.writes)


async def _converge(sweep: _Sweep, confirmed: PlannedSolution) -> SolutionOutcome:
    ctx, workspace, solution_id = sweep.ctx, sweep.workspace, confirmed.id
    log = _child_log(ctx, solution_id)
    try:
        spec, edited = _current_spec(workspace, confirmed)
    except OrbitError as exc:
        ctx.child(solution_id, MemberState.FAILED, str(exc))
        ctx.log(f"failed: {exc}", child=solution_id)
        return SolutionOutcome(solution_id, "failed", error=str(exc))
    reason = unreleased_reason(workspace, spec, sweep.releases)
    desired = desired_for(spec, sweep.target, sweep.releases)
    if reason is not None or desired is None:
        message = f"refused: {reason}"
        if confirmed.plan is not None:
            log(replan_line("its desired state changed", confirmed, None, reason))
        ctx.child(solution_id, MemberState.SKIPPED, message)
        ctx.log(message, child=solution_id)
        return SolutionOutcome(solution_id, "skipped", error=message)
    ctx.child(solution_id, MemberState.RUNNING)
    platform = workspace.platform()
    try:
        async with workspace.locks().hold(f"solution-{solution_id}", what=f"solution {solution_id}",
                                          wait=sweep.wait, on_wait=log, timeout=sweep.lock_timeout,
                                          op_id=ctx.op_id, kind=ctx.kind) as lock:
            # After waiting, someone else converged it meanwhile: read it afresh, one resource at a time.
            live = await read_solution(platform, platform, desired) if lock.waited else sweep.snapshot
            plan = _plan_at_turn(confirmed, spec, desired, live, edited, log)
            for note in plan.notes:
                log(note)
            if not plan.writes:
                log("in sync: nothing to do")
            actions = await apply_solution(plan, platform, platform, log, sweep.counter, fence=lock.ensure)
    except OrbitError as exc:
        ctx.child(solution_id, MemberState.FAILED, str(exc))
        ctx.log(f"failed: {exc}", child=solution_id)
        return SolutionOutcome(solution_id, "failed", error=str(exc))
    return SolutionOutcome(solution_id, "succeeded", actions=actions, notes=plan.notes)


async def _with_health(sweep: _Sweep, outcome: SolutionOutcome) -> SolutionOutcome:
    """``outcome`` with its solution's health; a succeeded member that wrote an app follows its new revisions
    and ends ``failed`` when one is degraded or not settled in time (see ``orbit_ops.fleet.follow``)."""
    ctx, solution_id = sweep.ctx, outcome.id
    components = {name: component for component, name in azure_names(solution_id).apps.items()}
    wrote = [components[a.name] for a in outcome.actions if a.kind == "app" and a.action != "none"]
    followed = await follow_health(sweep.watcher, solution_id, wrote if outcome.state == "succeeded" else [],
                                   sweep.health_timeout, _child_log(ctx, solution_id))
    outcome.health, outcome.health_reason = str(followed.health), followed.health_reason
    if outcome.state != "succeeded":
        return outcome
    if followed.failure is not None:
        ctx.child(solution_id, MemberState.FAILED, followed.failure)
        ctx.log(f"failed: {followed.failure}", child=solution_id)
        outcome.state, outcome.error = "failed", followed.failure
        return outcome
    written = sum(1 for a in outcome.actions if a.action != "none")
    ctx.child(solution_id, MemberState.SUCCEEDED, f"{written} change(s)" if written else "in sync")
    return outcome


def _health_tally(outcomes: Sequence[SolutionOutcome]) -> str:
    """``; health: 38 healthy, 2 degraded`` (worst first), or nothing when no health was read."""
    counts = health_counts(outcome.health for outcome in outcomes)
    return "; health: " + ", ".join(f"{count} {health}" for health, count in counts.items()) if counts else ""


def _current_spec(workspace: Workspace, confirmed: PlannedSolution) -> tuple[SolutionSpec, bool]:
    """The solution as its file says now, and whether the file was edited since the plan (read again only then).

    Raises:
        ConfigError: the edited file breaks a rule (or is gone).
    """
    if confirmed.fingerprint is not None and file_fingerprint(confirmed.spec.path) == confirmed.fingerprint:
        return confirmed.spec, False
    return load_solution(workspace.config, confirmed.spec.path), True


def _plan_at_turn(confirmed: PlannedSolution, spec: SolutionSpec, desired: DesiredSolution, live: LiveSnapshot,
                  edited: bool, log: Callable[[str], None]) -> SolutionPlan:
    """The confirmed plan if what it was made from still holds, else a new plan, logged with what changed."""
    source = "its solution file changed" if edited else "its desired state changed"
    if confirmed.plan is None or confirmed.desired is None or confirmed.live is None:
        plan = plan_solution(spec, desired, live)
        log(replan_line(f"{source}: it can be provisioned now", confirmed, plan))
        return plan
    wanted = desired_changes(confirmed.desired, desired)
    seen = live_changes(desired, confirmed.live, live)
    if not wanted and not seen:
        return confirmed.plan
    plan = plan_solution(spec, desired, live)
    reasons = [f"{source} ({'; '.join(wanted)})"] if wanted else []
    if seen:
        reasons.append(f"its live state changed ({'; '.join(seen)})")
    log(replan_line(" and ".join(reasons), confirmed, plan))
    return plan


def _child_log(ctx: SweepContext, child: str) -> Callable[[str], None]:
    def log(text: str) -> None:
        ctx.log(text, child=child)

    return log


def statuses(workspace: Workspace, specs: Sequence[SolutionSpec], snapshot: LiveSnapshot) -> list[SolutionStatus]:
    """Status of each solution against one snapshot (see ``orbit_ops.fleet.drift``)."""
    releases = workspace.release_index()
    target = workspace.target()
    with bulk_built():
        return [solution_status(spec, target, releases, snapshot) for spec in specs]
