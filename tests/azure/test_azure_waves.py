"""A roll in waves on the Azure backend against the emulators (issue 15): it halts on a crash-looping image in the
first wave and rolls that wave back, and the request log shows no write to a later wave's apps."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulators.revisions import ACTIVATION_SECONDS, PROVISIONING_SECONDS

from orbit_ops.names import azure_names

Run = Callable[..., tuple[int, str, str]]


def test_a_crash_looping_first_wave_halts_and_is_rolled_back_and_no_later_app_is_written(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    emulators.arm.clock.per_request = 0
    root = make_azure_workspace(5)
    code, _, err = run_cli("-w", str(root), "provision", "--all", "--yes", "--health-timeout", "0")  # a still clock
    assert code == 0, err
    emulators.arm.clock.advance(PROVISIONING_SECONDS + ACTIVATION_SECONDS + 1)  # 1.0.0 runs everywhere
    emulators.arm.clock.per_request = 10  # from now on time passes with each request, as it does for the service
    emulators.arm.image_fault(f"{emulators.login_server}/agent:1.1.0", "crash-loop")
    emulators.arm_server.clear_log()

    code, out, err = run_cli("-w", str(root), "roll", "agent", "1.1.0", "--all", "--waves", "2,*", "--soak", "3s",
                             "--on-failure", "rollback", "--yes", "--json")
    assert code == 1, err
    result = json.loads(out)
    first, rest = result["waves"]
    assert (first["state"], rest["state"], result["halted_at"]) == ("failed", "skipped", 1)
    assert first["solutions"] == ["customer-00", "customer-01"]
    assert first["failed"] and set(first["failed"]) <= set(first["solutions"])  # the soak stops at the first
    assert result["rolled_back"] == first["solutions"]  # the whole wave goes back
    reasons = {s["id"]: s.get("error", "") for s in result["solutions"]}
    assert all("restarting: " in reasons[i] and " restart" in reasons[i] for i in first["failed"])

    later_apps = {name for solution_id in rest["solutions"] for name in azure_names(solution_id).apps.values()}
    writes = [r.path for r in emulators.arm_server.requests() if r.method in ("PUT", "PATCH", "DELETE")]
    assert writes and not [path for path in writes if any(f"/containerApps/{app}" in path for app in later_apps)]
    code, out, _ = run_cli("-w", str(root), "solutions", "--json")
    assert {row["images"]["agent_tag"] for row in json.loads(out)} == {"1.0.0"}  # pins back, later ones untouched


def test_a_revision_that_turns_degraded_during_the_soak_fails_its_wave(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    emulators.arm.clock.per_request = 0
    root = make_azure_workspace(3)
    assert run_cli("-w", str(root), "provision", "--all", "--yes", "--health-timeout", "0")[0] == 0
    emulators.arm.clock.advance(PROVISIONING_SECONDS + ACTIVATION_SECONDS + 1)
    emulators.arm.image_fault(f"{emulators.login_server}/agent:1.1.0", "crash-loop")
    # The sweep reads once (--health-timeout 0): the new revisions are still provisioning, nothing fails. During
    # the soak the service's time moves on: the revisions start, then crash-loop.
    timer = threading.Timer(1.0, emulators.arm.clock.advance, (PROVISIONING_SECONDS + ACTIVATION_SECONDS + 15,))
    timer.start()
    try:
        code, out, err = run_cli("-w", str(root), "roll", "agent", "1.1.0", "--all", "--waves", "1,*", "--soak", "6s",
                                 "--health-timeout", "0", "--yes", "--json")
    finally:
        timer.cancel()
    assert code == 1, err
    result = json.loads(out)
    assert [(w["state"], w["failed"]) for w in result["waves"]] == [("failed", ["customer-00"]), ("skipped", [])]
    [first] = [s for s in result["solutions"] if s["id"] == "customer-00"]
    assert first["state"] == "failed" and first["error"].startswith("degraded: agent: restarting: ")
