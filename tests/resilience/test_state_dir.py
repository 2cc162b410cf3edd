"""Every command on a ``.orbit/`` that is read-only, on a full disk, or absent on a read-only disk.

We run as root here, so ``chmod`` cannot make a folder read-only: each walk runs in a private mount
namespace (``unshare -rm``) where the state folder is a read-only bind mount, or a small tmpfs holding
a copy of the state that is then filled up. Every command of SPEC §6.1 / the README's table runs as
its own ``orbit`` process (``--json`` where it applies); ``orbit tui`` runs through the real entry point
with the console itself replaced by a note of how it was opened (it needs a terminal).

Asserted for each: the exit code (0 for a listing, which shows what the folder holds with one
warning naming it; 1 for a mutating command, refused with a message naming the folder), never a
traceback, and nothing stored changed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orbit_ops.operations.kinds import OperationKind
from orbit_ops.operations.store import OperationStore

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WALK = HERE / "statedir_walk.py"

READ_ONLY_MOUNT = 'mount --bind "$STATE" "$STATE" && mount -o remount,bind,ro "$STATE"'
FULL_DISK_MOUNT = (
    'cp -a "$STATE" "$STATE.copy" && mount -t tmpfs -o size=8m tmpfs "$STATE" && cp -a "$STATE.copy/." "$STATE/"'
    ' && rm -rf "$STATE.copy" && { dd if=/dev/zero of="$STATE/fill" bs=4k 2>/dev/null; true; }'
)
READ_ONLY_WORKSPACE = 'mount --bind "$WS" "$WS" && mount -o remount,bind,ro "$WS"'


def _namespaces_work() -> str | None:
    """None if a private mount namespace with tmpfs and read-only binds can be made here, else why not."""
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True,
                          text=True)
    if done.returncode != 0:
        return f"unshare -rm cannot mount here: {done.stderr.strip()}"
    return None


_CANNOT = _namespaces_work()
pytestmark = [pytest.mark.resilience, pytest.mark.skipif(
    _CANNOT is not None,
    reason=f"THE READ-ONLY AND FULL-DISK WALK DID NOT RUN: {_CANNOT}; it needs unshare -rm (user and mount "
           "namespaces), which this sandbox and CI provide",
)]


def walk(workspace: Path, mount: str, commands: list[list[str]], tmp_path: Path) -> dict[str, Any]:
    """Mount as ``mount`` says in a private namespace, then run ``commands`` there (see statedir_walk.py)."""
    commands_file, results_file = tmp_path / "commands.json", tmp_path / "results.json"
    commands_file.write_text(json.dumps(commands))
    script = f'{mount} && exec "$PY" "$WALK" "$WS" "$COMMANDS" "$RESULTS"'
    env = {**os.environ, "PYTHONPATH": str(REPO), "WS": str(workspace), "STATE": str(workspace / ".orbit"),
           "PY": sys.executable, "WALK": str(WALK), "COMMANDS": str(commands_file), "RESULTS": str(results_file)}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(results_file.read_text())
    return result


@pytest.fixture(scope="module")
def workspace(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A demo workspace whose history has a finished sweep and an operation whose process died."""
    root = tmp_path_factory.mktemp("statedir") / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    # A sweep that succeeded (the demo's own sweep fails: it skips a solution pinning an unreleased version).
    subprocess.run([sys.executable, "-m", "orbit_cli.main", "-w", str(root), "provision", "acme-corp", "globex",
                    "--yes"], check=True, capture_output=True)
    with OperationStore(root / ".orbit") as store:
        finished = store.list(limit=1, kind="sweep")[0].id
        record = store.create(OperationKind.PROVISION, "acme-corp", 1)
        store.mark_running(record.id, record.created_at)
        with store._write() as conn:
            conn.execute("UPDATE operations SET pid = ? WHERE id = ?", (dead.pid, record.id))
    return {"root": root, "finished": finished, "dead": record.id}


READS: list[list[str]] = [
    ["components"], ["--json", "components"],
    ["tags", "agent"], ["--json", "tags", "agent"],
    ["releases"], ["--json", "releases", "agent"], ["releases", "--verify"],
    ["solutions"], ["--json", "solutions"],
    ["status"], ["--json", "status"], ["status", "acme-corp"], ["--read-only", "status"],
    ["status", "--exit-code", "acme-corp"],
    ["wait", "acme-corp", "--timeout", "0"], ["--json", "wait", "--all", "--only", "acme-*", "--timeout", "0"],
    ["plan", "--all"], ["--json", "plan", "acme-corp"],
    ["names", "acme-corp"], ["--json", "names", "acme-corp"],
    ["ops"], ["--json", "ops"], ["ops", "--kind", "sweep"],
    ["logs", "{finished}"], ["--json", "logs", "{finished}"], ["logs", "{dead}"],
    ["logs", "--follow", "{finished}"], ["logs", "--follow", "{dead}"],
    ["demo", "{root}", "--no-tui"],
    ["-c", "{tui}"],
]
STORE_READS = {"status", "plan", "wait", "ops", "logs", "-c"}  # the commands that open a store under .orbit/
WRITES: list[tuple[list[str], str]] = [
    (["build", "mc@1.3.0"], "build"), (["--json", "build", "--platform", "2026.11"], "build"),
    (["provision", "acme-corp", "--yes"], "provision"), (["--json", "provision", "--all", "--yes"], "provision"),
    (["provision", "--failed-from", "{finished}", "--yes"], "provision"),
    (["roll", "agent", "2.1.0", "acme-corp", "--yes"], "roll"),
    (["--json", "roll", "agent", "2.1.0", "--all", "--no-provision", "--yes"], "roll"),
    (["rollback", "acme-corp", "agent", "--yes"], "rollback"),
    (["cancel", "{dead}"], "cancel"), (["--json", "cancel", "{finished}"], "cancel"),
]


# `orbit tui` through the real entry point, with the console replaced by a note of how it was opened.
TUI = """
import sys
import orbit_tui.app
from orbit_cli.main import main

def opened(workspace, *, read_only):
    print(f"console opened read_only={read_only}")
    workspace.platform()  # what the console reads first: no second warning under its screen

orbit_tui.app.run = opened
main(["-w", sys.argv[1], "tui"])
"""


def _expand(args: list[str], ws: dict[str, Any]) -> list[str]:
    return [arg.format(root=ws["root"], finished=ws["finished"], dead=ws["dead"], tui=TUI) for arg in args]


def _check_walk(ws: dict[str, Any], walked: dict[str, Any], condition: str) -> None:
    state = ws["root"] / ".orbit"
    warning = f"warning: {state} {condition}: showing what it holds; nothing can be recorded"
    results = walked["results"]
    assert len(results) == len(READS) + len(WRITES)
    for args, result in zip(READS, results[: len(READS)], strict=True):
        shown = " ".join(args)
        assert "Traceback" not in result["err"], (shown, result["err"])
        assert result["rc"] == 0, (shown, result["rc"], result["err"])  # acme-corp is synced: --exit-code is 0
        assert result["err"].count(warning) == (1 if STORE_READS & set(args) else 0), (shown, result["err"])
        if "--json" in args:
            json.loads(result["out"])
    for (args, what), result in zip(WRITES, results[len(READS):], strict=True):
        shown = " ".join(args)
        assert "Traceback" not in result["err"], (shown, result["err"])
        assert result["rc"] == 1, (shown, result["rc"], result["err"])
        assert f"error: cannot {what}: {state} {condition}, so nothing could be recorded" in result["err"], shown
        assert "warning:" not in result["err"], shown
    # Nothing stored changed. A -shm is SQLite's shared-memory index of the WAL, not stored data: a
    # reader marks its place there. On a full disk a reader may leave an empty -wal it could not use.
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    before = {name: digest for name, digest in walked["before"].items() if not name.endswith("-shm")}
    after = {name: digest for name, digest in walked["after"].items()
             if not name.endswith("-shm") and not (name.endswith("-wal") and name not in before and digest == empty)}
    assert after == before


def _by_args(walked: dict[str, Any], args: list[str]) -> dict[str, Any]:
    return next(r for r in walked["results"] if r["args"][-len(args):] == args)


@pytest.mark.parametrize(("mount", "condition"), [(READ_ONLY_MOUNT, "is read-only"),
                                                  (FULL_DISK_MOUNT, "is on a full disk")],
                         ids=["read-only", "full-disk"])
def test_every_command_on_an_unwritable_state_folder(workspace: dict[str, Any], tmp_path: Path, mount: str,
                                                     condition: str) -> None:
    commands = [_expand(args, workspace) for args in READS] + [_expand(args, workspace) for args, _ in WRITES]
    walked = walk(workspace["root"], mount, commands, tmp_path)
    _check_walk(workspace, walked, condition)
    # The listings show what the folder holds: the fleet's live state and the operation history...
    status = json.loads(_by_args(walked, ["--json", "status"])["out"])
    assert len(status) == 40 and sum(1 for row in status if row["sync"] == "synced") > 20
    ops = {row["id"]: row for row in json.loads(_by_args(walked, ["--json", "ops"])["out"])}
    assert ops[workspace["finished"]]["state"] == "succeeded"
    # ...and an operation whose process died reads as interrupted, though that cannot be recorded.
    assert ops[workspace["dead"]]["state"] == "interrupted"
    assert "ended before it finished" in ops[workspace["dead"]]["error"]
    followed = _by_args(walked, ["logs", "--follow", workspace["dead"]])
    assert "interrupted" in followed["out"] + followed["err"]
    # The console opens read-only, hiding what it could not record.
    assert _by_args(walked, ["-c", TUI])["out"] == "console opened read_only=True\n"


def test_state_folder_missing_on_a_read_only_disk_reads_as_empty(demo_workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    shutil.rmtree(root / ".orbit")
    commands = [["--json", "ops"], ["--json", "status", "acme-corp"], ["--json", "plan", "acme-corp"],
                ["provision", "acme-corp", "--yes"]]
    (tmp_path / "out").mkdir()
    walked = walk(root, READ_ONLY_WORKSPACE, commands, tmp_path / "out")
    ops, status, plan, provision = walked["results"]
    warning = f"warning: {root / '.orbit'} is read-only: showing what it holds; nothing can be recorded"
    for result in walked["results"]:
        assert "Traceback" not in result["err"], result
    assert ops["rc"] == 0 and json.loads(ops["out"]) == [] and ops["err"].count(warning) == 1
    assert status["rc"] == 0 and json.loads(status["out"])[0]["sync"] == "missing"
    assert plan["rc"] == 0 and json.loads(plan["out"])["solutions"][0]["state"] == "planned"
    assert provision["rc"] == 1 and f"{root / '.orbit'} is read-only" in provision["err"]
    assert not (root / ".orbit").exists()


# Every log under .orbit/ holds whole JSON lines only.
WHOLE_LINES = """
import json, sys
from pathlib import Path
for log in (Path(sys.argv[1]) / ".orbit" / "logs").glob("*.jsonl"):
    data = log.read_bytes()
    assert not data or data.endswith(b"\\n"), log
    for line in data.splitlines():
        json.loads(line)
print("whole lines")
"""


def test_a_disk_that_fills_up_during_a_sweep_fails_it_cleanly(demo_workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    # Leave a little room: the stores open for writing, and the sweep runs out of space on the way.
    nearly_full = FULL_DISK_MOUNT + ' && truncate -s -48K "$STATE/fill"'
    (tmp_path / "out").mkdir()
    walked = walk(root, nearly_full, [["--json", "provision", "--all", "--yes"], ["--json", "ops", "-n", "1"],
                                      ["-c", WHOLE_LINES]], tmp_path / "out")
    sweep, ops, lines = walked["results"]
    state = root / ".orbit"
    assert sweep["rc"] == 1, sweep
    assert "Traceback" not in sweep["err"] and "database or disk is full" in sweep["err"], sweep["err"]
    assert str(state) in sweep["err"]
    assert ops["rc"] == 0 and "Traceback" not in ops["err"], ops
    [record] = json.loads(ops["out"])
    assert record["kind"] == "sweep" and record["state"] in ("failed", "interrupted")
    assert lines["rc"] == 0 and lines["out"] == "whole lines\n", lines  # the sweep's own log included
    # What was stored before the disk filled is intact.
    assert {name: walked["after"].get(name) for name in walked["before"] if name.startswith("logs/")} == {
        name: digest for name, digest in walked["before"].items() if name.startswith("logs/")}
