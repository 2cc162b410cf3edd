"""The local platform backend: ARM-shaped documents in SQLite, read back as managed fields only."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from support import RecordingPlatform

from orbit_ops.backends.base import AppPlatform, ShareStore
from orbit_ops.backends.local.platform import LocalPlatform
from orbit_ops.config.model import SolutionSpec
from orbit_ops.errors import BackendError, ResourceExistsError
from orbit_ops.fleet.resources import (
    App,
    DesiredSolution,
    Mount,
    PlatformTarget,
    Resource,
    Share,
    Storage,
    desired_state,
)

TARGET = PlatformTarget(
    registry="orbitacr.azurecr.io",
    storage_account="orbitfiles",
    pull_identity="/subscriptions/0000/resourceGroups/orbit-prod/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/orbit-pull",
)
VERSIONS = {"orbit": "1.4.0", "agent": "2.1.0", "mc": "1.0.0"}


def make_desired(solution_id: str = "acme-corp", quota: int = 100) -> DesiredSolution:
    spec = SolutionSpec(
        id=solution_id,
        display_name=solution_id.replace("-", " ").title(),
        images={"orbit_tag": VERSIONS["orbit"], "agent_tag": VERSIONS["agent"], "mc_tag": VERSIONS["mc"]},
        env={"orbit": {"PUBLIC_BASE_URL": f"https://{solution_id}.example.com"}, "agent": {"LOG_LEVEL": "info"}},
        share_quota_gib=quota,
        path=Path(f"solutions/{solution_id}.yaml"),
    )
    return desired_state(spec, TARGET, VERSIONS)


DESIRED = make_desired()
ONE_OF_EACH: dict[str, Resource] = {
    "share": DESIRED.shares[0],
    "storage": DESIRED.storages[0],
    "app": DESIRED.app("agent"),
}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / ".orbit"


@pytest.fixture
def platform(state_dir: Path) -> Iterator[LocalPlatform]:
    with LocalPlatform(state_dir) as opened:
        yield opened


async def create(platform: LocalPlatform, resource: Resource) -> None:
    if isinstance(resource, Share):
        await platform.create_share(resource)
    elif isinstance(resource, Storage):
        await platform.create_storage(resource)
    else:
        await platform.create_app(resource)


async def update(platform: LocalPlatform, resource: Resource) -> None:
    if isinstance(resource, Share):
        await platform.update_share(resource)
    elif isinstance(resource, Storage):
        await platform.update_storage(resource)
    else:
        await platform.update_app(resource)


async def get(platform: LocalPlatform, resource: Resource) -> Resource | None:
    if isinstance(resource, Share):
        return await platform.get_share(resource.name)
    if isinstance(resource, Storage):
        return await platform.get_storage(resource.name)
    return await platform.get_app(resource.name)


async def list_kind(platform: LocalPlatform, kind: str) -> dict[str, Any]:
    listing: dict[str, Callable[[], Any]] = {
        "share": platform.list_shares,
        "storage": platform.list_storages,
        "app": platform.list_apps,
    }
    return dict(await listing[kind]())


@contextlib.contextmanager
def raw_database(state_dir: Path) -> Iterator[sqlite3.Connection]:
    """The platform's SQLite file opened directly, as an operator (or the service itself) would; commits on exit."""
    conn = sqlite3.connect(state_dir / "platform.sqlite")
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


async def provision(platform: LocalPlatform, desired: DesiredSolution) -> None:
    for resource in desired.resources():
        await create(platform, resource)


def test_implements_both_protocols_with_async_methods() -> None:
    for protocol in (AppPlatform, ShareStore):
        for name, member in vars(protocol).items():
            if inspect.iscoroutinefunction(member):
                assert inspect.iscoroutinefunction(getattr(LocalPlatform, name)), name


@pytest.mark.asyncio
async def test_every_kind_round_trips_through_create_get_and_list(platform: LocalPlatform) -> None:
    await provision(platform, DESIRED)

    for resource in DESIRED.resources():
        assert await get(platform, resource) == resource
    assert await platform.list_shares() == {share.name: share for share in DESIRED.shares}
    assert await platform.list_storages() == {storage.name: storage for storage in DESIRED.storages}
    assert await platform.list_apps() == {app.name: app for app in DESIRED.apps}


@pytest.mark.asyncio
async def test_apps_without_registry_identity_or_mounts_round_trip(platform: LocalPlatform) -> None:
    variants = [
        App(name="plain-app", image="oci:.orbit/registry/mc:1.0.0"),
        App(name="registry-only", image="r.example/x:1", registry_server="r.example"),
        App(name="identity-only", image="r.example/x:1", identity="local"),
        App(
            name="same-link-twice",
            image="r.example/x:1",
            mounts=(Mount("abc-cust-rw", "/repo"), Mount("abc-cust-rw", "/also")),
        ),
    ]
    for app in variants:
        await platform.create_app(app)
    assert await platform.list_apps() == {app.name: app for app in variants}


@pytest.mark.asyncio
async def test_stored_documents_have_the_service_shape_and_service_filled_fields(platform: LocalPlatform) -> None:
    await provision(platform, DESIRED)
    agent = DESIRED.app("agent")

    app_doc = platform.stored_document("app", agent.name)
    assert app_doc is not None
    properties = app_doc["properties"]
    container = properties["template"]["containers"][0]
    assert container["image"] == agent.image
    assert {"name": "METHODOLOGY_PATH", "value": "/repo/trajectory-methodology"} in container["env"]
    assert [v["storageName"] for v in properties["template"]["volumes"]] == [m.storage_name for m in agent.mounts]
    assert properties["configuration"]["registries"] == [{"server": TARGET.registry, "identity": TARGET.pull_identity}]
    assert list(app_doc["identity"]["userAssignedIdentities"]) == [TARGET.pull_identity]
    assert app_doc["tags"] == dict(agent.tags)
    assert properties["provisioningState"] == "Succeeded"
    assert properties["latestRevisionName"].startswith(f"{agent.name}--")
    assert properties["latestRevisionFqdn"].startswith(properties["latestRevisionName"] + ".")
    assert app_doc["systemData"]["createdAt"] == app_doc["systemData"]["lastModifiedAt"] != ""

    storage_doc = platform.stored_document("storage", DESIRED.storages[1].name)
    assert storage_doc is not None
    assert storage_doc["properties"]["azureFile"] == {
        "accountName": "orbitfiles",
        "shareName": "acme-corp-customer",
        "accessMode": "ReadOnly",
    }
    assert storage_doc["systemData"]["createdAt"]

    share_doc = platform.stored_document("share", "acme-corp-internal")
    assert share_doc is not None
    assert share_doc["properties"]["shareQuota"] == 100
    assert share_doc["properties"]["metadata"] == {"solution_id": "acme-corp", "role": "internal"}
    assert share_doc["etag"] and share_doc["properties"]["lastModifiedTime"]
    assert share_doc["properties"]["accessTier"] == "Premium"


@pytest.mark.asyncio
async def test_service_filled_fields_never_reach_what_is_read_back(platform: LocalPlatform, state_dir: Path) -> None:
    await provision(platform, DESIRED)
    agent = DESIRED.app("agent")
    # The service changes its own fields (a failed rollout, scaled replicas, new defaults): no drift.
    with raw_database(state_dir) as conn:
        row = conn.execute("SELECT document FROM resources WHERE name = ?", (agent.name,)).fetchone()
        document = json.loads(row[0])
        document["properties"]["provisioningState"] = "Failed"
        document["properties"]["template"]["scale"]["maxReplicas"] = 3
        document["properties"]["template"]["containers"][0]["probes"] = [{"type": "Liveness"}]
        conn.execute("UPDATE resources SET document = ? WHERE name = ?", (json.dumps(document), agent.name))

    assert await platform.get_app(agent.name) == agent


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["share", "storage", "app"])
async def test_create_on_existing_raises_resource_exists_and_changes_nothing(
    platform: LocalPlatform, kind: str
) -> None:
    resource = ONE_OF_EACH[kind]
    await create(platform, resource)
    before = platform.stored_document(resource.kind, resource.name)

    changed: Resource
    if isinstance(resource, Share):
        changed = dataclasses.replace(resource, quota_gib=500)
    elif isinstance(resource, Storage):
        changed = dataclasses.replace(resource, access_mode="ReadOnly")
    else:
        changed = dataclasses.replace(resource, image="orbitacr.azurecr.io/agent:9.9.9")
    with pytest.raises(ResourceExistsError, match=f"{kind} {resource.name} already exists"):
        await create(platform, changed)

    assert platform.stored_document(resource.kind, resource.name) == before
    assert await get(platform, resource) == resource


def race(creators: list[Callable[[], None]]) -> tuple[int, list[BaseException]]:
    """Start every creator at once on its own thread; return (winners, errors)."""
    barrier = threading.Barrier(len(creators))
    wins: list[int] = []
    errors: list[BaseException] = []

    def run(creator: Callable[[], None]) -> None:
        barrier.wait()
        try:
            creator()
            wins.append(1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(creator,)) for creator in creators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(wins), errors


@pytest.mark.parametrize("kind", ["share", "storage", "app"])
def test_concurrent_creates_on_one_instance_have_exactly_one_winner(platform: LocalPlatform, kind: str) -> None:
    resource = ONE_OF_EACH[kind]
    wins, errors = race([lambda: asyncio.run(create(platform, resource)) for _ in range(8)])

    assert wins == 1
    assert len(errors) == 7 and all(isinstance(error, ResourceExistsError) for error in errors)


@pytest.mark.parametrize("kind", ["share", "storage", "app"])
def test_concurrent_creates_on_two_instances_have_exactly_one_winner(state_dir: Path, kind: str) -> None:
    resource = ONE_OF_EACH[kind]
    with LocalPlatform(state_dir) as first, LocalPlatform(state_dir) as second:
        creators = [lambda p=p: asyncio.run(create(p, resource)) for p in (first, second) * 4]
        wins, errors = race(creators)

        assert wins == 1
        assert len(errors) == 7 and all(isinstance(error, ResourceExistsError) for error in errors)
        assert asyncio.run(get(second, resource)) == resource


def test_concurrent_creates_from_two_processes_have_exactly_one_winner(state_dir: Path) -> None:
    LocalPlatform(state_dir).close()
    script = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        from types import MappingProxyType
        from orbit_ops.backends.local.platform import LocalPlatform
        from orbit_ops.errors import ResourceExistsError
        from orbit_ops.fleet.resources import Share

        share = Share("race-customer", 100, MappingProxyType({"role": "customer", "solution_id": "race"}))
        with LocalPlatform(Path(sys.argv[1])) as platform:
            try:
                asyncio.run(platform.create_share(share))
                print("won")
            except ResourceExistsError:
                print("exists")
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(state_dir)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = sorted(process.communicate(timeout=60)[0].strip() for process in processes)

    assert outcomes == ["exists", "won"]
    assert all(process.returncode == 0 for process in processes)


@pytest.mark.asyncio
async def test_update_replaces_managed_fields_and_keeps_the_rest(platform: LocalPlatform) -> None:
    await provision(platform, DESIRED)
    agent = DESIRED.app("agent")
    before = platform.stored_document("app", agent.name)
    assert before is not None
    wanted = dataclasses.replace(
        agent,
        image="orbitacr.azurecr.io/agent:2.2.0",
        env=MappingProxyType({"LOG_LEVEL": "debug", "METHODOLOGY_PATH": "/repo/trajectory-methodology"}),
        tags=MappingProxyType({**agent.tags, "cost-center": "42"}),
    )

    await platform.update_app(wanted)

    assert await platform.get_app(agent.name) == wanted
    after = platform.stored_document("app", agent.name)
    assert after is not None
    assert after["id"] == before["id"]
    assert after["systemData"]["createdAt"] == before["systemData"]["createdAt"]
    assert after["systemData"]["lastModifiedAt"] > before["systemData"]["lastModifiedAt"]
    container_after, container_before = (doc["properties"]["template"]["containers"][0] for doc in (after, before))
    assert container_after["resources"] == container_before["resources"]
    assert after["properties"]["template"]["scale"] == before["properties"]["template"]["scale"]
    for other in DESIRED.apps:
        if other.name != agent.name:
            assert await platform.get_app(other.name) == other


REVISION_CASES: list[tuple[str, Callable[[App], App], bool]] = [
    ("image", lambda app: dataclasses.replace(app, image="orbitacr.azurecr.io/agent:3.0.0"), True),
    ("env", lambda app: dataclasses.replace(app, env=MappingProxyType({**app.env, "NEW": "1"})), True),
    ("mounts", lambda app: dataclasses.replace(app, mounts=app.mounts[:1]), True),
    ("tags", lambda app: dataclasses.replace(app, tags=MappingProxyType({**app.tags, "team": "ops"})), False),
    ("registry", lambda app: dataclasses.replace(app, registry_server="other.azurecr.io"), False),
    ("identity", lambda app: dataclasses.replace(app, identity="/identities/other"), False),
    ("nothing", lambda app: app, False),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("field", "change", "new_revision"), REVISION_CASES, ids=[c[0] for c in REVISION_CASES])
async def test_template_changes_make_a_new_revision_and_others_do_not(
    platform: LocalPlatform, field: str, change: Callable[[App], App], new_revision: bool
) -> None:
    agent = DESIRED.app("agent")
    await platform.create_app(agent)
    before = platform.stored_document("app", agent.name)
    assert before is not None

    await platform.update_app(change(agent))

    after = platform.stored_document("app", agent.name)
    assert after is not None
    assert await platform.get_app(agent.name) == change(agent)
    revisions = (before["properties"]["latestRevisionName"], after["properties"]["latestRevisionName"])
    assert (revisions[0] != revisions[1]) is new_revision, field
    assert after["properties"]["latestRevisionFqdn"].startswith(revisions[1] + ".")
    assert after["systemData"]["lastModifiedAt"] > before["systemData"]["lastModifiedAt"]


@pytest.mark.asyncio
async def test_changing_back_to_an_earlier_image_is_still_a_new_revision(platform: LocalPlatform) -> None:
    agent = DESIRED.app("agent")
    await platform.create_app(agent)
    seen = set()
    for image in (agent.image, "orbitacr.azurecr.io/agent:3.0.0", agent.image):
        await platform.update_app(dataclasses.replace(agent, image=image))
        document = platform.stored_document("app", agent.name)
        assert document is not None
        seen.add(document["properties"]["latestRevisionName"])
    assert len(seen) == 3  # the first update changed nothing and kept revision 1


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["share", "storage", "app"])
async def test_update_of_a_missing_resource_is_an_error_and_creates_nothing(platform: LocalPlatform, kind: str) -> None:
    resource = ONE_OF_EACH[kind]
    with pytest.raises(BackendError, match=f"cannot update {kind} {resource.name}: it does not exist") as caught:
        await update(platform, resource)

    assert not isinstance(caught.value, ResourceExistsError)
    assert await get(platform, resource) is None
    assert await list_kind(platform, kind) == {}
    assert not platform.share_folder(resource.name).exists()


@pytest.mark.asyncio
async def test_every_write_gets_a_new_modification_time_and_etag(platform: LocalPlatform) -> None:
    share, app = DESIRED.shares[0], DESIRED.app("mc")
    await platform.create_share(share)
    await platform.create_app(app)
    etags, share_times, app_times = set(), set(), set()
    for _ in range(20):
        await platform.update_share(share)
        await platform.update_app(app)
        share_doc = platform.stored_document("share", share.name) or {}
        etags.add(share_doc["etag"])
        share_times.add(share_doc["properties"]["lastModifiedTime"])
        app_times.add((platform.stored_document("app", app.name) or {})["systemData"]["lastModifiedAt"])

    assert len(etags) == len(share_times) == len(app_times) == 20


@pytest.mark.asyncio
async def test_get_of_a_missing_resource_is_none(platform: LocalPlatform) -> None:
    assert await platform.get_app("orbit-000000000000") is None
    assert await platform.get_storage("000000000000-cust-rw") is None
    assert await platform.get_share("nobody-customer") is None


@pytest.mark.asyncio
async def test_a_listing_is_one_call_whatever_the_fleet_size(platform: LocalPlatform) -> None:
    for solution_id in ("acme-corp", "globex", "initech", "umbrella"):
        await provision(platform, make_desired(solution_id))
    recorded = RecordingPlatform(platform)

    apps = await recorded.list_apps()
    storages = await recorded.list_storages()
    shares = await recorded.list_shares()

    assert (len(apps), len(storages), len(shares)) == (12, 12, 8)
    assert recorded.calls == [("list_apps", "*"), ("list_storages", "*"), ("list_shares", "*")]
    assert recorded.writes == 0


@pytest.mark.asyncio
async def test_calls_record_every_request_and_writes_count_creates_and_updates(platform: LocalPlatform) -> None:
    recorded = RecordingPlatform(platform)
    share = DESIRED.shares[0]
    await recorded.create_share(share)
    await recorded.get_share(share.name)
    await recorded.update_share(dataclasses.replace(share, quota_gib=200))
    with pytest.raises(ResourceExistsError):
        await recorded.create_share(share)

    assert recorded.calls == [
        ("create_share", share.name),
        ("get_share", share.name),
        ("update_share", share.name),
        ("create_share", share.name),
    ]
    assert recorded.writes == 3


@pytest.mark.asyncio
async def test_a_share_is_a_folder_with_a_sidecar_mirroring_quota_and_metadata(
    platform: LocalPlatform, state_dir: Path
) -> None:
    share = DESIRED.shares[0]
    await platform.create_share(share)

    folder = state_dir / "shares" / share.name
    sidecar = state_dir / "shares" / f"{share.name}.share.json"
    assert folder.is_dir() and list(folder.iterdir()) == []
    mirrored = json.loads(sidecar.read_text())
    assert mirrored["properties"]["shareQuota"] == 100
    assert mirrored["properties"]["metadata"] == {"role": "customer", "solution_id": "acme-corp"}
    assert mirrored == platform.stored_document("share", share.name)

    (folder / "README.md").write_text("solution content\n")
    bigger = dataclasses.replace(share, quota_gib=1024, metadata=MappingProxyType({**share.metadata, "tier": "gold"}))
    await platform.update_share(bigger)

    mirrored = json.loads(sidecar.read_text())
    assert mirrored["properties"]["shareQuota"] == 1024
    assert mirrored["properties"]["metadata"]["tier"] == "gold"
    assert (folder / "README.md").read_text() == "solution content\n"
    assert await platform.get_share(share.name) == bigger


@pytest.mark.asyncio
async def test_a_storage_may_name_a_share_that_does_not_exist(platform: LocalPlatform) -> None:
    link = Storage("abc123-cust-rw", "nobody-customer", "ReadWrite", "orbitfiles")
    await platform.create_storage(link)

    assert await platform.get_storage(link.name) == link
    assert await platform.get_share("nobody-customer") is None


@pytest.mark.asyncio
async def test_data_survives_a_new_instance(state_dir: Path) -> None:
    with LocalPlatform(state_dir) as first:
        await provision(first, DESIRED)
        await first.update_app(dataclasses.replace(DESIRED.app("mc"), image="orbitacr.azurecr.io/mc:1.1.0"))
        revision = (first.stored_document("app", DESIRED.app("mc").name) or {})["properties"]["latestRevisionName"]

    with LocalPlatform(state_dir) as second:
        assert await second.list_shares() == {share.name: share for share in DESIRED.shares}
        assert await second.list_storages() == {storage.name: storage for storage in DESIRED.storages}
        apps = await second.list_apps()
        assert apps[DESIRED.app("mc").name].image == "orbitacr.azurecr.io/mc:1.1.0"
        assert apps[DESIRED.app("agent").name] == DESIRED.app("agent")
        stored = second.stored_document("app", DESIRED.app("mc").name) or {}
        assert stored["properties"]["latestRevisionName"] == revision


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (Share("../escape", 100), "invalid share name '../escape'"),
        (Share("a--b", 100), "invalid share name 'a--b'"),
        (Share("Upper-customer", 100), "invalid share name"),
        (Share("acme-corp-customer", 50), "invalid quota 50 GiB"),
        (Share("acme-corp-customer", 200_000), "invalid quota 200000 GiB"),
        (Storage("bad/name", "s", "ReadWrite", "a"), "invalid storage name"),
        (Storage("abc-cust-rw", "s", "WriteOnly", "a"), "invalid access mode 'WriteOnly'"),  # type: ignore[arg-type]
        (App("9starts-with-digit", "x:1"), "invalid app name"),
        (App("x" * 33, "x:1"), "invalid app name"),
    ],
)
async def test_what_the_service_would_refuse_is_refused(
    platform: LocalPlatform, state_dir: Path, resource: Resource, message: str
) -> None:
    with pytest.raises(BackendError, match=message):
        await create(platform, resource)

    assert await list_kind(platform, resource.kind) == {}
    assert sorted(path.name for path in (state_dir / "shares").iterdir()) == []
    assert not (state_dir / "escape").exists()


@pytest.mark.asyncio
async def test_a_malformed_stored_document_is_a_backend_error(platform: LocalPlatform, state_dir: Path) -> None:
    await platform.create_app(DESIRED.app("mc"))
    with raw_database(state_dir) as conn:
        conn.execute("UPDATE resources SET document = ? WHERE kind = 'app'", (json.dumps({"name": "x"}),))

    with pytest.raises(BackendError, match="malformed"):
        await platform.list_apps()
    with pytest.raises(BackendError, match="malformed"):
        await platform.update_app(DESIRED.app("mc"))


def test_a_store_from_a_newer_orbit_is_refused(state_dir: Path) -> None:
    LocalPlatform(state_dir).close()
    with raw_database(state_dir) as conn:
        conn.execute("PRAGMA user_version = 99")

    with pytest.raises(BackendError, match="newer Orbit"):
        LocalPlatform(state_dir)


def test_the_store_uses_wal(platform: LocalPlatform, state_dir: Path) -> None:
    with raw_database(state_dir) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- listings: managed fields cut out by SQLite, answered from memory while nothing changed ----------


@pytest.mark.asyncio
async def test_listings_read_what_a_get_reads_for_every_kind(platform: LocalPlatform) -> None:
    bare = App(name="mc-000000000001", image="orbitacr.azurecr.io/mc:1.0.0")  # no mounts, registry or identity
    await provision(platform, DESIRED)
    await platform.create_app(bare)

    apps, storages, shares = await platform.list_apps(), await platform.list_storages(), await platform.list_shares()

    assert apps == {name: await platform.get_app(name) for name in apps}
    assert storages == {name: await platform.get_storage(name) for name in storages}
    assert shares == {name: await platform.get_share(name) for name in shares}
    assert apps[bare.name] == bare
    assert set(apps) == {app.name for app in DESIRED.apps} | {bare.name}


@pytest.mark.asyncio
async def test_a_listing_sees_writes_of_this_instance_and_of_other_connections(
    platform: LocalPlatform, state_dir: Path
) -> None:
    await provision(platform, DESIRED)
    agent = DESIRED.app("agent")
    assert (await platform.list_apps())[agent.name] == agent

    changed = dataclasses.replace(agent, image="orbitacr.azurecr.io/agent:2.2.0")
    await platform.update_app(changed)
    assert (await platform.list_apps())[agent.name] == changed  # this instance wrote

    with LocalPlatform(state_dir) as other:
        await other.update_app(agent)
    assert (await platform.list_apps())[agent.name] == agent  # another connection wrote

    with raw_database(state_dir) as conn:
        conn.execute("DELETE FROM resources WHERE kind = 'app' AND name = ?", (agent.name,))
    assert agent.name not in await platform.list_apps()  # and by hand, outside Orbit


@pytest.mark.asyncio
async def test_a_listing_handed_out_is_a_copy(platform: LocalPlatform) -> None:
    await provision(platform, DESIRED)
    first = await platform.list_apps()
    first.clear()

    assert len(await platform.list_apps()) == 3


@pytest.mark.asyncio
async def test_a_stored_document_that_is_not_json_is_named_in_the_error(
    platform: LocalPlatform, state_dir: Path
) -> None:
    await provision(platform, DESIRED)
    name = DESIRED.storages[1].name
    with raw_database(state_dir) as conn:
        conn.execute("UPDATE resources SET document = '{not json' WHERE kind = 'storage' AND name = ?", (name,))

    with pytest.raises(BackendError, match=f"storage {name} is not valid JSON"):
        await platform.list_storages()
    assert len(await platform.list_apps()) == 3  # the other kinds still list
