"""Listings read as JSON (decision 0071) give exactly what the SDK models gave, over the ARM emulator.

The reference is the SDK's own paged operation (``container_apps.list_by_resource_group``,
``managed_environments_storages.list``) projected by ``app_from_model`` / ``app_facts`` / ``storage_from_model``,
with the same clients; the listing under test is ``AzurePlatform.list_apps`` / ``list_app_states`` /
``list_storages``. Documents Orbit never writes are stored too (someone else's apps and storages), and the pages
are small so that every listing follows ``nextLink``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import typing
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest

from orbit_ops.backends.azure.app_documents import app_from_model, new_app_model, storage_from_model
from orbit_ops.backends.azure.arm_pages import API_VERSION, Unread, next_link_ahead, page_items
from orbit_ops.backends.azure.common import call
from orbit_ops.backends.azure.platform import MANAGED_BY, AzurePlatform
from orbit_ops.backends.azure.revision_documents import app_facts
from orbit_ops.errors import BackendError, OrbitError
from orbit_ops.fleet.resources import MANAGED_BY_TAG, App, AppSecret, Mount

if TYPE_CHECKING:
    from conftest import AzureEmulators  # tests/azure/conftest.py

KV = "https://orbit-kv.vault.azure.net/secrets/db-password"
OTHER_ID = "/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other"


def orbit_app(index: int, pull: str) -> App:
    return App(
        name=f"agent-{index:04x}",
        image=f"orbitacr.azurecr.io/agent:1.{index}.0",
        env={"LOG_LEVEL": "info", "B": f"{index}", "A": ""},  # type: ignore[arg-type]
        mounts=(Mount(f"customer-{index}-rw", "/data"), Mount(f"internal-{index}", "/internal")),
        tags={MANAGED_BY_TAG: MANAGED_BY, "orbit-solution-id": f"customer-{index}"},  # type: ignore[arg-type]
        registry_server="orbitacr.azurecr.io",
        identity=pull,
        secrets={"db-password": AppSecret(KV, OTHER_ID if index % 2 else "")},  # type: ignore[arg-type]
        secret_env={"DB_PASSWORD": "db-password"},  # type: ignore[arg-type]
    )


def someone_elses(name: str, tags: dict[str, str] | None) -> dict[str, Any]:
    """Apps Orbit never wrote: a second container, a secret with a value and the env var taking it, a volume
    without a storage name, a system-assigned identity beside a user-assigned one, no registry."""
    return {
        "location": "westeurope",
        "tags": tags,
        "identity": {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {OTHER_ID: {}}},
        "properties": {
            "managedEnvironmentId": "/subscriptions/x/resourceGroups/y/providers/Microsoft.App/managedEnvironments/e",
            "configuration": {"secrets": [{"name": "api-key", "value": "v4lue-never-returned"},
                                          {"name": "kv", "keyVaultUrl": KV, "identity": OTHER_ID}]},
            "template": {
                "containers": [
                    {"name": "main", "image": "docker.io/library/nginx:1.27",
                     "env": [{"name": "API_KEY", "secretRef": "api-key"}, {"name": "KV", "secretRef": "kv"},
                             {"name": "PLAIN", "value": "x"}, {"name": "EMPTY"}],
                     "volumeMounts": [{"volumeName": "scratch", "mountPath": "/tmp/s"},
                                      {"volumeName": "unknown", "mountPath": "/u"}]},
                    {"name": "sidecar", "image": "busybox"},
                ],
                "volumes": [{"name": "scratch", "storageType": "EmptyDir"}],
            },
        },
    }


@pytest.fixture
def fleet(emulators: AzureEmulators) -> AzurePlatform:
    platform = AzurePlatform(emulators.settings(), emulators.fast)
    for index in range(23):
        emulators.arm.put_app(f"agent-{index:04x}", new_app_model(
            orbit_app(index, emulators.pull_identity), location="westeurope",
            environment_id=platform.environment_id).as_dict())
    emulators.arm.put_app("theirs-tagged", someone_elses("theirs-tagged", {MANAGED_BY_TAG: MANAGED_BY, "x": "y"}))
    emulators.arm.put_app("theirs-untagged", someone_elses("theirs-untagged", None))
    emulators.arm.put_app("theirs-other-tag", someone_elses("theirs-other-tag", {MANAGED_BY_TAG: "terraform"}))
    for index in range(7):
        emulators.arm.put_storage(f"customer-{index}-rw", {"properties": {"azureFile": {
            "accountName": "orbitfiles", "accountKey": "a2V5", "shareName": f"customer-{index}",
            "accessMode": "ReadWrite" if index % 2 else "ReadOnly"}}})
    emulators.arm.put_storage("nfs-link", {"properties": {"nfsAzureFile": {"server": "s", "shareName": "/x"}}})
    emulators.arm.put_storage("empty-link", {"properties": {"azureFile": {}}})
    emulators.arm.page_size = 4
    return platform


def through_models(platform: AzurePlatform) -> tuple[dict[str, App], dict[str, Any], dict[str, Any]]:
    client = platform._arm()
    models = list(client.container_apps.list_by_resource_group(platform.resource_group))
    tagged = [model for model in models if (model.tags or {}).get(MANAGED_BY_TAG) == MANAGED_BY]
    storages = client.managed_environments_storages.list(platform.resource_group, platform.settings.environment)
    return ({model.name: app_from_model(model) for model in tagged},
            {model.name: app_facts(model) for model in tagged},
            {model.name: storage_from_model(model) for model in storages.value or []})


def test_listings_as_json_equal_the_sdk_models_projections(fleet: AzurePlatform, emulators: AzureEmulators) -> None:
    apps, states, storages = through_models(fleet)
    assert len(apps) == 24 and len(storages) == 9  # 23 of Orbit's and one of someone else's tagged as Orbit's

    async def listed() -> tuple[Any, Any, Any]:
        got = await fleet.list_apps()
        return got, await fleet.list_app_states(), await fleet.list_storages()

    emulators.clear_logs()
    got_apps, got_states, got_storages = asyncio.run(listed())
    assert got_apps == apps
    assert list(got_apps) == list(apps)  # in the listing's order
    assert got_states == states
    assert got_storages == storages
    theirs = got_apps["theirs-tagged"]  # what each rule of the projection makes of someone else's document
    assert dict(theirs.env) == {"EMPTY": "", "PLAIN": "x"}
    assert dict(theirs.secret_env) == {"KV": "kv"}  # API_KEY takes a secret with a value: not Orbit's
    assert dict(theirs.secrets) == {"kv": AppSecret(KV, OTHER_ID)}
    assert theirs.mounts == (Mount("scratch", "/tmp/s"), Mount("unknown", "/u"))
    assert (theirs.identity, theirs.registry_server, theirs.image) == (OTHER_ID, "", "docker.io/library/nginx:1.27")
    log = [entry for entry in emulators.arm_server.log if entry.path.endswith("/containerApps")]
    assert len(log) == 7  # 26 apps, 4 a page: every nextLink followed, one listing for apps and their states
    assert {parse_qs(entry.query)["api-version"][0] for entry in emulators.arm_server.log} == {API_VERSION}


def test_the_api_version_is_the_sdks_own(emulators: AzureEmulators) -> None:
    """What the listings send is what the SDK sends when it is not told: an SDK upgrade that moves it shows here."""
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    from orbit_ops.backends.azure.common import AzureEndpoints, credential

    endpoints = AzureEndpoints.from_settings(emulators.settings())
    client = ContainerAppsAPIClient(credential(), emulators.settings().subscription_id, base_url=endpoints.arm,
                                    credential_scopes=[endpoints.arm + "/.default"],
                                    **endpoints.pooled_transport(endpoints.arm, emulators.fast.arm))
    emulators.clear_logs()
    list(client.container_apps.list_by_resource_group(emulators.settings().resource_group))
    [entry] = emulators.arm_server.log
    assert parse_qs(entry.query)["api-version"] == [API_VERSION]
    client.close()


@pytest.mark.parametrize("fault", ["forbidden", "missing group", "bad token"])
def test_a_failed_listing_says_what_the_sdk_path_said(fleet: AzurePlatform, emulators: AzureEmulators,
                                                      monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    from dataclasses import replace

    platform = fleet
    if fault == "forbidden":
        emulators.arm.forbid |= {("GET", "apps"), ("GET", "storages")}
    elif fault == "missing group":
        platform = AzurePlatform(replace(emulators.settings(), resource_group="elsewhere"), emulators.fast)
    else:
        monkeypatch.setenv("ORBIT_AZURE_ACCESS_TOKEN", "not-the-token-of-the-emulator")
        platform = AzurePlatform(emulators.settings(), emulators.fast)
    client = platform._arm()

    async def failures() -> list[tuple[type[Exception], str]]:
        said: list[tuple[type[Exception], str]] = []
        for reference, ours in (
                (lambda: list(client.container_apps.list_by_resource_group(platform.resource_group)),
                 platform.list_apps),
                (lambda: client.managed_environments_storages.list(platform.resource_group,
                                                                   platform.settings.environment),
                 platform.list_storages)):
            what = "a listing"
            with pytest.raises(OrbitError) as by_models:
                await call(reference, what=what)
            with pytest.raises(OrbitError) as by_json:
                await ours()
            said.append((type(by_models.value), str(by_models.value).replace(what, "<what>")))
            said.append((type(by_json.value), _without_what(str(by_json.value))))
        return said

    said = asyncio.run(failures())
    assert said[0] == said[1] and said[2] == said[3], said


def test_a_transient_failure_of_a_page_is_retried(fleet: AzurePlatform, emulators: AzureEmulators) -> None:
    from emulators.server import Fault

    apps, _, _ = through_models(fleet)
    emulators.clear_logs()
    emulators.arm_server.inject(Fault("503", method="GET", path="/containerApps$", count=2))
    emulators.arm_server.inject(Fault("429", method="GET", path="/storages$", count=1))
    assert asyncio.run(fleet.list_apps()) == apps
    assert len(asyncio.run(fleet.list_storages())) == 9
    assert sorted(entry.fault for entry in emulators.arm_server.log if entry.fault) == ["429", "503", "503"]


def _without_what(message: str) -> str:
    for what in ("list the container apps of orbit-test", "list the container apps of elsewhere",
                 "list the storages of environment orbit-env"):
        message = message.replace(what, "<what>")
    return message


def _page_fault(emulators: AzureEmulators, monkeypatch: pytest.MonkeyPatch, skiptoken: str, answer: Any) -> None:
    """Answer the app page at ``skiptoken`` with ``answer(request)`` when that gives a response (else as usual)."""
    from emulators.server import Request, Response

    dispatch = emulators.arm_server.dispatch

    def faulty(request: Request) -> Response:
        if request.path.endswith("/containerApps") and request.param("$skiptoken") == skiptoken:
            response = answer(request)
            if response is not None:
                return typing.cast("Response", response)
        return dispatch(request)

    monkeypatch.setattr(emulators.arm_server, "dispatch", faulty)


def test_a_page_refused_mid_listing_fails_the_listing_with_the_services_words(
        fleet: AzurePlatform, emulators: AzureEmulators, monkeypatch: pytest.MonkeyPatch) -> None:
    from emulators.server import error

    _page_fault(emulators, monkeypatch, "12", lambda request: error(
        403, "AuthorizationFailed", "The client 'orbit-test' does not have authorization over this page."))
    emulators.clear_logs()
    with pytest.raises(BackendError, match=r"list the container apps of orbit-test: forbidden \(AuthorizationFailed"):
        asyncio.run(fleet.list_apps())
    asked = [parse_qs(entry.query).get("$skiptoken", ["0"])[0] for entry in emulators.arm_server.log]
    assert asked == ["0", "4", "8", "12"]  # in order, and nothing after the page that failed


def test_a_page_failing_for_a_moment_mid_listing_is_retried_and_every_page_read(
        fleet: AzurePlatform, emulators: AzureEmulators, monkeypatch: pytest.MonkeyPatch) -> None:
    from emulators.server import error

    apps, _, _ = through_models(fleet)
    failures = iter([error(503, "ServiceUnavailable", "try again")] * 2)
    _page_fault(emulators, monkeypatch, "16", lambda request: next(failures, None))
    emulators.clear_logs()
    got = asyncio.run(fleet.list_apps())
    assert got == apps and list(got) == list(apps)
    asked = [(parse_qs(entry.query).get("$skiptoken", ["0"])[0], entry.status) for entry in emulators.arm_server.log]
    assert asked == [("0", 200), ("4", 200), ("8", 200), ("12", 200), ("16", 503), ("16", 503), ("16", 200),
                     ("20", 200), ("24", 200)]


def test_the_pages_of_a_listing_are_paced_like_every_read(emulators: AzureEmulators) -> None:
    from dataclasses import replace

    for index in range(14):
        emulators.arm.put_app(f"agent-{index:04x}", someone_elses(f"agent-{index:04x}", {MANAGED_BY_TAG: MANAGED_BY}))
    emulators.arm.page_size = 2
    paced = AzurePlatform(emulators.settings(), replace(emulators.fast, reads=(2, 20)))
    emulators.clear_logs()
    started = time.monotonic()  # the emulator runs in this process and stamps requests with the same clock
    assert len(asyncio.run(paced.list_apps())) == 14
    times = [entry.at for entry in emulators.arm_server.log]
    # 7 pages, a burst of 2 and then 20 a second: the 7th cannot reach the server before 5/20 s from the start.
    assert len(times) == 7 and times[-1] - started >= (7 - 2) / 20 * 0.9


def test_a_listing_given_up_stops_asking_for_pages(fleet: AzurePlatform, emulators: AzureEmulators,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    held, reached = threading.Event(), threading.Event()

    def hold(request: Any) -> None:
        reached.set()
        held.wait(10)  # the page in flight when the listing is given up

    _page_fault(emulators, monkeypatch, "8", hold)

    async def given_up() -> None:
        listing = asyncio.ensure_future(fleet.list_apps())
        await asyncio.get_running_loop().run_in_executor(None, reached.wait, 10)
        listing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listing

    emulators.clear_logs()
    asyncio.run(given_up())
    held.set()
    time.sleep(0.5)
    asked = [parse_qs(entry.query).get("$skiptoken", ["0"])[0] for entry in emulators.arm_server.log]
    assert asked == ["0", "4", "8"]  # the page in flight was answered; none was asked for after it


# -- the next page asked for before the page before is parsed (decision 0091) ------------------------------------


@pytest.mark.parametrize(("body", "link"), [
    (b'{"value": [{"name": "a"}], "nextLink": "https://arm/x?$skiptoken=4"}', "https://arm/x?$skiptoken=4"),
    (b'{"value":[],"nextLink":"https://arm/x?a=\\u0041&b=\\"q\\""}\r\n', 'https://arm/x?a=A&b="q"'),
    (b'{"value": [{"name": "a"}]}', None),  # the last page
    (b'{"value": [], "nextLink": null}', None),
    (b'{"value": [], "nextLink": ""}', None),
])
def test_a_link_at_the_end_of_a_page_is_read_from_its_end(body: bytes, link: str | None) -> None:
    assert next_link_ahead(body) == link
    assert page_items(body)[1] == link  # what parsing the page says


@pytest.mark.parametrize("body", [
    b'{"nextLink": "https://arm/x?$skiptoken=4", "value": [{"name": "a"}]}',  # the link first
    b'{"value": [{"name": "a", "nextLink": "https://arm/theirs"}]}',  # an item's field, not the page's
    b'{"value": [], "nextLink": "https://arm/x", "more": 1}',
    b'{"value": [], "nextLink": 4}',
])
def test_a_page_whose_end_does_not_say_is_parsed_first(body: bytes) -> None:
    assert isinstance(next_link_ahead(body), Unread)


def test_the_next_page_is_asked_for_before_the_page_before_is_parsed(
        fleet: AzurePlatform, emulators: AzureEmulators, monkeypatch: pytest.MonkeyPatch) -> None:
    import orbit_ops.backends.azure.platform as platform_module

    apps, _, _ = through_models(fleet)
    parse = platform_module.page_items
    asked_when_parsed: list[int] = []

    def parsed_once_the_next_is_asked(body: bytes) -> Any:
        items, link = parse(body)
        deadline = time.monotonic() + 5
        while link and len(emulators.arm_server.log) <= len(asked_when_parsed) + 1 and time.monotonic() < deadline:
            time.sleep(0.005)  # the page after this one is on its way, or never asked for until this returns
        asked_when_parsed.append(len(emulators.arm_server.log))
        return items, link

    monkeypatch.setattr(platform_module, "page_items", parsed_once_the_next_is_asked)
    emulators.clear_logs()
    got = asyncio.run(fleet.list_apps())
    assert got == apps and list(got) == list(apps)
    pages = len(emulators.arm_server.log)
    assert pages == 7 and len(asked_when_parsed) == 7
    # Page n (from 0) was parsed once page n + 1 had been asked for: its link was read from its end.
    assert all(asked >= min(number + 2, pages) for number, asked in enumerate(asked_when_parsed))


def test_a_page_with_its_link_first_is_followed_all_the_same(
        fleet: AzurePlatform, emulators: AzureEmulators, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from emulators.server import Response

    apps, _, _ = through_models(fleet)
    dispatch = emulators.arm_server.dispatch

    def link_first(request: Any) -> Response:
        response = dispatch(request)
        if request.path.endswith("/containerApps") and response.status == 200:
            page = json.loads(response.body)
            response = Response(200, json.dumps({"nextLink": page.get("nextLink"), "value": page["value"]}).encode(),
                                {"Content-Type": "application/json"})
        return response

    monkeypatch.setattr(emulators.arm_server, "dispatch", link_first)
    emulators.clear_logs()
    got = asyncio.run(fleet.list_apps())
    assert got == apps and list(got) == list(apps)
    assert len(emulators.arm_server.log) == 7


def test_a_page_that_ends_like_one_but_is_not_json_fails_the_listing(
        fleet: AzurePlatform, emulators: AzureEmulators, monkeypatch: pytest.MonkeyPatch) -> None:
    from emulators.server import Response

    def broken(request: Any) -> Response:
        link = f"{emulators.arm_server.base_url}{request.path}?api-version={API_VERSION}&$skiptoken=12"
        return Response(200, b'{"value": [{"name": ], "nextLink": "' + link.encode() + b'"}',
                        {"Content-Type": "application/json"})

    _page_fault(emulators, monkeypatch, "8", broken)
    with pytest.raises(BackendError, match=r"list the container apps of orbit-test: JSONDecodeError"):
        asyncio.run(fleet.list_apps())


def test_a_page_whose_end_does_not_say_and_is_not_json_fails_the_listing(
        fleet: AzurePlatform, emulators: AzureEmulators, monkeypatch: pytest.MonkeyPatch) -> None:
    from emulators.server import Response

    _page_fault(emulators, monkeypatch, "8", lambda request: Response(
        200, b'{"nextLink": "x", "value": [{"name": ]}', {"Content-Type": "application/json"}))
    with pytest.raises(BackendError, match=r"list the container apps of orbit-test: JSONDecodeError"):
        asyncio.run(fleet.list_apps())


@pytest.mark.parametrize("body", [b'{"value": [{"a": 1}, ]}', b'{"value": [{"a": 1}', b'{"value": [{"a": 1}]} x',
                                  b'{"value": [{"a": 1}], "nextLink": "x",}', b'\xff{"value": []}'])
def test_a_page_that_is_not_json_raises_what_json_loads_raises(body: bytes) -> None:
    import json

    with pytest.raises(ValueError) as raised:
        json.loads(body)
    with pytest.raises(type(raised.value)):
        page_items(body)


def test_a_link_read_from_a_pages_end_that_differs_from_the_pages_own_fails_the_listing_without_quoting_them(
        fleet: AzurePlatform, emulators: AzureEmulators, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard for a misreading of a page's end (never seen for a body that is JSON: see next_link_ahead): the
    listing fails rather than list other pages than the service named; the error quotes neither link."""
    import orbit_ops.backends.azure.platform as platform_module

    def misread(body: bytes) -> str | Unread | None:
        ahead = next_link_ahead(body)
        return ahead.replace("skiptoken=", "skiptoken=9") if isinstance(ahead, str) else ahead

    monkeypatch.setattr(platform_module, "next_link_ahead", misread)
    with pytest.raises(BackendError) as raised:
        asyncio.run(fleet.list_apps())
    assert str(raised.value) == ("list the container apps of orbit-test: the nextLink read from the end of a page "
                                 "differs from the page's own")
