"""Release records are checked against today's tags and registry: moved, vanished, damaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support import git

from orbit_ops.fleet.integrity import verify_records
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


def _force_rebuild(ws: Workspace, component: str, version: str) -> None:
    """``orbit build COMPONENT@VERSION --force`` through the engine: a real local build, a second record."""
    import asyncio

    from orbit_ops.build.pipeline import plan_build, start_build

    async def drain() -> None:
        async for _event in start_build(ws, plan_build(ws, component, version, force=True)).events():
            pass

    asyncio.run(drain())
    ws.refresh()


def test_a_rebuild_with_another_digest_is_reported_with_both_digests(ws: Workspace) -> None:
    first = ws.release_of("agent", "2.1.0")
    assert first is not None
    _force_rebuild(ws, "agent", "2.1.0")
    second = ws.release_of("agent", "2.1.0")
    assert second is not None and second.digest != first.digest  # the local build stamps its time in the image
    problems = verify_records(ws)
    assert [(p.record.tag, p.record) for p in problems] == [("agent/v2.1.0", second)]  # reported on the current one
    text = problems[0].problem
    assert text.startswith("2 different digests in 2 records: ")
    assert f"{first.digest[:19]} (built {first.built_at})" in text
    assert f"{second.digest[:19]} (built {second.built_at}, current: the newest record)" in text
    assert text.endswith("; the registry holds the current one")


def test_a_rebuild_that_reproduced_the_image_is_not_a_problem(ws: Workspace) -> None:
    import dataclasses

    from orbit_ops.catalog.releases import append_record

    record = ws.release_of("mc", "1.1.0")
    assert record is not None
    again = dataclasses.replace(record, run_id="run-again", built_at="2030-01-01T00:00:00Z")
    append_record(ws.config.releases_dir, again)  # what a reproducible ACR build records on --force
    ws.refresh()
    assert ws.release_of("mc", "1.1.0") == again
    assert verify_records(ws) == []


def test_several_digests_say_which_one_the_registry_holds(ws: Workspace) -> None:
    import dataclasses

    from orbit_ops.catalog.releases import append_record

    record = ws.release_of("mc", "1.1.0")
    assert record is not None
    pushed_over = dataclasses.replace(record, digest="sha256:" + "b" * 64, run_id="run-2",
                                      built_at="2030-01-01T00:00:00Z")
    append_record(ws.config.releases_dir, pushed_over)  # the registry still holds the first build's image
    ws.refresh()
    found = [p.problem for p in verify_records(ws) if p.record.tag == "mc/v1.1.0"]
    several = [text for text in found if text.startswith("2 different digests in 2 records")]
    assert len(several) == 1 and len(found) == 2  # with the existing "registry has …, record says …"
    assert several[0].endswith(f"; the registry holds {record.digest[:19]}, an earlier record's, not the current one")
    assert "sha256:bbbbbbbbbbbb (built 2030-01-01T00:00:00Z, current: the newest record)" in several[0]
