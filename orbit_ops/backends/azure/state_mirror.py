"""The owner's side of operations in the shared state container: the runner's :class:`BlobOperationMirror`, and one
writer thread per operation (:class:`_Writer`) that holds the record's lease, writes the record under it and its
ETag, and appends the log with offset conditions (the layout: ``orbit_ops.backends.azure.state_operations``,
decision 0066). The event loop never waits on the network but at an operation's start and end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from typing import Any

from orbit_ops.backends.azure.state_blobs import StateContainer, StateStoreRefusedError
from orbit_ops.backends.azure.state_operations import (
    CANCEL_PREFIX,
    encode_events,
    log_name,
    record_name,
    summary_metadata,
)
from orbit_ops.errors import OrbitError, StateStoreUnreachableError
from orbit_ops.operations.events import ChildChanged, Event, OperationFinished, OperationStarted, ProgressChanged
from orbit_ops.operations.kinds import OperationState
from orbit_ops.operations.lockstore import current_user, lease_id_for
from orbit_ops.operations.records import OperationRecord

CANCEL_CHECK_SECONDS = 2.0  # how often a running operation's writer asks whether another machine cancelled it
MAX_APPEND_BYTES = 4 * 1024 * 1024  # Append Block's limit per call
_log = logging.getLogger(__name__)


class BlobOperationMirror:
    """:class:`~orbit_ops.operations.shared.OperationMirror` over the shared container."""

    def __init__(self, container: StateContainer) -> None:
        self.container = container
        self._writers: dict[str, _Writer] = {}

    def started(self, record: OperationRecord) -> None:
        writer = _Writer(self.container, record)
        writer.open()
        self._writers[record.id] = writer
        writer.start()

    def publish(self, op_id: str, events: list[Event]) -> None:
        writer = self._writers.get(op_id)
        if writer is not None:
            writer.put(events)

    def cancel_requested(self, op_id: str) -> bool:
        writer = self._writers.get(op_id)
        return writer is not None and writer.cancel_wanted

    def finish(self, op_id: str, events: list[Event], *, timeout: float) -> None:
        writer = self._writers.pop(op_id, None)
        if writer is not None:
            writer.put(events)
            writer.close(timeout)


class _Writer(threading.Thread):
    """One operation's shared record and log, written in order from a queue of event batches."""

    def __init__(self, container: StateContainer, record: OperationRecord) -> None:
        super().__init__(name=f"orbit-state {record.id}", daemon=True)
        self.container = container
        self.op_id = record.id
        self.period = float(container.settings.lease_seconds)
        self.document: dict[str, Any] = record.to_json() | {"user": current_user()}
        self.record_blob = container.blob(record_name(record.id))
        self.log_blob = container.blob(log_name(record.id))
        self.offset = 0
        self.etag: str | None = None
        self.lease: Any = None
        self.lost: str | None = None  # why the record is no longer ours to write (another machine took over)
        self._queue: queue.Queue[list[Event] | None] = queue.Queue()
        self._renewed = 0.0
        self.cancel_wanted = False  # another machine asked to cancel (read by the runner's cancel poll)
        self._cancel_checked = 0.0

    # -- on the runner's thread ---------------------------------------------------------------

    def open(self) -> None:
        """Create the record (leased) and the empty log.

        Raises:
            StateStoreUnreachableError: the store cannot be reached, or refused us.
        """
        from azure.storage.blob import BlobLeaseClient

        what = f"publishing operation {self.op_id}"
        # Queued until its lease is held: a reader takes "running" with no lease for an owner that is gone.
        self.document["state"] = OperationState.QUEUED.value
        try:
            self._create_record(what)
        except StateStoreRefusedError as exc:
            if exc.code != "ContainerNotFound":
                raise StateStoreUnreachableError(f"{what}: {exc.message}") from None
            with contextlib.suppress(StateStoreRefusedError):
                self.container.call_sync(self.container.client().create_container, what=what)
            self._create_record(what)
        self.lease = BlobLeaseClient(self.record_blob, lease_id=lease_id_for(self.op_id, "record"))
        sent = time.monotonic()
        self.container.call_sync(self.lease.acquire, lease_duration=int(self.period), what=what)
        self._renewed = sent
        try:
            self.container.call_sync(self.log_blob.create_append_blob, if_none_match="*", what=what)
        except StateStoreRefusedError as exc:
            # The operation id is new: a log already there is our own create, retried after its answer was lost.
            if exc.code not in ("BlobAlreadyExists", "ConditionNotMet") or \
                    self.container.call_sync(self.log_blob.get_blob_properties, what=what).size != 0:
                raise StateStoreUnreachableError(f"{what}: its log: {exc.message}") from None

    def _create_record(self, what: str) -> None:
        body = self._body()
        try:
            answer = self.container.call_sync(self.record_blob.upload_blob, body, overwrite=False,
                                              metadata=summary_metadata(self.document), what=what)
        except StateStoreRefusedError as exc:
            # A retried create whose first attempt landed finds its own record there.
            if exc.code != "BlobAlreadyExists" or self._stored_etag(body, what) is None:
                raise
            return
        self.etag = answer.get("etag")

    def _stored_etag(self, body: bytes, what: str) -> str | None:
        """The record's ETag when the stored record is exactly ``body`` (our own write, its answer lost)."""
        def read() -> tuple[bytes, str]:
            downloader = self.record_blob.download_blob()
            return downloader.readall(), downloader.properties.etag

        data, etag = self.container.call_sync(read, what=what)
        if data != body:
            return None
        self.etag = etag
        return etag

    def put(self, events: list[Event]) -> None:
        self._queue.put(list(events))

    def close(self, timeout: float) -> None:
        self._queue.put(None)
        self.join(timeout)
        if self.is_alive():
            _log.warning("operation %s: the shared store did not take all of it within %.0f s", self.op_id, timeout)

    # -- on its own thread --------------------------------------------------------------------

    def run(self) -> None:
        done = False
        while not done:
            try:
                due = min(self._renewed + self.period / 3, self._cancel_checked + CANCEL_CHECK_SECONDS)
                item = self._queue.get(timeout=max(0.1, due - time.monotonic()))
            except queue.Empty:
                item = []
            batch: list[Event] = []
            while item is not None:
                batch.extend(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            done = item is None
            try:
                if batch:
                    self._append(batch)
                    self._apply(batch)
                    self._write_record()
                if not done and time.monotonic() >= self._renewed + self.period / 3:
                    self._renew()
                if not done and not self.cancel_wanted and time.monotonic() >= self._cancel_checked + \
                        CANCEL_CHECK_SECONDS:
                    self._check_cancel()
            except OrbitError as exc:  # kept going: the next batch tries again, the local log has it all
                _log.warning("operation %s: the shared store: %s", self.op_id, exc)
        if self.lost is None and self.lease is not None:
            with contextlib.suppress(OrbitError):
                self.container.call_sync(self.lease.release, what=f"finishing operation {self.op_id}")

    def _append(self, events: list[Event]) -> None:
        data = encode_events(events)
        while data:
            cut = len(data) if len(data) <= MAX_APPEND_BYTES else data.rfind(b"\n", 0, MAX_APPEND_BYTES) + 1
            chunk, data = data[:cut or MAX_APPEND_BYTES], data[cut or MAX_APPEND_BYTES:]
            self._append_once(chunk)

    def _append_once(self, chunk: bytes) -> None:
        what = f"appending to the log of {self.op_id}"
        try:
            self.container.call_sync(self.log_blob.append_block, chunk, appendpos_condition=self.offset, what=what)
        except StateStoreRefusedError as exc:
            if exc.code != "AppendPositionConditionNotMet":
                raise
            # An earlier attempt may have landed with its answer lost: then the bytes at our offset are ours.
            there = self.container.call_sync(self._read_range, self.offset, len(chunk), what=what)
            if there != chunk:
                size = self.container.call_sync(self.log_blob.get_blob_properties, what=what).size
                self.lost = f"its shared log was appended by another machine at {self.offset} (now {size} bytes)"
                self.offset = size
                raise StateStoreUnreachableError(f"{what}: {self.lost}") from None
        self.offset += len(chunk)

    def _read_range(self, offset: int, length: int) -> bytes:
        data: bytes = self.log_blob.download_blob(offset=offset, length=length).readall()
        return data

    def _apply(self, events: list[Event]) -> None:
        document = self.document
        for event in events:
            if isinstance(event, OperationStarted):
                document["state"], document["started_at"] = OperationState.RUNNING.value, event.at
            elif isinstance(event, ProgressChanged):
                document["progress"] = {"done": event.done, "total": event.total}
            elif isinstance(event, ChildChanged):
                document["children"][event.child] = {"state": str(event.state), "message": event.message}
            elif isinstance(event, OperationFinished):
                document.update(state=str(event.state), finished_at=event.at, error=event.error,
                                result=event.result)

    def _write_record(self) -> None:
        from azure.core import MatchConditions

        if self.lost is not None:
            return
        what = f"updating the shared record of {self.op_id}"
        body = self._body()
        try:
            answer = self.container.call_sync(
                self.record_blob.upload_blob, body, overwrite=True, lease=self.lease, etag=self.etag,
                match_condition=MatchConditions.IfNotModified, metadata=summary_metadata(self.document), what=what)
        except StateStoreRefusedError as exc:
            if exc.status in (409, 412):
                if exc.status == 412 and self._stored_etag(body, what) is not None:
                    return  # our own write, retried after its answer was lost
                self.lost = f"another machine wrote its record ({exc.code}): it read this operation as gone"
            raise
        self.etag = answer.get("etag")

    def _check_cancel(self) -> None:
        self._cancel_checked = time.monotonic()
        blob = self.container.blob(CANCEL_PREFIX + self.op_id)
        try:
            self.container.call_sync(blob.get_blob_properties, attempts=2, what=f"checking on {self.op_id}")
        except StateStoreRefusedError as exc:
            if exc.code != "BlobNotFound":
                raise
            return
        self.cancel_wanted = True

    def _renew(self) -> None:
        sent = time.monotonic()
        try:
            self.container.call_sync(self.lease.renew, what=f"renewing the lease of operation {self.op_id}")
        except StateStoreRefusedError as exc:
            self.lost = f"its lease was lost ({exc.code})"
            raise
        self._renewed = sent

    def _body(self) -> bytes:
        return json.dumps(self.document, ensure_ascii=False, sort_keys=True).encode()
