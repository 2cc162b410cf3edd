"""The identities of a folder's solution files, looked at in a helper process when there are thousands of them.

A file's identity is (name, size, ``mtime_ns``, ``ctime_ns``, inode), links not followed: what the solution cache
compares to know a file unchanged (``orbit_ops.config.solution_cache``). One ``lstat`` per file is about 4 µs
here, but each releases the GIL and must take it back: in a thread beside a busy console (the screen being drawn
as it starts) 10,000 of them took 460 ms instead of 44, each waiting for the drawing thread's switch interval.
From ``HELPER_FILES`` files on, with more than one core, they are taken by ``python -I -S`` running this module's
:func:`main` (nothing but the standard library is imported: about 50 ms in all for 10,000 files, on the other
core), which answers their :func:`fingerprint`, 32 bytes, ready by the time it is asked for when the look was begun
early. A helper that cannot start, fails, answers anything else, or is still looking after ``HELPER_SECONDS`` has
the folder looked at here instead: the same answer. See decision 0094.

This module imports nothing of Orbit's, so that the helper starts as quickly as Python does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
import sys

HELPER_FILES = 2_000  # files from which a helper is worth its start (about 20 ms)
HELPER_SECONDS = 2.0  # a helper still looking this long after it was asked is stopped; the folder is looked at here
Identity = tuple[str, int, int, int, int]  # name, size, mtime_ns, ctime_ns, inode


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def identities(folder: str) -> list[Identity] | None:
    """Each solution file of ``folder`` (``.yaml`` and ``.yml``, not hidden), sorted by name, with its identity;
    None when one is not a regular file (or vanished meanwhile), or the folder cannot be listed."""
    found: list[Identity] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith((".yaml", ".yml")) or name.startswith("."):
                    continue
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):
                    return None
                found.append((name, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino))
    except OSError:
        return None
    found.sort(key=_name)
    return found


def fingerprint(found: list[Identity]) -> bytes:
    """A digest of the identities that two lists share exactly when they are equal (SHA-256 of each field's text
    after the other, NUL after each: a file name holds no NUL). A list kept as it is compared in 32 bytes."""
    parts = []
    for name, size, mtime, ctime, inode in found:
        parts.append(f"{name}\0{size}\0{mtime}\0{ctime}\0{inode}\0")
    return hashlib.sha256("".join(parts).encode("utf-8", "surrogateescape")).digest()


class Look:
    """A look at whether ``folder``'s solution files are still those of a :func:`fingerprint`, begun now and
    answered by :meth:`same`: by a helper process, started at once, when ``expected`` (how many files there
    were last time) reaches ``HELPER_FILES`` and another core can take it; else here, when asked."""

    def __init__(self, folder: str, expected: int) -> None:
        self.folder = folder
        self._helper: subprocess.Popen[bytes] | None = None
        if expected >= HELPER_FILES and cores() > 1 and not getattr(sys, "frozen", False):
            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds orbit_ops
            code = f"import sys; sys.path.insert(0, {root!r}); from orbit_ops.config import file_scan; file_scan.main()"
            try:
                self._helper = subprocess.Popen([sys.executable, "-I", "-S", "-c", code, folder],
                                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                stderr=subprocess.DEVNULL)
            except (OSError, subprocess.SubprocessError):
                self._helper = None

    def same(self, made: bytes) -> bool:
        """Whether the files' identities are exactly those ``made`` (a :func:`fingerprint`) was made of: the
        helper's answer (ready by then, typically), or else looked at here now."""
        helper, self._helper = self._helper, None
        if helper is not None:
            try:
                answer, _ = helper.communicate(timeout=HELPER_SECONDS)
            except (OSError, subprocess.SubprocessError):
                answer = b""
            finally:
                _stop(helper)
            if helper.returncode == 0 and len(answer) in (0, len(made)):  # nothing: not all regular files
                return answer == made
        now = identities(self.folder)
        return now is not None and fingerprint(now) == made

    def close(self) -> None:
        """Stop the helper, if it is still looking (the answer is not wanted)."""
        helper, self._helper = self._helper, None
        if helper is not None:
            _stop(helper)


def _stop(helper: subprocess.Popen[bytes]) -> None:
    """The helper ended (killed if it still runs), its pipe closed and its exit reaped."""
    if helper.poll() is None:
        helper.kill()
    if helper.stdout is not None:
        with contextlib.suppress(OSError):
            helper.stdout.close()
    helper.wait()


def main() -> None:
    """The helper: the :func:`fingerprint` of the folder named by the first argument, on its standard output;
    nothing when one of its solution files is not a regular file or it cannot be listed."""
    found = identities(sys.argv[1])
    if found is not None:
        sys.stdout.buffer.write(fingerprint(found))


def _name(item: Identity) -> str:
    return item[0]
