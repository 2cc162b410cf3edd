"""Rolling a released version to solutions (SPEC §3.4), and rolling one back.

A roll is decided first (:func:`plan_roll`: which files change from what to what, refused outright for
a version with no release record), then carried out as one operation: each solution file's pin is
rewritten in place (comments and order kept, refused if the file changed since it was read), and the
rolled solutions are provisioned as one sweep. The operation's result keeps every pin change, which
is the history ``orbit rollback`` reads.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orbit_ops.config.load import load_solution
from orbit_ops.config.model import InvalidSolution, SolutionSpec, WorkspaceConfig
from orbit_ops.config.pins import PinFile, read_pin_file, write_pins
from orbit_ops.errors import InputError, NotFoundError, OrbitError, RefusedError
from orbit_ops.fleet.follow import DEFAULT_HEALTH_TIMEOUT
from orbit_ops.fleet.preflight import NO_PREFLIGHT, Preflight
from orbit_ops.fleet.sweeps import DEFAULT_CONCURRENCY, SweepContext, invalid_outcomes, plan_and_sweep, result_json
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.operations.kinds import MemberState, OperationKind
from orbit_ops.operations.locks import DEFAULT_LOCK_TIMEOUT
from orbit_ops.versions import LATEST, VERSION_RULE, is_version, newest_first
from orbit_ops.workspace import Workspace


@dataclass(frozen=True)
class PinChange:
    """One solution's pin going from ``before`` to ``after``; ``resolved`` is the newest released version when
    the plan was made, which a ``latest`` pin (before or after) stands for."""

    id: str
    component: str
    before: str
    after: str
    resolved: str | None = None

    @property
    def before_text(self) -> str:
        """``before`` as the plan shows it: a floating pin with the version it runs (``latest (=2.0.0)``)."""
        return f"{LATEST} (={self.resolved})" if self.before == LATEST and self.resolved else self.before

    @property
    def after_text(self) -> str:
        """``after`` as the plan shows it, saying when the pin starts or stops floating."""
        if self.before == LATEST and self.after != LATEST:
            return f"{self.after} (was floating; it will stay on {self.after})"
        if self.after == LATEST:
            now = f"={self.resolved}; " if self.resolved else ""
            return f"{LATEST} ({now}it will float on each newer release)"
        return self.after

    def describe(self) -> str:
        """``agent latest (=2.0.0) → 2.1.0 (was floating; it will stay on 2.1.0)``"""
        return f"{self.component} {self.before_text} → {self.after_text}"

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "component": self.component, "from": self.before, "to": self.after}


@dataclass(frozen=True)
class RollPlan:
    component: str
    version: str
    changes: tuple[PinChange, ...]
    unchanged: tuple[str, ...]  # solutions already pinned to the version
    files: dict[str, PinFile]
    specs: dict[str, SolutionSpec]
    preflight: Preflight = NO_PREFLIGHT  # filled by ``orbit_ops.fleet.preflight.check_roll``

    @property
    def target(self) -> str:
        count = len(self.changes) + len(self.unchanged)
        return f"{self.component}@{self.version} → {count} solution{'s' if count != 1 else ''}"


def plan_roll(workspace: Workspace, component: str, version: str, specs: Sequence[SolutionSpec], *,
              allow_latest: bool = False) -> RollPlan:
    """Decide the pin changes of a roll; reads the solution files, writes nothing.

    Raises:
        InputError: not an app component, not a version, or no solutions.
        RefusedError: the version has no release record (it was never built).
    """
    if component not in APP_COMPONENTS:
        raise InputError(f"'{component}' is not an app component; solutions pin {', '.join(APP_COMPONENTS)}")
    floating = allow_latest and version == LATEST  # a rollback may restore a floating pin
    if not floating and not is_version(version):
        hint = " (drop the leading 'v')" if version.startswith("v") and is_version(version[1:]) else ""
        raise InputError(f"'{version}' is not a version{hint}; {VERSION_RULE} (roll pins exact released versions)")
    record = workspace.latest_release(component) if floating else workspace.release_of(component, version)
    if record is None:
        released = newest_first(record.version for record in workspace.records().get(component, []))
        listing = ", ".join(dict.fromkeys(released[:6])) or "none"
        raise RefusedError(f"{component} {version} has no release record, so it cannot be rolled out "
                           f"(build it first: orbit build {component}@{version}); released: {listing}")
    if not specs:
        raise InputError("no solutions to roll to")
    resolved = workspace.resolve_pin(component, LATEST)
    changes, unchanged, files = [], [], {}
    for spec in specs:
        before = spec.pin(component)
        if before == version:
            unchanged.append(spec.id)
            continue
        files[spec.id] = read_pin_file(spec.path)
        changes.append(PinChange(spec.id, component, before, version, resolved))
    return RollPlan(component, version, tuple(changes), tuple(unchanged), files, {s.id: s for s in specs})


async def roll_body(workspace: Workspace, plan: RollPlan, ctx: SweepContext, *, provision: bool = True,
                    concurrency: int = DEFAULT_CONCURRENCY, wait: bool = True,
                    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
                    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
                    invalid: Sequence[InvalidSolution] = ()) -> dict[str, Any]:
    """Write the new pins, then provision the rolled solutions as one sweep; returns the result JSON.

    A solution whose file changed since the plan read it is refused (its file is left as the other
    writer made it) and not provisioned; the others go on. So is one whose lock another operation
    holds for longer than ``lock_timeout`` seconds. Each refusal in ``refused`` says whether it was the
    input's fault (``input``: the file changed or the edit is invalid) or the wait's. The ``invalid``
    solution files of the selection are listed (``invalid`` in the result, members in state ``invalid``)
    and left untouched. The provisioning follows each new revision for up to ``health_timeout`` seconds, as
    every sweep does (``orbit_ops.fleet.sweeps.sweep_body``).
    """
    written: list[PinChange] = []
    refused: list[dict[str, Any]] = []
    total = len(plan.changes) + len(plan.unchanged) + len(invalid)
    for change in plan.changes:
        spec = plan.specs[change.id]
        try:
            async with workspace.locks().hold(f"solution-{change.id}", what=f"solution {change.id}", wait=wait,
                                              timeout=lock_timeout, on_wait=functools.partial(ctx.log, child=change.id),
                                              op_id=ctx.op_id, kind=ctx.kind) as lock:
                await lock.ensure()  # the fence: no pin is written under a lease that was lost
                write_pins(plan.files[change.id], {plan.component: plan.version},
                           validate=functools.partial(_validate, workspace.config, spec.path))
        except OrbitError as exc:
            refused.append({"id": change.id, "error": str(exc), "input": isinstance(exc, InputError)})
            ctx.child(change.id, MemberState.FAILED, str(exc))
            ctx.log(f"pin not changed: {exc}", child=change.id)
            ctx.progress(len(refused), total)  # a refused solution is done: it will not be provisioned
            continue
        written.append(change)
        ctx.log(f"pinned {change.describe()} in {spec.path.name}", child=change.id)
    result: dict[str, Any] = {
        "component": plan.component,
        "version": plan.version,
        "pins": [change.to_json() for change in written],
        "unchanged": list(plan.unchanged),
        "refused": refused,
        "invalid": [entry.to_json() for entry in invalid],
    }
    if not provision:
        # Pins only: a member succeeded when its pin is written (or was already there).
        for change in written:
            ctx.child(change.id, MemberState.SUCCEEDED, "pinned; not provisioned (--no-provision)")
        for solution_id in plan.unchanged:
            ctx.child(solution_id, MemberState.SUCCEEDED, f"already on {plan.version}")
        for entry in invalid:
            ctx.child(entry.id, MemberState.INVALID, str(entry.error))
            ctx.log(f"invalid, left untouched: {entry.error}", child=entry.id)
        ctx.log("pins written; not provisioning (--no-provision)")
        ctx.progress(total, total)
        return result | result_json(invalid_outcomes(invalid), 0)
    workspace.refresh()
    rolled_ids = [change.id for change in written] + list(plan.unchanged)
    specs = [load_solution(workspace.config, plan.specs[i].path) for i in rolled_ids]
    if specs:
        swept = await plan_and_sweep(workspace, specs, _Shifted(ctx, len(refused), total),
                                     concurrency=concurrency, wait=wait, lock_timeout=lock_timeout,
                                     health_timeout=health_timeout, invalid=invalid)
    else:
        for entry in invalid:
            ctx.child(entry.id, MemberState.INVALID, str(entry.error))
        ctx.progress(total, total)
        swept = result_json(invalid_outcomes(invalid), 0)
    return result | swept


class _Shifted:
    """The roll's context as its sweep sees it: the sweep's progress counts on from the refused solutions,
    so the roll's progress is over every solution it was asked to roll."""

    def __init__(self, ctx: SweepContext, done: int, total: int) -> None:
        self._ctx = ctx
        self._done = done
        self._total = total

    @property
    def op_id(self) -> str:
        return self._ctx.op_id

    @property
    def kind(self) -> str:
        return self._ctx.kind

    def log(self, text: str, child: str | None = None) -> None:
        self._ctx.log(text, child)

    def progress(self, done: int, total: int | None = None) -> None:
        self._ctx.progress(self._done + done, self._total)

    def child(self, child_id: str, state: MemberState, message: str = "") -> None:
        self._ctx.child(child_id, state, message)


def _validate(config: WorkspaceConfig, path: Path, text: str) -> SolutionSpec:
    """A pin edit must leave a valid solution file: check the new text before it is written."""
    return load_solution(config, path, text=text)


def previous_pin(workspace: Workspace, solution_id: str, component: str, current: str) -> str:
    """The version ``solution_id`` pinned for ``component`` before the roll that set ``current``.

    Raises:
        NotFoundError: no roll in the operation history set this pin.
    """
    for record in workspace.operations().list(kind=OperationKind.ROLL):
        for pin in (record.result or {}).get("pins", []):
            if pin.get("id") == solution_id and pin.get("component") == component and pin.get("to") == current:
                return str(pin["from"])
    raise NotFoundError(f"no roll in the operation history set {component} {current} on {solution_id}; "
                        "nothing to roll back to (use 'orbit roll' with the version you want)")
