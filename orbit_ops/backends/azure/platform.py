"""Container apps and environment storages on Azure Container Apps, plus the account's file shares.

``AzurePlatform`` is the Azure ``AppPlatform`` and ``ShareStore`` in one object (shares are
delegated to :class:`~orbit_ops.backends.azure.files.AzureFileShares`), built over
azure-mgmt-appcontainers 5.x. It mirrors the local reference backend: the documents it sends and the
managed fields it reads back are shaped by :mod:`~orbit_ops.backends.azure.app_documents`, so what the
service fills in or keeps secret never shows up as drift.

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
429s. Listings are paged by the service; each page is one paced read. The app listing's pages are followed by
one worker thread (decision 0086); the revisions' by the SDK, a page a call.
Every blocking SDK call runs through :func:`~orbit_ops.backends.azure.common.call`: a worker thread,
retries of throttling and transient failures, and SDK errors mapped to ``orbit_ops.errors``; how a call
is paced, created once and waited for is :mod:`~orbit_ops.backends.azure.arm_calls`.

Health (decision 0046): the app states come from the same pages as ``list_apps`` (kept for the next health
read unless a write went through since), and revisions and replicas are read only for the apps the caller
asks about (those not plainly healthy), as shaped by :mod:`~orbit_ops.backends.azure.revision_documents`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from orbit_ops.backends.azure.app_documents import (
    app_from_document,
    app_from_model,
    app_patch,
    new_app_model,
    storage_from_document,
    storage_from_model,
    storage_model,
)
from orbit_ops.backends.azure.arm_calls import Pacing, create_once, found, inline_polling, wait
from orbit_ops.backends.azure.arm_pages import (
    API_VERSION,
    JsonObject,
    Unread,
    fetch_page,
    next_link_ahead,
    page_items,
    segment,
)
from orbit_ops.backends.azure.common import (
    AzureEndpoints,
    account_key,
    call,
    call_blocking,
    credential,
    in_thread,
    map_error,
)
from orbit_ops.backends.azure.files import AzureFileShares
from orbit_ops.backends.azure.revision_documents import (
    app_facts_from_document,
    needs_replicas,
    newest_first,
    revision_facts,
)
from orbit_ops.backends.base import AppsRead
from orbit_ops.bulk import bulk_built
from orbit_ops.config.model import AzureSettings
from orbit_ops.errors import BackendError, MissingOnPlatformError
from orbit_ops.fleet.health import AppFacts, RevisionFacts
from orbit_ops.fleet.resources import MANAGED_BY_TAG, App, Share, Storage

T = TypeVar("T")

MANAGED_BY = "orbit"
# How long the app states a listing of the apps carried may answer the next health read (see list_app_states).
STATES_KEPT_S = 15.0
# The blocks a streamed ARM body is read in (azure-core's default is 4 KiB): a listing page of 100 apps is some
# 270 KB, read while the event loop parses the page before; each block is a hand-over of the GIL (decision 0091).
ARM_BLOCK_SIZE = 1 << 20
# How long a plan's listing may stand for the sweep that applies it (see listing_current; decision 0072).
LISTING_KEPT_S = 15.0


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
        self._group_path = (f"/subscriptions/{segment(settings.subscription_id)}"
                            f"/resourceGroups/{segment(settings.resource_group)}")
        self._pacing = Pacing(self.options.reads, self.options.writes)
        self._client: Any = None
        self._lock = threading.Lock()
        self._states: tuple[float, dict[str, AppFacts]] | None = None  # (when listed, states) of the last list_apps
        self._writes = 0  # writes begun or ended through this instance (see listing_token)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        self.shares.close()

    # -- AppPlatform: container apps ----------------------------------------------------------------

    async def list_apps(self, on_page: AppsRead | None = None) -> dict[str, App]:
        """Every container app of the resource group tagged ``orbit-managed-by: orbit``, page by page; ``on_page``
        is called with each page's apps and their states as they are read.

        Raises:
            BackendError: a page could not be read (after retries).
        """
        client = self._arm()
        path = f"{self._group_path}/providers/Microsoft.App/containerApps"
        what = f"list the container apps of {self.resource_group}"
        reads = self._pacing.bucket("reads")
        loop = asyncio.get_running_loop()
        # A page as the thread hands it over: its items and link when the thread parsed it, else its body and the
        # link the thread read from the body's end and followed (next_link_ahead).
        pages: asyncio.Queue[tuple[list[JsonObject] | bytes, str | None] | None] = asyncio.Queue()
        stop = threading.Event()

        def deliver(page: tuple[list[JsonObject] | bytes, str | None] | None) -> None:
            try:
                loop.call_soon_threadsafe(pages.put_nowait, page)
            except RuntimeError:  # the loop has closed: nobody reads the listing any more
                stop.set()

        def follow() -> None:
            # One worker thread follows the nextLinks (decision 0086): each page is asked for as soon as the one
            # before has arrived, paced and retried as every read is, while the event loop parses the pages and
            # reads their apps. The next link is read from the end of a page's body, so the next request leaves
            # before the page is parsed (decision 0091); a body whose end does not say is parsed here first.
            link: str | None = None
            try:
                while not stop.is_set():
                    body = call_blocking(fetch_page, client, path, link, what=what, buckets=(reads,))
                    ahead = next_link_ahead(body)
                    if isinstance(ahead, Unread):
                        try:
                            items, link = page_items(body)
                        except ValueError as exc:
                            raise map_error(exc, what) from None
                        deliver((items, link))
                    else:
                        link = ahead
                        deliver((body, link))
                    if not link:
                        return
            finally:
                deliver(None)

        apps: dict[str, App] = {}
        states: dict[str, AppFacts] = {}
        worker = asyncio.ensure_future(in_thread(follow))
        try:
            while (page := await pages.get()) is not None:
                documents, followed = page
                if isinstance(documents, bytes):
                    try:
                        documents, link = page_items(documents)
                    except ValueError as exc:
                        raise map_error(exc, what) from None
                    if link != followed:  # never for a page that is JSON (see next_link_ahead)
                        # The links are not quoted: they are the service's, and an error is shown and logged.
                        raise BackendError(f"{what}: the nextLink read from the end of a page differs from the "
                                           "page's own")
                page_apps: dict[str, App] = {}
                page_states: dict[str, AppFacts] = {}
                with bulk_built():
                    for document in documents:
                        tags = document.get("tags")
                        if isinstance(tags, dict) and tags.get(MANAGED_BY_TAG) == MANAGED_BY:
                            app = app_from_document(document)
                            page_apps[app.name] = app
                            page_states[app.name] = app_facts_from_document(document)
                apps.update(page_apps)
                states.update(page_states)
                if on_page is not None:
                    on_page(page_apps, page_states)
            await worker  # the error of the page that could not be read, if one could not
        finally:
            stop.set()
            if not worker.done():  # cancelled: the thread stops before its next page; its end is nobody's news
                worker.add_done_callback(lambda done: done.cancelled() or done.exception())
        with self._lock:
            self._states = (time.monotonic(), states)
        return apps

    async def get_app(self, name: str) -> App | None:
        """The container app ``name`` (tagged or not), or None if it does not exist.

        Raises:
            BackendError: the read failed.
        """
        model = await self._get_app_model(name)
        return app_from_model(model) if model is not None else None

    async def create_app(self, app: App) -> None:
        """Create the app and wait until it is provisioned.

        Raises:
            ResourceExistsError: an app of that name exists (ARM's PUT would silently replace it).
            BackendError: the call or the provisioning failed.
        """
        client = self._arm()
        envelope = new_app_model(app, location=self.settings.location, environment_id=self.environment_id)
        what = f"create container app {app.name}"
        create = create_once(
            lambda: found(client.container_apps.get, self.resource_group, app.name),
            lambda: wait(lambda: client.container_apps.begin_create_or_update(
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
            live = found(client.container_apps.get, self.resource_group, app.name)
            if live is None:
                raise BackendError(f"{what}: it does not exist")
            patch = app_patch(app, live, location=self.settings.location)
            wait(lambda: client.container_apps.begin_update(self.resource_group, app.name, patch,
                                                            polling=self._polling()), what)

        await self._read_then_write(update, what=what)

    async def list_app_states(self) -> dict[str, AppFacts]:
        """The status fields of every app Orbit manages, from the pages of the app listing.

        The states the last :meth:`list_apps` read answer once, when no write went through this platform since
        and they are under ``STATES_KEPT_S`` old: ``orbit status`` reads the apps and then their health from
        the same pages. Otherwise (a poll of health, a health read after writes) the apps are listed again.

        Raises:
            BackendError: a page could not be read (after retries).
        """
        with self._lock:
            kept, self._states = self._states, None
        if kept is not None and time.monotonic() - kept[0] < STATES_KEPT_S:
            return kept[1]
        await self.list_apps()
        with self._lock:
            listed, self._states = self._states, None
        return listed[1] if listed is not None else {}

    async def list_revisions(self, app: str) -> list[RevisionFacts]:
        """The revisions of ``app``, newest first, page by page; the replicas of only those that are active and
        degraded or unhealthy (their restarts and the containers' words), one read each.

        Raises:
            BackendError: a read failed (after retries).
        """
        client = self._arm()
        what = f"list the revisions of container app {app}"

        def page(token: str | None) -> tuple[list[Any], str | None]:
            pages = client.container_apps_revisions.list_revisions(self.resource_group, app).by_page(
                continuation_token=token)
            items = list(next(pages, []))
            return items, pages.continuation_token

        def replicas(revision: str) -> list[Any]:
            return list(client.container_apps_revision_replicas.list_replicas(
                self.resource_group, app, revision).value or [])

        models: list[Any] = []
        token: str | None = None
        while True:
            try:
                items, token = await self._read(page, token, what=what)
            except MissingOnPlatformError:
                return []
            models += items
            if not token:
                break
        revisions: list[RevisionFacts] = []
        for model in models:
            read = (await self._read(replicas, model.name, what=f"list the replicas of revision {model.name}")
                    if needs_replicas(model) else [])
            revisions.append(revision_facts(model, read))
        return newest_first(revisions)

    # -- AppPlatform: environment storages ----------------------------------------------------------

    async def list_storages(self) -> dict[str, Storage]:
        """Every environment storage of the environment, in one call (the API is not paged).

        Raises:
            BackendError: the listing failed.
        """
        client = self._arm()
        environment = segment(self.settings.environment)
        path = f"{self._group_path}/providers/Microsoft.App/managedEnvironments/{environment}/storages"

        def listing() -> list[JsonObject]:
            return page_items(fetch_page(client, path, None))[0]

        documents = await self._read(listing, what=f"list the storages of environment {self.settings.environment}")
        with bulk_built():
            storages = [storage_from_document(document) for document in documents]
        return {storage.name: storage for storage in storages}

    async def get_storage(self, name: str) -> Storage | None:
        """The environment storage ``name``, or None if it does not exist.

        Raises:
            BackendError: the read failed.
        """
        client = self._arm()
        model = await self._read(found, client.managed_environments_storages.get, self.resource_group,
                                 self.settings.environment, name, what=f"read environment storage {name}")
        return storage_from_model(model) if model is not None else None

    async def create_storage(self, storage: Storage) -> None:
        """Create the environment storage (GET first: its PUT is an upsert).

        Raises:
            ResourceExistsError: a storage of that name exists.
            BackendError: the call failed, or the account key is not set.
        """
        client = self._arm()
        create = create_once(
            lambda: found(client.managed_environments_storages.get, self.resource_group, self.settings.environment,
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
                    api_version=API_VERSION,
                    **self.endpoints.pooled_transport(arm, self.options.arm,
                                                      connection_data_block_size=ARM_BLOCK_SIZE),
                )
            return self._client

    def _polling(self) -> Any:
        """The polling of one long-running operation, done in the thread that started it (see
        :func:`~orbit_ops.backends.azure.arm_calls.inline_polling`), at the interval the client options
        give (the SDK's 30 s otherwise; ARM's Retry-After hints take precedence either way)."""
        return inline_polling()(self.options.arm.get("polling_interval", 30),
                                path_format_arguments={"endpoint": self.endpoints.arm})

    async def _read(self, func: Callable[..., T], *args: Any, what: str) -> T:
        return await call(func, *args, what=what, buckets=(self._pacing.bucket("reads"),))

    async def _write(self, func: Callable[..., T], *args: Any, what: str) -> T:
        self._forget_states()
        try:
            return await call(func, *args, what=what, buckets=(self._pacing.bucket("writes"),))
        finally:
            self._forget_states()

    async def _read_then_write(self, func: Callable[..., T], *args: Any, what: str) -> T:
        """``func`` reads once, then writes: one read and one write token an attempt."""
        self._forget_states()
        try:
            return await call(func, *args, what=what,
                              buckets=(self._pacing.bucket("reads"), self._pacing.bucket("writes")))
        finally:
            self._forget_states()

    def _forget_states(self) -> None:
        """A write makes the app states the last listing carried stale for a health read, and every listing
        read before it not current (see :meth:`listing_current`)."""
        with self._lock:
            self._states = None
            self._writes += 1

    # -- listings that stand for a later read ------------------------------------------------------------

    def listing_token(self) -> tuple[AzurePlatform, int, float]:
        """Taken before a listing: what :meth:`listing_current` later compares (this instance, the writes made
        through it so far, when)."""
        with self._lock:
            return self, self._writes, time.monotonic()

    def listing_current(self, token: object) -> bool:
        """Whether a listing read after ``token`` was taken may stand for a new one: it was read by this instance,
        no write went through it since, and it is under ``LISTING_KEPT_S`` old. ARM offers no change token for
        a resource group, so this is what a sweep can know without listing again (decision 0072)."""
        if not isinstance(token, tuple) or len(token) != 3 or token[0] is not self:
            return False
        with self._lock:
            return bool(token[1] == self._writes and time.monotonic() - token[2] < LISTING_KEPT_S)

    async def _get_app_model(self, name: str) -> Any:
        client = self._arm()
        return await self._read(found, client.container_apps.get, self.resource_group, name,
                                what=f"read container app {name}")

    def _storage_put(self, storage: Storage) -> Callable[[], None]:
        """The blocking PUT of the environment storage (an upsert)."""
        client = self._arm()
        envelope = storage_model(storage, account_key())
        return lambda: client.managed_environments_storages.create_or_update(
            self.resource_group, self.settings.environment, storage.name, envelope)
