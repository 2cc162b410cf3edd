"""The emulators read request bodies through the SDK's models: a malformed body gets a 400, as from Azure."""

from __future__ import annotations

import json
import ssl
import typing
import urllib.error
import urllib.request
from typing import Any

import pytest

API = "api-version=2025-01-01"


def send(emulators: Any, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    """One raw HTTPS request to the ARM emulator (verified against the session's certificate)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{emulators.arm_url}{path}?{API}", data=data, method=method, headers={
        "Authorization": f"Bearer {emulators.token}", "Content-Type": "application/json"})
    context = ssl.create_default_context(cafile=str(emulators.ca_bundle))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def app_path(emulators: Any, name: str) -> str:
    return f"{emulators.arm.apps_id}/{name}"


def storage_path(emulators: Any, name: str) -> str:
    return f"{emulators.arm.environment_id}/storages/{name}"


def valid_app(emulators: Any) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "tags": {"orbit-solution-id": "acme"},
        "properties": {
            "managedEnvironmentId": emulators.arm.environment_id,
            "configuration": {"activeRevisionsMode": "Single"},
            "template": {"containers": [{"name": "agent", "image": "orbitacr.azurecr.io/agent:1.0.0",
                                         "env": [{"name": "A", "value": "b"}]}]},
        },
    }


def valid_storage() -> dict[str, Any]:
    return {"properties": {"azureFile": {"accountName": "orbitfiles", "accountKey": "a2V5",
                                         "shareName": "acme-customer", "accessMode": "ReadOnly"}}}


def test_well_formed_bodies_are_accepted(emulators: Any) -> None:
    assert send(emulators, "PUT", storage_path(emulators, "s1"), valid_storage())[0] == 201
    assert send(emulators, "PUT", app_path(emulators, "agent-1"), valid_app(emulators))[0] == 201
    status, _ = send(emulators, "PATCH", app_path(emulators, "agent-1"), {"tags": {"orbit-solution-id": None}})
    assert status == 202


@pytest.mark.parametrize(("mutate", "message"), [
    # azure-mgmt-appcontainers 4.x flattened the properties; 5.x (and ARM) nest them under "properties".
    (lambda b: b.update(managedEnvironmentId=b["properties"].pop("managedEnvironmentId")),
     "Could not find member 'managedEnvironmentId' on object of type 'ContainerApp'. Path 'managedEnvironmentId'"),
    (lambda b: b["properties"]["template"]["containers"][0].update(env={"A": "b"}),
     "Unexpected object where an array is expected. Path 'properties.template.containers[0].env'"),
    (lambda b: b["properties"]["template"].update(containers={"name": "agent"}),
     "Unexpected object where an array is expected. Path 'properties.template.containers'"),
    (lambda b: b["properties"]["template"]["containers"][0].update(image=["a", "b"]),
     "Unexpected array where a string is expected. Path 'properties.template.containers[0].image'"),
    (lambda b: b["properties"]["template"].update(scale={"minReplicas": "many"}),
     "Unexpected string where an integer is expected. Path 'properties.template.scale.minReplicas'"),
    (lambda b: b["properties"]["configuration"].update(activeRevisionsMode="Several"),
     "Error converting value \"Several\" to type 'ActiveRevisionsMode'"),
    (lambda b: b.pop("location"), "Required property 'location' not found in JSON. Path '$'"),
])
def test_malformed_app_body_gets_400_and_stores_nothing(emulators: Any, mutate: Any, message: str) -> None:
    body = valid_app(emulators)
    mutate(body)
    status, answer = send(emulators, "PUT", app_path(emulators, "agent-1"), body)
    assert status == 400
    assert answer["error"]["code"] == "InvalidRequestContent"
    assert message in answer["error"]["message"]
    assert emulators.arm.apps == {}


def test_malformed_patch_and_storage_bodies_get_400(emulators: Any) -> None:
    assert send(emulators, "PUT", app_path(emulators, "agent-1"), valid_app(emulators))[0] == 201
    status, answer = send(emulators, "PATCH", app_path(emulators, "agent-1"), {"properties": {"template": []}})
    assert (status, answer["error"]["code"]) == (400, "InvalidRequestContent")
    assert "Path 'properties.template'" in answer["error"]["message"]

    body = valid_storage()
    body["properties"]["azureFile"]["accessMode"] = "ReadMostly"
    status, answer = send(emulators, "PUT", storage_path(emulators, "s1"), body)
    assert (status, answer["error"]["code"]) == (400, "InvalidRequestContent")
    assert "'AccessMode'" in answer["error"]["message"]
    status, answer = send(emulators, "PUT", storage_path(emulators, "s1"), {"azureFile": valid_storage()["properties"]})
    assert status == 400 and "Could not find member 'azureFile'" in answer["error"]["message"]
    status, answer = send(emulators, "PUT", storage_path(emulators, "s1"), b"{not json")
    assert (status, answer["error"]["code"]) == (400, "InvalidRequestContent")
    assert emulators.arm.storages == {}


def test_malformed_model_sent_by_the_sdk_fails_with_the_services_message(emulators: Any) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.appcontainers import ContainerAppsAPIClient
    from azure.mgmt.appcontainers.models import ContainerApp

    from orbit_ops.backends.azure.common import StaticTokenCredential

    client = ContainerAppsAPIClient(StaticTokenCredential(emulators.token), emulators.arm.subscription,
                                    base_url=emulators.arm_url, credential_scopes=[emulators.arm_url + "/.default"],
                                    connection_verify=str(emulators.ca_bundle), **emulators.fast.arm)
    # The SDK models accept a raw dict for a nested model without checking it: the service must.
    app = ContainerApp(location="westeurope", properties={"template": {"containers": {"name": "agent"}}})
    with pytest.raises(HttpResponseError) as raised:
        client.container_apps.begin_create_or_update(emulators.arm.resource_group, "agent-1", app).result()
    client.close()
    assert raised.value.status_code == 400
    assert "Path 'properties.template.containers'" in str(raised.value)


def sdk_run_request() -> dict[str, Any]:
    """A scheduleRun body as the SDK serializes the one Orbit sends."""
    from azure.mgmt.containerregistry.v2025_03_01_preview import models

    request = models.DockerBuildRequest(
        source_location="source/202611241200/abc.tar.gz", docker_file_path="Dockerfile",
        image_names=["agent:1.0.0", "agent:latest"], is_push_enabled=True, timeout=3600,
        platform=models.PlatformProperties(os="Linux", architecture="amd64"))
    return typing.cast(dict[str, Any], request.serialize())


@pytest.mark.parametrize(("change", "reason"), [
    ({"type": "DockerBuildRequestX"}, "not a run request type"),
    ({"dockerFilePath": None}, "dockerFilePath: required"),
    ({"timeout": "3600"}, "timeout: must be int"),
    ({"timeout": 30}, "timeout: 30 is outside 300..28800"),
    ({"imageNames": "agent:1.0.0"}, "imageNames: must be an array"),
    ({"isPushEnabled": "yes"}, "isPushEnabled: must be bool"),
    ({"platform": {"os": "Linux", "arch": "amd64"}}, "platform.arch: not a member of PlatformProperties"),
    ({"dockerfile": "Dockerfile"}, "dockerfile: not a member of DockerBuildRequest"),
])
def test_schedule_run_bodies_are_read_through_the_sdk_model(change: dict[str, Any], reason: str) -> None:
    from emulators.acr import run_request_problem

    assert run_request_problem(sdk_run_request()) is None
    body = {key: value for key, value in {**sdk_run_request(), **change}.items() if value is not None}
    problem = run_request_problem(body)
    assert problem is not None and reason in problem



def test_files_errors_are_storage_xml_as_from_azure_files(emulators: Any) -> None:
    from xml.etree import ElementTree

    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.fileshare import ShareClient

    client = ShareClient(emulators.files_url, "no-such-share", credential={
        "account_name": emulators.account, "account_key": emulators.account_key},
        connection_verify=str(emulators.ca_bundle))
    with pytest.raises(ResourceNotFoundError) as raised:
        client.get_share_properties()
    assert raised.value.error_code == "ShareNotFound"
    response = raised.value.response
    assert response is not None and response.headers["Content-Type"] == "application/xml"
    document = ElementTree.fromstring(response.text())
    assert (document.tag, document.findtext("Code")) == ("Error", "ShareNotFound")
