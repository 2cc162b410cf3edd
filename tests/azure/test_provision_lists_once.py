"""`provision` on Azure lists the fleet once (issue 17, decision 0072): the sweep starts from the listing its plan
read, while that listing is current (moments old, nothing written through the platform since); otherwise it
lists again. Counted on the emulators' request logs."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orbit_ops.backends.azure import platform as azure_platform
from orbit_ops.backends.azure.platform import AzurePlatform
from orbit_ops.fleet.resources import Storage

if TYPE_CHECKING:
    from conftest import AzureEmulators  # tests/azure/conftest.py

Run = Callable[..., tuple[int, str, str]]
WRITES = ("PUT", "PATCH", "POST", "DELETE")


def listings(emulators: Any) -> dict[str, int]:
    """How many pages of each listing the emulators served, up to the first write."""
    log = sorted([*emulators.arm_server.log, *emulators.files_server.log], key=lambda entry: entry.at)
    first_write = next((index for index, entry in enumerate(log) if entry.method in WRITES), len(log))
    reads = log[:first_write]
    return {"apps": sum(entry.path.endswith("/containerApps") for entry in reads),
            "storages": sum(entry.path.endswith("/storages") for entry in reads),
            "shares": sum("comp=list" in entry.query for entry in reads),
            "other": sum(not (entry.path.endswith(("/containerApps", "/storages")) or "comp=list" in entry.query)
                         for entry in reads)}


@pytest.fixture
def provisioned(make_azure_workspace: Callable[..., Path], emulators: AzureEmulators, run_cli: Run) -> Path:
    root = make_azure_workspace(12)
    emulators.arm.page_size = 5
    emulators.clear_logs()
    code, out, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--json")
    assert code == 0, err
    assert json.loads(out)["writes"] == 12 * 8
    # The first provision: one listing of each kind (one page of apps: there were none) before its first write.
    assert listings(emulators) == {"apps": 1, "storages": 1, "shares": 1, "other": 0}
    return root


def test_a_no_op_provision_lists_the_fleet_once(provisioned: Path, emulators: AzureEmulators, run_cli: Run) -> None:
    emulators.clear_logs()
    code, out, err = run_cli("-w", str(provisioned), "provision", "--all", "--yes", "--json")
    assert code == 0, err
    assert json.loads(out)["writes"] == 0
    # One listing for the plan, the sweep and the health read after it (nothing was written in between).
    assert listings(emulators) == {"apps": math.ceil(36 / 5), "storages": 1, "shares": 1, "other": 0}
    assert [entry for entry in emulators.arm_server.log if entry.method in WRITES] == []


def test_a_plan_no_longer_current_is_listed_again(provisioned: Path, emulators: AzureEmulators, run_cli: Run,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A confirmation that came later than ``LISTING_KEPT_S`` after the plan (here: at once, the window being 0)
    makes the sweep list the fleet again, as before."""
    monkeypatch.setattr(azure_platform, "LISTING_KEPT_S", 0.0)
    emulators.clear_logs()
    code, _, err = run_cli("-w", str(provisioned), "provision", "--all", "--yes", "--json")
    assert code == 0, err
    # The plan's listing, the sweep's, and the apps again for the health read after the sweep (the code before
    # issue 17 read this much every time).
    assert listings(emulators) == {"apps": 3 * math.ceil(36 / 5), "storages": 2, "shares": 2, "other": 0}


def test_a_change_on_the_platform_between_plan_and_sweep_is_seen_when_listed_again(
        provisioned: Path, emulators: AzureEmulators, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drift made after the plan is converged by the sweep that lists again: the semantics of a confirmed plan
    (planned again at the solution's turn when its live state changed) are those of before."""
    monkeypatch.setattr(azure_platform, "LISTING_KEPT_S", 0.0)
    from orbit_ops.fleet import entries

    real = entries.plan_many

    async def plan_then_drift(workspace: Any, specs: Any) -> Any:
        planned = await real(workspace, specs)
        app = emulators.arm.apps["agent-" + next(iter(planned)).desired.h]
        app["properties"]["template"]["containers"][0]["image"] = "somewhere.else/agent:0.0.1"
        return planned

    monkeypatch.setattr(entries, "plan_many", plan_then_drift)
    code, out, err = run_cli("-w", str(provisioned), "provision", "--all", "--yes", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["writes"] == 1
    assert {app["properties"]["template"]["containers"][0]["image"] for name, app in emulators.arm.apps.items()
            if name.startswith("agent-")} == {f"{emulators.login_server}/agent:1.0.0"}


def test_a_saved_plan_applied_lists_once(provisioned: Path, emulators: AzureEmulators, run_cli: Run,
                                         tmp_path: Path) -> None:
    """`orbit apply` checks the saved plan against a fresh listing (decision 0058) and sweeps from that one."""
    plan = tmp_path / "plan.json"
    code, _, err = run_cli("-w", str(provisioned), "plan", "--all", "--out", str(plan))
    assert code == 0, err
    emulators.clear_logs()
    code, _, err = run_cli("-w", str(provisioned), "--json", "apply", str(plan))
    assert code == 0, err
    assert listings(emulators) == {"apps": math.ceil(36 / 5), "storages": 1, "shares": 1, "other": 0}


def test_a_listing_is_current_only_for_its_platform_and_until_a_write(emulators: AzureEmulators) -> None:
    platform = AzurePlatform(emulators.settings(), emulators.fast)
    other = AzurePlatform(emulators.settings(), emulators.fast)
    token = platform.listing_token()
    assert platform.listing_current(token)
    assert not other.listing_current(token)
    assert not platform.listing_current(None) and not platform.listing_current(("x", 0, 0.0))
    asyncio.run(platform.create_storage(Storage("s-1", "share-1", "ReadWrite", emulators.account)))
    assert not platform.listing_current(token)
    assert platform.listing_current(platform.listing_token())
