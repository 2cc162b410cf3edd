"""Workspace discovery and validation of ``orbit.yaml`` and every ``solutions/<id>.yaml``.

Every rule an operator can break has its own message naming the file, the line and the rule, because
a fleet config that silently ignores a typo rolls the wrong version to a customer. Validation is
hand-written over the small, fixed schema of SPEC §2.0 so messages can say exactly what was expected
("did you mean 'images'?") and loading 10,000 solution files stays well under two seconds.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orbit_ops.bulk import bulk_built
from orbit_ops.config.secrets import KeyVaultSecret, merge_secrets, read_secrets, split_secret_env
from orbit_ops.config.solution_files import list_files as solution_file_paths
from orbit_ops.config.solution_files import read_solution_text
from orbit_ops.config.solution_files import stamp as solution_file_stamp
from orbit_ops.errors import ConfigError, InputError, NotFoundError
from orbit_ops.names import APP_COMPONENTS, SOLUTION_ID_RULE, is_valid_solution_id
from orbit_ops.redact import is_secret_name, register_env_secrets, register_secret_names
from orbit_ops.versions import LATEST, VERSION_RULE, is_version
from orbit_ops.yamlfile import YamlDoc, load_yaml

CONFIG_FILE = "orbit.yaml"
STATE_DIR = ".orbit"
BACKENDS = ("local", "azure")
MIN_SHARE_QUOTA_GIB = 100  # premium FileStorage minimum (ADR: overrides the original 5 GiB)
MAX_SHARE_QUOTA_GIB = 102400  # premium FileStorage maximum (100 TiB)
EXCERPT_CHARS = 60  # how much of a value an error message quotes: enough to find it, never a file's content

_COMPONENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
COMPONENT_RULE = "a component name is lowercase letters, digits, '-' or '_', starting with a letter or digit"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PIN_RULE = f"a pin is a released version or 'latest'; {VERSION_RULE}"

_TOP_KEYS = ("platform_repo", "releases_dir", "solutions_dir", "backend", "components", "defaults", "azure",
             "secret_env_names")
_SECRET_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_*?\[\]!-]+$")
SECRET_NAMES_RULE = ("secret_env_names lists env variable names or glob patterns (letters, digits, '_', '*', '?', "
                     "'[...]') whose values are masked like PASSWORD, TOKEN or KEY ones")
_COMPONENT_KEYS = ("context", "dockerfile")
_DEFAULT_KEYS = ("images", "share_quota_gib", "env", "secrets")
_SOLUTION_KEYS = ("id", "display_name", "images", "env", "share_quota_gib", "secrets")
_AZURE_REQUIRED = (
    "subscription_id",
    "resource_group",
    "location",
    "registry",
    "environment",
    "storage_account",
    "pull_identity",
)
_AZURE_OPTIONAL = ("arm_endpoint", "files_endpoint", "blob_endpoint", "ca_bundle", "login_server")
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
                f"unknown component '{name}'{_did_you_mean(name, self.components)}; "
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

    def pin(self, component: str) -> str:
        """The version (or ``latest``) this solution pins for app component ``component``.

        Raises:
            NotFoundError: ``component`` is not one of the app components solutions pin.
        """
        try:
            return self.images[f"{component}_tag"]
        except KeyError:
            raise NotFoundError(f"'{component}' is not an app component{_did_you_mean(component, APP_COMPONENTS)}; "
                                f"solutions pin {', '.join(APP_COMPONENTS)}") from None


def find_workspace(explicit: str | Path | None = None, *, start: Path | None = None) -> Path:
    """The workspace folder: ``explicit``, else ``$ORBIT_WORKSPACE``, else the nearest ancestor with orbit.yaml.

    Raises:
        InputError: the named folder has no orbit.yaml, or none was found upward.
    """
    named = explicit if explicit is not None else os.environ.get("ORBIT_WORKSPACE") or None
    if named is not None:
        folder = Path(named).expanduser().resolve()
        if not (folder / CONFIG_FILE).is_file():
            source = "--workspace" if explicit is not None else "ORBIT_WORKSPACE"
            raise InputError(f"{folder}: no {CONFIG_FILE} here ({source} must name a workspace folder)")
        return folder
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise InputError(
        f"no {CONFIG_FILE} in {here} or any folder above it; pass --workspace DIR, set ORBIT_WORKSPACE, "
        "or create one with 'orbit demo DIR'"
    )


def load_config(root: Path) -> WorkspaceConfig:
    """Load and validate ``<root>/orbit.yaml``.

    Raises:
        ConfigError: the file breaks a rule; the message names the line and the rule.
    """
    path = root / CONFIG_FILE
    doc = load_yaml(path)
    data = _mapping(doc, doc.data, (), "orbit.yaml is a mapping of settings")
    _check_keys(doc, data, (), _TOP_KEYS)

    repo_text = _string(doc, data.get("platform_repo", "."), ("platform_repo",))
    platform_repo = (root / repo_text).resolve()
    if not platform_repo.is_dir():
        raise doc.error(f"platform repo {platform_repo} does not exist", "platform_repo",
                        rule="platform_repo names a git repository (relative to orbit.yaml)")
    if not _is_git_repo(platform_repo):
        raise doc.error(f"platform repo {platform_repo} is not a git repository", "platform_repo",
                        rule="platform_repo names a git repository (relative to orbit.yaml)")
    releases_dir = platform_repo / _string(doc, data.get("releases_dir", "releases"), ("releases_dir",))
    solutions_dir = root / _string(doc, data.get("solutions_dir", "solutions"), ("solutions_dir",))

    backend = _string(doc, data.get("backend", "local"), ("backend",))
    if backend not in BACKENDS:
        raise doc.error(f"unknown backend '{backend}'", "backend", rule=f"backend is one of: {', '.join(BACKENDS)}")

    components = _components(doc, data.get("components"))
    defaults = _defaults(doc, data.get("defaults", {}), components)
    azure = _azure(doc, data.get("azure"), required=backend == "azure")
    secret_names = _secret_names(doc, data.get("secret_env_names"))
    register_secret_names(secret_names)
    register_env_secrets(defaults.env)
    return WorkspaceConfig(
        root=root,
        config_path=path,
        platform_repo=platform_repo,
        releases_dir=releases_dir,
        solutions_dir=solutions_dir,
        backend=backend,
        components=components,
        defaults=defaults,
        azure=azure,
        secret_env_names=secret_names,
    )


def solution_files(config: WorkspaceConfig) -> list[Path]:
    """Every solution file of the workspace, sorted by name (see :func:`orbit_ops.config.solution_files.list_files`)."""
    return solution_file_paths(config.solutions_dir)


def solution_files_stamp(config: WorkspaceConfig) -> tuple[tuple[str, int, int, int], ...]:
    """The stamp of the workspace's solution files (see :func:`orbit_ops.config.solution_files.stamp`)."""
    return solution_file_stamp(config.solutions_dir)


def load_solution(config: WorkspaceConfig, path: Path, *, text: str | None = None) -> SolutionSpec:
    """Load one solution file and apply the defaults of ``orbit.yaml``.

    Raises:
        ConfigError: the file breaks a rule.
    """
    doc = load_yaml(path, text=read_solution_text(config.solutions_dir, path) if text is None else text)
    data = _mapping(doc, doc.data, (), "a solution file is a mapping with id, display_name, images, env")
    _check_keys(doc, data, (), _SOLUTION_KEYS)
    stem = path.name.rsplit(".", 1)[0]
    if "id" not in data:
        raise doc.error(f"missing 'id' (expected id: {stem})", rule="every solution file states its id")
    solution_id = _string(doc, data["id"], ("id",))
    if not is_valid_solution_id(solution_id):
        raise doc.error(f"invalid solution id '{excerpt(solution_id)}'", "id", rule=SOLUTION_ID_RULE)
    if solution_id != stem:
        raise doc.error(f"id '{excerpt(solution_id)}' differs from the file name '{path.name}'", "id",
                        rule="a solution's id equals its file name without .yaml")
    display_name = _string(doc, data.get("display_name", solution_id), ("display_name",))
    images = dict(config.defaults.images)
    images.update(_pins(doc, data.get("images", {}), ("images",)))
    missing = [key for key in PIN_KEYS if key not in images]
    if missing:
        raise doc.error(f"no pin for {', '.join(missing)} here or in orbit.yaml defaults.images", "images",
                        rule="every solution pins orbit_tag, agent_tag and mc_tag (or inherits them)")
    plain_env, written_refs = split_secret_env(doc, data.get("env", {}), ("env",))
    env = {component: dict(values) for component, values in config.defaults.env.items()}
    written_env = _env(doc, plain_env, ("env",))
    for component, values in written_env.items():
        env.setdefault(component, {}).update(values)
    defaults = config.defaults
    secrets, secret_env = merge_secrets(doc, defaults.secrets, defaults.secret_env, data.get("secrets", {}),
                                        written_refs, written_env, env)
    quota = _quota(doc, data.get("share_quota_gib", config.defaults.share_quota_gib), ("share_quota_gib",))
    register_env_secrets(env)  # masked in every log, record and error from now on (SPEC §2 Secrets)
    return SolutionSpec(
        id=solution_id,
        display_name=display_name,
        images={key: images[key] for key in PIN_KEYS},
        env={component: env.get(component, {}) for component in APP_COMPONENTS},
        share_quota_gib=quota,
        path=path,
        secrets=secrets,
        secret_env=secret_env,
    )


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


def load_solution_set(config: WorkspaceConfig) -> SolutionSet:
    """Every solution file of the workspace: the valid ones sorted by id, and every invalid file with its error.

    One bad file never hides the good ones; the second file claiming an id already taken is the invalid one.
    """
    invalid: list[InvalidSolution] = []
    solutions: dict[str, SolutionSpec] = {}
    with bulk_built():
        for path in solution_files(config):
            stem = path.name.rsplit(".", 1)[0]
            try:
                spec = load_solution(config, path)
            except ConfigError as exc:
                invalid.append(InvalidSolution(stem, path, exc))
                continue
            if spec.id in solutions:
                error = ConfigError(path, f"duplicate solution id '{spec.id}' (also {solutions[spec.id].path.name})",
                                    line=1, rule="one file per solution id")
                # Its id is its file name: the stem is the valid solution's id, and an entry is never mistaken
                # for it (a sweep's member, a console row, a selection).
                invalid.append(InvalidSolution(path.name, path, error))
                continue
            solutions[spec.id] = spec
    return SolutionSet([solutions[key] for key in sorted(solutions)], invalid)


def load_solutions(config: WorkspaceConfig) -> list[SolutionSpec]:
    """Every solution of the workspace, sorted by id, refusing a workspace with any invalid file.

    Raises:
        ConfigError: one file breaks a rule.
        InvalidFilesError: several files break rules (all of them are listed).
    """
    return load_solution_set(config).strict()


def find_solution(config: WorkspaceConfig, solution_id: str) -> SolutionSpec:
    """Load the solution called ``solution_id``.

    Raises:
        InputError: the id breaks the id rule.
        NotFoundError: no such solution file.
        ConfigError: its file breaks a rule.
    """
    if not is_valid_solution_id(solution_id):
        raise InputError(f"invalid solution id '{excerpt(solution_id)}' ({SOLUTION_ID_RULE})")
    for suffix in (".yaml", ".yml"):
        path = config.solutions_dir / f"{solution_id}{suffix}"
        if os.path.lexists(path):  # a folder or a link of that name is reported, not passed over
            return load_solution(config, path)
    known = [path.name.rsplit(".", 1)[0] for path in solution_files(config)]
    raise NotFoundError(f"unknown solution '{solution_id}'{_did_you_mean(solution_id, known)} "
                        f"(no {solution_id}.yaml in {config.solutions_dir})")


# --- validation helpers -------------------------------------------------------------------------

def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _mapping(doc: YamlDoc, value: Any, at: tuple[str, ...], rule: str) -> Mapping[str, Any]:
    if value is None and at:
        return {}
    if not isinstance(value, dict):
        raise doc.error(f"expected a mapping, found {_kind(value)}", *at, rule=rule)
    for key in value:
        if not isinstance(key, str):
            raise doc.error(f"key {excerpt(repr(key))} is not a string", *at, rule="keys are names")
    return value


def _check_keys(doc: YamlDoc, data: Mapping[str, Any], at: tuple[str, ...], allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in data:
        if key not in allowed:
            where = excerpt(".".join((*at, key)))
            raise doc.error(f"unknown key '{where}'{_did_you_mean(key, allowed)}", *at, key,
                            rule=f"allowed keys here: {', '.join(allowed)}")


def _string(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> str:
    if isinstance(value, str) and value:
        return value
    written = doc.converted.get(at)
    if written is not None and value is not None and not isinstance(value, (dict, list)):
        raise _not_text(doc, at, at[-1], value, written)
    raise doc.error(f"'{'.'.join(at)}' must be a non-empty string, found {_kind(value)}", *at, rule="a text value")


_TEXT_RULE = "values are text, taken exactly as written: quote what YAML would read as a number, boolean or null"


def _not_text(doc: YamlDoc, at: tuple[str, ...], name: str, value: Any, written: str) -> ConfigError:
    """A scalar YAML read as a number, boolean or null where text is meant: refused, never converted.

    The message quotes the value to show how to write it, except for a variable whose name marks a secret."""
    if len(at) > 1 and at[-2] in APP_COMPONENTS and is_secret_name(name):
        return doc.error(f"'{'.'.join(at)}' is unquoted, so YAML reads it as {_kind_name(value)} (its value is not "
                         f"shown: the name marks a secret); quote it to keep it as written: {name}: \"…\"",
                         *at, rule=_TEXT_RULE)
    shown = excerpt(written)
    as_yaml = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)
    return doc.error(
        f"'{'.'.join(at)}' is {shown} unquoted, which YAML reads as {_kind_name(value)} {as_yaml}; "
        f"quote it to keep it as written: {name}: \"{shown}\"",
        *at,
        rule=_TEXT_RULE,
    )


def _kind_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "the boolean"
    if isinstance(value, int):
        return "the integer"
    if isinstance(value, float):
        return "the number"
    return f"a {type(value).__name__}"


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters of ``text`` on one line: what an error quotes of a value (never a whole file)."""
    flat = " ".join(text.split()) if ("\n" in text or "\r" in text) else text
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {excerpt(repr(value))}"


def _is_git_repo(folder: Path) -> bool:
    return (folder / ".git").exists() or ((folder / "HEAD").is_file() and (folder / "objects").is_dir())


def _components(doc: YamlDoc, value: Any) -> dict[str, ComponentSpec]:
    if value is None:
        raise doc.error("missing 'components'", rule="orbit.yaml lists the components (orbit, agent, mc at least)")
    data = _mapping(doc, value, ("components",), "components maps a name to {context, dockerfile}")
    components: dict[str, ComponentSpec] = {}
    for name, spec in data.items():
        at = ("components", name)
        if not _COMPONENT_NAME.fullmatch(name):
            raise doc.error(f"invalid component name '{excerpt(name)}'", *at, rule=COMPONENT_RULE)
        fields = _mapping(doc, spec, at, "a component is {context, dockerfile}")
        _check_keys(doc, fields, at, _COMPONENT_KEYS)
        if "context" not in fields:
            raise doc.error(f"component '{name}' has no context", *at, rule="each component names its build context")
        context = _relative(doc, _string(doc, fields["context"], (*at, "context")), (*at, "context"))
        dockerfile = fields.get("dockerfile")
        dockerfile_path = (
            _relative(doc, _string(doc, dockerfile, (*at, "dockerfile")), (*at, "dockerfile"))
            if dockerfile is not None
            else f"{context.rstrip('/')}/Dockerfile"
        )
        components[name] = ComponentSpec(name=name, context=context, dockerfile=dockerfile_path)
    absent = [name for name in APP_COMPONENTS if name not in components]
    if absent:
        raise doc.error(f"components lacks {', '.join(absent)}", "components",
                        rule="orbit, agent and mc are the components every solution runs")
    return components


def _relative(doc: YamlDoc, text: str, at: tuple[str, ...]) -> str:
    path = Path(text)
    if path.is_absolute() or ".." in path.parts:
        raise doc.error(f"'{text}' leaves the platform repo", *at, rule="paths are relative to the platform repo")
    return path.as_posix()


def _pins(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> dict[str, str]:
    data = _mapping(doc, value, at, "images maps orbit_tag/agent_tag/mc_tag to versions")
    pins: dict[str, str] = {}
    for key, pin in data.items():
        if key not in PIN_KEYS:
            component = key[: -len("_tag")] if key.endswith("_tag") else key
            raise doc.error(f"unknown component '{excerpt(component)}' in '{excerpt(key)}'"
                            f"{_did_you_mean(key, PIN_KEYS)}", *at, key,
                            rule=f"images keys are {', '.join(PIN_KEYS)}")
        text = pin if isinstance(pin, str) else None
        if text is None or not (text == LATEST or _is_pinnable_version(text)):
            leading_v = text is not None and text.startswith("v") and is_version(text[1:])
            hint = " (drop the leading 'v')" if leading_v else ""
            shown = f"'{excerpt(pin)}'" if isinstance(pin, str) else excerpt(repr(pin))
            raise doc.error(f"{key} {shown} is neither a version nor 'latest'{hint}", *at, key, rule=PIN_RULE)
        pins[key] = text
    return pins


@functools.lru_cache(maxsize=1024)
def _is_pinnable_version(text: str) -> bool:
    """``is_version``, remembered: a fleet pins a handful of versions thousands of times."""
    return is_version(text)


def _env(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> dict[str, dict[str, str]]:
    data = _mapping(doc, value, at, "env maps orbit/agent/mc to variables")
    env: dict[str, dict[str, str]] = {}
    for component, variables in data.items():
        where = (*at, component)
        if component not in APP_COMPONENTS:
            raise doc.error(f"unknown component '{excerpt(component)}' in env"
                            f"{_did_you_mean(component, APP_COMPONENTS)}", *where,
                            rule=f"env keys are {', '.join(APP_COMPONENTS)}")
        values = _mapping(doc, variables, where, "env.<component> maps variable names to values")
        env[component] = {}
        for name, raw in values.items():
            if not _ENV_NAME.fullmatch(name):
                raise doc.error(f"invalid environment variable name '{excerpt(name)}'", *where, name,
                                rule="names are letters, digits and '_', not starting with a digit")
            if isinstance(raw, str):
                env[component][name] = raw
                continue
            if not isinstance(raw, (dict, list)):  # a scalar YAML did not read as text
                written = doc.converted.get((*where, name), str(raw))  # an alias has no text of its own
                raise _not_text(doc, (*where, name), name, raw, written)
            found = "a mapping" if isinstance(raw, dict) else "a list"  # its content is never quoted: maybe a secret
            raise doc.error(f"env {component}.{name} must be a single text value, found {found}", *where, name,
                            rule="environment values are text")
    return env


def _quota(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> int:
    rule = (f"quota in GiB, a whole number up to {MAX_SHARE_QUOTA_GIB} (premium FileStorage; values under "
            f"{MIN_SHARE_QUOTA_GIB} are provisioned as {MIN_SHARE_QUOTA_GIB})")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise doc.error(f"share_quota_gib must be a positive whole number, found {_kind(value)}", *at, rule=rule)
    if value > MAX_SHARE_QUOTA_GIB:
        raise doc.error(f"share_quota_gib {value} is more than premium FileStorage allows", *at, rule=rule)
    return value


def _defaults(doc: YamlDoc, value: Any, components: Mapping[str, ComponentSpec]) -> Defaults:
    data = _mapping(doc, value, ("defaults",), "defaults holds images, share_quota_gib, env and secrets")
    _check_keys(doc, data, ("defaults",), _DEFAULT_KEYS)
    plain_env, secret_env = split_secret_env(doc, data.get("env", {}), ("defaults", "env"))
    return Defaults(
        images=_pins(doc, data.get("images", {}), ("defaults", "images")),
        share_quota_gib=_quota(doc, data.get("share_quota_gib", MIN_SHARE_QUOTA_GIB), ("defaults", "share_quota_gib")),
        env=_env(doc, plain_env, ("defaults", "env")),
        secrets=read_secrets(doc, data.get("secrets", {}), ("defaults", "secrets")),
        secret_env=secret_env,
    )


def _secret_names(doc: YamlDoc, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise doc.error(f"secret_env_names must be a list, found {_kind(value)}", "secret_env_names",
                        rule=SECRET_NAMES_RULE)
    names: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not _SECRET_NAME_PATTERN.fullmatch(item):
            shown = f"'{item}'" if isinstance(item, str) else _kind(item)
            raise doc.error(f"secret_env_names entry {shown} is not a name or glob pattern", "secret_env_names",
                            index, rule=SECRET_NAMES_RULE)
        names.append(item)
    return tuple(names)


def _azure(doc: YamlDoc, value: Any, *, required: bool) -> AzureSettings | None:
    if value is None:
        if required:
            raise doc.error("backend is azure but there is no 'azure' section", "backend",
                            rule=f"backend: azure needs azure: {', '.join(_AZURE_REQUIRED)}")
        return None
    data = _mapping(doc, value, ("azure",), "azure holds the subscription, group, registry...")
    _check_keys(doc, data, ("azure",), _AZURE_REQUIRED + _AZURE_OPTIONAL)
    absent = [key for key in _AZURE_REQUIRED if key not in data]
    if absent and required:
        raise doc.error(f"azure lacks {', '.join(absent)}", "azure",
                        rule=f"backend: azure needs azure: {', '.join(_AZURE_REQUIRED)}")
    fields = {key: _string(doc, data[key], ("azure", key)) for key in data}
    for key in absent:
        fields[key] = ""
    return AzureSettings(**fields)
