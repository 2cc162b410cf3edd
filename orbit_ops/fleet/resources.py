"""The resources of one solution, as pure data: what provisioning converges to (SPEC §2.2).

The same types describe both sides: :func:`desired_state` builds them from a solution's config,
backends read them back from the platform. Only *managed* fields are in these types, so anything the
service fills in (defaults, provisioning state, secrets it never returns) can never cause drift.
Resources are converged in the order shares → storages (environment links) → apps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from orbit_ops.config.model import MIN_SHARE_QUOTA_GIB, SolutionSpec
from orbit_ops.names import APP_COMPONENTS, azure_names
from orbit_ops.redact import MASK, is_secret_name, redact
from orbit_ops.versions import image_tag

AccessMode = Literal["ReadWrite", "ReadOnly"]
ResourceKind = Literal["share", "storage", "app"]
KIND_ORDER: tuple[ResourceKind, ...] = ("share", "storage", "app")

SOLUTION_TAG = "orbit-solution-id"
MANAGED_BY_TAG = "orbit-managed-by"
METHODOLOGY_PATH = "/repo/trajectory-methodology"


def _frozen(values: dict[str, str] | None = None) -> MappingProxyType[str, str]:
    return MappingProxyType(dict(sorted((values or {}).items())))


@dataclass(frozen=True)
class Share:
    """An Azure Files share (premium FileStorage)."""

    name: str
    quota_gib: int
    metadata: MappingProxyType[str, str] = field(default_factory=_frozen)

    kind: ResourceKind = field(default="share", init=False)


@dataclass(frozen=True)
class Storage:
    """An environment storage of the ACA managed environment: a link to a share with an access mode.

    Access mode belongs to the link, not the mount: that is why the customer share has two links.
    """

    name: str
    share_name: str
    access_mode: AccessMode
    account_name: str

    kind: ResourceKind = field(default="storage", init=False)


@dataclass(frozen=True)
class Mount:
    storage_name: str
    mount_path: str


@dataclass(frozen=True)
class AppSecret:
    """A Container Apps secret by reference: the Key Vault secret's URL and the identity that reads it.

    There is no value, on either side: the service fetches it from Key Vault (decision 0032).
    """

    key_vault_url: str
    identity: str


def _frozen_secrets(values: dict[str, AppSecret] | None = None) -> MappingProxyType[str, AppSecret]:
    return MappingProxyType(dict(sorted((values or {}).items())))


@dataclass(frozen=True)
class App:
    """A container app: one container, its image, env, mounts, tags and registry pull identity.

    ``secrets`` are the app's Key Vault reference secrets by name; ``secret_env`` maps the env variables
    that take their value from one of them to its name (``secretRef``).
    """

    name: str
    image: str
    env: MappingProxyType[str, str] = field(default_factory=_frozen)
    mounts: tuple[Mount, ...] = ()
    tags: MappingProxyType[str, str] = field(default_factory=_frozen)
    registry_server: str = ""
    identity: str = ""
    secrets: MappingProxyType[str, AppSecret] = field(default_factory=_frozen_secrets)
    secret_env: MappingProxyType[str, str] = field(default_factory=_frozen)

    kind: ResourceKind = field(default="app", init=False)

    @property
    def identities(self) -> tuple[str, ...]:
        """Every user-assigned identity the app needs: the pull identity, then those its secrets are read with."""
        wanted = [self.identity] if self.identity else []
        wanted += [secret.identity for secret in self.secrets.values() if secret.identity]
        unique: dict[str, str] = {}
        for resource_id in wanted:  # ARM resource ids are case-insensitive: one identity, however written
            unique.setdefault(resource_id.lower(), resource_id)
        return tuple(unique.values())

    @property
    def image_tag(self) -> str | None:
        """The tag part of the image reference (None for a digest-only reference)."""
        last = self.image.rsplit("/", 1)[-1]
        if "@" in last:
            return None
        return last.rsplit(":", 1)[1] if ":" in last else None


Resource = Share | Storage | App


@dataclass(frozen=True)
class DesiredSolution:
    """Every resource one solution should have, in convergence order."""

    id: str
    h: str
    shares: tuple[Share, ...]
    storages: tuple[Storage, ...]
    apps: tuple[App, ...]

    def resources(self) -> tuple[Resource, ...]:
        return (*self.shares, *self.storages, *self.apps)

    def app(self, component: str) -> App:
        return next(app for app in self.apps if app.name == f"{component}-{self.h}")


@dataclass(frozen=True)
class PlatformTarget:
    """Where the solution's resources live: registry login server, storage account, pull identity."""

    registry: str  # login server (``orbitacr.azurecr.io``) or ``oci:.orbit/registry`` locally
    storage_account: str
    pull_identity: str


def desired_state(spec: SolutionSpec, target: PlatformTarget, versions: dict[str, str]) -> DesiredSolution:
    """The resources ``spec`` converges to; ``versions`` maps each app component to its resolved version.

    Pure: no I/O. ``versions`` must already have ``latest`` resolved (see ``Workspace.resolve_pin``).
    """
    names = azure_names(spec.id)
    quota = max(spec.share_quota_gib, MIN_SHARE_QUOTA_GIB)
    shares = tuple(
        Share(name=names.shares[role], quota_gib=quota, metadata=_frozen({"solution_id": spec.id, "role": role}))
        for role in ("customer", "internal")
    )
    storages = (
        Storage(names.storages["cust_rw"], names.shares["customer"], "ReadWrite", target.storage_account),
        Storage(names.storages["cust_ro"], names.shares["customer"], "ReadOnly", target.storage_account),
        Storage(names.storages["int_rw"], names.shares["internal"], "ReadWrite", target.storage_account),
    )
    mounts = {
        "agent": (Mount(names.storages["cust_rw"], "/repo"), Mount(names.storages["int_rw"], "/internal")),
        "orbit": (Mount(names.storages["cust_ro"], "/repo"),),
        "mc": (),
    }
    tags = _frozen({SOLUTION_TAG: spec.id, MANAGED_BY_TAG: "orbit"})
    apps = []
    for component in APP_COMPONENTS:
        env = dict(spec.env.get(component, {}))
        secret_env = spec.secret_env.get(component, {})
        if component == "agent" and "METHODOLOGY_PATH" not in secret_env:
            env.setdefault("METHODOLOGY_PATH", METHODOLOGY_PATH)
        secrets = {
            name: AppSecret(ref.key_vault_url, ref.identity or target.pull_identity)
            for name, ref in spec.secrets.get(component, {}).items()
        }
        apps.append(
            App(
                name=names.apps[component],
                image=f"{target.registry}/{component}:{image_tag(versions[component])}",
                env=_frozen(env),
                mounts=mounts[component],
                tags=tags,
                registry_server=target.registry,
                identity=target.pull_identity,
                secrets=_frozen_secrets(secrets),
                secret_env=_frozen(dict(secret_env)),
            )
        )
    return DesiredSolution(id=spec.id, h=names.h, shares=shares, storages=storages, apps=tuple(apps))


def differences(desired: Resource, live: Resource) -> list[str]:
    """Human-readable differences between two resources of the same kind, on managed fields only.

    Each entry reads like ``image 1.2.0 → 1.10.0``, ``env N 10 → 012`` or ``env LOG_LEVEL added (debug)``:
    an env value is shown exactly as it is (secret-shaped parts masked), except that the value of a
    secret-named variable (``DB_PASSWORD``, ``API_TOKEN``: ``redact.is_secret_name``) never is:
    ``env DB_PASSWORD *** → ***``.
    """
    if desired == live:  # the common case, answered by the dataclasses' generated __eq__
        return []
    changes: list[str] = []
    if isinstance(desired, Share) and isinstance(live, Share):
        if desired.quota_gib != live.quota_gib:
            changes.append(f"quota {live.quota_gib} → {desired.quota_gib} GiB")
        changes += _map_changes("metadata", desired.metadata, live.metadata)
    elif isinstance(desired, Storage) and isinstance(live, Storage):
        if desired.access_mode != live.access_mode:
            changes.append(f"link mode {live.access_mode} → {desired.access_mode}")
        if desired.share_name != live.share_name:
            changes.append(f"share {live.share_name} → {desired.share_name}")
        if desired.account_name != live.account_name:
            changes.append(f"account {live.account_name} → {desired.account_name}")
    elif isinstance(desired, App) and isinstance(live, App):
        if desired.image != live.image:
            before = live.image_tag or live.image
            after = desired.image_tag or desired.image
            same_repo = live.image.rsplit(":", 1)[0] == desired.image.rsplit(":", 1)[0]
            changes.append(f"image {before} → {after}" if same_repo else f"image {live.image} → {desired.image}")
        changes += _map_changes("env", desired.env, live.env, shown=_env_value)
        if desired.mounts != live.mounts:
            changes.append(f"mounts {_mounts(live.mounts)} → {_mounts(desired.mounts)}")
        changes += _map_changes("tag", desired.tags, live.tags)
        if desired.registry_server != live.registry_server:
            changes.append(f"registry {live.registry_server or '-'} → {desired.registry_server}")
        if desired.identity != live.identity:
            changes.append("pull identity changed")
        changes += _secret_changes(desired.secrets, live.secrets)
        changes += _secret_env_changes(desired.secret_env, live.secret_env)
    else:
        raise TypeError(f"cannot compare {type(desired).__name__} with {type(live).__name__}")
    return changes


def _map_changes(label: str, desired: MappingProxyType[str, str], live: MappingProxyType[str, str], *,
                 shown: Callable[[str, str], str] = lambda _key, value: value) -> list[str]:
    """``label key added (value)``, ``label key removed``, ``label key before → after``; ``shown`` is how a value
    of ``key`` may be shown (an env variable whose name marks a secret: masked)."""
    changes = []
    for key in sorted(set(desired) | set(live)):
        if key not in live:
            changes.append(f"{label} {key} added ({shown(key, desired[key])})")
        elif key not in desired:
            changes.append(f"{label} {key} removed")
        elif desired[key] != live[key]:
            changes.append(f"{label} {key} {shown(key, live[key])} → {shown(key, desired[key])}")
    return changes


def _secret_changes(desired: MappingProxyType[str, AppSecret], live: MappingProxyType[str, AppSecret]) -> list[str]:
    """What differs in the app's Key Vault references (references only: there are no values to show)."""
    changes = []
    for name in sorted(set(desired) | set(live)):
        if name not in live:
            changes.append(f"secret {name} added")
        elif name not in desired:
            changes.append(f"secret {name} removed")
        else:
            if desired[name].key_vault_url != live[name].key_vault_url:
                changes.append(f"secret {name} keyVaultUrl changed")
            if desired[name].identity.lower() != live[name].identity.lower():  # ARM ids are case-insensitive
                changes.append(f"secret {name} identity changed")
    return changes


def _secret_env_changes(desired: MappingProxyType[str, str], live: MappingProxyType[str, str]) -> list[str]:
    """What differs in the env variables that take their value from a secret (``secretRef``)."""
    changes = []
    for key in sorted(set(desired) | set(live)):
        if key not in live:
            changes.append(f"env {key} secretRef {desired[key]} added")
        elif key not in desired:
            changes.append(f"env {key} secretRef {live[key]} removed")
        elif desired[key] != live[key]:
            changes.append(f"env {key} secretRef {live[key]} → {desired[key]}")
    return changes


def _env_value(name: str, value: str) -> str:
    if is_secret_name(name):
        return MASK
    return redact(value) if value else '""'


def _mounts(mounts: tuple[Mount, ...]) -> str:
    return "[" + ", ".join(f"{m.storage_name}:{m.mount_path}" for m in mounts) + "]" if mounts else "[]"
