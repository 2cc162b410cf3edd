"""App secrets in solution files: Container Apps secrets as Key Vault references, never as values.

A solution (or ``orbit.yaml`` ``defaults``) may declare, per app component, secrets that Container Apps
reads from Key Vault with a managed identity, and env variables that take their value from one of them::

    secrets:
      agent:
        db-password: {keyVaultUrl: "https://orbit-kv.vault.azure.net/secrets/db-password"}
    env:
      agent:
        DB_PASSWORD: {secretRef: db-password}

so no secret value needs to live in a file. A secret with a value is refused: it belongs in Key Vault.
The rules are the service's own (secret names, Key Vault secret URLs) so that a mistake is named with its
file and line here rather than by a 400 in the middle of a sweep. See decision 0032.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from orbit_ops.names import APP_COMPONENTS
from orbit_ops.text import did_you_mean

if TYPE_CHECKING:
    from orbit_ops.yamlfile import YamlDoc

SECRET_NAME_RULE = ("a secret name is lowercase letters, digits and '-', starting and ending with a letter or digit, "
                    "at most 253 characters (Container Apps)")
KEY_VAULT_URL_RULE = ("keyVaultUrl is the https URL of a Key Vault secret, "
                      "https://<vault host>/secrets/<name> or https://<vault host>/secrets/<name>/<version>")
IDENTITY_RULE = ("identity is the resource id of a user-assigned managed identity (/subscriptions/<id>/resourceGroups/"
                 "<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>); without it the secret "
                 "is read with the pull identity")
SECRET_REF_RULE = "an env value is text, or {secretRef: <name>} naming a secret declared under secrets.<component>"
VALUE_RULE = ("secrets are Key Vault references {keyVaultUrl, identity}: store the value in Key Vault, never in a "
              "solution file")

SECRET_KEYS = ("keyVaultUrl", "identity")
_SECRET_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,251}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # the env name rule of orbit_ops.config.load
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_VAULT_SECRET = re.compile(r"^[0-9A-Za-z-]{1,127}$")  # Key Vault's own rule for a secret's name
_VAULT_VERSION = re.compile(r"^[0-9A-Za-z]{1,64}$")
_IDENTITY = re.compile(  # ARM's characters for subscription ids, resource group and identity names
    r"^/subscriptions/[0-9A-Za-z-]+/resourceGroups/[-\w.()]+/providers/Microsoft\.ManagedIdentity/"
    r"userAssignedIdentities/[-\w]+$",
    re.IGNORECASE | re.ASCII,
)


@dataclass(frozen=True)
class KeyVaultSecret:
    """A Container Apps secret declared by reference: its value stays in Key Vault, never in a file.

    ``identity`` is the user-assigned identity that reads it; None means the platform's pull identity.
    """

    key_vault_url: str
    identity: str | None = None


def split_secret_env(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> tuple[Any, dict[str, dict[str, str]]]:
    """Take the ``{secretRef: NAME}`` entries out of an ``env`` mapping: (the rest, component -> var -> secret).

    Everything that is not such an entry is left for the plain env check, which names what is wrong with it.

    Raises:
        ConfigError: a mapping value is not exactly ``{secretRef: NAME}``, or NAME breaks the secret name rule.
    """
    if not isinstance(value, dict):
        return value, {}
    plain: dict[Any, Any] = dict(value)
    refs: dict[str, dict[str, str]] = {}
    for component, variables in value.items():
        if component not in APP_COMPONENTS or not isinstance(variables, dict):
            continue
        kept = {}
        for name, raw in variables.items():
            if not isinstance(raw, dict) or not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
                kept[name] = raw
                continue
            where = (*at, component, name)
            if set(raw) != {"secretRef"}:
                # Only keys a secret reference could have are quoted: an unquoted value starting with '{' is a
                # mapping to YAML, and its "keys" may be the secret itself.
                known = ("secretRef", "value", "keyVaultUrl", "identity")
                keys = ", ".join(str(key) for key in list(raw)[:3] if key in known) or (
                    f"{len(raw)} other key(s)" if raw else "")
                hint = " (a secret's value belongs in Key Vault: declare the secret under secrets.<component>)" \
                    if "value" in raw else ""
                raise doc.error(f"env {component}.{name} must be text or {{secretRef: <secret name>}}, found a mapping "
                                f"with {keys or 'nothing'}{hint}", *where, rule=SECRET_REF_RULE)
            secret = raw["secretRef"]
            if not isinstance(secret, str) or not _SECRET_NAME.fullmatch(secret):
                shown = f"'{_short(secret)}'" if isinstance(secret, str) else "not text"
                raise doc.error(f"env {component}.{name}: secretRef {shown} is not a secret name", *where, "secretRef",
                                rule=SECRET_NAME_RULE)
            refs.setdefault(component, {})[name] = secret
        plain[component] = kept
    return plain, refs


def read_secrets(doc: YamlDoc, value: Any, at: tuple[str, ...]) -> dict[str, dict[str, KeyVaultSecret]]:
    """The ``secrets`` mapping: component -> secret name -> Key Vault reference.

    Raises:
        ConfigError: a component, name, key, URL or identity breaks a rule, or a secret carries a value.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error("secrets must be a mapping of orbit/agent/mc to their secrets", *at,
                        rule="secrets.<component>.<name>: {keyVaultUrl, identity}")
    secrets: dict[str, dict[str, KeyVaultSecret]] = {}
    for component, declared in value.items():
        where = (*at, str(component))
        if component not in APP_COMPONENTS:
            raise doc.error(f"unknown component '{_short(str(component))}' in secrets"
                            f"{did_you_mean(str(component), APP_COMPONENTS)}", *where,
                            rule=f"secrets keys are {', '.join(APP_COMPONENTS)}")
        if declared is None:
            secrets[component] = {}
            continue
        if not isinstance(declared, dict):
            raise doc.error(f"secrets.{component} must map secret names to {{keyVaultUrl, identity}}", *where,
                            rule="secrets.<component>.<name>: {keyVaultUrl, identity}")
        secrets[component] = {}
        for name, spec in declared.items():
            if not isinstance(name, str) or not _SECRET_NAME.fullmatch(name):
                raise doc.error(f"invalid secret name '{_short(str(name))}' in secrets.{component}", *where, str(name),
                                rule=SECRET_NAME_RULE)
            secrets[component][name] = _secret(doc, spec, (*where, name), f"{component}.{name}")
    return secrets


def merge_secrets(
    doc: YamlDoc,
    default_secrets: Mapping[str, Mapping[str, KeyVaultSecret]],
    default_secret_env: Mapping[str, Mapping[str, str]],
    value: Any,
    written_refs: Mapping[str, Mapping[str, str]],
    written_env: Mapping[str, Mapping[str, str]],
    env: dict[str, dict[str, str]],
) -> tuple[dict[str, dict[str, KeyVaultSecret]], dict[str, dict[str, str]]]:
    """A solution's secrets and secret env over the defaults: (component -> secrets, component -> var -> secret).

    Per variable, what the solution file writes wins over the defaults, whatever its kind: a ``secretRef``
    in the file replaces a default value (removed from ``env``), a value in the file a default ``secretRef``.
    Every ``secretRef`` must name a secret declared for that app, here or in the defaults.

    Raises:
        ConfigError: a secret breaks a rule, or a ``secretRef`` names no declared secret.
    """
    written = read_secrets(doc, value, ("secrets",))
    secrets = {c: {**default_secrets.get(c, {}), **written.get(c, {})} for c in APP_COMPONENTS}
    secret_env: dict[str, dict[str, str]] = {}
    for component in APP_COMPONENTS:
        mine = written_refs.get(component, {})
        refs = {name: secret for name, secret in default_secret_env.get(component, {}).items()
                if name not in written_env.get(component, {})}
        refs.update(mine)
        for name in mine:
            env.get(component, {}).pop(name, None)
        for name, secret in refs.items():
            if secret in secrets[component]:
                continue
            if name in mine:
                raise doc.error(f"env {component}.{name} refers to secret '{secret}', which is not declared under "
                                f"secrets.{component}", "env", component, name, "secretRef", rule=SECRET_REF_RULE)
            raise doc.error(f"env {component}.{name} (from orbit.yaml defaults.env) refers to secret '{secret}', which "
                            f"is not declared under secrets.{component} here or in orbit.yaml defaults.secrets",
                            *(("secrets",) if "secrets" in (doc.data or {}) else ()), rule=SECRET_REF_RULE)
        secret_env[component] = refs
    return secrets, secret_env


def _secret(doc: YamlDoc, spec: Any, at: tuple[str, ...], label: str) -> KeyVaultSecret:
    if not isinstance(spec, dict):
        # Whatever it is, it is not shown: a plain value here is most likely the secret itself.
        raise doc.error(f"secret {label} must be {{keyVaultUrl: <Key Vault secret URL>}}, not a value", *at,
                        rule=VALUE_RULE)
    if "value" in spec:
        raise doc.error(f"secret {label} has a value; Orbit keeps no secret values in files: store it in Key Vault "
                        "and give its keyVaultUrl", *at, "value", rule=VALUE_RULE)
    for key in spec:
        if key not in SECRET_KEYS:
            shown = _short(str(key), 40)
            raise doc.error(f"unknown key '{shown}' in secret {label}{did_you_mean(str(key), SECRET_KEYS)}", *at,
                            str(key), rule=f"allowed keys here: {', '.join(SECRET_KEYS)}")
    url = spec.get("keyVaultUrl")
    if url is None:
        raise doc.error(f"secret {label} has no keyVaultUrl", *at, rule=KEY_VAULT_URL_RULE)
    if not isinstance(url, str) or not _is_key_vault_secret_url(url):
        shown = f"'{_short(url)}'" if isinstance(url, str) else "not text"
        raise doc.error(f"secret {label}: keyVaultUrl {shown} is not the URL of a Key Vault secret", *at,
                        "keyVaultUrl", rule=KEY_VAULT_URL_RULE)
    identity = spec.get("identity")
    if identity is not None:
        if isinstance(identity, str) and identity.lower() == "system":
            raise doc.error(f"secret {label}: a system-assigned identity exists only once the app is created, so a new "
                            "app could not read its secrets with it; name a user-assigned identity", *at, "identity",
                            rule=IDENTITY_RULE)
        if not isinstance(identity, str) or not _IDENTITY.fullmatch(identity):
            shown = f"'{_short(identity)}'" if isinstance(identity, str) else "not text"
            raise doc.error(f"secret {label}: identity {shown} is not a user-assigned identity's resource id", *at,
                            "identity", rule=IDENTITY_RULE)
    return KeyVaultSecret(key_vault_url=url, identity=identity)


def _is_key_vault_secret_url(url: str) -> bool:
    """``https://<host>[:port]/secrets/<name>[/<version>]``, nothing else (no credentials, query or fragment).

    Any https host is accepted: sovereign clouds (``vault.azure.cn``, ``vault.usgovcloudapi.net``) and
    emulators serve Key Vault under other names than ``*.vault.azure.net``.
    """
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return False
    if parts.scheme != "https" or not port_ok or parts.username is not None or parts.query or parts.fragment:
        return False
    if "@" in parts.netloc or not _HOST.fullmatch(parts.hostname or ""):
        return False
    segments = parts.path.split("/")
    if len(segments) not in (3, 4) or segments[0] != "" or segments[1] != "secrets":
        return False
    if not _VAULT_SECRET.fullmatch(segments[2]):
        return False
    return len(segments) == 3 or bool(_VAULT_VERSION.fullmatch(segments[3]))


def _short(text: str, limit: int = 60) -> str:
    """What an error quotes of a value: one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
