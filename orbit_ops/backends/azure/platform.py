"""Container apps and environment storages on Azure Container Apps, plus the account's file shares.

``AzurePlatform`` is the Azure ``AppPlatform`` and ``ShareStore`` in one object (shares are
delegated to :class:`~orbit_ops.backends.azure.files.AzureFileShares`), built over
azure-mgmt-appcontainers 5.x, whose models nest their fields under ``properties``. It mirrors the
local reference backend: reads map ARM documents back to managed fields only, so what the service
fills in (provisioning state, revisions, resource defaults, scale, principal ids) or keeps secret
(secret values, the storage account key) never shows up as drift. An app's Key Vault reference secrets
(name, ``keyVaultUrl``, identity) and the env vars taking them (``secretRef``) are managed; secrets with
a value, and env vars taking those, are someone else's (decision 0032).

Writes (decision 0013):
- create = GET, then PUT and wait for the long-running operation. ARM's PUT is an upsert, so the
  GET is what makes a create raise :class:`~orbit_ops.errors.ResourceExistsError`, which provisioning
  reconciles.
- update of an app = PATCH (JSON merge patch): tags, the pull identity, registries and the template's
  first container and volumes, built from a fresh GET so that what Orbit does not manage (secrets with
  values and the env vars taking them, CPU/memory, probes, ingress, scale, sidecars) is kept. A PUT would
  need the secret values, which GET never returns; the patch carries ``configuration.secrets`` (Key Vault
  references only) just when those differ.
- update of an environment storage = PUT (it has no PATCH); the account key is sent on every write,
  never read back, never compared, never logged.

Reads and writes to ARM are paced by two token buckets shared by the instance (reads 250 burst,
25/s; writes 200 burst, 10/s), so a sweep of many solutions slows itself down instead of collecting
429s. Listings are paged by the service; each page is one paced read and the SDK follows ``nextLink``.
Every blocking SDK call runs through :func:`~orbit_ops.backends.azure.common.call`: a worker thread,
retries of throttling and transient failures, and SDK errors mapped to ``orbit_ops.errors``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, cast

from orbit_ops.backends.azure.common import AzureEndpoints, TokenBucket, account_key, call, credential
from orbit_ops.backends.azure.files import AzureFileShares
from orbit_ops.config.model import AzureSettings
from orbit_ops.errors import BackendError, ResourceExistsError
from orbit_ops.fleet.resources import MANAGED_BY_TAG, AccessMode, App, AppSecret, Mount, Share, Storage
from orbit_ops.redact import redact

T = TypeVar("T")

MANAGED_BY = "orbit"
STORAGE_TYPE = "AzureFile"


@dataclass(frozen=True)
class ClientOptions:
    """How the SDK clients are made and paced.

    ``arm`` and ``files`` are extra keyword arguments for ``ContainerAppsAPIClient`` and
    ``ShareServiceClient``; production leaves them empty (SDK defaults), tests zero the waits
    (``polling_interval=0, retry_backoff_factor=0``; ``initial_backoff=0, increment_base=0,
    random_jitter_range=0``). ``reads``/``writes`` are (burst, tokens per second) of ARM's buckets.
    """

    arm: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, Any] = field(default_factory=dict)
    reads: tuple[float, float] = (250, 25)
    writes: tuple[float, float] = (200, 10)


DEFAULT_OPTIONS = ClientOptions()


class _Pacing:
    """The read and write buckets of one platform.

    ``asyncio`` primitives belong to one event loop and a CLI command may run several
    (``asyncio.run`` per step), so the buckets are re-made for a new loop, keeping their tokens.
    """

    def __init__(self, reads: tuple[float, float], writes: tuple[float, float]) -> None:
        self._rates = {"reads": reads, "writes": writes}
        self._buckets: dict[str, TokenBucket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def bucket(self, kind: str) -> TokenBucket:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            old, self._buckets, self._loop = self._buckets, {}, loop
            for name, (capacity, rate) in self._rates.items():
                bucket = TokenBucket(capacity, rate)
                if name in old:
                    bucket.tokens, bucket.updated = old[name].tokens, old[name].updated
                self._buckets[name] = bucket
        return self._buckets[kind]


class AzurePlatform:
    """Apps and environment storages of one ACA environment, and the shares of its storage account.

    One instance may serve many concurrent tasks (a sweep); they share its clients and its pacing.
    """

    def __init__(self, settings: AzureSettings, options: ClientOptions | None = None) -> None:
        self.settings = settings
        self.options = options or DEFAULT_OPTIONS
        self.endpoints = AzureEndpoints.from_settings(settings)
        self.resource_group = settings.resource_group
        self.environment_id = (
            f"/subscriptions/{settings.subscription_id}/resourceGroups/{settings.resource_group}"
            f"/providers/Microsoft.App/managedEnvironments/{settings.environment}"
        )
        self.shares = AzureFileShares(self.endpoints, settings.storage_account, self.options.files)
        self._pacing = _Pacing(self.options.reads, self.options.writes)
        self._client: Any = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        self.shares.close()

    # -- AppPlatform: container apps ----------------------------------------------------------------

    async def list_apps(self) -> dict[str, App]:
        """Every container app of the resource group tagged ``orbit-managed-by: orbit``, page by page.

        Raises:
            BackendError: a page could not be read (after retries).
        """
        client = self._arm()

        def page(token: str | None) -> tuple[list[Any], str | None]:
            pages = client.container_apps.list_by_resource_group(self.resource_group).by_page(continuation_token=token)
            items = list(next(pages, []))
            return items, pages.continuation_token

        apps: dict[str, App] = {}
        token: str | None = None
        while True:
            items, token = await self._read(page, token, what=f"list the container apps of {self.resource_group}")
            for model in items:
                if (model.tags or {}).get(MANAGED_BY_TAG) == MANAGED_BY:
                    app = _app_from_model(model)
                    apps[app.name] = app
            if not token:
                return apps

    async def get_app(self, name: str) -> App | None:
        """The container app ``name`` (tagged or not), or None if it does not exist.

        Raises:
            BackendError: the read failed.
        """
        model = await self._get_app_model(name)
        return _app_from_model(model) if model is not None else None

    async def create_app(self, app: App) -> None:
        """Create the app and wait until it is provisioned.

        Raises:
            ResourceExistsError: an app of that name exists (ARM's PUT would silently replace it).
            BackendError: the call or the provisioning failed.
        """
        client = self._arm()
        envelope = self._new_app_model(app)
        what = f"create container app {app.name}"
        create = _create_once(
            lambda: _found(client.container_apps.get, self.resource_group, app.name),
            lambda: _wait(lambda: client.container_apps.begin_create_or_update(
                self.resource_group, app.name, envelope, polling=self._polling()), what),
            f"container app {app.name} already exists")
        await self._read_then_write(create, what=what)

    async def update_app(self, app: App) -> None:
        """Converge the managed fields of an existing app with a JSON merge patch, and wait for it.

        Raises:
            BackendError: the app does not exist, or the call or the provisioning failed.
        """
        client = self._arm()
        what = f"update container app {app.name}"

        def update() -> None:  # the read and the write in one trip to a worker thread
            live = _found(client.container_apps.get, self.resource_group, app.name)
            if live is None:
                raise BackendError(f"{what}: it does not exist")
            patch = self._app_patch(app, live)
            _wait(lambda: client.container_apps.begin_update(self.resource_group, app.name, patch,
                                                             polling=self._polling()), what)

        await self._read_then_write(update, what=what)

    # -- AppPlatform: environment storages ----------------------------------------------------------

    async def list_storages(self) -> dict[str, Storage]:
        """Every environment storage of the environment, in one call (the API is not paged).

        Raises:
            BackendError: the listing failed.
        """
        client = self._arm()

        def listing() -> list[Any]:
            collection = client.managed_environments_storages.list(self.resource_group, self.settings.environment)
            return list(collection.value or [])

        models = await self._read(listing, what=f"list the storages of environment {self.settings.environment}")
        storages = [_storage_from_model(model) for model in models]
        return {storage.name: storage for storage in storages}

    async def get_storage(self, name: str) -> Storage | None:
        """The environment storage ``name``, or None if it does not exist.

        Raises:
            BackendError: the read failed.
        """
        client = self._arm()
        model = await self._read(_found, client.managed_environments_storages.get, self.resource_group,
                                 self.settings.environment, name, what=f"read environment storage {name}")
        return _storage_from_model(model) if model is not None else None

    async def create_storage(self, storage: Storage) -> None:
        """Create the environment storage (GET first: its PUT is an upsert).

        Raises:
            ResourceExistsError: a storage of that name exists.
            BackendError: the call failed, or the account key is not set.
        """
        client = self._arm()
        create = _create_once(
            lambda: _found(client.managed_environments_storages.get, self.resource_group, self.settings.environment,
                           storage.name),
            self._storage_put(storage), f"environment storage {storage.name} already exists")
        await self._read_then_write(create, what=f"create environment storage {storage.name}")

    async def update_storage(self, storage: Storage) -> None:
        """Replace the share, account and access mode of the environment storage (one PUT).

        Raises:
            BackendError: the call failed, or the account key is not set.
        """
        await self._write(self._storage_put(storage), what=f"update environment storage {storage.name}")

    # -- ShareStore ----------------------------------------------------------------------------------

    async def list_shares(self) -> dict[str, Share]:
        """See :meth:`AzureFileShares.list_shares`."""
        return await self.shares.list_shares()

    async def get_share(self, name: str) -> Share | None:
        """See :meth:`AzureFileShares.get_share`."""
        return await self.shares.get_share(name)

    async def create_share(self, share: Share) -> None:
        """See :meth:`AzureFileShares.create_share`."""
        await self.shares.create_share(share)

    async def update_share(self, share: Share) -> None:
        """See :meth:`AzureFileShares.update_share`."""
        await self.shares.update_share(share)

    # -- plumbing -------------------------------------------------------------------------------------

    def _arm(self) -> Any:
        """The ContainerAppsAPIClient, made on first use."""
        with self._lock:
            if self._client is None:
                from azure.mgmt.appcontainers import ContainerAppsAPIClient

                arm = self.endpoints.arm
                self._client = ContainerAppsAPIClient(
                    credential(),
                    self.settings.subscription_id,
                    base_url=arm,
                    credential_scopes=[arm + "/.default"],
                    **self.endpoints.pooled_transport(arm, self.options.arm),
                )
            return self._client

    def _polling(self) -> Any:
        """The polling of one long-running operation, done in the thread that started it (see
        ``_InlinePolling``), at the interval the client options give (the SDK's 30 s otherwise; ARM's
        Retry-After hints take precedence either way)."""
        return _inline_polling()(self.options.arm.get("polling_interval", 30),
                                 path_format_arguments={"endpoint": self.endpoints.arm})

    async def _read(self, func: Callable[..., T], *args: Any, what: str) -> T:
        return await call(func, *args, what=what, buckets=(self._pacing.bucket("reads"),))

    async def _write(self, func: Callable[..., T], *args: Any, what: str) -> T:
        return await call(func, *args, what=what, buckets=(self._pacing.bucket("writes"),))

    async def _read_then_write(self, func: Callable[..., T], *args: Any, what: str) -> T:
        """``func`` reads once, then writes: one read and one write token an attempt."""
        return await call(func, *args, what=what,
                          buckets=(self._pacing.bucket("reads"), self._pacing.bucket("writes")))

    async def _get_app_model(self, name: str) -> Any:
        client = self._arm()
        return await self._read(_found, client.container_apps.get, self.resource_group, name,
                                what=f"read container app {name}")

    def _storage_put(self, storage: Storage) -> Callable[[], None]:
        """The blocking PUT of the environment storage (an upsert)."""
        from azure.mgmt.appcontainers.models import (
            AzureFileProperties,
            ManagedEnvironmentStorage,
            ManagedEnvironmentStorageProperties,
        )

        client = self._arm()
        envelope = ManagedEnvironmentStorage(
            properties=ManagedEnvironmentStorageProperties(
                azure_file=AzureFileProperties(
                    account_name=storage.account_name,
                    account_key=account_key(),
                    share_name=storage.share_name,
                    access_mode=storage.access_mode,
                )
            )
        )
        return lambda: client.managed_environments_storages.create_or_update(
            self.resource_group, self.settings.environment, storage.name, envelope)

    def _new_app_model(self, app: App) -> Any:
        """The full ContainerApp of a create: environment, identity, registry, one container, volumes, tags."""
        from azure.mgmt.appcontainers.models import (
            Configuration,
            ContainerApp,
            ContainerAppProperties,
            Template,
        )

        return ContainerApp(
            location=self.settings.location,
            tags=dict(app.tags),
            identity=_identity(app.identities, keep_system=False) if app.identities else None,
            properties=ContainerAppProperties(
                managed_environment_id=self.environment_id,
                configuration=Configuration(registries=_registries(app, []), secrets=_secrets(app) or None),
                template=Template(containers=[_container(app, None, set())], volumes=_volumes(app)),
            ),
        )

    def _app_patch(self, app: App, live: Any) -> Any:
        """The merge patch that converges ``live`` to ``app`` and leaves every unmanaged field alone.

        Arrays are replaced whole by a merge patch, so the first container is rebuilt from the live
        one (its secretRef env vars, resources, probes, command are kept), other containers are sent
        back unchanged, and volumes they mount are kept. Tags Orbit does not want are deleted (null).
        """
        from azure.mgmt.appcontainers.models import (
            Configuration,
            ContainerApp,
            ContainerAppProperties,
            Template,
        )

        properties = live.properties
        template = properties.template if properties is not None else None
        configuration = properties.configuration if properties is not None else None
        containers = list((template.containers if template is not None else None) or [])
        others = containers[1:]
        init = list((template.init_containers if template is not None else None) or [])
        mounted = {m.volume_name for c in [*others, *init] for m in (c.volume_mounts or [])}
        volumes = _volumes(app)
        wanted = {volume.name for volume in volumes}
        volumes += [
            type(v)(v.as_dict()) for v in (template.volumes if template is not None else None) or []
            if v.name in mounted and v.name not in wanted
        ]
        by_reference, with_value = _live_secrets(configuration)
        converged = Configuration(
            registries=_registries(app, (configuration.registries if configuration is not None else None) or []))
        if not _same_secrets(app.secrets, by_reference):
            # The secrets array is replaced whole, and a secret with a value can only be sent back with its
            # value, which Orbit never reads (listSecrets): such a secret it does not replace blocks the change.
            kept = sorted(with_value - set(app.secrets))
            if kept:
                raise BackendError(
                    f"update container app {app.name}: cannot change its Key Vault secrets while it also holds secrets "
                    f"with values ({', '.join(kept)}): Orbit never reads secret values, and changing the secrets would "
                    "need them sent back; move them to Key Vault references in the solution file, or remove them "
                    "from the app")
            converged.secrets = _secrets(app)
        patch = ContainerApp(
            location=live.location or self.settings.location,  # unchanged; the model requires it
            properties=ContainerAppProperties(
                configuration=converged,
                template=Template(
                    containers=[_container(app, containers[0] if containers else None, with_value),
                                *(type(c)(c.as_dict()) for c in others)],
                    volumes=volumes,
                ),
            ),
        )
        tags: dict[str, str | None] = {key: None for key in (live.tags or {}) if key not in app.tags}
        tags.update(app.tags)
        patch["tags"] = tags
        if any(not _has_identity(live.identity, resource_id) for resource_id in app.identities):
            # A merge patch adds to userAssignedIdentities: identities assigned by others stay.
            kinds = _text(live.identity.type if live.identity is not None else "").replace(" ", "").split(",")
            patch.identity = _identity(app.identities, keep_system="SystemAssigned" in kinds)
        return patch


def _found(get: Callable[..., Any], *args: Any) -> Any:
    """``get(*args)`` (a blocking SDK read), or None where ARM answers that it does not exist."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return get(*args)
    except ResourceNotFoundError:
        return None


def _create_once(existing: Callable[[], Any], write: Callable[[], None], conflict: str) -> Callable[[], None]:
    """One create as a blocking function for :func:`call`: read ``existing``, ResourceExistsError(``conflict``)
    if there is something (ARM's PUT is an upsert and would replace it), else ``write``.

    The read comes first only until the write has gone out: a retry after that (a status poll that kept
    failing, a timeout) only writes again, since what it would find then is this create's own resource.
    """
    sent = False

    def attempt() -> None:
        nonlocal sent
        if not sent and existing() is not None:
            raise ResourceExistsError(conflict)
        sent = True
        write()

    return attempt


@functools.cache
def _inline_polling() -> type:
    """``ARMPolling`` that polls to the end inside ``initialize``, in the caller's thread.

    ``LROPoller`` starts a thread of its own for every operation not finished at once, while the thread
    that began it waits on that thread: in a sweep, one more thread started and handed over to per app
    written. Finished before ``LROPoller`` looks, the operation needs none; the polling itself (status
    URL, Retry-After, final GET, failures as ``HttpResponseError``) is ARMPolling's, unchanged. The
    operation's result is not made into a model: :func:`_wait` has no use for it.
    """
    from azure.mgmt.core.polling.arm_polling import ARMPolling

    class _InlinePolling(ARMPolling):
        def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
            super().initialize(client, initial_response, deserialization_callback)
            if not self.finished():
                self.run()

        def resource(self) -> None:
            # The app as the final GET returned it, as an SDK model: Orbit does not use it (it reads apps
            # back by listing), and building a ContainerApp model costs more CPU than the GET itself.
            return None

    return _InlinePolling


def _wait(begin: Callable[[], Any], what: str) -> None:
    """Start a long-running operation with ``begin`` and wait for its end; one that ends Failed/Canceled
    is a plain BackendError.

    azure-core reports such an end as an HttpResponseError carrying the (successful) status of the
    last poll, which would read as "Azure answered 200"; the operation's own error says what went wrong.
    """
    from azure.core.exceptions import HttpResponseError

    try:
        begin().result()
    except HttpResponseError as exc:
        if exc.status_code is None or exc.status_code >= 300:
            raise
        error = getattr(exc, "error", None)
        reason = f"{getattr(error, 'code', None) or 'Failed'}: {getattr(error, 'message', None) or exc.message}"
        raise BackendError(f"{what}: the operation failed ({redact(' '.join(reason.split()))[:300]})") from None


# -- App ↔ SDK models ---------------------------------------------------------------------------------


def _component(app: App) -> str:
    return app.name.rsplit("-", 1)[0] if "-" in app.name else app.name


def _container(app: App, live: Any, with_value: set[str]) -> Any:
    """Container 0 of ``app``; from ``live`` it keeps every field Orbit does not manage, among them the
    env vars that take a secret with a value (``with_value``: someone else's, decision 0032)."""
    from azure.mgmt.appcontainers.models import Container, EnvironmentVar, VolumeMount

    container = Container(live.as_dict()) if live is not None else Container(name=_component(app))
    kept = [EnvironmentVar(v.as_dict()) for v in (container.env or [])
            if v.secret_ref in with_value and v.name not in app.env and v.name not in app.secret_env]
    container.image = app.image
    container.env = [EnvironmentVar(name=name, value=value) for name, value in app.env.items()] + [
        EnvironmentVar(name=name, secret_ref=secret) for name, secret in app.secret_env.items()] + kept
    container.volume_mounts = [VolumeMount(volume_name=m.storage_name, mount_path=m.mount_path) for m in app.mounts]
    return container


def _volumes(app: App) -> list[Any]:
    from azure.mgmt.appcontainers.models import Volume

    names = dict.fromkeys(mount.storage_name for mount in app.mounts)
    return [Volume(name=name, storage_type=STORAGE_TYPE, storage_name=name) for name in names]


def _registries(app: App, live: list[Any]) -> list[Any]:
    """Orbit's registry first (pulled with the identity, no password), then any other registry kept."""
    from azure.mgmt.appcontainers.models import RegistryCredentials

    others = [RegistryCredentials(r.as_dict()) for r in live if r.server != app.registry_server]
    if not app.registry_server:
        return others
    ours = RegistryCredentials(server=app.registry_server, identity=app.identity or None)
    return [ours, *others]


def _identity(resource_ids: tuple[str, ...], *, keep_system: bool) -> Any:
    from azure.mgmt.appcontainers.models import ManagedServiceIdentity, UserAssignedIdentity

    return ManagedServiceIdentity(
        type="SystemAssigned,UserAssigned" if keep_system else "UserAssigned",
        user_assigned_identities={resource_id: UserAssignedIdentity() for resource_id in resource_ids},
    )


def _secrets(app: App) -> list[Any]:
    """The app's secrets as the service takes Key Vault references: name, URL and identity, no value."""
    from azure.mgmt.appcontainers.models import Secret

    return [Secret(name=name, key_vault_url=secret.key_vault_url, identity=secret.identity)
            for name, secret in app.secrets.items()]


def _live_secrets(configuration: Any) -> tuple[dict[str, AppSecret], set[str]]:
    """The live app's secrets: its Key Vault references by name, and the names of those with a value (which
    GET never returns: only their names are known)."""
    by_reference: dict[str, AppSecret] = {}
    with_value: set[str] = set()
    for secret in (configuration.secrets if configuration is not None else None) or []:
        if not secret.name:
            continue
        if secret.key_vault_url:
            by_reference[secret.name] = AppSecret(secret.key_vault_url, secret.identity or "")
        else:
            with_value.add(secret.name)
    return by_reference, with_value


def _same_secrets(desired: Mapping[str, AppSecret], live: Mapping[str, AppSecret]) -> bool:
    """Equal as drift compares them: the same names and URLs, identities compared without case (ARM ids)."""
    return set(desired) == set(live) and all(
        desired[name].key_vault_url == live[name].key_vault_url
        and desired[name].identity.lower() == live[name].identity.lower()
        for name in desired
    )


def _has_identity(identity: Any, resource_id: str) -> bool:
    if identity is None or "UserAssigned" not in _text(identity.type):
        return False
    return any(key.lower() == resource_id.lower() for key in identity.user_assigned_identities or {})


def _text(value: Any) -> str:
    """An SDK enum member or string as its wire value."""
    return str(getattr(value, "value", value) or "")


def _app_from_model(model: Any) -> App:
    """Managed fields of a ContainerApp: image, plain env, mounts, tags, registry and identity."""
    properties = model.properties
    template = properties.template if properties is not None else None
    configuration = properties.configuration if properties is not None else None
    containers = (template.containers if template is not None else None) or []
    container = containers[0] if containers else None
    storage_of = {v.name: v.storage_name or v.name for v in (template.volumes if template is not None else None) or []}
    registries = (configuration.registries if configuration is not None else None) or []
    assigned = list((model.identity.user_assigned_identities if model.identity is not None else None) or {})
    identity = (registries[0].identity if registries else None) or (assigned[0] if assigned else "")
    variables = (container.env if container is not None else None) or []
    env = {v.name: v.value or "" for v in variables if not v.secret_ref}
    by_reference, with_value = _live_secrets(configuration)
    # An env var taking a secret with a value is someone else's (decision 0032); one taking a Key Vault
    # reference is Orbit's, compared with the solution file.
    secret_env = {v.name: v.secret_ref for v in variables if v.secret_ref and v.secret_ref not in with_value}
    mounts = tuple(
        Mount(storage_of.get(m.volume_name, m.volume_name), m.mount_path)
        for m in (container.volume_mounts if container is not None else None) or []
    )
    return App(
        name=model.name,
        image=(container.image if container is not None else None) or "",
        env=_frozen(env),
        mounts=mounts,
        tags=_frozen(dict(model.tags or {})),
        registry_server=(registries[0].server if registries else None) or "",
        identity=identity,
        secrets=MappingProxyType(dict(sorted(by_reference.items()))),
        secret_env=_frozen(secret_env),
    )


def _storage_from_model(model: Any) -> Storage:
    """Managed fields of an environment storage; an NFS or empty storage reads as an unusable link (drift)."""
    properties = model.properties
    azure_file = properties.azure_file if properties is not None else None
    if azure_file is None:
        return Storage(name=model.name, share_name="", access_mode="ReadWrite", account_name="")
    return Storage(
        name=model.name,
        share_name=azure_file.share_name or "",
        access_mode=cast(AccessMode, _text(azure_file.access_mode)),
        account_name=azure_file.account_name or "",
    )


def _frozen(values: dict[str, str]) -> MappingProxyType[str, str]:
    return MappingProxyType(dict(sorted(values.items())))
