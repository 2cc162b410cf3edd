"""Where locks live: this machine's ``flock``s (``local``) or renewable blob leases shared by a team.

Operations take a lock per *scope* (``solution-acme-corp``, ``build-agent``) through a :class:`LockStore`; the
store hands back a :class:`HeldLock` whose :meth:`HeldLock.ensure` is the fence an operation calls before each
write it makes under the lock. A ``flock`` cannot be lost while its process lives, so the local fence never
fires; a lease can (its renewal failed, or an operator broke it), and then ``ensure`` raises
:class:`~orbit_ops.errors.LockLostError` before the write. The local store is exactly the lock of
:mod:`orbit_ops.operations.locks`; the shared one is ``orbit_ops.backends.azure.state_store``. See
``docs/decisions/0065-locks-as-renewable-leases.md``.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orbit_ops.errors import RefusedError
from orbit_ops.operations.locks import LockHolder, held, lock_path, read_holder

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

# Lease ids are GUIDs; one derived from the operation keeps it the operation's across a resume of that operation.
_LEASE_NAMESPACE = uuid.UUID("6f1b1c2e-8d0a-4f57-9a3e-0b7c5d2e4a61")


def lease_id_for(op_id: str | None, scope: str) -> str:
    """The lease id an operation uses on a scope: ``uuid5(op_id/scope)``; a fresh GUID for a lock of no operation."""
    if op_id is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_LEASE_NAMESPACE, f"{op_id}/{scope}"))


def current_user() -> str:
    """Who runs this process, as the shared store records it (``$LOGNAME``/``$USER``, else the account name)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


@dataclass(frozen=True)
class LockInfo:
    """One lock as ``orbit locks`` lists it: its scope, and its holder while it is held."""

    scope: str
    holder: LockHolder | None
    state: str  # held | free | broken
    broken_by: str | None = None  # ``alice on host-b at 2026-12-02T06:00:00Z`` after ``orbit locks break``

    def to_json(self) -> dict[str, object]:
        holder = self.holder
        return {
            "scope": self.scope,
            "state": self.state,
            "op_id": holder.op_id if holder else None,
            "kind": holder.kind if holder else None,
            "user": holder.user if holder else None,
            "host": holder.host if holder else None,
            "pid": holder.pid if holder else None,
            "since": holder.since if holder else None,
            "expires": holder.expires if holder else None,
            "broken_by": self.broken_by,
        }


class HeldLock(Protocol):
    """A lock this operation holds."""

    @property
    def waited(self) -> bool:
        """Whether another holder had to be waited for first (then what it did must be read afresh)."""

    async def ensure(self) -> None:
        """The fence: return while the lock is surely still held; call before each write made under it.

        Raises:
            LockLostError: the lock was lost (its lease could not be renewed in time, or was broken).
        """


class LockStore(Protocol):
    """Locks by scope, for every operation of a workspace."""

    def hold(self, scope: str, *, what: str, wait: bool = True, on_wait: Callable[[str], None] | None = None,
             timeout: float | None = None, op_id: str | None = None,
             kind: str | None = None) -> AbstractAsyncContextManager[HeldLock]:
        """Hold the lock of ``scope`` for the ``async with`` block (arguments as
        :func:`orbit_ops.operations.locks.held`).

        Raises:
            RefusedError: the lock is held elsewhere and ``wait`` is false.
            LockTimeoutError: still held elsewhere after ``timeout`` seconds.
            StateStoreUnreachableError: the shared store cannot be reached (never run unlocked).
        """

    async def list_locks(self) -> list[LockInfo]:
        """Every lock the store knows, held or not, sorted by scope.

        Raises:
            StateStoreUnreachableError: the shared store cannot be reached.
        """

    async def break_lock(self, scope: str, *, by: str) -> LockInfo:
        """Break ``scope``'s lock, recording ``by`` (who broke it); returns the lock as it was.

        Raises:
            NotFoundError: no lock of that scope.
            RefusedError: this store cannot break its locks (a ``flock`` ends with its process).
        """


@dataclass(frozen=True)
class _FlockHeld:
    waited: bool

    async def ensure(self) -> None:
        return None  # a flock is held until its process ends or releases it


class LocalLockStore:
    """The ``flock``s under ``.orbit/locks/`` (``state: local``, the default), exactly as before stores existed."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    @contextlib.asynccontextmanager
    async def hold(self, scope: str, *, what: str, wait: bool = True, on_wait: Callable[[str], None] | None = None,
                   timeout: float | None = None, op_id: str | None = None,
                   kind: str | None = None) -> AsyncIterator[HeldLock]:
        async with held(lock_path(self.state_dir, scope), what=what, wait=wait, on_wait=on_wait, timeout=timeout,
                        op_id=op_id, kind=kind) as waited:
            yield _FlockHeld(waited)

    async def list_locks(self) -> list[LockInfo]:
        """The lock files of ``.orbit/locks/``; one is held when a non-blocking ``flock`` on it fails."""
        folder = self.state_dir / "locks"
        try:
            paths = sorted(folder.glob("*.lock"))
        except OSError:
            return []
        found = []
        for path in paths:
            busy = _flocked(path)
            holder = read_holder(path) if busy else None
            found.append(LockInfo(path.name[: -len(".lock")], holder, "held" if busy else "free"))
        return found

    async def break_lock(self, scope: str, *, by: str) -> LockInfo:
        raise RefusedError(f"the local lock {scope} is a flock, which only its own process holds and the system "
                           "frees when that process ends: stop the operation holding it (orbit cancel ID), or "
                           "share locks through state: store: azure-blob")


def _flocked(path: Path) -> bool:
    """Whether another process holds the ``flock`` on ``path`` (probed without blocking, released at once)."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return read_holder(path) is not None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
