"""Questions the console asks that compose several engine calls: record integrity per release and per pin,
the previous pins a rollback can restore, the failures of a finished sweep, and one solution's revisions.

Each answer is built from existing engine functions (``integrity.verify_records``, ``roll.previous_pin``, the
operation store) so the CLI and the console never disagree; nothing here writes. The console runs these in
worker threads (``verify_records`` reads git and the registry). An operation's log, in batches, is
``orbit_ops.operations.log.follow_batches``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from orbit_ops.errors import BackendError, NotFoundError
from orbit_ops.fleet.drift import ReleaseIndex, SolutionStatus
from orbit_ops.fleet.health import RevisionFacts
from orbit_ops.fleet.integrity import verify_records
from orbit_ops.fleet.planned import PlannedSolution
from orbit_ops.fleet.roll import RollPlan, previous_pin
from orbit_ops.fleet.sweeps import plan_many
from orbit_ops.names import APP_COMPONENTS, azure_names
from orbit_ops.operations.kinds import OperationKind
from orbit_ops.operations.records import OperationRecord
from orbit_ops.workspace import Workspace


@dataclass(frozen=True)
class IntegrityReport:
    """Every integrity problem found: per release record, and per solution whose pins depend on one."""

    records: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # (component, version)
    solutions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # solution id → problems
    pins: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # (solution id, component)

    def of_component(self, component: str) -> list[tuple[str, str]]:
        """(version, problem) of every problem with a record of ``component``."""
        return [(version, problem) for (name, version), found in self.records.items() if name == component
                for problem in found]


def record_problems(workspace: Workspace) -> dict[tuple[str, str], tuple[str, ...]]:
    """(component, version) → what ``verify_records`` found wrong with its newest record (moved tag, lost image).

    Raises:
        GitError: the tags cannot be listed.
    """
    found: dict[tuple[str, str], list[str]] = {}
    for problem in verify_records(workspace):
        found.setdefault((problem.record.component, problem.record.version), []).append(problem.problem)
    return {key: tuple(values) for key, values in found.items()}


def rolled_versions(records: Iterable[OperationRecord]) -> set[tuple[str, str]]:
    """(component, version) of every roll that wrote a pin: a roll is refused without a release record, so each
    of these had one when it was rolled."""
    rolled: set[tuple[str, str]] = set()
    for record in records:
        result = record.result or {}
        if record.kind == OperationKind.ROLL and result.get("pins"):
            rolled.add((str(result.get("component")), str(result.get("version"))))
    return rolled


def pin_problems(
    solution_id: str,
    pins: Mapping[str, str | None],
    releases: ReleaseIndex,
    records: Mapping[tuple[str, str], tuple[str, ...]],
    rolled: set[tuple[str, str]],
    live: Mapping[str, str | None] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Component → the problems of one solution's resolved ``pins`` (pure).

    A pin has a problem when the record of its version has one, or when its version has no record although it
    was rolled out once or runs live (the record vanished).
    """
    found: dict[str, tuple[str, ...]] = {}
    for component, version in pins.items():
        if version is None:
            continue
        problems = [f"{component} {version}: {problem}" for problem in records.get((component, version), ())]
        if not releases.released(component, version):
            why = []
            if (component, version) in rolled:
                why.append("it was rolled out before")
            if live and live.get(component) == version:
                why.append("it runs live")
            if why:
                problems.append(f"{component} {version}: its release record vanished ({' and '.join(why)}); "
                                f"restore the record or rebuild: orbit build {component}@{version} --force")
        if problems:
            found[component] = tuple(problems)
    return found


def integrity_report(
    workspace: Workspace,
    statuses: Sequence[SolutionStatus] = (),
    records: Mapping[tuple[str, str], tuple[str, ...]] | None = None,
) -> IntegrityReport:
    """Record problems, and each solution pinning a version whose record is wrong or gone.

    ``statuses`` (from ``fleet.fleet_status``) add what runs live; without them only the history of rolls says
    whether a version without a record was released once. ``records``: :func:`record_problems` already
    verified (the console verifies once per refresh and shares the answer); None verifies here.

    Raises:
        GitError: the tags cannot be listed.
    """
    if records is None:
        records = record_problems(workspace)
    releases = workspace.release_index()
    rolled = rolled_versions(workspace.operations().list(kind=OperationKind.ROLL))
    live = {status.id: {name: app.live for name, app in status.apps.items()} for status in statuses}
    solutions: dict[str, tuple[str, ...]] = {}
    pins: dict[tuple[str, str], tuple[str, ...]] = {}
    for spec in workspace.solutions():
        resolved = {component: releases.resolve(component, spec.pin(component)) for component in APP_COMPONENTS}
        found = pin_problems(spec.id, resolved, releases, records, rolled, live.get(spec.id))
        for component, problems in found.items():
            pins[spec.id, component] = problems
        if found:
            solutions[spec.id] = tuple(problem for problems in found.values() for problem in problems)
    return IntegrityReport(records, solutions, pins)


@dataclass(frozen=True)
class RollbackChoice:
    """What ``u`` can do for one app of a solution: restore ``previous``, or why it cannot (``reason``)."""

    component: str
    current: str
    previous: str | None
    reason: str | None = None


def rollback_choices(workspace: Workspace, solution_id: str) -> list[RollbackChoice]:
    """For each app component of ``solution_id``: the pin it had before the roll that set the current one.

    Raises:
        NotFoundError: no such solution.
    """
    spec = next((spec for spec in workspace.solutions() if spec.id == solution_id), None)
    if spec is None:
        raise NotFoundError(f"no solution '{solution_id}' in {workspace.config.solutions_dir}")
    choices = []
    for component in APP_COMPONENTS:
        current = spec.pin(component)
        try:
            choices.append(RollbackChoice(component, current, previous_pin(workspace, solution_id, component, current)))
        except NotFoundError as exc:
            choices.append(RollbackChoice(component, current, None, str(exc)))
    return choices


async def plan_after_roll(workspace: Workspace, plan: RollPlan) -> list[PlannedSolution]:
    """What provisioning the solutions of ``plan`` would do once its pins are written; writes nothing.

    Raises:
        BackendError: the platform cannot be read.
    """
    key = f"{plan.component}_tag"
    rolled = [dataclasses.replace(spec, images={**spec.images, key: plan.version}) for spec in plan.specs.values()]
    return await plan_many(workspace, rolled)


REVISIONS_SHOWN = 5  # the newest revisions of each app the solution detail shows


@dataclass(frozen=True)
class AppRevisions:
    """One app of a solution and its newest revisions (newest first), or why they could not be read."""

    component: str
    app: str
    revisions: tuple[RevisionFacts, ...] = ()
    error: str | None = None


async def solution_revisions(workspace: Workspace, solution_id: str,
                             limit: int = REVISIONS_SHOWN) -> list[AppRevisions]:
    """The newest ``limit`` revisions of each of the three apps of ``solution_id``: one revisions read per app
    (never a listing of the fleet). Never raises for the platform: an app whose read failed carries the error."""
    platform = workspace.platform()
    apps = azure_names(solution_id).apps

    async def read(component: str) -> AppRevisions:
        app = apps[component]
        try:
            revisions = await platform.list_revisions(app)
        except BackendError as exc:
            return AppRevisions(component, app, error=str(exc))
        return AppRevisions(component, app, tuple(revisions[:limit]))

    return list(await asyncio.gather(*(read(component) for component in APP_COMPONENTS)))
