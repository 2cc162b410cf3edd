"""A small workspace that is byte-identical on every run: fixed git dates, content, records and operations.

The demo is made from ``datetime.now()``, so its commits, digests and times change between runs; snapshots
need a workspace whose every shown value is fixed. Git objects are identical when content, identity and dates
are; release records are written with fixed values; operations run through the real ``OperationRunner`` with
the engine's clock and id source frozen (:func:`frozen_engine_clock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import orbit_ops.operations.records
import orbit_ops.operations.store
from orbit_ops.backends.base import BuildRequest
from orbit_ops.backends.local.builder import LocalBuilder
from orbit_ops.build.context import pack_context
from orbit_ops.catalog.releases import ReleaseRecord, append_record
from orbit_ops.errors import BuildError
from orbit_ops.operations.runner import OperationRunner
from orbit_ops.operations.store import OperationStore

FIXED_NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
START = datetime(2026, 9, 1, 9, 0, 0, tzinfo=UTC)

CONFIG = """\
platform_repo: .
releases_dir: releases
solutions_dir: solutions
backend: local
components:
  orbit: {context: apps/orbit}
  agent: {context: apps/agent}
  mc: {context: apps/mc}
defaults:
  images: {orbit_tag: "1.2.0", agent_tag: "2.0.0", mc_tag: "1.1.0"}
"""

# (component, version, annotated, released), oldest first.
HISTORY = [
    ("orbit", "1.0.0", True, True),
    ("agent", "1.0.0", True, True),
    ("mc", "1.0.0", False, True),
    ("orbit", "1.1.0", True, True),
    ("agent", "2.0.0-rc.1", False, True),
    ("mc", "1.1.0", True, True),
    ("orbit", "1.2.0", False, True),
    ("agent", "2.0.0", True, True),
    ("orbit", "1.3.0", True, False),
]

# id, display name, pins that differ from the defaults
SOLUTIONS = [
    ("acme-corp", "Acme Corp", {}),
    ("globex", "Globex", {"orbit_tag": "1.1.0"}),
    ("hooli", "Hooli", {"agent_tag": "2.0.0-rc.1"}),
    ("initech", "Initech", {"orbit_tag": "latest"}),
    ("umbrella-health", "Umbrella Health", {"orbit_tag": "1.3.0"}),
    ("wayne-enterprises", "Wayne Enterprises", {"mc_tag": "1.0.0"}),
]


def _git(root: Path, *args: str, when: datetime | None = None) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Orbit Fixture",
        "GIT_AUTHOR_EMAIL": "fixture@orbit.invalid",
        "GIT_COMMITTER_NAME": "Orbit Fixture",
        "GIT_COMMITTER_EMAIL": "fixture@orbit.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    if when is not None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = stamp
    return subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True).stdout.strip()


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def build_workspace(root: Path) -> Path:
    """Create the fixed workspace in ``root`` (which must not exist)."""
    root.mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    _write(root, {"orbit.yaml": CONFIG, ".gitignore": ".orbit/\n"})
    for component in ("orbit", "agent", "mc"):
        _write(
            root,
            {
                f"apps/{component}/Dockerfile": f"FROM scratch\nCOPY VERSION /VERSION\nLABEL component={component}\n",
                f"apps/{component}/VERSION": "0.9.0\n",
            },
        )
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Initial platform", when=START)
    commits: dict[tuple[str, str], str] = {}
    for serial, (component, version, annotated, _released) in enumerate(HISTORY, start=1):
        when = START + timedelta(days=7 * serial)
        _write(root, {f"apps/{component}/VERSION": f"{version}\n"})
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", f"{component}: release {version}", when=when)
        tag = f"{component}/v{version}"
        if annotated:
            _git(root, "tag", "-a", tag, "-m", f"{component} {version}", when=when)
        else:
            _git(root, "tag", tag, when=when)
        commits[component, version] = _git(root, "rev-parse", "HEAD")
    for serial, (component, version, _annotated, released) in enumerate(HISTORY, start=1):
        if not released:
            continue
        digest = "sha256:" + hashlib.sha256(f"{component}@{version}".encode()).hexdigest()
        append_record(
            root / "releases",
            ReleaseRecord(
                component=component,
                version=version,
                tag=f"{component}/v{version}",
                commit=commits[component, version],
                image=f"fixture.azurecr.io/{component}:{version}",
                digest=digest,
                registry="fixture.azurecr.io",
                run_id=f"fixture-{serial:02d}",
                built_at=(START + timedelta(days=7 * serial, hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                builder="acr",  # no local image to verify: integrity checks the tags only
            ),
        )
    for solution_id, name, pins in SOLUTIONS:
        lines = [f"id: {solution_id}", f"display_name: {name}"]
        if pins:
            lines.append("images:")
            lines += [f'  {key}: "{value}"' for key, value in pins.items()]
        lines += ["env:", "  orbit:", f'    PUBLIC_BASE_URL: "https://{solution_id}.example.com"']
        _write(root, {f"solutions/{solution_id}.yaml": "\n".join(lines) + "\n"})
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Record releases", when=START + timedelta(days=80))
    _push_released_images(root)
    return root


def _push_released_images(root: Path) -> None:
    """Each released version's image in the local registry (``.orbit/registry``), built by the real local builder
    from its tag's context, so an app a test provisions has an image to pull and its revision runs (provisioning
    follows it to health, decision 0048). The records name the fixture's ACR, so integrity reads tags only."""
    for component, version, _annotated, released in HISTORY:
        if released:
            push_image(root, component, version)


def push_image(root: Path, component: str, version: str, *, requires: str = "") -> None:
    """Build ``component:version`` into the workspace's local registry with the real local builder (a tag already
    there is moved to the new image); ``requires`` names the env variables its image declares required (label
    ``org.orbit.env.required``)."""
    contexts = root.parent / f"contexts-{root.name}"
    context = contexts / f"{component}-{version}"
    label = f'LABEL org.orbit.env.required="{requires}"\n' if requires else ""
    _write(context, {"Dockerfile": f"FROM scratch\nCOPY VERSION /VERSION\nLABEL component={component}\n{label}",
                     "VERSION": f"{version}\n"})
    packed = pack_context(context, context / "Dockerfile", contexts / f"{component}-{version}.tar.gz")
    request = BuildRequest(component, version, f"{component}/v{version}", "0" * 40, packed, context / "Dockerfile",
                           "fixture", f"fixture-{component}-{version}")
    with ThreadPoolExecutor(1) as pool:  # a test's own loop may be running: the build gets a loop of its own
        pool.submit(asyncio.run, LocalBuilder(root / ".orbit").build(request, lambda _line: None)).result()
    shutil.rmtree(contexts)


def untag_image(root: Path, component: str, version: str) -> None:
    """Delete ``component:version``'s tag from the local registry, as an operator deleting an image would: a
    revision that needs it then fails to pull, and a plan cannot read its config."""
    index = root / ".orbit" / "registry" / component / "index.json"
    document = json.loads(index.read_text())
    document["manifests"] = [entry for entry in document["manifests"]
                             if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") != version]
    index.write_text(json.dumps(document))


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _FrozenDatetime:  # type: ignore[override]
        moment = FIXED_NOW if tz is not None else FIXED_NOW.replace(tzinfo=None)
        return cls.fromtimestamp(moment.timestamp(), tz) if tz is not None else cls(*moment.timetuple()[:6])


@contextlib.contextmanager
def frozen_engine_clock(first: int = 1) -> Iterator[None]:
    """The operation store's clock (its ids, and every time it records) stands at FIXED_NOW and its ids count
    from ``first`` (0001, 0002, …) while inside."""
    counter = itertools.count(first)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(orbit_ops.operations.store, "datetime", _FrozenDatetime)
        patch.setattr(orbit_ops.operations.records, "datetime", _FrozenDatetime)
        tokens = SimpleNamespace(token_hex=lambda _n: f"{next(counter):04d}")
        patch.setattr(orbit_ops.operations.store, "secrets", tokens)
        yield


BUILD_LINES = [
    "orbit/v1.2.0 → commit (fixture) (lightweight tag)",
    "checked out into a throwaway worktree .orbit/worktrees/fixture",
    "preflight: context apps/orbit: 2 files, 64 B",
    "Step 1/3 : FROM scratch",
    "Step 2/3 : COPY VERSION /VERSION",
    "Step 3/3 : LABEL component=orbit",
    "tagged oci:.orbit/registry/orbit:1.2.0",
    "tagged oci:.orbit/registry/orbit:latest",
    "release record appended to releases/containers/orbit.yaml",
    "worktree removed",
]


async def _scripted_build(ctx: Any) -> dict[str, Any]:
    for step, line in enumerate(BUILD_LINES, start=1):
        ctx.log(line)
        ctx.progress(min(step // 2, 5), 5)
    ctx.progress(5, 5)
    return {"status": "built"}


async def _scripted_sweep(ctx: Any) -> dict[str, Any]:
    for index, (child, outcome) in enumerate(
        [("acme-corp", "succeeded"), ("globex", "failed"), ("initech", "succeeded")], start=1
    ):
        ctx.child(child, "running")
        ctx.log("reading shares, storages and apps", child=child)
        if outcome == "failed":
            ctx.log("update app orbit-5f1c: image pull failed (manifest unknown)", child=child)
            ctx.child(child, "failed", "image pull failed")
        else:
            ctx.log("3 resources converged, 0 writes", child=child)
            ctx.child(child, "succeeded", "no changes")
        ctx.progress(index, 3)
    return {"solutions": [], "writes": 0}


async def _failing_build(ctx: Any) -> dict[str, Any]:
    ctx.log("mc/v1.1.0 → commit (fixture) (annotated tag)")
    ctx.progress(1, 5)
    raise BuildError("Dockerfile apps/mc/Dockerfile: unknown instruction 'COPPY' on line 2")


def record_operations(root: Path) -> list[str]:
    """Run three scripted operations through the real runner under the frozen clock; returns their ids."""

    async def run_all() -> list[str]:
        store = OperationStore(root / ".orbit")
        ids = []
        for kind, target, body, total in [
            ("build", "orbit@1.2.0", _scripted_build, 5),
            ("sweep", "3 solutions", _scripted_sweep, 3),
            ("build", "mc@1.1.0", _failing_build, 5),
        ]:
            runner = OperationRunner(store, kind, target, body, total=total)
            async for _event in runner.events():
                pass
            ids.append(runner.op_id)
        store.close()
        return ids

    with frozen_engine_clock():
        return asyncio.run(run_all())
