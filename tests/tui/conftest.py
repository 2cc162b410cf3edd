"""Console fixtures: the fixed workspace for snapshots, demo copies for real builds, an app factory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from console_workspace import FIXED_NOW, build_workspace, record_operations

from orbit_ops.workspace import Workspace
from orbit_tui.app import OrbitApp

SIZE = (120, 40)


def frozen_clock() -> datetime:
    return FIXED_NOW


@pytest.fixture(scope="session")
def fixed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixed workspace with three finished operations; shared, so tests must not change it."""
    root = build_workspace(tmp_path_factory.mktemp("console") / "ws")
    record_operations(root)
    return root


@pytest.fixture
def fixed_home(fixed_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME is the fixed workspace's parent, so the header shows ``~/ws`` whatever the temp folder is."""
    monkeypatch.setenv("HOME", str(fixed_root.parent))
    return fixed_root


@pytest.fixture
def fixed_copy(fixed_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the fixed workspace (for tests that write), also shown as ``~/ws``."""
    root = tmp_path / "ws"
    shutil.copytree(fixed_root, root, symlinks=True)
    monkeypatch.setenv("HOME", str(tmp_path))
    return root


@pytest.fixture
def demo_copy(demo_workspace: Path, tmp_path: Path) -> Path:
    """A private copy of the session's demo workspace, for real builds."""
    root = tmp_path / "demo"
    shutil.copytree(demo_workspace, root, symlinks=True)
    return root


@pytest.fixture
def make_app() -> Callable[..., OrbitApp]:
    """``make_app(root, read_only=False)``: the console on a freshly opened workspace, clock frozen."""

    def make(root: Path, *, read_only: bool = False) -> OrbitApp:
        return OrbitApp(Workspace.open(root), read_only=read_only, clock=frozen_clock, refresh_seconds=3600)

    return make
