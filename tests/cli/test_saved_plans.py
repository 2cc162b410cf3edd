"""Saved plans (SPEC §3.7): ``orbit plan --out FILE`` then ``orbit apply FILE`` applies exactly what was reviewed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., tuple[int, str, str]]
SECRET = "Xy7kq-plan-Sekrit-42"


@pytest.fixture
def root(demo_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    return copy


def plan_json(run_cli: Run, root: Path, *ids: str) -> dict[str, object]:
    code, out, err = run_cli("-w", str(root), "plan", *ids, "--json")
    assert code == 0, err
    body: dict[str, object] = json.loads(out)
    return body


def operations(run_cli: Run, root: Path) -> int:
    return len(json.loads(run_cli("-w", str(root), "ops", "--json")[1]))


def changes(plan: dict[str, object]) -> list[tuple[str, str, str]]:
    solutions = plan["solutions"]
    assert isinstance(solutions, list)
    return [(s["id"], a["name"], a["action"]) for s in solutions for a in s["actions"] if a["action"] != "none"]


def test_an_unchanged_plan_applies_exactly_its_changes(root: Path, run_cli: Run, tmp_path: Path) -> None:
    saved = tmp_path / "two.plan"
    code, out, err = run_cli("-w", str(root), "plan", "hooli", "weyland-yutani", "--out", str(saved))
    assert code == 0, err
    assert f"plan saved to {saved}" in out + err
    planned = changes(plan_json(run_cli, root, "hooli", "weyland-yutani"))
    assert planned

    code, out, err = run_cli("-w", str(root), "apply", str(saved), "--json")
    assert code == 0, err
    result = json.loads(out)
    applied = [(s["id"], a["name"], a["action"]) for s in result["solutions"] for a in s["actions"]
               if a["action"] != "none"]
    assert applied == planned and result["writes"] == len(planned)
    assert changes(plan_json(run_cli, root, "hooli", "weyland-yutani")) == []  # converged


def test_a_plan_whose_pins_changed_is_refused_naming_them_and_writes_nothing(
    root: Path, run_cli: Run, tmp_path: Path,
) -> None:
    saved = tmp_path / "p.plan"
    assert run_cli("-w", str(root), "plan", "hooli", "weyland-yutani", "--out", str(saved))[0] == 0
    before, ops_before = plan_json(run_cli, root, "hooli", "weyland-yutani"), operations(run_cli, root)
    path = root / "solutions" / "weyland-yutani.yaml"
    text = path.read_text()
    path.write_text(text.replace('mc_tag: "1.0.1"', 'mc_tag: "1.1.0"'))
    code, out, err = run_cli("-w", str(root), "apply", str(saved))
    assert code == 2
    assert "nothing was written" in err and "weyland-yutani: pins changed since the plan: mc_tag 1.0.1 → 1.1.0" in err
    assert "hooli" not in err  # only what changed is named
    assert "Traceback" not in out + err
    assert operations(run_cli, root) == ops_before
    path.write_text(text)
    assert plan_json(run_cli, root, "hooli", "weyland-yutani") == before


def test_a_plan_whose_live_state_changed_is_refused_naming_the_resources(
    root: Path, run_cli: Run, tmp_path: Path,
) -> None:
    saved = tmp_path / "p.plan"
    assert run_cli("-w", str(root), "plan", "hooli", "weyland-yutani", "--out", str(saved))[0] == 0
    assert run_cli("-w", str(root), "provision", "weyland-yutani", "--yes")[0] == 0  # someone else converged it
    code, _, err = run_cli("-w", str(root), "apply", str(saved))
    assert code == 2
    assert "weyland-yutani: app orbit-" in err and "appeared on the platform since the plan" in err
    assert "hooli" not in err.split("nothing was written")[1]


def test_a_plan_file_keeps_no_secret_value(root: Path, run_cli: Run, tmp_path: Path) -> None:
    path = root / "solutions" / "acme-corp.yaml"
    path.write_text(path.read_text().replace("env:\n  orbit:\n", f'env:\n  orbit:\n    API_TOKEN: "{SECRET}"\n', 1))
    saved = tmp_path / "p.plan"
    code, out, err = run_cli("-w", str(root), "plan", "acme-corp", "--out", str(saved))
    assert code == 0, err
    assert SECRET not in saved.read_text() and SECRET not in out + err
    assert saved.stat().st_mode & 0o077 == 0
    assert run_cli("-w", str(root), "apply", str(saved))[0] == 0


@pytest.mark.parametrize(("content", "says"), [
    ("not json", "not an Orbit plan (not JSON"),
    ('{"format": "terraform"}', "not an Orbit plan (no \"format\": \"orbit-plan\")"),
    ('{"format": "orbit-plan", "version": 9}', "plan format version 9"),
    ('{"format": "orbit-plan", "version": 1, "workspace": "/elsewhere", "backend": "local", "solutions": []}',
     "made for workspace /elsewhere"),
])
def test_a_file_that_is_not_a_plan_of_this_workspace_exits_2(
    root: Path, run_cli: Run, tmp_path: Path, content: str, says: str,
) -> None:
    saved = tmp_path / "bad.plan"
    saved.write_text(content)
    code, out, err = run_cli("-w", str(root), "apply", str(saved))
    assert code == 2 and says in err and "Traceback" not in out + err
    code, _, err = run_cli("-w", str(root), "apply", str(tmp_path / "missing.plan"))
    assert code == 2 and "cannot read the plan" in err
