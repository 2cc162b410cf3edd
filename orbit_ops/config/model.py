"""The workspace's configuration as the engine uses it: ``orbit.yaml``'s settings and each solution's spec.

Frozen values with every default applied and every path absolute; reading and checking the files that produce
them is :mod:`orbit_ops.config.load`'s job, the rule of each field :mod:`orbit_ops.config.rules`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orbit_ops.config.secrets import KeyVaultSecret
from orbit_ops.config.state import StateSettings
from orbit_ops.errors import ConfigError, InputError, NotFoundError
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.text import did_you_mean

CONFIG_FILE = "orbit.yaml"
STATE_DIR = ".orbit"
BACKENDS = ("local", "azure")
MIN_SHARE_QUOTA_GIB = 100  # premium FileStorage minimum (ADR: overrides the original 5 GiB)
MAX_SHARE_QUOTA_GIB = 102400  # premium FileStorage maximum (100 TiB)
PIN_KEYS = tuple(f"{component}_tag" for component in APP_COMPONENTS)


@dataclass(frozen=True)
class ComponentSpec:
    """An independently versioned image: its build context and Dockerfile inside the platform repo."""

    name: str
    context: str
    dockerfile: str


@dataclass(frozen=True)
class AzureSettings:
    subscription_id: str
    resource_group: str
    location: str
    registry: str
    environment: str
    storage_account: str
    pull_identity: str
    arm_endpoint: str | None = None
    files_endpoint: str | None = None
    blob_endpoint: str | None = None
    ca_bundle: str | None = None
    login_server: str | None = None

    @property
    def registry_login_server(self) -> str:
        return self.login_server or f"{self.registry}.azurecr.io"


@dataclass(frozen=True)
class Defaults:
    images: dict[str, str] = field(default_factory=dict)
    share_quota_gib: int = MIN_SHARE_QUOTA_GIB
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, KeyVaultSecret]] = field(default_factory=dict)
    secret_env: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkspaceConfig:
    """``orbit.yaml``, validated, with every path made absolute."""

    root: Path
    config_path: Path
    platform_repo: Path
    releases_dir: Path
    solutions_dir: Path
    backend: str
    components: dict[str, ComponentSpec]
    defaults: Defaults
    azure: AzureSettings | None
    secret_env_names: tuple[str, ...] = ()  # beyond the built-in words of ``redact.is_secret_name``
    state: StateSettings = field(default_factory=StateSettings)  # ``state:``: local, or a shared blob store

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def component(self, name: str) -> ComponentSpec:
        """The component called ``name``.

        Raises:
            NotFoundError: no such component in ``orbit.yaml``.
        """
        try:
            return self.components[name]
        except KeyError:
            raise NotFoundError(
                f"unknown component '{name}'{did_you_mean(name, self.components)}; "
                f"{self.config_path} defines: {', '.join(sorted(self.components))}"
            ) from None


@dataclass(frozen=True)
class SolutionSpec:
    """One solution with defaults applied: what provisioning converges it to."""

    id: str
    display_name: str
    images: dict[str, str]  # orbit_tag/agent_tag/mc_tag -> version or "latest"
    env: dict[str, dict[str, str]]  # component -> name -> value
    share_quota_gib: int
    path: Path
    secrets: dict[str, dict[str, KeyVaultSecret]] = field(default_factory=dict)  # component -> name -> reference
    secret_env: dict[str, dict[str, str]] = field(default_factory=dict)  # component -> variable -> secret name
    labels: dict[str, str] = field(default_factory=dict)  # ring: canary (Kubernetes label syntax, SPEC §2)

    def pin(self, component: str) -> str:
        """The version (or ``latest``) this solution pins for app component ``component``.

        Raises:
            NotFoundError: ``component`` is not one of the app components solutions pin.
        """
        return _pin(self.images, component)


def _pin(images: dict[str, str], component: str) -> str:
    try:
        return images[f"{component}_tag"]
    except KeyError:
        raise NotFoundError(f"'{component}' is not an app component{did_you_mean(component, APP_COMPONENTS)}; "
                            f"solutions pin {', '.join(APP_COMPONENTS)}") from None


@dataclass(frozen=True)
class SolutionHead:
    """What a list of solutions shows of one before its whole spec is at hand: its id, name, pins and labels.

    The solution cache keeps them apart from the specs (``orbit_ops.config.solution_cache``), so a list of 10,000
    solutions is shown, counted and filtered without building 10,000 specs first (decision 0094). Never enough to
    provision, plan or show the solution's env from: those take its :class:`SolutionSpec`.
    """

    id: str
    display_name: str
    images: dict[str, str]  # orbit_tag/agent_tag/mc_tag -> version or "latest", as SolutionSpec.images
    labels: dict[str, str] = field(default_factory=dict)

    def pin(self, component: str) -> str:
        """As :meth:`SolutionSpec.pin`.

        Raises:
            NotFoundError: ``component`` is not one of the app components solutions pin.
        """
        return _pin(self.images, component)


Listed = SolutionSpec | SolutionHead  # what a list shows a solution from: its whole spec, or its head


class InvalidFilesError(InputError):
    """Several files break rules; every one is listed so an operator can fix them in one pass."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        lines = [str(error) for error in errors[:50]]
        if len(errors) > 50:
            lines.append(f"... and {len(errors) - 50} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class InvalidSolution:
    """A solution file that breaks a rule: one invalid solution, never an invalid fleet (SPEC §2).

    ``id`` is the file's stem (the id it should have), or its whole name for a second file claiming an id that a
    valid solution has; ``error`` names the file, the line and the rule.
    """

    id: str
    path: Path
    error: ConfigError

    def to_json(self) -> dict[str, str]:
        """The entry listings print for it (SPEC §2: ``sync: invalid`` and the error)."""
        return {"id": self.id, "sync": "invalid", "error": str(self.error), "file": str(self.path)}


@dataclass(frozen=True)
class SolutionSet:
    """Every solution file of a workspace: the valid solutions by id, and each invalid file on its own."""

    valid: list[SolutionSpec]
    invalid: list[InvalidSolution]
    # The files as this set was read from them: ``solution_files.stamp``'s value, each file's from the same
    # ``lstat`` (or ``fstat`` of its read) that its result came from, so a file written during the read differs
    # next time. None when the set was not read from a folder.
    stamp: tuple[tuple[str, int, int, int], ...] | None = field(default=None, compare=False)

    def heads(self) -> SolutionHeads:
        """This set as a list shows it (its specs are their own heads)."""
        return SolutionHeads(self.valid, self.invalid, self.stamp)

    def strict(self) -> list[SolutionSpec]:
        """The valid solutions, or the errors when there are invalid files.

        Raises:
            ConfigError: one file breaks a rule.
            InvalidFilesError: several files break rules (all of them are listed).
        """
        if len(self.invalid) == 1:
            raise self.invalid[0].error
        if self.invalid:
            raise InvalidFilesError([entry.error for entry in self.invalid])
        return self.valid


@dataclass(frozen=True)
class SolutionHeads:
    """Every solution file as a list shows it: each valid solution's head (or its whole spec, from a
    :class:`SolutionSet` read), sorted by id, and each invalid file with its error, as the set gives them."""

    valid: Sequence[Listed]
    invalid: list[InvalidSolution]
    stamp: tuple[tuple[str, int, int, int], ...] | None = field(default=None, compare=False)  # as SolutionSet's
