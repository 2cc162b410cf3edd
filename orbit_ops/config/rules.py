"""The rule of each field of ``orbit.yaml`` and of a solution file, and the message that names it when broken.

Validation is hand-written over the small, fixed schema of SPEC §2.0 so messages can say exactly what was
expected ("did you mean 'images'?"), with the file, the line and the rule; each reader takes the parsed
document and the path of keys it reads, and returns the checked value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orbit_ops.config.labels import LABEL_KEY_RULE, LABEL_VALUE_RULE, label_key_problem, label_value_problem
from orbit_ops.config.model import (
    MAX_SHARE_QUOTA_GIB,
    MIN_SHARE_QUOTA_GIB,
    PIN_KEYS,
    AzureSettings,
    ComponentSpec,
    Defaults,
)
from orbit_ops.config.secrets import read_secrets, split_secret_env
from orbit_ops.errors import ConfigError
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.redact import is_secret_name
from orbit_ops.text import did_you_mean
from orbit_ops.versions import LATEST, VERSION_RULE, is_version
from orbit_ops.yamlfile import YamlDoc

EXCERPT_CHARS = 60  # how much of a value an error message quotes: enough to find it, never a file's content

_COMPONENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
COMPONENT_RULE = "a component name is lowercase letters, digits, '-' or '_', starting with a letter or digit"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PIN_RULE = f"a pin is a released version or 'latest'; {VERSION_RULE}"

TOP_KEYS = ("platform_repo", "releases_dir", "solutions_dir", "backend", "components", "defaults", "azure",
             "secret_env_names", "state")
_SECRET_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_*?\[\]!-]+$")
SECRET_NAMES_RULE = ("secret_env_names lists env variable names or glob patterns (letters, digits, '_', '*', '?', "
                     "'[...]') whose values are masked like PASSWORD, TOKEN or KEY ones")
_COMPONENT_KEYS = ("context", "dockerfile")
_DEFAULT_KEYS = ("images", "share_quota_gib", "env", "secrets")
SOLUTION_KEYS = ("id", "display_name", "images", "env", "share_quota_gib", "secrets", "labels")
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


def read_mapping(doc: YamlDoc, value: Any, at: tuple[str, ...], rule: str) -> Mapping[str, Any]:
    if value is None and at:
        return {}
    if not isinstance(value, dict):
        raise doc.error(f"expected a mapping, found {_kind(value)}", *at, rule=rule)
    for key in value:
        if not isinstance(key, str):
            raise doc.error(f"key {excerpt(repr(key))} is not a string", *at, rule="keys are names")
    return value


def check_keys(doc: YamlDoc, data: Mapping[str, Any], at: tuple[str, ...], allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in data:
        if key not in allowed:
            where = excerpt(".".join((*at, key)))
            raise doc.error(f"unknown key '{where}'{did_you_mean(key, allowed)}", *at, key,
                            rule=f"allowed keys here: {', '.join(allowed)}")


def read_string(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> str:
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


def is_git_repo(folder: Path) -> bool:
    return (folder / ".git").exists() or ((folder / "HEAD").is_file() and (folder / "objects").is_dir())


def read_components(doc: YamlDoc, value: Any) -> dict[str, ComponentSpec]:
    if value is None:
        raise doc.error("missing 'components'", rule="orbit.yaml lists the components (orbit, agent, mc at least)")
    data = read_mapping(doc, value, ("components",), "components maps a name to {context, dockerfile}")
    components: dict[str, ComponentSpec] = {}
    for name, spec in data.items():
        at = ("components", name)
        if not _COMPONENT_NAME.fullmatch(name):
            raise doc.error(f"invalid component name '{excerpt(name)}'", *at, rule=COMPONENT_RULE)
        fields = read_mapping(doc, spec, at, "a component is {context, dockerfile}")
        check_keys(doc, fields, at, _COMPONENT_KEYS)
        if "context" not in fields:
            raise doc.error(f"component '{name}' has no context", *at, rule="each component names its build context")
        context = _relative(doc, read_string(doc, fields["context"], (*at, "context")), (*at, "context"))
        dockerfile = fields.get("dockerfile")
        dockerfile_path = (
            _relative(doc, read_string(doc, dockerfile, (*at, "dockerfile")), (*at, "dockerfile"))
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


def read_pins(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> dict[str, str]:
    data = read_mapping(doc, value, at, "images maps orbit_tag/agent_tag/mc_tag to versions")
    pins: dict[str, str] = {}
    for key, pin in data.items():
        if key not in PIN_KEYS:
            component = key[: -len("_tag")] if key.endswith("_tag") else key
            raise doc.error(f"unknown component '{excerpt(component)}' in '{excerpt(key)}'"
                            f"{did_you_mean(key, PIN_KEYS)}", *at, key,
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


def read_env(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> dict[str, dict[str, str]]:
    data = read_mapping(doc, value, at, "env maps orbit/agent/mc to variables")
    env: dict[str, dict[str, str]] = {}
    for component, variables in data.items():
        where = (*at, component)
        if component not in APP_COMPONENTS:
            raise doc.error(f"unknown component '{excerpt(component)}' in env"
                            f"{did_you_mean(component, APP_COMPONENTS)}", *where,
                            rule=f"env keys are {', '.join(APP_COMPONENTS)}")
        values = read_mapping(doc, variables, where, "env.<component> maps variable names to values")
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


def read_labels(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> dict[str, str]:
    """``labels:``: Kubernetes label keys to text values (``ring: canary``); a value YAML reads as a number, boolean
    or null is refused with how to quote it, never converted."""
    data = read_mapping(doc, value, at, "labels map label keys to values")
    labels: dict[str, str] = {}
    for key, raw in data.items():
        if (problem := label_key_problem(key)) is not None:
            raise doc.error(f"invalid label key '{excerpt(key)}': {problem}", *at, key, rule=LABEL_KEY_RULE)
        if not isinstance(raw, str):
            if isinstance(raw, (dict, list)):
                raise doc.error(f"label {excerpt(key)} must be a single text value, found {_kind(raw)}", *at, key,
                                rule=LABEL_VALUE_RULE)
            raise _not_text(doc, (*at, key), key, raw, doc.converted.get((*at, key), str(raw)))
        if (problem := label_value_problem(raw)) is not None:
            raise doc.error(f"invalid value '{excerpt(raw)}' of label {excerpt(key)}: {problem}", *at, key,
                            rule=LABEL_VALUE_RULE)
        labels[key] = raw
    return labels


def read_quota(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> int:
    rule = (f"quota in GiB, a whole number up to {MAX_SHARE_QUOTA_GIB} (premium FileStorage; values under "
            f"{MIN_SHARE_QUOTA_GIB} are provisioned as {MIN_SHARE_QUOTA_GIB})")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise doc.error(f"share_quota_gib must be a positive whole number, found {_kind(value)}", *at, rule=rule)
    if value > MAX_SHARE_QUOTA_GIB:
        raise doc.error(f"share_quota_gib {value} is more than premium FileStorage allows", *at, rule=rule)
    return value


def read_defaults(doc: YamlDoc, value: Any, components: Mapping[str, ComponentSpec]) -> Defaults:
    data = read_mapping(doc, value, ("defaults",), "defaults holds images, share_quota_gib, env and secrets")
    check_keys(doc, data, ("defaults",), _DEFAULT_KEYS)
    plain_env, secret_env = split_secret_env(doc, data.get("env", {}), ("defaults", "env"))
    return Defaults(
        images=read_pins(doc, data.get("images", {}), ("defaults", "images")),
        share_quota_gib=read_quota(doc, data.get("share_quota_gib", MIN_SHARE_QUOTA_GIB),
                                   ("defaults", "share_quota_gib")),
        env=read_env(doc, plain_env, ("defaults", "env")),
        secrets=read_secrets(doc, data.get("secrets", {}), ("defaults", "secrets")),
        secret_env=secret_env,
    )


def read_secret_names(doc: YamlDoc, value: Any) -> tuple[str, ...]:
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


def read_azure(doc: YamlDoc, value: Any, *, required: bool) -> AzureSettings | None:
    if value is None:
        if required:
            raise doc.error("backend is azure but there is no 'azure' section", "backend",
                            rule=f"backend: azure needs azure: {', '.join(_AZURE_REQUIRED)}")
        return None
    data = read_mapping(doc, value, ("azure",), "azure holds the subscription, group, registry...")
    check_keys(doc, data, ("azure",), _AZURE_REQUIRED + _AZURE_OPTIONAL)
    absent = [key for key in _AZURE_REQUIRED if key not in data]
    if absent and required:
        raise doc.error(f"azure lacks {', '.join(absent)}", "azure",
                        rule=f"backend: azure needs azure: {', '.join(_AZURE_REQUIRED)}")
    fields = {key: read_string(doc, data[key], ("azure", key)) for key in data}
    for key in absent:
        fields[key] = ""
    return AzureSettings(**fields)
