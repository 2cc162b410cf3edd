"""The heads of the solution cache (decision 0094): what a list shows of every solution file, kept with the
entries of the last set read and given back, without a file read or a spec built, while every file is unchanged.

The heads are each valid solution's id, name, pins and labels (the pins and labels as indexes into tables of the
distinct ones: a fleet pins a few versions), each invalid file's error, and the fingerprint and stamp of the
identities of the files the set was read from (``file_scan``). They are written by the cache's writer
(``solution_cache``), in the same file and the same rename as the entries, only when every file could be trusted
to an entry; :class:`HeadsLook` gives them back only when the files' identities are still those, under the same
key. A console draws the fleet from them first, then reads the specs.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable
from typing import Any

from orbit_ops.config.file_scan import Look, fingerprint
from orbit_ops.config.model import InvalidSolution, SolutionHead, SolutionHeads, SolutionSet, WorkspaceConfig
from orbit_ops.config.solution_cache import (
    _FILES,
    _HEAD,
    _LENGTH,
    CACHE_FILE,
    MAGIC,
    ListedEntry,
    _heads_part,
    _key,
    _log,
    child_path,
    wait_for_writes,
)
from orbit_ops.errors import ConfigError
from orbit_ops.redact import redact


def read_cached_heads(config: WorkspaceConfig) -> SolutionHeads | None:
    """Every solution file of the workspace as a list shows it (``SolutionSet.heads``'s value, with a
    :class:`SolutionHead` for each valid solution), from the heads the cache kept of the last set read, when every
    solution file is as that read found it: one ``lstat`` of each file, no file read, no spec built (decision
    0094). None when they cannot be trusted to be that set's: a file added, removed or changed since, a file that
    was not a regular file or had changed too recently then, another key, no heads or a damaged cache file; the set
    is to be read then (:func:`load_cached_set`). :class:`HeadsLook` begins the same and gives it later."""
    return HeadsLook(config).heads()


class HeadsLook:
    """:func:`read_cached_heads`, begun now: the files are looked at from now on, by a helper process when the
    heads were made of thousands of them (``file_scan.Look``), while the caller goes on (the console draws its
    first screen meanwhile); :meth:`heads` gives the answer."""

    def __init__(self, config: WorkspaceConfig) -> None:
        self.config = config
        self.file = config.state_dir / CACHE_FILE
        wait_for_writes()  # a write this process started is read back, not raced
        try:
            with open(self.file, "rb") as handle:
                header = handle.read(_HEAD)
        except OSError:
            header = b""
        files = int.from_bytes(header[_FILES], "big") if header[:len(MAGIC)] == MAGIC else 0
        self._look = Look(str(config.solutions_dir), files) if files else None

    def heads(self) -> SolutionHeads | None:
        """The heads, when every file is as they were made from (see :func:`read_cached_heads`); asked once."""
        look, self._look = self._look, None
        if look is None:
            return None
        try:
            return self._heads(look)
        finally:
            look.close()

    def close(self) -> None:
        """The answer is not wanted: the look (its helper) is stopped."""
        look, self._look = self._look, None
        if look is not None:
            look.close()

    def _heads(self, look: Look) -> SolutionHeads | None:
        try:
            with open(self.file, "rb") as handle:  # the heads' part only: the entries after it are megabytes
                blob = handle.read(_HEAD)
                blob += handle.read(int.from_bytes(blob[_LENGTH], "big"))
        except OSError:
            return None
        heads = _heads_part(blob)
        try:
            if heads is None or (data := marshal.loads(heads))[0] != _key(self.config) or data[1] is None:
                return None
            made, stamp, ids, names, pinned, pins, labelled, labels, invalid = data[1]
        except (ValueError, EOFError, TypeError, IndexError) as exc:
            _log.debug("solution cache heads %s not used: %r", self.file, exc)
            return None
        if type(made) is not bytes or type(stamp) is not tuple or not look.same(made):
            return None
        try:
            new, head = object.__new__, SolutionHead  # each head's fields set at once, as _rebuild's specs
            valid = []
            for solution_id, name, pin, label in zip(ids, names, pinned, labelled, strict=True):
                item = new(head)
                item.__dict__.update(id=solution_id, display_name=name, images=pins[pin], labels=labels[label])
                valid.append(item)
            child = child_path(self.config.solutions_dir)
            errors = []
            for stem, file_name, problem, line, rule in invalid:
                path = child(file_name)
                errors.append(InvalidSolution(stem, path, ConfigError(path, problem, line=line, rule=rule)))
        except (ValueError, TypeError, IndexError) as exc:
            _log.debug("solution cache heads %s not used: %r", self.file, exc)
            return None
        return SolutionHeads(valid, errors, stamp)


def heads_data(loaded: SolutionSet, listed: list[ListedEntry]) -> tuple[Any, ...] | None:
    """What :func:`read_cached_heads` gives back of ``loaded``: the files' identities it was read from (their
    ``file_scan.fingerprint``) and their stamp, each valid solution's id, name, pins and labels (the pins and
    labels as indexes into tables of the distinct ones: a fleet pins a few versions) and each invalid file's
    error; None when an error could not be given back word for word, or would carry what ``redact`` hides (as
    for entries)."""
    pinned, pin_table = _tabled(spec.images for spec in loaded.valid)
    labelled, label_table = _tabled(spec.labels for spec in loaded.valid)
    invalid = []
    for entry in loaded.invalid:
        error = entry.error
        if type(error) is not ConfigError or error.path != entry.path:
            return None
        if any(redact(text) != text for text in (error.problem, error.rule or "")):
            return None
        invalid.append((entry.id, entry.path.name, error.problem, error.line, error.rule))
    valid = loaded.valid
    stamp = tuple((name, size, mtime, inode) for name, size, mtime, _, inode in listed)  # theirs, as read
    return (fingerprint(listed), stamp, [spec.id for spec in valid], [spec.display_name for spec in valid], pinned,
            pin_table, labelled, label_table, invalid)


def _tabled(mappings: Iterable[dict[str, str]]) -> tuple[list[int], list[dict[str, str]]]:
    """Each of ``mappings`` as an index into a table of the distinct ones (copies), and that table."""
    indexes: list[int] = []
    table: list[dict[str, str]] = []
    seen: dict[tuple[tuple[str, str], ...], int] = {}
    for mapping in mappings:
        key = tuple(mapping.items())
        index = seen.get(key)
        if index is None:
            index = seen[key] = len(table)
            table.append(dict(mapping))
        indexes.append(index)
    return indexes, table
