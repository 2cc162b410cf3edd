"""The Azure-emulated demo (decision 0018): its set-up, a build streaming from the emulated ACR run, status.

The launcher is what ``orbit demo --backend azure-emulated`` opens the console inside; these tests run
it without the console and drive the engine the way the console does.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from emulators.demo import MARKER, PAGE_SIZE, azure_emulated_demo

from orbit_ops.backends.azure.common import ACCOUNT_KEY_ENV, TOKEN_ENV
from orbit_ops.build.pipeline import plan_build, start_build
from orbit_ops.fleet.status import fleet_status
from orbit_ops.operations.events import LogLine, OperationFinished
from orbit_ops.workspace import Workspace

Run = Callable[..., tuple[int, str, str]]


async def collect(runner: Any, on_line: Callable[[str], None]) -> OperationFinished | None:
    finished = None
    async for event in runner.events():
        if isinstance(event, LogLine):
            on_line(event.text)
        elif isinstance(event, OperationFinished):
            finished = event
    return finished


def test_demo_build_streams_from_the_emulated_acr_run_and_status_reads_the_emulated_platform(
    tmp_path: Path,
) -> None:
    # Synchronous: the demo's set-up runs its own event loops, as the CLI does before the console opens.
    progress: list[str] = []
    with azure_emulated_demo(tmp_path / "demo", solutions=6, progress=progress.append) as demo:
        cloud = demo.cloud
        workspace = Workspace.open(demo.root)
        assert workspace.config.backend == "azure"
        assert workspace.config.azure is not None and workspace.config.azure.arm_endpoint == cloud.arm_server.url
        # The demo's releases were built by emulated ACR runs, and its records say so.
        assert {record.builder for records in workspace.records().values() for record in records} == {"acr"}
        assert len(cloud.acr.runs) == sum(len(records) for records in workspace.records().values())
        assert "demo workspace ready" in progress

        # orbit/v1.3.0 is tagged but not built: build it, holding the run before its third step until the
        # first step's line has reached the operation's event stream (streamed, not read at the end).
        held = cloud.acr.hold(3)
        seen_while_held: list[str] = []
        lines: list[str] = []
        status_while_held: list[str] = []

        def on_line(text: str) -> None:
            lines.append(text)
            if text.startswith("Step 1/") and not held.release.is_set():
                assert held.reached.wait(30), "the run never reached its third step"
                seen_while_held.extend(lines)
                status_while_held.extend(r.status for r in cloud.acr.runs.values() if r.thread and r.thread.is_alive())
                held.release.set()

        finished = asyncio.run(collect(start_build(workspace, plan_build(workspace, "orbit", "1.3.0")), on_line))
        (run,) = [r for r in cloud.acr.runs.values() if r.request["imageNames"][0] == "orbit:1.3.0"]
        assert status_while_held == ["Running"]
        assert finished is not None and finished.state == "succeeded", finished
        assert any(line.startswith("Step 1/") for line in seen_while_held)
        assert not any(line.startswith("Step 3/") for line in seen_while_held)
        assert [line for line in lines if line in run.log_lines] == run.log_lines  # every line, once, in order
        assert finished.result is not None
        assert finished.result["builder"] == "acr" and finished.result["run_id"] == run.run_id
        assert finished.result["digest"] == cloud.acr.registry["orbit"]["1.3.0"]

        # Status reads the emulated platform in pages: one listing per resource type, no GET per app.
        cloud.arm_server.emulator.clear_log()
        workspace.refresh()
        statuses, snapshot = asyncio.run(fleet_status(workspace))
        assert snapshot.error is None
        assert len(snapshot.apps) == len(cloud.arm.apps) > 0
        assert {status.sync for status in statuses} <= {"synced", "drifted", "missing"}
        assert "drifted" in {status.sync for status in statuses}  # the demo's out-of-band changes
        app_lists = cloud.arm_server.emulator.requests("GET", r"/containerApps$")
        assert len(app_lists) == math.ceil(len(cloud.arm.apps) / PAGE_SIZE)
        assert len(cloud.arm_server.emulator.log) == len(app_lists) + 1  # + the storages listing
        workspace.platform().close()
        made_up = (os.environ[TOKEN_ENV], os.environ[ACCOUNT_KEY_ENV])
        assert made_up[0] == cloud.arm.token
    # Everything stops with the demo, and the credentials it made up leave the environment.
    assert cloud.azurite.process.poll() is not None
    assert (demo.root / MARKER).is_file()
    assert (os.environ.get(TOKEN_ENV), os.environ.get(ACCOUNT_KEY_ENV)) != made_up
    # No token, account key or SAS reached the workspace: records, operation logs, state.
    sas = [query.split("sig=", 1)[1].split("&", 1)[0] for query in cloud.acr.issued_sas]
    for path in demo.root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            data = path.read_bytes()
            for secret in (*made_up, *sas):
                assert secret.encode() not in data, f"a secret leaked into {path}"


def test_cli_demo_on_the_emulators_runs_from_the_checkout(tmp_path: Path, run_cli: Run) -> None:
    code, out, err = run_cli("demo", "--backend", "azure-emulated", "--no-tui", "--solutions", "3",
                             str(tmp_path / "d"))
    assert code == 0, err
    assert out.strip() == str(tmp_path / "d")
    assert "emulators on 127.0.0.1" in err and "demo workspace ready" in err
    assert "backend: azure" in (tmp_path / "d" / "orbit.yaml").read_text()
    # A second run replaces the earlier demo: its emulated cloud ended with the first process.
    code, out, err = run_cli("demo", "--backend", "azure-emulated", "--no-tui", "--solutions", "3",
                             str(tmp_path / "d"))
    assert code == 0, err
    assert "replacing the earlier Azure-emulated demo" in err


def test_installed_package_without_a_checkout_refuses_the_emulated_demo(
    tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import orbit_cli.commands.console

    # As installed from a wheel: site-packages/orbit_cli/commands/console.py, no tests/ beside the package.
    monkeypatch.setattr(orbit_cli.commands.console, "__file__",
                        str(tmp_path / "site-packages" / "orbit_cli" / "commands" / "console.py"))
    code, _, err = run_cli("demo", "--backend", "azure-emulated", "--no-tui", str(tmp_path / "d"))
    assert code == 2
    assert "needs a source checkout" in err and "make demo-azure" in err
    assert not (tmp_path / "d").exists()
