"""Pack a component's build context into a deterministic tar.gz, streamed to disk.

The archive is what the builder receives (ACR Tasks' source upload, the local backend's image layer), so it
must hold exactly what `docker build` would send and be the same bytes for the same tree: entries in
name order, depth first; mtime 0, uid/gid 0 without names, modes reduced to 0644/0755; a gzip header with
mtime 0 and no file name. Files are read in chunks and the walk keeps only the directories being visited,
so memory does not grow with the context. Both digests are computed on the way out: ``digest`` over the
compressed bytes and ``diff_id`` over the tar stream, the two sha256 values an OCI layer needs.

What is left out: whatever the ignore file excludes (see ``orbit_ops.build.dockerignore``), every ``.git`` and
special files (fifos, sockets, devices). The Dockerfile and the ignore file are always sent, as Docker
sends them. Symlinks are stored as links and never followed. An excluded directory is not even opened
unless an exception could re-include something inside it (BuildKit's rule), and then an unreadable
directory inside it is passed over, as BuildKit does.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, cast

from orbit_ops.build.dockerignore import DEFAULT_IGNORE_NAME, DockerIgnore, MatchState, find_ignore_file
from orbit_ops.errors import BuildError, InputError
from orbit_ops.fsutil import atomic_writer

RESERVED_DOCKERFILE_NAME = "__orbit__.Dockerfile"
"""Where a Dockerfile from outside the context goes in the archive (its ignore file gets ``.dockerignore``
appended, which is where BuildKit looks for it)."""

VCS_DIR_NAME = ".git"
_CHUNK = 1 << 20
_EXAMPLES = 5
_DIR_MODE = 0o755
_FILE_MODE = 0o644
_EXEC_MODE = 0o755
_LINK_MODE = 0o777


@dataclass(frozen=True)
class PackedContext:
    """A packed build context and what went into it."""

    path: Path
    context_dir: Path
    digest: str  # "sha256:<hex>" of the .tar.gz bytes (OCI layer digest)
    diff_id: str  # "sha256:<hex>" of the uncompressed tar stream (OCI diff_id)
    size: int  # compressed bytes
    file_count: int  # regular files, the Dockerfile included
    dir_count: int
    symlink_count: int
    total_bytes: int  # uncompressed bytes of the regular files
    excluded_count: int  # paths the ignore file left out (a skipped directory counts once)
    excluded_examples: tuple[str, ...]
    ignore_file: Path | None
    dockerfile_in_archive: str
    dockerfile_outside_context: bool = False
    vcs_excluded: int = 0  # ".git" entries left out
    special_skipped: int = 0  # fifos, sockets and devices left out

    def preflight_line(self, base: Path | None = None) -> str:
        """One line for the operator before the upload, with paths shown relative to ``base`` if given.

        e.g. ``context apps/agent: 42 files, 1.3 MiB (gz 410 KiB); 17 paths excluded by
        apps/agent/.dockerignore``
        """
        files = _plural(self.file_count, "file")
        parts = [
            f"context {_display(self.context_dir, base)}: {files}, {format_size(self.total_bytes)} "
            f"(gz {format_size(self.size)})"
        ]
        if self.ignore_file is not None:
            excluded = _plural(self.excluded_count, "path") if self.excluded_count else "nothing"
            parts.append(f"{excluded} excluded by {_display(self.ignore_file, base)}")
        if self.vcs_excluded:
            parts.append(f"{VCS_DIR_NAME} left out")
        if self.special_skipped:
            parts.append(f"{_plural(self.special_skipped, 'special file')} skipped")
        if self.dockerfile_outside_context:
            parts.append(f"Dockerfile from outside the context sent as {self.dockerfile_in_archive}")
        return "; ".join(parts)


def pack_context(context_dir: Path, dockerfile: Path, out: Path, *, compresslevel: int = 6) -> PackedContext:
    """Write the build context of ``dockerfile`` in ``context_dir`` to ``out`` (replaced atomically).

    Raises:
        InputError: the context folder or the Dockerfile does not exist, or ``out`` lies in the context.
        ConfigError: the ignore file is malformed (file, line and pattern named).
        BuildError: a file that must be sent cannot be read, or the tree changed while it was packed.
    """
    if not context_dir.is_dir():
        raise InputError(f"build context {context_dir} does not exist or is not a folder")
    if not dockerfile.is_file():
        raise InputError(f"Dockerfile {dockerfile} does not exist or is not a file")
    root = context_dir.resolve()
    if _relative_inside(root, out) is not None:
        raise InputError(f"the packed context {out} must be written outside the context {context_dir}")

    ignore_path = find_ignore_file(context_dir, dockerfile)
    ignore = DockerIgnore() if ignore_path is None else DockerIgnore.from_file(ignore_path)
    dockerfile_rel = _relative_inside(root, dockerfile)
    ignore_rel = None if ignore_path is None else _relative_inside(root, ignore_path)
    extras: list[tuple[str, Path]] = []
    if dockerfile_rel is None:
        extras.append((RESERVED_DOCKERFILE_NAME, dockerfile))
        if ignore_path is not None and ignore_rel is None:
            extras.append((RESERVED_DOCKERFILE_NAME + DEFAULT_IGNORE_NAME, ignore_path))
        for name, _ in extras:
            if os.path.lexists(root / name):
                raise BuildError(
                    f"the context {context_dir} holds {name}, the name reserved for a "
                    f"Dockerfile from outside the context; rename it or move the Dockerfile"
                )
    forced = frozenset(rel for rel in (dockerfile_rel, ignore_rel) if rel is not None)

    with atomic_writer(out, "wb") as raw:
        compressed = _DigestSink(cast(BinaryIO, raw))
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=compresslevel) as gz:
            stream = _DigestSink(gz)
            with tarfile.TarFile(
                fileobj=cast(IO[bytes], stream), mode="w", format=tarfile.PAX_FORMAT, copybufsize=_CHUNK
            ) as tar:
                packer = _Packer(root, ignore, forced, tar)
                packer.walk()
                missing = forced - packer.sent
                if missing:
                    raise BuildError(
                        f"could not pack {', '.join(sorted(missing))} from {context_dir}: its folder cannot be listed"
                    )
                for name, source in extras:
                    packer.add_outside_file(name, source)

    return PackedContext(
        path=out,
        context_dir=context_dir,
        digest="sha256:" + compressed.sha256.hexdigest(),
        diff_id="sha256:" + stream.sha256.hexdigest(),
        size=compressed.written,
        file_count=packer.file_count,
        dir_count=packer.dir_count,
        symlink_count=packer.symlink_count,
        total_bytes=packer.total_bytes,
        excluded_count=packer.excluded_count,
        excluded_examples=tuple(packer.excluded_examples),
        ignore_file=ignore_path,
        dockerfile_in_archive=dockerfile_rel or RESERVED_DOCKERFILE_NAME,
        dockerfile_outside_context=dockerfile_rel is None,
        vcs_excluded=packer.vcs_excluded,
        special_skipped=packer.special_skipped,
    )


def format_size(count: int) -> str:
    """Bytes in binary units, two significant figures past 10 (``512 B``, ``1.3 MiB``, ``410 KiB``)."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            if unit == "B":
                return f"{count} B"
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class _DigestSink:
    """Pass bytes on to ``target`` while hashing and counting them."""

    def __init__(self, target: BinaryIO | gzip.GzipFile) -> None:
        self._target = target
        self.sha256 = hashlib.sha256()
        self.written = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.written += len(data)
        self._target.write(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        self._target.flush()


@dataclass
class _Frame:
    """A directory being walked."""

    rel: str  # "" for the context root
    entries: Iterator[os.DirEntry[str]]
    state: MatchState | None
    excluded: bool
    sent: bool  # its tar entry is written (an excluded one only once something inside is sent)


@dataclass
class _Packer:
    root: Path
    ignore: DockerIgnore
    forced: frozenset[str]
    tar: tarfile.TarFile
    sent: set[str] = field(default_factory=set)
    file_count: int = 0
    dir_count: int = 0
    symlink_count: int = 0
    total_bytes: int = 0
    excluded_count: int = 0
    excluded_examples: list[str] = field(default_factory=list)
    vcs_excluded: int = 0
    special_skipped: int = 0
    forced_dirs: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        # Folders holding a file that is always sent must be walked even when excluded.
        self.forced_dirs = frozenset(
            "/".join(rel.split("/")[:depth]) for rel in self.forced for depth in range(1, rel.count("/") + 1)
        )

    def walk(self) -> None:
        stack = [_Frame("", self._list(self.root, "", excluded=False), None, excluded=False, sent=True)]
        while stack:
            frame = stack[-1]
            entry = next(frame.entries, None)
            if entry is None:
                stack.pop()
                if frame.excluded and not frame.sent:
                    self._leave_out(frame.rel + "/")
                continue
            rel = f"{frame.rel}/{entry.name}" if frame.rel else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if entry.name == VCS_DIR_NAME:
                self.vcs_excluded += 1
                continue
            excluded, state = self.ignore.match(rel, frame.state)
            if excluded and rel not in self.forced:
                if is_dir and (rel in self.forced_dirs or not self.ignore.skip_allowed(rel)):
                    entries = self._list(Path(entry.path), rel, excluded=True)
                    stack.append(_Frame(rel, entries, state, excluded=True, sent=False))
                else:
                    self._leave_out(rel + "/" if is_dir else rel)
                continue
            if not (is_dir or entry.is_symlink() or entry.is_file(follow_symlinks=False)):
                self.special_skipped += 1
                continue
            self._send_parents(stack)
            if is_dir:
                self._add_dir(rel)
                stack.append(
                    _Frame(rel, self._list(Path(entry.path), rel, excluded=False), state, excluded=False, sent=True)
                )
            elif entry.is_symlink():
                self._add_symlink(rel, Path(entry.path))
            else:
                self._add_file(rel, Path(entry.path), follow=False)

    def add_outside_file(self, name: str, source: Path) -> None:
        self._add_file(name, source, follow=True)

    def _list(self, folder: Path, rel: str, *, excluded: bool) -> Iterator[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: os.fsencode(entry.name))
        except PermissionError as exc:
            if excluded:
                return iter(())  # BuildKit passes over what it cannot read inside an excluded folder
            raise BuildError(f"cannot read {rel or '.'} in the build context: permission denied") from exc
        except OSError as exc:
            raise BuildError(f"cannot read {rel or '.'} in the build context: {exc.strerror or exc}") from exc
        return iter(entries)

    def _leave_out(self, rel: str) -> None:
        self.excluded_count += 1
        if len(self.excluded_examples) < _EXAMPLES:
            self.excluded_examples.append(rel)

    def _send_parents(self, stack: list[_Frame]) -> None:
        for frame in stack:
            if not frame.sent:
                self._add_dir(frame.rel)
                frame.sent = True

    def _add_dir(self, rel: str) -> None:
        self.tar.addfile(_header(rel, tarfile.DIRTYPE, _DIR_MODE))
        self.dir_count += 1

    def _add_symlink(self, rel: str, path: Path) -> None:
        try:
            target = os.readlink(path)
        except OSError as exc:
            raise BuildError(f"cannot read the link {rel} in the build context: {exc.strerror or exc}") from exc
        info = _header(rel, tarfile.SYMTYPE, _LINK_MODE)
        info.linkname = target
        self.tar.addfile(info)
        self.symlink_count += 1
        self.sent.add(rel)

    def _add_file(self, rel: str, path: Path, *, follow: bool) -> None:
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            raise BuildError(f"cannot read {rel} in the build context: {exc.strerror or exc}") from exc
        with os.fdopen(fd, "rb") as handle:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                raise BuildError(f"{rel} changed while the build context was packed (no longer a file)")
            mode = _EXEC_MODE if status.st_mode & 0o111 else _FILE_MODE
            info = _header(rel, tarfile.REGTYPE, mode)
            info.size = status.st_size
            try:
                self.tar.addfile(info, handle)
            except OSError as exc:
                raise BuildError(
                    f"{rel} changed or became unreadable while the build context was packed: {exc.strerror or exc}"
                ) from exc
        self.file_count += 1
        self.total_bytes += status.st_size
        self.sent.add(rel)


def _header(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _relative_inside(root: Path, path: Path) -> str | None:
    """``path`` relative to the resolved context ``root`` (``/``-separated) if it lies inside, else None.

    Folders on the way are resolved; the last component is judged by where it finally points, so a
    Dockerfile that is a link leaving the context counts as outside.
    """
    named = path.parent.resolve() / path.name
    try:
        rel = named.relative_to(root)
        path.resolve().relative_to(root)
    except ValueError:
        return None
    if not rel.parts or VCS_DIR_NAME in rel.parts:
        return None
    return rel.as_posix()


def _display(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return path.relative_to(base).as_posix() or "."
        except ValueError:
            pass
    return str(path)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
