"""Health after a roll (SPEC §3.6): a release requiring a variable only some solutions set fails exactly those.

Provisioning follows each new revision until it is healthy or degraded, so the roll itself names them (exit 1);
``orbit status`` shows the same.
"""

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
    assert code == 1  # the writes succeeded, but globex's new agent revision does not run: provisioning says so
    assert "globex: failed: agent: provisioning failed:" in err and "SERIAL" in err and "acme-corp" not in err

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


def test_rolling_the_env_requiring_release_fails_exactly_the_solutions_lacking_it(root: Path, run_cli: Run) -> None:
    from orbit_ops.demo_apps import ENV_REQUIRING_RELEASE, MC_URL
    from orbit_ops.workspace import Workspace

    component, version = ENV_REQUIRING_RELEASE
    lacking = {spec.id for spec in Workspace.open(str(root)).solutions() if MC_URL not in spec.env.get(component, {})}
    code, out, err = run_cli("-w", str(root), "roll", component, version, "--all", "--yes", "--json")
    assert code == 1, err
    result = json.loads(out)
    rows = {row["id"]: row for row in result["solutions"]}
    assert lacking and {i for i, row in rows.items() if row["state"] == "failed"} == lacking
    for solution_id in lacking:
        row = rows[solution_id]
        assert row["health"] == "degraded" and MC_URL in row["error"] and MC_URL in row["health_reason"]
        assert row["error"].startswith(f"{component}: provisioning failed:")
    assert {(row["state"], row["health"], row["health_reason"]) for i, row in rows.items() if i not in lacking} == {
        ("succeeded", "healthy", None)}

    code, out, err = run_cli("-w", str(root), "status", "--json")
    assert code == 0, err
    status = {row["id"]: row for row in json.loads(out)}
    assert {i for i, row in status.items() if row["health"] == "degraded"} == lacking
    assert {row["health"] for i, row in status.items() if i not in lacking} == {"healthy"}
    assert all(status[i]["health_reason"] == rows[i]["health_reason"] for i in rows)


def test_the_roll_log_shows_each_new_revision_settle(root: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(root), "roll", "orbit", "1.3.0-rc.1", "globex", "gringotts", "--yes")
    assert code == 1 and "gringotts: failed: orbit: provisioning failed:" in err and "MC_URL" in err
    assert "globex" not in err
    lines = out.splitlines()
    assert any("[globex] following the new revision of orbit-" in line and "(up to 300 s)" in line for line in lines)
    assert any("[globex] revision orbit-" in line and line.endswith(": healthy") for line in lines)
    assert any("[gringotts] revision orbit-" in line and ": degraded: provisioning failed:" in line for line in lines)
    assert lines[-1].startswith("1 converged, 1 not; 2 write(s); health: 1 degraded, 1 healthy; operation ")


def test_a_health_timeout_that_is_not_a_number_of_seconds_exits_2(root: Path, run_cli: Run) -> None:
    for value in ("-1", "soon", "nan"):
        code, out, err = run_cli("-w", str(root), "provision", "globex", "--yes", "--health-timeout", value)
        assert code == 2 and "--health-timeout" in err and out == ""
    code, _, err = run_cli("-w", str(root), "rollback", "globex", "orbit", "--health-timeout", "-5")
    assert code == 2 and "--health-timeout" in err
