"""Builds from immutable tags (SPEC §3.1) on the local builder, end to end through operations."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import BlockingBuilder, git

from orbit_ops.backends.base import BuildRequest, BuiltImage
from orbit_ops.backends.local.builder import LocalBuilder
from orbit_ops.build.pipeline import parse_target, plan_build, plan_platform, start_build
from orbit_ops.catalog.releases import load_records
from orbit_ops.errors import InputError, NotFoundError, RefusedError
from orbit_ops.operations.events import Event, LogLine, OperationFinished
from orbit_ops.workspace import Workspace


@pytest.fixture
def ws(demo_workspace: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    return Workspace.open(root)


def run(runner: Any) -> list[Event]:
    async def collect() -> list[Event]:
        return [event async for event in runner.events()]

    return asyncio.run(collect())


def layer_files(layout: Path, tag: str) -> dict[str, bytes]:
    index = json.loads((layout / "index.json").read_text())
    [entry] = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag]
    blob = layout / "blobs" / "sha256"
    manifest = json.loads((blob / entry["digest"].split(":")[1]).read_bytes())
    layer = blob / manifest["layers"][0]["digest"].split(":")[1]
    with tarfile.open(layer, "r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def worktrees(root: Path) -> list[str]:
    return [line for line in git(root, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


def test_build_puts_the_tags_content_not_the_working_tree(ws: Workspace) -> None:
    root = ws.config.root
    # The operator has uncommitted and staged edits; the build must neither see nor touch them.
    main_py = root / "apps/agent/agent/__main__.py"
    main_py.write_text("print('operator edit, never released')\n")
    (root / "apps/agent/new.txt").write_text("staged")
    git(root, "add", "apps/agent/new.txt")
    status_before = git(root, "status", "--porcelain")
    index_before = hashlib.sha256((root / ".git/index").read_bytes()).hexdigest()
    git(root, "tag", "agent/v2.2.0", "agent/v2.1.0^{commit}")  # new version, same commit as 2.1.0

    plan = plan_build(ws, "agent", "2.2.0")
    events = run(start_build(ws, plan))
    finished = events[-1]
    assert isinstance(finished, OperationFinished) and finished.state == "succeeded", finished.error
    assert finished.result is not None and finished.result["status"] == "built"

    files = layer_files(root / ".orbit/registry/agent", "2.2.0")
    at_tag = git(root, "show", "agent/v2.2.0:apps/agent/agent/__main__.py")
    assert files["agent/__main__.py"].decode().rstrip("\n") == at_tag
    assert b"operator edit" not in files["agent/__main__.py"]
    assert "new.txt" not in files
    # .dockerignore: *.md excluded, !README.md re-included, tests/ excluded.
    assert "README.md" in files and "CHANGELOG.md" not in files
    assert not any(name.startswith("tests/") for name in files)
    assert "Dockerfile" in files

    # Only the release record changed in the operator's tree; their edits and index are as they were.
    assert git(root, "status", "--porcelain").replace("\n M releases/containers/agent.yaml", "") == status_before
    assert hashlib.sha256((root / ".git/index").read_bytes()).hexdigest() == index_before
    assert len(worktrees(root)) == 1
    record = load_records(ws.config.releases_dir, "agent")[-1]
    assert (record.version, record.commit, record.builder) == ("2.2.0", plan.tag.commit, "local")
    assert record.digest == finished.result["digest"]
    index = json.loads((root / ".orbit/registry/agent/index.json").read_text())
    tagged = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}
    assert tagged["2.2.0"] == tagged["latest"] == record.digest


def test_second_build_is_already_released_and_force_rebuilds(ws: Workspace) -> None:
    plan = plan_build(ws, "agent", None)
    assert plan.tag.version == "2.1.0" and plan.action == "already-released"
    forced = plan_build(ws, "agent", "2.1.0", force=True)
    assert forced.action == "build"
    events = run(start_build(ws, forced))
    assert isinstance(events[-1], OperationFinished) and events[-1].state == "succeeded"
    records = [r for r in load_records(ws.config.releases_dir, "agent") if r.version == "2.1.0"]
    assert len(records) == 2


def test_moved_tag_is_refused_naming_both_commits(ws: Workspace) -> None:
    root = ws.config.root
    old = git(root, "rev-parse", "agent/v2.0.0^{commit}")
    git(root, "tag", "-f", "agent/v2.0.0", "HEAD")
    new = git(root, "rev-parse", "HEAD")
    ws.refresh()
    with pytest.raises(RefusedError) as caught:
        plan_build(ws, "agent", "2.0.0")
    assert old in str(caught.value) and new in str(caught.value) and "moved" in str(caught.value)


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        ("all", RefusedError, "no 'orbit build all'"),
        ("agent@two", InputError, "not a version"),
        ("agent@1.5.0", NotFoundError, "nearest: 1.10.0, 1.9.0, 1.1.0"),
        ("web@1.0.0", NotFoundError, "unknown component 'web'"),
    ],
)
def test_bad_targets_are_refused_before_anything_is_written(ws: Workspace, target: str, error: type[Exception],
                                                            message: str) -> None:
    with pytest.raises(error, match=message):
        component, version = parse_target(target)
        plan_build(ws, component, version)
    assert not (ws.config.state_dir / "worktrees").exists() or not any((ws.config.state_dir / "worktrees").iterdir())


def test_context_or_dockerfile_missing_at_the_tag_is_input_error(ws: Workspace) -> None:
    root = ws.config.root
    text = (root / "orbit.yaml").read_text()
    (root / "orbit.yaml").write_text(text.replace("mc:    {context: apps/mc}", "mc:    {context: apps/mission}"))
    broken = Workspace.open(root)
    with pytest.raises(InputError, match=r"build context folder 'apps/mission' does not exist at mc/v1\.3\.0"):
        plan_build(broken, "mc", "1.3.0")
    (root / "orbit.yaml").write_text(text.replace("mc:    {context: apps/mc}",
                                                  "mc:    {context: apps/mc, dockerfile: apps/mc/Containerfile}"))
    broken = Workspace.open(root)
    with pytest.raises(InputError, match=r"Dockerfile 'apps/mc/Containerfile' does not exist at mc/v1\.3\.0"):
        plan_build(broken, "mc", "1.3.0")
    assert load_records(ws.config.releases_dir, "mc")[-1].version == "1.2.0"


def test_platform_build_lists_each_manifest_version(ws: Workspace) -> None:
    plans = plan_platform(ws, "2026.11")
    assert {(p.component.name, p.tag.version, p.action) for p in plans} == {
        ("orbit", "1.2.1", "already-released"),
        ("agent", "2.1.0", "already-released"),
        ("mc", "1.2.0", "already-released"),
    }


class FailingBuilder(LocalBuilder):
    async def build(self, request: BuildRequest, log: Callable[[str], None]) -> BuiltImage:
        log("builder: step that fails")
        from orbit_ops.errors import BuildError

        raise BuildError("the builder said no")


def test_failed_build_records_nothing_and_removes_the_worktree(ws: Workspace) -> None:
    plan = plan_build(ws, "mc", "1.3.0")
    events = run(start_build(ws, plan, FailingBuilder(ws.config.state_dir)))
    finished = events[-1]
    assert isinstance(finished, OperationFinished)
    assert finished.state == "failed" and finished.error == "the builder said no"
    assert [r.version for r in load_records(ws.config.releases_dir, "mc")][-1] == "1.2.0"
    assert len(worktrees(ws.config.root)) == 1
    assert not any((ws.config.state_dir / "worktrees").iterdir())
    assert not any((ws.config.state_dir / "tmp").iterdir())


def test_cancelled_build_cleans_up_and_records_nothing(ws: Workspace) -> None:
    plan = plan_build(ws, "mc", "1.3.0")

    async def scenario() -> OperationFinished:
        builder = BlockingBuilder(ws.config.state_dir)
        runner = start_build(ws, plan, builder)
        seen: list[Event] = []

        async def consume() -> None:
            async with contextlib.aclosing(runner.events()) as events:
                async for event in events:
                    seen.append(event)

        task = asyncio.create_task(consume())
        await asyncio.wait_for(builder.entered.wait(), 10)
        assert len(worktrees(ws.config.root)) == 2  # the build's worktree exists while it runs
        assert [p.name for p in (ws.config.state_dir / "tmp").iterdir()] == [f"{runner.op_id}.tar.gz"]
        task.cancel()  # what Ctrl+C does to the CLI's main task
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return ws.operations().get(runner.op_id)  # type: ignore[return-value]

    record: Any = asyncio.run(scenario())
    assert record.state == "cancelled"
    assert len(worktrees(ws.config.root)) == 1
    assert not any((ws.config.state_dir / "tmp").iterdir())
    assert [r.version for r in load_records(ws.config.releases_dir, "mc")][-1] == "1.2.0"


_KILLED_BUILD = """
import asyncio, sys
from pathlib import Path
from support import BlockingBuilder
from orbit_ops.build.pipeline import plan_build, start_build
from orbit_ops.workspace import Workspace

async def main() -> None:
    ws = Workspace.open(sys.argv[1])
    builder = BlockingBuilder(ws.config.state_dir)
    runner = start_build(ws, plan_build(ws, "mc", "1.3.0"), builder)
    async for event in runner.events():
        if builder.entered.is_set():
            print(runner.op_id, flush=True)  # packed, inside the builder: the test kills us here
            await asyncio.sleep(60)

asyncio.run(main())
"""


def test_archive_of_a_killed_build_is_removed_by_the_next_build(ws: Workspace) -> None:
    import os
    import signal
    import subprocess
    import sys

    tmp = ws.config.state_dir / "tmp"
    here = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parent), str(here)])}
    child = subprocess.Popen([sys.executable, "-c", _KILLED_BUILD, str(ws.config.root)], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        killed_op = child.stdout.readline().strip()
        assert killed_op, "the build process ended before its builder started"
        assert (tmp / f"{killed_op}.tar.gz").is_file()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    # What a kill inside the packing leaves: the temp file the archive is written through.
    half_written = tmp / ".20200101-000000-dead.tar.gz.k3j4h5.tmp"
    half_written.write_bytes(b"\x1f\x8b half")
    unrelated = tmp / "notes.txt"
    unrelated.write_text("not ours")
    # A build that is still running keeps its archive.
    from orbit_ops.operations.runner import OperationRunner

    async def idle(ctx: Any) -> None:
        return None

    live = OperationRunner(ws.operations(), "build", "mc@9.9.9", idle)
    live_archive = tmp / f"{live.op_id}.tar.gz"
    live_archive.write_bytes(b"\x1f\x8b live")

    events = run(start_build(ws, plan_build(ws, "mc", "1.3.0")))
    assert isinstance(events[-1], OperationFinished) and events[-1].state == "succeeded", events[-1].error
    assert any(isinstance(e, LogLine) and "build context archive(s) left by interrupted builds" in e.text
               for e in events)
    assert sorted(p.name for p in tmp.iterdir()) == sorted([live_archive.name, unrelated.name])
    assert ws.operations().get(killed_op).state == "interrupted"


def test_stale_worktree_of_a_dead_operation_is_pruned(ws: Workspace) -> None:
    root = ws.config.root
    stale = ws.config.state_dir / "worktrees" / "20200101-000000-dead"
    git(root, "worktree", "add", "--detach", str(stale), "HEAD")
    events = run(start_build(ws, plan_build(ws, "mc", "1.3.0")))
    assert any(isinstance(e, LogLine) and "stale worktree" in e.text for e in events)
    assert not stale.exists()
    assert len(worktrees(root)) == 1


@pytest.mark.parametrize("cut", ["folder-gone", "before-commondir"])
def test_worktree_left_by_a_kill_inside_git_worktree_add_is_pruned(ws: Workspace, cut: str) -> None:
    # What `git worktree add` leaves when killed before it finishes: git's record, locked
    # "initializing", with or without the folder, possibly without its commondir file (which breaks
    # later worktree commands). `git worktree prune` alone keeps locked records.
    root = ws.config.root
    name = "20200101-000000-dead"
    stale = ws.config.state_dir / "worktrees" / name
    git(root, "worktree", "add", "--detach", str(stale), "HEAD")
    admin = root / ".git" / "worktrees" / name
    (admin / "locked").write_text("initializing\n")
    if cut == "folder-gone":
        shutil.rmtree(stale)
    else:
        (admin / "commondir").unlink()
    events = run(start_build(ws, plan_build(ws, "mc", "1.3.0")))
    assert isinstance(events[-1], OperationFinished) and events[-1].state == "succeeded"
    assert len(worktrees(root)) == 1
    assert name not in git(root, "worktree", "list")
    assert not admin.exists() and not stale.exists()


def test_follow_from_another_store_streams_a_running_build(ws: Workspace) -> None:
    from orbit_ops.operations.log import follow
    from orbit_ops.operations.store import OperationStore

    plan = plan_build(ws, "mc", "1.3.0")

    async def scenario() -> list[Event]:
        builder = BlockingBuilder(ws.config.state_dir)
        runner = start_build(ws, plan, builder)
        producer = asyncio.create_task(_drain(runner))
        await asyncio.wait_for(builder.entered.wait(), 10)
        other = OperationStore(ws.config.state_dir)  # as another process would open it
        followed: list[Event] = []

        async def tail() -> None:
            async for event in follow(other, runner.op_id, poll=0.02):
                followed.append(event)
                if isinstance(event, LogLine) and "waiting for the test" in event.text:
                    builder.release.set()

        await asyncio.wait_for(asyncio.gather(tail(), producer), 20)
        return followed

    followed = asyncio.run(scenario())
    texts = [e.text for e in followed if isinstance(e, LogLine)]
    assert texts.index("builder: waiting for the test") < next(i for i, t in enumerate(texts) if "tagged" in t)
    assert isinstance(followed[-1], OperationFinished) and followed[-1].state == "succeeded"


async def _drain(runner: Any) -> None:
    async for _ in runner.events():
        pass
