"""The shared state store on Azurite: one Azurite per session, one fresh container per test.

``ORBIT_STATE_CONNECTION_STRING`` carries the development account's key (public, documented: not a secret), as an
operator's would carry theirs; ``state.account_url`` is Azurite's path-style endpoint. The lease period is 15 s,
Azure's minimum, which Azurite enforces too (it refuses 14 s with 400 and frees a 15 s lease after 15 s).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from emulators.azurite import ACCOUNT, ACCOUNT_KEY, Azurite

from orbit_ops.config.state import StateSettings

LEASE_SECONDS = 15


def connection_string(azurite: Azurite) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={azurite.blob_endpoint};")


def fresh_container() -> str:
    return f"state-{secrets.token_hex(6)}"


def state_settings(azurite: Azurite, container: str) -> StateSettings:
    return StateSettings(store="azure-blob", account_url=azurite.blob_endpoint, container=container,
                         lease_seconds=LEASE_SECONDS)


def state_yaml(azurite: Azurite, container: str) -> str:
    """The ``state:`` section of orbit.yaml for the store at ``azurite``/``container``."""
    return (f"state:\n  store: azure-blob\n  account_url: {azurite.blob_endpoint}\n  container: {container}\n"
            f"  lease_seconds: {LEASE_SECONDS}\n")


def add_state(root: Path, azurite: Azurite, container: str) -> None:
    """Append the ``state:`` section to ``root/orbit.yaml``."""
    config = root / "orbit.yaml"
    config.write_text(config.read_text() + state_yaml(azurite, container))
