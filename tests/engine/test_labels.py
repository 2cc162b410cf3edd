"""Solution labels (SPEC §2, issue 15): Kubernetes label syntax in solution files, and selecting by them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from orbit_ops.config.labels import Selection, label_key_problem, label_value_problem, parse_selector
from orbit_ops.config.load import load_config, load_solution_set
from orbit_ops.errors import ConfigError, InputError

Run = Callable[..., tuple[int, str, str]]


def solution(solution_id: str, labels: str = "") -> str:
    return f"id: {solution_id}\n" + (f"labels:\n{labels}" if labels else "")


@pytest.mark.parametrize("key", ["ring", "Ring_2", "a.b-c", "orbit.example.com/tier", "x" * 63, "k8s.io/a"])
def test_kubernetes_label_keys_are_accepted(key: str) -> None:
    assert label_key_problem(key) is None


@pytest.mark.parametrize(("key", "why"), [
    ("", "no name"), ("-ring", "begin and end"), ("ring-", "begin and end"), ("r ing", "character"),
    ("x" * 64, "longer than 63"), ("Example.com/tier", "DNS subdomain"), ("/tier", "DNS subdomain"),
    ("a.com/", "no name"),
])
def test_bad_label_keys_say_why(key: str, why: str) -> None:
    problem = label_key_problem(key)
    assert problem is not None and why in problem


@pytest.mark.parametrize(("value", "ok"), [("canary", True), ("", True), ("v1.2_x-y", True), ("-x", False),
                                           ("a b", False), ("x" * 64, False), ("ünï", False)])
def test_label_values(value: str, ok: bool) -> None:
    assert (label_value_problem(value) is None) is ok


def test_labels_are_read_from_a_solution_file(make_workspace: Callable[..., Path]) -> None:
    root = make_workspace(solutions={"acme.yaml": solution("acme", '  ring: canary\n  "orbit.io/tier": ""\n')})
    [spec] = load_solution_set(load_config(root)).valid
    assert spec.labels == {"ring": "canary", "orbit.io/tier": ""}


@pytest.mark.parametrize(("labels", "line", "says", "rule"), [
    ("  tier: 1\n", 3, "quote it to keep it as written: tier: \"1\"", "values are text"),
    ("  ring: [a, b]\n", 3, "must be a single text value", "label values are text"),
    ("  bad key: x\n", 3, "invalid label key 'bad key'", "label keys are Kubernetes label names"),
    ("  ring: -canary\n", 3, "invalid value '-canary' of label ring", "label values are text"),
    ("  - ring\n", 2, "expected a mapping", "labels map label keys to values"),
])
def test_a_bad_label_names_file_line_and_rule_and_hides_no_other_solution(
    make_workspace: Callable[..., Path], labels: str, line: int, says: str, rule: str,
) -> None:
    root = make_workspace(solutions={"acme.yaml": solution("acme", labels), "globex.yaml": solution("globex")})
    found = load_solution_set(load_config(root))
    assert [spec.id for spec in found.valid] == ["globex"]
    [invalid] = found.invalid
    assert isinstance(invalid.error, ConfigError)
    assert invalid.error.line == line and says in str(invalid.error) and rule in str(invalid.error)


def test_a_selector_requires_every_requirement_and_not_equal_matches_an_absent_label() -> None:
    selector = parse_selector("ring=canary,region!=eu")
    assert selector.matches({"ring": "canary", "region": "us"})
    assert selector.matches({"ring": "canary"})  # as kubectl -l: != also selects what lacks the label
    assert not selector.matches({"ring": "canary", "region": "eu"})
    assert not selector.matches({"ring": "early"})
    assert str(selector) == "ring=canary,region!=eu"


@pytest.mark.parametrize(("text", "says"), [("ring=canary,", "empty requirement"), ("ring=a=b", "not a label"),
                                            ("bad key=x", "not a label"), ("ring=-x", "label value '-x'"),
                                            ("Ex.com/r=x", "label key 'Ex.com/r'")])
def test_a_bad_selector_is_refused_with_the_rule(text: str, says: str) -> None:
    with pytest.raises(InputError, match=says):
        Selection([text])


def test_globs_and_selectors_mix_and_an_unread_file_matches_no_selector() -> None:
    only = Selection(["acme-*", "ring=canary"])
    assert only.matches("acme-1", {})
    assert only.matches("globex", {"ring": "canary"})
    assert not only.matches("globex", {"ring": "main"})
    assert not only.matches("broken", None)  # an invalid file's labels are not known: --only leaves it out
    assert Selection(exclude=["ring=canary"]).matches("broken", None)  # and --exclude keeps it, to be reported
    assert not Selection(["acme-*"], ["ring=main"]).matches("acme-1", {"ring": "main"})


@pytest.fixture
def root(demo_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    return copy


def test_the_demo_has_rings_and_the_cli_selects_by_them(root: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(root), "solutions", "--json")
    assert code == 0, err
    labels = {row["id"]: row["labels"] for row in json.loads(out)}
    rings = {solution_id: found["ring"] for solution_id, found in labels.items()}
    assert list(rings.values()).count("canary") == 1 and list(rings.values()).count("early") == 5
    code, out, err = run_cli("-w", str(root), "status", "--only", "ring=early", "--only", "ring=canary",
                             "--exclude", "g*", "--json")
    assert code == 0, err
    chosen = {row["id"]: row["labels"] for row in json.loads(out)}
    assert set(chosen) == {i for i, ring in rings.items() if ring in ("early", "canary") and not i.startswith("g")}
    assert len(chosen) == 5 and "globex" not in chosen
    code, out, err = run_cli("-w", str(root), "status", "--only", "ring!=main", "--json")
    assert {row["id"] for row in json.loads(out)} == {i for i, ring in rings.items() if ring != "main"}


def test_a_bad_selector_on_the_command_line_exits_2_before_anything_is_read(root: Path, run_cli: Run) -> None:
    code, _, err = run_cli("-w", str(root), "provision", "--all", "--only", "ring=-x", "--yes")
    assert code == 2
    assert "label value '-x' is not valid" in err and "Traceback" not in err
