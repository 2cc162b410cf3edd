"""The whole Azure path against the emulators: build on ACR → record → provision → status → roll → nothing.

One ARM emulator serves Microsoft.App and Microsoft.ContainerRegistry (one ``arm_endpoint``, as in
Azure); the build's context and run log go through real Azurite; shares through the Files emulator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from acr_fixtures import azurite_or_fail
from emulators.acr import AcrEmulator
from support import git

from orbit_ops.backends.azure import platform as azure_platform

Run = Callable[..., tuple[int, str, str]]
FLEET = 200


def writes(emulators: Any) -> list[Any]:
    return [r for server in (emulators.arm_server, emulators.files_server) for r in server.log
            if r.method in ("PUT", "PATCH", "POST", "DELETE")]


def test_build_provision_status_roll_and_nothing_left_to_do(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ARM's write bucket (10/s) would make 1,800 writes take minutes; pacing has its own test.
    monkeypatch.setattr(azure_platform, "DEFAULT_OPTIONS",
                        replace(emulators.fast, reads=(10_000, 10_000), writes=(10_000, 10_000)))
    azurite = azurite_or_fail(tmp_path / "azurite")
    settings = emulators.settings()
    acr = AcrEmulator(emulators.arm_server, azurite, subscription_id=settings.subscription_id,
                      resource_group=settings.resource_group, registry=settings.registry,
                      login_server=emulators.login_server, token=emulators.token)
    try:
        root = make_azure_workspace(FLEET)
        context = root / "apps" / "agent"
        (context / "agent").mkdir(parents=True)
        (context / "agent" / "__main__.py").write_text("print('agent 1.2.0')\n")
        dockerfile = 'FROM python:3.12-slim\nCOPY agent/ /srv/agent/\nCMD ["python", "-m", "agent"]\n'
        (context / "Dockerfile").write_text(dockerfile)
        (root / ".gitignore").write_text(".orbit/\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "agent 1.2.0")
        git(root, "tag", "-a", "agent/v1.2.0", "-m", "agent 1.2.0")

        # Build on the emulated ACR: the record carries the run's digest and the registry's login server.
        code, out, err = run_cli("-w", str(root), "build", "agent@1.2.0", "--json")
        assert code == 0, err
        built = json.loads(out)
        assert (built["status"], built["builder"]) == ("built", "acr")
        assert built["image"] == f"{emulators.login_server}/agent:1.2.0"
        assert built["digest"].startswith("sha256:") and built["run_id"]

        # Provision the fleet, then status reads it in pages, never one read per app.
        emulators.arm.page_size = 100
        code, out, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--json", "--concurrency", "16")
        assert code == 0, err
        assert json.loads(out)["writes"] == FLEET * 8
        emulators.clear_logs()
        code, out, err = run_cli("-w", str(root), "status", "--json")
        assert code == 0, err
        assert {row["sync"] for row in json.loads(out)} == {"synced"}
        app_lists = [r for r in emulators.arm_server.log if r.path.endswith("/containerApps")]
        assert len(app_lists) == math.ceil(3 * FLEET / 100)
        assert len(emulators.arm_server.log) == len(app_lists) + 1  # + one storage listing; no GET per app

        # Roll the new release to everyone: pins change, one update per agent app.
        code, out, err = run_cli("-w", str(root), "roll", "agent", "1.2.0", "--all", "--yes", "--json",
                                 "--concurrency", "16")
        assert code == 0, err
        rolled = json.loads(out)
        assert len(rolled["pins"]) == FLEET and rolled["writes"] == FLEET
        agent_images = {a["properties"]["template"]["containers"][0]["image"]
                        for name, a in emulators.arm.apps.items() if name.startswith("agent-")}
        assert agent_images == {f"{emulators.login_server}/agent:1.2.0"}

        # A second provision in a row writes nothing at all.
        emulators.clear_logs()
        code, out, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--json")
        assert code == 0, err
        assert json.loads(out)["writes"] == 0
        assert writes(emulators) == []
    finally:
        acr.close()
        azurite.stop()
