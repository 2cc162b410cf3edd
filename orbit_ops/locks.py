"""Cross-process locks under ``.orbit/locks/``: one build per component, one operation per solution.

Each lock is an exclusive ``flock`` on its own file, the lock ``filelock`` takes on POSIX, so the two
interoperate; the OS releases it when its holder dies, so a killed process never leaves a lock that
blocks the next run. A sweep takes one lock per solution, thousands of times, so on POSIX the
``flock`` is taken directly (open, flock, and on release unlock and close): ``filelock``'s own
bookkeeping cost ten times that. Elsewhere ``filelock`` is used as it is. Waiting is a poll that
yields to the event loop, so a waiting operation stays cancellable and the console stays live. See
``docs/decisions/0014-fleet-speed.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from filelock import FileLock, Timeout

from orbit_ops.errors import RefusedError
from orbit_ops.statedir import PRIVATE_FILE_MODE, make_private_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

POLL_SECONDS = 0.2
_made: set[Path] = set()  # lock folders known to exist, so a sweep does not mkdir once per solution


def lock_path(state_dir: Path, name: str) -> Path:
    folder = state_dir / "locks"
    if folder not in _made:
        make_private_dir(folder)
        _made.add(folder)
    return folder / f"{name}.lock"


class _Flock:
    """An exclusive ``flock`` on one file, taken without blocking; separate instances exclude each other."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
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

    def try_acquire(self) -> bool:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()


@contextlib.asynccontextmanager
async def held(path: Path, *, what: str, wait: bool = True,
               on_wait: Callable[[str], None] | None = None) -> AsyncIterator[bool]:
    """Hold the lock at ``path``; yields whether it had to wait for another holder first.

    Raises:
        RefusedError: the lock is held elsewhere and ``wait`` is false.
    """
    lock: _Flock | _PortableLock = _Flock(path) if fcntl is not None else _PortableLock(path)
    waited = False
    while not lock.try_acquire():
        if not wait:
            raise RefusedError(f"{what} is busy: another operation holds it (retry, or drop --no-wait)") from None
        if not waited and on_wait is not None:
            on_wait(f"waiting: another operation holds {what}")
        waited = True
        await asyncio.sleep(POLL_SECONDS)
    try:
        yield waited
    finally:
        lock.release()
