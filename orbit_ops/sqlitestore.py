"""One SQLite database shared by threads and processes: the base of the operation and platform stores.

WAL journal, a busy timeout, and every write one short ``BEGIN IMMEDIATE`` transaction, so several
``orbit`` processes (a sweep, a follower, the console) share a file safely. First-time set-up takes a
file lock: two processes opening a brand-new database at once otherwise race on switching it to WAL,
and SQLite answers one of them "database is locked" at once. ``sqlite3`` errors become
``BackendError`` naming the store.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from orbit_ops.errors import BackendError

BUSY_TIMEOUT_SECONDS = 10.0


class SqliteStore:
    """Owns the connection; subclasses give ``LABEL``, ``SCHEMA_VERSION`` and :meth:`_create_schema`."""

    LABEL = "store"
    SCHEMA_VERSION = 1

    def _open(self, path: Path) -> None:
        """Connect to ``path`` and create or check the schema.

        Raises:
            BackendError: the database cannot be opened, or was written by a newer Orbit.
        """
        self.path = path
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                                         check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise BackendError(f"cannot open the {self.LABEL} {path}: {exc}") from exc
        try:
            with FileLock(str(path) + ".init.lock"):
                with self._guard():
                    self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
                    self._conn.execute("PRAGMA journal_mode = WAL")
                    self._conn.execute("PRAGMA synchronous = NORMAL")
                with self._write() as conn:
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    if version > self.SCHEMA_VERSION:
                        raise BackendError(f"{path} was written by a newer Orbit (schema {version}, "
                                           f"this one knows {self.SCHEMA_VERSION})")
                    if version < self.SCHEMA_VERSION:
                        self._create_schema(conn)
                        conn.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")
        except BackendError:
            self._conn.close()
            raise

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
            except sqlite3.Error as exc:
                raise BackendError(f"{self.LABEL} {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
