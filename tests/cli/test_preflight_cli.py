"""A plan names, before anything is written, every solution whose env lacks a variable its new image requires.

The demo's ``orbit 1.3.0-rc.1`` declares ``MC_URL`` required (its Dockerfile's ``org.orbit.env.required``
label); every fourth demo solution does not set it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., tuple[int, str, str]]
RC = "1.3.0-rc.1"
HEADING = "preflight: {} solution(s) lack a variable their new image requires"


@pytest.fixture
def root(demo_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    return copy


def lacking_mc_url(root: Path) -> list[str]:
    return sorted(path.stem for path in (root / "solutions").glob("*.yaml") if "MC_URL" not in path.read_text())


def pair(root: Path) -> tuple[str, str]:
    """One solution lacking MC_URL and one setting it."""
    lacking = lacking_mc_url(root)
    setting = sorted(p.stem for p in (root / "solutions").glob("*.yaml") if p.stem not in lacking)
    return lacking[0], setting[0]


def test_roll_confirmation_names_exactly_the_solutions_lacking_the_variable(root: Path, run_cli: Run) -> None:
    before = {path.name: path.read_text() for path in (root / "solutions").glob("*.yaml")}
    lacking = lacking_mc_url(root)
    assert len(lacking) == 10  # every fourth of the demo's 40

    code, out, err = run_cli("-w", str(root), "roll", "orbit", RC, "--all")  # no terminal to confirm on

    assert code == 2 and "needs confirmation" in err
    lines = out.splitlines()
    start = lines.index(HEADING.format(len(lacking)))
    named = lines[start + 1:start + 1 + len(lacking)]
    assert named == [f"  {solution}: orbit {RC} requires MC_URL, not set" for solution in lacking]
    assert not any(line.startswith("preflight: warning") for line in lines)
    assert {path.name: path.read_text() for path in (root / "solutions").glob("*.yaml")} == before  # nothing written


def test_plan_names_the_solution_then_provisioning_degrades_exactly_it(root: Path, run_cli: Run) -> None:
    lacking, setting = pair(root)
    code, _, err = run_cli("-w", str(root), "roll", "orbit", RC, lacking, setting, "--no-provision", "--yes")
    assert code == 0, err

    code, out, err = run_cli("-w", str(root), "plan", lacking, setting)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    start = lines.index(HEADING.format(1))
    assert lines[start + 1] == f"  {lacking}: orbit {RC} requires MC_URL, not set"
    assert lines[-1].startswith("plan: 2 solution(s)")  # the totals line stays last

    code, out, err = run_cli("-w", str(root), "plan", lacking, setting, "--json")
    assert code == 0, err
    body = json.loads(out)
    preflight = {solution["id"]: solution["preflight"] for solution in body["solutions"]}
    assert preflight == {lacking: [{"component": "orbit", "image": f"oci:.orbit/registry/orbit:{RC}",
                                    "missing": ["MC_URL"]}], setting: []}
    assert body["preflight_warnings"] == []

    code, out, err = run_cli("-w", str(root), "provision", lacking, setting)  # asked first: no terminal here
    assert code == 2 and "needs confirmation" in err
    assert f"{HEADING.format(1)}\n  {lacking}: orbit {RC} requires MC_URL, not set\n" in out
    run_cli("-w", str(root), "provision", lacking, setting, "--yes")  # its exit code is the sweep's to decide
    code, out, err = run_cli("-w", str(root), "status", lacking, setting, "--json")
    health = {row["id"]: row["health"] for row in json.loads(out)}
    assert health == {lacking: "degraded", setting: "healthy"}  # the plan named the one that did not run
    code, out, _ = run_cli("-w", str(root), "plan", lacking, setting)
    assert "preflight" not in out  # nothing left to write: no new revision to preflight


def test_an_unreadable_image_config_is_one_warning_and_the_plan_goes_on(root: Path, run_cli: Run) -> None:
    lacking, setting = pair(root)
    code, _, err = run_cli("-w", str(root), "roll", "orbit", RC, lacking, setting, "--no-provision", "--yes")
    assert code == 0, err
    index = root / ".orbit/registry/orbit/index.json"
    index.rename(index.with_suffix(".gone"))  # the registry no longer holds any orbit image

    code, out, err = run_cli("-w", str(root), "plan", lacking, setting)

    assert (code, err) == (0, "")
    warnings = [line for line in out.splitlines() if line.startswith("preflight")]
    assert warnings == [f"preflight: warning: config of 1 image(s) not read, not checked (orbit:{RC}): "
                        "not in the local registry"]
    code, out, err = run_cli("-w", str(root), "plan", lacking, setting, "--json")
    assert code == 0 and json.loads(out)["preflight_warnings"] == [warnings[0].removeprefix("preflight: warning: ")]
