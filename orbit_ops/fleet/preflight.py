"""Preflight: before anything is written, name every solution whose env lacks a variable its new image requires.

An image declares the variables it cannot start without in its config label ``org.orbit.env.required``
(comma-separated names); the platform fails a revision of it whose env does not set one (the local platform
decides so in ``orbit_ops.backends.local.revisions``, Container Apps by the container exiting). A plan reads
the config of each distinct image it would make a new revision of, once, from the builder's registry
(:meth:`~orbit_ops.backends.base.ImageBuilder.image_labels`), and compares it with each app's desired env (its
plain env and its secret references). Naming is a warning: the operator decides, so a config that cannot be
read is one warning line, never a refusal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from orbit_ops.backends.base import ImageBuilder, ImageLabels, RecordedImage, required_env
from orbit_ops.errors import OrbitError
from orbit_ops.fleet.resources import App, DesiredSolution
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.redact import redact

if TYPE_CHECKING:
    from orbit_ops.fleet.planned import PlannedSolution
    from orbit_ops.fleet.roll import RollPlan
    from orbit_ops.workspace import Workspace

SHOWN_REASONS = 3  # a warning names this many reasons an image config was not read, then counts the rest


@dataclass(frozen=True)
class Lack:
    """One app whose target image requires variables its desired env does not set."""

    component: str
    image: str  # the full reference
    tag: str
    missing: tuple[str, ...]

    def describe(self) -> str:
        """``orbit 1.3.0-rc.1 requires MC_URL, not set``"""
        return f"{self.component} {self.tag} requires {', '.join(self.missing)}, not set"

    def to_json(self) -> dict[str, Any]:
        return {"component": self.component, "image": self.image, "missing": list(self.missing)}


@dataclass(frozen=True)
class Preflight:
    """What a plan's preflight found: per solution id, its lacks (only solutions lacking something), and why
    any image's config could not be read."""

    lacking: Mapping[str, tuple[Lack, ...]] = field(default_factory=lambda: MappingProxyType({}))
    warnings: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The block a plan shows: a heading, one line per solution lacking a variable, then the warnings."""
        lines = []
        if self.lacking:
            lines.append(f"preflight: {len(self.lacking)} solution(s) lack a variable their new image requires")
            lines += [f"  {solution}: {'; '.join(lack.describe() for lack in lacks)}"
                      for solution, lacks in sorted(self.lacking.items())]
        return lines + [f"preflight: warning: {warning}" for warning in self.warnings]


NO_PREFLIGHT = Preflight()  # a plan not (yet) preflighted


async def check_apps(builder: ImageBuilder, apps: Iterable[tuple[str, str, App]]) -> Preflight:
    """The preflight of ``apps`` (solution id, component, desired app): each distinct image read once.

    Never raises for the registry: a read that fails is the result's one warning.
    """
    wanted = [(solution, component, app, _recorded(component, app)) for solution, component, app in apps]
    images = list(dict.fromkeys(image for *_, image in wanted if image is not None))
    if not images:
        return NO_PREFLIGHT
    try:
        labels = await builder.image_labels(images)
    except OrbitError as exc:
        text = redact(" ".join(str(exc).split()))[:300]
        return Preflight(warnings=(f"image configs not read, nothing checked: {text}",))
    lacking: dict[str, list[Lack]] = {}
    for solution, component, app, image in wanted:
        read = labels.get(image) if image is not None else None
        if image is None or read is None or read.labels is None:
            continue
        given = set(app.env) | set(app.secret_env)
        missing = tuple(name for name in required_env(read.labels) if name not in given)
        if missing:
            lacking.setdefault(solution, []).append(Lack(component, app.image, image.tag, missing))
    frozen = MappingProxyType({solution: tuple(lacks) for solution, lacks in lacking.items()})
    return Preflight(frozen, _unread(images, labels))


def _recorded(component: str, app: App) -> RecordedImage | None:
    tag = app.image_tag
    return RecordedImage(component, app.image, app.registry_server, tag) if tag else None


def _unread(images: Sequence[RecordedImage], labels: Mapping[RecordedImage, ImageLabels]) -> tuple[str, ...]:
    """One warning naming the images whose config was not read, with why (the first few reasons)."""
    missing = ImageLabels(None, "not answered")
    unread = [image for image in images if labels.get(image, missing).labels is None]
    if not unread:
        return ()
    reasons = list(dict.fromkeys(redact(labels.get(image, missing).unreadable or "not answered") for image in unread))
    shown = "; ".join(reasons[:SHOWN_REASONS])
    more = f"; and {len(reasons) - SHOWN_REASONS} more" if len(reasons) > SHOWN_REASONS else ""
    names = ", ".join(f"{image.component}:{image.tag}" for image in unread)
    return (f"config of {len(unread)} image(s) not read, not checked ({names}): {shown}{more}",)


async def check_planned(workspace: Workspace, planned: Sequence[PlannedSolution]) -> tuple[list[PlannedSolution],
                                                                                             Preflight]:
    """The preflight of a provisioning plan: every app the plan creates or updates (a new revision) is checked.

    Returns the solutions with their lacks (``PlannedSolution.preflight``) and the whole preflight.
    """
    apps = []
    for solution in planned:
        if solution.plan is None or solution.desired is None:
            continue
        written = {action.name for action in solution.plan.actions
                   if action.kind == "app" and action.action in ("create", "update")}
        apps += [(solution.id, component, app) for component, app in _apps(solution.desired) if app.name in written]
    found = await check_apps(workspace.builder(), apps)
    return [dataclasses.replace(solution, preflight=found.lacking[solution.id]) if solution.id in found.lacking
            else solution for solution in planned], found


async def check_roll(workspace: Workspace, plan: RollPlan) -> RollPlan:
    """The roll with its preflight: each of its solutions' ``plan.component`` app at ``plan.version``.

    The app is the one the sweep after the pins would converge to (the solution's desired state with the new
    pin); a solution whose other pins cannot be resolved is not checked (its sweep refuses it).
    """
    from orbit_ops.fleet.drift import desired_for

    releases, target = workspace.release_index(), workspace.target()
    key = f"{plan.component}_tag"
    apps = []
    for solution_id, spec in plan.specs.items():
        desired = desired_for(dataclasses.replace(spec, images={**spec.images, key: plan.version}), target, releases)
        if desired is not None:
            apps.append((solution_id, plan.component, desired.app(plan.component)))
    return dataclasses.replace(plan, preflight=await check_apps(workspace.builder(), apps))


def _apps(desired: DesiredSolution) -> list[tuple[str, App]]:
    return [(component, desired.app(component)) for component in APP_COMPONENTS]
