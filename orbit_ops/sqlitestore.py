"""One SQLite database shared by threads and processes: the base of the operation and platform stores.

WAL journal, a busy timeout, and every write one short ``BEGIN IMMEDIATE`` transaction, so several
``orbit`` processes (a sweep, a follower, the console) share a file safely. First-time set-up takes a
file lock: two processes opening a brand-new database at once otherwise race on switching it to WAL,
and SQLite answers one of them "database is locked" at once. ``sqlite3`` errors become
``BackendError`` naming the store.

A store whose folder cannot be written (a read-only mount, a full disk) still answers reads: it is
opened read-only, without the set-up lock, ``mode=ro`` first (which sees a WAL a writer left behind)
and ``immutable=1`` when even WAL's shared-memory file cannot be made; a store that does not exist
yet reads as empty. :attr:`SqliteStore.read_only` then says why, and every write raises
``StateUnwritableError``. The files are created 0600 (SQLite gives ``-wal`` and ``-shm`` the mode of
the database) and an older workspace's modes are tightened when it is opened for writing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from orbit_ops.errors import BackendError, StateUnwritableError
from orbit_ops.statedir import (
    PRIVATE_FILE_MODE,
    create_private_file,
    is_unwritable,
    on_full_disk,
    tighten_file,
    tighten_state_dir,
    unwritable_reason,
)

BUSY_TIMEOUT_SECONDS = 10.0


class SqliteStore:
    """Owns the connection; subclasses give ``LABEL``, ``SCHEMA_VERSION`` and :meth:`_create_schema`."""

    LABEL = "store"
    SCHEMA_VERSION = 1
    read_only: str | None = None  # why the store was opened read-only ("<folder> is read-only"), or None

    def _open(self, path: Path, folder_error: OSError | None = None) -> None:
        """Connect to ``path`` and create or check the schema; read-only if its folder cannot be written.

        ``folder_error`` is what making the store's folders raised, when that failed because they
        cannot be written: the store is then opened read-only at once.

        Raises:
            BackendError: the database cannot be opened or read (not a database, damaged), or was
                written by a newer Orbit.
        """
        self.path = path
        self._lock = threading.RLock()
        self.read_only = None
        if folder_error is None and on_full_disk(path.parent):
            folder_error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path.parent))
        if folder_error is not None:
            self._open_read_only(path, unwritable_reason(path.parent), folder_error)
            return
        try:
            self._open_writable(path)
        except _Unwritable as exc:
            self._open_read_only(path, unwritable_reason(path.parent), exc.__cause__)

    def _open_writable(self, path: Path) -> None:
        try:
            create_private_file(path)
            tighten_state_dir(path.parent)
            for suffix in ("-wal", "-shm", ".init.lock"):
                tighten_file(Path(str(path) + suffix))
            self._conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                                         check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            if is_unwritable(exc):
                raise _Unwritable() from exc
            raise BackendError(f"cannot open the {self.LABEL} {path}: {exc}") from exc
        try:
            with FileLock(str(path) + ".init.lock", mode=PRIVATE_FILE_MODE):
                with self._guard():
                    self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
                    self._conn.execute("PRAGMA journal_mode = WAL")
                    self._conn.execute("PRAGMA synchronous = NORMAL")
                with self._write() as conn:
                    self._check_version(conn)
        except BackendError as exc:
            self._conn.close()
            if exc.__cause__ is not None and is_unwritable(exc.__cause__):
                raise _Unwritable() from exc.__cause__
            raise
        except OSError as exc:  # the set-up lock
            self._conn.close()
            if is_unwritable(exc):
                raise _Unwritable() from exc
            raise BackendError(f"cannot open the {self.LABEL} {path}: {exc}") from exc

    def _open_read_only(self, path: Path, reason: str, cause: BaseException | None) -> None:
        """Open without writing anything: no lock, no journal switch, no schema (an empty store if absent).

        Raises:
            BackendError: the file exists but cannot be read as this store.
        """
        self.read_only = reason
        if not path.exists():
            self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._create_schema(self._conn)
            return
        uri = "file:" + urllib.parse.quote(str(path))
        error: BaseException | None = cause
        for flags in ("mode=ro", "immutable=1"):
            try:
                conn = sqlite3.connect(f"{uri}?{flags}", uri=True, timeout=BUSY_TIMEOUT_SECONDS,
                                       isolation_level=None, check_same_thread=False)
            except sqlite3.Error as exc:
                error = exc
                continue
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as exc:
                conn.close()
                error = exc
                continue
            self._conn = conn
            if version > self.SCHEMA_VERSION:
                conn.close()
                raise BackendError(_newer(path, version, self.SCHEMA_VERSION))
            if version < self.SCHEMA_VERSION:  # made but never set up: nothing is stored in it
                conn.close()
                self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                self._create_schema(self._conn)
            return
        if not os.access(path, os.R_OK):
            raise BackendError(f"cannot read the {self.LABEL} {path}: permission denied")
        raise BackendError(_unreadable(self.LABEL, path, error))

    def _check_version(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > self.SCHEMA_VERSION:
            raise BackendError(_newer(self.path, version, self.SCHEMA_VERSION))
        if version < self.SCHEMA_VERSION:
            self._create_schema(conn)
            conn.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.DatabaseError as exc:
                if str(getattr(exc, "sqlite_errorname", "")).startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
                    raise BackendError(_unreadable(self.LABEL, self.path, exc)) from exc
                raise BackendError(f"{self.LABEL} {self.path}: {exc}") from exc
            except sqlite3.Error as exc:
                raise BackendError(f"{self.LABEL} {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, committed if the block completes.

        Raises:
            StateUnwritableError: the store was opened read-only (its folder cannot be written).
            BackendError: SQLite failed (a full disk included: the transaction is rolled back).
        """
        if self.read_only is not None:
            raise StateUnwritableError(f"cannot record anything: {self.read_only}")
        with self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")


class _Unwritable(Exception):
    """Internal: the writable open failed because the folder cannot be written (the cause says how)."""


def _newer(path: Path, version: int, known: int) -> str:
    return f"{path} was written by a newer Orbit (schema {version}, this one knows {known})"


def _unreadable(label: str, path: Path, error: BaseException | None) -> str:
    detail = f" ({error})" if error is not None else ""
    return (f"the {label} {path} cannot be read{detail}: it is damaged or not an Orbit store; move it aside "
            "(Orbit starts a new one) or restore it from a backup")
