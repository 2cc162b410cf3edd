"""Errors an operator can act on, one hierarchy for the whole engine.

    OrbitError                      exit 1 unless a subclass says otherwise
    ├── InputError                  exit 2: the operator asked for something invalid
    │   ├── ConfigError             a file is malformed or breaks a rule (names file, line, rule)
    │   ├── InvalidFilesError       several files break rules, all listed (config.model)
    │   ├── NotFoundError           the operator named an id, component, tag, version or operation that does not exist
    │   └── RefusedError            valid input the policy refuses (``build all``, a moved tag, a changed file)
    ├── GitError                    git failed on the platform repo
    ├── BuildError                  a build step failed
    │   └── DockerfileError         the local builder cannot read or run a Dockerfile (backends.local)
    ├── LockTimeoutError            another operation held a lock for longer than --lock-timeout
    ├── LockLostError               a lease this operation held was lost (renewal failed, or broken): it stopped
    │                               before writing again
    └── BackendError                a backend call failed (Azure, local store)
        ├── MissingOnPlatformError  the platform lacks what should be there (an image the registry lost, a
        │                           resource deleted behind Orbit's back): the platform's fault, not a typo
        ├── ResourceExistsError     a create met a resource that already exists (reconciled, never shown)
        ├── ThrottledError          the service asked us to slow down (carries retry_after seconds)
        ├── StateUnwritableError    ``.orbit/`` is read-only or full: it can be read, nothing recorded
        ├── StateStoreUnreachableError  the shared state store (``state: azure-blob``) cannot be reached
        └── StateStoreRefusedError  the shared store refused a request; its storage error code says why
                                    (``backends.azure.state_blobs``: lease and record code decide on it)

Third-party exceptions are mapped to these at the module that calls the third party, so callers
and front ends only ever handle ``OrbitError``. ``tests/engine/test_errors.py`` holds this tree to the code.
"""

from __future__ import annotations

from pathlib import Path


class OrbitError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(OrbitError):
    """The operator's input or configuration is invalid (exit code 2)."""

    exit_code = 2


class ConfigError(InputError):
    """A configuration or data file breaks a rule.

    The message reads ``<file>:<line>: <what is wrong> (rule: <rule>)`` so an operator can jump to it.
    """

    def __init__(self, path: Path | str, problem: str, *, line: int | None = None, rule: str | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        self.rule = rule
        where = f"{self.path}:{line}" if line else str(self.path)
        text = f"{where}: {problem}"
        if rule:
            text += f" (rule: {rule})"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled as what it was made from (a process pool reads solution files: decision 0090); an exception's
        # own reduction would call this __init__ with the message alone.
        return _config_error, (self.path, self.problem, self.line, self.rule)


def _config_error(path: Path, problem: str, line: int | None, rule: str | None) -> ConfigError:
    return ConfigError(path, problem, line=line, rule=rule)


class NotFoundError(InputError):
    """Something named by the operator does not exist (exit code 2): the input is wrong, not the platform."""


class RefusedError(InputError):
    """The request is well-formed but policy refuses it."""


class GitError(OrbitError):
    """A git command failed."""


class BuildError(OrbitError):
    """A build step failed."""


class LockTimeoutError(OrbitError):
    """A lock stayed held by another operation for longer than the wait allowed (exit code 1)."""


class LockLostError(OrbitError):
    """The lease behind a held lock was lost (its renewal failed, or someone broke it): the operation stopped
    at its next write rather than write unlocked (exit code 1)."""


class BackendError(OrbitError):
    """A backend call failed."""


class MissingOnPlatformError(BackendError):
    """The platform lacks something it should hold (exit code 1): an image the registry lost, a resource gone.

    Unlike :class:`NotFoundError`, retyping the command does not help: the fault is the platform's.
    """


class ResourceExistsError(BackendError):
    """A create found the resource already there; provisioning re-reads and reconciles instead."""


class ThrottledError(BackendError):
    """The service throttled the call; ``retry_after`` is how long it asked us to wait (seconds)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StateUnwritableError(BackendError):
    """The state folder (``.orbit/``) cannot be written: read-only, full, or not ours to write.

    Its stores still answer reads; every write is refused with this error, which names the folder.
    """


class StateStoreUnreachableError(BackendError):
    """The shared state store (``state: azure-blob`` in ``orbit.yaml``) could not be reached or refused us.

    Read-only commands say so and show what the local cache knows; mutating commands refuse rather than run
    unlocked.
    """
