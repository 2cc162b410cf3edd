"""Health on the Azure backend against the ARM emulator, through ``orbit status --json`` and the platform.

The emulator's clock moves only when a test advances it (``per_request = 0``), so each revision is in the state
the test names: provisioning and activation take 10 s each, a crash-looping container restarts every 10 s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulators.revisions import ACTIVATION_SECONDS, PROVISIONING_SECONDS, RESTART_SECONDS

from orbit_ops.backends.azure.platform import AzurePlatform
from orbit_ops.fleet.resources import MANAGED_BY_TAG
from orbit_ops.names import azure_names

Run = Callable[..., tuple[int, str, str]]
SETTLE = PROVISIONING_SECONDS + ACTIVATION_SECONDS


def provisioned(make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run, *,
                fault: str | None = None, **options: str) -> Path:
    """One solution provisioned through the CLI on a still clock, its agent image taking ``fault``."""
    emulators.arm.clock.per_request = 0
    if fault is not None:
        emulators.arm.image_fault(f"{emulators.login_server}/agent:1.0.0", fault, **options)
    root = make_azure_workspace(1)
    # On a still clock no revision would settle: provisioning is told not to follow them (0: one read).
    code, _, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--json", "--health-timeout", "0")
    assert code == 0, err
    emulators.clear_logs()  # what follows reads as if provisioned by someone else
    return root


def status(run_cli: Run, root: Path) -> dict[str, Any]:
    code, out, err = run_cli("-w", str(root), "status", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    return dict(row)


def test_a_crash_looping_image_is_degraded_with_its_restarts(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    root = provisioned(make_azure_workspace, emulators, run_cli, fault="crash-loop")
    emulators.arm.clock.advance(SETTLE + 7 * RESTART_SECONDS)
    row = status(run_cli, root)
    agent = row["apps"]["agent"]
    assert agent["health"] == "degraded"
    assert agent["health_reason"].startswith("restarting: 7 restarts in 1 min")
    assert (row["health"], row["health_reason"]) == ("degraded", f"agent: {agent['health_reason']}")
    assert {row["apps"][c]["health"] for c in ("orbit", "mc")} == {"healthy"}
    # Only the degraded revision's replicas were read, besides the one revisions listing of the doubtful app.
    reads = [r.path for r in emulators.arm_server.requests("GET") if "/revisions" in r.path]
    assert len([p for p in reads if p.endswith("/replicas")]) == 1
    assert {p.split("/containerApps/")[1].split("/")[0] for p in reads} == {agent["revision"].split("--")[0]}


def test_a_pull_failure_is_degraded_with_the_error(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    root = provisioned(make_azure_workspace, emulators, run_cli, fault="pull-failure")
    emulators.arm.clock.advance(PROVISIONING_SECONDS + 1)
    agent = status(run_cli, root)["apps"]["agent"]
    assert agent["health"] == "degraded"
    # kubelet's reason code is kept, its own "Failed to pull image" lead is not repeated after Orbit's
    assert agent["health_reason"].startswith(f'image pull failed (ImagePullBackOff): "{emulators.login_server}/'
                                             'agent:1.0.0": ')
    assert "Failed to pull image" not in agent["health_reason"]
    assert agent["health_reason"].endswith("not found")
    assert agent["ready_revision"] is None


def test_an_activation_is_progressing_until_it_finishes(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    root = provisioned(make_azure_workspace, emulators, run_cli)
    emulators.arm.clock.advance(PROVISIONING_SECONDS + 1)
    row = status(run_cli, root)
    assert {row["apps"][c]["health"] for c in ("orbit", "agent", "mc")} == {"progressing"}
    assert row["apps"]["agent"]["health_reason"] in ("activating for 10 s", "activating for 11 s")  # real ms pass
    emulators.arm.clock.advance(ACTIVATION_SECONDS)
    row = status(run_cli, root)
    assert (row["health"], row["health_reason"]) == ("healthy", None)
    assert row["apps"]["agent"]["revision"] == row["apps"]["agent"]["ready_revision"]


def test_an_activation_that_stalls_stays_progressing(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    root = provisioned(make_azure_workspace, emulators, run_cli, fault="activation-stalls")
    emulators.arm.clock.advance(6 * 60 + 5)
    row = status(run_cli, root)
    assert (row["health"], row["health_reason"]) == ("progressing", "agent: activating for 6 min")


def test_running_states_outside_the_sdk_enums_are_strings_and_break_nothing(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    root = provisioned(make_azure_workspace, emulators, run_cli, fault="reports-state", running_state="Hibernating")
    emulators.arm.clock.advance(SETTLE)
    row = status(run_cli, root)
    assert row["apps"]["agent"]["health"] == "healthy"  # the app's own fields show it running and ready
    agent = azure_names("customer-00").apps["agent"]
    platform = AzurePlatform(emulators.settings(), emulators.fast)
    try:
        [revision] = asyncio.run(platform.list_revisions(agent))
        assert (revision.running_state, type(revision.running_state)) == ("Hibernating", str)
        assert (revision.provisioning_state, revision.health_state) == ("Provisioned", "Healthy")
        assert asyncio.run(platform.list_revisions("agent-nothere")) == []
    finally:
        platform.close()


def test_a_healthy_fleet_of_200_is_read_with_listing_pages_only(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    root = make_azure_workspace(200)
    emulators.arm.page_size = 100
    for index in range(200):
        for component, name in azure_names(f"customer-{index:02d}").apps.items():
            image = f"{emulators.login_server}/{component}:1.0.0"
            emulators.arm.put_app(name, {"location": "westeurope", "tags": {MANAGED_BY_TAG: "orbit"}, "properties": {
                "managedEnvironmentId": emulators.arm.environment_id,
                "template": {"containers": [{"name": component, "image": image}]}}})
    code, out, err = run_cli("-w", str(root), "status", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 200 and {row["health"] for row in rows} == {"healthy"}
    assert {app["health"] for row in rows for app in row["apps"].values()} == {"healthy"}
    paths = [r.path for r in emulators.arm_server.log]
    apps_listing = [p for p in paths if p.endswith("/containerApps")]
    assert len(apps_listing) == 6  # 600 apps, 100 a page: the pages list_apps read, and no second listing
    assert [p for p in paths if p not in apps_listing] == [p for p in paths if p.endswith("/storages")]


def test_the_states_of_a_listing_answer_one_health_read_and_never_after_a_write(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    provisioned(make_azure_workspace, emulators, run_cli)
    agent = azure_names("customer-00").apps["agent"]
    platform = AzurePlatform(emulators.settings(), emulators.fast)

    def listings() -> int:
        return len([r for r in emulators.arm_server.log if r.path.endswith("/containerApps")])

    async def scenario() -> None:
        apps = await platform.list_apps()
        before = listings()
        assert (await platform.list_app_states())[agent].running_status == "Progressing"
        assert listings() == before  # the pages list_apps read
        emulators.arm.clock.advance(SETTLE)
        assert (await platform.list_app_states())[agent].running_status == "Running"  # a poll lists again
        assert listings() == before + 1
        await platform.list_apps()
        await platform.update_app(apps[agent])
        await platform.list_app_states()
        assert listings() == before + 3  # a write since: listed again

    try:
        asyncio.run(scenario())
    finally:
        platform.close()
