"""The embedded platform backend: container apps, environment storages and file shares kept in SQLite.

``LocalPlatform`` stands in for Azure Container Apps and Azure Files so that ``orbit demo`` and the
tests provision for real, and it is the reference implementation of ``AppPlatform`` and ``ShareStore``.
Each resource is stored the way the service keeps it: a JSON document shaped like the ARM resource
(``properties.template.containers``, ``configuration.registries``, ``identity``, ``systemData``...),
including fields only the service fills in (provisioning state, revision names, timestamps, etags).
Reads map a document back to :mod:`orbit_ops.fleet.resources` types with managed fields only, so those
service-filled fields can never show up as drift, exactly as on Azure.

``<state_dir>/platform.sqlite`` is shared by threads and processes (a sweep provisions 8 solutions at
once, two ``orbit provision`` may run side by side): WAL, a busy timeout, and every write one short
``BEGIN IMMEDIATE`` transaction. A create is a plain INSERT whose primary-key conflict becomes
:class:`~orbit_ops.errors.ResourceExistsError`, so racing creates have exactly one winner. Shares are
also real folders under ``<state_dir>/shares/`` with a ``<name>.share.json`` sidecar for operators.
A listing reads only the managed parts of each document (cut out by SQLite's ``json_extract``) and is
answered from memory while the database is unchanged. See ``docs/decisions/0008-local-platform.md``
and ``docs/decisions/0014-fleet-speed.md``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, cast

from orbit_ops.bulk import bulk_built
from orbit_ops.config.model import MIN_SHARE_QUOTA_GIB
from orbit_ops.errors import BackendError, ResourceExistsError
from orbit_ops.fleet.resources import AccessMode, App, AppSecret, Mount, Resource, ResourceKind, Share, Storage
from orbit_ops.fsutil import atomic_write_text
from orbit_ops.sqlitestore import SqliteStore
from orbit_ops.statedir import PRIVATE_FILE_MODE, is_unwritable, make_private_dir

DATABASE_FILE = "platform.sqlite"
SHARES_DIR = "shares"
SIDECAR_SUFFIX = ".share.json"

# Where the local resources claim to live, so their ids have the shape of ARM ids.
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "orbit-local"
LOCATION = "local"
ENVIRONMENT = "orbit-local-env"
STORAGE_ACCOUNT = "local"  # what Workspace.target() names for the local backend
DEFAULT_DOMAIN = "orbit.localhost"  # the environment's default domain: revision FQDNs end with it

MAX_SHARE_QUOTA_GIB = 102400  # premium FileStorage: 100 GiB to 100 TiB

ACCESS_MODES: tuple[AccessMode, ...] = ("ReadWrite", "ReadOnly")
_SECRET_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,251}[a-z0-9])?$")
_SECRET_NAME_RULE = "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 253"
WRITE_PREFIXES = ("create_", "update_")

Document = dict[str, Any]
_Parsed = TypeVar("_Parsed")

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    document TEXT NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID
"""
_GROUP_ID = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
_ENVIRONMENT_ID = f"{_GROUP_ID}/providers/Microsoft.App/managedEnvironments/{ENVIRONMENT}"
_SHARES_ID = f"{_GROUP_ID}/providers/Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}/fileServices/default/shares"
_ACTOR = "orbit-local"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The services' own naming rules; a share name also becomes a folder name, so it must be checked.
_NAME_RULES: dict[ResourceKind, tuple[re.Pattern[str], str]] = {
    "app": (
        re.compile(r"^(?=.{2,32}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"),
        "2-32 lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit",
    ),
    "storage": (
        re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"),
        "1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit",
    ),
    "share": (
        re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$"),
        "3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
    ),
}


class LocalPlatform(SqliteStore):
    """Apps, environment storages and shares of one local environment (``AppPlatform`` and ``ShareStore``).

    One instance may be shared by threads and tasks; any number of instances, in any number of
    processes, may use the same ``state_dir``. ``calls`` records every Protocol call made through
    this instance as ``(method, name)`` (``"*"`` for a listing), like the Azure emulator's request log.
    """

    LABEL = "local platform store"
    SCHEMA_VERSION = _SCHEMA_VERSION

    def __init__(self, state_dir: Path) -> None:
        """Open (creating if needed) the platform store in ``state_dir`` (``<workspace>/.orbit``).

        Raises:
            BackendError: the folder or the database cannot be created or read, or was written by a
                newer Orbit.
        """
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DATABASE_FILE
        self.shares_dir = self.state_dir / SHARES_DIR
        self.calls: list[tuple[str, str]] = []
        # The last listing of each kind and the database version it was read at (see _list).
        self._listings: dict[ResourceKind, tuple[tuple[int, int], dict[str, Any]]] = {}
        folder_error = None
        try:
            make_private_dir(self.shares_dir)
        except OSError as exc:
            if not is_unwritable(exc):
                raise BackendError(f"cannot open the local platform store {self.path}: {exc}") from exc
            folder_error = exc  # read-only or full: the store is opened for reading only
        self._open(self.path, folder_error)

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute(_SCHEMA)

    def __enter__(self) -> LocalPlatform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def writes(self) -> int:
        """How many create/update calls were made through this instance (failed ones included)."""
        return sum(1 for method, _ in self.calls if method.startswith(WRITE_PREFIXES))

    def share_folder(self, name: str) -> Path:
        """The content folder of share ``name`` (what the solution's apps would see mounted)."""
        return self.shares_dir / name

    def sidecar_path(self, name: str) -> Path:
        """The JSON mirror of share ``name``'s document, for operators to look at."""
        return self.shares_dir / f"{name}{SIDECAR_SUFFIX}"

    def stored_document(self, kind: ResourceKind, name: str) -> Document | None:
        """The raw stored document of a resource, service-filled fields included; not recorded in ``calls``.

        Raises:
            BackendError: the store cannot be read.
        """
        return self._fetch(kind, name)

    # -- AppPlatform: container apps ------------------------------------------------------------

    async def list_apps(self) -> dict[str, App]:
        """Every container app of the environment, in one call.

        Raises:
            BackendError: the store cannot be read or holds a malformed document.
        """
        self.calls.append(("list_apps", "*"))
        return await asyncio.to_thread(self._list, "app", _app_from_document)

    async def get_app(self, name: str) -> App | None:
        """The container app ``name``, or None if it does not exist.

        Raises:
            BackendError: the store cannot be read or holds a malformed document.
        """
        self.calls.append(("get_app", name))
        return await asyncio.to_thread(self._get, "app", name, _app_from_document)

    async def create_app(self, app: App) -> None:
        """Create the container app with its first revision.

        Raises:
            ResourceExistsError: an app of that name exists.
            BackendError: the name breaks the service's rule, or the store cannot be written.
        """
        self.calls.append(("create_app", app.name))
        await asyncio.to_thread(self._create_app, app)

    async def update_app(self, app: App) -> None:
        """Replace the managed fields of an existing app; image, env or mount changes make a new revision.

        Raises:
            BackendError: the app does not exist, or the store cannot be written.
        """
        self.calls.append(("update_app", app.name))
        await asyncio.to_thread(self._update, "app", app.name, lambda document: _apply_app(document, app))

    # -- AppPlatform: environment storages ------------------------------------------------------

    async def list_storages(self) -> dict[str, Storage]:
        """Every environment storage (share link) of the environment, in one call.

        Raises:
            BackendError: the store cannot be read or holds a malformed document.
        """
        self.calls.append(("list_storages", "*"))
        return await asyncio.to_thread(self._list, "storage", _storage_from_document)

    async def get_storage(self, name: str) -> Storage | None:
        """The environment storage ``name``, or None if it does not exist.

        Raises:
            BackendError: the store cannot be read or holds a malformed document.
        """
        self.calls.append(("get_storage", name))
        return await asyncio.to_thread(self._get, "storage", name, _storage_from_document)

    async def create_storage(self, storage: Storage) -> None:
        """Create the environment storage; like Azure, the share it names need not exist yet.

        Raises:
            ResourceExistsError: a storage of that name exists.
            BackendError: the name or access mode is invalid, or the store cannot be written.
        """
        self.calls.append(("create_storage", storage.name))
        await asyncio.to_thread(self._create_storage, storage)

    async def update_storage(self, storage: Storage) -> None:
        """Replace the share, account and access mode of an existing environment storage.

        Raises:
            BackendError: the storage does not exist, the access mode is invalid, or the store cannot be written.
        """
        self.calls.append(("update_storage", storage.name))
        _check_access_mode(storage)
        await asyncio.to_thread(
            self._update, "storage", storage.name, lambda document: _apply_storage(document, storage)
        )

    # -- ShareStore -----------------------------------------------------------------------------

    async def list_shares(self) -> dict[str, Share]:
        """Every file share of the storage account, in one call.

        Raises:
            BackendError: the store cannot be read or holds a malformed document.
        """
        self.calls.append(("list_shares", "*"))
        return await asyncio.to_thread(self._list, "share", _share_from_document)

    async def get_share(self, name: str) -> Share | None:
        """The file share ``name``, or None if it does not exist.

        Raises:
            BackendError: the store cannot be read or holds a malformed document.
        """
        self.calls.append(("get_share", name))
        return await asyncio.to_thread(self._get, "share", name, _share_from_document)

    async def create_share(self, share: Share) -> None:
        """Create the share: its row, its content folder and its sidecar, or none of them.

        Raises:
            ResourceExistsError: a share of that name exists.
            BackendError: the name or quota breaks the service's rules, or the store or folder cannot be written.
        """
        self.calls.append(("create_share", share.name))
        await asyncio.to_thread(self._create_share, share)

    async def update_share(self, share: Share) -> None:
        """Replace the quota and metadata of an existing share (and its sidecar).

        Raises:
            BackendError: the share does not exist, the quota is out of range, or the store cannot be written.
        """
        self.calls.append(("update_share", share.name))
        _check_quota(share)
        await asyncio.to_thread(
            self._update, "share", share.name, lambda document: _apply_share(document, share), self._mirror_share
        )

    # -- blocking work, run in threads ------------------------------------------------------------

    def _create_app(self, app: App) -> None:
        _check_name("app", app.name)
        document = _new_app_document(app.name)
        _apply_app(document, app)
        _set_revision(document, 1)
        self._insert("app", app.name, 1, document)

    def _create_storage(self, storage: Storage) -> None:
        _check_name("storage", storage.name)
        _check_access_mode(storage)
        document = _new_storage_document(storage.name)
        _apply_storage(document, storage)
        self._insert("storage", storage.name, 0, document)

    def _create_share(self, share: Share) -> None:
        _check_name("share", share.name)
        _check_quota(share)
        document = _new_share_document(share.name)
        _apply_share(document, share)
        self._insert("share", share.name, 0, document, self._mirror_share)

    def _mirror_share(self, document: Document) -> None:
        """Make the share's folder and rewrite its sidecar; runs inside the write transaction."""
        name = str(document["name"])
        try:
            make_private_dir(self.share_folder(name))
            atomic_write_text(self.sidecar_path(name), json.dumps(document, indent=2, sort_keys=True) + "\n",
                              permissions=PRIVATE_FILE_MODE)
        except OSError as exc:
            raise BackendError(
                f"cannot write the folder or sidecar of share {name} under {self.shares_dir}: {exc}"
            ) from exc

    def _insert(
        self,
        kind: ResourceKind,
        name: str,
        revision: int,
        document: Document,
        after: Callable[[Document], None] | None = None,
    ) -> None:
        """Store a new resource; ``after`` runs inside the transaction, which its failure rolls back."""
        _stamp(kind, document, datetime.now(UTC), created=True)
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO resources (kind, name, revision, document) VALUES (?, ?, ?, ?)",
                    (kind, name, revision, _dump(document)),
                )
            except sqlite3.IntegrityError:
                raise ResourceExistsError(f"{kind} {name} already exists") from None
            if after is not None:
                after(document)

    def _update(
        self,
        kind: ResourceKind,
        name: str,
        apply: Callable[[Document], None],
        after: Callable[[Document], None] | None = None,
    ) -> None:
        """Read, change and write back one resource in one transaction, so concurrent updates never interleave."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT revision, document FROM resources WHERE kind = ? AND name = ?", (kind, name)
            ).fetchone()
            if row is None:
                raise BackendError(f"cannot update {kind} {name}: it does not exist (create it first)")
            revision = int(row[0])
            document = _load(kind, name, row[1])
            before = copy.deepcopy(document)
            try:
                moment = _next_write_time(kind, before)
                apply(document)
                # Like ACA: a change to the template (image, env, volumes) is a new revision; tags,
                # registries and identity are application-scope and keep the current one.
                if kind == "app" and document["properties"]["template"] != before["properties"]["template"]:
                    revision += 1
                    _set_revision(document, revision)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                raise BackendError(
                    f"the stored document of {kind} {name} is malformed ({type(exc).__name__}: {exc})"
                ) from None
            _stamp(kind, document, moment)
            conn.execute(
                "UPDATE resources SET revision = ?, document = ? WHERE kind = ? AND name = ?",
                (revision, _dump(document), kind, name),
            )
            if after is not None:
                after(document)

    def _fetch(self, kind: ResourceKind, name: str) -> Document | None:
        with self._guard():
            row = self._conn.execute(
                "SELECT document FROM resources WHERE kind = ? AND name = ?", (kind, name)
            ).fetchone()
        return None if row is None else _load(kind, name, row[0])

    def _get(self, kind: ResourceKind, name: str, parse: Callable[[Document], _Parsed]) -> _Parsed | None:
        document = self._fetch(kind, name)
        return None if document is None else _parse(kind, name, document, parse)

    def _list(self, kind: ResourceKind, parse: Callable[[Document], _Parsed]) -> dict[str, _Parsed]:
        """Every resource of ``kind``, parsed; answered again from memory while the database is unchanged.

        ``PRAGMA data_version`` changes when another connection (any process) commits, and the
        connection's ``total_changes`` when this one writes, so an unchanged pair means the same rows:
        a sweep that lists the fleet to plan and again to converge reads it once.
        """
        with self._guard():
            stamp = (int(self._conn.execute("PRAGMA data_version").fetchone()[0]), self._conn.total_changes)
            cached = self._listings.get(kind)
            if cached is not None and cached[0] == stamp:
                return dict(cached[1])
            try:
                rows = self._conn.execute(_LISTINGS[kind], (kind,)).fetchall()
            except sqlite3.OperationalError:
                rows = None  # a document is not valid JSON: the full read below names it
            if rows is None:
                documents = self._conn.execute(
                    "SELECT name, document FROM resources WHERE kind = ? ORDER BY name", (kind,)
                ).fetchall()
        with bulk_built():
            if rows is None:
                listing = {name: _parse(kind, name, _load(kind, name, text), parse) for name, text in documents}
            else:
                from_parts = cast(Callable[[list[Any]], "_Parsed | None"], _FROM_PARTS[kind])
                listing = {}
                for name, *types, parts in rows:
                    found = _parse(kind, name, [*types, *json.loads(parts)], from_parts)
                    if found is None:  # a part is missing or odd: read the whole document for the exact error
                        document = self._fetch(kind, name)
                        if document is None:
                            continue  # deleted meanwhile
                        found = _parse(kind, name, document, parse)
                    listing[name] = found
        with self._guard():
            self._listings[kind] = (stamp, listing)
        return dict(listing)


# -- documents: building them the way the service would ------------------------------------------


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _next_write_time(kind: ResourceKind, previous: Document) -> datetime:
    """Now, or just after the previous write if the clock has not moved on: every write gets a new time and etag."""
    now = datetime.now(UTC)
    last = previous["properties"]["lastModifiedTime"] if kind == "share" else previous["systemData"]["lastModifiedAt"]
    earlier = datetime.fromisoformat(last)
    return max(now, earlier + timedelta(microseconds=1))


def _system_data() -> Document:
    """ARM's record of who wrote a resource and when; the times are set by :func:`_stamp`."""
    return {
        "createdBy": _ACTOR,
        "createdByType": "Application",
        "createdAt": "",
        "lastModifiedBy": _ACTOR,
        "lastModifiedByType": "Application",
        "lastModifiedAt": "",
    }


def _stamp(kind: ResourceKind, document: Document, moment: datetime, *, created: bool = False) -> None:
    """Record a write the way each service does: ARM's systemData, or a share's last-modified time and etag."""
    if kind == "share":
        document["properties"]["lastModifiedTime"] = _timestamp(moment)
        # Azure Files etags are the hex of the last-modified time: a new one on every change.
        document["etag"] = f'"0x{(moment - _EPOCH) // timedelta(microseconds=1):X}"'
        return
    document["systemData"]["lastModifiedAt"] = _timestamp(moment)
    if created:
        document["systemData"]["createdAt"] = _timestamp(moment)


def _new_app_document(name: str) -> Document:
    """A container app as ACA returns it before any managed field is set, with the service's defaults."""
    return {
        "id": f"{_GROUP_ID}/providers/Microsoft.App/containerApps/{name}",
        "name": name,
        "type": "Microsoft.App/containerApps",
        "location": LOCATION,
        "tags": {},
        "identity": {"type": "None"},
        "systemData": _system_data(),
        "properties": {
            "provisioningState": "Succeeded",
            "runningStatus": "Running",
            "managedEnvironmentId": _ENVIRONMENT_ID,
            "environmentId": _ENVIRONMENT_ID,
            "workloadProfileName": "Consumption",
            "latestRevisionName": "",
            "latestReadyRevisionName": "",
            "latestRevisionFqdn": "",
            "configuration": {
                "activeRevisionsMode": "Single",
                "maxInactiveRevisions": 100,
                "registries": [],
                "secrets": [],
            },
            "template": {
                "containers": [
                    {
                        "name": name,
                        "image": "",
                        "env": [],
                        "resources": {"cpu": 0.5, "memory": "1Gi", "ephemeralStorage": "2Gi"},
                        "volumeMounts": [],
                    }
                ],
                "scale": {"minReplicas": None, "maxReplicas": 10},
                "volumes": [],
            },
        },
    }


def _apply_app(document: Document, app: App) -> None:
    """Set the managed fields of ``app`` in ``document``, leaving every other field as it was.

    Raises:
        BackendError: a secret or a ``secretRef`` breaks a rule of the service (nothing is changed).
    """
    _check_secrets(app)
    properties = document["properties"]
    document["tags"] = dict(app.tags)
    if app.identities:
        # principalId/clientId are the identity's own; derived from its id so they stay stable and say nothing.
        assigned = {}
        for resource_id in app.identities:
            identity_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, resource_id))
            assigned[resource_id] = {"principalId": identity_uuid, "clientId": identity_uuid}
        document["identity"] = {"type": "UserAssigned", "userAssignedIdentities": assigned}
    else:
        document["identity"] = {"type": "None"}
    registries: list[Document] = []
    if app.registry_server:
        registry: Document = {"server": app.registry_server}
        if app.identity:
            registry["identity"] = app.identity
        registries.append(registry)
    properties["configuration"]["registries"] = registries
    # Key Vault references only, as the service keeps them: a name, the secret's URL and who reads it.
    properties["configuration"]["secrets"] = [
        {"name": name, "keyVaultUrl": secret.key_vault_url, "identity": secret.identity}
        for name, secret in app.secrets.items()
    ]
    template = properties["template"]
    container = template["containers"][0]
    container["image"] = app.image
    container["env"] = [{"name": key, "value": value} for key, value in app.env.items()] + [
        {"name": key, "secretRef": secret} for key, secret in app.secret_env.items()
    ]
    container["volumeMounts"] = [{"volumeName": m.storage_name, "mountPath": m.mount_path} for m in app.mounts]
    volumes = dict.fromkeys(m.storage_name for m in app.mounts)
    template["volumes"] = [{"name": s, "storageType": "AzureFile", "storageName": s} for s in volumes]


def _set_revision(document: Document, revision: int) -> None:
    """Name revision number ``revision`` like ACA does (``<app>--<suffix>``) and point the app at it."""
    name = document["name"]
    template = json.dumps(document["properties"]["template"], sort_keys=True)
    suffix = hashlib.sha256(f"{name}\n{revision}\n{template}".encode()).hexdigest()[:7]
    revision_name = f"{name}--{suffix}"
    properties = document["properties"]
    properties["latestRevisionName"] = revision_name
    properties["latestReadyRevisionName"] = revision_name
    properties["latestRevisionFqdn"] = f"{revision_name}.{DEFAULT_DOMAIN}"


def _new_storage_document(name: str) -> Document:
    return {
        "id": f"{_ENVIRONMENT_ID}/storages/{name}",
        "name": name,
        "type": "Microsoft.App/managedEnvironments/storages",
        "systemData": _system_data(),
        "properties": {"azureFile": {}},
    }


def _apply_storage(document: Document, storage: Storage) -> None:
    # The account key is write-only on Azure and there is none locally: it is never stored.
    document["properties"]["azureFile"] = {
        "accountName": storage.account_name,
        "shareName": storage.share_name,
        "accessMode": storage.access_mode,
    }


def _new_share_document(name: str) -> Document:
    return {
        "id": f"{_SHARES_ID}/{name}",
        "name": name,
        "type": "Microsoft.Storage/storageAccounts/fileServices/shares",
        "etag": "",
        "properties": {
            "accessTier": "Premium",
            "enabledProtocols": "SMB",
            "leaseStatus": "unlocked",
            "leaseState": "available",
            "lastModifiedTime": "",
            "shareQuota": 0,
            "metadata": {},
        },
    }


def _apply_share(document: Document, share: Share) -> None:
    document["properties"]["shareQuota"] = share.quota_gib
    document["properties"]["metadata"] = dict(share.metadata)


# -- documents: reading back managed fields only ----------------------------------------------------


def _app_from_document(document: Document) -> App:
    properties = document["properties"]
    container = properties["template"]["containers"][0]
    return _app_from_parts(
        document["name"],
        container["image"],
        container.get("env"),
        container.get("volumeMounts"),
        properties["template"].get("volumes"),
        properties["configuration"].get("registries"),
        (document.get("identity") or {}).get("userAssignedIdentities"),
        document.get("tags"),
        properties["configuration"].get("secrets"),
    )


def _app_from_parts(name: str, image: str, env: Any, volume_mounts: Any, volumes: Any, registries: Any,
                    assigned_identities: Any, tags: Any, secrets: Any = None) -> App:
    storage_of = {v["name"]: v.get("storageName", v["name"]) for v in volumes or []}
    registries = registries or []
    assigned = list(assigned_identities or {})
    identity = (registries[0].get("identity") if registries else None) or (assigned[0] if assigned else "")
    env = env or []
    return App(
        name=name,
        image=image,
        env=_frozen({item["name"]: item["value"] for item in env if "secretRef" not in item}),
        mounts=tuple(
            Mount(storage_of.get(m["volumeName"], m["volumeName"]), m["mountPath"]) for m in volume_mounts or []
        ),
        tags=_frozen(tags or {}),
        registry_server=registries[0]["server"] if registries else "",
        identity=identity,
        secrets=MappingProxyType({
            item["name"]: AppSecret(item["keyVaultUrl"], item.get("identity") or "")
            for item in sorted(secrets or [], key=lambda item: str(item["name"]))
        }),
        secret_env=_frozen({item["name"]: item["secretRef"] for item in env if "secretRef" in item}),
    )


def _storage_from_document(document: Document) -> Storage:
    azure_file = document["properties"]["azureFile"]
    return Storage(
        name=document["name"],
        share_name=azure_file["shareName"],
        access_mode=cast(AccessMode, azure_file["accessMode"]),
        account_name=azure_file["accountName"],
    )


def _share_from_document(document: Document) -> Share:
    properties = document["properties"]
    return _share_from_parts(document["name"], properties["shareQuota"], properties.get("metadata"))


def _share_from_parts(name: str, quota: Any, metadata: Any) -> Share:
    return Share(name=name, quota_gib=int(quota), metadata=_frozen(metadata or {}))


# -- listings: managed fields cut out by SQLite ------------------------------------------------------
# A listing reads every resource of a kind. SQLite's json functions (C) hand back only the parts the
# read-back functions above use, as one small JSON array per row, with the types of the objects a
# whole-document read would index into. When such an object is not one, or a part
# that must be there is absent, that row is read whole and parsed as a GET would, so a malformed
# document fails exactly as before; a document that is not JSON at all makes the listing read whole
# documents, and the error names it.


def _select(types: tuple[str, ...], parts: tuple[str, ...]) -> str:
    """Per row: the name, the json_type of each of ``types``, and the ``parts`` (two or more) as one JSON array."""
    columns = [f"json_type(document, '{path}')" for path in types]
    columns.append("json_extract(document, " + ", ".join(f"'{path}'" for path in parts) + ")")
    return f"SELECT name, {', '.join(columns)} FROM resources WHERE kind = ? ORDER BY name"


_CONTAINER = "$.properties.template.containers[0]"
_LISTINGS: dict[ResourceKind, str] = {
    "app": _select(
        ("$.properties.configuration", "$.identity"),
        ("$.name", f"{_CONTAINER}.image", f"{_CONTAINER}.env", f"{_CONTAINER}.volumeMounts",
         "$.properties.template.volumes", "$.properties.configuration.registries",
         "$.identity.userAssignedIdentities", "$.tags", "$.properties.configuration.secrets"),
    ),
    "storage": _select((), ("$.name", "$.properties.azureFile")),
    "share": _select(("$.properties",), ("$.name", "$.properties.shareQuota", "$.properties.metadata")),
}


def _listed_app(parts: list[Any]) -> App | None:
    configuration, identity, name, image, *rest = parts
    if configuration != "object" or identity not in (None, "null", "object") or name is None or image is None:
        return None
    return _app_from_parts(name, image, *rest)


def _listed_storage(parts: list[Any]) -> Storage | None:
    name, azure_file = parts
    if name is None or azure_file is None:
        return None
    return _storage_from_document({"name": name, "properties": {"azureFile": azure_file}})


def _listed_share(parts: list[Any]) -> Share | None:
    properties, name, quota, metadata = parts
    if properties != "object" or name is None or quota is None:
        return None
    return _share_from_parts(name, quota, metadata)


_FROM_PARTS: dict[ResourceKind, Callable[[list[Any]], Resource | None]] = {
    "app": _listed_app,
    "storage": _listed_storage,
    "share": _listed_share,
}


# -- helpers ---------------------------------------------------------------------------------------


def _frozen(values: dict[str, str]) -> MappingProxyType[str, str]:
    return MappingProxyType(dict(sorted(values.items())))


def _dump(document: Document) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _load(kind: str, name: str, text: str) -> Document:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackendError(f"the stored document of {kind} {name} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BackendError(f"the stored document of {kind} {name} is not a JSON object")
    return document


def _parse(kind: str, name: str, document: Any, parse: Callable[[Any], _Parsed]) -> _Parsed:
    try:
        return parse(document)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise BackendError(f"the stored document of {kind} {name} is malformed ({type(exc).__name__}: {exc})") from None


def _check_name(kind: ResourceKind, name: str) -> None:
    pattern, rule = _NAME_RULES[kind]
    if not pattern.fullmatch(name):
        raise BackendError(f"invalid {kind} name {name!r}: {rule}")


def _check_secrets(app: App) -> None:
    """The service's rules for an app's secrets: a valid name, a Key Vault URL read with an identity the app
    has, and every ``secretRef`` naming one of them. Locally a secret is a reference and nothing else."""
    for name, secret in app.secrets.items():
        if not _SECRET_NAME.fullmatch(name):
            raise BackendError(f"invalid secret name {name!r} for app {app.name}: {_SECRET_NAME_RULE}")
        if not secret.key_vault_url or not secret.identity:
            raise BackendError(f"secret {name} of app {app.name} needs a keyVaultUrl and an identity (the local "
                               "platform keeps no secret values)")
        if secret.identity.lower() not in {resource_id.lower() for resource_id in app.identities}:
            raise BackendError(f"secret {name} of app {app.name} is read with identity {secret.identity}, which is "
                               "not assigned to the app")
    for variable, secret_name in app.secret_env.items():
        if secret_name not in app.secrets:
            raise BackendError(f"env {variable} of app {app.name} refers to secret {secret_name!r}, which the app "
                               "does not have")
        if variable in app.env:
            raise BackendError(f"env {variable} of app {app.name} has both a value and a secretRef")


def _check_access_mode(storage: Storage) -> None:
    if storage.access_mode not in ACCESS_MODES:
        raise BackendError(
            f"invalid access mode {storage.access_mode!r} for storage {storage.name}: use {' or '.join(ACCESS_MODES)}"
        )


def _check_quota(share: Share) -> None:
    if not MIN_SHARE_QUOTA_GIB <= share.quota_gib <= MAX_SHARE_QUOTA_GIB:
        raise BackendError(
            f"invalid quota {share.quota_gib} GiB for share {share.name}: premium file shares take"
            f" {MIN_SHARE_QUOTA_GIB}-{MAX_SHARE_QUOTA_GIB} GiB"
        )
