"""Provisioning follows each new revision to health on the Azure backend, through the real SDK and the emulator.

The emulator's clock moves 10 s before each Microsoft.App request (its default ``per_request``), as time passes
on the service between a client's requests: a revision provisions for 10 s and activates for 10 s, so a few
health reads see it settle with no real sleep beyond the first pauses of the poll.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orbit_ops.names import azure_names

Run = Callable[..., tuple[int, str, str]]


def provision(make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run, *options: str,
              fault: str | None = None) -> tuple[int, str, str]:
    """Provision one solution through the CLI (text output, piped), its agent image taking ``fault``."""
    if fault is not None:
        emulators.arm.image_fault(f"{emulators.login_server}/agent:1.0.0", fault)
    root = make_azure_workspace(1)
    return run_cli("-w", str(root), "provision", "--all", "--yes", *options)


def health_lines(out: str, app: str) -> list[str]:
    """The log lines about the health of ``app``'s revisions, without their time stamps."""
    return [line.split(" ", 1)[1] for line in out.splitlines() if f"revision {app}--" in line]


def test_a_normal_revision_is_followed_until_it_is_healthy(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    emulators.arm.clock.per_request = 3  # the last app written is still activating when health is first read
    code, out, err = provision(make_azure_workspace, emulators, run_cli)
    assert code == 0, err
    apps = azure_names("customer-00").apps
    assert f"[customer-00] following the new revisions of {', '.join(apps.values())} (up to 300 s)" in out
    mc = health_lines(out, apps["mc"])
    assert mc[0].startswith(f"[customer-00] revision {apps['mc']}--") and ": progressing (activating for " in mc[0]
    for name in apps.values():
        lines = health_lines(out, name)
        assert lines[-1].endswith(": healthy") and len(lines) == len(set(lines))  # each transition once
    assert out.splitlines()[-1].startswith("1 converged, 0 not; 8 write(s); health: 1 healthy; operation ")


def test_a_crash_looping_image_fails_the_member_with_its_restarts(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    code, out, err = provision(make_azure_workspace, emulators, run_cli, "--json", fault="crash-loop")
    assert code == 1, err
    [solution] = json.loads(out)["solutions"]
    assert (solution["state"], solution["health"]) == ("failed", "degraded")
    assert solution["error"].startswith("agent: restarting: ") and " restart" in solution["error"]
    assert solution["health_reason"] == solution["error"]
    assert solution["actions"]  # the writes are reported as made: the member failed on what they made run


def test_an_activation_that_stalls_fails_at_the_health_timeout(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    code, out, err = provision(make_azure_workspace, emulators, run_cli, "--health-timeout", "0.3",
                               fault="activation-stalls")
    assert code == 1, err
    assert "customer-00: failed: still progressing after 0.3 s: agent: activating for " in err
    assert "(health progressing)" in err
    lines = health_lines(out, azure_names("customer-00").apps["agent"])
    assert lines[0].endswith(")") and ": progressing (activating for " in lines[0]
    assert not any(line.endswith(": healthy") for line in lines)


def test_health_timeout_0_reports_progressing_and_succeeds(
    make_azure_workspace: Callable[..., Path], emulators: Any, run_cli: Run,
) -> None:
    emulators.arm.clock.per_request = 0  # the revisions have only just been made
    code, out, err = provision(make_azure_workspace, emulators, run_cli, "--json", "--health-timeout", "0")
    assert code == 0, err
    [solution] = json.loads(out)["solutions"]
    assert (solution["state"], solution["health"]) == ("succeeded", "progressing")
    assert solution["health_reason"].startswith(("orbit: ", "agent: ", "mc: "))
    listings = [r for r in emulators.arm_server.requests("GET") if r.path.endswith("/containerApps")]
    # The plan's listing (the sweep starts from it, decision 0072) and the one health read: nothing waited for.
    assert len(listings) == 2
