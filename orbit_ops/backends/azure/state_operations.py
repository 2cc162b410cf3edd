"""Operation records and logs in the shared state container (``state: azure-blob``).

Layout (``docs/decisions/0066-operations-and-logs-in-the-shared-store.md``):

- ``ops/<id>.json``: the record (``OperationRecord.to_json`` keys plus ``user``), its summary also in the blob's
  metadata so one listing serves ``orbit ops``. Its owner holds a lease on it while the operation is active
  (renewed by the writer thread every third of ``state.lease_seconds``) and writes it only under that lease and
  the ETag it last wrote (``If-Match``). A reader that finds an operation ``running`` on a blob with no lease
  knows its owner is gone: it records ``interrupted`` with ``If-Match`` on the ETag it read (so exactly one
  reader, on any machine, wins) and appends the closing events to the log.
- ``logs/<id>.jsonl``: an append blob, one event a line, as the local log. Each append carries the offset it
  expects (``x-ms-blob-condition-appendpos``): a retried append whose first attempt did land fails that
  condition instead of writing the lines twice, and the writer then checks the bytes at its offset are its own.
  Followers read it with ranged reads from the last offset they hold.

This module holds the layout and the reader's side (:class:`BlobSharedOperations`); the owner's side, one
writer thread per operation fed by the runner, is ``orbit_ops.backends.azure.state_mirror``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote, unquote

from orbit_ops.backends.azure.state_blobs import StateContainer, StateStoreRefusedError
from orbit_ops.errors import NotFoundError, RefusedError, StateStoreUnreachableError
from orbit_ops.operations.events import (
    ChildChanged,
    Event,
    OperationFinished,
    from_json,
    to_json,
)
from orbit_ops.operations.kinds import MEMBER_ACTIVE_STATES, MemberState, OperationState
from orbit_ops.operations.records import utc_now

OPS_PREFIX = "ops/"
LOGS_PREFIX = "logs/"
CANCEL_PREFIX = "cancel/"
_log = logging.getLogger(__name__)
_ACTIVE = (OperationState.QUEUED.value, OperationState.RUNNING.value)


def record_name(op_id: str) -> str:
    return f"{OPS_PREFIX}{op_id}.json"


def log_name(op_id: str) -> str:
    return f"{LOGS_PREFIX}{op_id}.jsonl"


def encode_events(events: list[Event]) -> bytes:
    return "".join(json.dumps(to_json(event), ensure_ascii=False, separators=(",", ":")) + "\n"
                   for event in events).encode()


def summary_metadata(document: dict[str, Any]) -> dict[str, str]:
    """What ``orbit ops`` lists, as blob metadata (ASCII: the free text is percent-encoded)."""
    progress = document.get("progress") or {}
    fields = {"opid": document["id"], "kind": document["kind"], "target": document.get("target") or "",
              "state": document["state"], "done": str(progress.get("done", 0)),
              "total": str(progress.get("total", 0)), "created": document.get("created_at") or "",
              "finished": document.get("finished_at") or "", "user": document.get("user") or "",
              "host": document.get("host") or "", "pid": str(document.get("pid") or "")}
    # Empty values are left out: a metadata header with no value comes back as None, or not at all.
    return {key: quote(str(value), safe="") for key, value in fields.items() if str(value)}


def summary_from(metadata: dict[str, str]) -> dict[str, Any] | None:
    """The ``orbit ops`` row of a record blob's metadata; None for a blob that is not an operation record."""
    fields = {key: unquote(value or "") for key, value in metadata.items()}
    if not fields.get("opid") or not fields.get("state"):
        return None
    try:
        done, total, pid = int(fields.get("done") or 0), int(fields.get("total") or 0), int(fields.get("pid") or 0)
    except ValueError:
        return None
    return {"id": fields["opid"], "kind": fields.get("kind", ""), "target": fields.get("target", ""),
            "state": fields["state"], "progress": {"done": done, "total": total},
            "created_at": fields.get("created", ""), "finished_at": fields.get("finished") or None,
            "user": fields.get("user") or None, "host": fields.get("host") or None, "pid": pid}


class BlobSharedOperations:
    """:class:`~orbit_ops.operations.shared.SharedOperations` over the shared container."""

    def __init__(self, container: StateContainer) -> None:
        self.container = container

    async def list_records(self, limit: int | None = None) -> list[dict[str, Any]]:
        def listing() -> list[Any]:
            return list(self.container.client().list_blobs(name_starts_with=OPS_PREFIX, include=["metadata"]))

        try:
            blobs = await self.container.call(listing, what="listing the team's operations")
        except StateStoreRefusedError as exc:
            if exc.code == "ContainerNotFound":
                return []
            raise
        rows: list[dict[str, Any]] = []
        for blob in blobs:
            row = summary_from(blob.metadata or {})
            if row is None:
                continue
            if row["state"] == OperationState.RUNNING.value and blob.lease.state != "leased":
                marked = await self._mark_interrupted(row["id"])
                if marked is not None:
                    row = summary_from(summary_metadata(marked)) or row
            rows.append(row)
        rows.sort(key=lambda row: (row["created_at"], row["id"]), reverse=True)
        return rows if limit is None else rows[:limit]

    async def record(self, ref: str) -> dict[str, Any] | None:
        op_id = await self._resolve(ref)
        if op_id is None:
            return None
        document, lease_state, _ = await self._download(op_id)
        if document is None:
            return None
        if document.get("state") == OperationState.RUNNING.value and lease_state != "leased":
            document = await self._mark_interrupted(op_id) or document
        return document

    async def _resolve(self, ref: str) -> str | None:
        key = ref.strip().lower()
        if not key or any(char not in "0123456789abcdef-" for char in key):
            return None

        def listing() -> list[str]:
            names = self.container.client().list_blob_names(name_starts_with=OPS_PREFIX + key)
            return [name[len(OPS_PREFIX):-len(".json")] for name in names if name.endswith(".json")]

        try:
            found = await self.container.call(listing, what=f"looking up operation {key}")
        except StateStoreRefusedError as exc:
            if exc.code == "ContainerNotFound":
                return None
            raise
        if key in found:
            return key
        return found[0] if len(found) == 1 else None

    async def _download(self, op_id: str) -> tuple[dict[str, Any] | None, str, str | None]:
        """The record, its lease state and its ETag (None, "", None when there is none)."""
        blob = self.container.blob(record_name(op_id))

        def read() -> tuple[bytes, str, str | None]:
            downloader = blob.download_blob()
            props = downloader.properties
            return downloader.readall(), props.lease.state, props.etag

        try:
            data, lease_state, etag = await self.container.call(read, what=f"reading operation {op_id}")
        except StateStoreRefusedError as exc:
            if exc.code in ("BlobNotFound", "ContainerNotFound"):
                return None, "", None
            raise
        try:
            document = json.loads(data)
        except ValueError:
            return None, lease_state, etag
        return (document if isinstance(document, dict) else None), lease_state, etag

    async def _mark_interrupted(self, op_id: str) -> dict[str, Any] | None:
        """Record ``interrupted`` for an operation whose owner's lease expired; the updated record when this
        reader won (an ``If-Match`` on the ETag it read), else None."""
        from azure.core import MatchConditions

        document, lease_state, etag = await self._download(op_id)
        if document is None or lease_state == "leased" or document.get("state") not in _ACTIVE:
            return None
        at = utc_now()
        reason = (f"its process ({document.get('pid')} on {document.get('host')}, {document.get('user')}) stopped "
                  f"renewing its lease: it ended before it finished")
        closing: list[Event] = []
        for child, entry in (document.get("children") or {}).items():
            if entry.get("state") in {str(state) for state in MEMBER_ACTIVE_STATES}:
                entry["state"] = str(MemberState.INTERRUPTED)
                closing.append(ChildChanged(op_id, child, MemberState.INTERRUPTED, entry.get("message", "")))
        document.update(state=OperationState.INTERRUPTED.value, finished_at=at, error=reason)
        closing.append(OperationFinished(op_id, OperationState.INTERRUPTED, at, reason))
        blob = self.container.blob(record_name(op_id))
        body = json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
        try:
            await self.container.call(blob.upload_blob, body, overwrite=True, etag=etag,
                                      match_condition=MatchConditions.IfNotModified,
                                      metadata=summary_metadata(document), what=f"recording {op_id} interrupted")
        except StateStoreRefusedError as exc:
            if exc.status not in (409, 412):
                raise
            stored, _, _ = await self._download(op_id)
            if stored != document:
                return None  # another reader (or the owner, back) wrote it first
            # Our own write, retried after its answer was lost: we won, and close the log.
        await self._append_closing(op_id, closing)
        return document

    async def _append_closing(self, op_id: str, events: list[Event]) -> None:
        """Append the closing events at the log's end as it is now (the owner is gone: nobody else appends)."""
        await self.container.append_at_end(self.container.blob(log_name(op_id)), encode_events(events),
                                           what=f"closing the log of {op_id}")

    async def request_cancel(self, ref: str, *, by: str) -> dict[str, Any]:
        document = await self.record(ref)
        if document is None:
            raise NotFoundError(f"no operation matches {ref!r} in this machine's index or in {self.container.where}")
        if document.get("state") not in _ACTIVE:
            raise RefusedError(f"operation {document['id']} already {document.get('state')}; there is nothing to "
                               "cancel")
        blob = self.container.blob(CANCEL_PREFIX + document["id"])
        request = json.dumps({"by": by, "at": utc_now()}).encode()
        with contextlib.suppress(StateStoreRefusedError):  # asked already (by us, retried, or by someone else)
            await self.container.call(blob.upload_blob, request, overwrite=False,
                                      what=f"asking to cancel {document['id']}")
        return document

    async def read_events(self, op_id: str) -> list[Event]:
        data = await self._read_from(op_id, 0)
        return _decode(data[: data.rfind(b"\n") + 1])

    async def _read_from(self, op_id: str, offset: int) -> bytes:
        blob = self.container.blob(log_name(op_id))
        try:
            return await self.container.call(read_range, blob, offset, None, what=f"reading the log of {op_id}")
        except StateStoreRefusedError as exc:
            if exc.code in ("InvalidRange", "BlobNotFound"):
                return b""  # nothing past ``offset`` yet (or not created yet)
            raise

    async def follow(self, op_id: str, *, poll: float = 0.5) -> AsyncGenerator[Event, None]:
        offset, partial, backoff = 0, b"", poll
        while True:
            try:
                data = await self._read_from(op_id, offset)
                if not data:
                    document = await self.record(op_id)
                    if document is not None and document.get("state") not in _ACTIVE:
                        data = await self._read_from(op_id, offset)  # the closing lines may have just landed
                        if not data:
                            yield OperationFinished(op_id, OperationState(document["state"]),
                                                    document.get("finished_at") or utc_now(),
                                                    document.get("error"), document.get("result"))
                            return
            except StateStoreUnreachableError as exc:
                # A dropped connection, or the store away for a while: keep the offset, try again, never give up.
                _log.info("following %s: %s; retrying", op_id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = poll
            if not data:
                await asyncio.sleep(poll)
                continue
            offset += len(data)
            *lines, partial = (partial + data).split(b"\n")
            for event in _decode(b"\n".join(lines) + b"\n" if lines else b""):
                yield event
                if isinstance(event, OperationFinished):
                    return


def read_range(blob: Any, offset: int, length: int | None) -> bytes:
    data: bytes = blob.download_blob(offset=offset, length=length).readall()
    return data


def _decode(data: bytes) -> list[Event]:
    events: list[Event] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            events.append(from_json(document))
        except ValueError as exc:
            _log.warning("skipping a malformed line in a shared log: %s", exc)
    return events

