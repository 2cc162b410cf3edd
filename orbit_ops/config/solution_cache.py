"""Solution files read once: each file's parsed and validated result kept in ``.orbit/cache/solutions.bin``.

A file is read again only when its identity changes: its name, size, ``mtime_ns``, ``ctime_ns`` and inode (links
not followed). Every entry was made under one *key*: the format, Orbit's version, a digest of the code that reads
solution files, the solutions folder, and everything of ``orbit.yaml`` a solution's spec depends on (its defaults
and the secret env names); another key (an upgrade, a changed default) makes every entry stale. An invalid file is
kept with its error (problem, line, rule), so it is reported word for word as before; which file of two claiming
one id is the duplicate is decided after, as without a cache. See decision 0070.

What is never trusted or kept:
- a file changed less than ``RACY_NS`` before the read began (its next change could keep the same stamp, as with
  git's racy index entries), and anything that is not a regular file (a symbolic link's target may change
  behind it): those are read every time;
- secrets: an entry holding an env value of the solution's own that is secret-named or a known secret (a
  default's value is kept as a mark and taken from ``orbit.yaml``, which is read every time anyway), or an
  error whose words ``redact`` would change, is not written; that file is read every time. Key Vault
  references are references, not values, and are kept.

With the entries the file keeps the *heads* of the set last read (decision 0094): what a list shows of every file
(each valid solution's id, name, pins and labels, each invalid file's error) and the identities of the files it was
read from, kept only when every file could be trusted to an entry (made by ``solution_heads.heads_data``), and
given back by ``solution_heads.HeadsLook`` without a file read or a spec built, only while every file's identity
is still the one they were made from; a console draws the fleet from them first, then reads the specs.

The cache is an optimisation only: a missing, corrupt, foreign or unreadable cache file, an entry of the wrong
shape, or a ``.orbit/`` that cannot be written makes it read the files as without it (logged at debug level, never
shown), with the same results. It is replaced whole (a temporary file, then a rename), mode 0600. Its payload is
``marshal`` data (a tuple of lists, dicts, texts and numbers: two to three times quicker to write and read than JSON,
which mattered for a cold cache to cost no more than reading the files) behind a magic and its SHA-256, so a
damaged or foreign file never reaches ``marshal.loads``; the key names the marshal and Python versions.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import marshal
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orbit_ops import __version__
from orbit_ops.config.model import (
    InvalidSolution,
    SolutionSet,
    SolutionSpec,
    WorkspaceConfig,
)
from orbit_ops.config.secrets import KeyVaultSecret
from orbit_ops.config.solution_files import read_solution_file
from orbit_ops.errors import ConfigError
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.redact import is_secret_name, known_secrets, redact, secret_name_patterns
from orbit_ops.statedir import PRIVATE_FILE_MODE, make_private_dir

FORMAT = 3  # 2: identities as tuples, the components with default marks listed (decision 0088); 3: the heads
CACHE_FILE = Path("cache") / "solutions.bin"
# Then how many files the heads were made of (0: no heads) and the length of the heads' payload, 8 bytes each,
# big-endian; the sha256 of the heads' payload, the payload (marshal of (key, heads)); the sha256 of the entries'
# payload, the payload (marshal of (key, entries)).
MAGIC = b"orbitsc2"
_FILES, _LENGTH = slice(len(MAGIC), len(MAGIC) + 8), slice(len(MAGIC) + 8, len(MAGIC) + 16)
_HEAD = len(MAGIC) + 16 + 32  # where the heads' payload begins
RACY_NS = 1_000_000_000  # a file changed this recently is read again next time (timestamps are coarse)
_log = logging.getLogger(__name__)
_writers: list[threading.Thread] = []  # cache writes under way in this process
_writers_lock = threading.Lock()
# The modules whose code decides what a solution file yields: their text is part of the key.
_CODE = ("config/load.py", "config/rules.py", "config/model.py", "config/secrets.py", "config/labels.py",
         "config/solution_files.py", "config/solution_cache.py", "yamlfile.py", "names.py", "versions.py",
         "errors.py", "text.py", "redact.py", "config/solution_heads.py", "config/file_scan.py")

if TYPE_CHECKING:
    from orbit_ops.config.parallel_read import FileFacts, Read

Identity = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode
ListedEntry = tuple[str, int, int, int, int]  # name, then its identity
ReadMany = Callable[[Path, list[str]], "list[Read] | None"]
StampEntry = tuple[str, int, int, int]  # name, size, mtime_ns, inode: one entry of ``solution_files.stamp``
Loaded = SolutionSpec | ConfigError
Entry = dict[str, Any]
_ABSENT = object()


def load_cached_set(config: WorkspaceConfig, load: Callable[[Path, str], SolutionSpec],
                    read_many: ReadMany | None = None) -> SolutionSet:
    """Every solution file of the workspace, as ``load_solution_set`` gives it, each file read (and given to
    ``load`` with its text) only when the cache has no entry for it as it is now. The cache is brought up to date
    afterwards.

    ``read_many(folder, names)``: those files read and loaded at once, in order, with the ``fstat`` facts of each
    read (``parallel_read.read_in_processes``), or None to have them read here one by one."""
    cache = _Cache(config)
    invalid: list[InvalidSolution] = []
    solutions: dict[str, SolutionSpec] = {}
    stamp: list[StampEntry] = []
    listed: list[ListedEntry] | None = []  # each file's identity, while every one of them can be trusted
    trusted_before = time.time_ns() - RACY_NS
    # With no entry to compare with, no file is stat'ed before it is read: the fstat of the read gives its identity.
    stat_first = bool(cache.old)
    folder = config.solutions_dir
    child = child_path(folder)
    scanned = _scan(folder, trusted_before, stat_first)
    paths = [child(name) for name, _, _, _ in scanned]
    taken = [cache.take(name, path, identity) for (name, identity, _, _), path in zip(scanned, paths, strict=True)]
    read_at: dict[int, Read] = {}  # position → what read_many made of that file
    if read_many is not None and (misses := [index for index, result in enumerate(taken) if result is None]):
        found = read_many(folder, [scanned[index][0] for index in misses])
        if found is not None:
            read_at = dict(zip(misses, found, strict=True))
    for position, ((name, identity, is_link, seen), path, result) in enumerate(zip(scanned, paths, taken,
                                                                                    strict=True)):
        if result is None:
            if position in read_at:
                result, facts = read_at[position]
                if facts is not None and not stat_first and not is_link:
                    identity = _facts_identity(facts, trusted_before)
                    seen = (name, facts[1], facts[2], facts[4])
            else:
                try:
                    text, info = read_solution_file(folder, path)
                    if not stat_first and not is_link:
                        identity = _identity(info, trusted_before)
                        seen = (name, info.st_size, info.st_mtime_ns, info.st_ino)
                    result = load(path, text)
                except ConfigError as exc:
                    result = exc
            cache.keep(name, path, identity, result)
        if listed is not None:
            if identity is None or is_link:
                listed = None  # a file the heads cannot be trusted for: none are kept
            else:
                listed.append((name, *identity))
        if seen is None:  # not stat'ed before (a cold cache) and the read gave no fstat of the entry itself
            seen = _lstat_entry(name, path)
        if seen is not None:
            stamp.append(seen)
        stem = name.rsplit(".", 1)[0]
        if isinstance(result, ConfigError):
            invalid.append(InvalidSolution(stem, path, result))
            continue
        if result.id in solutions:
            error = ConfigError(path, f"duplicate solution id '{result.id}' (also {solutions[result.id].path.name})",
                                line=1, rule="one file per solution id")
            # Its id is its file name: the stem is the valid solution's id, and an entry is never mistaken
            # for it (a sweep's member, a console row, a selection).
            invalid.append(InvalidSolution(name, path, error))
            continue
        solutions[result.id] = result
    loaded = SolutionSet([solutions[key] for key in sorted(solutions)], invalid, tuple(stamp))
    cache.save(loaded, listed)  # last: its thread then competes with the caller's next steps, not with this
    return loaded


def _scan(folder: Path, trusted_before: int,
          stat_first: bool) -> list[tuple[str, Identity | None, bool, StampEntry | None]]:
    """Each solution file of ``folder`` sorted by name (as ``solution_files.list_files``): its name, its identity
    (when ``stat_first``; None when it is not to be trusted to a cache entry: not a regular file, changed too
    recently, no stat), whether it is a symbolic link (whose target may change behind it: never trusted), and its
    entry of the files' stamp (``solution_files.stamp``; when ``stat_first``), from the same ``lstat``."""
    if not folder.is_dir():
        return []
    found: list[tuple[str, Identity | None, bool, StampEntry | None]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if not name.endswith((".yaml", ".yml")) or name.startswith("."):
                continue
            identity: Identity | None = None
            seen: StampEntry | None = None
            if stat_first:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    pass
                else:
                    identity = _identity(info, trusted_before)
                    seen = (name, info.st_size, info.st_mtime_ns, info.st_ino)
            found.append((name, identity, entry.is_symlink(), seen))
    found.sort(key=lambda item: item[0])
    return found


def child_path(folder: Path) -> Callable[[str], Path]:
    """``folder / name`` for the names of a listing of ``folder``, made without parsing each name again: pathlib's
    own way for its listings (``Path._make_child_relpath``, what ``iterdir`` and ``glob`` use; 10,000 solution
    files are about 20 ms less at each read), else ``/``. The one use of that private method;
    tests/engine/test_solution_cache.py holds it to ``/``."""
    make = getattr(folder, "_make_child_relpath", None)
    if make is None:
        return folder.joinpath
    return make  # type: ignore[no-any-return]


def _lstat_entry(name: str, path: Path) -> StampEntry | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None  # gone meanwhile: the stamp leaves it out, as ``solution_files.stamp`` does
    return name, info.st_size, info.st_mtime_ns, info.st_ino


def _identity(info: os.stat_result, trusted_before: int) -> Identity | None:
    if (stat.S_ISREG(info.st_mode) and info.st_mtime_ns < trusted_before
            and info.st_ctime_ns < trusted_before):
        return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino
    return None


def _facts_identity(facts: FileFacts, trusted_before: int) -> Identity | None:
    """:func:`_identity` of the ``fstat`` facts a worker process took of its read (``parallel_read``)."""
    mode, size, mtime_ns, ctime_ns, inode = facts
    if stat.S_ISREG(mode) and mtime_ns < trusted_before and ctime_ns < trusted_before:
        return size, mtime_ns, ctime_ns, inode
    return None


class _Cache:
    """The entries read from the cache file, and those made now; written back when anything differs."""

    def __init__(self, config: WorkspaceConfig) -> None:
        self.config = config
        self.file = config.state_dir / CACHE_FILE
        self.key = _key(config)
        self.new: dict[str, Entry] = {}  # entries still true, taken from the cache file
        self.fresh: list[tuple[str, Path, Identity, Loaded]] = []  # files read now, entries made when written
        self.changed = False
        self.heads_kept = False  # the cache file's heads' part is whole (made with its entries, so of their set)
        wait_for_writes()  # a write this process started is read back, not raced
        self.old: dict[str, Entry] = self._read()

    def _read(self) -> dict[str, Entry]:
        try:
            with open(self.file, "rb") as handle:
                blob = handle.read()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            _log.debug("solution cache %s not used: %s", self.file, exc)
            return {}
        self.heads_kept = _heads_part(blob) is not None  # else written again, even with every entry still true
        payload = _entries_part(blob)
        if payload is None:
            _log.debug("solution cache %s not used: not a cache file of this format, or damaged", self.file)
            return {}
        try:  # only bytes this code wrote reach marshal: the digest matched
            data = marshal.loads(payload)
        except (ValueError, EOFError, TypeError) as exc:
            _log.debug("solution cache %s not used: %s", self.file, exc)
            return {}
        if not isinstance(data, tuple) or len(data) != 2 or data[0] != self.key or not isinstance(data[1], dict):
            _log.debug("solution cache %s not used: made by another version or for another orbit.yaml", self.file)
            return {}
        return data[1]

    def take(self, name: str, path: Path, identity: Identity | None) -> Loaded | None:
        """The cached result of file ``name`` if its entry was made for the file as it is now."""
        entry = self.old.get(name)
        if identity is None or not isinstance(entry, dict) or entry.get("i") != identity:
            return None
        try:
            result = _rebuild(entry, path, self.config)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            _log.debug("solution cache entry %s not used: %r", name, exc)
            return None
        self.new[name] = entry
        return result

    def keep(self, name: str, path: Path, identity: Identity | None, result: Loaded) -> None:
        self.changed = True
        if identity is not None:
            self.fresh.append((name, path, identity, result))

    def save(self, loaded: SolutionSet, listed: list[ListedEntry] | None) -> None:
        """Write the cache again when anything differs: on a thread of its own, so that a cold cache costs the
        caller no more than reading the files did (the entries are made, encoded and written while the caller
        goes on, typically to wait for the platform). The next cache opened in this process waits for it.

        ``loaded``'s heads are kept with the entries when ``listed`` (each file's identity as read) is given: every
        file could be trusted to an entry (see :func:`read_cached_heads`)."""
        if not self.changed and self.new.keys() == self.old.keys() and self.heads_kept:
            return
        writer = threading.Thread(target=self._write, args=(dict(self.new), list(self.fresh), known_secrets(),
                                                            loaded, listed), name="orbit-solution-cache")
        with _writers_lock:  # started before it is listed: another thread's wait_for_writes may join it at once
            writer.start()
            _writers.append(writer)

    def _write(self, entries: dict[str, Entry], fresh: list[tuple[str, Path, Identity, Loaded]],
               known: frozenset[str], loaded: SolutionSet, listed: list[ListedEntry] | None) -> None:
        time.sleep(0)  # let the thread that started this return to its caller first
        tmp = None
        try:
            for name, path, identity, result in fresh:
                entry = _entry(result, path, self.config, known)
                if entry is not None:
                    entry["i"] = identity
                    entries[name] = entry
            payload = marshal.dumps((self.key, dict(sorted(entries.items()))))
            from orbit_ops.config.solution_heads import heads_data  # which imports this module

            kept = None if listed is None else heads_data(loaded, listed)
            data = _pack(0 if listed is None or kept is None else len(listed), marshal.dumps((self.key, kept)), payload)
            folder = make_private_dir(self.file.parent)
            tmp = folder / f".{self.file.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, self.file)
            tmp = None
        except Exception as exc:  # a read-only or full .orbit/, anything: the cache is only an optimisation
            _log.debug("solution cache %s not written: %r", self.file, exc)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _pack(files: int, heads: bytes, entries: bytes) -> bytes:
    """A cache file's bytes: the heads' payload (made of ``files`` files; 0: no heads), then the entries'."""
    return b"".join([MAGIC, files.to_bytes(8, "big"), len(heads).to_bytes(8, "big"), hashlib.sha256(heads).digest(),
                     heads, hashlib.sha256(entries).digest(), entries])


def _heads_part(blob: bytes) -> memoryview | None:
    """The heads' payload of a cache file's bytes, when it is of this format and whole (its digest matches).
    Views of the blob, not copies: a fleet's cache is megabytes, read while the console starts."""
    if blob[:len(MAGIC)] != MAGIC or len(blob) < _HEAD:
        return None
    end = _HEAD + int.from_bytes(blob[_LENGTH], "big")
    payload = memoryview(blob)[_HEAD:end]
    if len(blob) < end or hashlib.sha256(payload).digest() != blob[_HEAD - 32:_HEAD]:
        return None
    return payload


def _entries_part(blob: bytes) -> memoryview | None:
    """The entries' payload of a cache file's bytes, when it is of this format and whole."""
    if blob[:len(MAGIC)] != MAGIC or len(blob) < _HEAD:
        return None
    start = _HEAD + int.from_bytes(blob[_LENGTH], "big") + 32
    payload = memoryview(blob)[start:]
    if len(blob) < start or hashlib.sha256(payload).digest() != blob[start - 32:start]:
        return None
    return payload


def wait_for_writes() -> None:
    """Wait until every cache write this process started has ended (a new cache does, before it reads)."""
    while True:
        with _writers_lock:
            if not _writers:
                return
            writer = _writers.pop(0)
        if writer is not threading.current_thread():
            writer.join()


def _key(config: WorkspaceConfig) -> str:
    """What every entry depends on besides its own file (see the module docstring), as a digest: the defaults
    may hold secret values, and only their digest is written."""
    parts = [FORMAT, marshal.version, sys.version_info[:2], __version__, _code_digest(), str(config.solutions_dir),
             repr(config.defaults),
             list(config.secret_env_names), list(secret_name_patterns())]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@functools.cache
def _code_digest() -> str:
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for name in _CODE:
        try:
            digest.update((package / name).read_bytes())
        except OSError:
            digest.update(f"unreadable {name}".encode())
    return digest.hexdigest()


# -- entries ------------------------------------------------------------------------------------------------


def _entry(result: Loaded, path: Path, config: WorkspaceConfig, known: frozenset[str]) -> Entry | None:
    """The cache entry of one file's result, or None when it must not be kept (it holds a secret, or an error
    of a kind the cache cannot give back exactly)."""
    if isinstance(result, ConfigError):
        if type(result) is not ConfigError or result.path != path:
            return None
        texts = [result.problem, result.rule or ""]
        if any(redact(text) != text for text in texts):
            return None
        return {"e": [result.problem, result.line, result.rule]}
    spec = result
    if spec.path != path:
        return None
    defaults = config.defaults.env
    env: dict[str, dict[str, str | None]] = {}
    for component, values in spec.env.items():
        inherited = defaults.get(component)
        if not values:
            env[component] = {}
            continue
        kept: dict[str, str | None] = {}
        for name, value in values.items():
            if inherited is not None and inherited.get(name, _ABSENT) == value:
                kept[name] = None  # the default's value, read from orbit.yaml each time
            elif value and (value in known or is_secret_name(name)):
                return None  # a secret value of the file's own is never written to the cache
            else:
                kept[name] = value
        env[component] = kept
    secrets = {component: {name: [secret.key_vault_url, secret.identity] for name, secret in values.items()}
               for component, values in spec.secrets.items()}
    marked = [component for component, values in env.items() if None in values.values()]
    return {"m": marked, "s": [spec.id, spec.display_name, spec.images, env, spec.share_quota_gib, secrets,
                               spec.secret_env, spec.labels]}


def _rebuild(entry: Entry, path: Path, config: WorkspaceConfig) -> Loaded:
    """The result an entry was made from. Its containers are those ``marshal.loads`` made for this read (no other
    holder but the entry, which is only written back), so they are used as they are, their shape checked, not
    copied value by value: 10,000 solutions are read while the console starts, and only bytes this code wrote
    reach this (the payload's digest and the key matched).

    Raises:
        KeyError, TypeError, ValueError, AttributeError: the entry is not of the shape this version writes.
    """
    if "e" in entry:
        problem, line, rule = entry["e"]
        if not isinstance(problem, str) or not isinstance(line, int | None) or not isinstance(rule, str | None):
            raise TypeError("error entry")
        return ConfigError(path, problem, line=line, rule=rule)
    solution_id, display_name, images, env, quota, secrets, secret_env, labels = entry["s"]
    if type(solution_id) is not str or type(display_name) is not str or type(quota) is not int:
        raise TypeError("not text, or not a number")
    if {type(images), type(env), type(secrets), type(secret_env), type(labels)} != {dict}:
        raise TypeError("not a mapping")
    if list(env) != _COMPONENTS:
        raise ValueError("not the app components")
    marked = entry["m"]  # the components whose env holds a default's value, kept as a mark
    if type(marked) is not list:
        raise TypeError("not a list")
    if marked:  # taken from orbit.yaml (the entry keeps its marks)
        env = dict(env)
        for component in marked:
            inherited = config.defaults.env[component]
            env[component] = {name: inherited[name] if value is None else value
                              for name, value in env[component].items()}
    if any(secrets.values()):
        secrets = {component: {name: KeyVaultSecret(_text(url), None if identity is None else _text(identity))
                               for name, (url, identity) in _mapping(values).items()}
                   for component, values in secrets.items()}
    spec = object.__new__(SolutionSpec)  # its fields set at once: the dataclass's __init__ is 4 µs a solution
    spec.__dict__.update(id=solution_id, display_name=display_name, images=images, env=env, share_quota_gib=quota,
                         path=path, secrets=secrets, secret_env=secret_env, labels=labels)
    return spec


_COMPONENTS = list(APP_COMPONENTS)
# Every field of SolutionSpec is set by _rebuild (tests/engine/test_solution_cache.py holds it to this).
REBUILT_FIELDS = ("id", "display_name", "images", "env", "share_quota_gib", "path", "secrets", "secret_env",
                  "labels")


def _mapping(values: Any) -> dict[Any, Any]:
    if type(values) is not dict:
        raise TypeError("not a mapping")
    return values


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value
