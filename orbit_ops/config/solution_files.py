"""Solution files as files: which there are, what changed, and reading one only if it may be read.

A solution file is a regular file inside ``solutions_dir``. A symbolic link may point at a file in the same
folder; a link out of it (``/etc/passwd``), a folder, a FIFO or a device with a solution file's name is reported
as an invalid solution and never opened for reading, so no system file's lines reach an error message and no
FIFO hangs the console. Validation of the content is ``orbit_ops.config.load``'s.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from pathlib import Path

from orbit_ops.errors import ConfigError
from orbit_ops.yamlfile import MAX_YAML_BYTES

FILE_RULE = "a solution file is a regular file inside solutions_dir (a symbolic link may only point inside it)"
Stamp = tuple[tuple[str, int, int, int], ...]


def list_files(folder: Path) -> list[Path]:
    """Every solution file in ``folder``, sorted by name (``.yaml`` and ``.yml``), whatever it holds or points at.

    Everything with a solution file's name is listed, so that what cannot be a solution (a folder, a symbolic
    link out of ``folder``, a FIFO) is reported by :func:`read_solution_text` instead of silently left out.
    """
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        found = [
            (entry.name, entry.path)
            for entry in entries
            if entry.name.endswith((".yaml", ".yml")) and not entry.name.startswith(".")
        ]
    found.sort()  # by name: the order of the paths, without comparing 10,000 Path objects
    return [Path(path) for _, path in found]


def stamp(folder: Path) -> Stamp:
    """What changes when any solution file is added, removed, replaced or written: (name, size, mtime, inode) of
    each, links not followed. Cheap (one ``scandir``), so a console can ask on every refresh whether to re-read.
    """
    if not folder.is_dir():
        return ()
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith((".yaml", ".yml")) and not entry.name.startswith("."):
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    found.append((entry.name, info.st_size, info.st_mtime_ns, info.st_ino))
    except OSError:
        return ()
    found.sort()
    return tuple(found)


def read_solution_text(folder: Path, path: Path) -> str:
    """The text of solution file ``path`` (see :func:`read_solution_file`).

    Raises:
        ConfigError: the file is not a regular file inside ``solutions_dir``, cannot be read, is too large or
            is not UTF-8.
    """
    return read_solution_file(folder, path)[0]


def read_solution_file(folder: Path, path: Path) -> tuple[str, os.stat_result]:
    """The text of solution file ``path`` and the ``fstat`` of the file read, read only if it is a regular file
    inside ``folder`` (``solutions_dir``).

    A symbolic link is followed only to a file inside ``solutions_dir``: a link to ``/etc/passwd`` must not
    put a system file's lines into an error message. The file is opened without following a link and
    without blocking (a FIFO would hang the console), then checked with ``fstat``.

    Raises:
        ConfigError: the file is not a regular file inside ``solutions_dir``, cannot be read, is too large or
            is not UTF-8.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))  # the common case: one open, no lstat
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise ConfigError(path, f"cannot read file: {exc.strerror or exc}") from None
        fd = _open_link(folder, path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise ConfigError(path, f"{kind}; not read", rule=FILE_RULE)
        size_rule = f"at most {MAX_YAML_BYTES} bytes"
        if info.st_size > MAX_YAML_BYTES:
            raise ConfigError(path, f"file is {info.st_size} bytes", rule=size_rule)
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, max(info.st_size + 1, 4096)):  # one read for a file that did not grow
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_YAML_BYTES:
                raise ConfigError(path, f"file is more than {MAX_YAML_BYTES} bytes", rule=size_rule)
    except OSError as exc:
        raise ConfigError(path, f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8"), info
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not valid UTF-8 at byte {exc.start}", rule="files are UTF-8") from None


def _open_link(folder: Path, path: Path, flags: int) -> int:
    """Open the file a symbolic link in ``solutions_dir`` points at, if that is a file in the same folder.

    Raises:
        ConfigError: the link leads nowhere, loops, or leaves ``solutions_dir``.
    """
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ConfigError(path, "a symbolic link to nothing (or a loop)", rule=FILE_RULE) from None
    if target.parent != _resolved(folder):
        raise ConfigError(path, "a symbolic link out of solutions_dir; not read", rule=FILE_RULE)
    try:
        return os.open(target, flags | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ConfigError(path, f"cannot read file: {exc.strerror or exc}") from None


@functools.lru_cache(maxsize=64)
def _resolved(folder: Path) -> Path:
    return folder.resolve()
