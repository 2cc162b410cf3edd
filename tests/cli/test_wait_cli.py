"""``orbit wait`` (SPEC §3.6): waits for health without writing; 0 healthy, 1 otherwise, 2 for bad input."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import git

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def root(demo_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(demo_workspace, copy, symlinks=True)
    return copy


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a digest of its bytes: what a command that writes nothing leaves as it is.

    SQLite's ``-shm`` file is its readers' shared-memory index, which any read touches; it holds no data. Nor
    does an empty ``-wal`` file, which opening a WAL database may leave (or remove) whether it reads or not. Nor
    does ``.orbit/cache/``: what reading the solution files gave, kept so that they are read once (decision 0070),
    which a read brings up to date once the files are older than its racy window.
    """
    cache = root / ".orbit" / "cache"
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*"))
            if path.is_file() and not path.is_symlink() and not path.name.endswith("-shm")
            and not (path.name.endswith("-wal") and path.stat().st_size == 0)
            and cache not in path.parents}


def test_all_healthy_exits_0_with_one_line_each(root: Path, run_cli: Run) -> None:
    before = tree(root)
    code, out, err = run_cli("-w", str(root), "wait", "acme-corp", "globex", "--timeout", "5")
    assert code == 0, err
    assert out.splitlines() == ["acme-corp: healthy", "globex: healthy"]
    assert tree(root) == before  # a read: no operation recorded, nothing changed


def test_one_degraded_exits_1_with_its_reason(root: Path, run_cli: Run) -> None:
    dockerfile = root / "apps/agent/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + 'LABEL org.orbit.env.required="SERIAL"\n')
    git(root, "commit", "-qam", "agent requires SERIAL")
    git(root, "tag", "agent/v3.0.0")
    assert run_cli("-w", str(root), "build", "agent@3.0.0", "--json")[0] == 0
    code, _, err = run_cli("-w", str(root), "roll", "agent", "3.0.0", "globex", "--yes", "--health-timeout", "0")
    assert code == 0, err  # told not to wait, the roll does not judge the new revision: orbit wait does

    started = time.monotonic()
    code, out, err = run_cli("-w", str(root), "wait", "acme-corp", "globex", "--json")
    assert time.monotonic() - started < 10  # the local platform decides at once: no waiting for the timeout
    assert code == 1, err
    rows = {row["id"]: row for row in json.loads(out)}
    assert (rows["acme-corp"]["health"], rows["acme-corp"]["health_reason"]) == ("healthy", None)
    degraded = rows["globex"]
    assert degraded["health"] == "degraded" and degraded["health_reason"].startswith("agent: provisioning failed:")
    assert "SERIAL" in degraded["health_reason"]
    apps = degraded["apps"]  # keyed by component, as orbit status --json keys them
    assert set(apps) == {"orbit", "agent", "mc"}
    code, status_out, _ = run_cli("-w", str(root), "status", "globex", "--json")
    status_agent = json.loads(status_out)[0]["apps"]["agent"]
    for key in ("health", "revision", "ready_revision", "health_reason"):  # the keys of `orbit status --json`
        assert apps["agent"][key] == status_agent[key]
    assert apps["agent"]["revision"] != apps["agent"]["ready_revision"]

    code, out, _ = run_cli("-w", str(root), "wait", "globex")
    assert code == 1
    assert out.startswith("globex: degraded: agent: provisioning failed:") and "SERIAL" in out


def test_unknown_id_exits_2_and_writes_nothing(root: Path, run_cli: Run) -> None:
    before = tree(root)
    code, out, err = run_cli("-w", str(root), "wait", "acme-corp", "no-such-customer")
    assert code == 2 and out == ""
    assert "no-such-customer" in err
    assert run_cli("-w", str(root), "wait", "acme-corp", "--all")[0] == 2  # ids and --all: one or the other
    assert tree(root) == before


def test_timeout_0_answers_from_one_read(root: Path, run_cli: Run) -> None:
    from orbit_ops.fleet.wait import wait_for_health
    from orbit_ops.workspace import Workspace

    code, out, err = run_cli("-w", str(root), "wait", "acme-corp", "cyberdyne", "--timeout", "0")
    assert code == 1
    assert out.splitlines() == ["acme-corp: healthy", "cyberdyne: missing: orbit: the app does not exist"]
    assert "1 solution(s) neither healthy nor degraded after 0 s" in err

    platform = Workspace.open(str(root)).platform()
    once = asyncio.run(wait_for_health(platform, ["cyberdyne"], 0))
    assert (once.reads, once.timed_out, once.exit_code) == (1, True, 1)
    started = time.monotonic()
    polled = asyncio.run(wait_for_health(platform, ["cyberdyne", "acme-corp"], 0.3, interval=0.1))
    assert time.monotonic() - started >= 0.3 and polled.timed_out and 3 <= polled.reads <= 6
    assert [s.id for s in polled.solutions] == ["cyberdyne", "acme-corp"]


def test_all_with_only_and_exclude_under_read_only(root: Path, run_cli: Run) -> None:
    code, out, err = run_cli("-w", str(root), "--read-only", "wait", "--all", "--only", "a*", "--exclude",
                             "acme-*", "--json", "--timeout", "0")
    assert code == 0, err  # a read: --read-only lets it run
    assert [(row["id"], row["health"]) for row in json.loads(out)] == [("aperture-science", "healthy")]
    code, out, _ = run_cli("-w", str(root), "wait", "--all", "--only", "c*", "--timeout", "0")
    assert code == 1 and "cyberdyne: missing" in out


def test_an_invalid_solution_file_is_never_healthy(root: Path, run_cli: Run) -> None:
    (root / "solutions/bad-one.yaml").write_text("id: bad-one\npins: [\n")
    code, out, _ = run_cli("-w", str(root), "wait", "--all", "--only", "b*", "--json", "--timeout", "0")
    assert code == 1
    rows = {row["id"]: row for row in json.loads(out)}
    assert rows["bad-one"]["health"] is None and rows["bad-one"]["health_reason"].startswith("invalid: ")
    assert {rows[i]["health"] for i in rows if i != "bad-one"} == {"healthy"}


def test_waits_until_another_process_creates_the_apps(root: Path, run_cli: Run) -> None:
    import threading

    from orbit_ops.fleet.wait import WaitResult, wait_for_health
    from orbit_ops.workspace import Workspace

    results: list[WaitResult] = []

    def waiting() -> None:
        platform = Workspace.open(str(root)).platform()
        results.append(asyncio.run(wait_for_health(platform, ["wonka-foods"], 20, interval=0.05)))

    thread = threading.Thread(target=waiting)
    thread.start()
    time.sleep(0.2)  # a few reads see it missing
    code, _, err = run_cli("-w", str(root), "provision", "wonka-foods", "--yes")
    thread.join(timeout=30)
    assert code == 0, err
    [result] = results
    assert not result.timed_out and result.exit_code == 0 and result.reads >= 2
    assert result.solutions[0].health == "healthy"
