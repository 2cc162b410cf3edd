"""The ARM emulator keeps the JSON views it served, and a listing still shows every change: writes, the end of an
operation, the clock's move of revision-derived fields, and a test's edit of the stored documents in place."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from emulators.arm import _json_page
from emulators.revisions import ACTIVATION_SECONDS, PROVISIONING_SECONDS

RG = "orbit-test"
ENV = "orbit-env"
IMAGE = "orbitacr.azurecr.io/agent:2.0.0"
NEXT = "orbitacr.azurecr.io/agent:2.1.0"


def create(client: ContainerAppsAPIClient, emulators: Any, name: str, image: str = IMAGE) -> None:
    body = {"location": "westeurope", "tags": {"team": "core"},
            "properties": {"managedEnvironmentId": emulators.arm.environment_id,
                           "configuration": {"secrets": [{"name": "db", "value": "hunter2-secret-value"}]},
                           "template": {"containers": [{"name": "agent", "image": image,
                                                        "env": [{"name": "DB", "secretRef": "db"}]}]}}}
    client.container_apps.begin_create_or_update(RG, name, body).result()


def listed(client: ContainerAppsAPIClient) -> dict[str, Any]:
    """Every app of the group as listed (all pages), by name."""
    return {str(app.name): app for app in client.container_apps.list_by_resource_group(RG)}


def test_a_listed_app_follows_its_revisions_on_the_clock(client: ContainerAppsAPIClient, emulators: Any) -> None:
    create(client, emulators, "agent-acme")
    first = listed(client)["agent-acme"].properties
    revision = first.latest_revision_name
    assert (first.latest_ready_revision_name, first.running_status) == ("", "Progressing")
    emulators.arm.clock.advance(PROVISIONING_SECONDS + ACTIVATION_SECONDS)
    settled = listed(client)["agent-acme"].properties
    assert (settled.latest_ready_revision_name, settled.running_status) == (revision, "Running")
    got = client.container_apps.get(RG, "agent-acme").properties
    assert (got.latest_ready_revision_name, got.running_status) == (revision, "Running")


def test_every_write_shows_in_the_next_listing(client: ContainerAppsAPIClient, emulators: Any) -> None:
    emulators.arm.page_size = 2
    for name in ("agent-a", "agent-b", "agent-c"):
        create(client, emulators, name)
    before = listed(client)
    assert list(before) == ["agent-a", "agent-b", "agent-c"]
    client.container_apps.begin_update(RG, "agent-b", {"tags": {"team": "data"}}).result()
    client.container_apps.begin_update(RG, "agent-c", {"properties": {"template": {"containers": [
        {"name": "agent", "image": NEXT, "env": [{"name": "DB", "secretRef": "db"}]}]}}}).result()
    emulators.arm.fail.add("agent-a")
    with pytest.raises(Exception, match="failed to provision"):
        client.container_apps.begin_update(RG, "agent-a", {"tags": {"team": "ops"}}).result()
    after = listed(client)
    assert after["agent-b"].tags == {"team": "data"}
    assert after["agent-c"].properties.template.containers[0].image == NEXT
    assert after["agent-c"].properties.latest_revision_name != before["agent-c"].properties.latest_revision_name
    assert (after["agent-a"].properties.provisioning_state, after["agent-a"].tags) == ("Failed", {"team": "ops"})
    secrets = [secret.as_dict() for app in after.values() for secret in app.properties.configuration.secrets]
    assert secrets == [{"name": "db"}] * 3


def test_a_document_edited_in_place_is_listed_as_edited(client: ContainerAppsAPIClient, emulators: Any) -> None:
    create(client, emulators, "agent-acme")
    emulators.arm.put_storage("share-acme", {"properties": {"azureFile": {
        "accountName": "orbitfiles", "accountKey": "a2V5", "shareName": "share-acme", "accessMode": "ReadWrite"}}})
    assert listed(client)["agent-acme"].tags == {"team": "core"}
    (storage,) = client.managed_environments_storages.list(RG, ENV).value
    assert storage.properties.azure_file.access_mode == "ReadWrite"
    emulators.arm.apps["agent-acme"]["tags"]["team"] = "edited"  # someone changed it in the portal
    emulators.arm.storages["share-acme"]["properties"]["azureFile"]["accessMode"] = "ReadOnly"
    assert listed(client)["agent-acme"].tags == {"team": "edited"}
    assert client.container_apps.get(RG, "agent-acme").tags == {"team": "edited"}
    (storage,) = client.managed_environments_storages.list(RG, ENV).value
    assert storage.properties.azure_file.access_mode == "ReadOnly"
    assert storage.properties.azure_file.account_key is None


def test_a_page_of_kept_views_is_the_json_of_the_page() -> None:
    views = [{"name": "a", "properties": {"n": 1.5, "s": "é\"x"}}, {"name": "b", "tags": None}]
    texts = [json.dumps(view) for view in views]
    link = "https://127.0.0.1:1/x?api-version=2026-07-01&$skiptoken=2"
    assert _json_page({"nextLink": link}, texts).body == json.dumps({"value": views, "nextLink": link}).encode()
    assert _json_page({}, texts).body == json.dumps({"value": views}).encode()
    assert _json_page({}, []).body == b'{"value": []}'
