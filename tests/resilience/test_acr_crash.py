"""Crash safety of ACR builds: SIGKILL `orbit build` on the azure backend in each of its steps, then check.

The ACR emulator (HTTPS, in this process) and Azurite serve the build: upload of the context →
``scheduleRun`` → the run's log followed → the release record. Each `orbit build agent@1.0.0 --force`
is a subprocess started through a tiny ``python -c`` shim that sets the builder's polling and retry
waits to the test values (``azure_acr.DEFAULT_*``) before calling the real entry point; it is killed
(SIGKILL, whole process group) a random moment (< 50 ms) after its log reached the step the round aims at.

After every kill: the record file parses and holds the records before plus at most one; no operation
stays ``running``; where the kill landed (which step the operation's log had reached) is counted.
At the end, once the runs the dead builds left behind on the service have finished, a normal build
converges (a record appended whose digest is the one the registry holds, no stale worktree, no lock
waited for), the next build without ``--force`` is ``already-released`` and ``orbit releases --verify``
passes against the registry.

A run left behind by a killed build goes on and pushes: that is decision 0020 (the re-run rebuilds,
it never adopts the orphan), proven deterministically by the second test.

Kills: ``ORBIT_ACR_CRASH_KILLS`` (else ``ORBIT_CRASH_KILLS``), 20 by default: the rounds aim in turn (shuffled
in each cycle of five) at the start, prepare, upload, run and record steps, so every step is struck four
times whatever the machine's speed. (Before, 50 kills at random times within 1.1 × a build measured once: on
a busy machine up to 31 of 50 landed after the build had ended, and the short record step was rarely hit.)
A round (interpreter start with the Azure SDKs, a build against the emulators, the kill) takes about 0.6–0.9 s.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from acr_fixtures import AcrSetup, acr_environment, azurite_or_fail, on_the_emulated_registry
from emulators.azurite import Azurite
from emulators.server import make_certificate
from support import GIT_ENV, git, report

from orbit_ops.catalog.releases import load_records
from orbit_ops.operations.events import LogLine
from orbit_ops.operations.store import OperationStore

pytestmark = pytest.mark.resilience

KILLS = int(os.environ.get("ORBIT_ACR_CRASH_KILLS", os.environ.get("ORBIT_CRASH_KILLS", "20")))
SHIM = (
    "import sys\n"
    "from orbit_ops.backends.azure import acr as a\n"
    "from orbit_ops.backends.azure.acr_log import LogPolling\n"
    "a.DEFAULT_POLLING = LogPolling(idle_min=0.02, idle_max=0.1, status_every=0.2, settle=2.0)\n"
    "a.DEFAULT_ARM_OPTIONS = {'retry_backoff_factor': 0, 'polling_interval': 0}\n"
    "a.DEFAULT_BLOB_OPTIONS = {'initial_backoff': 0, 'increment_base': 0, 'random_jitter_range': 0}\n"
    "from orbit_cli.main import main\n"
    "main(sys.argv[1:])\n"
)
# Where a kill landed: the newest step the killed operation's log had reached, in build order.
PHASES = (
    ("prepare", "→ commit"),  # worktree and packing
    ("upload", "uploading the build context"),
    ("run", "scheduled ACR run"),  # following the run's log
    ("record", "succeeded: pushed"),  # the run is done; the record is being appended
    ("clean-up", "release record appended"),
)
STEPS = ("start", *(name for name, _ in PHASES))
# Each kill waits for one step of the build, then strikes a moment into it: every step is hit KILLS / 5 times,
# however fast or slow the machine is (kills at random times over a window measured once would land after the
# build's end when the machine got faster than when it was measured, and rarely in the short steps).
TARGETS = ("start", "prepare", "upload", "run", "record")
JITTER = 0.05


@pytest.fixture(scope="module")
def acr_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    azurite = azurite_or_fail(tmp_path_factory.mktemp("azurite"))
    yield azurite
    azurite.stop()


@pytest.fixture
def acr(acr_azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, make_workspace: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> Iterator[AcrSetup]:
    """The ACR environment with the workspace's ``login_server`` on the emulator (for ``--verify``)."""
    certificate = make_certificate(tmp_path_factory.mktemp("certificate"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    with acr_environment(acr_azurite, certificate, make_workspace, monkeypatch) as setup:
        yield on_the_emulated_registry(setup)


def orbit(setup: AcrSetup, *args: str, stdout: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    env = {**os.environ, **GIT_ENV, "ORBIT_AZURE_ACCESS_TOKEN": setup.token}
    return subprocess.Popen([sys.executable, "-c", SHIM, "-w", str(setup.root), *args], stdout=stdout,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)


def run_to_end(setup: AcrSetup, *args: str) -> tuple[int, str, str]:
    process = orbit(setup, *args, stdout=subprocess.PIPE)
    out, err = process.communicate(timeout=120)
    return process.returncode, out.decode(), err.decode()


def store(setup: AcrSetup) -> OperationStore:
    return OperationStore(setup.root / ".orbit")


def phase_reached(setup: AcrSetup, op_id: str) -> str:
    with store(setup) as operations:
        texts = [event.text for event in operations.read_events(op_id) if isinstance(event, LogLine)]
    reached = "start"
    for name, marker in PHASES:
        if any(marker in text for text in texts):
            reached = name
    return reached


def kill_in_phase(setup: AcrSetup, target: str, jitter: float, *args: str) -> tuple[str, str]:
    """Start ``orbit ARGS``; once its operation's log has reached step ``target``, SIGKILL the group ``jitter`` s later.

    ``"start"`` is the moment the operation is recorded running, before its first step is logged. Returns the
    operation's id and where the kill landed (a phase, or "after exit" if the build ended first).
    """
    with store(setup) as operations:
        known = {record.id for record in operations.list()}
        process = orbit(setup, *args)
        op_id = None
        while process.poll() is None and op_id is None:
            op_id = next((r.id for r in operations.list(limit=5) if r.id not in known and r.state == "running"), None)
            time.sleep(0.01)
    while op_id is not None and process.poll() is None and STEPS.index(phase_reached(setup, op_id)) < STEPS.index(
            target):
        time.sleep(0.01)
    time.sleep(jitter)
    landed = process.poll() is None
    if landed:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert op_id is not None, "the build never recorded its operation as running"
    return op_id, phase_reached(setup, op_id) if landed else "after exit"


def measured_build(setup: AcrSetup) -> float:
    """How long a build's operation runs, from recorded start to recorded finish."""
    code, _, err = run_to_end(setup, "build", "agent@1.0.0", "--force")
    assert code == 0, err
    with store(setup) as operations:
        newest = operations.list(limit=1)[0]
    started = datetime.fromisoformat((newest.started_at or newest.created_at).replace("Z", "+00:00"))
    return (datetime.fromisoformat(str(newest.finished_at).replace("Z", "+00:00")) - started).total_seconds()


def assert_clean_worktrees(setup: AcrSetup) -> None:
    listed = [line for line in git(setup.root, "worktree", "list", "--porcelain").splitlines()
              if line.startswith("worktree ")]
    assert len(listed) == 1, listed
    folder = setup.root / ".orbit" / "worktrees"
    assert not folder.exists() or not any(folder.iterdir())


def test_killed_acr_builds_leave_no_half_record_and_the_rerun_converges(acr: AcrSetup) -> None:
    rng = random.Random(31)
    records_file = acr.root / "releases" / "containers" / "agent.yaml"
    first_build = measured_build(acr)
    phases: Counter[str] = Counter()
    states: Counter[str] = Counter()
    started = time.monotonic()
    targets = [target for _ in range(-(-KILLS // len(TARGETS))) for target in rng.sample(TARGETS, len(TARGETS))]
    for round_ in range(KILLS):
        before = len(load_records(acr.root / "releases", "agent"))
        op_id, phase = kill_in_phase(acr, targets[round_], rng.uniform(0, JITTER), "build", "agent@1.0.0", "--force")
        phases[phase] += 1
        after = load_records(acr.root / "releases", "agent")  # parses and validates: never half-written
        assert len(after) in (before, before + 1), f"round {round_}"
        assert isinstance(yaml.safe_load(records_file.read_text()), list)
        with store(acr) as operations:
            assert [r.id for r in operations.list() if r.state in ("running", "queued")] == [], f"round {round_}"
            state = operations.get(op_id).state
        states[state] += 1
        if phase not in ("after exit", "clean-up"):
            assert state == "interrupted", f"round {round_}: killed in {phase}"
    loop = time.monotonic() - started

    acr.acr.wait_idle(30)  # the runs the killed builds left behind finish (and push) on their own
    runs = Counter(run.status for run in acr.acr.runs.values())
    recorded = {record.run_id for record in load_records(acr.root / "releases", "agent")}
    orphans = sum(1 for run in acr.acr.runs.values() if run.status == "Succeeded" and run.run_id not in recorded)

    code, out, err = run_to_end(acr, "build", "agent@1.0.0", "--force", "--json")
    assert code == 0, err
    built = json.loads(out)
    assert "waiting for" not in err  # no lock was left behind
    [*_, last] = load_records(acr.root / "releases", "agent")
    assert (built["status"], last.run_id, last.digest) == ("built", built["run_id"], built["digest"])
    assert acr.acr.registry["agent"]["1.0.0"] == acr.acr.registry["agent"]["latest"] == last.digest
    assert acr.acr.run(last.run_id).output_images[0]["digest"] == last.digest
    assert_clean_worktrees(acr)
    code, out, err = run_to_end(acr, "build", "agent@1.0.0", "--json")
    assert (code, json.loads(out)["status"]) == (0, "already-released"), err
    code, _, err = run_to_end(acr, "releases", "--verify")
    assert code == 0, err

    interrupted = states["interrupted"]
    report("acr build (emulators)", kills=KILLS, phases=dict(phases), states=dict(states), runs=dict(runs),
           orphan_runs_pushed=orphans, loop_s=round(loop, 1), first_build_s=round(first_build, 2))
    assert KILLS - phases["after exit"] >= KILLS // 2  # most kills land in a live build (noisy shared machine)
    assert interrupted >= KILLS // 3
    assert len({phase for phase in phases if phase not in ("after exit", "start")}) >= 3  # spread over the steps


def test_run_left_behind_by_a_killed_build_pushes_and_the_rerun_rebuilds_it(acr: AcrSetup) -> None:
    hold = acr.acr.hold(step=3)
    process = orbit(acr, "build", "agent@1.0.0")
    try:
        assert hold.reached.wait(60), "the run never reached step 3"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.communicate(timeout=60)
    with store(acr) as operations:
        [killed] = operations.list(kind="build")
        assert killed.state == "interrupted"
    hold.release.set()
    acr.acr.wait_idle(30)
    orphan = acr.acr.run("cb1")
    assert orphan.status == "Succeeded"  # nobody cancelled it: it finished and pushed
    assert acr.acr.registry["agent"]["1.0.0"] == orphan.output_images[0]["digest"]
    assert load_records(acr.root / "releases", "agent") == []  # but no record describes it

    code, out, err = run_to_end(acr, "build", "agent@1.0.0", "--json")

    assert code == 0, err
    built = json.loads(out)
    assert (built["status"], built["run_id"]) == ("built", "cb2")  # a new run; the orphan is not adopted
    [record] = load_records(acr.root / "releases", "agent")
    assert record.run_id == "cb2" and record.digest == acr.acr.registry["agent"]["1.0.0"]
    assert [r.status for r in acr.emulator.requests("POST", r"/scheduleRun$")] == [200, 200]
    code, _, err = run_to_end(acr, "releases", "--verify")
    assert code == 0, err

