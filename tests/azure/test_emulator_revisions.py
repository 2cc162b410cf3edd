"""The ARM emulator keeps Container Apps revisions as the service does, read through the real SDK client."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.appcontainers.models import Revision, RevisionRunningState
from emulators.revisions import ACTIVATION_SECONDS, PROVISIONING_SECONDS, RESTART_SECONDS

RG = "orbit-test"
IMAGE = "orbitacr.azurecr.io/agent:2.0.0"
NEXT = "orbitacr.azurecr.io/agent:2.1.0"
SETTLE = PROVISIONING_SECONDS + ACTIVATION_SECONDS


def template(image: str = IMAGE, **extra: Any) -> dict[str, Any]:
    return {"containers": [{"name": "agent", "image": image, "env": [{"name": "MODE", "value": "serve"}]}], **extra}


def create(client: ContainerAppsAPIClient, emulators: Any, name: str = "agent-acme", image: str = IMAGE) -> None:
    body = {"location": "westeurope", "tags": {"orbit-solution-id": "acme"},
            "properties": {"managedEnvironmentId": emulators.arm.environment_id,
                           "configuration": {"activeRevisionsMode": "Single",
                                             "secrets": [{"name": "db", "value": "one"}]},
                           "template": template(image)}}
    client.container_apps.begin_create_or_update(RG, name, body).result()


def update(client: ContainerAppsAPIClient, patch: dict[str, Any], name: str = "agent-acme") -> None:
    client.container_apps.begin_update(RG, name, patch).result()


def revisions(client: ContainerAppsAPIClient, name: str = "agent-acme") -> list[Revision]:
    return list(client.container_apps_revisions.list_revisions(RG, name))


def states(revision: Revision) -> tuple[Any, Any, Any]:
    """(provisioningState, runningState, healthState): the SDK's enum members (str) or plain strings."""
    properties = revision.properties
    assert properties is not None
    return (properties.provisioning_state, properties.running_state, properties.health_state)


def app_fields(client: ContainerAppsAPIClient, name: str = "agent-acme") -> tuple[Any, Any, Any]:
    """(latestRevisionName, latestReadyRevisionName, runningStatus) of the app."""
    properties = client.container_apps.get(RG, name).properties
    assert properties is not None
    return (properties.latest_revision_name, properties.latest_ready_revision_name, properties.running_status)


def test_a_revision_per_template_change_and_none_for_application_scope(
        client: ContainerAppsAPIClient, emulators: Any) -> None:
    create(client, emulators)
    update(client, {"tags": {"team": "data"}})
    update(client, {"properties": {"configuration": {"secrets": [{"name": "db", "value": "two"}]}}})
    update(client, {"properties": {"template": template()}})  # the same template again: a no-op
    assert len(revisions(client)) == 1
    update(client, {"properties": {"template": template(NEXT)}})
    update(client, {"properties": {"template": template(NEXT, scale={"minReplicas": 1, "maxReplicas": 3})}})
    update(client, {"properties": {"template": template(NEXT, revisionSuffix="canary")}})
    names = [revision.name for revision in revisions(client)]
    assert len(names) == 4 and len(set(names)) == 4
    assert all(name and name.startswith("agent-acme--") for name in names)
    assert names[-1] == "agent-acme--canary" == app_fields(client)[0]
    assert revisions(client)[1].properties.template.containers[0].image == NEXT
    update(client, {"properties": {"template": template(NEXT, revisionSuffix="canary")}})  # unchanged: fine
    with pytest.raises(HttpResponseError, match="already exists") as refused:
        update(client, {"properties": {"template": template(IMAGE, revisionSuffix="canary")}})
    assert refused.value.status_code == 400 and len(revisions(client)) == 4


def test_a_revision_advances_on_the_clock_and_becomes_the_latest_ready(
        client: ContainerAppsAPIClient, emulators: Any) -> None:
    create(client, emulators)
    (revision,) = revisions(client)
    assert states(revision) == ("Provisioning", "Processing", "None")
    assert revision.properties.replicas == 0 and revision.properties.created_time is not None
    assert app_fields(client) == (revision.name, "", "Progressing")
    emulators.arm.clock.advance(PROVISIONING_SECONDS)
    assert states(revisions(client)[0]) == ("Provisioned", "Activating", "None")
    emulators.arm.clock.advance(ACTIVATION_SECONDS)
    (running,) = revisions(client)
    assert states(running) == ("Provisioned", "Running", "Healthy")
    assert (running.properties.active, running.properties.replicas,
            running.properties.traffic_weight) == (True, 1, 100)
    assert app_fields(client) == (revision.name, revision.name, "Running")
    (replica,) = client.container_apps_revision_replicas.list_replicas(RG, "agent-acme", str(revision.name)).value
    container = replica.properties.containers[0]
    assert (container.name, container.ready, container.restart_count, container.running_state) == (
        "agent", True, 0, "Running")


def test_revision_fields_of_the_app_are_filled_by_the_service_not_the_client(
        client: ContainerAppsAPIClient, emulators: Any) -> None:
    forged = {"latestRevisionName": "agent-acme--forged", "latestReadyRevisionName": "agent-acme--forged",
              "runningStatus": "Stopped", "provisioningState": "Failed"}
    body = {"location": "westeurope", "properties": {"managedEnvironmentId": emulators.arm.environment_id,
                                                     "template": template(), **forged}}
    client.container_apps.begin_create_or_update(RG, "agent-acme", body).result()
    emulators.arm.clock.advance(SETTLE)
    (revision,) = revisions(client)
    assert revision.name != "agent-acme--forged"
    assert app_fields(client) == (revision.name, revision.name, "Running")
    assert client.container_apps.get(RG, "agent-acme").properties.provisioning_state == "Succeeded"


def test_time_passes_between_requests(client: ContainerAppsAPIClient, emulators: Any) -> None:
    create(client, emulators)
    emulators.arm.clock.per_request = PROVISIONING_SECONDS / 2
    name = str(revisions(client)[0].name)  # read 5 s after the write
    seen = [states(client.container_apps_revisions.get_revision(RG, "agent-acme", name))[1] for _ in range(3)]
    assert seen == ["Activating", "Activating", "Running"]


def test_the_ready_revision_serves_until_a_newer_one_is_ready(client: ContainerAppsAPIClient, emulators: Any) -> None:
    create(client, emulators)
    emulators.arm.clock.advance(SETTLE)
    update(client, {"properties": {"template": template(NEXT)}})
    first, second = revisions(client)
    assert app_fields(client) == (second.name, first.name, "Progressing")
    assert [(r.properties.active, r.properties.traffic_weight) for r in (first, second)] == [
        (True, 100), (True, 0)]
    emulators.arm.clock.advance(SETTLE)
    first, second = revisions(client)
    assert app_fields(client) == (second.name, second.name, "Running")
    assert states(first) == ("Deprovisioned", "Stopped", "None") and first.properties.active is False
    assert second.properties.traffic_weight == 100


def test_pull_failure_fails_the_revision_and_the_old_one_keeps_serving(
        client: ContainerAppsAPIClient, emulators: Any) -> None:
    create(client, emulators)
    emulators.arm.clock.advance(SETTLE)
    emulators.arm.image_fault(NEXT, "pull-failure")
    update(client, {"properties": {"template": template(NEXT)}})  # the write itself succeeds, as on the service
    emulators.arm.clock.advance(SETTLE)
    first, second = revisions(client)
    assert states(second) == ("Failed", "Failed", "Unhealthy")
    error = str(second.properties.provisioning_error)
    assert error.startswith("ImagePullBackOff: Failed to pull image") and f'"{NEXT}"' in error
    assert app_fields(client) == (second.name, first.name, "Degraded")
    assert (first.properties.active, first.properties.traffic_weight) == (True, 100)
    assert client.container_apps_revision_replicas.list_replicas(RG, "agent-acme", str(second.name)).value == []
    update(client, {"properties": {"template": template(IMAGE, revisionSuffix="fix")}})
    states_now = [states(r) for r in revisions(client)]
    assert states_now == [("Provisioned", "Running", "Healthy"), ("Deprovisioned", "Stopped", "None"),
                          ("Provisioning", "Processing", "None")]


def test_crash_loop_degrades_the_revision_with_restarts_climbing_per_read(
        client: ContainerAppsAPIClient, emulators: Any) -> None:
    emulators.arm.image_fault(IMAGE, "crash-loop")
    create(client, emulators)
    emulators.arm.clock.advance(SETTLE)
    (revision,) = revisions(client)
    assert states(revision) == ("Provisioned", "Running", "Healthy")  # it starts, then exits
    emulators.arm.clock.per_request = RESTART_SECONDS
    counts = []
    for _ in range(3):
        (replica,) = client.container_apps_revision_replicas.list_replicas(RG, "agent-acme", str(revision.name)).value
        container = replica.properties.containers[0]
        assert (replica.properties.running_state, container.running_state, container.ready) == (
            "NotRunning", "Waiting", False)
        assert str(container.running_state_details).startswith("back-off ")
        counts.append(container.restart_count)
    assert counts == [1, 2, 3]
    degraded = client.container_apps_revisions.get_revision(RG, "agent-acme", str(revision.name))
    assert states(degraded) == ("Provisioned", "Degraded", "Unhealthy") and degraded.properties.replicas == 0
    assert app_fields(client)[2] == "Degraded"


def test_an_activation_that_never_finishes_stays_activating(client: ContainerAppsAPIClient, emulators: Any) -> None:
    create(client, emulators)
    emulators.arm.clock.advance(SETTLE)
    emulators.arm.image_fault(NEXT, "activation-stalls")
    update(client, {"properties": {"template": template(NEXT)}})
    emulators.arm.clock.advance(3600)
    first, second = revisions(client)
    assert states(second) == ("Provisioned", "Activating", "None") and second.properties.replicas == 0
    assert app_fields(client) == (second.name, first.name, "Progressing")
    (replica,) = client.container_apps_revision_replicas.list_replicas(RG, "agent-acme", str(second.name)).value
    assert replica.properties.containers[0].running_state_details == "ContainerCreating"


def test_a_state_the_sdk_enums_do_not_know_arrives_as_a_string(client: ContainerAppsAPIClient, emulators: Any) -> None:
    emulators.arm.image_fault(IMAGE, "reports-state", running_state="RunningAtMaxScale")
    create(client, emulators)
    emulators.arm.clock.advance(SETTLE)
    (revision,) = revisions(client)
    running = revision.properties.running_state
    assert running == "RunningAtMaxScale" and type(running) is str
    assert running not in {member.value for member in RevisionRunningState}
    assert states(revision)[2] == "Healthy" and app_fields(client)[1:] == (revision.name, "Running")
    fetched = client.container_apps_revisions.get_revision(RG, "agent-acme", str(revision.name))
    assert fetched.properties.running_state == "RunningAtMaxScale"


def test_revision_reads_are_paged_and_in_the_request_log(client: ContainerAppsAPIClient, emulators: Any) -> None:
    emulators.arm.page_size = 2
    create(client, emulators)
    for minimum in (1, 2, 3, 4):
        update(client, {"properties": {"template": template(scale={"minReplicas": minimum, "maxReplicas": 5})}})
    emulators.clear_logs()
    listed = revisions(client)
    assert len(listed) == 5
    client.container_apps_revisions.get_revision(RG, "agent-acme", str(listed[0].name))
    client.container_apps_revision_replicas.list_replicas(RG, "agent-acme", str(listed[0].name))
    logged = [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in emulators.arm_server.log]
    assert logged == [("GET", "revisions", 200)] * 3 + [("GET", str(listed[0].name), 200), ("GET", "replicas", 200)]
    assert [("$skiptoken=2" in r.query, "$skiptoken=4" in r.query) for r in emulators.arm_server.log[:3]] == [
        (False, False), (True, False), (False, True)]


def test_unknown_revisions_apps_and_filters_are_refused(client: ContainerAppsAPIClient, emulators: Any) -> None:
    create(client, emulators)
    with pytest.raises(ResourceNotFoundError):
        client.container_apps_revisions.get_revision(RG, "agent-acme", "agent-acme--nope")
    with pytest.raises(ResourceNotFoundError):
        revisions(client, "agent-gone")
    with pytest.raises(HttpResponseError) as refused:
        list(client.container_apps_revisions.list_revisions(RG, "agent-acme", filter="properties/active eq true"))
    assert refused.value.status_code == 400
    with pytest.raises(ValueError, match="unknown image fault"):
        emulators.arm.image_fault(IMAGE, "slow")
