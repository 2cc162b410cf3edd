"""No tracebacks: unknown names, damaged stores and unexpected failures end in one line and the right exit code."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def ws(demo_workspace: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    return root


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rollback", "acme-corp", "nosuch", "--yes"], "'nosuch' is not an app component; solutions pin orbit"),
        (["rollback", "acme-corp", "agnet", "--yes"], "did you mean 'agent'"),
        (["rollback", "nosuch-corp", "agent", "--yes"], "unknown solution 'nosuch-corp'"),
        (["ops", "--kind", "deploy"], "'deploy' is not one of 'build', 'provision', 'sweep', 'roll'"),
        (["tags", "nosuch"], "unknown component 'nosuch'"),
        (["releases", "nosuch"], "unknown component 'nosuch'"),
        (["build", "nosuch"], "unknown component 'nosuch'"),
        (["build", "mc@9.9.9"], "no tag mc/v9.9.9"),
        (["build", "mc@v1.3.0"], "drop the leading 'v'"),
        (["build", "--platform", "99"], "no platform manifest"),
        (["status", "nosuch"], "unknown solution 'nosuch'"),
        (["status", "Bad_Id"], "invalid solution id 'Bad_Id'"),
        (["plan", "nosuch"], "unknown solution 'nosuch'"),
        (["provision", "nosuch", "--yes"], "unknown solution 'nosuch'"),
        (["provision", "--failed-from", "nosuch", "--yes"], "no operation matches 'nosuch'"),
        (["provision", "--all", "--concurrency", "0", "--yes"], "--concurrency must be at least 1"),
        (["roll", "nosuch", "1.0.0", "acme-corp", "--yes"], "'nosuch' is not an app component"),
        (["roll", "agent", "9.9.9", "acme-corp", "--yes"], "agent 9.9.9 has no release record"),
        (["roll", "agent", "2.1.0", "nosuch", "--yes"], "unknown solution 'nosuch'"),
        (["logs", "nosuch"], "no operation matches 'nosuch'"),
        (["logs", "../../etc"], "no operation '../../etc'"),
        (["cancel", "nosuch"], "no operation matches 'nosuch'"),
        (["names", "Bad_Id"], "invalid solution id 'Bad_Id'"),
    ],
)
def test_an_unknown_name_anywhere_is_an_input_error(ws: Path, run_cli: Run, args: list[str], message: str) -> None:
    code, out, err = run_cli("-w", str(ws), *args)
    assert code == 2, (code, err)
    assert message in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(("store", "commands"), [
    ("operations.sqlite", (["ops"], ["logs", "2026"], ["provision", "acme-corp", "--yes"])),
    ("platform.sqlite", (["status"], ["plan", "--all"], ["provision", "acme-corp", "--yes"])),
])
@pytest.mark.parametrize("damage", ["garbage", "pages"])
def test_a_damaged_store_is_named_with_what_to_do(ws: Path, run_cli: Run, store: str,
                                                  commands: tuple[list[str], ...], damage: str) -> None:
    import sqlite3

    path = ws / ".orbit" / store
    # The demo's process still held the store, so its pages are in the WAL: fold them in first.
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert not Path(f"{path}-wal").exists()
    if damage == "garbage":
        path.write_bytes(b"this is not a database\n" * 200)
    else:  # a valid header, then every page after the first two overwritten
        with path.open("r+b") as handle:
            size = handle.seek(0, 2)
            handle.seek(4096 * 2)
            handle.write(b"\xff" * (size - 4096 * 2))
    for args in commands:
        code, _, err = run_cli("-w", str(ws), *args)
        assert code == 1, (args, code, err)
        assert f"{path} cannot be read" in err and "move it aside" in err, (args, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_an_empty_store_file_reads_as_an_empty_store(ws: Path, run_cli: Run) -> None:
    (ws / ".orbit" / "operations.sqlite").write_bytes(b"")
    code, out, err = run_cli("-w", str(ws), "ops", "--json")
    assert (code, json.loads(out)) == (0, []), err


def test_a_log_cut_mid_line_replays_what_it_holds(ws: Path, run_cli: Run) -> None:
    code, out, _ = run_cli("-w", str(ws), "--json", "ops", "--kind", "sweep", "-n", "1")
    op_id = json.loads(out)[0]["id"]
    log = ws / ".orbit" / "logs" / f"{op_id}.jsonl"
    data = log.read_bytes()
    log.write_bytes(data[: len(data) // 2] + b'{"type":"log","op_id":' + b"\xff\xfe garbage\n" + data[:40])
    code, out, err = run_cli("-w", str(ws), "logs", op_id)
    assert code == 0 and "Traceback" not in err
    assert "sweep 37 solutions failed: 1 of 37 solutions skipped: cyberdyne" in out  # the end, from the index
    code, out, err = run_cli("-w", str(ws), "logs", "--follow", op_id)
    assert code == 1 and "Traceback" not in err  # following a failed operation ends like it: exit 1


def test_an_unexpected_error_is_one_line_never_a_traceback(ws: Path, run_cli: Run,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import orbit_ops.workspace

    def broken(workspace: object) -> None:
        raise RuntimeError("the unexpected\nhappened")

    monkeypatch.setattr(orbit_ops.workspace, "summarize_components", broken)
    code, out, err = run_cli("-w", str(ws), "components")
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "error: internal error (RuntimeError: the unexpected happened); this is a bug in Orbit: please report it "
        "with the command that caused it (ORBIT_TRACEBACK=1 shows where)"
    ]


def test_an_unexpected_file_error_names_the_file(ws: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import orbit_ops.workspace

    def denied(workspace: object) -> None:
        raise PermissionError(13, "Permission denied", str(ws / "releases" / "containers" / "agent.yaml"))

    monkeypatch.setattr(orbit_ops.workspace, "summarize_components", denied)
    code, _, err = run_cli("-w", str(ws), "components")
    assert code == 1
    assert err.strip() == f"error: {ws / 'releases' / 'containers' / 'agent.yaml'}: Permission denied"


@pytest.mark.parametrize(("make", "what"), [
    (lambda state: state.write_text("not a folder\n"), "it exists but is not a folder"),
    (lambda state: state.symlink_to("/nonexistent/orbit-state"), "it exists but is a link to a missing folder"),
])
def test_a_state_folder_that_is_not_a_folder_is_named(ws: Path, run_cli: Run, make: Callable[[Path], object],
                                                       what: str) -> None:
    state = ws / ".orbit"
    shutil.rmtree(state)
    make(state)
    for args in (["ops"], ["status"], ["provision", "acme-corp", "--yes"]):
        code, _, err = run_cli("-w", str(ws), *args)
        assert code == 1, (args, err)
        assert what in err and str(state) in err and "Traceback" not in err, err
