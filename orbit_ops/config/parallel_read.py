"""Many solution files read and loaded on every core: a cold read of a large fleet shared with helper processes.

Parsing a solution file is CPU work in Python (YAML, the rules), about 0.1 ms a file: 10,000 files the cache has
no entry for (a fresh clone, an upgrade, a changed default) are a second on one core, and threads cannot share
it (the GIL). From ``PARALLEL_FILES`` such files on, and with more than one core, this process reads a share of
them while a helper process per further core reads the others: ``python -c`` running :func:`serve`, given its
share on its standard input and answering on its standard output, each file read and loaded exactly as
:func:`orbit_ops.config.load.load_solution` loads it. A helper is a fresh interpreter, not a fork of a process
whose other threads may hold locks, and it runs none of the caller's ``__main__`` (what ``multiprocessing``'s
``spawn`` would import again). A helper starts about 0.2 s after this process begins its own share, so its share
is ``HELPER_LAG_FILES`` smaller. A helper answers in plain values (``marshal``), rebuilt here into specs and
errors; the secret values a file registers for masking (``register_env_secrets``) are registered in this process
for the files the helpers loaded. See decision 0090.

Helpers are an optimisation only, as the cache is: a helper that cannot be started, fails, or does not answer
within ``HELPER_SECONDS`` has its share read here, with the same results and the same errors.
"""

from __future__ import annotations

import gc
import logging
import marshal
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orbit_ops.config.model import SolutionSpec, WorkspaceConfig
from orbit_ops.config.secrets import KeyVaultSecret
from orbit_ops.config.solution_cache import child_path
from orbit_ops.config.solution_files import read_solution_file
from orbit_ops.errors import ConfigError
from orbit_ops.redact import register_env_secrets

PARALLEL_FILES = 3_000  # files to read before a helper is worth its start
HELPER_LAG_FILES = 2_000  # about what this process reads while a helper starts (0.2 s: Python and the imports)
MAX_PROCESSES = 4  # this one and its helpers
HELPER_SECONDS = 120.0  # a helper that has not answered by then is stopped and its share read here
FileFacts = tuple[int, int, int, int, int]  # st_mode, st_size, st_mtime_ns, st_ctime_ns, st_ino of the file read
Read = tuple[SolutionSpec | ConfigError, FileFacts | None]  # a file's result, and the fstat of its read if read
_SERVE = "from orbit_ops.config.parallel_read import serve; serve()"
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # holds orbit_ops: the helper imports this very code
_log = logging.getLogger(__name__)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def read_in_processes(config: WorkspaceConfig, folder: Path, names: Sequence[str]) -> list[Read] | None:
    """Each of ``names`` (files of ``folder``) read and loaded, in order, this process and its helpers sharing
    them; None when they are better read one by one by the caller (too few, or one core)."""
    helpers = min(cores(), MAX_PROCESSES) - 1
    if len(names) < PARALLEL_FILES or helpers < 1 or getattr(sys, "frozen", False):  # frozen: no Python to run
        return None
    own = min(len(names), -(-(len(names) + helpers * HELPER_LAG_FILES) // (helpers + 1)))
    rest = list(names[own:])
    each = max(1, -(-len(rest) // helpers))
    shares = [rest[start:start + each] for start in range(0, len(rest), each)]
    started = [_Helper(config, folder, share) for share in shares]
    found = read_files(config, folder, names[:own])
    for helper, share in zip(started, shares, strict=True):
        answer = helper.answer(folder, share)
        found += read_files(config, folder, share) if answer is None else answer
    return found


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
    """A helper's main: (config, folder, names) pickled on standard input; on standard output, the reads as
    ``marshal`` data (plain values, several times quicker to load than pickled objects: see :func:`_plain`)."""
    gc.disable()  # a short-lived process building what it hands over: nothing for the collector to find
    config, folder, names = pickle.load(sys.stdin.buffer)
    sys.stdout.buffer.write(marshal.dumps([_plain(read) for read in read_files(config, folder, names)]))
    sys.stdout.buffer.flush()


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


class _Helper:
    """One helper process reading ``names``; a thread of this process talks to it meanwhile."""

    def __init__(self, config: WorkspaceConfig, folder: Path, names: list[str]) -> None:
        self.output: bytes | None = None
        self.thread: threading.Thread | None = None
        paths = [str(_PACKAGE_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        try:
            process = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)})
        except OSError as exc:
            _log.debug("no helper to read solution files: %s", exc)
            return
        given = pickle.dumps((config, folder, names), protocol=pickle.HIGHEST_PROTOCOL)
        self.thread = threading.Thread(target=self._talk, args=(process, given), name="orbit-read-helper",
                                       daemon=True)
        self.thread.start()

    def _talk(self, process: subprocess.Popen[bytes], given: bytes) -> None:
        try:
            output, _ = process.communicate(given, timeout=HELPER_SECONDS)
        except Exception as exc:  # it did not answer in time, or its pipes broke: its share is read here
            _log.debug("helper reading solution files failed: %r", exc)
            process.kill()
            process.wait()
            return
        if process.returncode == 0:
            self.output = output
        else:
            _log.debug("helper reading solution files exited %s", process.returncode)

    def answer(self, folder: Path, names: list[str]) -> list[Read] | None:
        """Its reads of ``names``, in order; None if it gave none (its share is then read by the caller)."""
        if self.thread is None:
            return None
        self.thread.join()
        if self.output is None:
            return None
        try:  # the output of this code's own helper, over a pipe only this process holds
            plain = marshal.loads(self.output)
            if not isinstance(plain, list) or len(plain) != len(names):
                raise ValueError(f"{len(plain)} reads for {len(names)} files")
            child = child_path(folder)
            return [_read_back(read, child(name)) for read, name in zip(plain, names, strict=True)]
        except Exception as exc:
            _log.debug("helper's answer not read: %r", exc)
            return None
