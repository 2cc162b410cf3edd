"""Locks as renewable blob leases in the shared state container (``state: azure-blob``).

One blob per scope, ``locks/<scope>`` (empty; made on first use). Taking the lock is *Lease Blob: acquire* with
a fixed period (``state.lease_seconds``, 15-60 s) and a lease id derived from the operation id
(:func:`~orbit_ops.operations.lockstore.lease_id_for`), so a retried acquire whose answer was lost, or a resumed
operation, gets back its own lease rather than waiting on itself. The holder then writes who it is into the
blob's metadata (operation, kind, user, host, pid, since, expires), renews the lease every third of its period
in the background, and on release marks the metadata free before releasing the lease. A holder that dies stops
renewing: the service frees the lease when its period ends, with no manual step.

The fence (:meth:`_Lease.ensure`): before each write the holder renews the lease, which the service does only
for the lease it still holds under that id, so a broken or expired-and-taken lease is seen at the next write,
not at the next background renewal. The lease is surely ours until one period after the last successful renewal
*request was sent* (the service starts counting later than that); a renewal the service refuses, or that cannot
reach it before that moment, marks the lease lost, and every later ``ensure`` raises
:class:`~orbit_ops.errors.LockLostError`, so the operation stops before writing again.
See ``docs/decisions/0065-locks-as-renewable-leases.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from orbit_ops.backends.azure.state_blobs import StateContainer, StateStoreRefusedError
from orbit_ops.errors import LockLostError, NotFoundError, OrbitError, RefusedError, StateStoreUnreachableError
from orbit_ops.operations.liveness import HOST
from orbit_ops.operations.locks import LockHolder, WaitTold, busy_error, timeout_error, utc_now
from orbit_ops.operations.lockstore import HeldLock, LockInfo, current_user, lease_id_for

LOCKS_PREFIX = "locks/"
AUDIT_BLOB = "audit/locks.log"
POLL_SECONDS = 1.0  # a waiter asks the service once a second (each ask is a request)
_LOST_CODES = frozenset({"LeaseIdMismatchWithLeaseOperation", "LeaseNotPresentWithLeaseOperation",
                         "LeaseIsBrokenAndCannotBeRenewed", "LeaseLost", "LeaseIdMismatchWithBlobOperation",
                         "LeaseNotPresentWithBlobOperation", "BlobNotFound", "LeaseIdMissing"})


class BlobLockStore:
    """:class:`~orbit_ops.operations.lockstore.LockStore` over blob leases in the shared container."""

    def __init__(self, container: StateContainer) -> None:
        self.container = container
        self.period = container.settings.lease_seconds
        self._container_made = False

    @contextlib.asynccontextmanager
    async def hold(self, scope: str, *, what: str, wait: bool = True, on_wait: Callable[[str], None] | None = None,
                   timeout: float | None = None, op_id: str | None = None,
                   kind: str | None = None) -> AsyncIterator[HeldLock]:
        blob = self.container.blob(LOCKS_PREFIX + scope)
        lease_id = lease_id_for(op_id, scope)
        loop = asyncio.get_running_loop()
        started = loop.time()
        waited = False
        told = WaitTold(what, on_wait)
        while True:
            sent = loop.time()
            lease = await self._try_acquire(blob, lease_id, what)
            if lease is not None:
                break
            holder, leased = await self._read_holder(blob, what)
            if not leased:
                continue  # freed between our two requests: try again at once
            if not wait:
                raise busy_error(what, holder)
            elapsed = loop.time() - started
            if timeout is not None and elapsed >= timeout:
                raise timeout_error(what, timeout, holder)
            told.saw(holder, elapsed)
            waited = True
            await asyncio.sleep(POLL_SECONDS if timeout is None else max(0.0, min(POLL_SECONDS, timeout - elapsed)))
        held = _Lease(self, blob, lease, what, waited, sent,
                      _holder_metadata(op_id, kind, self.period))
        await held.write_metadata()
        renewer = asyncio.create_task(held.keep_renewed())
        try:
            yield held
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            await held.release()

    async def _try_acquire(self, blob: Any, lease_id: str, what: str) -> Any | None:
        """The lease client once acquired; None while another lease holds the blob."""
        from azure.storage.blob import BlobLeaseClient

        lease = BlobLeaseClient(blob, lease_id=lease_id)
        for _ in range(3):
            try:
                await self.container.call(lease.acquire, lease_duration=self.period, what=f"taking {what}")
                return lease
            except StateStoreRefusedError as exc:
                if exc.code == "LeaseAlreadyPresent":
                    return None
                if exc.code not in ("BlobNotFound", "ContainerNotFound"):
                    raise
                await self._make_blob(blob, what)
        raise StateStoreUnreachableError(f"taking {what}: its lock blob keeps disappearing in {self.container.where}")

    async def _make_blob(self, blob: Any, what: str) -> None:
        """Create the (empty) lock blob, and the container first when it is missing."""
        try:
            await self.container.call(blob.upload_blob, b"", overwrite=False, what=f"creating the lock of {what}")
        except StateStoreRefusedError as exc:
            if exc.code == "ContainerNotFound":
                await self.make_container()
                await self._make_blob(blob, what)
            elif exc.code not in ("BlobAlreadyExists", "LeaseIdMissing"):
                raise

    async def make_container(self) -> None:
        if self._container_made:
            return
        try:
            await self.container.call(self.container.client().create_container, what="creating the state container")
        except StateStoreRefusedError as exc:
            if exc.code != "ContainerAlreadyExists":
                raise
        self._container_made = True

    async def _read_holder(self, blob: Any, what: str) -> tuple[LockHolder | None, bool]:
        """Who holds the lease on ``blob`` (None: not said yet), and whether it is leased at all."""
        try:
            props = await self.container.call(blob.get_blob_properties, what=f"reading who holds {what}")
        except StateStoreRefusedError as exc:
            if exc.code == "BlobNotFound":
                return None, False
            raise
        return holder_from(props.metadata or {}), props.lease.state == "leased"

    async def list_locks(self) -> list[LockInfo]:
        def listing() -> list[Any]:
            return list(self.container.client().list_blobs(name_starts_with=LOCKS_PREFIX, include=["metadata"]))

        try:
            blobs = await self.container.call(listing, what="listing the locks")
        except StateStoreRefusedError as exc:
            if exc.code == "ContainerNotFound":
                return []
            raise
        return sorted((_info(blob.name[len(LOCKS_PREFIX):], blob.lease.state, blob.metadata or {})
                       for blob in blobs), key=lambda info: info.scope)

    async def break_lock(self, scope: str, *, by: str) -> LockInfo:
        from azure.storage.blob import BlobLeaseClient

        blob = self.container.blob(LOCKS_PREFIX + scope)
        try:
            props = await self.container.call(blob.get_blob_properties, what=f"reading the lock {scope}")
        except StateStoreRefusedError as exc:
            if exc.code in ("BlobNotFound", "ContainerNotFound"):
                raise NotFoundError(f"no lock named {scope} in {self.container.where} (orbit locks lists them)") \
                    from None
            raise
        before = _info(scope, props.lease.state, props.metadata or {})
        if props.lease.state != "leased":
            raise RefusedError(f"the lock {scope} is not held ({props.lease.state}); nothing to break")
        lease = BlobLeaseClient(blob)
        await self.container.call(lease.break_lease, lease_break_period=0, what=f"breaking the lock {scope}")
        at = utc_now()
        metadata = dict(props.metadata or {})
        metadata.update({"orbitstate": "broken", "brokenby": quote(by, safe=""), "brokenat": at})
        with contextlib.suppress(StateStoreRefusedError):  # taken again meanwhile: its new holder's metadata stands
            await self.container.call(blob.set_blob_metadata, metadata, what=f"recording who broke {scope}")
        await self.audit({"at": at, "event": "lock-broken", "scope": scope, "by": by, "holder": before.to_json()})
        return before

    async def audit(self, entry: dict[str, Any]) -> None:
        """Append one JSON line to ``audit/locks.log`` (an append blob, made on first use), exactly once."""
        line = (json.dumps(entry, sort_keys=True) + "\n").encode()
        try:
            await self.container.append_at_end(self.container.blob(AUDIT_BLOB), line,
                                               what="recording it in the state store")
        except StateStoreRefusedError as exc:
            if exc.code != "ContainerNotFound":
                raise
            await self.make_container()
            await self.container.append_at_end(self.container.blob(AUDIT_BLOB), line,
                                               what="recording it in the state store")


class _Lease:
    """One held lease: renewed in the background, checked before each write (the fence)."""

    def __init__(self, store: BlobLockStore, blob: Any, lease: Any, what: str, waited: bool, confirmed_at: float,
                 metadata: dict[str, str]) -> None:
        self._store = store
        self._blob = blob
        self._lease = lease
        self._what = what
        self._waited = waited
        self._period = float(store.period)
        self._confirmed_at = confirmed_at  # loop time the last successful acquire/renew request was sent
        self._metadata = metadata
        self._renewing = asyncio.Lock()
        self.lost: str | None = None

    @property
    def waited(self) -> bool:
        return self._waited

    async def ensure(self) -> None:
        if self.lost is None:
            await self._renew(note_expiry=False)  # the check: the service renews only a lease it still holds for us
        if self.lost is not None:
            raise LockLostError(f"lost {self._what}: {self.lost}; stopped before writing again (the work done "
                                "before is kept; run the operation again to finish)")

    def _left(self) -> float:
        return self._confirmed_at + self._period - asyncio.get_running_loop().time()

    async def keep_renewed(self) -> None:
        while self.lost is None:
            await asyncio.sleep(max(0.2, self._left() - self._period * 2 / 3))
            await self._renew()

    async def _renew(self, *, note_expiry: bool = True) -> None:
        """Renew now; on a refusal, or when the period ends before the service answers, the lease is lost.

        ``note_expiry`` also writes the new expiry into the metadata (``orbit locks`` shows it): the background
        renewal does, the fence before each write does not (one request per write is enough)."""
        loop = asyncio.get_running_loop()
        async with self._renewing:
            while self.lost is None:
                sent = loop.time()
                if self._left() <= 0:
                    self.lost = f"its lease could not be renewed within {self._period:g} s"
                    return
                try:
                    await self._store.container.call(self._lease.renew, attempts=1, what=f"renewing {self._what}")
                except StateStoreRefusedError as exc:
                    if exc.code in _LOST_CODES or exc.status == 409:
                        self.lost = f"its lease was taken away ({exc.code or exc.status}: broken, or expired and " \
                                    "taken by another operation)"
                        return
                    await asyncio.sleep(min(0.5, max(0.0, self._left())))
                    continue
                except OrbitError:
                    await asyncio.sleep(min(0.5, max(0.0, self._left())))
                    continue
                self._confirmed_at = sent
                if not note_expiry:
                    return
                self._metadata["expires"] = _in_seconds(self._period)
                with contextlib.suppress(OrbitError):
                    await self._store.container.call(self._blob.set_blob_metadata, self._metadata,
                                                     lease=self._lease, attempts=1, what=f"renewing {self._what}")
                return

    async def write_metadata(self) -> None:
        """Say who holds the lock (waiters and ``orbit locks`` read it)."""
        await self._store.container.call(self._blob.set_blob_metadata, self._metadata, lease=self._lease,
                                         what=f"recording who holds {self._what}")

    async def release(self) -> None:
        """Mark the lock free and release the lease; a failure leaves it to expire within one period."""
        if self.lost is not None:
            return
        freed = {"orbitstate": "free", "lastop": self._metadata.get("opid", ""), "releasedat": utc_now()}
        with contextlib.suppress(OrbitError):
            await self._store.container.call(self._blob.set_blob_metadata, freed, lease=self._lease, attempts=3,
                                             what=f"releasing {self._what}")
            await self._store.container.call(self._lease.release, attempts=3, what=f"releasing {self._what}")


def _holder_metadata(op_id: str | None, kind: str | None, period: int) -> dict[str, str]:
    metadata = {"orbitstate": "held", "user": quote(current_user(), safe=""), "host": quote(HOST, safe=""),
                "pid": str(os.getpid()), "since": utc_now(), "expires": _in_seconds(period)}
    if op_id is not None:
        metadata["opid"] = quote(op_id, safe="")
    if kind is not None:
        metadata["kind"] = quote(kind, safe="")
    return metadata


def holder_from(metadata: dict[str, str]) -> LockHolder | None:
    """The holder a lock blob's metadata names; None unless it says ``held`` (free, broken, or not yet said)."""
    metadata = {key: value or "" for key, value in metadata.items()}  # an empty value comes back as None
    if metadata.get("orbitstate") != "held":
        return None
    return _holder(metadata)


def _holder(metadata: dict[str, str]) -> LockHolder | None:
    try:
        pid = int(metadata.get("pid", ""))
    except ValueError:
        return None
    op_id, kind = metadata.get("opid"), metadata.get("kind")
    return LockHolder(pid=pid, host=unquote(metadata.get("host", "?")), since=metadata.get("since", ""),
                      op_id=unquote(op_id) if op_id else None, kind=unquote(kind) if kind else None,
                      user=unquote(metadata.get("user", "")) or None, expires=metadata.get("expires") or None)


def _info(scope: str, lease_state: str, metadata: dict[str, str]) -> LockInfo:
    metadata = {key: value or "" for key, value in metadata.items()}  # an empty value comes back as None
    broken_by = metadata.get("brokenby")
    shown_by = f"{unquote(broken_by)} at {metadata.get('brokenat', '?')}" if broken_by else None
    if lease_state == "leased":
        return LockInfo(scope, _holder(metadata) if metadata.get("orbitstate") == "held" else None, "held")
    if lease_state in ("broken", "breaking") or metadata.get("orbitstate") == "broken":
        return LockInfo(scope, None, "broken", shown_by)  # until another operation takes it
    return LockInfo(scope, None, "free")


def _in_seconds(seconds: float) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")
