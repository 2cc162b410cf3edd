"""Health of apps and solutions (SPEC §3.6): does the latest revision of each app actually run?

``sync`` says the live configuration equals the desired one; on Container Apps a write that succeeds says
nothing about whether the revision it made runs (it may fail to pull, crash-loop, fail its probes or stay
activating while the old revision serves). The facts arrive here in the service's own words, as strings, never
as enums: the service sends values no SDK enum knows (``RunningAtMaxScale``), and a value Orbit does not know
makes a health ``unknown`` with the value named, never an error. :func:`app_health` is the one mapping from
those facts to Orbit's five healths and a reason an operator can act on; decision 0043 gives each state's
mapping and its sources. Pure: no I/O, the clock passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Health(StrEnum):
    """How an app (or, worst of its apps, a solution) runs."""

    HEALTHY = "healthy"  # the latest revision runs and is the latest ready one
    PROGRESSING = "progressing"  # not there yet, still on its way (provisioning, activating)
    DEGRADED = "degraded"  # the latest revision failed: it does not pull, start, stay up or pass its probes
    MISSING = "missing"  # the app does not exist
    UNKNOWN = "unknown"  # could not be read, or the service said something Orbit does not know


# Worst first, like the sync and freshness orders of fleet.drift. Argo CD's gitops-engine ranks
# Healthy < Suspended < Progressing < Missing < Degraded < Unknown; Orbit keeps its Missing < Degraded but ranks
# Unknown below both: a solution with one app degraded and another unread shows the failure it knows of (with
# its reason) rather than hiding it behind "unknown". Neither unknown nor progressing ever counts as healthy.
HEALTH_ORDER: tuple[Health, ...] = (Health.DEGRADED, Health.MISSING, Health.UNKNOWN, Health.PROGRESSING,
                                    Health.HEALTHY)


def worst(healths: Iterable[Health]) -> Health:
    """The worst of ``healths`` (``unknown`` when there are none)."""
    return min(healths, key=HEALTH_ORDER.index, default=Health.UNKNOWN)


def solution_health(apps: Mapping[str, AppHealth]) -> tuple[Health, str | None]:
    """A solution's health from its apps' (component → health): the worst, and the worst app's reason named by
    its component (``agent: image pull failed: …``), or None when that app gives none."""
    health = worst(app.health for app in apps.values())
    sickest = next((component for component, app in apps.items() if app.health is health), None)
    reason = apps[sickest].health_reason if sickest is not None else None
    return health, f"{sickest}: {reason}" if reason else None


@dataclass(frozen=True)
class AppFacts:
    """An app's status fields as the app listing reports them (no read per app)."""

    name: str
    provisioning_state: str = ""  # provisioningState: InProgress, Succeeded, Failed, Canceled, Deleting
    running_status: str = ""  # runningStatus: Progressing, Running, Stopped, Suspended, Ready
    latest_revision: str = ""  # latestRevisionName
    latest_ready_revision: str = ""  # latestReadyRevisionName


@dataclass(frozen=True)
class RevisionFacts:
    """One revision of an app as the service reports it (``Microsoft.App/containerApps/revisions``)."""

    name: str
    provisioning_state: str = ""  # Provisioning, Provisioned, Failed, Deprovisioning, Deprovisioned
    health_state: str = ""  # Healthy, Unhealthy, None
    running_state: str = ""  # Running, Processing, Stopped, Degraded, Failed, Unknown; Activating, RunningAtMaxScale
    active: bool = False
    replicas: int = 0
    restarts: int = 0  # the restartCount of its replicas' containers, summed
    provisioning_error: str = ""
    detail: str = ""  # what the service says about the running state (a container's runningStateDetails)
    created: datetime | None = None


@dataclass(frozen=True)
class AppHealth:
    """An app's health, the revisions it was judged on, and why."""

    health: Health
    revision: str | None = None  # the latest revision's name
    ready_revision: str | None = None  # the latest ready revision's name
    health_reason: str | None = None  # None when healthy
    revisions: tuple[RevisionFacts, ...] = ()  # newest first; read only for an app that is not plainly healthy


def plainly_healthy(facts: AppFacts) -> bool:
    """Whether the listing alone shows the app healthy: provisioned, running, its latest revision the ready one.

    Only an app for which this is false needs its revisions read.
    """
    return (_norm(facts.provisioning_state) == "succeeded" and _norm(facts.running_status) in ("running", "")
            and bool(facts.latest_revision) and facts.latest_revision == facts.latest_ready_revision)


def app_health(facts: AppFacts, revisions: Sequence[RevisionFacts] = (), now: datetime | None = None) -> AppHealth:
    """Orbit's health of one app from the listing's facts and (when not plainly healthy) its revisions.

    ``now`` dates "activating for 6 min" and "7 restarts in 2 min"; without it the reasons carry no duration.
    """
    health, reason = _judge(facts, revisions, now)
    return AppHealth(health, facts.latest_revision or None, facts.latest_ready_revision or None,
                     None if health is Health.HEALTHY else reason, tuple(revisions))


_APP_STATES = ("inprogress", "succeeded", "failed", "canceled", "deleting")
_APP_RUNNING = ("progressing", "running", "stopped", "suspended", "ready", "")


def _judge(facts: AppFacts, revisions: Sequence[RevisionFacts], now: datetime | None) -> tuple[Health, str | None]:
    state, running = _norm(facts.provisioning_state), _norm(facts.running_status)
    if state == "deleting":
        return Health.PROGRESSING, "being deleted"
    latest = _latest(facts, revisions)
    verdict = _revision_verdict(latest, now) if latest is not None else None
    if verdict is not None and verdict[0] is Health.DEGRADED:
        return verdict
    if state in ("failed", "canceled"):
        error = latest.provisioning_error if latest is not None else ""
        return Health.DEGRADED, _failure(f"provisioning {state}", error)
    if running in ("stopped", "suspended"):
        return Health.DEGRADED, f"app {running}"
    if state == "inprogress" or running == "progressing":
        return Health.PROGRESSING, verdict[1] if verdict is not None and verdict[0] is Health.PROGRESSING else (
            "provisioning" if state == "inprogress" else "starting")
    if state not in _APP_STATES:
        return Health.UNKNOWN, f"provisioningState {facts.provisioning_state!r} is not a state Orbit knows"
    if running not in _APP_RUNNING:
        return Health.UNKNOWN, f"runningStatus {facts.running_status!r} is not a state Orbit knows"
    if verdict is not None and verdict[0] is not Health.HEALTHY:
        return verdict
    if not facts.latest_revision:
        return Health.PROGRESSING, "no revision yet"
    if facts.latest_revision != facts.latest_ready_revision:
        age = _age(latest.created, now) if latest is not None else None
        return Health.PROGRESSING, f"revision {facts.latest_revision} not ready yet" + (f" ({age})" if age else "")
    return Health.HEALTHY, None


def _latest(facts: AppFacts, revisions: Sequence[RevisionFacts]) -> RevisionFacts | None:
    """The latest revision: the one the app names, else the newest (revisions come newest first)."""
    named = [revision for revision in revisions if revision.name == facts.latest_revision]
    return named[0] if named else (revisions[0] if revisions and not facts.latest_revision else None)


def _revision_verdict(revision: RevisionFacts, now: datetime | None) -> tuple[Health, str | None]:
    """One revision judged on its own facts."""
    provisioning, running, health = (_norm(revision.provisioning_state), _norm(revision.running_state),
                                     _norm(revision.health_state))
    said = revision.provisioning_error or revision.detail
    if provisioning == "failed":
        return Health.DEGRADED, _failure("provisioning failed", said)
    if running in ("failed", "activationfailed"):
        return Health.DEGRADED, _failure("activation failed" if running == "activationfailed" else "failed", said)
    if running == "degraded" or health == "unhealthy":
        if revision.restarts:
            age = _age(revision.created, now)
            plural = "restart" if revision.restarts == 1 else "restarts"
            return Health.DEGRADED, f"restarting: {revision.restarts} {plural}" + (f" in {age}" if age else "")
        if _is_pull(said):
            return Health.DEGRADED, _failure("", said)
        return Health.DEGRADED, "probe failing" + (f": {said}" if said else "")
    if provisioning in ("deprovisioning", "deprovisioned") or running == "stopped":
        state = revision.running_state if running == "stopped" else revision.provisioning_state
        return Health.DEGRADED, f"latest revision {revision.name} is {state}"
    if provisioning == "provisioning" or running in ("processing", "activating", "provisioning"):
        age = _age(revision.created, now)
        return Health.PROGRESSING, f"activating for {age}" if age else "activating"
    if running == "unknown":
        return Health.UNKNOWN, f"the service reports revision {revision.name}'s running state as Unknown"
    for field, value, known in (("provisioningState", revision.provisioning_state, ("provisioned",)),
                                ("runningState", revision.running_state, ("running", "runningatmaxscale")),
                                ("healthState", revision.health_state, ("healthy", "none", ""))):
        if _norm(value) not in known:
            return Health.UNKNOWN, f"revision {revision.name}: {field} {value!r} is not a state Orbit knows"
    return Health.HEALTHY, None


_PULL = re.compile(r"pull", re.IGNORECASE)
# kubelet's words lead with its reason code (``ImagePullBackOff: Failed to pull image "…": …``), or without it.
_PULL_LEAD = re.compile(r"^\s*(?:(?P<code>ErrImagePull|ImagePullBackOff)\s*:\s*)?"
                        r"(?:failed to pull image|image pull failed|pull failed)\s*:?\s*", re.IGNORECASE)


def _is_pull(said: str) -> bool:
    return bool(_PULL.search(said))


def _failure(label: str, said: str) -> str:
    """``image pull failed: …`` when the service's words say a pull failed (``image pull failed (ImagePullBackOff):
    …`` when kubelet named its reason), else ``<label>: <its words>``. The service's own lead is not repeated."""
    if said and _is_pull(said):
        lead = _PULL_LEAD.match(said)
        code = lead.group("code") if lead is not None else None
        rest = said[lead.end():] if lead is not None else said
        return f"image pull failed ({code}): {rest}" if code else f"image pull failed: {rest}"
    return f"{label}: {said}" if said else label


def _age(since: datetime | None, now: datetime | None) -> str | None:
    """``45 s``, ``6 min``, ``3 h``, ``2 d``: how long ago ``since`` was, or None when either time is unknown."""
    if since is None or now is None:
        return None
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _norm(value: str | None) -> str:
    """A service value compared as the SDK compares its enums: case-insensitively."""
    return (value or "").strip().lower()
