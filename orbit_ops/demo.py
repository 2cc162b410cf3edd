"""``orbit demo``: a realistic workspace to explore Orbit on the embedded local backend.

The platform repo is a real git history: three components with small but real Dockerfiles and programs
(:mod:`orbit_ops.demo_apps`), a version bump per release commit, annotated and lightweight tags, two
pre-releases, and work on main after the last tag (so building a tag visibly differs from the working tree).
Release records come from real builds by the local builder; solutions pin a spread of versions so every
status shows. One release, orbit 1.3.0-rc.1, requires ``MC_URL``, which every fourth solution does not set;
no solution runs it, so rolling it is the operator's move and shows health fail for exactly those.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from orbit_ops.catalog.gitrepo import open_repo, run_git
from orbit_ops.config.load import load_config
from orbit_ops.demo_apps import MC_URL, agent_main, component_files
from orbit_ops.errors import BuildError, InputError
from orbit_ops.fsutil import atomic_write_text
from orbit_ops.operations.events import OperationFinished
from orbit_ops.operations.kinds import OperationState

if TYPE_CHECKING:
    from orbit_ops.workspace import Workspace

# (component, version, annotated, released): the release history, oldest first.
HISTORY: list[tuple[str, str, bool, bool]] = [
    ("orbit", "1.0.0", True, True),
    ("agent", "1.0.0", True, True),
    ("mc", "1.0.0", False, True),
    ("agent", "1.1.0", False, True),
    ("orbit", "1.1.0", True, True),
    ("mc", "1.0.1", False, True),
    ("agent", "1.9.0", True, True),
    ("orbit", "1.2.0", True, True),
    ("agent", "1.10.0", True, True),  # SemVer: 1.10.0 sorts above 1.9.0
    ("mc", "1.1.0", True, True),
    ("agent", "2.0.0-rc.1", False, True),  # a pre-release: never picked as "latest"
    ("orbit", "1.2.1", False, True),
    ("agent", "2.0.0", True, True),
    ("mc", "1.2.0", True, True),
    ("agent", "2.1.0", True, True),
    ("orbit", "1.3.0-rc.1", True, True),  # links to mission control: needs MC_URL, which not every solution sets
    ("orbit", "1.3.0", True, False),  # tagged, not yet built
    ("mc", "1.3.0", False, False),
]
PLATFORM_MANIFEST = ("2026.11", {"orbit": "1.2.1", "agent": "2.1.0", "mc": "1.2.0"})
DEFAULT_PINS = {"orbit_tag": "1.2.1", "agent_tag": "2.0.0", "mc_tag": "1.1.0"}

CUSTOMERS = [
    "Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Enterprises", "Wonka Foods",
    "Tyrell Systems", "Cyberdyne", "Soylent", "Hooli", "Pied Piper", "Vandelay Imports", "Dunder Mifflin",
    "Oceanic Air", "Monarch Labs", "Aperture Science", "Black Mesa", "Massive Dynamic", "Gringotts",
    "Nakatomi Trading", "Prestige Worldwide", "Sterling Cooper", "Bluth Company", "Krusty Krab", "Los Pollos",
    "Buy n Large", "Virtucon", "Weyland Yutani", "Oscorp", "Planet Express", "Spacely Sprockets", "Cogswell Cogs",
    "Rekall", "Omni Consumer", "Ghostwood Mills", "Duff Brewing", "Blue Sun", "Ollivanders", "Zorg Industries",
]


@dataclass(frozen=True)
class DemoTag:
    component: str
    version: str
    annotated: bool
    released: bool


def create_demo(target: Path, *, solutions: int = 40, seed: int = 7,
                azure: Mapping[str, str] | None = None) -> Iterator[str]:
    """Create the demo workspace in ``target``, yielding a progress line per step.

    ``azure``: the keys of an ``azure:`` section (SPEC §2.0); the workspace then uses the azure
    backend, so the releases are built and the solutions provisioned there (the Azure-emulated demo,
    decision 0018, passes the emulators' endpoints). None: the embedded local backend.

    Raises:
        InputError: ``target`` exists and is not empty.
        BuildError: a release build failed.
    """
    if target.exists() and any(target.iterdir()):
        raise InputError(f"{target} exists and is not empty; name a new folder for the demo")
    target.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    yield f"creating demo workspace in {target}"
    _write_static_files(target, azure)
    tags = yield from _make_history(target)
    yield from _write_solutions(target, solutions, rng)
    yield from _release(target, [tag for tag in tags if tag.released])
    yield from _provision(target, rng)
    yield "demo workspace ready"


# --- files ------------------------------------------------------------------------------------

ORBIT_YAML = """\
# Orbit workspace of the demo: the platform repo is this folder itself.
platform_repo: .
releases_dir: releases
solutions_dir: solutions
backend: local              # the embedded backend: images in .orbit/registry, apps in .orbit/platform.sqlite

components:
  orbit: {context: apps/orbit}                          # the reader web app
  agent: {context: apps/agent, dockerfile: apps/agent/Dockerfile}
  mc:    {context: apps/mc}                             # mission control

defaults:
  images: {orbit_tag: "1.2.1", agent_tag: "2.0.0", mc_tag: "1.1.0"}
  share_quota_gib: 100
"""

AZURE_BACKEND_LINE = "backend: azure              # ACR Tasks, Container Apps, Azure Files: see azure: below"
GITIGNORE = ".orbit/\n__pycache__/\n"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _write_static_files(target: Path, azure: Mapping[str, str] | None = None) -> None:
    config = ORBIT_YAML
    if azure is not None:
        lines = [AZURE_BACKEND_LINE if line.startswith("backend:") else line for line in config.splitlines()]
        config = "\n".join(lines) + "\n\nazure:\n" + "".join(f"  {key}: {json.dumps(value)}\n"
                                                                  for key, value in azure.items())
    _write(target, {"orbit.yaml": config, ".gitignore": GITIGNORE, "README.md": _DEMO_README})


_DEMO_README = """\
# Orbit demo platform repo

Created by `orbit demo`. Components live under `apps/`, release tags are `<component>/v<version>`,
release records under `releases/containers/`, platform manifests under `releases/platform/`.
"""


# --- git history --------------------------------------------------------------------------------

def _git_env(when: datetime) -> dict[str, str]:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
    return {
        "GIT_AUTHOR_NAME": "Orbit Demo",
        "GIT_AUTHOR_EMAIL": "demo@orbit.invalid",
        "GIT_COMMITTER_NAME": "Orbit Demo",
        "GIT_COMMITTER_EMAIL": "demo@orbit.invalid",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
    }


def _make_history(target: Path) -> Generator[str, None, list[DemoTag]]:
    import git

    git.Repo.init(target, initial_branch="main")
    repo = open_repo(target)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7 * len(HISTORY) + 7)
    versions = {"orbit": "0.9.0", "agent": "0.9.0", "mc": "0.9.0"}
    for component in versions:
        _write(target, component_files(component, "0.9.0", 0))
    _commit(repo, "Initial platform: orbit, agent and mc", start)
    tags: list[DemoTag] = []
    for serial, (component, version, annotated, released) in enumerate(HISTORY, start=1):
        when = start + timedelta(days=7 * serial)
        _write(target, component_files(component, version, serial))
        _commit(repo, f"{component}: release {version}", when)
        tag = f"{component}/v{version}"
        if annotated:
            run_git(repo, "tag", "-a", tag, "-m", f"{component} {version}", env=_git_env(when))
        else:
            run_git(repo, "tag", tag, env=_git_env(when))
        tags.append(DemoTag(component, version, annotated, released))
        versions[component] = version
    # Work on main after the last release: the working tree no longer matches any tag.
    when = start + timedelta(days=7 * (len(HISTORY) + 1))
    _write(target, {"apps/agent/agent/__main__.py": agent_main("unreleased")})
    _commit(repo, "agent: work in progress after 2.1.0", when)
    # A stray tag that is not <component>/v<semver>: ignored and reported, never a crash.
    run_git(repo, "tag", "agent/v2.2")
    yield f"platform repo: {len(tags)} release tags over {len(HISTORY) + 2} commits"
    return tags


def _commit(repo: object, message: str, when: datetime) -> None:
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", message, env=_git_env(when))


# --- solutions ------------------------------------------------------------------------------------

def _solution_ids(count: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for index in range(count):
        name = CUSTOMERS[index % len(CUSTOMERS)]
        if index >= len(CUSTOMERS):
            name = f"{name} {index // len(CUSTOMERS) + 1}"
        out.append(("-".join(name.lower().split()), name))
    return out


def lacks_mc_url(index: int) -> bool:
    """Whether the demo's ``index``-th solution leaves the reader's ``MC_URL`` unset: every fourth has not been
    given it, so rolling orbit 1.3.0-rc.1 (which needs it) fails for exactly those."""
    return index % 4 == 3


def demo_ring(index: int) -> str:
    """The rollout ring of the demo's ``index``-th solution: one canary (it sets ``MC_URL``), an early ring of five
    (one of which lacks it), the main ring for the rest, so a roll in waves by ring halts in the early ring."""
    return "canary" if index == 0 else "early" if index <= 5 else "main"


def _write_solutions(target: Path, count: int, rng: random.Random) -> Iterator[str]:
    folder = target / "solutions"
    folder.mkdir(exist_ok=True)
    choices = {
        "orbit_tag": ["1.2.1"] * 6 + ["1.2.0", "1.1.0", "latest"],
        "agent_tag": ["2.0.0"] * 4 + ["2.1.0"] * 3 + ["1.10.0", "1.9.0", "latest"],
        "mc_tag": ["1.1.0"] * 5 + ["1.2.0"] * 2 + ["1.0.1"],
    }
    for index, (solution_id, display) in enumerate(_solution_ids(count)):
        pins = {key: rng.choice(options) for key, options in choices.items()}
        if index == 5:
            pins["agent_tag"] = "2.0.0-rc.1"  # a canary customer on the release candidate
        if index == 8:
            pins["orbit_tag"] = "1.3.0"  # tagged but not built yet: unreleased, provisioning refused
        overrides = {key: value for key, value in pins.items() if value != DEFAULT_PINS[key]}
        lines = [
            f"# {display}: managed by the platform team",
            f"id: {solution_id}",
            f"display_name: {display}",
        ]
        if overrides:
            lines.append("images:")
            for key, value in overrides.items():
                note = "  # floating: follows every release" if value == "latest" else ""
                lines.append(f'  {key}: "{value}"{note}')
        lines += [
            "labels:",
            f"  ring: {demo_ring(index)}",
            "env:",
            "  orbit:",
            f'    PUBLIC_BASE_URL: "https://{solution_id}.orbit.example.com"',
        ]
        if not lacks_mc_url(index):
            lines.append(f'    {MC_URL}: "https://{solution_id}.mc.example.com"')
        lines += [
            "  agent:",
            f"    LOG_LEVEL: {rng.choice(['info', 'info', 'debug'])}",
        ]
        if index % 9 == 4:
            lines.append("share_quota_gib: 250")
        atomic_write_text(folder / f"{solution_id}.yaml", "\n".join(lines) + "\n")
    yield f"{count} solutions written to {folder}"


# --- releases -----------------------------------------------------------------------------------

def _release(target: Path, tags: list[DemoTag]) -> Iterator[str]:
    from orbit_ops.catalog.releases import write_manifest

    version, components = PLATFORM_MANIFEST
    write_manifest(target / "releases", version, components, notes="November platform release")
    yield f"platform manifest v{version}"
    yield from _build_releases(target, tags)
    _commit(open_repo(target), "Record releases and the platform manifest", datetime.now(UTC).replace(microsecond=0))


def _build_releases(target: Path, tags: list[DemoTag]) -> Iterator[str]:
    """Build each released tag for real with the local builder, as ``orbit build`` does."""
    from orbit_ops.build.pipeline import plan_build, start_build
    from orbit_ops.operations.events import OperationFinished
    from orbit_ops.workspace import Workspace

    workspace = Workspace(load_config(target))

    async def run(tag: DemoTag) -> OperationFinished | None:
        plan = plan_build(workspace, tag.component, tag.version)
        finished = None
        async for event in start_build(workspace, plan).events():
            if isinstance(event, OperationFinished):
                finished = event
        return finished

    for tag in tags:
        finished = asyncio.run(run(tag))
        if finished is None or finished.state != OperationState.SUCCEEDED or finished.result is None:
            error = finished.error if finished else "no result"
            raise BuildError(f"demo build of {tag.component}/v{tag.version} failed: {error}")
        yield f"built {tag.component}/v{tag.version} → {finished.result['digest'][:19]}"


# --- provisioning and drift -------------------------------------------------------------------------

UNPROVISIONED = 3  # the newest customers have not been provisioned yet: their status is "missing"


def _provision(target: Path, rng: random.Random) -> Iterator[str]:
    """Provision most solutions as one real sweep, then change a few behind Orbit's back (drift)."""
    from orbit_ops.fleet.entries import SweepOutcome, plan_sweep, start_sweep
    from orbit_ops.workspace import Workspace

    workspace = Workspace(load_config(target))
    specs = workspace.solutions()
    chosen = specs[: len(specs) - UNPROVISIONED] if len(specs) > UNPROVISIONED else specs

    async def sweep() -> SweepOutcome | None:
        # The demo asks nobody: its plan is confirmed as it is made; the solution pinning an unbuilt tag is skipped.
        runner = start_sweep(workspace, await plan_sweep(workspace, chosen, skip_unreleased=True))
        outcome = None
        async for event in runner.events():
            if isinstance(event, OperationFinished):
                outcome = SweepOutcome(event)
        return outcome

    outcome = asyncio.run(sweep())
    converged, writes = (outcome.converged, outcome.writes) if outcome else (0, 0)
    yield f"provisioned {converged} of {len(specs)} solutions ({writes} writes)"
    yield from _drift(workspace, [spec.id for spec in chosen], rng)


def _drift(workspace: Workspace, ids: list[str], rng: random.Random) -> Iterator[str]:
    """Out-of-band changes, as someone editing in the portal would make them."""
    from dataclasses import replace

    from orbit_ops.fleet.resources import _frozen
    from orbit_ops.names import azure_names

    platform = workspace.platform()
    picked = rng.sample(ids, k=min(4, len(ids)))

    async def change() -> list[str]:
        done = []
        apps = await platform.list_apps()
        storages = await platform.list_storages()
        if len(picked) > 0:
            app = apps.get(azure_names(picked[0]).apps["agent"])
            if app is not None:
                await platform.update_app(replace(app, image=app.image.rsplit(":", 1)[0] + ":1.10.0"))
                done.append(f"{picked[0]}: agent image set to 1.10.0 by hand")
        if len(picked) > 1:
            app = apps.get(azure_names(picked[1]).apps["orbit"])
            if app is not None:
                env = dict(app.env) | {"PUBLIC_BASE_URL": "https://old.example.com"}
                await platform.update_app(replace(app, env=_frozen(env)))
                done.append(f"{picked[1]}: orbit PUBLIC_BASE_URL edited by hand")
        if len(picked) > 2:
            storage = storages.get(azure_names(picked[2]).storages["cust_ro"])
            if storage is not None:
                await platform.update_storage(replace(storage, access_mode="ReadWrite"))
                done.append(f"{picked[2]}: reader link switched to ReadWrite")
        if len(picked) > 3:
            app = apps.get(azure_names(picked[3]).apps["mc"])
            if app is not None:
                tags = dict(app.tags) | {"cost-center": "manual"}
                await platform.update_app(replace(app, tags=_frozen(tags)))
                done.append(f"{picked[3]}: mc tagged by hand")
        return done

    for line in asyncio.run(change()):
        yield f"drift: {line}"
