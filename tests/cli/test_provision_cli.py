"""``orbit status``/``plan``/``provision``/``roll``/``rollback`` through the real entry point."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def root(demo_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    return copy


def test_status_json_shape_and_exit_code(root: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(root), "status", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 40
    row = rows[0]
    assert set(row) >= {"id", "sync", "freshness", "apps", "resources", "health", "health_reason"}
    assert set(row["apps"]) == {"orbit", "agent", "mc"}
    assert set(row["apps"]["agent"]) == {"pinned", "resolved", "live", "latest", "sync", "freshness",
                                         "health", "revision", "ready_revision", "health_reason"}  # SPEC §3.6
    assert set(row["resources"][0]) == {"kind", "name", "sync", "diff"}
    syncs = {r["sync"] for r in rows}
    assert {"synced", "drifted", "missing"} <= syncs
    assert {"current", "behind", "floating", "unreleased"} <= {r["freshness"] for r in rows}
    drifted = next(r for r in rows if r["sync"] == "drifted")
    assert any(res["diff"] for res in drifted["resources"] if res["sync"] == "drifted")
    code, _, _ = run_cli("-w", str(root), "status", "--exit-code")
    assert code == 3


def test_plan_writes_nothing_and_provision_converges(root: Path, run_cli: Run) -> None:
    code, out, _ = run_cli("-w", str(root), "plan", "--all", "--json")
    assert code == 0
    planned = json.loads(out)
    assert planned["writes"] == 0
    assert {s["state"] for s in planned["solutions"]} == {"planned", "skipped"}
    to_write = sum(1 for s in planned["solutions"] for a in s["actions"] if a["action"] != "none")
    assert to_write > 0
    code, out, _ = run_cli("-w", str(root), "plan", "--all", "--json")
    assert json.loads(out) == planned  # planning twice changed nothing

    code, out, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--json")
    assert code == 1, err  # the solution pinned to unreleased orbit 1.3.0 is refused
    result = json.loads(out)
    assert result["writes"] == to_write
    refused = [s for s in result["solutions"] if s["state"] == "skipped"]
    assert len(refused) == 1 and "orbit 1.3.0 has no release record" in refused[0]["error"]

    code, out, _ = run_cli("-w", str(root), "provision", "--all", "--yes", "--exclude", refused[0]["id"], "--json")
    assert code == 0
    assert json.loads(out)["writes"] == 0
    code, _, _ = run_cli("-w", str(root), "status", "--exit-code", "acme-corp", "globex")
    assert code == 0


def test_provision_asks_for_confirmation_without_a_terminal(root: Path, run_cli: Run) -> None:
    code, _, err = run_cli("-w", str(root), "provision", "--all")
    assert code == 2
    assert "pass --yes" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["provision", "nope-inc", "--yes"], "unknown solution 'nope-inc'"),
        (["provision", "--all", "--concurrency", "0", "--yes"], "--concurrency must be at least 1"),
        (["provision", "--yes"], "name solution IDS or --all"),
        (["provision", "--all", "--only", "zzz*", "--yes"], "no solutions selected"),
        (["plan", "Bad_Id"], "invalid solution id"),
        (["roll", "agent", "9.9.9", "acme-corp", "--yes"], "no release record"),
        (["roll", "agent", "2.2.0", "--all", "--yes"], "no release record"),
        (["roll", "web", "1.0.0", "--all", "--yes"], "not an app component"),
        (["roll", "agent", "v2.1.0", "--all", "--yes"], "drop the leading 'v'"),
        (["--read-only", "provision", "--all", "--yes"], "--read-only"),
        (["provision", "cyberdyne", "--yes"], "orbit 1.3.0 has no release record"),
    ],
)
def test_provision_and_roll_bad_input_exit_2(root: Path, run_cli: Run, args: list[str], message: str) -> None:
    before = {p.name: p.read_bytes() for p in (root / "solutions").iterdir()}
    code, _, err = run_cli("-w", str(root), *args)
    assert code == 2, err
    assert message in err
    assert {p.name: p.read_bytes() for p in (root / "solutions").iterdir()} == before


def test_failed_from_retries_only_failures(root: Path, run_cli: Run) -> None:
    from filelock import FileLock

    from orbit_ops.operations.locks import lock_path

    # Another operation holds globex: with --no-wait it fails at once, the sweep goes on.
    with FileLock(str(lock_path(root / ".orbit", "solution-globex"))):
        code, out, _ = run_cli("-w", str(root), "provision", "--all", "--yes", "--no-wait", "--json")
    assert code == 1
    states = {s["id"]: s["state"] for s in json.loads(out)["solutions"]}
    assert states["globex"] == "failed"
    assert list(states.values()).count("failed") == 1
    sweep_id = json.loads(run_cli("-w", str(root), "ops", "--json")[1])[0]["id"]
    code, out, err = run_cli("-w", str(root), "provision", "--failed-from", sweep_id, "--yes", "--json")
    assert code == 0, err
    retried = json.loads(out)["solutions"]
    assert [s["id"] for s in retried] == ["globex"] and retried[0]["state"] == "succeeded"


def test_roll_keeps_comments_provisions_and_rolls_back(root: Path, run_cli: Run) -> None:
    path = root / "solutions" / "acme-corp.yaml"
    original = path.read_text()
    assert original.startswith("# Acme Corp: managed by the platform team")
    code, out, err = run_cli("-w", str(root), "roll", "agent", "2.1.0", "acme-corp", "globex", "--yes", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert [(p["id"], p["from"], p["to"]) for p in result["pins"]] == [("acme-corp", "2.0.0", "2.1.0"),
                                                                      ("globex", "2.0.0", "2.1.0")]
    rolled = path.read_text()
    assert rolled.startswith("# Acme Corp: managed by the platform team")
    assert 'agent_tag: "2.1.0"' in rolled
    assert rolled.count("#") == original.count("#")
    states = {s["id"]: s["state"] for s in result["solutions"]}
    assert states == {"acme-corp": "succeeded", "globex": "succeeded"}
    status = json.loads(run_cli("-w", str(root), "status", "acme-corp", "--json")[1])[0]
    assert status["apps"]["agent"]["live"] == "2.1.0" and status["apps"]["agent"]["sync"] == "synced"

    code, out, err = run_cli("-w", str(root), "rollback", "acme-corp", "agent", "--yes", "--json")
    assert code == 0, err
    back = json.loads(out)
    assert back["pins"] == [{"id": "acme-corp", "component": "agent", "from": "2.1.0", "to": "2.0.0"}]
    status = json.loads(run_cli("-w", str(root), "status", "acme-corp", "--json")[1])[0]
    assert status["apps"]["agent"]["pinned"] == "2.0.0" and status["apps"]["agent"]["live"] == "2.0.0"
    code, _, err = run_cli("-w", str(root), "rollback", "initech", "agent", "--yes")
    assert code == 2 and "nothing to roll back to" in err


def test_rolling_a_floating_pin_says_so_and_leaves_no_false_comment(root: Path, run_cli: Run) -> None:
    path = root / "solutions" / "bluth-company.yaml"
    original = path.read_text()
    assert '  agent_tag: "latest"  # floating: follows every release\n' in original
    code, out, err = run_cli("-w", str(root), "roll", "agent", "2.0.0", "bluth-company", "--yes", "--no-provision")
    assert code == 0, err
    assert "bluth-company: agent latest (=2.1.0) → 2.0.0 (was floating; it will stay on 2.0.0)" in out
    rolled = path.read_text()
    assert rolled == original.replace('  agent_tag: "latest"  # floating: follows every release\n',
                                      '  agent_tag: "2.0.0"  # was latest (floating) until orbit pinned 2.0.0\n')

    code, out, err = run_cli("-w", str(root), "rollback", "bluth-company", "agent", "--yes", "--no-provision")
    assert code == 0, err
    assert "bluth-company: agent 2.0.0 → latest (=2.1.0; it will float on each newer release)" in out
    assert path.read_text() == original.replace(
        "# floating: follows every release", "# floats on the newest release (was 2.0.0 until orbit set latest)")


def test_roll_no_provision_only_edits_pins(root: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(root), "roll", "mc", "1.2.0", "acme-corp", "--yes", "--no-provision", "--json")
    assert code == 0, err
    assert json.loads(out)["writes"] == 0
    status = json.loads(run_cli("-w", str(root), "status", "acme-corp", "--json")[1])[0]
    assert status["apps"]["mc"]["pinned"] == "1.2.0"


def test_roll_refuses_a_file_edited_since_it_was_read(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from orbit_ops.config.load import find_solution
    from orbit_ops.fleet.entries import start_roll
    from orbit_ops.fleet.roll import plan_roll
    from orbit_ops.operations.events import OperationFinished
    from orbit_ops.workspace import Workspace

    workspace = Workspace.open(root)
    spec = find_solution(workspace.config, "initech")
    roll_plan = plan_roll(workspace, "agent", "2.1.0", [spec])
    edited = spec.path.read_text() + "# an operator's edit made while the roll was being confirmed\n"
    spec.path.write_text(edited)

    async def run() -> OperationFinished:
        events = [e async for e in start_roll(workspace, roll_plan).events()]
        assert isinstance(events[-1], OperationFinished)
        return events[-1]

    finished = asyncio.run(run())
    assert finished.result is not None
    assert finished.result["pins"] == []
    assert "changed" in finished.result["refused"][0]["error"]
    assert spec.path.read_text() == edited  # nothing lost
