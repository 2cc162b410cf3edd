"""Microsoft.App on the HTTPS emulator: container apps and environment storages, as ARM keeps them.

What the Azure backend relies on, with the service's semantics rather than a key-value store:

- ``containerApps`` PUT is an upsert (the body replaces the resource; 201 when new, 200 when not),
  PATCH is a JSON merge patch (RFC 7396: objects merge, arrays and scalars replace, ``null``
  deletes) of an existing app (404 otherwise). Both are long-running: the app stays
  ``provisioningState: InProgress`` until its operation has been polled ``polls`` times. PUT answers
  with ``Azure-AsyncOperation`` (an operation-status resource), PATCH with 202 and ``Location``
  (202 until done, then 200 with the app), so both of azure-core's polling styles are exercised.
- Listing by resource group is paged: ``page_size`` apps a page, ``nextLink`` an absolute URL on the
  emulator carrying ``$skiptoken``.
- The service fills in what it owns: ids, ``systemData``, provisioning and running state, revision
  names and FQDNs (a new revision when the template changes), outbound IPs, container resources and
  scale defaults, identity principal ids. Secret values (``configuration.secrets[].value`` and an
  environment storage's ``accountKey``) are accepted on write and never returned; a Key Vault reference
  secret (``keyVaultUrl`` + ``identity``) comes back as written. Secrets are checked as the service
  checks them (:func:`_check_secrets`): name rule, a value or a Key Vault URL with an identity assigned
  to the app, and every ``secretRef`` naming a secret of the app (400 otherwise).
- Revisions (:mod:`emulators.revisions`): a revision per revision-scope change, on an emulated clock that
  tests step (``clock``) and that moves between requests, with faults per image (``image_fault``); the
  app's ``latestReadyRevisionName`` and ``runningStatus`` follow its revisions. ``revisions`` list (paged
  like the apps), get, and ``revisions/{rev}/replicas``; a ``revisionSuffix`` already used is refused.
- ``managedEnvironments/{env}/storages`` get/list/PUT (upsert, synchronous), ``accountKey`` required
  on write.

Request bodies go through the SDK's own models before anything else (:func:`deserialize_body`):
``ContainerApp`` for an app's PUT and PATCH, ``ManagedEnvironmentStorage`` for a storage's PUT. The
SDK's deserializer is lenient by design (it keeps what it cannot type), so the check walks the
model's own field table and type hints: a member the model does not have, a value of the wrong JSON
type, an unknown enum value, or a missing required field is a 400 ``InvalidRequestContent`` worded
as ARM words it ("Could not find member 'x' on object of type 'Template'. Path 'properties.x'").

Views are kept (:class:`_Views`): a listing page of 100 apps re-serialised every document it showed, about
20 ms of the emulator's CPU a page, on the sequential path of every paged read. Each resource's JSON view is
kept with a copy of the stored document it was made from and the values it read off the clock; it is served
again only while the stored document still equals that copy (so a write, a patch, an operation's end or a
test editing ``apps``/``storages`` in place all make a new view) and the clock-derived fields are unchanged.

Authentication: every request must carry ``Authorization: Bearer <token>`` (401 otherwise, as ARM
answers an expired or foreign token); ``forbid`` makes chosen operations answer 403
``AuthorizationFailed`` the way ARM words it.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import functools
import hashlib
import itertools
import json
import re
import sys
import threading
import types
import typing
import uuid
from dataclasses import dataclass
from typing import Any

from emulators.revisions import Clock, Revision, Revisions
from emulators.server import Emulator, Request, Response, error

API_VERSIONS = ("2026-07-01", "2025-01-01", "2024-03-01")
DEFAULT_DOMAIN = "orbit-env.westeurope.azurecontainerapps.io"
DEFAULT_RESOURCES = {"cpu": 0.5, "memory": "1Gi", "ephemeralStorage": "2Gi"}
DEFAULT_SCALE = {"minReplicas": 0, "maxReplicas": 10, "cooldownPeriod": 300, "pollingInterval": 30}

_GROUP = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
_APPS = _GROUP + r"/providers/Microsoft\.App/containerApps"
_STORAGES = _GROUP + r"/providers/Microsoft\.App/managedEnvironments/(?P<env>[^/]+)/storages"
_RESOURCE_TYPES = {"apps": "containerApps", "revisions": "containerApps/revisions"}
_OPERATIONS = r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.App/locations/(?P<loc>[^/]+)"


@dataclass
class _Operation:
    """A long-running write: done once polled ``remaining`` more times."""

    id: str
    app: str
    remaining: int
    started: str
    status: str = "InProgress"


class ArmEmulator:
    """State and routes of one subscription/resource group/environment (others answer 404)."""

    def __init__(self, emulator: Emulator, *, subscription: str, resource_group: str, environment: str,
                 location: str, token: str, page_size: int = 5, polls: int = 1) -> None:
        self.emulator = emulator
        self.subscription = subscription
        self.resource_group = resource_group
        self.environment = environment
        self.location = location
        self.token = token
        self.page_size = page_size
        self.polls = polls
        # The polling hint of a long-running operation's answers (``retry-after-ms``). None: no hint, so a
        # client polls at its own interval (the tests zero it); the demo, on production client settings
        # (30 s), sets it as the service would.
        self.retry_after_ms: int | None = None
        self.forbid: set[tuple[str, str]] = set()  # (method, "apps"|"storages") answered 403
        self.fail: set[str] = set()  # apps whose next long-running operation ends Failed
        self.apps: dict[str, dict[str, Any]] = {}  # as stored, secrets included
        self.storages: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, _Operation] = {}
        self.revisions = Revisions(self.apps_id, DEFAULT_DOMAIN)
        self._lock = threading.RLock()
        self._ips = itertools.count(10)
        self._app_views = _Views()
        self._storage_views = _Views()
        self._routes()

    # -- test helpers ------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.apps.clear()
            self.storages.clear()
            self.operations.clear()
            self.revisions.reset()
            self._app_views.clear()
            self._storage_views.clear()
            self.forbid.clear()
            self.fail.clear()
            self.page_size = 5
            self.polls = 1
            self.retry_after_ms = None

    @property
    def clock(self) -> Clock:
        """The revisions' emulated time (see :mod:`emulators.revisions`)."""
        return self.revisions.clock

    def image_fault(self, image: str, kind: str, *, running_state: str = "RunningAtMaxScale") -> None:
        """Make revisions created from now on with ``image`` fail as ``kind`` (:data:`revisions.FAULT_KINDS`)."""
        with self._lock:
            self.revisions.image_fault(image, kind, running_state=running_state)

    @property
    def environment_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.App/managedEnvironments/{self.environment}")

    @property
    def apps_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                "/providers/Microsoft.App/containerApps")

    def put_app(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store an app as if someone else had created it (no request logged); returns its view."""
        with self._lock:
            self._store_app(name, copy.deepcopy(body), existing=self.apps.get(name), settled=True)
            self.apps[name]["properties"]["provisioningState"] = "Succeeded"
            return self.view_app(name)

    def put_storage(self, name: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._store_storage(name, copy.deepcopy(body))

    def _app_order(self) -> list[str]:
        """The app names sorted, as every page of the listing needs them: sorted again only when the set of names
        changed (a listing of 30,000 apps in pages of 100 sorted them 300 times)."""
        names = self.apps.keys()
        kept = getattr(self, "_sorted_apps", None)
        if kept is None or kept[0] != names:
            kept = self._sorted_apps = (frozenset(names), sorted(names))
        return kept[1]

    def view_app(self, name: str) -> dict[str, Any]:
        """The app as GET returns it: secret values removed, revision-derived fields as of the emulated clock."""
        return typing.cast(dict[str, Any], json.loads(self.app_json(name)))

    def view_storage(self, name: str) -> dict[str, Any]:
        return typing.cast(dict[str, Any], json.loads(self.storage_json(name)))

    def app_json(self, name: str) -> str:
        """:meth:`view_app` as JSON text, made again only when the stored app or its clock-derived fields changed."""
        stored = self.apps[name]
        ready = self.revisions.latest_ready(name)
        succeeded = stored["properties"].get("provisioningState") == "Succeeded"
        derived = (ready.name if ready else "", self.revisions.running_status(name) if succeeded else None)
        return self._app_views.json(name, stored, derived, self._app_view)

    def storage_json(self, name: str) -> str:
        """:meth:`view_storage` as JSON text, made again only when the stored storage changed."""
        return self._storage_views.json(name, self.storages[name], None, self._storage_view)

    @staticmethod
    def _app_view(document: dict[str, Any], derived: Any) -> dict[str, Any]:
        """The view of ``document`` (a copy, changed here) with ``derived``: (latestReadyRevisionName,
        runningStatus or None to keep the stored one)."""
        properties = document["properties"]
        properties["latestReadyRevisionName"], running = derived
        if running is not None:
            properties["runningStatus"] = running
        for secret in document["properties"]["configuration"].get("secrets") or []:
            secret.pop("value", None)
        return document

    @staticmethod
    def _storage_view(document: dict[str, Any], derived: Any) -> dict[str, Any]:
        document["properties"].get("azureFile", {}).pop("accountKey", None)
        return document

    # -- routing -----------------------------------------------------------------------------------

    def _routes(self) -> None:
        route = self.emulator.route
        route("GET", _APPS)(self._guard("apps", self._list_apps))
        route("GET", _APPS + r"/(?P<name>[^/]+)")(self._guard("apps", self._get_app))
        route("PUT", _APPS + r"/(?P<name>[^/]+)")(self._guard("apps", self._put_app))
        route("PATCH", _APPS + r"/(?P<name>[^/]+)")(self._guard("apps", self._patch_app))
        route("GET", _APPS + r"/(?P<name>[^/]+)/revisions")(self._guard("revisions", self._list_revisions))
        route("GET", _APPS + r"/(?P<name>[^/]+)/revisions/(?P<rev>[^/]+)")(
            self._guard("revisions", self._get_revision))
        route("GET", _APPS + r"/(?P<name>[^/]+)/revisions/(?P<rev>[^/]+)/replicas")(
            self._guard("revisions", self._list_replicas))
        route("GET", _OPERATIONS + r"/containerappOperationStatuses/(?P<op>[^/]+)")(
            self._guard("operations", self._operation_status))
        route("GET", _OPERATIONS + r"/containerappOperationResults/(?P<op>[^/]+)")(
            self._guard("operations", self._operation_result))
        route("GET", _STORAGES)(self._guard("storages", self._list_storages))
        route("GET", _STORAGES + r"/(?P<name>[^/]+)")(self._guard("storages", self._get_storage))
        route("PUT", _STORAGES + r"/(?P<name>[^/]+)")(self._guard("storages", self._put_storage))

    def _guard(self, kind: str, handler: Any) -> Any:
        def guarded(request: Request) -> Response:
            with self._lock:  # time passes between a client's requests (see emulators.revisions)
                self.revisions.clock.advance(self.revisions.clock.per_request)
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return error(401, "InvalidAuthenticationToken",
                             "The access token is invalid or has expired.")
            if request.param("api-version") not in API_VERSIONS:
                return error(400, "InvalidApiVersionParameter",
                             f"The api-version '{request.param('api-version')}' is invalid.")
            assert request.match is not None
            groups = request.match.groupdict()
            if groups.get("sub") != self.subscription:
                return error(404, "SubscriptionNotFound", f"The subscription '{groups.get('sub')}' could not be found.")
            if "rg" in groups and groups["rg"].lower() != self.resource_group.lower():
                return error(404, "ResourceGroupNotFound", f"Resource group '{groups['rg']}' could not be found.")
            if "env" in groups and groups["env"] != self.environment:
                return error(404, "ResourceNotFound", f"The managed environment '{groups['env']}' was not found.")
            if (request.method, kind) in self.forbid:
                action = {"GET": "read", "PUT": "write", "PATCH": "write"}[request.method]
                return error(403, "AuthorizationFailed",
                             "The client 'orbit-test' with object id '0000' does not have authorization to perform "
                             f"action 'Microsoft.App/{_RESOURCE_TYPES.get(kind, kind)}/{action}' over "
                             f"scope '{request.path}' or the scope is invalid.")
            with self._lock:
                return handler(request)

        return guarded

    # -- container apps ----------------------------------------------------------------------------

    def _page(self, request: Request, items: list[Any]) -> dict[str, Any]:
        """One page of a listing: ``page_size`` items and an absolute ``nextLink`` with ``$skiptoken``."""
        start = int(request.param("$skiptoken") or 0)
        body: dict[str, Any] = {"value": items[start:start + self.page_size]}
        if start + self.page_size < len(items):
            body["nextLink"] = (f"{self.emulator.base_url}{request.path}?api-version={request.param('api-version')}"
                                f"&$skiptoken={start + self.page_size}")
        return body

    def _list_apps(self, request: Request) -> Response:
        page = self._page(request, self._app_order())
        return _json_page(page, [self.app_json(name) for name in page["value"]])

    def _get_app(self, request: Request) -> Response:
        name = _name(request)
        if name not in self.apps:
            return _not_found("containerApps", name, self.resource_group)
        return _json_response(200, self.app_json(name))

    def _put_app(self, request: Request) -> Response:
        name = _name(request)
        body = _body(request, "ContainerApp")
        if isinstance(body, Response):
            return body
        problem = _check_app(body, existing=name in self.apps) or self._check_volumes(body)
        if problem:
            return error(400, "ContainerAppInvalidRequest", problem)
        refused = _check_secrets(body) or self._check_suffix(name, body)
        if refused:
            return error(400, *refused)
        existing = self.apps.get(name)
        self._store_app(name, body, existing=existing)
        operation = self._start(name)
        status_url = (f"{self.emulator.base_url}/subscriptions/{self.subscription}/providers/Microsoft.App/locations/"
                      f"{self.location}/containerappOperationStatuses/{operation.id}"
                      f"?api-version={request.param('api-version')}")
        return Response(200 if existing else 201, self.view_app(name),
                        {"Azure-AsyncOperation": status_url, **self._poll_hint()})

    def _patch_app(self, request: Request) -> Response:
        name = _name(request)
        if name not in self.apps:
            return _not_found("containerApps", name, self.resource_group)
        patch = _body(request, "ContainerApp", patch=True)
        if isinstance(patch, Response):
            return patch
        merged = _merge_patch(_writable(self.apps[name]), patch)
        problem = _check_app(merged, existing=True) or self._check_volumes(merged)
        if problem:
            return error(400, "ContainerAppInvalidRequest", problem)
        refused = _check_secrets(merged) or self._check_suffix(name, merged)
        if refused:
            return error(400, *refused)
        self._store_app(name, merged, existing=self.apps[name])
        operation = self._start(name)
        result_url = (f"{self.emulator.base_url}/subscriptions/{self.subscription}/providers/Microsoft.App/locations/"
                      f"{self.location}/containerappOperationResults/{operation.id}"
                      f"?api-version={request.param('api-version')}")
        return Response(202, None, {"Location": result_url, **self._poll_hint()})

    def _operation_status(self, request: Request) -> Response:
        operation = self._poll(request.match["op"] if request.match else "")
        if operation is None:
            return error(404, "OperationNotFound", "The operation was not found.")
        body: dict[str, Any] = {"id": request.path, "name": operation.id, "status": operation.status,
                                "startTime": operation.started}
        if operation.status == "Failed":
            body["error"] = {"code": "ContainerAppProvisioningFailed",
                             "message": f"Revision of '{operation.app}' failed to provision: image pull failed."}
        return Response(200, body, self._poll_hint() if operation.status == "InProgress" else {})

    def _operation_result(self, request: Request) -> Response:
        operation = self._poll(request.match["op"] if request.match else "")
        if operation is None:
            return error(404, "OperationNotFound", "The operation was not found.")
        if operation.status == "InProgress":
            return Response(202, None, {"Location": f"{self.emulator.base_url}{request.path}?{_query(request)}",
                                        **self._poll_hint()})
        if operation.status == "Failed":  # a Location poll reports a failure with an error status
            return error(400, "ContainerAppProvisioningFailed",
                         f"Revision of '{operation.app}' failed to provision: image pull failed.")
        return Response(200, self.view_app(operation.app))

    # -- revisions (state and timing in emulators.revisions) ------------------------------------------

    def _list_revisions(self, request: Request) -> Response:
        name = _name(request)
        if name not in self.apps:
            return _not_found("containerApps", name, self.resource_group)
        if request.param("$filter"):
            return error(400, "InvalidFilter", "The emulator does not evaluate $filter on revisions.")
        mode = self._revision_mode(name)
        page = self._page(request, self.revisions.by_app.get(name, []))
        return Response(200, {**page, "value": [self.revisions.view(r, mode) for r in page["value"]]})

    def _get_revision(self, request: Request) -> Response:
        found = self._revision(request)
        if isinstance(found, Response):
            return found
        return Response(200, self.revisions.view(found, self._revision_mode(found.app)))

    def _list_replicas(self, request: Request) -> Response:
        found = self._revision(request)
        if isinstance(found, Response):
            return found
        return Response(200, {"value": self.revisions.replicas(found, self._revision_mode(found.app))})

    def _revision(self, request: Request) -> Revision | Response:
        name = _name(request)
        if name not in self.apps:
            return _not_found("containerApps", name, self.resource_group)
        assert request.match is not None
        found = self.revisions.find(name, request.match["rev"])
        if found is None:
            return _not_found(f"containerApps/{name}/revisions", request.match["rev"], self.resource_group)
        return found

    def _check_suffix(self, app: str, body: dict[str, Any]) -> tuple[str, str] | None:
        """A template change whose ``revisionSuffix`` names an existing revision would reuse its name: refused."""
        template = (body.get("properties") or {}).get("template") or {}
        suffix = template.get("revisionSuffix")
        if not suffix or app not in self.apps or self.revisions.find(app, f"{app}--{suffix}") is None:
            return None
        if _default_template(copy.deepcopy(template)) == _writable(self.apps[app])["properties"].get("template"):
            return None
        return ("ContainerAppInvalidRequest", f"Revision '{app}--{suffix}' already exists for container app "
                f"'{app}': a template change needs a new revisionSuffix.")

    def _revision_mode(self, app: str) -> str:
        return str(self.apps[app]["properties"]["configuration"].get("activeRevisionsMode") or "Single")

    def _poll_hint(self) -> dict[str, str]:
        return {} if self.retry_after_ms is None else {"retry-after-ms": str(self.retry_after_ms)}

    def _start(self, app: str) -> _Operation:
        operation = _Operation(str(uuid.uuid4()), app, self.polls, _now())
        self.operations[operation.id] = operation
        self.apps[app]["properties"]["provisioningState"] = "InProgress"
        self.apps[app]["properties"]["runningStatus"] = "Progressing"
        if operation.remaining <= 0:
            self._finish(operation)
        return operation

    def _poll(self, op_id: str) -> _Operation | None:
        operation = self.operations.get(op_id)
        if operation is not None and operation.status == "InProgress":
            operation.remaining -= 1
            if operation.remaining <= 0:
                self._finish(operation)
        return operation

    def _finish(self, operation: _Operation) -> None:
        failed = operation.app in self.fail
        self.fail.discard(operation.app)
        operation.status = "Failed" if failed else "Succeeded"
        if operation.app in self.apps:
            self.apps[operation.app]["properties"]["provisioningState"] = operation.status
            self.apps[operation.app]["properties"]["runningStatus"] = "Degraded" if failed else "Running"

    def _check_volumes(self, body: dict[str, Any]) -> str | None:
        for volume in (body.get("properties", {}).get("template") or {}).get("volumes") or []:
            if volume.get("storageType", "AzureFile") == "AzureFile" and volume.get("storageName") not in self.storages:
                return (f"Volume '{volume.get('name')}' references storage '{volume.get('storageName')}', which is not "
                        f"defined in managed environment '{self.environment}'.")
        return None

    def _store_app(self, name: str, body: dict[str, Any], *, existing: dict[str, Any] | None,
                   settled: bool = False) -> None:
        """Keep the writable part of ``body`` and add what the service fills in.

        A new app, or a change to its template (revision scope), makes a new revision; ``settled``: one
        created long enough ago to be ready (an app someone else made).
        """
        now = _now()
        document = _writable(body)
        properties = document.setdefault("properties", {})
        env_id = properties.get("environmentId") or properties.get("managedEnvironmentId")
        if existing is not None:
            env_id = existing["properties"]["managedEnvironmentId"]
        properties["managedEnvironmentId"] = properties["environmentId"] = env_id
        configuration = properties.setdefault("configuration", {}) or {}
        properties["configuration"] = configuration
        configuration.setdefault("activeRevisionsMode", "Single")
        configuration.setdefault("maxInactiveRevisions", 100)
        for registry in configuration.get("registries") or []:
            registry.setdefault("username", "")
            registry.setdefault("passwordSecretRef", "")
        template = _default_template(properties.setdefault("template", {}))
        identity = document.get("identity")
        if identity:
            for resource_id, value in (identity.get("userAssignedIdentities") or {}).items():
                seed = hashlib.sha256(resource_id.encode()).hexdigest()
                identity["userAssignedIdentities"][resource_id] = {
                    **(value or {}), "principalId": _uuid(seed), "clientId": _uuid(seed[::-1])}
        if existing is None:
            self.revisions.forget(name)
        history = self.revisions.by_app.get(name)
        if not history or _writable(existing or {}).get("properties", {}).get("template") != template:
            latest = self.revisions.record(name, template, settled=settled).name
        else:
            latest = history[-1].name
        ready = self.revisions.latest_ready(name)
        created = existing["systemData"]["createdAt"] if existing else now
        document.update({
            "id": f"{self.apps_id}/{name}",
            "name": name,
            "type": "Microsoft.App/containerApps",
            "location": (existing or {}).get("location") or document.get("location") or self.location,
            "systemData": {"createdBy": "orbit-test", "createdByType": "User", "createdAt": created,
                           "lastModifiedBy": "orbit-test", "lastModifiedByType": "User", "lastModifiedAt": now},
        })
        properties.update({
            "provisioningState": "Succeeded",
            "runningStatus": "Running",
            "workloadProfileName": properties.get("workloadProfileName") or "Consumption",
            "latestRevisionName": latest,
            "latestReadyRevisionName": ready.name if ready else "",
            "latestRevisionFqdn": f"{latest}.{DEFAULT_DOMAIN}",
            "customDomainVerificationId": hashlib.sha256(name.encode()).hexdigest().upper(),
            "outboundIpAddresses": (existing or {}).get("properties", {}).get("outboundIpAddresses")
            or [f"20.1.{next(self._ips) % 250}.{i}" for i in (1, 2)],
            "eventStreamEndpoint": f"https://{self.location}.azurecontainerapps.dev/subscriptions/{self.subscription}"
                                   f"/resourceGroups/{self.resource_group}/containerApps/{name}/eventstream",
        })
        self.apps[name] = document

    # -- environment storages ----------------------------------------------------------------------

    def _list_storages(self, request: Request) -> Response:
        return _json_page({}, [self.storage_json(name) for name in sorted(self.storages)])

    def _get_storage(self, request: Request) -> Response:
        name = _name(request)
        if name not in self.storages:
            return _not_found(f"managedEnvironments/{self.environment}/storages", name, self.resource_group)
        return _json_response(200, self.storage_json(name))

    def _put_storage(self, request: Request) -> Response:
        name = _name(request)
        body = _body(request, "ManagedEnvironmentStorage")
        if isinstance(body, Response):
            return body
        azure_file = (body.get("properties") or {}).get("azureFile") or {}
        missing = [key for key in ("accountName", "accountKey", "shareName", "accessMode") if not azure_file.get(key)]
        if missing:
            return error(400, "StorageInvalidRequest", f"azureFile lacks {', '.join(missing)}")
        if azure_file["accessMode"] not in ("ReadWrite", "ReadOnly"):
            return error(400, "StorageInvalidRequest", f"invalid accessMode '{azure_file['accessMode']}'")
        existed = name in self.storages
        self._store_storage(name, body)
        return Response(200 if existed else 201, self.view_storage(name))

    def _store_storage(self, name: str, body: dict[str, Any]) -> None:
        now = _now()
        created = self.storages[name]["systemData"]["createdAt"] if name in self.storages else now
        self.storages[name] = {
            "id": f"{self.environment_id}/storages/{name}",
            "name": name,
            "type": "Microsoft.App/managedEnvironments/storages",
            "systemData": {"createdBy": "orbit-test", "createdByType": "User", "createdAt": created,
                           "lastModifiedBy": "orbit-test", "lastModifiedByType": "User", "lastModifiedAt": now},
            "properties": {"azureFile": dict((body.get("properties") or {}).get("azureFile") or {})},
        }


# -- request bodies through the SDK's models ---------------------------------------------------------


class MalformedBody(ValueError):
    """A request body that the SDK model of the operation does not describe."""


def deserialize_body(model: str, body: Any, *, patch: bool = False) -> Any:
    """``body`` as the azure-mgmt-appcontainers model ``model`` (e.g. ``"ContainerApp"``), strictly.

    The SDK's own deserializer keeps whatever it cannot type (it is made to read responses from newer
    services), so every member is checked first against the model's field table (REST names) and type
    hints: unknown members, JSON types that do not fit, enum values the model does not know and
    missing required fields are refused. ``patch``: a JSON merge patch, where ``null`` deletes and
    nothing is required.

    Raises:
        MalformedBody: what is wrong, and where (a JSON path).
    """
    from azure.mgmt.appcontainers import models

    cls = getattr(models, model)
    _check_value(body, cls, "", patch=patch)
    return cls._deserialize(body, [])


def _body(request: Request, model: str, *, patch: bool = False) -> dict[str, Any] | Response:
    """The request's JSON body checked against the SDK model, or the 400 ARM answers for it."""
    try:
        body = json.loads(request.body or b"null")
    except ValueError as exc:
        return error(400, "InvalidRequestContent", f"The request content was invalid and could not be "
                     f"deserialized: {exc}.")
    try:
        deserialize_body(model, body, patch=patch)
    except MalformedBody as exc:
        return error(400, "InvalidRequestContent",
                     f"The request content was invalid and could not be deserialized: {exc}")
    return typing.cast(dict[str, Any], body)


@functools.cache
def _fields(cls: type) -> dict[str, tuple[Any, bool]]:
    """REST name → (type hint, required) of an SDK model class."""
    from azure.mgmt.appcontainers import models

    cls.__new__(cls)  # the SDK fills ``_attr_to_rest_field`` on first instantiation
    hints = typing.get_type_hints(cls, {**vars(sys.modules[cls.__module__]), "_models": models})
    fields: dict[str, tuple[Any, bool]] = {}
    for attr, rest_field in cls._attr_to_rest_field.items():  # type: ignore[attr-defined]
        hint = hints.get(attr, Any)
        fields[rest_field._rest_name] = (hint, type(None) not in typing.get_args(hint) and hint is not Any)
    return fields


def _is_model(hint: Any) -> bool:
    from azure.mgmt.appcontainers._utils.model_base import Model

    return isinstance(hint, type) and issubclass(hint, Model)


def _where(path: str) -> str:
    return f"Path '{path or '$'}'"


def _check_value(value: Any, hint: Any, path: str, *, patch: bool) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None:
        if patch or hint is Any or type(None) in args:
            return
        raise MalformedBody(f"Null is not a valid value for a required member. {_where(path)}.")
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        enums = [arg for arg in options if isinstance(arg, type) and issubclass(arg, enum.Enum)]
        if enums and isinstance(value, str):
            known = {str(member.value).lower() for option in enums for member in option}
            if value.lower() not in known:
                raise MalformedBody(f"Error converting value \"{value}\" to type '{enums[0].__name__}'. "
                                    f"{_where(path)}.")
            return
        problems = []
        for option in options:
            try:
                _check_value(value, option, path, patch=patch)
                return
            except MalformedBody as exc:
                problems.append(str(exc))
        raise MalformedBody(problems[0] if problems else f"Unexpected value. {_where(path)}.")
    if _is_model(hint):
        if not isinstance(value, dict):
            raise MalformedBody(f"Unexpected {_json_type(value)} where an object of type '{hint.__name__}' is "
                                f"expected. {_where(path)}.")
        fields = _fields(hint)
        for key, member in value.items():
            if key not in fields:
                raise MalformedBody(f"Could not find member '{key}' on object of type '{hint.__name__}'. "
                                    f"{_where(_join(path, key))}.")
            _check_value(member, fields[key][0], _join(path, key), patch=patch)
        if not patch:
            for key, (_, required) in fields.items():
                if required and key not in value:
                    raise MalformedBody(f"Required property '{key}' not found in JSON. {_where(path)}.")
        return
    if origin is list:
        if not isinstance(value, list):
            raise MalformedBody(f"Unexpected {_json_type(value)} where an array is expected. {_where(path)}.")
        for index, item in enumerate(value):
            _check_value(item, args[0] if args else Any, f"{path}[{index}]", patch=patch)
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise MalformedBody(f"Unexpected {_json_type(value)} where an object is expected. {_where(path)}.")
        for key, item in value.items():
            _check_value(item, args[1] if len(args) > 1 else Any, _join(path, key), patch=patch)
        return
    expected = {str: (str,), int: (int,), float: (int, float), bool: (bool,)}.get(hint)
    if expected is not None and (not isinstance(value, expected) or (hint is not bool and isinstance(value, bool))):
        name = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}[hint]
        raise MalformedBody(f"Unexpected {_json_type(value)} where {name} is expected. {_where(path)}.")
    if isinstance(hint, type) and issubclass(hint, dt.datetime) and not isinstance(value, str):
        raise MalformedBody(f"Unexpected {_json_type(value)} where a date-time is expected. {_where(path)}.")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number"}.get(type(value), type(value).__name__)


# -- helpers -----------------------------------------------------------------------------------------


@dataclass
class _View:
    source: dict[str, Any]  # a copy of the stored document the view was made from
    derived: Any  # what else the view read (the clock-derived fields)
    text: str


class _Views:
    """The JSON views of one kind of resource, by name: each kept with what it was made from, and made again
    when the stored document no longer equals that (however it was changed) or the derived fields differ.

    Comparing the stored document with the kept copy is a walk of dicts and lists in C; making the view is a
    deep copy, the changes and ``json.dumps``: about ten times the CPU of the comparison.
    """

    def __init__(self) -> None:
        self._kept: dict[str, _View] = {}

    def clear(self) -> None:
        self._kept.clear()

    def json(self, name: str, stored: dict[str, Any], derived: Any,
             make: typing.Callable[[dict[str, Any], Any], dict[str, Any]]) -> str:
        kept = self._kept.get(name)
        if kept is not None and kept.derived == derived and kept.source == stored:
            return kept.text
        source = _copied(stored)
        text = json.dumps(make(_copied(source), derived))
        self._kept[name] = _View(source, derived, text)
        return text


def _json_response(status: int, text: str) -> Response:
    return Response(status, text.encode(), {"Content-Type": "application/json"})


def _json_page(page: dict[str, Any], texts: list[str]) -> Response:
    """A listing page of views given as JSON texts: byte for byte what ``json.dumps`` of the page would be."""
    body = '{"value": [' + ", ".join(texts) + "]"
    if page.get("nextLink"):
        body += ', "nextLink": ' + json.dumps(page["nextLink"])
    return _json_response(200, body + "}")

_READ_ONLY_PROPERTIES = (
    "provisioningState", "runningStatus", "latestRevisionName", "latestReadyRevisionName", "latestRevisionFqdn",
    "customDomainVerificationId", "outboundIpAddresses", "eventStreamEndpoint",
)


def _copied(document: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a stored document (JSON data: a JSON round trip, several times quicker than ``deepcopy``)."""
    try:
        copied: dict[str, Any] = json.loads(json.dumps(document))
    except (TypeError, ValueError):
        return copy.deepcopy(document)
    return copied


def _writable(document: dict[str, Any]) -> dict[str, Any]:
    """What a client may set: the document without service-filled top-level and property fields."""
    copied = copy.deepcopy(document)
    for key in ("id", "name", "type", "systemData"):
        copied.pop(key, None)
    properties = copied.get("properties") or {}
    for key in _READ_ONLY_PROPERTIES:
        properties.pop(key, None)
    for value in ((copied.get("identity") or {}).get("userAssignedIdentities") or {}).values():
        if isinstance(value, dict):
            value.pop("principalId", None)
            value.pop("clientId", None)
    if isinstance(copied.get("identity"), dict):
        copied["identity"].pop("principalId", None)
        copied["identity"].pop("tenantId", None)
    return copied


def _default_template(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` (changed in place) with the defaults the service fills in: container resources, scale."""
    for container in template.get("containers") or []:
        container.setdefault("resources", dict(DEFAULT_RESOURCES))
        container.setdefault("probes", [])
    template.setdefault("scale", dict(DEFAULT_SCALE))
    template.setdefault("revisionSuffix", "")
    template.setdefault("volumes", [])
    return template


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _check_app(body: Any, *, existing: bool) -> str | None:
    if not isinstance(body, dict):
        return "The request content is not a JSON object."
    if not existing and not body.get("location"):
        return "location is required"
    properties = body.get("properties") or {}
    if not existing and not (properties.get("managedEnvironmentId") or properties.get("environmentId")):
        return "properties.managedEnvironmentId is required"
    containers = (properties.get("template") or {}).get("containers") or []
    if not containers:
        return "properties.template.containers must have at least one container"
    for container in containers:
        if not container.get("image") or not container.get("name"):
            return "every container needs a name and an image"
        for variable in container.get("env") or []:
            if "value" not in variable and "secretRef" not in variable:
                return f"env var '{variable.get('name')}' needs a value or a secretRef"
    identity = body.get("identity") or {}
    assigned = identity.get("userAssignedIdentities") or {}
    for registry in (properties.get("configuration") or {}).get("registries") or []:
        if registry.get("identity") and registry["identity"] not in assigned and registry["identity"] != "system":
            return f"registry identity '{registry['identity']}' is not assigned to the app"
    return None


_SECRET_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,251}[a-z0-9])?$")
_KEY_VAULT_SECRET_URL = re.compile(r"^https://[A-Za-z0-9.-]+(?::[0-9]+)?/secrets/[0-9A-Za-z-]{1,127}(?:/[0-9A-Za-z]+)?$")
_TEMPLATE_INVALID = "InvalidParameterValueInContainerTemplate"


def _check_secrets(body: dict[str, Any]) -> tuple[str, str] | None:
    """The service's checks of an app's secrets, on the app as it would be stored: (code, message) or None.

    As Container Apps documents and answers them: a secret's name is lowercase alphanumerics and '-' (at most
    253); a secret has a value, or a Key Vault secret URL and the identity that reads it; that identity is
    assigned to the app (``system`` needs the system-assigned one); every ``secretRef`` of a container names
    a secret of the app. A Key Vault secret's value is never fetched here: the emulator has no vault.
    """
    properties = body.get("properties") or {}
    secrets = (properties.get("configuration") or {}).get("secrets") or []
    identity = body.get("identity") or {}
    assigned = {key.lower() for key in identity.get("userAssignedIdentities") or {}}
    system = "systemassigned" in str(identity.get("type") or "").lower().replace(" ", "").split(",")
    names = set()
    for secret in secrets:
        name = str(secret.get("name") or "")
        if not _SECRET_NAME.fullmatch(name):
            return ("ContainerAppInvalidSecretName",
                    f"Secret name has an invalid value '{name}'. A value must consist of lower case alphanumeric "
                    "characters, '-', and must start and end with an alphanumeric character. The length must not be "
                    "more than 253 characters.")
        names.add(name)
        url, reader = secret.get("keyVaultUrl"), secret.get("identity")
        if not secret.get("value") and not (url and reader):
            return ("ContainerAppSecretInvalid", f"Invalid Request: Container app secret(s) with name(s) '{name}' are "
                                                 "invalid: value or keyVaultUrl and identity should be provided.")
        if secret.get("value"):
            continue
        if not _KEY_VAULT_SECRET_URL.fullmatch(str(url)):
            return ("ContainerAppSecretKeyVaultUrlInvalid",
                    f"Invalid Request: Container app secret(s) with name(s) '{name}' are invalid: keyVaultUrl "
                    f"'{url}' is not a Key Vault secret URL.")
        if not (system if str(reader).lower() == "system" else str(reader).lower() in assigned):
            return (_TEMPLATE_INVALID,
                    "The following field(s) are either invalid or missing. Field 'configuration.secrets' is invalid "
                    f"with details: 'Invalid value: \"{name}\": Unable to get value using Managed identity {reader} "
                    f"for secret {name}. Error: unable to fetch secret '{name}' using Managed identity '{reader}'';.")
    template = properties.get("template") or {}
    for container in [*(template.get("containers") or []), *(template.get("initContainers") or [])]:
        for variable in container.get("env") or []:
            ref = variable.get("secretRef")
            if ref is not None and ref not in names:
                return (_TEMPLATE_INVALID,
                        "The following field(s) are either invalid or missing. Field 'template.containers."
                        f"{container.get('name')}.env' is invalid with details: 'SecretRef '{ref}' defined for "
                        f"container '{container.get('name')}' not found.';.")
    return None


def _not_found(kind: str, name: str, group: str) -> Response:
    return error(404, "ResourceNotFound",
                 f"The Resource 'Microsoft.App/{kind}/{name}' under resource group '{group}' was not found.")


def _name(request: Request) -> str:
    assert request.match is not None
    return request.match["name"]


def _query(request: Request) -> str:
    return "&".join(f"{key}={value}" for key, values in request.query.items() for value in values)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uuid(seed: str) -> str:
    return str(uuid.UUID(seed[:32]))
