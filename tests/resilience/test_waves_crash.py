"""Crash safety of rolls in waves (issue 15): SIGKILL a waved roll mid-wave, ``--resume`` it, again and again.

The chain of roll → resume → resume … converges: every solution ends on the version, healthy, and every wave is
recorded as done by exactly one operation of the chain (a resume never redoes a wave that succeeded). Each killed
operation reads ``interrupted``. ``ORBIT_WAVE_KILLS`` sets the number of kills (default 8).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from support import GIT_ENV, report

from orbit_ops.operations.store import OperationStore

KILLS = int(os.environ.get("ORBIT_WAVE_KILLS", "8"))
WAVES = "1,10%,25%,*"
pytestmark = pytest.mark.resilience


def orbit(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "orbit_cli.main", "-w", str(root), *args, "--yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **GIT_ENV},
                            start_new_session=True)


def newest_roll(root: Path) -> str | None:
    """The newest roll that can be resumed: one killed in the instant between its record and its layout file is
    not (it had not begun; the operator resumes the one before, as its refusal says)."""
    store = OperationStore(root / ".orbit")
    try:
        rolls = [record for record in store.list() if record.kind == "roll"]
    finally:
        store.close()
    return next((r.id for r in rolls if (root / ".orbit" / "rolls" / f"{r.id}.json").exists()), None)


def running_wave(root: Path, op_id: str) -> int:
    """The wave operation ``op_id`` is in (0 before the first; 99 once it ended)."""
    store = OperationStore(root / ".orbit")
    try:
        record = store.get(op_id)
    finally:
        store.close()
    if record.finished:
        return 99
    waves = [int(name.split()[1]) for name, child in record.children.items()
             if name.startswith("wave ") and child.state == "running"]
    return max(waves, default=0)


def run(root: Path, args: list[str], rng: random.Random, kill: bool) -> tuple[int | None, int | None, str]:
    """Run ``orbit roll ARGS``; when ``kill``, SIGKILL it inside a random wave, a random moment after that wave
    began. Returns the exit code, the wave the kill landed in (None: not killed, or it ended first) and stderr."""
    before = newest_roll(root)
    process = orbit(root, "roll", *args)
    if not kill:
        _, err = process.communicate(timeout=300)
        return process.returncode, None, err.decode()
    while process.poll() is None and newest_roll(root) in (before, None):
        time.sleep(0.005)
    op_id, target = newest_roll(root), rng.randint(1, 4)
    while process.poll() is None and op_id is not None and running_wave(root, op_id) < target:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.08))
    landed = running_wave(root, op_id) if process.poll() is None and op_id is not None else None
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    _, err = process.communicate(timeout=60)
    return process.returncode, landed if landed != 99 else None, err.decode()


def roll_chain(root: Path, version: str, rng: random.Random, kills: int) -> tuple[list[int], list[str]]:
    """Roll agent ``version`` in waves, killing the roll and then its resumes ``kills`` times in all, then resume
    it to its end. Returns the waves the kills landed in and the chain's operations, oldest first."""
    known = {record_id for record_id in all_rolls(root)}
    args = ["agent", version, "--all", "--exclude", "cyberdyne", "--waves", WAVES]  # cyberdyne pins an unbuilt orbit
    landed: list[int] = []
    for attempt in range(kills + 5):
        code, wave, err = run(root, args, rng, kill=attempt < kills)
        if wave is not None:
            landed.append(wave)
        elif code == 0:
            break
        if code == 2 and "succeeded; nothing to resume" in err:
            code = 0  # the kill came after the last wave had succeeded: the roll was done; its resume says so
            break
        last = newest_roll(root)
        assert last is not None, err
        args = ["--resume", last]
    assert code == 0, f"the chain of resumes did not converge: {err}"
    return landed, [record_id for record_id in reversed(all_rolls(root)) if record_id not in known]


def all_rolls(root: Path) -> list[str]:
    store = OperationStore(root / ".orbit")
    try:
        return [record.id for record in store.list() if record.kind == "roll"]
    finally:
        store.close()


def test_killed_waved_rolls_resume_to_the_end_with_no_wave_done_twice(demo_workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    rng = random.Random(15)
    landed: list[int] = []
    operations = interrupted = 0
    for round_, version in enumerate(["2.1.0", "2.0.0"] * (KILLS // 4 + 1)):
        if len(landed) >= KILLS:
            break
        hits, chain = roll_chain(root, version, rng, kills=2)
        landed += hits
        store = OperationStore(root / ".orbit")
        try:
            records = [store.get(op_id) for op_id in chain]
        finally:
            store.close()
        operations += len(records)
        interrupted += sum(record.state == "interrupted" for record in records)
        assert all(record.state in ("interrupted", "succeeded", "failed") for record in records)
        done = Counter(name for record in records for name, child in record.children.items()
                       if name.startswith("wave ") and child.state == "succeeded"
                       and "not run again" not in child.message)
        assert done == Counter({f"wave {index}": 1 for index in range(1, 5)}), (round_, done)
        out = subprocess.run([sys.executable, "-m", "orbit_cli.main", "-w", str(root), "status", "--json"],
                             capture_output=True, text=True, env={**os.environ, **GIT_ENV}, timeout=120, check=False)
        rows = [row for row in json.loads(out.stdout) if row["id"] != "cyberdyne"]
        assert {(row["apps"]["agent"]["live"], row["apps"]["agent"]["health"]) for row in rows} == {
            (version, "healthy")}
    assert len(landed) >= KILLS and interrupted >= len(landed) // 2
    report("waved roll killed mid-wave, resumed", kills=len(landed), by_wave=dict(sorted(Counter(landed).items())),
           operations=operations, interrupted=interrupted)
