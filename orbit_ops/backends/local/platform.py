"""The embedded platform backend: container apps, environment storages and file shares kept in SQLite.

``LocalPlatform`` stands in for Azure Container Apps and Azure Files so that ``orbit demo`` and the
tests provision for real, and it is the reference implementation of ``AppPlatform`` and ``ShareStore``.
Each resource is stored the way the service keeps it: a JSON document shaped like the ARM resource
(:mod:`.documents`), read back as managed fields only (:mod:`.projections`), so service-filled fields
can never show up as drift, exactly as on Azure. The protocol methods are made from one table of
resource kinds (:mod:`.kinds`) over one list, get, create and update. Like Azure, a storage may name a
share that does not exist yet.

``<state_dir>/platform.sqlite`` is shared by threads and processes (a sweep provisions 8 solutions at
once, two ``orbit provision`` may run side by side): WAL, a busy timeout, and every write one short
``BEGIN IMMEDIATE`` transaction. A create is a plain INSERT whose primary-key conflict becomes
:class:`~orbit_ops.errors.ResourceExistsError`, so racing creates have exactly one winner. Shares are
also real folders under ``<state_dir>/shares/`` with a ``<name>.share.json`` sidecar for operators,
written inside the share's transaction (its row, folder and sidecar, or none of them). A listing reads
only the managed parts of each document (cut out by SQLite's ``json_extract``) and is answered from
memory while the database is unchanged. See ``docs/decisions/0008-local-platform.md`` and
``docs/decisions/0014-fleet-speed.md``.

An app's revisions (:mod:`.revisions`) are rows of kind ``revision`` in the same table, written in the
transaction of the app's write that made them; each decides when it is made whether it runs, from the local
registry the workspace hands over (decision 0043). Apps stored before revisions were kept have none: their
latest revision is derived from the app's document when asked for.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from orbit_ops.backends.base import AppsRead
from orbit_ops.backends.local import revisions
from orbit_ops.backends.local.documents import Document, next_write_time
from orbit_ops.backends.local.kinds import APPS, SHARES, STORAGES, Kind
from orbit_ops.backends.local.oci import LocalRegistry
from orbit_ops.backends.local.rules import check_name
from orbit_ops.bulk import bulk_built
from orbit_ops.errors import BackendError, ResourceExistsError
from orbit_ops.fleet.health import AppFacts, RevisionFacts
from orbit_ops.fleet.resources import App, Resource, ResourceKind
from orbit_ops.fsutil import atomic_write_text
from orbit_ops.sqlitestore import SqliteStore
from orbit_ops.statedir import PRIVATE_FILE_MODE, is_unwritable, make_private_dir

DATABASE_FILE = "platform.sqlite"
SHARES_DIR = "shares"
SIDECAR_SUFFIX = ".share.json"

R = TypeVar("R", bound=Resource)
_Parsed = TypeVar("_Parsed")
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError)

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


def _protocol_methods(kind: Kind[R]) -> tuple[
    Callable[[LocalPlatform], Coroutine[Any, Any, dict[str, R]]],
    Callable[[LocalPlatform, str], Coroutine[Any, Any, R | None]],
    Callable[[LocalPlatform, R], Coroutine[Any, Any, None]],
    Callable[[LocalPlatform, R], Coroutine[Any, Any, None]],
]:
    """``list_<plural>``, ``get_<kind>``, ``create_<kind>`` and ``update_<kind>`` of one kind: the file work
    runs in a thread so the caller stays live."""

    async def listing(self: LocalPlatform) -> dict[str, R]:
        return await asyncio.to_thread(self._list, kind)

    async def get(self: LocalPlatform, name: str) -> R | None:
        return await asyncio.to_thread(self._get, kind, name)

    async def create(self: LocalPlatform, resource: R) -> None:
        await asyncio.to_thread(self._create, kind, resource)

    async def update(self: LocalPlatform, resource: R) -> None:
        await asyncio.to_thread(self._update, kind, resource)

    what = kind.title
    for method, name, doc in (
        (listing, f"list_{kind.plural}", f"""Every {what} of the environment, in one call.

        Raises:
            BackendError: the store cannot be read or holds a malformed document.
        """),
        (get, f"get_{kind.name}", f"""The {what} ``name``, or None if it does not exist.

        Raises:
            BackendError: the store cannot be read or holds a malformed document.
        """),
        (create, f"create_{kind.name}", f"""Create the {what} (its document with the service's defaults).

        Raises:
            ResourceExistsError: a {kind.name} of that name exists.
            BackendError: a field breaks the service's rules, or the store cannot be written.
        """),
        (update, f"update_{kind.name}", f"""Replace the managed fields of an existing {what}.

        Raises:
            BackendError: it does not exist, a field breaks the service's rules, or the store cannot be written.
        """),
    ):
        method.__name__ = name
        method.__qualname__ = f"LocalPlatform.{name}"
        method.__doc__ = doc
    return listing, get, create, update


class LocalPlatform(SqliteStore):
    """Apps, environment storages and shares of one local environment (``AppPlatform`` and ``ShareStore``).

    One instance may be shared by threads and tasks; any number of instances, in any number of
    processes, may use the same ``state_dir``.
    """

    LABEL = "local platform store"
    SCHEMA_VERSION = _SCHEMA_VERSION

    def __init__(self, state_dir: Path, registry: LocalRegistry | None = None) -> None:
        """Open (creating if needed) the platform store in ``state_dir`` (``<workspace>/.orbit``); apps pull their
        images from ``registry`` (without one, no image pulls and every new revision fails, saying so).

        Raises:
            BackendError: the folder or the database cannot be created or read, or was written by a
                newer Orbit.
        """
        self.state_dir = Path(state_dir)
        self.registry = registry
        self.path = self.state_dir / DATABASE_FILE
        self.shares_dir = self.state_dir / SHARES_DIR
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

    # AppPlatform and ShareStore, made from the table of kinds.
    # Its listings are reads of the local database and parsing in this process, not waits on a service: a caller
    # has nothing to do meanwhile that would not slow them (``fleet.status.read_statuses``).
    lists_at_once = True
    _list_apps, get_app, create_app, update_app = _protocol_methods(APPS)
    list_storages, get_storage, create_storage, update_storage = _protocol_methods(STORAGES)
    list_shares, get_share, create_share, update_share = _protocol_methods(SHARES)

    async def list_apps(self, on_page: AppsRead | None = None) -> dict[str, App]:
        """Every app of the environment, in one call (read at once: ``on_page`` is not called).

        Raises:
            BackendError: the store cannot be read or holds a malformed document.
        """
        return await self._list_apps()

    async def list_app_states(self) -> dict[str, AppFacts]:
        """Every app's provisioningState, runningStatus and latest (ready) revision names, in one read.

        Raises:
            BackendError: the store cannot be read or holds a document that is not JSON.
        """
        return await asyncio.to_thread(self._app_states)

    async def list_revisions(self, app: str) -> list[RevisionFacts]:
        """The revisions of app ``app``, newest first (its derived latest one for an app stored before revisions).

        Raises:
            BackendError: the store cannot be read or holds a malformed document.
        """
        return await asyncio.to_thread(self._revisions, app)

    def share_folder(self, name: str) -> Path:
        """The content folder of share ``name`` (what the solution's apps would see mounted)."""
        return self.shares_dir / name

    def sidecar_path(self, name: str) -> Path:
        """The JSON mirror of share ``name``'s document, for operators to look at."""
        return self.shares_dir / f"{name}{SIDECAR_SUFFIX}"

    def stored_document(self, kind: ResourceKind, name: str) -> Document | None:
        """The raw stored document of a resource, service-filled fields included.

        Raises:
            BackendError: the store cannot be read.
        """
        return self._fetch(kind, name)

    # -- blocking work, run in threads ------------------------------------------------------------

    def _create(self, kind: Kind[R], resource: R) -> None:
        """Store a new resource; a share's folder and sidecar are written inside the transaction, which
        their failure rolls back."""
        check_name(kind.name, resource.name)
        kind.check(resource)
        document = kind.new_document(resource.name)
        kind.apply(document, resource)
        revision = kind.revise(document, None, 0)
        kind.stamp(document, datetime.now(UTC), True)
        made = self._new_revision(kind, document, changed=True)
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO resources (kind, name, revision, document) VALUES (?, ?, ?, ?)",
                    (kind.name, resource.name, revision, _dump(document)),
                )
            except sqlite3.IntegrityError:
                raise ResourceExistsError(f"{kind.name} {resource.name} already exists") from None
            if made is not None:
                self._store_revision(conn, resource.name, revision, made)
            if kind.mirrored:
                self._mirror_share(document)

    def _update(self, kind: Kind[R], resource: R) -> None:
        """Read, change and write back one resource in one transaction, so concurrent updates never interleave."""
        kind.check(resource)
        name = resource.name
        with self._write() as conn:
            row = conn.execute(
                "SELECT revision, document FROM resources WHERE kind = ? AND name = ?", (kind.name, name)
            ).fetchone()
            if row is None:
                raise BackendError(f"cannot update {kind.name} {name}: it does not exist (create it first)")
            stored = int(row[0])
            document = _load(kind.name, name, row[1])
            before = copy.deepcopy(document)
            try:
                moment = next_write_time(kind.written(before))
                kind.apply(document, resource)
                revision = kind.revise(document, before, stored)
            except _MALFORMED as exc:
                raise BackendError(
                    f"the stored document of {kind.name} {name} is malformed ({type(exc).__name__}: {exc})"
                ) from None
            kind.stamp(document, moment, False)
            made = self._new_revision(kind, document, changed=revision != stored)
            conn.execute(
                "UPDATE resources SET revision = ?, document = ? WHERE kind = ? AND name = ?",
                (revision, _dump(document), kind.name, name),
            )
            if made is not None:
                self._store_revision(conn, name, revision, made)
            if kind.mirrored:
                self._mirror_share(document)

    def _new_revision(self, kind: Kind[R], document: Document, *, changed: bool) -> Document | None:
        """The revision document a write that changed an app's template makes (None for any other write): its
        fate decided now from the registry, the app pointed at it as latest ready when it runs."""
        if not (kind.revisioned and changed):
            return None
        properties = document["properties"]
        error = revisions.failure(self.registry, properties["template"])
        if error is None:
            properties["latestReadyRevisionName"] = properties["latestRevisionName"]
        return revisions.new_revision(document, kind.written(document), error)

    def _store_revision(self, conn: sqlite3.Connection, app: str, number: int, revision: Document) -> None:
        """Store revision ``number`` of ``app`` inside the app's write transaction: a running one takes over from
        the active one before it, and only the newest :data:`~.revisions.KEPT_REVISIONS` are kept."""
        low, high = revisions.name_range(app)
        moment = revision["properties"]["createdTime"]
        if revision["properties"]["active"]:
            active = conn.execute(
                "SELECT name, document FROM resources WHERE kind = 'revision' AND name >= ? AND name < ? "
                "AND json_extract(document, '$.properties.active')", (low, high)).fetchall()
            for name, text in active:
                previous = _load("revision", name, text)
                revisions.deactivate(previous, moment)
                conn.execute("UPDATE resources SET document = ? WHERE kind = 'revision' AND name = ?",
                             (_dump(previous), name))
        conn.execute("INSERT OR REPLACE INTO resources (kind, name, revision, document) VALUES ('revision', ?, ?, ?)",
                     (revision["name"], number, _dump(revision)))
        conn.execute("DELETE FROM resources WHERE kind = 'revision' AND name >= ? AND name < ? AND revision <= ?",
                     (low, high, number - revisions.KEPT_REVISIONS))

    def _app_states(self) -> dict[str, AppFacts]:
        with self._guard():
            rows = self._conn.execute(revisions.APP_STATES).fetchall()
        with bulk_built():
            return {name: revisions.app_facts(name, json.loads(parts)) for name, parts in rows}

    def _revisions(self, app: str) -> list[RevisionFacts]:
        low, high = revisions.name_range(app)
        with self._guard():
            rows = self._conn.execute(
                "SELECT name, document FROM resources WHERE kind = 'revision' AND name >= ? AND name < ? "
                "ORDER BY revision DESC", (low, high)).fetchall()
        if rows:
            return [_parse("revision", name, _load("revision", name, text), revisions.facts) for name, text in rows]
        document = self._fetch("app", app)
        return [] if document is None else _parse("app", app, document, revisions.derived)

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

    def _fetch(self, kind: ResourceKind, name: str) -> Document | None:
        with self._guard():
            row = self._conn.execute(
                "SELECT document FROM resources WHERE kind = ? AND name = ?", (kind, name)
            ).fetchone()
        return None if row is None else _load(kind, name, row[0])

    def _get(self, kind: Kind[R], name: str) -> R | None:
        document = self._fetch(kind.name, name)
        return None if document is None else _parse(kind.name, name, document, kind.read)

    def _list(self, kind: Kind[R]) -> dict[str, R]:
        """Every resource of ``kind``, parsed; answered again from memory while the database is unchanged.

        ``PRAGMA data_version`` changes when another connection (any process) commits, and the
        connection's ``total_changes`` when this one writes, so an unchanged pair means the same rows:
        a sweep that lists the fleet to plan and again to converge reads it once.
        """
        with self._guard():
            stamp = (int(self._conn.execute("PRAGMA data_version").fetchone()[0]), self._conn.total_changes)
            cached = self._listings.get(kind.name)
            if cached is not None and cached[0] == stamp:
                return dict(cached[1])
            try:
                rows = self._conn.execute(kind.listing, (kind.name,)).fetchall()
            except sqlite3.OperationalError:
                rows = None  # a document is not valid JSON: the full read below names it
            if rows is None:
                documents = self._conn.execute(
                    "SELECT name, document FROM resources WHERE kind = ? ORDER BY name", (kind.name,)
                ).fetchall()
        with bulk_built():
            listing: dict[str, R]
            if rows is None:
                listing = {
                    name: _parse(kind.name, name, _load(kind.name, name, text), kind.read) for name, text in documents
                }
            else:
                listing = {}
                for name, *types, parts in rows:
                    found = _parse(kind.name, name, [*types, *json.loads(parts)], kind.from_parts)
                    if found is None:  # a part is missing or odd: read the whole document for the exact error
                        document = self._fetch(kind.name, name)
                        if document is None:
                            continue  # deleted meanwhile
                        found = _parse(kind.name, name, document, kind.read)
                    listing[name] = found
        with self._guard():
            self._listings[kind.name] = (stamp, listing)
        return dict(listing)


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
    except _MALFORMED as exc:
        raise BackendError(f"the stored document of {kind} {name} is malformed ({type(exc).__name__}: {exc})") from None
