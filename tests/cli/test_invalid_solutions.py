"""One bad solution file never blinds the fleet (issue 12, items 1, 2 and 8): every listing and fleet command works
on the valid solutions and names each invalid file; values are deployed exactly as written or refused."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from orbit_ops.backends.local.platform import LocalPlatform
from orbit_ops.names import azure_names

Run = Callable[..., tuple[int, str, str]]

BROKEN = 'id: broken\nimages: {agent_tag: "2.0.0"\nenv: x\n'  # the flow mapping never closes: line 3
TYPED = 'id: typed\nimages: {agent_tag: "2.0.0"}\nenv: {agent: {N: 012, B: yes, F: 1.50}}\n'


@pytest.fixture
def fleet(tmp_path: Path, demo_workspace: Path) -> Path:
    """The demo workspace with one malformed and one mis-typed solution file beside its 40 solutions."""
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    (root / "solutions" / "broken.yaml").write_text(BROKEN)
    (root / "solutions" / "typed.yaml").write_text(TYPED)
    return root


def _ops(run_cli: Run, root: Path) -> list[dict[str, object]]:
    code, out, err = run_cli("-w", str(root), "ops", "--json", "-n", "1000")
    assert code == 0, err
    return list(json.loads(out))


def test_status_lists_the_valid_solutions_and_each_invalid_file(fleet: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(fleet), "status", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [row["id"] for row in rows] == sorted(row["id"] for row in rows)
    invalid = {row["id"]: row for row in rows if row["sync"] == "invalid"}
    assert set(invalid) == {"broken", "typed"}
    assert len(rows) == 42
    assert invalid["broken"]["error"].startswith(f"{fleet / 'solutions' / 'broken.yaml'}:3: invalid YAML")
    assert "(rule: YAML syntax)" in invalid["broken"]["error"]
    assert invalid["typed"]["error"].startswith(f"{fleet / 'solutions' / 'typed.yaml'}:3: ")
    assert all(row["sync"] in ("synced", "drifted", "missing", "unknown") for row in rows if row["id"] not in invalid)


@pytest.mark.parametrize("command", [["components"], ["tags", "agent"], ["solutions"], ["status"]])
def test_listings_exit_0_with_a_warning_line_per_invalid_file(fleet: Path, run_cli: Run, command: list[str]) -> None:
    code, out, err = run_cli("-w", str(fleet), *command)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:") and "solutions/" in line]
    assert len(warnings) == 2
    assert any("broken.yaml:3:" in line for line in warnings) and any("typed.yaml:3:" in line for line in warnings)
    assert "acme-corp" in out or command[0] in ("components", "tags")


def test_solutions_json_has_an_invalid_entry_per_file(fleet: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(fleet), "solutions", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert {row["id"] for row in rows if row.get("sync") == "invalid"} == {"broken", "typed"}
    assert sum(1 for row in rows if row.get("sync") != "invalid") == 40


def test_plan_all_marks_invalid_files_and_exits_1(fleet: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(fleet), "plan", "--all", "--json")
    assert code == 1, err
    plan = json.loads(out)
    states = {entry["id"]: entry["state"] for entry in plan["solutions"]}
    assert states["broken"] == states["typed"] == "invalid"
    assert sum(1 for state in states.values() if state in ("planned", "skipped")) == 40
    assert plan["writes"] == 0


def test_provision_all_converges_the_rest_and_exits_1(fleet: Path, run_cli: Run) -> None:
    before = {path.name: path.read_bytes() for path in (fleet / "solutions").iterdir()}
    code, out, err = run_cli("-w", str(fleet), "provision", "--all", "--yes", "--json")
    assert code == 1, err
    result = json.loads(out)
    states = {entry["id"]: entry["state"] for entry in result["solutions"]}
    assert states["broken"] == states["typed"] == "invalid"
    converged = [solution_id for solution_id, state in states.items() if state == "succeeded"]
    assert len(converged) >= 38  # the demo has a solution pinning an unreleased version: skipped
    assert {path.name: path.read_bytes() for path in (fleet / "solutions").iterdir()} == before
    apps = asyncio.run(LocalPlatform(fleet / ".orbit").list_apps())
    assert azure_names("typed").apps["agent"] not in apps and azure_names("broken").apps["agent"] not in apps
    code, out, _ = run_cli("-w", str(fleet), "status", "--json")
    synced = {row["id"] for row in json.loads(out) if row["sync"] == "synced"}
    assert set(converged) <= synced


def test_roll_all_leaves_invalid_files_untouched_and_exits_1(fleet: Path, run_cli: Run) -> None:
    broken = (fleet / "solutions" / "broken.yaml").read_bytes()
    code, out, err = run_cli("-w", str(fleet), "roll", "agent", "2.1.0", "--all", "--yes", "--json")
    assert code == 1, err
    result = json.loads(out)
    assert {entry["id"] for entry in result["invalid"]} == {"broken", "typed"}
    assert (fleet / "solutions" / "broken.yaml").read_bytes() == broken
    assert 'agent_tag: "2.1.0"' in (fleet / "solutions" / "acme-corp.yaml").read_text()


@pytest.mark.parametrize("command", [["status", "broken"], ["plan", "typed"], ["provision", "broken", "--yes"],
                                     ["roll", "agent", "2.1.0", "typed", "acme-corp", "--yes"],
                                     ["rollback", "broken", "agent", "--yes"]])
def test_naming_an_invalid_solution_is_exit_2_with_nothing_written(fleet: Path, run_cli: Run,
                                                                    command: list[str]) -> None:
    before = len(_ops(run_cli, fleet))
    acme = (fleet / "solutions" / "acme-corp.yaml").read_bytes()
    code, _, err = run_cli("-w", str(fleet), *command)
    assert code == 2
    assert ("broken.yaml:3:" in err) or ("typed.yaml:3:" in err)
    assert len(_ops(run_cli, fleet)) == before
    assert (fleet / "solutions" / "acme-corp.yaml").read_bytes() == acme


# --- values exactly as written ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("written", "seen_as"), [
    ("012", "the integer 10"), ("yes", "the boolean true"), ("1.50", "the number 1.5"), ("~", "null"),
    ("0x1F", "the integer 31"), ("2026-12-01", "a date"),
])
def test_a_value_yaml_would_convert_is_refused_with_file_line_and_hint(fleet: Path, run_cli: Run, written: str,
                                                                       seen_as: str) -> None:
    path = fleet / "solutions" / "typed.yaml"
    path.write_text(f'id: typed\nimages: {{agent_tag: "2.0.0"}}\nenv:\n  agent:\n    N: {written}\n')
    code, _, err = run_cli("-w", str(fleet), "plan", "typed")
    assert code == 2
    assert f"{path}:5: 'env.agent.N' is {written} unquoted, which YAML reads as {seen_as}" in err
    assert f'N: "{written}"' in err and "(rule: values are text" in err


def test_a_quoted_value_is_deployed_exactly_as_written(fleet: Path, run_cli: Run) -> None:
    (fleet / "solutions" / "typed.yaml").write_text(
        'id: typed\nimages: {agent_tag: "2.0.0"}\nenv: {agent: {N: "012", B: "yes", F: "1.50"}}\n')
    code, _, err = run_cli("-w", str(fleet), "provision", "typed", "--yes")
    assert code == 0, err
    app = asyncio.run(LocalPlatform(fleet / ".orbit").get_app(azure_names("typed").apps["agent"]))
    assert app is not None
    assert {name: app.env[name] for name in ("N", "B", "F")} == {"N": "012", "B": "yes", "F": "1.50"}


def test_a_secret_named_value_yaml_would_convert_is_refused_without_showing_it(fleet: Path, run_cli: Run) -> None:
    path = fleet / "solutions" / "typed.yaml"
    path.write_text('id: typed\nimages: {agent_tag: "2.0.0"}\nenv: {agent: {DB_PASSWORD: 8675309}}\n')
    for command, expected in ((["plan", "typed"], 2), (["status", "--json"], 0)):
        code, out, err = run_cli("-w", str(fleet), *command)
        assert code == expected
        assert "'env.agent.DB_PASSWORD' is unquoted, so YAML reads it as the integer" in out + err
        assert "8675309" not in out + err


@pytest.mark.parametrize("text", [
    "env: {agent: &a {DB_PASSWORD: 987654321}, mc: *a}",  # an alias: the second path has no text of its own
    "env: {agent: {DB_PASSWORD: {Xy7kq-Sekrit}}}",  # unquoted, a password starting with '{' is a mapping
    "env: {agent: {DB_PASSWORD: [Xy7kq, Sekrit]}}",
])
def test_a_secret_written_wrongly_never_appears_in_the_error(fleet: Path, run_cli: Run, text: str) -> None:
    path = fleet / "solutions" / "typed.yaml"
    path.write_text(f'id: typed\nimages: {{agent_tag: "2.0.0"}}\n{text}\n')
    code, out, err = run_cli("-w", str(fleet), "status", "--json")
    assert code == 0
    [entry] = [row for row in json.loads(out) if row["id"] == "typed"]
    assert "DB_PASSWORD" in entry["error"]
    for secret in ("987654321", "Xy7kq", "Sekrit"):
        assert secret not in out + err


def test_a_second_file_claiming_an_id_is_invalid_under_its_file_name(fleet: Path, run_cli: Run) -> None:
    shutil.copy(fleet / "solutions" / "acme-corp.yaml", fleet / "solutions" / "acme-corp.yml")
    code, out, err = run_cli("-w", str(fleet), "provision", "--all", "--only", "acme*", "--yes", "--json")
    assert code == 1, err
    states = {entry["id"]: entry["state"] for entry in json.loads(out)["solutions"]}
    assert states == {"acme-corp": "succeeded", "acme-corp.yml": "invalid"}
    [record] = _ops(run_cli, fleet)[:1]
    assert record["state"] == "failed" and record["progress"] == {"done": 2, "total": 2}
    code, _, err = run_cli("-w", str(fleet), "provision", "acme-corp", "--yes")
    assert code == 0, err  # the valid one is still named and provisioned as itself


def test_invalid_entries_carry_the_keys_of_valid_ones(fleet: Path, run_cli: Run) -> None:
    for command, keys in ((["status", "--json"], {"freshness", "apps", "resources"}),
                          (["solutions", "--json"], {"display_name", "images"})):
        _, out, _ = run_cli("-w", str(fleet), *command)
        [entry] = [row for row in json.loads(out) if row["id"] == "broken"]
        assert keys <= set(entry)


def test_a_pins_only_roll_with_an_invalid_file_says_what_it_wrote(fleet: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(fleet), "roll", "agent", "2.1.0", "--all", "--no-provision", "--yes")
    assert code == 1, err
    [record] = _ops(run_cli, fleet)[:1]
    assert record["state"] == "failed" and record["error"] == "2 of 42 solutions invalid: broken, typed"
    assert "pin(s) written" in out and "2 invalid; not provisioned" in out
    assert record["progress"]["done"] == record["progress"]["total"] == len(record["children"])


def test_display_name_as_a_number_is_refused_not_converted(fleet: Path, run_cli: Run) -> None:
    path = fleet / "solutions" / "typed.yaml"
    path.write_text('id: typed\ndisplay_name: 0012\nimages: {agent_tag: "2.0.0"}\n')
    code, _, err = run_cli("-w", str(fleet), "status", "typed")
    assert code == 2
    assert f"{path}:2: 'display_name' is 0012 unquoted" in err


# --- the smaller points: files, excerpts, quota --------------------------------------------------------------

def test_a_link_out_of_solutions_dir_is_invalid_and_its_target_never_quoted(fleet: Path, run_cli: Run,
                                                                            tmp_path: Path) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    os.symlink(secret, fleet / "solutions" / "evil.yaml")
    code, out, err = run_cli("-w", str(fleet), "status", "--json")
    assert code == 0
    [entry] = [row for row in json.loads(out) if row["id"] == "evil"]
    assert entry["sync"] == "invalid" and "symbolic link out of solutions_dir" in entry["error"]
    code, _, err = run_cli("-w", str(fleet), "status", "evil")
    assert code == 2 and "root:x" not in err and "root:x" not in out
    # A link to a file inside solutions_dir is a solution like any other.
    (fleet / "solutions" / "evil.yaml").unlink()
    os.symlink("acme-corp.yaml", fleet / "solutions" / "alias.yaml")
    code, out, _ = run_cli("-w", str(fleet), "solutions", "--json")
    [alias] = [row for row in json.loads(out) if row["id"] == "alias"]
    assert "id 'acme-corp' differs from the file name 'alias.yaml'" in alias["error"]


def test_a_fifo_or_folder_named_like_a_solution_is_invalid_and_never_blocks(fleet: Path, run_cli: Run) -> None:
    os.mkfifo(fleet / "solutions" / "pipe.yaml")
    (fleet / "solutions" / "folder.yaml").mkdir()
    code, out, err = run_cli("-w", str(fleet), "solutions", "--json")
    assert code == 0, err
    errors = {row["id"]: row["error"] for row in json.loads(out) if row.get("sync") == "invalid"}
    assert "not a regular file" in errors["pipe"] and "a folder" in errors["folder"]


def test_errors_quote_a_short_excerpt_of_a_value_never_a_file(fleet: Path, run_cli: Run) -> None:
    path = fleet / "solutions" / "typed.yaml"
    path.write_text("id: typed\nimages: {agent_tag: \"" + "9" * 5000 + "\"}\n")
    code, _, err = run_cli("-w", str(fleet), "status", "typed")
    assert code == 2
    assert "9" * 100 not in err and len(err) < 600


def test_share_quota_out_of_range_is_refused_when_the_file_is_read(fleet: Path, run_cli: Run) -> None:
    path = fleet / "solutions" / "typed.yaml"
    path.write_text('id: typed\nimages: {agent_tag: "2.0.0"}\nshare_quota_gib: 200000\n')
    code, out, _ = run_cli("-w", str(fleet), "plan", "--all", "--json")
    assert code == 1
    [entry] = [row for row in json.loads(out)["solutions"] if row["id"] == "typed"]
    assert entry["state"] == "invalid"
    assert f"{path}:3: share_quota_gib 200000 is more than premium FileStorage allows" in entry["error"]
    assert "up to 102400" in entry["error"]
