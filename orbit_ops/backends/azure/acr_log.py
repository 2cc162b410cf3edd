"""The log of one ACR Tasks run, followed to its end: step 4 of a quick build (decision 0012).

The run writes its log to an append blob behind ``runs.get_log_sas_url``. :class:`RunLog` reads it
incrementally with ranged reads and streams it line by line until the blob's ``Complete`` metadata
appears; :class:`LogCursor` holds the byte cursor and survives the service replacing or shrinking the
blob, so the operator sees neither a gap nor a repeat. A log link refused mid-run (its SAS expired) is
renewed. What the follower needs of the run (its log link, a blob client, its state) it is given by the
builder, so this module makes no client of its own.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orbit_ops.backends.azure.common import call
from orbit_ops.errors import BackendError
from orbit_ops.redact import redact

ALIVE_STATES = frozenset({"Queued", "Started", "Running"})
TAIL_LINES = 12  # log lines quoted in a BuildError
LINK_RENEWALS = 5  # log links refused in a row before the follower gives up


@dataclass(frozen=True)
class LogPolling:
    """How the run log is followed; tests shorten the waits.

    ``idle_min``/``idle_max``: the back-off between polls while nothing new arrives (doubling).
    ``status_every``: while idle, ask ``runs.get`` at most this often whether the run still lives.
    ``settle``: once the run has ended, how long to wait for the log's ``Complete`` marker.
    ``chunk``: bytes per ranged read; ``overlap``: bytes re-read before the cursor to prove the
    blob is still the one read so far.
    """

    idle_min: float = 0.2
    idle_max: float = 2.0
    status_every: float = 5.0
    settle: float = 30.0
    chunk: int = 4 * 1024 * 1024
    overlap: int = 64


class LogCursor:
    """A byte cursor over a growing log blob that yields complete lines, each once.

    ``feed`` takes the bytes that follow the cursor and returns the complete lines among them; a
    line without its newline waits for the next read (or :meth:`flush` at the end). :meth:`restart`
    rewinds to byte 0 when the blob was replaced or shrank; the lines read again are then compared
    with those already shown (by digest, 8 bytes a line) and skipped while they agree, so the
    operator sees neither a gap nor a repeat.
    """

    def __init__(self, *, max_line: int = 64 * 1024, overlap: int = 64) -> None:
        self.offset = 0  # bytes of the current blob consumed
        self.created: object | None = None  # the blob's creation time: a new one means a new blob
        self.etag: str | None = None
        self.max_line = max_line
        self.overlap = overlap
        self._tail = b""  # the last ``overlap`` bytes before ``offset``
        self._partial = b""
        self._shown = bytearray()  # 8-byte digests of the lines shown, in order
        self._replay: int | None = None  # after a restart: index into _shown of the next expected line
        self.restarts = 0

    @property
    def shown(self) -> int:
        return len(self._shown) // 8

    def read_from(self) -> int:
        """Where the next ranged read starts: a little before the cursor, to check continuity."""
        return max(0, self.offset - min(self.overlap, len(self._tail)))

    def continues(self, start: int, data: bytes) -> bool:
        """Whether ``data`` (read from ``start``) agrees with the bytes already consumed before the cursor."""
        known = self.offset - start
        return len(data) >= known and data[:known] == self._tail[len(self._tail) - known:]

    def feed(self, data: bytes) -> list[str]:
        """Consume ``data`` (the bytes right after the cursor); return the complete lines in it."""
        self.offset += len(data)
        self._tail = (self._tail + data)[-self.overlap:]
        buffer = self._partial + data
        lines = buffer.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > self.max_line:  # a runaway line is shown in pieces, memory stays bounded
            lines.append(self._partial)
            self._partial = b""
        return self._show(lines)

    def flush(self) -> list[str]:
        """The last line if the log did not end with a newline."""
        rest, self._partial = self._partial, b""
        return self._show([rest]) if rest.strip() else []

    def restart(self) -> None:
        """Rewind to the start of a new blob; lines already shown will not be shown again."""
        self.offset = 0
        self.created = self.etag = None
        self._tail = self._partial = b""
        self._replay = 0
        self.restarts += 1

    def _show(self, raw_lines: list[bytes]) -> list[str]:
        out = []
        for raw in raw_lines:
            line = raw.rstrip(b"\r")
            digest = hashlib.blake2b(line, digest_size=8).digest()
            if self._replay is not None:
                index = self._replay * 8
                if index < len(self._shown) and self._shown[index:index + 8] == digest:
                    self._replay += 1
                    continue
                self._replay = None
            self._shown += digest
            out.append(line.decode("utf-8", errors="replace"))
        return out


class RunLog:
    """The log of run ``run_id``, streamed to ``log`` (redacted) by :meth:`follow`.

    ``log_link`` asks the service for a (new) SAS link to the log, ``open_blob`` makes a blocking blob
    client for such a link, ``read_run`` reads the run (``runs.get``): the builder's clients, lent.
    """

    def __init__(self, run_id: str, polling: LogPolling, *, log_link: Callable[[], Awaitable[str]],
                 open_blob: Callable[[str], Any], read_run: Callable[[], Awaitable[Any]],
                 log: Callable[[str], None]) -> None:
        self.run_id = run_id
        self.polling = polling
        self._log_link = log_link
        self._open_blob = open_blob
        self._read_run = read_run
        self._log = log
        self.cursor = LogCursor(overlap=polling.overlap)
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    async def follow(self) -> tuple[Any, list[str]]:
        """Stream the run's log until it is complete; then return the final run and the log's tail.

        There is no wall-clock limit while ``runs.get`` says the run is alive: a build may queue for
        a long time. Once the run has ended, the log gets ``settle`` seconds to be marked complete.

        Raises:
            BackendError: the log link was refused ``LINK_RENEWALS`` times in a row, or a call failed.
        """
        run_id, polling, cursor = self.run_id, self.polling, self.cursor
        blob = await self._blob()
        delay = polling.idle_min
        next_status = time.monotonic() + polling.status_every
        ended_at: float | None = None
        refused = 0  # log links refused in a row
        try:
            while True:
                try:
                    complete, progressed = await self._read_new(blob)
                    refused = 0
                except _LinkExpired:
                    # The SAS expired during a long run: ask for a new link (a fresh one that is refused
                    # too means something else is wrong).
                    refused += 1
                    if refused > LINK_RENEWALS:
                        raise BackendError(f"the log link of run {run_id} was refused {refused} times in a row "
                                           "by the registry's storage") from None
                    if refused > 1:
                        await asyncio.sleep(delay)
                    await asyncio.to_thread(blob.close)
                    blob = await self._blob()
                    continue
                if complete:
                    self._show(cursor.flush())
                    break
                if progressed:
                    delay = polling.idle_min
                    continue
                now = time.monotonic()
                if now >= next_status:
                    next_status = now + polling.status_every
                    run = await self._read_run()
                    if run_status(run) not in ALIVE_STATES:
                        ended_at = ended_at or now
                        if now - ended_at >= polling.settle:
                            self._show(cursor.flush())
                            self._log(f"run {run_id} ended ({run_status(run)}) but its log was not marked "
                                      f"complete within {polling.settle:.0f} s; it may be cut short")
                            break
                await asyncio.sleep(delay)
                delay = min(delay * 2, polling.idle_max)
        finally:
            await asyncio.shield(asyncio.to_thread(blob.close))
        run = await self._read_run()
        delay = polling.idle_min
        while run_status(run) in ALIVE_STATES:  # the log can be complete a moment before the run is
            await asyncio.sleep(delay)
            delay = min(delay * 2, polling.idle_max)
            run = await self._read_run()
        return run, list(self.tail)

    async def _blob(self) -> Any:
        link = await self._log_link()
        return await call(self._open_blob, link, what=f"opening the log of run {self.run_id}", attempts=1)

    def _show(self, lines: list[str]) -> None:
        for line in lines:
            text = redact(line)
            self.tail.append(text)
            self._log(text)

    async def _read_new(self, blob: Any) -> tuple[bool, bool]:
        """One poll: read whatever was appended; returns (log complete and fully read, anything read)."""
        cursor = self.cursor
        what = f"reading the log of run {self.run_id}"
        props = await call(_properties, blob, what=what)
        if props is None:  # not written yet, or deleted while being replaced
            if cursor.offset:
                self._restarted("disappeared")
            return False, False
        size = int(props.size or 0)
        created = getattr(props, "creation_time", None)
        if size < cursor.offset:
            self._restarted("shrank")
        elif cursor.created is not None and created is not None and created != cursor.created:
            self._restarted("was replaced")
        elif props.etag != cursor.etag and size == cursor.offset and cursor.offset:
            # Same size but a new etag: new metadata (the Complete marker), or a new blob of the same
            # length. Re-reading the bytes before the cursor tells them apart.
            start = cursor.read_from()
            data = await call(_read_range, blob, start, cursor.offset - start, what=what)
            if data is None or not cursor.continues(start, data):
                self._restarted("was replaced")
                return False, True  # look again at once, at the new blob
        cursor.created, cursor.etag = created, props.etag
        progressed = False
        while cursor.offset < size:
            start = cursor.read_from()
            data = await call(_read_range, blob, start, min(size, cursor.offset + self.polling.chunk) - start,
                              what=what)
            if data is None or not cursor.continues(start, data):
                self._restarted("was replaced")
                return False, True
            fresh = data[cursor.offset - start:]
            if not fresh:
                break
            self._show(cursor.feed(fresh))
            progressed = True
        complete = _is_complete(props.metadata) and cursor.offset >= size
        return complete, progressed

    def _restarted(self, how: str) -> None:
        cursor = self.cursor
        if cursor.offset:  # nothing read yet: nothing to say
            self._log(f"the log of run {self.run_id} {how} on the service; reading it again from the start "
                      f"(the {cursor.shown} lines already shown are not repeated)")
        cursor.restart()


def run_status(run: Any) -> str:
    """The state of an SDK ``Run`` as its wire value (``Succeeded``, ``Failed``…; ``Unknown`` if none)."""
    status = getattr(run, "status", None)
    return str(getattr(status, "value", status) or "Unknown")


class _LinkExpired(BackendError):
    """The log's SAS link was refused (it expired during a long run): ask for a new one."""


def _properties(blob: Any) -> Any:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    try:
        return blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        if exc.status_code == 403:
            raise _LinkExpired("the log link was refused") from None
        raise


def _read_range(blob: Any, offset: int, length: int) -> bytes | None:
    """``length`` bytes from ``offset``; None when the blob vanished or shrank meanwhile."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    if length <= 0:
        return b""
    try:
        data: bytes = blob.download_blob(offset=offset, length=length).readall()
        return data
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        if exc.status_code == 416:
            return None
        if exc.status_code == 403:
            raise _LinkExpired("the log link was refused") from None
        raise


def _is_complete(metadata: Mapping[str, str] | None) -> bool:
    """ACR marks a finished log with a ``Complete`` metadata entry (key case varies, value = outcome)."""
    return any(key.lower() == "complete" for key in (metadata or {}))
