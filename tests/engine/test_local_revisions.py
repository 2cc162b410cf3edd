"""The local platform's revisions (SPEC §3.6): one per template change, each deciding from real facts if it runs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
from support import build_agent_image as build

from orbit_ops.backends.local.builder import LocalBuilder
from orbit_ops.backends.local.platform import LocalPlatform
from orbit_ops.backends.local.revisions import KEPT_REVISIONS
from orbit_ops.fleet.health import Health, app_health
from orbit_ops.fleet.resources import App, Mount
from orbit_ops.fleet.status import read_health

DOCKERFILE = 'FROM python:3.12-slim\nLABEL org.orbit.env.required="SERIAL, REGION"\nCOPY app.py /app.py\n'
PLAIN_DOCKERFILE = "FROM python:3.12-slim\nCOPY app.py /app.py\n"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / ".orbit"


@pytest.fixture
def images(state_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {"plain": build(state_dir, tmp_path, "1.0.0", PLAIN_DOCKERFILE),
            "requiring": build(state_dir, tmp_path, "2.0.0", DOCKERFILE)}


@pytest.fixture
def platform(state_dir: Path, images: dict[str, str]) -> Iterator[LocalPlatform]:
    with LocalPlatform(state_dir, LocalBuilder(state_dir).local_registry) as opened:
        yield opened


def agent(image: str, **env: str) -> App:
    return App(name="agent-1a2b3c", image=image, env=MappingProxyType(dict(sorted(env.items()))))


async def health_of(platform: LocalPlatform, app: App) -> tuple[Health, str | None, str | None, str | None]:
    judged = (await read_health(platform, [app.name]))[app.name]
    return judged.health, judged.revision, judged.ready_revision, judged.health_reason


@pytest.mark.asyncio
async def test_a_revision_per_template_change_and_none_for_an_application_scope_one(
        platform: LocalPlatform, images: dict[str, str]) -> None:
    app = agent(images["plain"])
    await platform.create_app(app)
    changes = [replace(app, env=MappingProxyType({"LOG_LEVEL": "debug"})),  # env
               replace(app, image=images["requiring"], env=MappingProxyType({"REGION": "eu", "SERIAL": "1"})),
               replace(app, image=images["requiring"], env=MappingProxyType({"REGION": "eu", "SERIAL": "1"}),
                       mounts=(Mount("cust-rw", "/repo"),))]  # mounts
    for changed in changes:
        await platform.update_app(changed)
    await platform.update_app(replace(changes[-1], tags=MappingProxyType({"cost-center": "ops"})))  # tags only

    revisions = await platform.list_revisions(app.name)
    assert len(revisions) == 4
    assert all(revision.name.startswith(f"{app.name}--") for revision in revisions)
    assert [revision.active for revision in revisions] == [True, False, False, False]  # newest first
    assert {(r.provisioning_state, r.running_state, r.health_state) for r in revisions} == {
        ("Provisioned", "Running", "Healthy")}
    assert await health_of(platform, app) == (Health.HEALTHY, revisions[0].name, revisions[0].name, None)
    assert await platform.list_revisions("agent-1a2b3") == []  # a name that is a prefix sees none of them


@pytest.mark.asyncio
async def test_an_image_missing_from_the_registry_is_degraded_naming_it(
        platform: LocalPlatform, images: dict[str, str]) -> None:
    app = agent(images["plain"])
    await platform.create_app(app)
    [ready] = await platform.list_revisions(app.name)
    missing = images["plain"].rsplit(":", 1)[0] + ":9.9.9"
    await platform.update_app(replace(app, image=missing))

    health, latest, ready_name, reason = await health_of(platform, app)
    assert (health, ready_name) == (Health.DEGRADED, ready.name)
    assert latest != ready.name and reason is not None
    assert reason.startswith("image pull failed:") and missing in reason and "agent:9.9.9" in reason
    failed, previous = await platform.list_revisions(app.name)
    assert (failed.provisioning_state, failed.running_state, failed.health_state) == ("Failed", "Failed", "Unhealthy")
    assert (failed.active, failed.replicas) == (False, 0)
    assert previous.active  # the old revision keeps serving, as in single revision mode
    assert (await platform.list_apps())[app.name].image == missing  # the write itself succeeded


@pytest.mark.asyncio
async def test_a_required_variable_unset_is_degraded_naming_it(platform: LocalPlatform,
                                                                images: dict[str, str]) -> None:
    app = agent(images["requiring"], REGION="eu")
    await platform.create_app(app)
    health, _, ready, reason = await health_of(platform, app)
    assert (health, ready) == (Health.DEGRADED, None)  # a new app whose first revision fails has no ready one
    assert reason is not None and reason.startswith("provisioning failed:")
    assert "requires env SERIAL " in reason and "REGION" not in reason


@pytest.mark.asyncio
async def test_a_secret_env_variable_counts_as_set(platform: LocalPlatform, images: dict[str, str]) -> None:
    from orbit_ops.fleet.resources import AppSecret

    identity = "/subscriptions/0/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id"
    secret = AppSecret("https://kv.vault.azure.net/secrets/serial", identity)
    app = replace(agent(images["requiring"], REGION="eu"), identity=identity,
                  secrets=MappingProxyType({"serial": secret}), secret_env=MappingProxyType({"SERIAL": "serial"}))
    await platform.create_app(app)
    assert (await health_of(platform, app))[0] == Health.HEALTHY


@pytest.mark.asyncio
async def test_setting_the_variable_makes_a_new_ready_revision(platform: LocalPlatform, images: dict[str, str]) -> None:
    app = agent(images["requiring"], REGION="eu")
    await platform.create_app(app)
    await platform.update_app(replace(app, env=MappingProxyType({"REGION": "eu", "SERIAL": "7"})))
    health, latest, ready, reason = await health_of(platform, app)
    assert (health, reason) == (Health.HEALTHY, None) and latest == ready


@pytest.mark.asyncio
async def test_without_a_registry_no_image_pulls(state_dir: Path, images: dict[str, str]) -> None:
    with LocalPlatform(state_dir) as platform:
        app = agent(images["plain"])
        await platform.create_app(app)
        health, _, _, reason = await health_of(platform, app)
    assert health is Health.DEGRADED and reason is not None and "no registry" in reason


@pytest.mark.asyncio
async def test_a_healthy_fleet_reads_app_states_only(platform: LocalPlatform, images: dict[str, str]) -> None:
    from support import RecordingPlatform

    names = [f"agent-{n}" for n in ("aa", "bb", "cc")]
    for name in names:
        await platform.create_app(replace(agent(images["plain"]), name=name))
    await platform.update_app(replace(agent(images["plain"]), name="agent-cc", image=images["requiring"]))
    recorded = RecordingPlatform(platform)
    health = await read_health(recorded, names)  # type: ignore[arg-type]
    assert {name: judged.health for name, judged in health.items()} == {
        "agent-aa": Health.HEALTHY, "agent-bb": Health.HEALTHY, "agent-cc": Health.DEGRADED}
    assert recorded.calls == [("list_app_states", "*"), ("list_revisions", "agent-cc")]


@pytest.mark.asyncio
async def test_only_the_newest_revisions_are_kept(platform: LocalPlatform, images: dict[str, str]) -> None:
    app = agent(images["plain"])
    await platform.create_app(app)
    for n in range(KEPT_REVISIONS + 2):
        await platform.update_app(replace(app, env=MappingProxyType({"N": str(n)})))
    revisions = await platform.list_revisions(app.name)
    assert len(revisions) == KEPT_REVISIONS and sum(r.active for r in revisions) == 1


@pytest.mark.asyncio
async def test_apps_stored_before_revisions_derive_their_latest(state_dir: Path, platform: LocalPlatform,
                                                                images: dict[str, str]) -> None:
    app = agent(images["plain"])
    await platform.create_app(app)
    conn = sqlite3.connect(state_dir / "platform.sqlite")
    with conn:
        conn.execute("DELETE FROM resources WHERE kind = 'revision'")  # as an older Orbit left it
    conn.close()
    facts = (await platform.list_app_states())[app.name]
    [derived] = await platform.list_revisions(app.name)
    assert derived.name == facts.latest_revision == facts.latest_ready_revision
    assert app_health(facts, [derived]).health is Health.HEALTHY
    document = platform.stored_document("app", app.name)
    assert document is not None and json.dumps(document)  # the app itself is untouched
