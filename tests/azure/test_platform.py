"""The Azure platform backend over real HTTPS: the real SDK clients against the ARM and Files emulators.

Asserts on results and on the emulators' request logs: what was written, how many reads a status
takes, when a throttled call was retried, and that no secret ever leaves the process in the clear.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote

import pytest
from emulators.server import Fault

from orbit_ops.backends.azure.platform import AzurePlatform
from orbit_ops.config.model import SolutionSpec
from orbit_ops.errors import BackendError, ResourceExistsError
from orbit_ops.fleet.drift import LiveSnapshot
from orbit_ops.fleet.provision import WriteCounter, apply_solution, plan_solution
from orbit_ops.fleet.resources import App, DesiredSolution, Mount, PlatformTarget, desired_state, differences
from orbit_ops.workspace import Workspace

if TYPE_CHECKING:
    from conftest import AzureEmulators  # tests/azure/conftest.py

Run = Callable[..., tuple[int, str, str]]
ACCOUNT = "orbitfiles"
LOGIN_SERVER = "orbitacr.azurecr.io"
PULL_IDENTITY = ("/subscriptions/0a1b2c3d-0000-4000-8000-00000000cafe/resourceGroups/orbit-test/providers/"
                 "Microsoft.ManagedIdentity/userAssignedIdentities/orbit-pull")
TARGET = PlatformTarget(registry=LOGIN_SERVER, storage_account=ACCOUNT, pull_identity=PULL_IDENTITY)
WRITE_METHODS = ("PUT", "PATCH", "POST", "DELETE")


def make_desired(solution_id: str = "acme-corp", agent: str = "1.0.0") -> tuple[SolutionSpec, DesiredSolution]:
    spec = SolutionSpec(
        id=solution_id,
        display_name="Acme",
        images={"orbit_tag": "1.0.0", "agent_tag": agent, "mc_tag": "1.0.0"},
        env={"orbit": {"PUBLIC_BASE_URL": f"https://{solution_id}.example.com"}, "agent": {"LOG_LEVEL": "info"}},
        share_quota_gib=100,
        path=Path(f"solutions/{solution_id}.yaml"),
    )
    return spec, desired_state(spec, TARGET, {"orbit": "1.0.0", "agent": agent, "mc": "1.0.0"})


@pytest.fixture
def platform(emulators: AzureEmulators) -> AzurePlatform:
    assert (emulators.account, emulators.login_server, emulators.pull_identity) == (ACCOUNT, LOGIN_SERVER,
                                                                                    PULL_IDENTITY)
    return AzurePlatform(emulators.settings(), emulators.fast)


async def create_all(platform: AzurePlatform, desired: DesiredSolution) -> None:
    for share in desired.shares:
        await platform.create_share(share)
    for storage in desired.storages:
        await platform.create_storage(storage)
    for app in desired.apps:
        await platform.create_app(app)


def writes(emulators: AzureEmulators) -> list[str]:
    logged = [*emulators.arm_server.log, *emulators.files_server.log]
    return [f"{r.method} {r.path}" for r in logged if r.method in WRITE_METHODS]


# -- round trips -------------------------------------------------------------------------------------


def test_each_resource_kind_round_trips(platform: AzurePlatform, emulators: AzureEmulators) -> None:
    _, desired = make_desired()
    emulators.arm.polls = 3  # each long-running write stays InProgress for 2 polls
    emulators.arm.put_app("legacy-web", {"location": "westeurope", "properties": {
        "managedEnvironmentId": emulators.arm.environment_id,
        "template": {"containers": [{"name": "web", "image": "nginx:1"}]}}})

    async def scenario() -> None:
        await create_all(platform, desired)
        apps, storages = await platform.list_apps(), await platform.list_storages()
        shares = await platform.list_shares()
        assert set(apps) == {app.name for app in desired.apps}  # the untagged app is not Orbit's
        for resource in desired.resources():
            live = {"app": apps, "storage": storages, "share": shares}[resource.kind][resource.name]
            assert live == resource, resource.name
            getter = {"app": platform.get_app, "storage": platform.get_storage, "share": platform.get_share}
            assert await getter[resource.kind](resource.name) == resource
        assert await platform.get_app("agent-000000000000") is None
        assert await platform.get_storage("000000000000-cust-rw") is None
        assert await platform.get_share("nope-customer") is None
        for resource in (desired.shares[0], desired.storages[0], desired.apps[0]):
            creator = {"app": platform.create_app, "storage": platform.create_storage, "share": platform.create_share}
            with pytest.raises(ResourceExistsError):
                await creator[resource.kind](resource)  # type: ignore[operator]

        share = replace(desired.shares[0], quota_gib=250, metadata=MappingProxyType({"role": "x", "solution_id": "y"}))
        storage = replace(desired.storages[0], access_mode="ReadOnly")
        agent = desired.app("agent")
        app = replace(agent, image=agent.image.replace(":1.0.0", ":1.1.0"), mounts=(Mount(agent.mounts[0].storage_name,
                      "/data"),), env=MappingProxyType({"LOG_LEVEL": "debug"}))
        await platform.update_share(share)
        await platform.update_storage(storage)
        await platform.update_app(app)
        assert await platform.get_share(share.name) == share
        assert await platform.get_storage(storage.name) == storage
        assert await platform.get_app(app.name) == app

    asyncio.run(scenario())
    stored = emulators.arm.apps[desired.app("agent").name]
    assert stored["properties"]["template"]["volumes"] == [
        {"name": desired.storages[0].name, "storageType": "AzureFile", "storageName": desired.storages[0].name}]
    assert stored["identity"]["type"] == "UserAssigned"
    assert stored["properties"]["configuration"]["registries"][0]["identity"] == PULL_IDENTITY
    # The key was sent on every write, and is never returned by a read.
    sent = {s["properties"]["azureFile"]["accountKey"] for s in emulators.arm.storages.values()}
    assert sent == {emulators.account_key}
    raw = platform._arm().managed_environments_storages.get("orbit-test", "orbit-env", desired.storages[0].name)
    assert raw.properties.azure_file.account_key is None
    # Metadata keys keep their case; the SDK's stray bare x-ms-meta header is not a key.
    assert emulators.files.shares[desired.shares[1].name].metadata == {"role": "internal", "solution_id": "acme-corp"}
    # A create is a GET then a PUT with a long-running operation; an update is a PATCH.
    app_calls = [(r.method, r.status) for r in emulators.arm_server.log if r.path.endswith(desired.apps[0].name)]
    assert app_calls[:3] == [("GET", 404), ("PUT", 201), ("GET", 200)]
    assert ("PATCH", 202) in [(r.method, r.status) for r in emulators.arm_server.log]
    polls = [r.path.rsplit("/", 2)[-2] for r in emulators.arm_server.log if "/locations/" in r.path]
    assert polls.count("containerappOperationStatuses") == 3 * 3  # PUT: Azure-AsyncOperation, polled to the end
    assert polls.count("containerappOperationResults") == 3  # PATCH: Location, polled to the end


def test_update_keeps_what_orbit_does_not_manage(platform: AzurePlatform, emulators: AzureEmulators) -> None:
    _, desired = make_desired()
    agent = desired.app("agent")

    async def scenario() -> tuple[App | None, App | None]:
        await create_all(platform, desired)
        document = emulators.arm.apps[agent.name]
        properties = document["properties"]
        properties["configuration"]["secrets"] = [{"name": "db-password", "value": "hunter2-secret"}]
        properties["configuration"]["ingress"] = {"external": True, "targetPort": 8080}
        container = properties["template"]["containers"][0]
        container["env"].append({"name": "DB_PASSWORD", "secretRef": "db-password"})
        container["resources"] = {"cpu": 1.0, "memory": "2Gi"}
        properties["template"]["containers"].append({"name": "sidecar", "image": "busybox:1", "volumeMounts": [
            {"volumeName": "scratch", "mountPath": "/scratch"}]})
        properties["template"]["volumes"].append({"name": "scratch", "storageType": "EmptyDir"})
        properties["template"]["scale"] = {"minReplicas": 1, "maxReplicas": 3}
        document["tags"]["team"] = "data"
        before = await platform.get_app(agent.name)
        newer = replace(agent, image=agent.image.replace(":1.0.0", ":1.1.0"))
        await platform.update_app(newer)
        return before, await platform.get_app(agent.name)

    revision = emulators.arm.apps.get(agent.name, {}).get("properties", {}).get("latestRevisionName")
    before, after = asyncio.run(scenario())
    assert before is not None and differences(agent, before) == ["tag team removed"]  # secretRef env is not drift
    assert after is not None and differences(agent, after) == ["image 1.1.0 → 1.0.0"]
    stored = emulators.arm.apps[agent.name]["properties"]
    assert stored["configuration"]["secrets"] == [{"name": "db-password", "value": "hunter2-secret"}]
    assert stored["configuration"]["ingress"] == {"external": True, "targetPort": 8080}
    first, sidecar = stored["template"]["containers"]
    assert {"name": "DB_PASSWORD", "secretRef": "db-password"} in first["env"]
    assert first["resources"] == {"cpu": 1.0, "memory": "2Gi"}
    assert sidecar["image"] == "busybox:1"
    assert {v["name"] for v in stored["template"]["volumes"]} == {"scratch", *(m.storage_name for m in agent.mounts)}
    assert stored["template"]["scale"] == {"minReplicas": 1, "maxReplicas": 3}
    assert "team" not in emulators.arm.apps[agent.name]["tags"]
    assert stored["latestRevisionName"] != revision


# -- provisioning the fleet --------------------------------------------------------------------------


def test_second_provision_writes_nothing_and_status_reads_pages(
    make_azure_workspace: Callable[..., Path], emulators: AzureEmulators, run_cli: Run
) -> None:
    root = make_azure_workspace(12)
    emulators.arm.page_size = 5
    code, out, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["writes"] == 12 * 8
    assert {s["state"] for s in first["solutions"]} == {"succeeded"}
    assert len(emulators.arm.apps) == 36 and len(emulators.arm.storages) == 36 and len(emulators.files.shares) == 24
    assert {a["properties"]["provisioningState"] for a in emulators.arm.apps.values()} == {"Succeeded"}

    emulators.clear_logs()
    code, out, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--json")
    assert code == 0, err
    assert json.loads(out)["writes"] == 0
    assert writes(emulators) == []

    emulators.clear_logs()
    code, out, err = run_cli("-w", str(root), "status", "--json")
    assert code == 0, err
    assert {row["sync"] for row in json.loads(out)} == {"synced"}
    arm_reads = [r for r in emulators.arm_server.log]
    app_lists = [r for r in arm_reads if r.path.endswith("/containerApps")]
    storage_lists = [r for r in arm_reads if r.path.endswith("/storages")]
    assert len(app_lists) == math.ceil(36 / 5) and len(storage_lists) == 1
    assert len(arm_reads) == len(app_lists) + len(storage_lists)  # no GET per app
    listings = [(r.method, parse_qs(r.query)) for r in emulators.files_server.log]
    assert listings == [("GET", {"comp": ["list"], "include": ["metadata"]})]


def test_drift_made_by_hand_is_found_and_fixed(
    make_azure_workspace: Callable[..., Path], emulators: AzureEmulators, run_cli: Run
) -> None:
    root = make_azure_workspace(2)
    assert run_cli("-w", str(root), "provision", "--all", "--yes", "--json")[0] == 0
    workspace = Workspace.open(root)
    versions = {component: "1.0.0" for component in ("orbit", "agent", "mc")}
    desired = desired_state(workspace.solutions()[0], workspace.target(), versions)
    agent = emulators.arm.apps[desired.app("agent").name]
    agent["properties"]["template"]["containers"][0]["image"] = f"{LOGIN_SERVER}/agent:1.1.0"
    emulators.files.shares[desired.shares[0].name].quota = 300
    emulators.arm.storages[desired.storages[1].name]["properties"]["azureFile"]["accessMode"] = "ReadWrite"
    code, out, _ = run_cli("-w", str(root), "status", "--json", desired.id)
    diffs = {r["name"]: r["diff"] for r in json.loads(out)[0]["resources"] if r["sync"] == "drifted"}
    assert diffs == {desired.app("agent").name: ["image 1.1.0 → 1.0.0"],
                     desired.shares[0].name: ["quota 300 → 100 GiB"],
                     desired.storages[1].name: ["link mode ReadWrite → ReadOnly"]}
    emulators.clear_logs()
    code, out, err = run_cli("-w", str(root), "provision", desired.id, "--yes", "--json")
    assert code == 0, err
    assert json.loads(out)["writes"] == 3
    assert sorted(w.split(" ")[0] for w in writes(emulators)) == ["PATCH", "PUT", "PUT", "PUT"]  # share: quota+meta


def test_create_race_is_reconciled(platform: AzurePlatform, emulators: AzureEmulators) -> None:
    spec, desired = make_desired()
    plan = plan_solution(spec, desired, LiveSnapshot(apps={}, storages={}, shares={}))
    # Another process creates some of the resources after our read, with other values.
    emulators.files.put_share(desired.shares[0].name, 500, {"solution_id": spec.id, "role": "customer"})
    storage = desired.storages[1]
    emulators.arm.put_storage(storage.name, {"properties": {"azureFile": {
        "accountName": ACCOUNT, "accountKey": "other", "shareName": storage.share_name, "accessMode": "ReadWrite"}}})
    mc = desired.app("mc")

    async def scenario() -> None:
        await platform.create_app(replace(mc, image=mc.image.replace(":1.0.0", ":0.9.0")))
        emulators.clear_logs()
        counter, lines = WriteCounter(), []
        await apply_solution(plan, platform, platform, lines.append, counter)
        assert "share acme-corp-customer already exists; reconciling" in lines
        live = LiveSnapshot(apps=await platform.list_apps(), storages=await platform.list_storages(),
                            shares=await platform.list_shares())
        assert plan_solution(spec, desired, live).writes == 0

    asyncio.run(scenario())
    assert ("PUT", 409) in [(r.method, r.status) for r in emulators.files_server.log]
    mc_writes = [r.method for r in emulators.arm_server.log if r.path.endswith(mc.name) and r.method != "GET"]
    assert mc_writes == ["PATCH"]  # found by the GET before the PUT, then reconciled


# -- faults --------------------------------------------------------------------------------------------


def test_throttled_writes_are_retried_after_retry_after(platform: AzurePlatform, emulators: AzureEmulators) -> None:
    _, desired = make_desired()
    emulators.arm_server.inject(Fault("429", method="PUT", path="/containerApps/", retry_after=1))
    emulators.files_server.inject(Fault("429", method="PUT", path=f"/{ACCOUNT}/", retry_after=1))
    asyncio.run(create_all(platform, desired))
    assert len(emulators.arm.apps) == 3 and len(emulators.files.shares) == 2
    for log in (emulators.arm_server.log, emulators.files_server.log):
        puts = [r for r in log if r.method == "PUT"]
        throttled = next(i for i, r in enumerate(puts) if r.status == 429)
        retry = puts[throttled + 1]
        assert retry.path == puts[throttled].path and retry.status in (200, 201)
        assert retry.at - puts[throttled].at >= 1.0


def test_unavailable_and_dropped_connections_are_retried(platform: AzurePlatform, emulators: AzureEmulators) -> None:
    _, desired = make_desired()
    asyncio.run(create_all(platform, desired))
    agent = desired.app("agent")
    emulators.arm_server.inject(Fault("503", method="GET", path="/containerApps$", count=2))
    emulators.arm_server.inject(Fault("drop", method="PATCH"))
    emulators.files_server.inject(Fault("503", method="GET", path=f"/{ACCOUNT}/$"))
    emulators.files_server.inject(Fault("drop", method="PUT"))

    async def scenario() -> None:
        assert set(await platform.list_apps()) == {app.name for app in desired.apps}
        await platform.update_app(replace(agent, image=agent.image.replace(":1.0.0", ":1.1.0")))
        assert set(await platform.list_shares()) == {share.name for share in desired.shares}
        await platform.update_share(replace(desired.shares[0], quota_gib=200))

    asyncio.run(scenario())
    faults = [(r.method, r.fault) for r in [*emulators.arm_server.log, *emulators.files_server.log] if r.fault]
    assert sorted(faults) == [("GET", "503"), ("GET", "503"), ("GET", "503"), ("PATCH", "drop"), ("PUT", "drop")]
    assert emulators.arm.apps[agent.name]["properties"]["template"]["containers"][0]["image"].endswith(":1.1.0")
    assert emulators.files.shares[desired.shares[0].name].quota == 200


def test_failed_provisioning_is_reported(platform: AzurePlatform, emulators: AzureEmulators) -> None:
    _, desired = make_desired()
    mc = desired.app("mc")
    emulators.arm.fail.add(mc.name)
    with pytest.raises(BackendError) as created:
        asyncio.run(platform.create_app(mc))
    assert created.value.message.startswith(f"create container app {mc.name}: the operation failed")
    assert "image pull failed" in created.value.message
    emulators.arm.fail.add(mc.name)
    with pytest.raises(BackendError) as updated:
        asyncio.run(platform.update_app(replace(mc, image=mc.image.replace(":1.0.0", ":1.1.0"))))
    assert "ContainerAppProvisioningFailed" in updated.value.message
    assert emulators.arm.apps[mc.name]["properties"]["provisioningState"] == "Failed"


def test_unauthenticated_says_how_to_log_in(platform: AzurePlatform, emulators: AzureEmulators) -> None:
    emulators.arm.token = "a-token-for-someone-else"
    with pytest.raises(BackendError) as caught:
        asyncio.run(platform.list_apps())
    assert "az login" in caught.value.message and "ORBIT_AZURE_ACCESS_TOKEN" in caught.value.message
    assert emulators.token not in caught.value.message


def test_forbidden_names_the_missing_role(platform: AzurePlatform, emulators: AzureEmulators) -> None:
    _, desired = make_desired()
    emulators.arm.forbid.add(("PUT", "storages"))
    with pytest.raises(BackendError) as caught:
        asyncio.run(platform.create_storage(desired.storages[0]))
    assert "forbidden" in caught.value.message and "Contributor" in caught.value.message
    assert emulators.account_key not in caught.value.message


def test_reads_and_writes_are_paced(emulators: AzureEmulators) -> None:
    paced = AzurePlatform(emulators.settings(), replace(emulators.fast, reads=(2, 20)))

    async def scenario() -> None:
        for _ in range(6):
            await paced.get_app("agent-000000000000")

    started = time.monotonic()  # the emulator runs in this process and stamps requests with the same clock
    asyncio.run(scenario())
    times = [r.at for r in emulators.arm_server.log]
    # Burst of 2, then 20/s: the 6th request cannot reach the server before 4/20 s from the start. (Measured from
    # the start, not from the 1st request's arrival: a slow first TLS handshake on a loaded machine delays that
    # arrival while the bucket's tokens still accrue, which made the span between arrivals look too short.)
    assert len(times) == 6 and times[-1] - started >= (6 - 2) / 20 * 0.9


def test_no_secret_reaches_logs_errors_files_or_json(
    make_azure_workspace: Callable[..., Path], emulators: AzureEmulators, run_cli: Run,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    root = make_azure_workspace(3)
    emulators.arm.forbid.add(("PUT", "storages"))
    emulators.files_server.inject(Fault("429", method="PUT", retry_after=0))
    outputs = [run_cli("-w", str(root), "provision", "--all", "--yes", "--json")]
    assert outputs[0][0] == 1 and "forbidden" in outputs[0][1]
    emulators.arm.token = "expired"
    outputs.append(run_cli("-w", str(root), "status", "--json"))
    outputs.append(run_cli("-w", str(root), "provision", "customer-00", "--yes"))
    assert "az login" in outputs[-1][2]
    _, out, _ = run_cli("-w", str(root), "ops", "--json")
    for op in json.loads(out):
        outputs.append(run_cli("-w", str(root), "logs", op["id"]))
    # The key did travel where it must: to the environment storages' PUT bodies (refused here) and
    # signed into the share requests; it must be nowhere else.
    assert emulators.files.shares
    texts = {"caplog": caplog.text, **{f"out{i}": o + e for i, (_, o, e) in enumerate(outputs)}}
    for path in (root / ".orbit").rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any("forbidden" in text for name, text in texts.items() if name.startswith(str(root)))
    key = emulators.account_key
    for secret in (emulators.token, key, quote(key, safe=""), key[:40]):
        leaks = [name for name, text in texts.items() if secret in text]
        assert leaks == [], f"secret found in {leaks}"


def test_a_create_retried_after_its_put_went_out_is_still_a_create(platform: AzurePlatform,
                                                                    emulators: AzureEmulators) -> None:
    """The existence check of a create runs once: when the operation's status polls keep failing (past the
    SDK's own three retries of a bad status), Orbit retries the create, and the app it finds then is its
    own, not someone else's: the PUT is sent again, and the create ends as one."""
    _, desired = make_desired()
    app = desired.apps[0]

    async def scenario() -> None:
        for share in desired.shares:
            await platform.create_share(share)
        for storage in desired.storages:
            await platform.create_storage(storage)
        emulators.arm_server.inject(Fault("503", method="GET", path="/containerappOperationStatuses/", count=4))
        await platform.create_app(app)  # no ResourceExistsError

    asyncio.run(scenario())
    puts = [r for r in emulators.arm_server.log if r.method == "PUT" and r.path.endswith(f"/containerApps/{app.name}")]
    reads = [r for r in emulators.arm_server.log if r.method == "GET" and r.path.endswith(f"/containerApps/{app.name}")]
    assert [r.status for r in puts] == [201, 200]  # sent again, as the upsert it is
    assert [r.status for r in reads].count(404) == 1 and reads[0].status == 404  # read once, before the PUT
    assert reads[0].at < puts[0].at
    assert emulators.arm.apps[app.name]["properties"]["provisioningState"] == "Succeeded"
