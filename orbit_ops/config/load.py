"""Workspace discovery and loading of ``orbit.yaml`` and every ``solutions/<id>.yaml``.

Every rule an operator can break has its own message naming the file, the line and the rule (the rules are
:mod:`orbit_ops.config.rules`), because a fleet config that silently ignores a typo rolls the wrong version to
a customer. Loading 10,000 solution files stays well under two seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

from orbit_ops.bulk import bulk_built
from orbit_ops.config.model import (
    BACKENDS,
    CONFIG_FILE,
    PIN_KEYS,
    SolutionSet,
    SolutionSpec,
    WorkspaceConfig,
)
from orbit_ops.config.parallel_read import read_in_processes
from orbit_ops.config.rules import (
    SOLUTION_KEYS,
    TOP_KEYS,
    check_keys,
    excerpt,
    is_git_repo,
    read_azure,
    read_components,
    read_defaults,
    read_env,
    read_labels,
    read_mapping,
    read_pins,
    read_quota,
    read_secret_names,
    read_string,
)
from orbit_ops.config.secrets import merge_secrets, split_secret_env
from orbit_ops.config.solution_cache import load_cached_set
from orbit_ops.config.solution_files import list_files as solution_file_paths
from orbit_ops.config.solution_files import read_solution_text
from orbit_ops.config.solution_files import stamp as solution_file_stamp
from orbit_ops.config.state import read_state
from orbit_ops.errors import InputError, NotFoundError
from orbit_ops.names import APP_COMPONENTS, SOLUTION_ID_RULE, is_valid_solution_id
from orbit_ops.redact import register_env_secrets, register_secret_names
from orbit_ops.text import did_you_mean
from orbit_ops.yamlfile import load_yaml


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
    data = read_mapping(doc, doc.data, (), "orbit.yaml is a mapping of settings")
    check_keys(doc, data, (), TOP_KEYS)

    repo_text = read_string(doc, data.get("platform_repo", "."), ("platform_repo",))
    platform_repo = (root / repo_text).resolve()
    if not platform_repo.is_dir():
        raise doc.error(f"platform repo {platform_repo} does not exist", "platform_repo",
                        rule="platform_repo names a git repository (relative to orbit.yaml)")
    if not is_git_repo(platform_repo):
        raise doc.error(f"platform repo {platform_repo} is not a git repository", "platform_repo",
                        rule="platform_repo names a git repository (relative to orbit.yaml)")
    releases_dir = platform_repo / read_string(doc, data.get("releases_dir", "releases"), ("releases_dir",))
    solutions_dir = root / read_string(doc, data.get("solutions_dir", "solutions"), ("solutions_dir",))

    backend = read_string(doc, data.get("backend", "local"), ("backend",))
    if backend not in BACKENDS:
        raise doc.error(f"unknown backend '{backend}'", "backend", rule=f"backend is one of: {', '.join(BACKENDS)}")

    components = read_components(doc, data.get("components"))
    defaults = read_defaults(doc, data.get("defaults", {}), components)
    azure = read_azure(doc, data.get("azure"), required=backend == "azure")
    secret_names = read_secret_names(doc, data.get("secret_env_names"))
    state = read_state(doc, data.get("state"))
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
        state=state,
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
    data = read_mapping(doc, doc.data, (), "a solution file is a mapping with id, display_name, images, env")
    check_keys(doc, data, (), SOLUTION_KEYS)
    stem = path.name.rsplit(".", 1)[0]
    if "id" not in data:
        raise doc.error(f"missing 'id' (expected id: {stem})", rule="every solution file states its id")
    solution_id = read_string(doc, data["id"], ("id",))
    if not is_valid_solution_id(solution_id):
        raise doc.error(f"invalid solution id '{excerpt(solution_id)}'", "id", rule=SOLUTION_ID_RULE)
    if solution_id != stem:
        raise doc.error(f"id '{excerpt(solution_id)}' differs from the file name '{path.name}'", "id",
                        rule="a solution's id equals its file name without .yaml")
    display_name = read_string(doc, data.get("display_name", solution_id), ("display_name",))
    images = dict(config.defaults.images)
    images.update(read_pins(doc, data.get("images", {}), ("images",)))
    missing = [key for key in PIN_KEYS if key not in images]
    if missing:
        raise doc.error(f"no pin for {', '.join(missing)} here or in orbit.yaml defaults.images", "images",
                        rule="every solution pins orbit_tag, agent_tag and mc_tag (or inherits them)")
    plain_env, written_refs = split_secret_env(doc, data.get("env", {}), ("env",))
    env = {component: dict(values) for component, values in config.defaults.env.items()}
    written_env = read_env(doc, plain_env, ("env",))
    for component, values in written_env.items():
        env.setdefault(component, {}).update(values)
    defaults = config.defaults
    secrets, secret_env = merge_secrets(doc, defaults.secrets, defaults.secret_env, data.get("secrets", {}),
                                        written_refs, written_env, env)
    labels = read_labels(doc, data.get("labels", {}), ("labels",))
    quota = read_quota(doc, data.get("share_quota_gib", config.defaults.share_quota_gib), ("share_quota_gib",))
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
        labels=labels,
    )


def load_solution_set(config: WorkspaceConfig) -> SolutionSet:
    """Every solution file of the workspace: the valid ones sorted by id, and every invalid file with its error.

    One bad file never hides the good ones; the second file claiming an id already taken is the invalid one.
    A file unchanged since an earlier load is not read again: its result comes from the cache under ``.orbit/``
    (:mod:`orbit_ops.config.solution_cache`, the same results whether it is there or not); thousands of files it
    has no entry for are read by worker processes on every core (:mod:`orbit_ops.config.parallel_read`).
    """
    with bulk_built():
        return load_cached_set(config, lambda path, text: load_solution(config, path, text=text),
                               lambda folder, names: read_in_processes(config, folder, names))


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
    raise NotFoundError(f"unknown solution '{solution_id}'{did_you_mean(solution_id, known)} "
                        f"(no {solution_id}.yaml in {config.solutions_dir})")
