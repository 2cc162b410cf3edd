"""Reconciling provisioning (SPEC §3.3): a pure plan per solution, then an effectful apply.

:func:`plan_solution` compares the desired resources with a live snapshot, in dependency order
(shares → storages → apps): absent → create, differing managed fields → update, equal → nothing.
:func:`apply_solution` carries a plan out. A create that meets "already exists" (another process
won the race) re-reads that one resource and reconciles it, so it is never an error; a second
provision in a row finds nothing to do and writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orbit_ops.backends.base import AppPlatform, AppsRead, ShareStore
from orbit_ops.config.model import MIN_SHARE_QUOTA_GIB, SolutionSpec
from orbit_ops.errors import ResourceExistsError
from orbit_ops.fleet.drift import LiveSnapshot
from orbit_ops.fleet.resources import App, DesiredSolution, Resource, Share, Storage, differences

Action = Literal["create", "update", "none"]


@dataclass(frozen=True)
class ResourceAction:
    kind: str
    name: str
    action: Action
    changes: tuple[str, ...]
    desired: Resource = field(repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "action": self.action, "changes": list(self.changes)}


@dataclass(frozen=True)
class SolutionPlan:
    id: str
    actions: tuple[ResourceAction, ...]
    notes: tuple[str, ...] = ()

    @property
    def creates(self) -> int:
        return sum(1 for action in self.actions if action.action == "create")

    @property
    def updates(self) -> int:
        return sum(1 for action in self.actions if action.action == "update")

    @property
    def writes(self) -> int:
        return self.creates + self.updates

    def summary(self) -> str:
        if not self.writes:
            return "nothing to do"
        parts = [f"{self.creates} to create"] if self.creates else []
        if self.updates:
            parts.append(f"{self.updates} to update")
        return ", ".join(parts)


def plan_solution(spec: SolutionSpec, desired: DesiredSolution, live: LiveSnapshot) -> SolutionPlan:
    """The actions that converge ``live`` to ``desired`` (pure; nothing is read or written)."""
    actions = []
    for resource in desired.resources():
        current = live.get(resource)
        if current is None:
            actions.append(ResourceAction(resource.kind, resource.name, "create", _describe(resource), resource))
            continue
        changes = tuple(differences(resource, current))
        actions.append(ResourceAction(resource.kind, resource.name, "update" if changes else "none", changes,
                                      resource))
    notes: tuple[str, ...] = ()
    if spec.share_quota_gib < MIN_SHARE_QUOTA_GIB:
        notes = (f"share_quota_gib {spec.share_quota_gib} raised to the premium FileStorage minimum of "
                 f"{MIN_SHARE_QUOTA_GIB} GiB",)
    return SolutionPlan(id=spec.id, actions=tuple(actions), notes=notes)


def _describe(resource: Resource) -> tuple[str, ...]:
    if isinstance(resource, Share):
        return (f"quota {resource.quota_gib} GiB", f"role {resource.metadata.get('role', '?')}")
    if isinstance(resource, Storage):
        return (f"{resource.share_name} {resource.access_mode}",)
    return (f"image {resource.image.rsplit('/', 1)[-1]}", *(f"secret {name} by reference" for name in resource.secrets))


@dataclass
class WriteCounter:
    """Counts the write calls an apply makes (``writes`` in the provision result)."""

    writes: int = 0


async def read_live(platform: AppPlatform, shares: ShareStore) -> LiveSnapshot:
    """One listing per resource type for the whole environment.

    Raises:
        BackendError: a listing failed.
    """
    listings = LiveListings(platform, shares)
    try:
        return await listings.snapshot()
    finally:
        await listings.close()


class LiveListings:
    """The listings of :func:`read_live`, started together: the app pages follow one another, the storages and
    the shares need not wait for them. ``on_page`` is told each page of apps as it is read (``AppPlatform.list_apps``),
    so a caller may judge what it has while the rest is read; :meth:`others` answers the storages and the shares
    once both are listed. Made on a running event loop; :meth:`close` it in a ``finally``."""

    def __init__(self, platform: AppPlatform, shares: ShareStore, on_page: AppsRead | None = None) -> None:
        taken = getattr(platform, "listing_token", None)
        self.token = taken() if callable(taken) else None
        # Without a hook, called as before: a platform written before ``on_page`` (a test's) still fits.
        self.apps = asyncio.ensure_future(platform.list_apps(on_page) if on_page else platform.list_apps())
        self.storages = asyncio.ensure_future(platform.list_storages())
        self.shares = asyncio.ensure_future(shares.list_shares())

    def others(self) -> tuple[Mapping[str, Storage], Mapping[str, Share]] | None:
        """The storages and the shares when both are listed (None before, or when either failed)."""
        for task in (self.storages, self.shares):
            if not task.done() or task.cancelled() or task.exception() is not None:
                return None
        return self.storages.result(), self.shares.result()

    async def snapshot(self) -> LiveSnapshot:
        """All three, their failures taken in the order apps, storages, shares.

        Raises:
            BackendError: a listing failed.
        """
        return LiveSnapshot(apps=await self.apps, storages=await self.storages, shares=await self.shares,
                            token=self.token)

    async def close(self) -> None:
        """Cancel what is still being read, and wait for it."""
        tasks = (self.apps, self.storages, self.shares)
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def still_current(platform: AppPlatform, snapshot: LiveSnapshot) -> bool:
    """Whether ``snapshot`` (read by :func:`read_live`) may stand for a new listing of ``platform``: only a
    platform that can tell (Azure: read by this instance moments ago, nothing written through it since) says so;
    any other answers no, and is listed again (the local backend answers a repeated listing from memory while
    its database is unchanged)."""
    check = getattr(platform, "listing_current", None)
    return snapshot.error is None and snapshot.token is not None and callable(check) and bool(check(snapshot.token))


async def read_solution(platform: AppPlatform, shares: ShareStore, desired: DesiredSolution) -> LiveSnapshot:
    """The live state of one solution's resources, read one by one (used after waiting for its lock)."""
    apps: dict[str, App] = {}
    storages: dict[str, Storage] = {}
    found_shares: dict[str, Share] = {}
    for share in desired.shares:
        if (got := await shares.get_share(share.name)) is not None:
            found_shares[share.name] = got
    for storage in desired.storages:
        if (got_storage := await platform.get_storage(storage.name)) is not None:
            storages[storage.name] = got_storage
    for app in desired.apps:
        if (got_app := await platform.get_app(app.name)) is not None:
            apps[app.name] = got_app
    return LiveSnapshot(apps=apps, storages=storages, shares=found_shares)


async def apply_solution(
    plan: SolutionPlan,
    platform: AppPlatform,
    shares: ShareStore,
    log: Callable[[str], None],
    counter: WriteCounter,
    *,
    fence: Callable[[], Awaitable[None]] | None = None,
) -> list[ResourceAction]:
    """Carry out ``plan`` in order; returns the actions really taken (after reconciling races).

    ``fence`` is awaited before each write: the check that the solution's lock is still held
    (``orbit_ops.operations.lockstore.HeldLock.ensure``).

    Raises:
        BackendError: a call failed; the resources before it are converged, the rest untouched.
        LockLostError: ``fence`` found the lock lost; the resources before it are written, the rest untouched.
    """
    done: list[ResourceAction] = []
    for step in plan.actions:
        if step.action == "none":
            done.append(step)
            continue
        if fence is not None:
            await fence()
        if step.action == "create":
            try:
                counter.writes += 1
                await _create(step.desired, platform, shares)
                log(f"created {step.kind} {step.name} ({'; '.join(step.changes)})")
                done.append(step)
                continue
            except ResourceExistsError:
                # Someone else created it meanwhile: read it and reconcile instead.
                current = await _get(step.desired, platform, shares)
                changes = tuple(differences(step.desired, current)) if current is not None else ()
                if not changes:
                    log(f"{step.kind} {step.name} already exists and matches; nothing to do")
                    done.append(ResourceAction(step.kind, step.name, "none", (), step.desired))
                    continue
                step = ResourceAction(step.kind, step.name, "update", changes, step.desired)
                log(f"{step.kind} {step.name} already exists; reconciling")
                if fence is not None:
                    await fence()
        counter.writes += 1
        await _update(step.desired, platform, shares)
        log(f"updated {step.kind} {step.name}: {'; '.join(step.changes)}")
        done.append(step)
    return done


async def _create(resource: Resource, platform: AppPlatform, shares: ShareStore) -> None:
    if isinstance(resource, Share):
        await shares.create_share(resource)
    elif isinstance(resource, Storage):
        await platform.create_storage(resource)
    else:
        await platform.create_app(resource)


async def _update(resource: Resource, platform: AppPlatform, shares: ShareStore) -> None:
    if isinstance(resource, Share):
        await shares.update_share(resource)
    elif isinstance(resource, Storage):
        await platform.update_storage(resource)
    else:
        await platform.update_app(resource)


async def _get(resource: Resource, platform: AppPlatform, shares: ShareStore) -> Resource | None:
    if isinstance(resource, Share):
        return await shares.get_share(resource.name)
    if isinstance(resource, Storage):
        return await platform.get_storage(resource.name)
    return await platform.get_app(resource.name)
