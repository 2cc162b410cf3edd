"""``state:`` in ``orbit.yaml``: where locks (and, later, operation records and logs) are shared.

``local`` (the default, needing nothing) keeps everything in ``.orbit/`` on this machine, exactly as before the
setting existed. ``azure-blob`` shares the locks through a blob container that every operator's Orbit reaches
(``docs/decisions/0064-shared-state-store.md``). Credentials never live here: ``ORBIT_STATE_CONNECTION_STRING``
when set, else ``DefaultAzureCredential`` (read by ``orbit_ops.backends.azure.state_store``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from orbit_ops.yamlfile import YamlDoc

STORES = ("local", "azure-blob")
STATE_KEYS = ("store", "account_url", "container", "lease_seconds", "ca_bundle")
MIN_LEASE_SECONDS = 15  # Azure's fixed lease bounds (Lease Blob: 15 to 60 seconds, or infinite: never used)
MAX_LEASE_SECONDS = 60
DEFAULT_LEASE_SECONDS = 30
CONTAINER_RULE = ("a container name is 3-63 characters of lowercase letters, digits and single hyphens, starting "
                  "and ending with a letter or digit (Azure's naming rule)")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")
_AZURE_KEYS = ("account_url", "container", "lease_seconds", "ca_bundle")


@dataclass(frozen=True)
class StateSettings:
    """Where Orbit keeps its shared state; ``store == "local"`` means ``.orbit/`` alone (the default)."""

    store: str = "local"
    account_url: str | None = None
    container: str | None = None
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    ca_bundle: str | None = None

    @property
    def shared(self) -> bool:
        return self.store != "local"

    def describe(self) -> str:
        """``container orbit-state at https://…`` (no credential is ever part of it)."""
        if not self.shared:
            return "the local state folder (.orbit/)"
        return f"container {self.container} at {self.account_url}"


def read_state(doc: YamlDoc, value: Any) -> StateSettings:
    """The ``state:`` section of ``orbit.yaml`` (absent: the local store).

    Raises:
        ConfigError: an unknown key or store, a missing account_url/container, a URL that is not http(s), a
            container name Azure would refuse, or a lease period outside Azure's 15-60 s.
    """
    from orbit_ops.config.rules import check_keys, read_mapping, read_string

    if value is None:
        return StateSettings()
    data = read_mapping(doc, value, ("state",), f"state holds the store ({'|'.join(STORES)}) and where it is")
    check_keys(doc, data, ("state",), STATE_KEYS)
    store = read_string(doc, data.get("store", "local"), ("state", "store"))
    if store not in STORES:
        raise doc.error(f"unknown state store '{store}'", "state", "store",
                        rule=f"state.store is one of: {', '.join(STORES)}")
    if store == "local":
        given = [key for key in _AZURE_KEYS if key in data]
        if given:
            # A forgotten ``store:`` line would otherwise leave a team unlocked from each other, silently.
            raise doc.error(f"state.{given[0]} is set but the store is local", "state", given[0],
                            rule="account_url, container, lease_seconds and ca_bundle belong to store: azure-blob; "
                                 "set it, or remove them")
        return StateSettings()
    for key in ("account_url", "container"):
        if key not in data:
            raise doc.error(f"state lacks {key}", "state",
                            rule="store: azure-blob needs account_url (the blob endpoint) and container")
    account_url = read_string(doc, data["account_url"], ("state", "account_url"))
    parts = urlsplit(account_url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise doc.error(f"state.account_url '{account_url[:80]}' is not a blob endpoint URL", "state", "account_url",
                        rule="account_url is http(s)://host[:port][/account], with no query (no SAS: credentials "
                             "come from ORBIT_STATE_CONNECTION_STRING or DefaultAzureCredential)")
    if parts.username or parts.password:
        raise doc.error("state.account_url carries a user or password", "state", "account_url",
                        rule="no credential in orbit.yaml: use ORBIT_STATE_CONNECTION_STRING or DefaultAzureCredential")
    container = read_string(doc, data["container"], ("state", "container"))
    if not (3 <= len(container) <= 63 and _CONTAINER.match(container)):
        raise doc.error(f"invalid container name '{container[:80]}'", "state", "container", rule=CONTAINER_RULE)
    lease = data.get("lease_seconds", DEFAULT_LEASE_SECONDS)
    if isinstance(lease, bool) or not isinstance(lease, int) or not MIN_LEASE_SECONDS <= lease <= MAX_LEASE_SECONDS:
        raise doc.error(f"state.lease_seconds is {str(lease)[:40]}", "state", "lease_seconds",
                        rule=f"a whole number of seconds from {MIN_LEASE_SECONDS} to {MAX_LEASE_SECONDS} "
                             "(Azure's fixed lease periods)")
    ca_bundle = read_string(doc, data["ca_bundle"], ("state", "ca_bundle")) if "ca_bundle" in data else None
    return StateSettings(store=store, account_url=account_url.rstrip("/"), container=container,
                         lease_seconds=lease, ca_bundle=ca_bundle)
