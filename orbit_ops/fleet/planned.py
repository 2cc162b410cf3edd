"""One solution's planned provisioning as the operator confirms it, and whether it still holds at its turn.

The operator confirms a plan made from a desired state (the solution file, the releases its pins resolve
to) and a live snapshot. A sweep applies that plan unless, by the solution's turn, either side changed:
then the solution is planned again and the sweep logs what was confirmed, what is applied and why. These
are the pure comparisons behind that decision; the sweep (``orbit_ops.fleet.sweeps``) does the reading.

A solution file is compared by its ``stat`` fingerprint first, so an untouched file is not parsed again
(a no-op sweep of a thousand solutions stays within its benchmark, see ``bench/RESULTS.md``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orbit_ops.config.model import SolutionSpec
from orbit_ops.fleet.drift import LiveSnapshot
from orbit_ops.fleet.preflight import Lack
from orbit_ops.fleet.provision import SolutionPlan
from orbit_ops.fleet.resources import DesiredSolution, Resource, differences

Fingerprint = tuple[int, int, int, int]


def file_fingerprint(path: Path) -> Fingerprint | None:
    """What tells an edited solution file from an untouched one without reading it; None if it cannot be stat'ed."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


@dataclass(frozen=True)
class PlannedSolution:
    """One solution of a plan (``plan_many``): its plan, or why it cannot be provisioned (``refused``).

    ``desired``, ``live`` and ``fingerprint`` are what the plan was made from (the desired state, the live
    snapshot, the solution file's fingerprint), kept so the sweep can tell whether the plan still holds;
    ``preflight`` the apps whose new image requires a variable their env does not set (``fleet.preflight``).
    """

    spec: SolutionSpec
    plan: SolutionPlan | None
    refused: str | None = None
    desired: DesiredSolution | None = None
    live: LiveSnapshot | None = None
    fingerprint: Fingerprint | None = None
    preflight: tuple[Lack, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def writes(self) -> int:
        """The write calls the plan makes (0 for a refused solution)."""
        return self.plan.writes if self.plan is not None else 0


def desired_changes(confirmed: DesiredSolution, current: DesiredSolution) -> list[str]:
    """How ``current`` differs from the desired state the plan was confirmed for (``app x: image 1 → 2``)."""
    if confirmed == current:
        return []
    before = {(resource.kind, resource.name): resource for resource in confirmed.resources()}
    changes = []
    for resource in current.resources():
        old = before.pop((resource.kind, resource.name), None)
        if old is None:
            changes.append(f"{resource.kind} {resource.name} added")
        elif old != resource:
            changes.append(f"{resource.kind} {resource.name}: {', '.join(differences(resource, old))}")
    changes += [f"{kind} {name} no longer wanted" for kind, name in before]
    return changes


def live_changes(desired: DesiredSolution, confirmed: LiveSnapshot, current: LiveSnapshot) -> list[str]:
    """The resources of ``desired`` whose live state is not what the confirmed plan saw."""
    changes = []
    for resource in desired.resources():
        then, now = confirmed.get(resource), current.get(resource)
        if then == now:
            continue
        changes.append(f"{resource.kind} {resource.name} " + _live_change(then, now))
    return changes


def _live_change(then: Resource | None, now: Resource | None) -> str:
    if then is None:
        return "appeared"
    if now is None:
        return "disappeared"
    return "changed: " + ", ".join(differences(now, then))


def describe(plan: SolutionPlan | None, refused: str | None = None) -> str:
    """A plan in one phrase, every write named: ``update app ca-x-agent, create share s-x``."""
    if plan is None:
        return f"refused ({refused})"
    writes = [f"{action.action} {action.kind} {action.name}" for action in plan.actions if action.action != "none"]
    return ", ".join(writes) or "nothing to do"


def replan_line(why: str, confirmed: PlannedSolution, applied: SolutionPlan | None, refused: str | None = None) -> str:
    """The log line of a re-plan: why, what the operator confirmed and what is applied instead."""
    return (f"re-planned: {why} since the confirmation; confirmed: {describe(confirmed.plan, confirmed.refused)}; "
            f"applying: {describe(applied, refused)}")
