"""Cross-process locks under ``.orbit/locks/``: one build per component, one operation per solution.

Each lock is an exclusive ``flock`` on its own file, the lock ``filelock`` takes on POSIX, so the two
interoperate; the OS releases it when its holder dies, so a killed process never leaves a lock that
blocks the next run. A sweep takes one lock per solution, thousands of times, so on POSIX the
``flock`` is taken directly (open, flock, and on release unlock and close): ``filelock``'s own
bookkeeping cost ten times that. Elsewhere ``filelock`` is used as it is. Waiting is a poll that
yields to the event loop, so a waiting operation stays cancellable and the console stays live. See
``docs/decisions/0014-fleet-speed.md``.

Whoever takes a lock writes who it is at the start of the lock file (operation id and kind, pid, host,
since: one JSON line), so a waiter can say what it waits for. Only waiters read it, and only while the
lock is held, so the record is not cleared on release (a sweep takes thousands of locks: one ``pwrite``
each is all it costs); a waiter reads the first line only, as a shorter record leaves the end of a longer
one behind it. An empty, partial or malformed record, or one naming a process of this host that is gone,
reads as an unknown holder. A wait ends when the
lock is free, when ``timeout`` seconds have passed (``LockTimeoutError``), or when it is cancelled.
See ``docs/decisions/0026-bounded-lock-waits.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from orbit_ops.errors import LockTimeoutError, RefusedError
from orbit_ops.operations.liveness import HOST, pid_exists
from orbit_ops.statedir import PRIVATE_FILE_MODE, make_private_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

POLL_SECONDS = 0.2
DEFAULT_LOCK_TIMEOUT = 600.0  # seconds a member waits for another operation's lock (--lock-timeout)
UNKNOWN_GRACE_SECONDS = 1.0  # a holder that just took the lock may not have written its record yet
MAX_HOLDER_BYTES = 4096
_made: set[Path] = set()  # lock folders known to exist, so a sweep does not mkdir once per solution


def lock_path(state_dir: Path, name: str) -> Path:
    folder = state_dir / "locks"
    if folder not in _made:
        make_private_dir(folder)
        _made.add(folder)
    return folder / f"{name}.lock"


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as the holder wrote it into the lock file."""

    pid: int
    host: str
    since: str  # UTC, ISO 8601
    op_id: str | None = None
    kind: str | None = None
    user: str | None = None  # the shared store records who started the operation (a flock's file does not)
    expires: str | None = None  # a lease's end unless renewed (UTC, ISO 8601); None for a flock

    def describe(self) -> str:
        """``operation 20261201-213005-ab12 (roll, pid 4242 on host, since 21:30:05)``; ``…(roll, alice, pid …``
        when the user is known."""
        detail = f"pid {self.pid} on {self.host}, since {self.since[11:19] or self.since}"
        if self.user:
            detail = f"{self.user}, {detail}"
        if self.op_id is None:
            return f"process {self.pid} on {self.host} (since {self.since[11:19] or self.since})"
        return f"operation {self.op_id} ({self.kind + ', ' if self.kind else ''}{detail})"

    def encode(self) -> bytes:
        """The record as the lock file holds it: one JSON line."""
        return _prefix(self.op_id, self.kind, self.pid, self.host) + self.since.encode() + b'"}\n'


@functools.lru_cache(maxsize=256)
def _prefix(op_id: str | None, kind: str | None, pid: int, host: str) -> bytes:
    """All of a record but its time (a record is made each time a lock is taken; this part rarely changes)."""
    body = json.dumps({"op_id": op_id, "kind": kind, "pid": pid, "host": host}, ensure_ascii=True)
    return (body[:-1] + ', "since": "').encode()


def _record(op_id: str | None, kind: str | None) -> bytes:
    return _prefix(op_id, kind, os.getpid(), HOST) + utc_now().encode() + b'"}\n'


def read_holder(path: Path) -> LockHolder | None:
    """The holder recorded in the lock file at ``path``; None when there is none or it cannot be trusted.

    Never raises: a missing, empty, partial or malformed record is an unknown holder, and so is one
    naming a process on this host that no longer exists (killed before it emptied the file).
    """
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(MAX_HOLDER_BYTES).split(b"\n", 1)[0])
        holder = LockHolder(pid=int(data["pid"]), host=str(data["host"]), since=str(data["since"]),
                            op_id=None if data.get("op_id") is None else str(data["op_id"]),
                            kind=None if data.get("kind") is None else str(data["kind"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if holder.host == HOST and not pid_exists(holder.pid):
        return None
    return holder


def busy_error(what: str, holder: LockHolder | None) -> RefusedError:
    """The refusal of a lock held elsewhere when the caller does not wait."""
    return RefusedError(f"{what} is busy: {_describe(holder)} (retry, or drop --no-wait)")


def timeout_error(what: str, timeout: float, holder: LockHolder | None) -> LockTimeoutError:
    """The end of a wait that lasted ``timeout`` seconds, naming the holder and what to do."""
    hint = f"orbit cancel {holder.op_id}" if holder and holder.op_id else "stop its holder"
    return LockTimeoutError(f"gave up waiting for {what} after {_seconds(timeout)} (--lock-timeout): "
                            f"{_describe(holder)}; wait longer with --lock-timeout, or {hint}")


def waiting_line(what: str, holder: LockHolder | None) -> str:
    """What a waiter is told: ``waiting for solution acme-corp: held by operation …``."""
    return f"waiting for {what}: {_describe(holder)}"


class WaitTold:
    """What a waiter has told ``on_wait`` of the holders it saw: a named holder at once and whenever it changes;
    an unknown one only once it has stayed unknown for ``UNKNOWN_GRACE_SECONDS``. A holder that has just taken
    the lock writes its record a moment later, and one releasing it says it is free just before it lets go: a
    waiter that looks in between would otherwise say the lock is held by "another process"."""

    def __init__(self, what: str, on_wait: Callable[[str], None] | None) -> None:
        self.what = what
        self.on_wait = on_wait
        self._told: LockHolder | bool | None = False  # the holder last reported (False: none yet)
        self._unknown_since: float | None = None

    def saw(self, holder: LockHolder | None, now: float) -> None:
        """The holder a look at ``now`` (seconds, any monotonic clock) found."""
        if holder is not None:
            self._unknown_since = None
        else:
            since = self._unknown_since = now if self._unknown_since is None else self._unknown_since
            if now - since < UNKNOWN_GRACE_SECONDS:
                return
        if self.on_wait is None or holder == self._told:
            return
        self.on_wait(waiting_line(self.what, holder))
        self._told = holder


def _describe(holder: LockHolder | None) -> str:
    return f"held by {holder.describe()}" if holder else "held by another process (not an Orbit operation, " \
        "or one that has not said who it is)"


class _Flock:
    """An exclusive ``flock`` on one file, taken without blocking; separate instances exclude each other."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self, record: bytes | None = None) -> bool:
        """Take the lock if it is free, then write ``record`` (who holds it) into the file."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
            except FileNotFoundError:
                make_private_dir(self.path.parent)  # the folder was removed meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            if os.fstat(fd).st_nlink == 0:  # the file was deleted while we locked it: lock the new one
                os.close(fd)
                continue
            self._fd = fd
            if record is not None:
                # Best effort: a lock whose holder cannot be told is still a lock (e.g. on a full disk).
                with contextlib.suppress(OSError):
                    os.pwrite(fd, record, 0)
            return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


class _PortableLock:
    """``filelock`` where there is no ``flock``."""

    def __init__(self, path: Path) -> None:
        self._lock = FileLock(str(path), mode=PRIVATE_FILE_MODE)

    def try_acquire(self, record: bytes | None = None) -> bool:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()


@contextlib.asynccontextmanager
async def held(path: Path, *, what: str, wait: bool = True, on_wait: Callable[[str], None] | None = None,
               timeout: float | None = None, op_id: str | None = None,
               kind: str | None = None) -> AsyncIterator[bool]:
    """Hold the lock at ``path``; yields whether it had to wait for another holder first.

    ``what`` names the lock in messages (``solution acme-corp``); ``op_id`` and ``kind`` are the
    operation taking it, recorded for waiters. While waiting, ``on_wait`` is told who holds the lock
    (again whenever that changes); ``timeout`` bounds the wait in seconds (None: no bound).

    Raises:
        RefusedError: the lock is held elsewhere and ``wait`` is false.
        LockTimeoutError: the lock was still held elsewhere after ``timeout`` seconds.
    """
    lock: _Flock | _PortableLock = _Flock(path) if fcntl is not None else _PortableLock(path)
    waited = False
    told = WaitTold(what, on_wait)
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not lock.try_acquire(_record(op_id, kind)):
        holder = read_holder(path)
        if not wait:
            raise busy_error(what, holder)
        elapsed = loop.time() - started
        if timeout is not None and elapsed >= timeout:
            raise timeout_error(what, timeout, holder)
        told.saw(holder, elapsed)
        waited = True
        await asyncio.sleep(POLL_SECONDS if timeout is None else max(0.0, min(POLL_SECONDS, timeout - elapsed)))
    try:
        yield waited
    finally:
        lock.release()


_clock: tuple[int, str] = (0, "")


def utc_now() -> str:
    """The current UTC second as ISO 8601, made once a second (a sweep takes a lock per solution)."""
    global _clock
    second = int(time.time())
    if second != _clock[0]:
        _clock = (second, datetime.fromtimestamp(second, UTC).isoformat().replace("+00:00", "Z"))
    return _clock[1]


def _seconds(value: float) -> str:
    return f"{value:g} s"
