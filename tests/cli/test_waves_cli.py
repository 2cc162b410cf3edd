"""``orbit roll … --waves`` on the local backend (SPEC §3.7): halt, roll back, resume, refuse what would surprise.

The demo's env-requiring release (orbit 1.3.0-rc.1 needs MC_URL, which every fourth solution lacks) really fails
for those solutions on the embedded backend, so these rolls halt for real reasons.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orbit_ops.demo_apps import MC_URL

Run = Callable[..., tuple[int, str, str]]
RC = "1.3.0-rc.1"


@pytest.fixture
def root(demo_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    return copy


def files(root: Path) -> dict[str, str]:
    return {path.stem: path.read_text() for path in sorted((root / "solutions").glob("*.yaml"))}


def lacking(root: Path) -> set[str]:
    return {solution_id for solution_id, text in files(root).items() if MC_URL not in text}


def live_orbit(run_cli: Run, root: Path) -> dict[str, Any]:
    code, out, err = run_cli("-w", str(root), "status", "--json")
    assert code in (0, 1), err
    return {row["id"]: (row["apps"]["orbit"]["live"], row["apps"]["orbit"]["health"]) for row in json.loads(out)
            if row.get("apps")}


def pins(run_cli: Run, root: Path) -> dict[str, dict[str, str]]:
    return {row["id"]: row["images"] for row in json.loads(run_cli("-w", str(root), "solutions", "--json")[1])}


def result_op(run_cli: Run, root: Path) -> str:
    return str(json.loads(run_cli("-w", str(root), "ops", "--json")[1])[0]["id"])


def roll(run_cli: Run, root: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli("-w", str(root), "roll", "orbit", RC, "--all", *args, "--yes", "--json")
    return code, json.loads(out) if out.strip() else {}, err


def test_a_failing_wave_halts_the_roll_and_later_waves_are_left_as_they_were(root: Path, run_cli: Run) -> None:
    before_files, before_live = files(root), live_orbit(run_cli, root)
    code, result, err = roll(run_cli, root, "--waves", "1,25%,*", "--soak", "0", "--on-failure", "halt")
    assert code == 1, err
    waves = result["waves"]
    assert [(w["index"], w["selector"], w["state"]) for w in waves] == [
        (1, "1", "succeeded"), (2, "25%", "failed"), (3, "*", "skipped")]
    assert waves[0]["solutions"] == ["acme-corp"]  # the canary: the label order puts ring=canary first
    assert result["halted_at"] == 2 and result["rolled_back"] == []
    assert waves[1]["failed"] == sorted(lacking(root) & set(waves[1]["solutions"])) != []
    after_files, after_live = files(root), live_orbit(run_cli, root)
    for solution_id in waves[2]["solutions"]:  # no pin written, nothing provisioned
        assert after_files[solution_id] == before_files[solution_id]
        assert after_live[solution_id] == before_live[solution_id]
    for solution_id in waves[1]["failed"]:
        assert after_live[solution_id] == (RC, "degraded")
    states = {s["id"]: s for s in result["solutions"]}
    assert all(states[i]["state"] == "skipped" and "wave 2 failed" in states[i]["error"] for i in waves[2]["solutions"])
    assert all(MC_URL in states[i]["error"] for i in waves[1]["failed"])
    # the preflight the confirmation showed is in the result too, as `orbit plan --json` has it
    assert {entry["id"] for entry in result["preflight"]} == lacking(root)
    assert all(entry["lacking"][0]["missing"] == [MC_URL] for entry in result["preflight"])
    assert result["preflight_warnings"] == []


def test_a_roll_at_once_carries_its_preflight_in_its_json(root: Path, run_cli: Run) -> None:
    one = sorted(lacking(root))[0]
    code, out, err = run_cli("-w", str(root), "roll", "orbit", RC, one, "--no-provision", "--yes", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["preflight"] == [{"id": one, "lacking": [
        {"component": "orbit", "image": result["preflight"][0]["lacking"][0]["image"], "missing": [MC_URL]}]}]
    assert result["preflight_warnings"] == []


def test_cancel_after_wave_is_refused_for_a_roll_not_in_waves(root: Path, run_cli: Run) -> None:
    run_cli("-w", str(root), "roll", "orbit", RC, "acme-corp", "--no-provision", "--yes")
    code, _, err = run_cli("-w", str(root), "cancel", result_op(run_cli, root), "--after-wave")
    assert code == 2 and "is not a roll in waves" in err


def test_rollback_pins_the_failed_wave_back_where_each_was(root: Path, run_cli: Run) -> None:
    before_pins, before_live = pins(run_cli, root), live_orbit(run_cli, root)
    code, result, err = roll(run_cli, root, "--waves", "ring=canary,ring=early,*", "--on-failure", "rollback")
    assert code == 1, err
    early = result["waves"][1]
    assert (early["selector"], early["state"], result["halted_at"]) == ("ring=early", "failed", 2)
    assert result["rolled_back"] == sorted(early["solutions"])
    after_pins, after_live = pins(run_cli, root), live_orbit(run_cli, root)
    for solution_id in early["solutions"] + result["waves"][2]["solutions"]:
        # the pin is back (an inherited one comes back written out, at the same version)
        assert after_pins[solution_id] == before_pins[solution_id]
        assert after_live[solution_id][0] == before_live[solution_id][0]
    assert after_live["acme-corp"] == (RC, "healthy")  # the canary's wave succeeded and stays


def test_resume_after_the_fix_finishes_the_remaining_waves_and_never_redoes_one(root: Path, run_cli: Run) -> None:
    code, first, _ = roll(run_cli, root, "--waves", "1,25%,*")
    assert code == 1 and first["halted_at"] == 2
    op_id = result_op(run_cli, root)
    for solution_id in lacking(root):  # the operator's fix: give every solution the variable the release needs
        path = root / "solutions" / f"{solution_id}.yaml"
        url = f'    {MC_URL}: "https://{solution_id}.mc.example.com"\n'
        path.write_text(path.read_text().replace("  orbit:\n", "  orbit:\n" + url, 1))
    code, out, err = run_cli("-w", str(root), "roll", "--resume", op_id, "--yes", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["resumed_from"] == op_id and result["halted_at"] is None
    assert [(w["state"], w.get("earlier")) for w in result["waves"]] == [
        ("succeeded", op_id), ("succeeded", None), ("succeeded", None)]
    assert "acme-corp" not in {s["id"] for s in result["solutions"]}  # wave 1 was not rolled again
    assert set(live_orbit(run_cli, root).values()) == {(RC, "healthy")}
    code, _, err = run_cli("-w", str(root), "roll", "--resume", op_id, "--yes")  # once resumed, it is done with
    assert code == 2 and f"was resumed by operation {result_op(run_cli, root)}" in err


@pytest.mark.parametrize(("args", "says"), [
    (["--waves", "1,10%"], "leaves 35 of 40 selected solution(s) in no wave"),
    (["--waves", "ring=canery,*"], "selects no solution: none left has ring=canery"),
    (["--waves", "1,*", "--no-provision"], "cannot go with --no-provision"),
    (["--waves", "1,*", "--soak", "soon"], "--soak 'soon' is not a duration"),
    (["--waves", "1,*", "--max-unhealthy", "-1"], "--max-unhealthy must be 0 or more"),
])
def test_a_layout_or_setting_that_would_surprise_exits_2_and_writes_nothing(
    root: Path, run_cli: Run, args: list[str], says: str,
) -> None:
    before = files(root)
    code, out, err = run_cli("-w", str(root), "roll", "orbit", RC, "--all", *args, "--yes")
    assert code == 2 and says in err and "Traceback" not in out + err
    assert files(root) == before
    assert all(op["kind"] != "roll" for op in json.loads(run_cli("-w", str(root), "ops", "--json")[1]))


def test_resume_refuses_what_it_cannot_continue(root: Path, run_cli: Run) -> None:
    code, _, err = run_cli("-w", str(root), "roll", "orbit", RC, "acme-corp", "--yes")  # a roll without waves
    assert code == 0, err
    op_id = json.loads(run_cli("-w", str(root), "ops", "--json")[1])[0]["id"]
    code, _, err = run_cli("-w", str(root), "roll", "--resume", op_id, "--yes")
    assert code == 2 and "is not a roll in waves" in err
    code, _, err = run_cli("-w", str(root), "roll", "orbit", RC, "--resume", op_id, "--yes")
    assert code == 2 and "--resume OP_ID takes no COMPONENT" in err
    code, _, err = run_cli("-w", str(root), "roll", "--resume", "nope", "--yes")
    assert code == 2 and "Traceback" not in err
