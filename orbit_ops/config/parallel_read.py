"""Many solution files read and loaded on every core: a cold read of a large fleet shared with helper processes.

Parsing a solution file is CPU work in Python (YAML, the rules), about 0.1 ms a file: 10,000 files the cache has
no entry for (a fresh clone, an upgrade, a changed default) are a second on one core, and threads cannot share
it (the GIL). From ``PARALLEL_FILES`` such files on, and with more than one core, they are cut into chunks of
``CHUNK_FILES`` that this process and a helper process per further core take one at a time until none is left:
whoever is quicker reads more (a helper starts about 0.2 s late; in the console this process's own reading shares
the GIL with the screen, and the helpers take most of it). Each file is read and loaded exactly as
:func:`orbit_ops.config.load.load_solution` loads it.

A helper is ``python -c`` running :func:`serve`: a fresh interpreter, not a fork of a process whose other threads
may hold locks, and running none of the caller's ``__main__`` (what ``multiprocessing``'s ``spawn`` would import
again). It reads length-prefixed frames on its standard input (the config, then a chunk of names at a time) and
answers each chunk in plain values (``marshal``), rebuilt here into specs and errors; the secret values a file
registers for masking (``register_env_secrets``) are registered in this process for the files a helper loaded.
See decision 0090.

The helper registers what ``load_config`` registered here (the secret name patterns, the defaults' secret values),
so that the rules word an error exactly as here (a secret-named value is never quoted); it is started with ``-P``,
so that nothing of the working folder (another ``orbit_ops``, a ``pickle.py``) comes before this code.

Helpers are an optimisation only, as the cache is: a helper that cannot be started, fails, answers what cannot be
read, or still holds a chunk ``GRACE_SECONDS`` after this process ran out of them (one wait for all the helpers)
has that chunk read here, with the same results and the same errors; the helpers are then stopped. An interrupt
or an error here stops them too.
"""

from __future__ import annotations

import gc
import logging
import marshal
import pickle
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from orbit_ops.config.file_scan import cores
from orbit_ops.config.model import SolutionSpec, WorkspaceConfig
from orbit_ops.config.secrets import KeyVaultSecret
from orbit_ops.config.solution_cache import child_path
from orbit_ops.config.solution_files import read_solution_file
from orbit_ops.errors import ConfigError
from orbit_ops.redact import register_env_secrets, register_secret_names, secret_name_patterns

PARALLEL_FILES = 3_000  # files to read before helpers are worth their start
CHUNK_FILES = 250  # files taken at a time (about 25 ms of reading)
MAX_PROCESSES = 4  # this one and its helpers
GRACE_SECONDS = 0.5  # how long the helpers may still hold chunks, in all, once this process has run out of them
MAX_FRAME = 1 << 30  # a frame claiming more is not a helper's: the pipe is read no further
FileFacts = tuple[int, int, int, int, int]  # st_mode, st_size, st_mtime_ns, st_ctime_ns, st_ino of the file read
Read = tuple[SolutionSpec | ConfigError, FileFacts | None]  # a file's result, and the fstat of its read if read
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # holds orbit_ops: the helper imports this very code
# Run with -P: nothing of the working folder comes before it (a folder holding another orbit_ops, or a pickle.py).
_SERVE = (f"import sys; sys.path.insert(0, {str(_PACKAGE_ROOT)!r}); "
          "from orbit_ops.config.parallel_read import serve; serve()")
_FRAME = struct.Struct(">Q")  # the length of the frame that follows
_log = logging.getLogger(__name__)


def read_in_processes(config: WorkspaceConfig, folder: Path, names: Sequence[str]) -> list[Read] | None:
    """Each of ``names`` (files of ``folder``) read and loaded, in order, this process and its helpers sharing
    them; None when they are better read one by one by the caller (too few, one core, no Python to run)."""
    helpers = min(cores(), MAX_PROCESSES) - 1
    if len(names) < PARALLEL_FILES or helpers < 1 or getattr(sys, "frozen", False):  # frozen: no Python to run
        return None
    chunks = _Chunks(config, folder, names)
    started = [_Helper(chunks) for _ in range(helpers)]
    try:
        while (taken := chunks.take()) is not None:
            chunks.done(taken, read_files(config, folder, chunks.names(taken)))
        deadline = time.monotonic() + GRACE_SECONDS  # one wait for them all: a chunk in hand is about 25 ms
        for helper in started:
            helper.thread.join(max(0.0, deadline - time.monotonic()))
        for index in chunks.left():  # what a helper failed on, or still holds: read here (its answer, if it
            chunks.done(index, read_files(config, folder, chunks.names(index)))  # comes, is not used)
    finally:
        chunks.close()  # an interrupt or an error here: the helpers take nothing more
        for helper in started:
            helper.stop()
    return chunks.reads()


def read_files(config: WorkspaceConfig, folder: Path, names: Sequence[str]) -> list[Read]:
    """Each file read and loaded as ``load_solution_set`` reads and loads it when it has no cache entry."""
    from orbit_ops.config.load import load_solution  # load imports this module

    found: list[Read] = []
    for name in names:
        path = folder / name
        try:
            text, info = read_solution_file(folder, path)
        except ConfigError as exc:
            found.append((exc, None))
            continue
        facts = (info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        try:
            found.append((load_solution(config, path, text=text), facts))
        except ConfigError as exc:
            found.append((exc, facts))
    return found


def serve() -> None:
    """A helper's main: a frame of (config, folder, secret name patterns) pickled, answered by an empty frame once
    it is ready; then a frame of names (``marshal``) at a time on standard input, each answered by a frame of their
    reads as plain values (``marshal``: several times quicker to load than pickled objects; see :func:`_plain`),
    until standard input ends."""
    gc.disable()  # a short-lived process building what it hands over: nothing for the collector to find
    given, answers = sys.stdin.buffer, sys.stdout.buffer
    start = _read_frame(given)
    if start is None:
        return
    config, folder, secret_names = pickle.loads(start)
    # What load_config registered in the caller: the rules word their errors by it (a secret-named value is never
    # quoted), as the caller's own reading does.
    register_secret_names(secret_names)
    register_env_secrets(config.defaults.env)
    _write_frame(answers, b"")  # ready: only now does the caller give it a chunk (none is held while it starts)
    while (frame := _read_frame(given)) is not None:
        reads = read_files(config, folder, marshal.loads(frame))
        _write_frame(answers, marshal.dumps([_plain(read) for read in reads]))


def _read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame, or None at the end of the stream (or a frame cut short)."""
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    if size > MAX_FRAME:
        return None
    body = stream.read(size)
    return body if len(body) == size else None


def _write_frame(stream: IO[bytes], body: bytes) -> None:
    stream.write(_FRAME.pack(len(body)) + body)
    stream.flush()


def _plain(read: Read) -> tuple[object, ...]:
    """A read as plain values (its path is the folder and the name the caller gave)."""
    result, facts = read
    if isinstance(result, ConfigError):
        return "e", result.problem, result.line, result.rule, facts
    secrets = {component: {name: (secret.key_vault_url, secret.identity) for name, secret in values.items()}
               for component, values in result.secrets.items()}
    return ("s", result.id, result.display_name, result.images, result.env, result.share_quota_gib, secrets,
            result.secret_env, result.labels, facts)


def _read_back(plain: tuple[Any, ...], path: Path) -> Read:
    """The read :func:`_plain` was made from; a spec's secret values registered for masking in this process, as
    ``load_solution`` registered them in the helper.

    Raises:
        ValueError, TypeError: not what :func:`_plain` makes.
    """
    if plain[0] == "e":
        _, problem, line, rule, facts = plain
        return ConfigError(path, problem, line=line, rule=rule), facts
    _, solution_id, display_name, images, env, quota, secrets, secret_env, labels, facts = plain
    spec = SolutionSpec(id=solution_id, display_name=display_name, images=images, env=env, share_quota_gib=quota,
                        path=path, secret_env=secret_env, labels=labels,
                        secrets={component: {name: KeyVaultSecret(url, identity)
                                             for name, (url, identity) in values.items()}
                                 for component, values in secrets.items()})
    register_env_secrets(spec.env)
    return spec, facts


class _Chunks:
    """The files cut into chunks, taken one at a time by whoever is free, and what each chunk's reading gave."""

    def __init__(self, config: WorkspaceConfig, folder: Path, names: Sequence[str]) -> None:
        self.config, self.folder = config, folder
        self._names = [list(names[start:start + CHUNK_FILES]) for start in range(0, len(names), CHUNK_FILES)]
        self._next = 0
        self._read: dict[int, list[Read]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.child = child_path(folder)

    def take(self) -> int | None:
        """The index of the next chunk nobody has taken, or None when all have been."""
        with self._lock:
            if self._closed or self._next >= len(self._names):
                return None
            self._next += 1
            return self._next - 1

    def names(self, index: int) -> list[str]:
        return self._names[index]

    def done(self, index: int, reads: list[Read]) -> None:
        with self._lock:
            self._read.setdefault(index, reads)

    def close(self) -> None:
        """Nothing more is taken."""
        with self._lock:
            self._closed = True

    def left(self) -> list[int]:
        """The chunks taken but never done (their helper failed or was stopped)."""
        with self._lock:
            return [index for index in range(len(self._names)) if index not in self._read]

    def reads(self) -> list[Read]:
        return [read for index in range(len(self._names)) for read in self._read[index]]


class _Helper:
    """One helper process taking chunks until none is left; a thread of this process talks to it."""

    def __init__(self, chunks: _Chunks) -> None:
        self.chunks = chunks
        self.process: subprocess.Popen[bytes] | None = None
        self.thread = threading.Thread(target=self._work, name="orbit-read-helper", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        chunks = self.chunks
        try:
            self.process = process = subprocess.Popen([sys.executable, "-P", "-c", _SERVE], stdin=subprocess.PIPE,
                                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert process.stdin is not None and process.stdout is not None
            start = (chunks.config, chunks.folder, secret_name_patterns())
            _write_frame(process.stdin, pickle.dumps(start, protocol=pickle.HIGHEST_PROTOCOL))
            if _read_frame(process.stdout) != b"":
                raise EOFError(f"helper did not start (exit status {process.poll()})")
            while (index := chunks.take()) is not None:
                names = chunks.names(index)
                _write_frame(process.stdin, marshal.dumps(names))
                frame = _read_frame(process.stdout)
                if frame is None:
                    raise EOFError(f"helper's answer cut short or too large (exit status {process.poll()})")
                plain = marshal.loads(frame)
                if not isinstance(plain, list) or len(plain) != len(names):
                    raise ValueError(f"{len(plain)} reads for {len(names)} files")
                chunks.done(index, [_read_back(read, chunks.child(name)) for read, name in zip(plain, names,
                                                                                                strict=True)])
        except Exception as exc:  # no helper here, or a broken one: what it held is read by the caller
            _log.debug("helper reading solution files stopped: %r", exc)
        finally:
            self._end()

    def _end(self) -> None:
        process = self.process
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()  # the end of its input: it exits
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()

    def stop(self) -> None:
        """Stop it now if it still runs (what it holds is not waited for), and wait for its thread to end."""
        process = self.process
        if self.thread.is_alive() and process is not None:
            process.kill()
        self.thread.join()
