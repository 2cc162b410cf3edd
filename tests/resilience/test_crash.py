"""Crash safety: SIGKILL builds, rolls and 200-solution sweeps at random points, then check the wreckage.

After every kill: no release record or solution file is half-written, the operation reads as
``interrupted`` (never ``running``), nothing left behind blocks the next run, and the next run
converges. The counts go to ``docs/reliability.md``. Each scenario runs ``ORBIT_CRASH_KILLS`` kills (16 by
default), one at a random point in each equal slice of the operation's window (``tests/kill_points.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from kill_points import kill_delays
from support import GIT_ENV, git, report

from orbit_ops.catalog.releases import load_records
from orbit_ops.config.load import load_config, load_solutions
from orbit_ops.operations.store import OperationStore

KILLS = int(os.environ.get("ORBIT_CRASH_KILLS", "16"))
pytestmark = pytest.mark.resilience


def orbit(root: Path, *args: str, stdout: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    env = {**os.environ, **GIT_ENV}
    return subprocess.Popen([sys.executable, "-m", "orbit_cli.main", "-w", str(root), *args],
                            stdout=stdout, stderr=subprocess.STDOUT if stdout == subprocess.PIPE else subprocess.PIPE,
                            env=env, start_new_session=True)


def run_to_end(root: Path, *args: str) -> tuple[int, str]:
    """Run ``orbit ARGS`` to its end; returns its exit code and everything it printed (for failures)."""
    process = orbit(root, *args, stdout=subprocess.PIPE)
    out, _ = process.communicate(timeout=300)
    return process.returncode, out.decode()


def kill_at_random(root: Path, delay: float, *args: str) -> bool:
    """Start ``orbit ARGS``; once its operation is running, SIGKILL the process group after ``delay`` seconds.

    Returns True if the kill landed while the operation was still running.
    """
    store = OperationStore(root / ".orbit")
    known = {record.id for record in store.list()}
    process = orbit(root, *args)
    try:
        while process.poll() is None:
            if any(r.id not in known and r.state == "running" for r in store.list(limit=5)):
                break
            time.sleep(0.01)
        time.sleep(delay)
        killed = process.poll() is None
        if killed:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
        return killed
    finally:
        store.close()


def no_operation_running(root: Path) -> list[str]:
    store = OperationStore(root / ".orbit")
    try:
        return [f"{r.id} {r.state}" for r in store.list() if r.state in ("running", "queued")]
    finally:
        store.close()


def timed(root: Path, *args: str) -> float:
    """How long the operation of ``orbit ARGS`` runs (from its start to its finish, per the store)."""
    code, err = run_to_end(root, *args)
    assert code in (0, 1), err
    store = OperationStore(root / ".orbit")
    try:
        newest = store.list(limit=1)[0]
    finally:
        store.close()
    started = datetime.fromisoformat((newest.started_at or newest.created_at).replace("Z", "+00:00"))
    finished = datetime.fromisoformat(str(newest.finished_at).replace("Z", "+00:00"))
    return max((finished - started).total_seconds(), 0.05)



@pytest.fixture
def demo(demo_workspace: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    return root


def test_killed_builds_leave_no_half_record_and_no_blocking_worktree(demo: Path) -> None:
    rng = random.Random(11)
    window = timed(demo, "build", "mc@1.3.0") * 0.8
    records_file = demo / "releases" / "containers" / "mc.yaml"
    killed = interrupted = 0
    for delay in kill_delays(rng, KILLS, window):  # one kill in each slice of the window
        before = len(load_records(demo / "releases", "mc"))
        killed += kill_at_random(demo, delay, "build", "mc@1.3.0", "--force")
        after = load_records(demo / "releases", "mc")  # parses: never half-written
        assert len(after) in (before, before + 1)
        yaml.safe_load(records_file.read_text())
        assert no_operation_running(demo) == []
    store = OperationStore(demo / ".orbit")
    interrupted = sum(1 for r in store.list(kind="build") if r.state == "interrupted")
    store.close()
    code, err = run_to_end(demo, "build", "mc@1.3.0", "--force")
    assert code == 0, err
    assert [line for line in git(demo, "worktree", "list").splitlines() if line] == [
        line for line in git(demo, "worktree", "list").splitlines() if ".orbit/worktrees" not in line
    ]
    assert not any((demo / ".orbit" / "worktrees").iterdir())
    # A kill can land after the build finished (the machine is shared and noisy): count, and require
    # that a good share of kills really interrupted a running build.
    assert interrupted >= KILLS // 4
    report("build", kills=KILLS, killed_mid_run=killed, interrupted=interrupted, records=len(after) + 1)


def make_fleet(root: Path, count: int) -> None:
    """Add solutions until the workspace has ``count`` (copies of the demo's, renamed)."""
    folder = root / "solutions"
    template = (folder / "acme-corp.yaml").read_text()
    have = len(list(folder.glob("*.yaml")))
    for index in range(count - have):
        sid = f"fleet-{index:04d}"
        (folder / f"{sid}.yaml").write_text(template.replace("acme-corp", sid).replace("Acme Corp", f"Fleet {index}"))


def test_killed_sweeps_and_rolls_converge_on_rerun(demo: Path) -> None:
    rng = random.Random(12)
    make_fleet(demo, 200)
    assert len(load_solutions(load_config(demo))) == 200
    timed(demo, "provision", "--all", "--yes", "--exclude", "cyberdyne")  # the first one creates 160 solutions
    sweep_window = timed(demo, "provision", "--all", "--yes", "--exclude", "cyberdyne") * 0.9
    roll_window = timed(demo, "roll", "agent", "2.1.0", "--all", "--yes") * 0.9
    killed_sweeps = killed_rolls = 0
    versions = ["2.0.0", "1.10.0", "2.1.0"]
    roll_delays = kill_delays(rng, (KILLS + 1) // 2, roll_window)  # even rounds: one kill in each slice
    sweep_delays = kill_delays(rng, KILLS // 2, sweep_window)  # odd rounds
    for round_ in range(KILLS):
        files = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (demo / "solutions").glob("*.yaml")}
        if round_ % 2 == 0:
            # A roll edits 200 files, then sweeps: kill it anywhere, files must each be whole.
            killed_rolls += kill_at_random(demo, roll_delays[round_ // 2], "roll", "agent", versions[round_ % 3],
                                           "--all", "--yes")
            specs = load_solutions(load_config(demo))  # every file still parses and validates
            assert len(specs) == 200
            for spec in specs:
                assert spec.pin("agent") in {*versions, "latest", "1.9.0", "2.0.0-rc.1"}
        else:
            killed_sweeps += kill_at_random(demo, sweep_delays[round_ // 2], "provision", "--all", "--yes", "--exclude",
                                            "cyberdyne")
            assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == files
        assert no_operation_running(demo) == []
    code, err = run_to_end(demo, "provision", "--all", "--yes", "--exclude", "cyberdyne", "--no-wait")
    assert code == 0, err  # no lock was left behind: --no-wait would have failed on one
    process = subprocess.run([sys.executable, "-m", "orbit_cli.main", "-w", str(demo), "provision", "--all",
                              "--yes", "--exclude", "cyberdyne", "--json"], capture_output=True, text=True,
                             env={**os.environ, **GIT_ENV}, timeout=300)
    assert json.loads(process.stdout)["writes"] == 0
    store = OperationStore(demo / ".orbit")
    interrupted = sum(1 for r in store.list() if r.state == "interrupted")
    store.close()
    report("sweep+roll (200 solutions)", kills=KILLS, killed_rolls=killed_rolls, killed_sweeps=killed_sweeps,
           interrupted=interrupted)
    assert killed_rolls + killed_sweeps >= KILLS // 4  # kills after the end are counted, not failed
    assert interrupted >= KILLS // 4
