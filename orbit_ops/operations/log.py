"""Operation logs: ``logs/<id>.jsonl``, one event a line, written by the runner, read and followed by anyone.

A log is appended with ``O_APPEND`` (one ``write`` a batch, a short write taken back), so a reader in
another process only ever sees whole lines, plus at most the start of one being written, which it keeps
until its newline arrives. There is one reader, :class:`LogReader`, and one follow loop,
:func:`follow_batches`: ``orbit logs`` reads through the first, ``orbit logs --follow`` and the console's
log view follow through the second. It reads and decodes at most ``BATCH_BYTES`` at a time, one JSON
decode a batch, and gives the event loop a turn between batches, so replaying a 100,000-line log never
holds the loop for more than one batch; the console asks for log lines undecoded (``raw_log_lines``) and
decodes only those it shows (:func:`decode_log_line`). A damaged line is logged and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, Literal, Protocol, overload

from orbit_ops.bulk import bulk_built
from orbit_ops.errors import BackendError
from orbit_ops.operations.events import Event, LogLine, OperationFinished, from_json, to_json
from orbit_ops.operations.records import OperationRecord, utc_now
from orbit_ops.statedir import PRIVATE_FILE_MODE

BATCH_BYTES = 256 * 1024  # at most this much log is decoded per batch (about 2,000 lines)

_log = logging.getLogger(__name__)
# One encoder for every log line: json.dumps builds a new one per call when given options.
_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# How every stored log event (``LogLine``) begins: ``to_json`` puts the ``type`` key first. A reader can tell
# log lines from the other events by these bytes and leave them undecoded until they are shown.
LOG_LINE_PREFIX = (_LINE_ENCODER.encode({"type": "log"})[:-1] + ",").encode()


# -- writing ----------------------------------------------------------------------------------


def open_append(path: Path, *, readable: bool = False) -> int:
    """A descriptor appending to the log at ``path`` (created private if new).

    Raises:
        BackendError: the log cannot be opened.
    """
    mode = (os.O_RDWR if readable else os.O_WRONLY) | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, mode, PRIVATE_FILE_MODE)
    except OSError as exc:
        raise BackendError(f"cannot write the operation log {path}: {exc}") from exc


def write_lines(fd: int, events: list[Event]) -> None:
    """Append ``events`` to a log, one JSON line each, in as few ``write`` calls as the OS allows.

    A write cut short (a full disk) is taken back, so the log never keeps half a line that the next
    append would run into.

    Raises:
        BackendError: the log cannot be written.
    """
    data = "".join(_LINE_ENCODER.encode(to_json(event)) + "\n" for event in events).encode()
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        written = len(data) - len(view)
        if written:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise BackendError(f"cannot write the log of operation {events[0].op_id}: {exc}") from exc


def append_foreign(path: Path, events: list[Event]) -> None:
    """Append events to another process's log, starting a fresh line if it died mid-line; never raises."""
    try:
        fd = open_append(path, readable=True)
    except BackendError as exc:
        _log.warning("%s", exc)
        return
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")
        for event in events:
            write_lines(fd, [event])
    except (OSError, BackendError) as exc:
        _log.warning("cannot append to %s: %s", path, exc)
    finally:
        os.close(fd)


# -- reading ----------------------------------------------------------------------------------


class LogReader:
    """Reads the complete lines appended to a log since the last read, at most ``limit`` bytes a read (None:
    all there is); a line without its newline is not written yet and waits for the next read."""

    def __init__(self, path: Path, limit: int | None = None) -> None:
        self.path = path
        self.limit = limit
        self._offset = 0
        self._partial = b""

    def skip_to_end(self) -> None:
        """Read nothing of what is written so far: the next read starts with the next complete line."""
        data = self._partial + self._read(None)
        self._partial = data[data.rfind(b"\n") + 1 :]

    @overload
    def read(self, raw_log_lines: Literal[False] = False) -> list[Event]: ...

    @overload
    def read(self, raw_log_lines: bool) -> list[Event | bytes]: ...

    def read(self, raw_log_lines: bool = False) -> list[Event] | list[Event | bytes]:
        """The events of the lines completed since the last read; damaged lines are logged and skipped.

        With ``raw_log_lines`` the log events stay the stored bytes (see ``LOG_LINE_PREFIX``), for
        :func:`decode_log_line`, and only the other events are decoded.

        Raises:
            BackendError: the log cannot be read.
        """
        data = self._read(self.limit)
        if not data:
            return []
        *lines, self._partial = (self._partial + data).split(b"\n")
        if not raw_log_lines:
            return self._decode([line for line in lines if line.strip()])
        items: list[Event | bytes] = []
        for line in lines:
            if line.startswith(LOG_LINE_PREFIX):
                items.append(line)
            elif line.strip():
                items.extend(self._decode([line]))
        return items

    def more(self) -> bool:
        """Whether more is written than was read (the last read was cut at the limit, or lines came since)."""
        try:
            return self.path.stat().st_size > self._offset
        except OSError:
            return False

    def _read(self, limit: int | None) -> bytes:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read(-1 if limit is None else limit)
        except FileNotFoundError:
            return b""  # not started yet
        except OSError as exc:
            raise BackendError(f"cannot read {self.path}: {exc}") from exc
        self._offset += len(data)
        return data

    def _decode(self, lines: list[bytes]) -> list[Event]:
        try:  # one decode of the whole batch is several times faster than one a line
            with bulk_built():  # thousands of small acyclic objects: no collector passes while they are made
                documents: list[Any] = json.loads(b"[" + b",".join(lines) + b"]")
                if all(isinstance(document, dict) for document in documents):
                    return [from_json(document) for document in documents]
        except ValueError:  # a damaged line somewhere (json.JSONDecodeError and from_json's errors alike)
            pass
        events: list[Event] = []
        for line in lines:
            try:
                decoded = json.loads(line)
                if not isinstance(decoded, dict):
                    raise ValueError("not a JSON object")
                events.append(from_json(decoded))
            except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
                _log.warning("skipping a malformed line in %s: %s", self.path, exc)
        return events


def decode_log_line(raw: bytes) -> LogLine:
    """The log event of one stored line that ``follow_batches(raw_log_lines=True)`` passed on undecoded.

    Raises:
        ValueError: the line is not valid JSON, or not a well-formed log event.
    """
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    event = from_json(document)
    if not isinstance(event, LogLine):
        raise ValueError(f"a {type(event).__name__} event, not a log line")
    return event


# -- following --------------------------------------------------------------------------------


class OperationIndex(Protocol):
    """What following a log needs from the index (``OperationStore``)."""

    def get(self, ref: str) -> OperationRecord: ...

    def log_path(self, op_id: str) -> Path: ...


@overload
def follow_batches(
    index: OperationIndex, op_id: str, *, from_start: bool = True, poll: float = 0.1, limit: int = BATCH_BYTES,
    raw_log_lines: Literal[False] = False,
) -> AsyncGenerator[list[Event], None]: ...


@overload
def follow_batches(
    index: OperationIndex, op_id: str, *, from_start: bool = True, poll: float = 0.1, limit: int = BATCH_BYTES,
    raw_log_lines: bool,
) -> AsyncGenerator[list[Event | bytes], None]: ...


async def follow_batches(
    index: OperationIndex, op_id: str, *, from_start: bool = True, poll: float = 0.1, limit: int = BATCH_BYTES,
    raw_log_lines: bool = False,
) -> AsyncGenerator[list[Event] | list[Event | bytes], None]:
    """Replay an operation's log (or, with ``from_start=False``, only what comes next) and tail it, in batches.

    Works from any process. At most ``limit`` bytes are read and decoded at a time (a few milliseconds), and
    the loop gets a turn between batches; the index (SQLite) is read in a thread. With ``raw_log_lines`` the
    log lines come as the stored bytes (see ``LogReader.read``). The stream always ends with an
    ``OperationFinished``: the logged one, or one made from the index when the operation ended without
    logging it (e.g. its owner died and nobody has looked since, which this call's polling also detects).

    Raises:
        NotFoundError: no such operation (see ``OperationStore.get``).
        BackendError: the store or the log cannot be read.
    """
    record = await asyncio.to_thread(index.get, op_id)
    reader = LogReader(index.log_path(record.id), limit)
    if not from_start:
        reader.skip_to_end()
    while True:
        events = reader.read(raw_log_lines)  # a bounded batch: ~10 ms of decoding, cheaper here than in a thread
        end = _end(events)
        if end is not None:
            yield events[: end + 1]
            return
        if events:
            yield events
            await asyncio.sleep(0)  # let keys and frames in between batches
            continue
        if reader.more():
            continue
        record = await asyncio.to_thread(index.get, record.id)
        if record.finished:
            # The closing event may have landed between the read and the look at the index.
            while tail := reader.read(raw_log_lines):
                end = _end(tail)
                if end is not None:
                    yield tail[: end + 1]
                    return
                yield tail
            closing: list[Event] = [OperationFinished(record.id, record.state, record.finished_at or utc_now(),
                                                      record.error, record.result)]
            yield closing
            return
        await asyncio.sleep(poll)


async def follow(
    index: OperationIndex, op_id: str, *, from_start: bool = True, poll: float = 0.1
) -> AsyncGenerator[Event, None]:
    """:func:`follow_batches`, one event at a time (``orbit logs --follow``).

    Raises:
        NotFoundError: no such operation (see ``OperationStore.get``).
        BackendError: the store or the log cannot be read.
    """
    async with contextlib.aclosing(follow_batches(index, op_id, from_start=from_start, poll=poll)) as batches:
        async for batch in batches:
            for event in batch:
                yield event


def _end(events: list[Event] | list[Event | bytes]) -> int | None:
    """The position of the first ``OperationFinished`` in ``events``, if any."""
    return next((index for index, event in enumerate(events) if isinstance(event, OperationFinished)), None)
