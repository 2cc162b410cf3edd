"""Status and drift of solutions (SPEC §3.2): pure functions from desired state and a live snapshot.

``sync`` says whether what runs equals what the config asks for (field by field, managed fields only);
``freshness`` says whether what the config asks for is the newest release; ``health`` (``fleet.health``)
whether the latest revision of each app runs. All are computed for every app and rolled up per solution,
worst first, so a fleet table can be sorted by what needs attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orbit_ops.bulk import bulk_built
from orbit_ops.catalog.releases import ReleaseRecord, newest_release
from orbit_ops.config.model import SolutionSpec
from orbit_ops.fleet.health import AppHealth, Health, solution_health
from orbit_ops.fleet.resources import App, DesiredSolution, PlatformTarget, Resource, desired_state, differences
from orbit_ops.names import APP_COMPONENTS, azure_names
from orbit_ops.versions import LATEST, version_key

Sync = Literal["synced", "drifted", "missing", "unknown"]
Freshness = Literal["current", "behind", "unreleased", "floating"]
SYNC_ORDER: tuple[Sync, ...] = ("unknown", "missing", "drifted", "synced")  # worst first
FRESHNESS_ORDER: tuple[Freshness, ...] = ("unreleased", "behind", "floating", "current")


@dataclass(frozen=True, repr=False)
class LiveSnapshot:
    """What the platform holds, read with one listing per resource type (never one read per app)."""

    apps: Mapping[str, App]
    storages: Mapping[str, Any]
    shares: Mapping[str, Any]
    error: str | None = None  # set when the platform could not be read: every status is then unknown
    health: Mapping[str, AppHealth] | None = None  # by app name; None when health was not read
    # What the platform said before it was listed (``listing_token``), to ask later whether it is still current.
    token: object = field(default=None, compare=False)

    def get(self, resource: Resource) -> Resource | None:
        kind = resource.kind
        table: Mapping[str, Any] = self.apps if kind == "app" else self.storages if kind == "storage" else self.shares
        found: Resource | None = table.get(resource.name)
        return found

    def __repr__(self) -> str:
        # Counts, not contents: a fleet's snapshot holds tens of thousands of resources, and asyncio
        # formats the repr of a finished ``asyncio.run`` task's result (through its SIGINT handler).
        return (f"LiveSnapshot(apps={len(self.apps)}, storages={len(self.storages)}, shares={len(self.shares)}, "
                f"error={self.error!r})")

    def health_of(self, app: str) -> AppHealth:
        """The health of app ``app``: ``missing`` when it does not exist, ``unknown`` (why) when it was not read."""
        if self.error is not None:
            return AppHealth(Health.UNKNOWN, health_reason=self.error)
        if app not in self.apps:
            return MISSING
        if self.health is None:
            return NOT_READ
        return self.health.get(app) or AppHealth(Health.UNKNOWN, health_reason="the platform reported no state for it")


NOT_READ = AppHealth(Health.UNKNOWN, health_reason="health not read")
MISSING = AppHealth(Health.MISSING, health_reason="the app does not exist")  # one, shared by every absent app
ABSENT = ("absent",)  # the diff of every missing resource


@dataclass(frozen=True, slots=True)  # three per solution, kept by the console for the whole fleet
class AppStatus:
    component: str
    pinned: str
    resolved: str | None
    live: str | None
    latest: str | None
    sync: Sync
    freshness: Freshness
    health: AppHealth = NOT_READ

    def to_json(self) -> dict[str, Any]:
        return {"pinned": self.pinned, "resolved": self.resolved, "live": self.live, "latest": self.latest,
                "sync": self.sync, "freshness": self.freshness, "health": str(self.health.health),
                "revision": self.health.revision, "ready_revision": self.health.ready_revision,
                "health_reason": self.health.health_reason}


@dataclass(frozen=True, slots=True)  # about sixteen per solution, kept by the console for the whole fleet
class ResourceStatus:
    kind: str
    name: str
    sync: Sync
    diff: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "sync": self.sync, "diff": list(self.diff)}


@dataclass(frozen=True)
class SolutionStatus:
    id: str
    display_name: str
    sync: Sync
    freshness: Freshness
    apps: Mapping[str, AppStatus]
    resources: tuple[ResourceStatus, ...]
    reason: str | None = None  # why sync is unknown, or why the solution cannot be provisioned
    health: Health = Health.UNKNOWN  # the worst of its apps'
    health_reason: str | None = None  # the worst app's reason, named: "agent: image pull failed: …"
    labels: Mapping[str, str] = field(default_factory=dict)  # the solution file's labels: ring: canary

    def to_json(self) -> dict[str, Any]:
        # Called for every solution of a fleet in a row, whose JSON is kept until printed: built like
        # the statuses themselves, without the collector rescanning the fleet (orbit_ops.bulk).
        with bulk_built():
            body: dict[str, Any] = {
                "id": self.id,
                "sync": self.sync,
                "freshness": self.freshness,
                "health": str(self.health),
                "health_reason": self.health_reason,
                "labels": dict(self.labels),
                "apps": {component: status.to_json() for component, status in self.apps.items()},
                "resources": [resource.to_json() for resource in self.resources],
            }
        if self.reason:
            body["reason"] = self.reason
        return body


@dataclass(frozen=True)
class ReleaseIndex:
    """The release records of the app components, for resolving ``latest`` and judging freshness.

    Answers are computed once per component: a fleet status asks them for every solution.
    """

    records: Mapping[str, list[ReleaseRecord]]
    _latest: dict[str, str | None] = field(default_factory=dict, init=False, repr=False, compare=False)
    _released: dict[str, set[str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def latest(self, component: str) -> str | None:
        if component not in self._latest:
            record = newest_release(self.records.get(component, []))
            self._latest[component] = record.version if record else None
        return self._latest[component]

    def released(self, component: str, version: str) -> bool:
        if component not in self._released:
            self._released[component] = {record.version for record in self.records.get(component, [])}
        return version in self._released[component]

    def resolve(self, component: str, pin: str) -> str | None:
        return self.latest(component) if pin == LATEST else pin


def freshness(pin: str, resolved: str | None, latest: str | None, released: bool) -> Freshness:
    """Freshness of one app's pin (pure; ``released`` says whether ``resolved`` has a release record)."""
    if resolved is None or not released:
        return "unreleased"
    if pin == LATEST:
        return "floating"
    if latest is not None and (version_key(latest) or ()) > (version_key(resolved) or ()):
        return "behind"
    return "current"


def resolved_versions(spec: SolutionSpec, releases: ReleaseIndex) -> dict[str, str | None]:
    return {component: releases.resolve(component, spec.pin(component)) for component in APP_COMPONENTS}


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a solution's status is judged against, known before anything live is: the version each component's
    pin resolves to, and the desired state (None when a ``latest`` pin has nothing released to resolve to)."""

    versions: Mapping[str, str | None]
    desired: DesiredSolution | None


def wanted(spec: SolutionSpec, target: PlatformTarget, releases: ReleaseIndex) -> Wanted:
    """The resolved versions and the desired state of ``spec`` (pure)."""
    versions = resolved_versions(spec, releases)
    desired = None
    if all(version is not None for version in versions.values()):
        desired = desired_state(spec, target, {component: str(version) for component, version in versions.items()})
    return Wanted(versions, desired)


def desired_for(spec: SolutionSpec, target: PlatformTarget, releases: ReleaseIndex) -> DesiredSolution | None:
    """The desired state, or None when a ``latest`` pin has nothing released to resolve to."""
    return wanted(spec, target, releases).desired


def solution_status(spec: SolutionSpec, target: PlatformTarget, releases: ReleaseIndex,
                    live: LiveSnapshot, known: Wanted | None = None) -> SolutionStatus:
    """Sync and freshness of one solution, per app and per resource (pure). ``known``: its :func:`wanted`, when it
    was made beforehand (while the live state was being read)."""
    known = known or wanted(spec, target, releases)
    versions, desired = known.versions, known.desired
    h = desired.h if desired is not None else azure_names(spec.id).h
    reason = live.error
    if desired is None:
        reason = reason or "a 'latest' pin has no released version to resolve to"
    resources = tuple(_resource_status(resource, live) for resource in desired.resources()) if desired else ()
    app_syncs = {resource.name: resource.sync for resource in resources if resource.kind == "app"}
    apps: dict[str, AppStatus] = {}
    for component in APP_COMPONENTS:
        pin = spec.pin(component)
        resolved = versions[component]
        latest = releases.latest(component)
        app_name = f"{component}-{h}"
        live_app = live.apps.get(app_name) if live.error is None else None
        apps[component] = AppStatus(
            component=component,
            pinned=pin,
            resolved=resolved,
            live=live_app.image_tag if live_app else None,
            latest=latest,
            sync=app_syncs.get(app_name, "unknown"),
            freshness=freshness(pin, resolved, latest, resolved is not None and releases.released(component, resolved)),
            health=live.health_of(app_name),
        )
    unreleased = [f"{c} {a.resolved or a.pinned}" for c, a in apps.items() if a.freshness == "unreleased"]
    if unreleased and reason is None:
        reason = "no release record for " + ", ".join(unreleased) + " (provisioning is refused)"
    health, health_reason = solution_health({component: app.health for component, app in apps.items()})
    return SolutionStatus(
        id=spec.id,
        display_name=spec.display_name,
        sync=_worst([r.sync for r in resources] or ["unknown"], SYNC_ORDER),
        freshness=_worst([a.freshness for a in apps.values()], FRESHNESS_ORDER),
        apps=apps,
        resources=resources,
        reason=reason,
        health=health,
        health_reason=health_reason,
        labels=spec.labels,
    )


def _resource_status(desired: Resource, live: LiveSnapshot) -> ResourceStatus:
    if live.error is not None:
        return ResourceStatus(desired.kind, desired.name, "unknown", (live.error,))
    current = live.get(desired)
    if current is None:
        return ResourceStatus(desired.kind, desired.name, "missing", ABSENT)
    changes = tuple(differences(desired, current))
    return ResourceStatus(desired.kind, desired.name, "drifted" if changes else "synced", changes)


def _worst(values: list[Any], order: tuple[Any, ...]) -> Any:
    return min(values, key=order.index)
