"""Exit codes, ``orbit ops`` states and final lines agree: the table in docs/reliability.md, row by row.

The test reads the table ("Outcomes: exit codes, operation states and the final line"), runs each row's
command through the real entry point after the setup its case names, and checks the exit code, the state
of the operation the command recorded (or that it recorded none), the operation's final log line and the
text the row says the output holds. A row without a setup here, or a setup without a row, fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import git

from orbit_ops.operations.locks import lock_path

ROOT = Path(__file__).parents[2]
REPORT = ROOT / "docs" / "reliability.md"
SECTION = "## Outcomes: exit codes, operation states and the final line"
KEPT = ("acme-corp", "globex", "initech", "cyberdyne")
HOLDER_OP = "20261201-213005-ab12"

Run = Callable[..., tuple[int, str, str]]


@dataclass(frozen=True)
class Row:
    case: str
    args: list[str]
    exit: int
    state: str | None
    final: re.Pattern[str]
    says: re.Pattern[str]


def _pattern(cell: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in cell.strip().strip("`").split("…")))


def read_table() -> list[Row]:
    lines = REPORT.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(SECTION))
    table = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("| ") and not line.startswith("| case ") and not line.startswith("|---"):
            table.append(line)
    rows = []
    for line in table:
        case, command, code, state, final, says = (cell.strip() for cell in line.strip().strip("|").split(" | "))
        args = shlex.split(command.strip("`"))
        assert args[0] == "orbit", line
        rows.append(Row(case, args[1:], int(code), None if state == "—" else state, _pattern(final), _pattern(says)))
    return rows


ROWS = read_table()


@pytest.fixture
def root(demo_workspace: Path, tmp_path: Path) -> Path:
    """The demo with four solutions and an empty platform."""
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    for path in (copy / "solutions").glob("*.yaml"):
        if path.stem not in KEPT:
            path.unlink()
    for path in (copy / ".orbit").glob("platform.sqlite*"):
        path.unlink()
    shutil.rmtree(copy / ".orbit" / "shares", ignore_errors=True)
    return copy


@contextlib.contextmanager
def held_by_operation(root: Path, name: str, kind: str) -> Iterator[None]:
    """Hold a lock as an operation of another process does: flock taken, the holder written into the file."""
    path = lock_path(root / ".orbit", name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps({"op_id": HOLDER_OP, "kind": kind, "pid": os.getpid(), "host": socket.gethostname(),
                                 "since": "2026-12-01T21:30:05Z"}).encode() + b"\n")
        yield
    finally:
        os.close(fd)


def block_share(root: Path) -> None:
    shares = root / ".orbit" / "shares"
    shares.mkdir(parents=True, exist_ok=True)
    (shares / "globex-customer").write_text("a file where the share's folder goes\n")


def edit_after_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """globex's file changes between the roll's plan and its pin write (a second roll, or an operator)."""
    import orbit_ops.fleet.roll

    planned = orbit_ops.fleet.roll.plan_roll

    def plan_then_edit(*args: object, **kwargs: object) -> orbit_ops.fleet.roll.RollPlan:
        plan = planned(*args, **kwargs)  # type: ignore[arg-type]
        path = plan.specs["globex"].path
        path.write_text(path.read_text() + "# edited while the roll was being confirmed\n")
        return plan

    monkeypatch.setattr(orbit_ops.fleet.roll, "plan_roll", plan_then_edit)


def broken_tag(root: Path) -> None:
    (root / "apps" / "mc" / "Dockerfile").write_text("FROM scratch\nCOPPY VERSION /VERSION\n")
    git(root, "commit", "-qam", "mc: a typo in the Dockerfile")
    git(root, "tag", "mc/v9.9.9")


def ops(run_cli: Run, root: Path) -> list[dict[str, object]]:
    code, out, err = run_cli("-w", str(root), "ops", "--json")
    assert code == 0, err
    records: list[dict[str, object]] = json.loads(out)
    return records


def final_log_line(run_cli: Run, root: Path, op_id: str) -> str:
    code, out, err = run_cli("-w", str(root), "logs", op_id)
    assert code == 0, err
    return out.rstrip("\n").splitlines()[-1]


# -- the commands that need a second process: one waiting for a lock, stopped while it waits -------------


def run_and_stop(root: Path, args: list[str], stop: Callable[[subprocess.Popen[str], str], None]) -> tuple[int, str]:
    """Run ``orbit args`` in a process of its own; once it waits for a lock, ``stop`` it. Returns (exit, output)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "orbit_cli.main", "-w", str(root), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while not any("waiting for solution" in line for line in seen):
            line = lines.get(timeout=60)  # queue.Empty fails the test rather than hanging it
            assert line, "the command ended without waiting: " + "".join(seen)
            seen.append(line)
        op_id = next(line.split()[1].rstrip(":") for line in seen if line.startswith("operation "))
        stop(process, op_id)
        process.wait(timeout=30)
        reader.join(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    while not lines.empty():
        seen.append(lines.get())
    return process.returncode, "".join(seen)


def interrupt(process: subprocess.Popen[str], op_id: str) -> None:
    process.send_signal(signal.SIGINT)


def cancel_elsewhere(root: Path) -> Callable[[subprocess.Popen[str], str], None]:
    def stop(process: subprocess.Popen[str], op_id: str) -> None:
        done = subprocess.run([sys.executable, "-m", "orbit_cli.main", "-w", str(root), "cancel", op_id],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              timeout=60)
        assert done.returncode == 0, done.stderr

    return stop


# -- each case's setup ---------------------------------------------------------------------------------


@dataclass
class Case:
    root: Path
    run_cli: Run
    monkeypatch: pytest.MonkeyPatch
    stack: contextlib.ExitStack
    subprocess_stop: Callable[[subprocess.Popen[str], str], None] | None = None


def _nothing(case: Case) -> None:
    pass


def _provisioned_once(case: Case) -> None:
    code, _, err = case.run_cli("-w", str(case.root), "provision", "acme-corp", "--yes")
    assert code == 0, err


def _provisioned_two(case: Case) -> None:
    code, _, err = case.run_cli("-w", str(case.root), "provision", "acme-corp", "globex", "--yes")
    assert code == 0, err


def _blocked_share(case: Case) -> None:
    block_share(case.root)


def _solution_lock(name: str) -> Callable[[Case], None]:
    def setup(case: Case) -> None:
        case.stack.enter_context(held_by_operation(case.root, f"solution-{name}", "roll"))

    return setup


def _lacks_mc_url(case: Case) -> None:
    """globex's reader is not given MC_URL, which the release candidate's image requires."""
    path = case.root / "solutions" / "globex.yaml"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.lstrip().startswith("MC_URL:")))


def _apps_keep_starting(case: Case) -> None:
    """The platform reports every app still starting, as a revision that never finishes activating does."""
    from dataclasses import replace

    from orbit_ops.backends.local.platform import LocalPlatform

    listed = LocalPlatform.list_app_states

    async def starting(self: LocalPlatform) -> object:
        return {name: replace(facts, running_status="Progressing") for name, facts in (await listed(self)).items()}

    case.monkeypatch.setattr(LocalPlatform, "list_app_states", starting)


def _edited_after_plan(case: Case) -> None:
    edit_after_plan(case.monkeypatch)


def _interrupted(case: Case) -> None:
    _solution_lock("acme-corp")(case)
    case.subprocess_stop = interrupt


def _cancelled_elsewhere(case: Case) -> None:
    _solution_lock("acme-corp")(case)
    case.subprocess_stop = cancel_elsewhere(case.root)


def _build_lock(case: Case) -> None:
    case.stack.enter_context(held_by_operation(case.root, "build-orbit", "build"))


def _broken_tag(case: Case) -> None:
    broken_tag(case.root)


def _invalid_file(case: Case) -> None:
    """A solution file that breaks a rule beside the valid ones (issue 12: one bad file never blinds the fleet)."""
    (case.root / "solutions" / "broken.yaml").write_text('id: broken\nimages: {agent_tag: "2.0.0"\n')


SETUPS: dict[str, Callable[[Case], None]] = {
    "all members succeeded": _nothing,
    "nothing to do (run twice)": _provisioned_once,
    "one member failed": _blocked_share,
    "the only member failed": _blocked_share,
    "a member skipped (unreleased pin, in `--all`)": _nothing,
    "lock held past `--lock-timeout`": _solution_lock("acme-corp"),
    "lock held, `--no-wait`": _solution_lock("acme-corp"),
    "a member's new revision degraded": _lacks_mc_url,
    "a new revision not settled within `--health-timeout`": _apps_keep_starting,
    "`--health-timeout 0`: a degraded revision not waited for": _lacks_mc_url,
    "roll: every member succeeded": _nothing,
    "roll: a pin write refused after others were written": _edited_after_plan,
    "roll: every pin write refused, nothing written": _edited_after_plan,
    "roll: lock held past `--lock-timeout` before any pin was written": _solution_lock("globex"),
    "Ctrl-C while waiting for a lock": _interrupted,
    "`orbit cancel` from elsewhere while waiting": _cancelled_elsewhere,
    "build succeeded": _nothing,
    "build failed": _broken_tag,
    "build: lock held past `--lock-timeout`": _build_lock,
    "build: already released": _nothing,
    "invalid input": _nothing,
    "a named solution pins an unreleased version": _nothing,
    "an invalid solution file in `--all`": _invalid_file,
    "an invalid solution file in a roll of `--all`": _invalid_file,
    "an invalid solution file named": _invalid_file,
    "wait: every solution healthy": _provisioned_two,
    "wait: not settled when the timeout passes": _nothing,
}


def test_every_row_of_the_table_has_a_setup_and_every_setup_a_row() -> None:
    assert [row.case for row in ROWS] == list(SETUPS)


@pytest.mark.parametrize("row", ROWS, ids=[row.case for row in ROWS])
def test_outcome(row: Row, root: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    with contextlib.ExitStack() as stack:
        case = Case(root, run_cli, monkeypatch, stack)
        SETUPS[row.case](case)
        before = {str(record["id"]) for record in ops(run_cli, root)}
        plan_before = run_cli("-w", str(root), "plan", "acme-corp")[1]
        if case.subprocess_stop is not None:
            code, output = run_and_stop(root, row.args, case.subprocess_stop)
            printed = output
        else:
            code, out, err = run_cli("-w", str(root), *row.args)
            output, printed = out + err, out
    assert code == row.exit, output
    assert row.says.search(output), output
    new = [record for record in ops(run_cli, root) if record["id"] not in before]
    if row.state is None:
        assert new == []
        lines = printed.strip().splitlines() or output.strip().splitlines()
        assert row.final.fullmatch(lines[-1]), lines[-1]
        return
    assert len(new) == 1, new
    record = new[0]
    assert record["state"] == row.state
    final = final_log_line(run_cli, root, str(record["id"]))
    assert row.final.fullmatch(final), final
    assert final in output.splitlines()  # the command printed the same line when its operation ended
    progress = record["progress"]
    assert isinstance(progress, dict)
    if record["kind"] != "build":
        # Progress counts every member the command was asked to handle; all of them ended.
        children = record["children"]
        assert isinstance(children, dict)
        assert progress["total"] == len(children) or not children
        if row.state != "cancelled":
            assert progress["done"] == progress["total"]
    if row.state == "cancelled":
        assert all(child["state"] == "cancelled" for child in record["children"].values())  # type: ignore[union-attr]
        assert run_cli("-w", str(root), "plan", "acme-corp")[1] == plan_before  # nothing was written


@pytest.mark.parametrize("command", ["provision", "roll", "rollback", "build"])
def test_every_command_that_takes_locks_has_lock_timeout_with_the_engines_default(run_cli: Run, command: str) -> None:
    from orbit_ops.operations.locks import DEFAULT_LOCK_TIMEOUT

    code, out, _ = run_cli(command, "--help")
    assert code == 0
    assert "--lock-timeout SECONDS" in out
    assert f"default {DEFAULT_LOCK_TIMEOUT:g};" in " ".join(out.split())
    code, _, err = run_cli(command, "--lock-timeout", "-1")
    assert code == 2 and "--lock-timeout" in err
