"""The services' own rules the local platform enforces: resource names, app secrets, access modes, quotas.

Azure refuses a write that breaks one of these; so does the local platform, with the service's rule in
the message, so a fleet that provisions locally provisions on Azure. A share name also becomes a folder
name, so it must be checked before anything is written.
"""

from __future__ import annotations

import re

from orbit_ops.config.model import MIN_SHARE_QUOTA_GIB
from orbit_ops.errors import BackendError
from orbit_ops.fleet.resources import AccessMode, App, ResourceKind, Share, Storage

MAX_SHARE_QUOTA_GIB = 102400  # premium FileStorage: 100 GiB to 100 TiB

ACCESS_MODES: tuple[AccessMode, ...] = ("ReadWrite", "ReadOnly")
_SECRET_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,251}[a-z0-9])?$")
_SECRET_NAME_RULE = "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 253"

_NAME_RULES: dict[ResourceKind, tuple[re.Pattern[str], str]] = {
    "app": (
        re.compile(r"^(?=.{2,32}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"),
        "2-32 lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit",
    ),
    "storage": (
        re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"),
        "1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit",
    ),
    "share": (
        re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$"),
        "3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
    ),
}


def check_name(kind: ResourceKind, name: str) -> None:
    """Raises BackendError when ``name`` breaks the service's naming rule for ``kind``."""
    pattern, rule = _NAME_RULES[kind]
    if not pattern.fullmatch(name):
        raise BackendError(f"invalid {kind} name {name!r}: {rule}")


def check_secrets(app: App) -> None:
    """The service's rules for an app's secrets: a valid name, a Key Vault URL read with an identity the app
    has, and every ``secretRef`` naming one of them. Locally a secret is a reference and nothing else.

    Raises:
        BackendError: a rule is broken.
    """
    for name, secret in app.secrets.items():
        if not _SECRET_NAME.fullmatch(name):
            raise BackendError(f"invalid secret name {name!r} for app {app.name}: {_SECRET_NAME_RULE}")
        if not secret.key_vault_url or not secret.identity:
            raise BackendError(f"secret {name} of app {app.name} needs a keyVaultUrl and an identity (the local "
                               "platform keeps no secret values)")
        if secret.identity.lower() not in {resource_id.lower() for resource_id in app.identities}:
            raise BackendError(f"secret {name} of app {app.name} is read with identity {secret.identity}, which is "
                               "not assigned to the app")
    for variable, secret_name in app.secret_env.items():
        if secret_name not in app.secrets:
            raise BackendError(f"env {variable} of app {app.name} refers to secret {secret_name!r}, which the app "
                               "does not have")
        if variable in app.env:
            raise BackendError(f"env {variable} of app {app.name} has both a value and a secretRef")


def no_check(app: App) -> None:
    """An app's write has no rule to check before its document is read (its secrets are checked as it is
    written, so a missing app is reported first)."""


def check_access_mode(storage: Storage) -> None:
    """Raises BackendError when the storage's access mode is neither ReadWrite nor ReadOnly."""
    if storage.access_mode not in ACCESS_MODES:
        raise BackendError(
            f"invalid access mode {storage.access_mode!r} for storage {storage.name}: use {' or '.join(ACCESS_MODES)}"
        )


def check_quota(share: Share) -> None:
    """Raises BackendError when the share's quota is outside the premium FileStorage range."""
    if not MIN_SHARE_QUOTA_GIB <= share.quota_gib <= MAX_SHARE_QUOTA_GIB:
        raise BackendError(
            f"invalid quota {share.quota_gib} GiB for share {share.name}: premium file shares take"
            f" {MIN_SHARE_QUOTA_GIB}-{MAX_SHARE_QUOTA_GIB} GiB"
        )
