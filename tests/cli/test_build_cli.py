"""``orbit build``/``ops``/``logs``/``cancel`` through the real entry point, across processes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import BlockingBuilder, git

from orbit_ops.build.pipeline import plan_build, start_build
from orbit_ops.workspace import Workspace

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def root(demo_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    return copy


def test_build_json_then_already_released(root: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(root), "build", "mc@1.3.0", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "built"
    assert set(result) >= {"component", "version", "tag", "commit", "image", "digest", "registry", "run_id",
                           "built_at", "builder"}
    assert result["commit"] == git(root, "rev-parse", "mc/v1.3.0^{commit}")
    code, out, _ = run_cli("-w", str(root), "build", "mc", "--json")
    assert code == 0
    again = json.loads(out)
    assert again["status"] == "already-released" and again["digest"] == result["digest"]
    code, out, _ = run_cli("-w", str(root), "build", "mc")
    assert "already released" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "all"], "no 'orbit build all'"),
        (["build", "agent@two"], "not a version"),
        (["build", "agent@1.5.0"], "nearest"),
        (["build", "nope"], "unknown component"),
        (["build"], "name one COMPONENT"),
        (["build", "--platform", "1999"], "platform versions: 2026.11"),
        (["--read-only", "build", "mc"], "--read-only"),
    ],
)
def test_build_bad_input_exits_2(root: Path, run_cli: Run, args: list[str], message: str) -> None:
    code, _, err = run_cli("-w", str(root), *args)
    assert code == 2, err
    assert message in err
    assert not (root / ".orbit/worktrees").exists() or not any((root / ".orbit/worktrees").iterdir())


def test_ops_lists_builds_with_spec_keys(root: Path, run_cli: Run) -> None:
    run_cli("-w", str(root), "build", "mc@1.3.0")
    code, out, _ = run_cli("-w", str(root), "ops", "--json")
    assert code == 0
    ops = json.loads(out)
    assert set(ops[0]) >= {"id", "kind", "target", "state", "progress", "created_at", "finished_at"}
    assert (ops[0]["kind"], ops[0]["target"], ops[0]["state"]) == ("build", "mc@1.3.0", "succeeded")
    # A prefix names an operation when no other id starts with it (ids begin with the second they were
    # made in, and other builds of this workspace may share that second).
    others = [op["id"] for op in ops[1:]]
    prefix = next(ops[0]["id"][:n] for n in range(15, len(ops[0]["id"]) + 1)
                  if not any(other.startswith(ops[0]["id"][:n]) for other in others))
    code, out, _ = run_cli("-w", str(root), "logs", prefix)
    assert code == 0 and "tagged oci:.orbit/registry/mc:1.3.0" in out


def test_verify_reports_a_forced_rebuild_that_made_another_image(root: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(root), "releases", "agent", "--verify")
    assert code == 0, err
    code, _, err = run_cli("-w", str(root), "build", "agent@2.1.0", "--force")
    assert code == 0, err
    code, out, _ = run_cli("-w", str(root), "releases", "agent", "--json")
    first, second = [record for record in json.loads(out) if record["version"] == "2.1.0"]
    assert first["digest"] != second["digest"]  # the local builder stamps the build time into the image
    code, _, err = run_cli("-w", str(root), "releases", "agent", "--verify")
    assert code == 1
    assert f"agent/v2.1.0: 2 different digests in 2 records: {first['digest'][:19]} (built {first['built_at']}), " \
           f"{second['digest'][:19]} (built {second['built_at']}, current: the newest record); " \
           "the registry holds the current one" in err


def _orbit(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orbit_cli.main", "-w", str(root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def test_logs_follow_in_another_process_streams_a_running_build(root: Path) -> None:
    workspace = Workspace.open(root)

    async def scenario() -> tuple[str, Any]:
        builder = BlockingBuilder(workspace.config.state_dir, "builder: holding the build open")
        runner = start_build(workspace, plan_build(workspace, "mc", "1.3.0"), builder)

        async def drain() -> None:
            async for _ in runner.events():
                pass

        producer = asyncio.create_task(drain())
        await asyncio.wait_for(builder.entered.wait(), 10)
        follower = _orbit(root, "logs", runner.op_id, "--follow")
        assert follower.stdout is not None
        # The follower has shown the running build's line before the build is allowed to finish.
        line = await asyncio.wait_for(asyncio.to_thread(_read_until, follower.stdout, "holding the build open"), 20)
        assert "holding the build open" in line
        builder.release.set()
        await producer
        out, _ = await asyncio.to_thread(follower.communicate, timeout=20)
        return out, follower.returncode

    out, code = asyncio.run(scenario())
    assert code == 0
    assert "tagged oci:.orbit/registry/mc:1.3.0" in out
    assert "succeeded" in out


def test_cancel_from_another_process_stops_the_build_and_cleans_up(root: Path) -> None:
    workspace = Workspace.open(root)

    async def scenario() -> str:
        builder = BlockingBuilder(workspace.config.state_dir, "builder: holding the build open")
        runner = start_build(workspace, plan_build(workspace, "mc", "1.3.0"), builder)
        states: list[Any] = []

        async def drain() -> None:
            async for event in runner.events():
                states.append(event)

        producer = asyncio.create_task(drain())
        await asyncio.wait_for(builder.entered.wait(), 10)
        canceller = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "orbit_cli.main", "-w",
                                                             str(root), "cancel", runner.op_id],
                                            capture_output=True, text=True)
        assert canceller.returncode == 0, canceller.stderr
        await asyncio.wait_for(producer, 20)
        return str(states[-1].state)

    assert asyncio.run(scenario()) == "cancelled"
    assert len([line for line in git(root, "worktree", "list").splitlines() if line]) == 1
    code = subprocess.run([sys.executable, "-m", "orbit_cli.main", "-w", str(root), "releases", "mc", "--json"],
                          capture_output=True, text=True, check=True)
    assert [r["version"] for r in json.loads(code.stdout)][-1] == "1.2.0"


def _read_until(stream: Any, needle: str) -> str:
    for line in stream:
        if needle in line:
            return str(line)
    return ""
