"""The shared state store out of reach: reading commands say so and show this machine's cache; writing ones refuse."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest


def unreachable_url() -> str:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/devstoreaccount1"


def test_writing_commands_refuse_and_reading_ones_show_the_local_cache_when_the_store_is_away(
        demo_workspace: Path, tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from emulators.azurite import ACCOUNT, ACCOUNT_KEY

    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    code, out, err = run_cli("-w", str(root), "provision", "acme-corp", "--yes", "--json")
    assert code in (0, 1), err  # one operation in this machine's index, run while the store was local
    local_ids = [row["id"] for row in json.loads(run_cli("-w", str(root), "ops", "--json")[1])]
    assert local_ids
    monkeypatch.setenv("ORBIT_STATE_CONNECTION_STRING", f"AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY}")
    config = root / "orbit.yaml"
    config.write_text(config.read_text() + f"state:\n  store: azure-blob\n  account_url: {unreachable_url()}\n"
                                           "  container: orbit-state\n")
    before = (root / "solutions" / "acme-corp.yaml").read_text()

    code, out, err = run_cli("-w", str(root), "provision", "acme-corp", "--yes")
    assert code == 1
    assert "cannot provision: reaching the state store: the state store (container orbit-state at http://127.0.0.1" \
           in err and "cannot be reached" in err and "nothing was done" in err
    code, out, err = run_cli("-w", str(root), "roll", "agent", "1.0.0", "acme-corp", "--yes")
    assert code == 1 and "nothing was done" in err
    assert (root / "solutions" / "acme-corp.yaml").read_text() == before
    assert [row["id"] for row in json.loads(run_cli("-w", str(root), "ops", "--json")[1])] == local_ids

    code, out, err = run_cli("-w", str(root), "ops", "--json")
    assert code == 0 and "showing this machine's operations only (its local cache)" in err
    code, out, err = run_cli("-w", str(root), "logs", local_ids[0])
    assert code == 0, err  # this machine's own log needs no store
    code, out, err = run_cli("-w", str(root), "locks")
    assert code == 1 and "cannot be reached" in err
    assert ACCOUNT_KEY not in out + err
