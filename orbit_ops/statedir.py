"""The state folder ``.orbit/``: private modes, and telling a folder that cannot be written from a fault.

``.orbit/`` holds env values (``platform.sqlite``) and logs that may quote more, so it is the
operator's alone: folders are made 0700 and files 0600, whatever the umask, and a workspace made by
an older Orbit (0755/0644) is tightened the first time a store opens it for writing. Tightening
walks the tree once: it is done when ``.orbit/`` itself still lets others in, and leaves it 0700.

A state folder on a read-only mount, a full disk or one the process may not write is not an error
for reading: the stores then open read-only (see ``orbit_ops.sqlitestore``). :func:`is_unwritable`
tells those conditions from other failures, :func:`unwritable_reason` says which one it is.
See ``docs/decisions/0028-read-only-or-full-state-folder.md`` and ``0029-private-state-folder.md``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_OTHERS = 0o077  # group and other bits, which a private file or folder never has

# errno values that mean "this folder cannot take a write now", as opposed to a broken file.
_UNWRITABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})
# SQLite's names for the same conditions (Python 3.11 gives them as ``sqlite_errorname``): a read-only
# file or folder, a journal or shared-memory file it cannot create, a full disk.
_UNWRITABLE_SQLITE = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_FULL", "SQLITE_IOERR_SHM",
                      "SQLITE_IOERR_WRITE", "SQLITE_IOERR_TRUNCATE", "SQLITE_IOERR_FSYNC")


def make_private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700 (umask-free); an existing folder is kept.

    Raises:
        OSError: a folder cannot be created.
    """
    missing: list[Path] = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                what = "a link to a missing folder" if folder.is_symlink() else "not a folder"
                raise NotADirectoryError(errno.ENOTDIR, f"it exists but is {what}", str(folder)) from None
            continue
        with contextlib.suppress(OSError):
            os.chmod(folder, PRIVATE_DIR_MODE)  # the umask may have taken bits the owner needs
    return path


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist; drop group/other bits if it does.

    Raises:
        OSError: the file cannot be created.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
    try:
        mode = os.fstat(fd).st_mode & 0o7777
        if mode & _OTHERS:
            os.fchmod(fd, mode & ~_OTHERS)
    finally:
        os.close(fd)


def tighten_file(path: Path) -> None:
    """Drop group and other bits from ``path`` if it exists (best effort)."""
    with contextlib.suppress(OSError):
        info = os.stat(path, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            return  # chmod would follow it: a link's target (maybe outside .orbit/) is not ours to change
        mode = info.st_mode & 0o7777
        if mode & _OTHERS:
            os.chmod(path, mode & ~_OTHERS)


def tighten_state_dir(state_dir: Path) -> None:
    """Make an existing ``state_dir`` private: every folder and file loses its group and other bits.

    Cheap when already done (one ``stat``): the walk runs only while ``state_dir`` itself is open to
    others, and ``state_dir`` is tightened last, so an interrupted walk is redone next time. Best
    effort: a file that cannot be changed is left as it is.
    """
    try:
        mode = os.stat(state_dir).st_mode & 0o7777
    except OSError:
        return
    if not mode & _OTHERS:
        return
    for root, folders, files in os.walk(state_dir):
        for name in (*folders, *files):
            tighten_file(Path(root) / name)
    with contextlib.suppress(OSError):
        os.chmod(state_dir, mode & ~_OTHERS)


def is_unwritable(exc: BaseException) -> bool:
    """Whether ``exc`` says a file or folder cannot be written (read-only, full, not permitted)."""
    if isinstance(exc, OSError):
        return exc.errno in _UNWRITABLE_ERRNOS
    if isinstance(exc, sqlite3.Error):
        name = str(getattr(exc, "sqlite_errorname", "") or "")
        return name.startswith(_UNWRITABLE_SQLITE)
    return False


def on_full_disk(folder: Path) -> bool:
    """Whether ``folder`` lies on a file system with no block (or no inode) left for an unprivileged write.

    SQLite can still open a store there when its shared-memory file was made earlier, and only the
    first write would fail; knowing it up front lets readers say so and writers refuse cleanly.
    """
    try:
        status = os.statvfs(folder)
    except OSError:
        return False
    return status.f_bavail == 0 or (status.f_files > 0 and status.f_favail == 0)


def unwritable_reason(folder: Path) -> str:
    """Why ``folder`` (or its nearest existing parent) cannot be written: ``"<folder> is read-only"``...

    Asks the file system (mount flags, free space, access) rather than the error, which SQLite
    reports as "unable to open database file" or "disk I/O error" for all of them.
    """
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        status = os.statvfs(probe)
    except OSError:
        return f"{folder} cannot be written"
    if status.f_flag & os.ST_RDONLY:
        return f"{folder} is read-only"
    if on_full_disk(probe):
        return f"{folder} is on a full disk"
    if not os.access(probe, os.W_OK):
        return f"{folder} cannot be written (permission denied)"
    return f"{folder} cannot be written"
