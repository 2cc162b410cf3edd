"""``.orbit/`` is the operator's alone: folders 0700, files 0600, whatever the umask; older workspaces tightened."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orbit_ops.backends.local.platform import LocalPlatform
from orbit_ops.operations.kinds import OperationKind
from orbit_ops.operations.locks import held, lock_path
from orbit_ops.operations.runner import run_operation
from orbit_ops.operations.store import OperationStore
from orbit_ops.statedir import make_private_dir
from orbit_ops.workspace import Workspace


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def loose(folder: Path, *, skip: tuple[str, ...] = ()) -> list[str]:
    """Everything under ``folder`` (itself included) that group or others may read, write or enter."""
    found = [] if not mode(folder) & 0o077 else ["."]
    for root, folders, files in os.walk(folder):
        for name in (*folders, *files):
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            if not rel.startswith(skip) and not path.is_symlink() and mode(path) & 0o077:
                found.append(f"{rel} {oct(mode(path))}")
    return found


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask there is, so only the modes Orbit asks for count."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_state_folder_is_private_whatever_the_umask(tmp_path: Path, open_umask: None) -> None:
    state = tmp_path / ".orbit"

    async def body(ctx: Any) -> None:
        ctx.log("DB_PASSWORD would never be logged, but the log is private anyway")
        async with held(lock_path(state, "solution-acme-corp"), what="solution acme-corp"):
            pass

    with OperationStore(state) as store:
        async def drive() -> None:
            async for _ in run_operation(store, "provision", "acme-corp", body):
                pass

        asyncio.run(drive())
    with LocalPlatform(state):
        pass
    make_private_dir(state / "tmp" / "nested")
    assert mode(state) == 0o700
    for name in ("operations.sqlite", "platform.sqlite", "operations.sqlite.init.lock", "platform.sqlite.init.lock"):
        assert mode(state / name) == 0o600, name
    assert [mode(p) for p in (state / "logs").iterdir()] == [0o600]
    assert [mode(p) for p in (state / "locks").iterdir()] == [0o600]
    assert {mode(p) for p in (state / "tmp", state / "tmp" / "nested", state / "logs", state / "locks",
                              state / "shares")} == {0o700}
    assert loose(state) == []


def test_a_store_open_gives_wal_and_shm_the_private_mode(tmp_path: Path, open_umask: None) -> None:
    state = tmp_path / ".orbit"
    with OperationStore(state) as store, OperationStore(state) as other:  # both open: the WAL stays
        store.create(OperationKind.BUILD, "mc@1.0.0", 1)
        assert other.list()[0].target == "mc@1.0.0"
        side = [Path(str(store.path) + suffix) for suffix in ("-wal", "-shm")]
        assert all(path.exists() for path in side)
        assert [mode(path) for path in side] == [0o600, 0o600]


def test_the_demo_state_folder_is_private(demo_workspace: Path) -> None:
    state = demo_workspace / ".orbit"
    assert {mode(p) for p in state.iterdir() if p.is_dir()} == {0o700}
    # Shares hold their sidecars (the env-free share documents) and folders; the registry's layouts sit
    # in a 0700 folder (decision 0029).
    assert loose(state, skip=("registry/",)) == []
    assert any(p.name.endswith(".share.json") for p in (state / "shares").iterdir())


def test_an_older_workspace_is_tightened_when_a_store_opens_it(demo_workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    state = root / ".orbit"
    for folder, _folders, files in os.walk(state):  # what Orbit made before it kept .orbit/ private
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(Path(folder) / name, 0o644)
    assert len(loose(state)) > 100
    ws = Workspace.open(root)
    ws.operations().list(limit=1)
    assert loose(state) == []
    assert mode(state / "platform.sqlite") == 0o600 and mode(state / "shares") == 0o700


def test_tightening_never_follows_a_link_out_of_the_state_folder(demo_workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    state = root / ".orbit"
    outside = tmp_path / "shared-notes.txt"
    outside.write_text("not Orbit's\n")
    os.chmod(outside, 0o644)
    os.symlink(outside, state / "shares" / "notes")
    os.chmod(state, 0o755)  # an older workspace: the walk runs
    Workspace.open(root).operations().list(limit=1)
    assert mode(state) == 0o700
    assert mode(outside) == 0o644


_CUT_SHORT = """
import os, resource, signal, sys
from pathlib import Path
from orbit_ops.errors import BackendError
from orbit_ops.operations.events import LogLine
from orbit_ops.operations.log import open_append, write_lines

path = Path(sys.argv[1])
fd = open_append(path)
write_lines(fd, [LogLine("op", "2026-01-01T00:00:00.000Z", "stored before the disk filled")])
size = os.fstat(fd).st_size
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails like one on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 150, resource.RLIM_INFINITY))
batch = [LogLine("op", "2026-01-01T00:00:01.000Z", f"line {i} " + "x" * 60) for i in range(5)]
try:
    write_lines(fd, batch)
except BackendError as exc:
    print("refused:", exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
write_lines(fd, [LogLine("op", "2026-01-01T00:00:02.000Z", "written once there was room again")])
"""


def test_a_log_write_cut_short_by_a_full_disk_leaves_no_half_line(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    log = tmp_path / "op.jsonl"
    done = subprocess.run([sys.executable, "-c", _CUT_SHORT, str(log)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert done.returncode == 0, done.stderr
    assert "refused: cannot write the log of operation op" in done.stdout
    lines = log.read_text().splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["stored before the disk filled",
                                                            "written once there was room again"]
