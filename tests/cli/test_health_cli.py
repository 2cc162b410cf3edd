"""``orbit status`` shows health (SPEC §3.6): a release requiring a variable only some solutions set."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from support import git

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def root(demo_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    return copy


def release_requiring(root: Path, run_cli: Run, variable: str, version: str) -> None:
    """Tag and build an agent release whose image declares ``variable`` required (a Dockerfile LABEL)."""
    dockerfile = root / "apps/agent/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + f'LABEL org.orbit.env.required="{variable}"\n')
    git(root, "commit", "-qam", f"agent requires {variable}")
    git(root, "tag", f"agent/v{version}")
    code, _, err = run_cli("-w", str(root), "build", f"agent@{version}", "--json")
    assert code == 0, err


def test_status_json_names_the_solution_lacking_a_required_variable(root: Path, run_cli: Run) -> None:
    release_requiring(root, run_cli, "SERIAL", "3.0.0")
    solution = root / "solutions/acme-corp.yaml"
    text = solution.read_text()
    solution.write_text(text.replace("    LOG_LEVEL: debug\n", '    LOG_LEVEL: debug\n    SERIAL: "7"\n'))
    code, _, err = run_cli("-w", str(root), "roll", "agent", "3.0.0", "acme-corp", "globex", "--yes")
    assert code == 0, err  # the writes succeeded; whether the new revisions run is health's to say

    code, out, err = run_cli("-w", str(root), "status", "acme-corp", "globex", "--json")
    assert code == 0, err
    rows = {row["id"]: row for row in json.loads(out)}
    healthy, degraded = rows["acme-corp"], rows["globex"]
    assert (healthy["health"], healthy["health_reason"]) == ("healthy", None)
    assert healthy["apps"]["agent"]["revision"] == healthy["apps"]["agent"]["ready_revision"] is not None
    assert degraded["sync"] == "synced" and degraded["health"] == "degraded"  # synced is not healthy
    reason = degraded["health_reason"]
    assert reason.startswith("agent: provisioning failed:") and "SERIAL" in reason
    agent = degraded["apps"]["agent"]
    assert agent["health"] == "degraded" and "SERIAL" in agent["health_reason"]
    assert agent["revision"] != agent["ready_revision"]  # the revision before it still serves
    assert {rows[i]["apps"][c]["health"] for i in rows for c in ("orbit", "mc")} == {"healthy"}

    code, out, _ = run_cli("-w", str(root), "status", "globex")
    assert code == 0
    header, line = out.splitlines()[:2]
    assert header.lower().split()[:4] == ["id", "sync", "freshness", "health"]
    cells = line.split()
    assert (cells[0], cells[1], cells[3]) == ("globex", "synced", "degraded") and "SERIAL" in line
    code, _, _ = run_cli("-w", str(root), "status", "--exit-code", "globex")
    assert code == 0  # --exit-code is about drift, as before: health has `orbit wait`
