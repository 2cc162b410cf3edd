"""Cross-process locks under ``.orbit/locks/``: one build per component, one operation per solution.

File locks (``filelock``) are released by the OS when their holder dies, so a killed process never
leaves a lock that blocks the next run. Waiting is a poll that yields to the event loop, so a waiting
operation stays cancellable and the console stays live.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from filelock import FileLock, Timeout

from orbit_ops.errors import RefusedError

POLL_SECONDS = 0.2


def lock_path(state_dir: Path, name: str) -> Path:
    folder = state_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.lock"


@contextlib.asynccontextmanager
async def held(path: Path, *, what: str, wait: bool = True,
               on_wait: Callable[[str], None] | None = None) -> AsyncIterator[bool]:
    """Hold the lock at ``path``; yields whether it had to wait for another holder first.

    Raises:
        RefusedError: the lock is held elsewhere and ``wait`` is false.
    """
    lock = FileLock(str(path))
    waited = False
    while True:
        try:
            lock.acquire(timeout=0)
            break
        except Timeout:
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
