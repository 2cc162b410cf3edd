"""Concurrency: overlapping sweeps from two processes, two builds of one tag, a roll racing an edit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import GIT_ENV

from orbit_ops.catalog.releases import load_records
from orbit_ops.operations.events import LogLine
from orbit_ops.operations.store import OperationStore

pytestmark = pytest.mark.resilience


@pytest.fixture
def fresh(demo_workspace: Path, tmp_path: Path) -> Path:
    """A copy of the demo with an empty platform: every solution must be created."""
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    for path in (root / ".orbit").glob("platform.sqlite*"):
        path.unlink()
    shutil.rmtree(root / ".orbit" / "shares", ignore_errors=True)
    return root


def start(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orbit_cli.main", "-w", str(root), *args, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **GIT_ENV})


def test_two_processes_provisioning_overlapping_sets_create_each_resource_once(fresh: Path) -> None:
    ids = sorted(p.stem for p in (fresh / "solutions").glob("*.yaml") if p.stem != "cyberdyne")
    first, second = ids[:25], ids[10:]  # 15 solutions in both sets
    a = start(fresh, "provision", *first, "--yes", "--concurrency", "4")
    b = start(fresh, "provision", *second, "--yes", "--concurrency", "4")
    out_a, err_a = a.communicate(timeout=300)
    out_b, err_b = b.communicate(timeout=300)
    assert a.returncode == 0, err_a
    assert b.returncode == 0, err_b
    result_a, result_b = json.loads(out_a), json.loads(out_b)
    overlap = set(first) & set(second)
    creates: dict[str, int] = {}
    for result in (result_a, result_b):
        for solution in result["solutions"]:
            assert solution["state"] == "succeeded", solution
            for action in solution["actions"]:
                if action["action"] == "create":
                    creates[action["name"]] = creates.get(action["name"], 0) + 1
    assert set(creates.values()) == {1}  # no resource was created twice
    assert len(creates) == 8 * len(ids)
    # A process whose snapshot predates the other's creates tries a create, meets "exists" and reconciles:
    # that attempt is a write call, but never a second resource.
    assert 8 * len(ids) <= result_a["writes"] + result_b["writes"] <= 8 * (len(ids) + len(overlap))
    # For every overlapping solution, the process that did not create it says why it wrote nothing.
    store = OperationStore(fresh / ".orbit")
    events = [e for record in store.list(limit=2) for e in store.read_events(record.id)]
    store.close()
    said: dict[str, list[str]] = {}
    for event in events:
        if isinstance(event, LogLine) and event.child in overlap:
            said.setdefault(event.child, []).append(event.text)
    reasons = ("waiting for solution", "in sync: nothing to do", "already exists")
    for solution in overlap:
        assert any(text.startswith(reasons) or "already exists" in text for text in said[solution]), said[solution]


def test_two_builds_of_the_same_tag_record_it_once(demo_workspace: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root, symlinks=True)
    before = len(load_records(root / "releases", "orbit"))
    a = start(root, "build", "orbit@1.3.0")
    b = start(root, "build", "orbit@1.3.0")
    results = [json.loads(p.communicate(timeout=120)[0]) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0
    assert sorted(r["status"] for r in results) == ["already-released", "built"]
    records = load_records(root / "releases", "orbit")
    assert len(records) == before + 1
    assert {r["digest"] for r in results} == {records[-1].digest}
