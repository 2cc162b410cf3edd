"""Health (SPEC §3.6): the one mapping from Container Apps' facts to Orbit's health and an operator's reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orbit_ops.fleet.health import (
    HEALTH_ORDER,
    AppFacts,
    Health,
    RevisionFacts,
    app_health,
    plainly_healthy,
    worst,
)

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
SIX_MIN_AGO = NOW - timedelta(minutes=6)
APP = "agent-1a2b3c"
NEW, OLD = f"{APP}--new", f"{APP}--old"


def app(state: str = "Succeeded", running: str = "Running", latest: str = NEW, ready: str = OLD) -> AppFacts:
    return AppFacts(APP, state, running, latest, ready)


def revision(provisioning: str = "Provisioned", health: str = "Healthy", running: str = "Running", *,
             restarts: int = 0, error: str = "", detail: str = "", name: str = NEW) -> RevisionFacts:
    return RevisionFacts(name, provisioning, health, running, active=True, replicas=1, restarts=restarts,
                         provisioning_error=error, detail=detail, created=SIX_MIN_AGO)


@pytest.mark.parametrize(
    ("facts", "revisions", "health", "reason"),
    [
        # the listing alone shows it running: no revision is needed
        (app(ready=NEW), (), Health.HEALTHY, None),
        (app(ready=NEW, running=""), (), Health.HEALTHY, None),  # API versions without runningStatus
        # the latest revision is not the ready one: its own facts say why
        (app(), (revision(), revision(name=OLD)), Health.PROGRESSING, f"revision {NEW} not ready yet (6 min)"),
        (app(), (revision("Provisioning", "None", "Processing"),), Health.PROGRESSING, "activating for 6 min"),
        (app(), (revision("Provisioned", "None", "Activating"),), Health.PROGRESSING, "activating for 6 min"),
        (app(), (revision("Failed", "Unhealthy", "Failed",
                          error="Failed to pull image 'acr.io/agent:9.9.9': manifest unknown"),),
         Health.DEGRADED, "image pull failed: 'acr.io/agent:9.9.9': manifest unknown"),
        (app(), (revision("Failed", "Unhealthy", "Failed",
                          error='ImagePullBackOff: Failed to pull image "acr.io/agent:9.9.9": not found'),),
         Health.DEGRADED, 'image pull failed (ImagePullBackOff): "acr.io/agent:9.9.9": not found'),
        (app(), (revision("Provisioned", "Unhealthy", "Degraded", detail="Back-off pulling image"),),
         Health.DEGRADED, "image pull failed: Back-off pulling image"),
        (app(), (revision("Provisioned", "Unhealthy", "Degraded", restarts=7),), Health.DEGRADED,
         "restarting: 7 restarts in 6 min"),
        (app(), (revision("Provisioned", "Unhealthy", "Running", restarts=1),), Health.DEGRADED,
         "restarting: 1 restart in 6 min"),
        (app(), (revision("Provisioned", "Unhealthy", "Running"),), Health.DEGRADED, "probe failing"),
        (app(), (revision("Failed", "Unhealthy", "Failed", error="the image requires env SERIAL"),),
         Health.DEGRADED, "provisioning failed: the image requires env SERIAL"),
        (app(), (revision("Provisioned", "None", "ActivationFailed", error="exit code 137"),), Health.DEGRADED,
         "activation failed: exit code 137"),
        (app(), (revision("Provisioned", "Unhealthy", "Failed"),), Health.DEGRADED, "failed"),
        (app(), (revision("Deprovisioned", "None", "Stopped"),), Health.DEGRADED, f"latest revision {NEW} is Stopped"),
        # values outside the SDK's enums are strings: known ones understood, others named, never an error
        (app(ready=NEW, state="Succeeded"), (revision(running="RunningAtMaxScale"),), Health.HEALTHY, None),
        (app(ready=NEW, running="Progressing"), (revision(running="RunningAtMaxScale"),), Health.PROGRESSING,
         "starting"),
        (app(), (revision(running="Hibernating"),), Health.UNKNOWN,
         f"revision {NEW}: runningState 'Hibernating' is not a state Orbit knows"),
        (app(), (revision(health="Sleepy"),), Health.UNKNOWN,
         f"revision {NEW}: healthState 'Sleepy' is not a state Orbit knows"),
        (app(), (revision(running="Unknown"),), Health.UNKNOWN,
         f"the service reports revision {NEW}'s running state as Unknown"),
        (app(state="Migrating", ready=NEW), (), Health.UNKNOWN,
         "provisioningState 'Migrating' is not a state Orbit knows"),
        (app(running="Paused", ready=NEW), (), Health.UNKNOWN, "runningStatus 'Paused' is not a state Orbit knows"),
        # the app's own state
        (app(state="InProgress"), (revision("Provisioning", "None", "Processing"),), Health.PROGRESSING,
         "activating for 6 min"),
        (app(state="InProgress"), (), Health.PROGRESSING, "provisioning"),
        (app(state="Failed"), (revision(error="quota exceeded"),), Health.DEGRADED,
         "provisioning failed: quota exceeded"),
        (app(state="Canceled"), (), Health.DEGRADED, "provisioning canceled"),
        (app(state="Deleting"), (), Health.PROGRESSING, "being deleted"),
        (app(running="Stopped", ready=NEW), (), Health.DEGRADED, "app stopped"),
        (app(latest="", ready=""), (), Health.PROGRESSING, "no revision yet"),
        (app(), (), Health.PROGRESSING, f"revision {NEW} not ready yet"),  # its revisions not (yet) listed
        # case as the SDK compares its enums: insensitively
        (app(state="succeeded", running="RUNNING", ready=NEW), (), Health.HEALTHY, None),
        (app(), (revision("failed", "unhealthy", "failed", error="boom"),), Health.DEGRADED,
         "provisioning failed: boom"),
    ],
)
def test_app_health(facts: AppFacts, revisions: tuple[RevisionFacts, ...], health: Health,
                    reason: str | None) -> None:
    judged = app_health(facts, revisions, NOW)
    assert (judged.health, judged.health_reason) == (health, reason)
    assert (judged.revision, judged.ready_revision) == (facts.latest_revision or None,
                                                        facts.latest_ready_revision or None)
    assert judged.revisions == revisions


def test_without_a_clock_the_reasons_carry_no_duration() -> None:
    judged = app_health(app(), (revision("Provisioned", "Unhealthy", "Degraded", restarts=3),))
    assert judged.health_reason == "restarting: 3 restarts"


@pytest.mark.parametrize(
    ("facts", "plain"),
    [
        (app(ready=NEW), True),
        (app(), False),  # latest is not the ready one
        (app(state="InProgress", ready=NEW), False),
        (app(running="Stopped", ready=NEW), False),
        (app(running="RunningAtMaxScale", ready=NEW), False),  # not plainly: its revisions are read
        (app(latest="", ready=""), False),
    ],
)
def test_plainly_healthy_needs_the_listing_only(facts: AppFacts, plain: bool) -> None:
    assert plainly_healthy(facts) is plain


@pytest.mark.parametrize(
    ("healths", "expected"),
    [
        ([Health.HEALTHY, Health.HEALTHY], Health.HEALTHY),
        ([Health.HEALTHY, Health.PROGRESSING], Health.PROGRESSING),
        ([Health.PROGRESSING, Health.UNKNOWN], Health.UNKNOWN),
        ([Health.UNKNOWN, Health.MISSING], Health.MISSING),
        ([Health.MISSING, Health.DEGRADED, Health.UNKNOWN], Health.DEGRADED),
        ([], Health.UNKNOWN),
    ],
)
def test_a_solution_is_the_worst_of_its_apps(healths: list[Health], expected: Health) -> None:
    assert worst(healths) is expected


def test_the_order_names_every_health_once() -> None:
    assert sorted(HEALTH_ORDER) == sorted(Health) and len(set(HEALTH_ORDER)) == len(Health)
