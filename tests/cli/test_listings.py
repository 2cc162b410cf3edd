"""CLI listings on the demo workspace: JSON shapes of SPEC §6.1 and exit code 2 for bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from support import git

Run = Callable[..., tuple[int, str, str]]


def test_tags_json_newest_first_with_real_commits(demo_workspace: Path, run_cli: Run) -> None:
    code, out, err = run_cli("--workspace", str(demo_workspace), "tags", "agent", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [row["version"] for row in rows] == ["2.1.0", "2.0.0", "2.0.0-rc.1", "1.10.0", "1.9.0", "1.1.0", "1.0.0"]
    for row in rows:
        assert set(row) >= {"version", "tag", "commit", "annotated", "prerelease", "released"}
        assert row["commit"] == git(demo_workspace, "rev-parse", f"{row['tag']}^{{commit}}")
        kind = git(demo_workspace, "cat-file", "-t", row["tag"])
        assert row["annotated"] is (kind == "tag")
    assert "agent/v2.2" in err  # the stray tag is reported, not listed


def test_global_json_flag_works_too(demo_workspace: Path, run_cli: Run) -> None:
    code, out, _ = run_cli("--json", "--workspace", str(demo_workspace), "tags", "mc")
    assert code == 0
    assert json.loads(out)[0]["tag"] == "mc/v1.3.0"


def test_components_json_shape(demo_workspace: Path, run_cli: Run) -> None:
    code, out, _ = run_cli("-w", str(demo_workspace), "components", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == {"orbit", "agent", "mc"}
    orbit = rows["orbit"]
    assert set(orbit) >= {"name", "latest_tag", "latest_release", "unreleased", "solutions_on_latest", "solutions"}
    assert orbit["latest_tag"] == "orbit/v1.3.0"
    assert orbit["latest_release"] == "1.2.1"
    assert orbit["unreleased"] == ["1.3.0"]
    assert orbit["solutions"] == 40
    assert 0 < orbit["solutions_on_latest"] <= 40
    # where the fleet's pins stand, newest first; a floating pin counted under what it runs
    assert sum(orbit["versions"].values()) == 40 and orbit["versions"]["1.2.1"] == orbit["solutions_on_latest"]
    assert list(rows["agent"]["versions"])[:2] == ["2.1.0", "2.0.0"]


def test_releases_json_has_record_keys(demo_workspace: Path, run_cli: Run) -> None:
    code, out, _ = run_cli("-w", str(demo_workspace), "releases", "agent", "--json")
    assert code == 0
    records = json.loads(out)
    assert [r["version"] for r in records][-1] == "2.1.0"
    for r in records:
        assert set(r) == {"component", "version", "tag", "commit", "image", "digest", "registry", "run_id",
                          "built_at", "builder"}


def test_solutions_listing_and_names(demo_workspace: Path, run_cli: Run) -> None:
    code, out, _ = run_cli("-w", str(demo_workspace), "solutions", "--json")
    assert code == 0
    solutions = json.loads(out)
    assert len(solutions) == 40
    assert solutions[0]["images"].keys() == {"orbit_tag", "agent_tag", "mc_tag"}
    code, out, _ = run_cli("names", "acme-corp", "--json")
    assert code == 0
    assert json.loads(out)["apps"]["agent"] == "agent-f13fa37ca5ae"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tags", "web"], "unknown component 'web'"),
        (["names", "Acme_Corp"], "invalid solution id"),
        (["releases", "agnet"], "did you mean 'agent'"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(demo_workspace: Path, run_cli: Run, args: list[str],
                                                message: str) -> None:
    code, out, err = run_cli("-w", str(demo_workspace), *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and out == ""


def test_broken_solution_file_is_named_with_its_line_and_the_rest_listed(tmp_path: Path, demo_workspace: Path,
                                                                         run_cli: Run) -> None:
    import shutil

    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    bad = copy / "solutions" / "globex.yaml"
    bad.write_text(bad.read_text().replace("display_name:", "dispaly_name:"))
    code, out, err = run_cli("-w", str(copy), "solutions")
    assert code == 0
    assert f"warning: {bad}:3: unknown key 'dispaly_name' (did you mean 'display_name'?)" in err
    assert "acme-corp" in out and "39 solutions and 1 invalid file(s)" in out
    code, _, err = run_cli("-w", str(copy), "status", "globex")
    assert code == 2
    assert f"{bad}:3: unknown key 'dispaly_name'" in err


def test_missing_workspace_exits_2(tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("components")
    assert code == 2
    assert "no orbit.yaml" in err


def test_a_tag_on_a_tree_is_named_as_such_by_tags_components_and_build(
    demo_workspace: Path, tmp_path: Path, run_cli: Run
) -> None:
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    tree = git(root, "rev-parse", "agent/v2.1.0^{tree}")
    git(root, "tag", "agent/v9.9.9", tree)
    git(root, "tag", "-a", "agent/v9.9.8", "-m", "on a tree", tree)
    said = "agent/v9.9.9 points at a tree, not a commit (tags must name commits)"
    for args in (["tags", "agent"], ["components"]):
        code, out, err = run_cli("-w", str(root), *args)
        assert code == 0, err
        assert said in err and "agent/v9.9.8 points at a tree" in err
        assert "9.9.9" not in out
    code, out, err = run_cli("-w", str(root), "build", "agent@9.9.9")
    assert code == 2
    assert err.startswith(f"error: {said}")
    assert not (root / ".orbit" / "worktrees").exists() or not any((root / ".orbit" / "worktrees").iterdir())


def test_status_of_some_solutions_is_theirs_in_the_status_of_all(demo_workspace: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(demo_workspace), "status", "--json")
    assert code == 0, err
    every = json.loads(out)
    some = [row["id"] for row in every[:2]]
    code, out, err = run_cli("-w", str(demo_workspace), "status", "--json", *some)
    assert code == 0, err
    assert json.loads(out) == [row for row in every if row["id"] in some]
    code, _, err = run_cli("-w", str(demo_workspace), "status", "--only", "ring=a,")
    assert code == 2 and "'ring=a,' has an empty requirement" in err


def test_components_and_tags_from_the_cache_heads_say_what_reading_the_files_says(
        demo_workspace: Path, tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 0094: once the cache holds the heads, ``components`` and ``tags`` build no spec, and print the same
    (rows, counts, and the warning naming a broken file)."""
    import shutil

    import orbit_ops.workspace as workspace_module
    from orbit_ops.config import solution_cache

    root = tmp_path / "demo"
    shutil.copytree(demo_workspace, root, symlinks=True)
    (root / "solutions" / "broken.yaml").write_text("id: broken\nimages: {agent_tag: 1\n")
    monkeypatch.setattr(solution_cache, "RACY_NS", 0)  # the copies are seconds old: trusted at once
    commands = (("components",), ("components", "--json"), ("tags", "agent", "--json"))
    cold = [run_cli("-w", str(root), *command) for command in commands]
    solution_cache.wait_for_writes()

    def no_specs(config: object) -> object:
        raise AssertionError("the solution specs were read")

    monkeypatch.setattr(workspace_module, "load_solution_set", no_specs)
    warm = [run_cli("-w", str(root), *command) for command in commands]
    assert warm == cold
    assert cold[0][0] == 0 and "broken.yaml" in cold[0][2] and "/40" in cold[0][1]
