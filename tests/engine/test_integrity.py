"""Release records are checked against today's tags and registry: moved, vanished, damaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support import git

from orbit_ops.integrity import verify_records
from orbit_ops.workspace import Workspace


@pytest.fixture
def ws(demo_workspace: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    return Workspace.open(root)


def test_a_fresh_demo_verifies_clean(ws: Workspace) -> None:
    assert verify_records(ws) == []


def test_moved_and_deleted_tags_are_reported(ws: Workspace) -> None:
    root = ws.config.root
    git(root, "tag", "-f", "agent/v1.9.0", "HEAD")
    git(root, "tag", "-d", "mc/v1.0.0")
    ws.refresh()
    problems = {p.record.tag: p.problem for p in verify_records(ws)}
    assert set(problems) == {"agent/v1.9.0", "mc/v1.0.0"}
    assert problems["agent/v1.9.0"].startswith("the tag moved: record ")
    assert problems["mc/v1.0.0"].startswith("the tag mc/v1.0.0 no longer exists")


def test_missing_and_damaged_images_are_reported(ws: Workspace) -> None:
    layout = ws.config.state_dir / "registry" / "mc"
    index = json.loads((layout / "index.json").read_text())
    index["manifests"] = [m for m in index["manifests"]
                          if m["annotations"]["org.opencontainers.image.ref.name"] != "1.0.1"]
    (layout / "index.json").write_text(json.dumps(index))
    record = ws.release_of("agent", "2.1.0")
    assert record is not None
    agent = ws.config.state_dir / "registry" / "agent"
    manifest = json.loads((agent / "blobs" / "sha256" / record.digest.split(":")[1]).read_bytes())
    layer = agent / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    layer.write_bytes(layer.read_bytes()[:-10])  # a truncated blob
    problems = {p.record.tag: p.problem for p in verify_records(ws)}
    assert "is not in the registry any more" in problems["mc/v1.0.1"]
    assert "is damaged" in problems["agent/v2.1.0"]
