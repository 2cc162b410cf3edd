"""``state:`` in orbit.yaml: local by default and needing nothing; azure-blob checked with file, line and rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import MINIMAL_CONFIG

from orbit_ops.config.load import load_config
from orbit_ops.errors import ConfigError
from orbit_ops.operations.lockstore import LocalLockStore, lease_id_for
from orbit_ops.workspace import Workspace

SHARED = MINIMAL_CONFIG + """\
state:
  store: azure-blob
  account_url: https://orbitstate.blob.core.windows.net
  container: orbit-state
"""


def test_no_state_section_is_the_local_store_and_its_flocks(make_workspace: Callable[..., Path]) -> None:
    config = load_config(make_workspace())
    assert config.state.store == "local" and not config.state.shared
    assert isinstance(Workspace(config).locks(), LocalLockStore)


def test_a_shared_store_reads_its_endpoint_container_and_default_lease(make_workspace: Callable[..., Path]) -> None:
    state = load_config(make_workspace(config=SHARED)).state
    assert (state.store, state.account_url, state.container, state.lease_seconds) == (
        "azure-blob", "https://orbitstate.blob.core.windows.net", "orbit-state", 30)
    assert state.describe() == "container orbit-state at https://orbitstate.blob.core.windows.net"


STATE_CASES = [
    ("unknown store", SHARED.replace("azure-blob", "s3"), 9, "state.store is one of: local, azure-blob"),
    ("unknown key", SHARED + "  contianer: x\n", 12, "allowed keys here"),
    ("no container", SHARED.replace("  container: orbit-state\n", ""), 8, "needs account_url"),
    ("no account_url", SHARED.replace("  account_url: https://orbitstate.blob.core.windows.net\n", ""), 8,
     "needs account_url"),
    ("not a url", SHARED.replace("https://orbitstate.blob.core.windows.net", "orbitstate"), 10, "http(s)://host"),
    ("a SAS in the url", SHARED.replace(".net", ".net?sv=2024&sig=abc"), 10, "no SAS"),
    ("container with capitals", SHARED.replace("orbit-state", "Orbit_State"), 11, "container name is 3-63"),
    ("container with double hyphen", SHARED.replace("orbit-state", "orbit--state"), 11, "container name is 3-63"),
    ("lease too short", SHARED + "  lease_seconds: 5\n", 12, "from 15 to 60"),
    ("lease not a number", SHARED + "  lease_seconds: soon\n", 12, "from 15 to 60"),
    ("azure keys under local", MINIMAL_CONFIG + "state:\n  container: orbit-state\n", 9,
     "belong to store: azure-blob"),
]


@pytest.mark.parametrize(("text", "line", "rule"), [case[1:] for case in STATE_CASES],
                         ids=[case[0] for case in STATE_CASES])
def test_a_bad_state_section_names_file_line_and_rule(make_workspace: Callable[..., Path], text: str, line: int,
                                                       rule: str) -> None:
    root = make_workspace(config=text)
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    assert caught.value.exit_code == 2
    assert caught.value.path == root / "orbit.yaml"
    assert caught.value.line == line, str(caught.value)
    assert rule in str(caught.value)


def test_lease_ids_are_guids_of_the_operation_and_scope() -> None:
    first = lease_id_for("20261202-060000-ab12", "solution-acme")
    assert first == lease_id_for("20261202-060000-ab12", "solution-acme")  # a resumed operation gets its own back
    assert first != lease_id_for("20261202-060000-ab12", "solution-globex")
    assert len(first) == 36 and first.count("-") == 4
    assert lease_id_for(None, "solution-acme") != lease_id_for(None, "solution-acme")
