"""The local platform's documents: each resource shaped like the ARM resource the service would return.

A container app is ``Microsoft.App/containerApps`` (``properties.template.containers``,
``configuration.registries``, ``identity``, ``systemData``...), an environment storage is
``Microsoft.App/managedEnvironments/storages`` and a share ``Microsoft.Storage/.../fileServices/shares``,
including the fields only the service fills in (provisioning state, revision names, timestamps, etags).
Writing sets the managed fields of a document and leaves every other field as it was; reading them back
is :mod:`.projections`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from orbit_ops.backends.local.rules import check_secrets
from orbit_ops.fleet.resources import App, Share, Storage

Document = dict[str, Any]

# Where the local resources claim to live, so their ids have the shape of ARM ids.
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "orbit-local"
LOCATION = "local"
ENVIRONMENT = "orbit-local-env"
STORAGE_ACCOUNT = "local"  # what Workspace.target() names for the local backend
DEFAULT_DOMAIN = "orbit.localhost"  # the environment's default domain: revision FQDNs end with it

_GROUP_ID = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
_ENVIRONMENT_ID = f"{_GROUP_ID}/providers/Microsoft.App/managedEnvironments/{ENVIRONMENT}"
_SHARES_ID = f"{_GROUP_ID}/providers/Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}/fileServices/default/shares"
_ACTOR = "orbit-local"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- write times: ARM's systemData, or a share's last-modified time and etag --------------------------


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def next_write_time(last: str) -> datetime:
    """Now, or just after the previous write (``last``) if the clock has not moved on: every write gets a new
    time and etag."""
    now = datetime.now(UTC)
    earlier = datetime.fromisoformat(last)
    return max(now, earlier + timedelta(microseconds=1))


def _system_data() -> Document:
    """ARM's record of who wrote a resource and when; the times are set by :func:`stamp_system_data`."""
    return {
        "createdBy": _ACTOR,
        "createdByType": "Application",
        "createdAt": "",
        "lastModifiedBy": _ACTOR,
        "lastModifiedByType": "Application",
        "lastModifiedAt": "",
    }


def system_data_written(document: Document) -> str:
    """When an ARM resource was last written (its ``systemData``)."""
    return cast(str, document["systemData"]["lastModifiedAt"])


def stamp_system_data(document: Document, moment: datetime, created: bool) -> None:
    """Record a write of an ARM resource (a container app, an environment storage) in its ``systemData``."""
    document["systemData"]["lastModifiedAt"] = _timestamp(moment)
    if created:
        document["systemData"]["createdAt"] = _timestamp(moment)


def share_written(document: Document) -> str:
    """When a share was last written (its ``lastModifiedTime``)."""
    return cast(str, document["properties"]["lastModifiedTime"])


def stamp_share(document: Document, moment: datetime, created: bool) -> None:
    """Record a write of a share the way Azure Files does: a last-modified time and a new etag."""
    document["properties"]["lastModifiedTime"] = _timestamp(moment)
    # Azure Files etags are the hex of the last-modified time: a new one on every change.
    document["etag"] = f'"0x{(moment - _EPOCH) // timedelta(microseconds=1):X}"'


# -- container apps --------------------------------------------------------------------------------


def new_app_document(name: str) -> Document:
    """A container app as ACA returns it before any managed field is set, with the service's defaults."""
    return {
        "id": f"{_GROUP_ID}/providers/Microsoft.App/containerApps/{name}",
        "name": name,
        "type": "Microsoft.App/containerApps",
        "location": LOCATION,
        "tags": {},
        "identity": {"type": "None"},
        "systemData": _system_data(),
        "properties": {
            "provisioningState": "Succeeded",
            "runningStatus": "Running",
            "managedEnvironmentId": _ENVIRONMENT_ID,
            "environmentId": _ENVIRONMENT_ID,
            "workloadProfileName": "Consumption",
            "latestRevisionName": "",
            "latestReadyRevisionName": "",
            "latestRevisionFqdn": "",
            "configuration": {
                "activeRevisionsMode": "Single",
                "maxInactiveRevisions": 100,
                "registries": [],
                "secrets": [],
            },
            "template": {
                "containers": [
                    {
                        "name": name,
                        "image": "",
                        "env": [],
                        "resources": {"cpu": 0.5, "memory": "1Gi", "ephemeralStorage": "2Gi"},
                        "volumeMounts": [],
                    }
                ],
                "scale": {"minReplicas": None, "maxReplicas": 10},
                "volumes": [],
            },
        },
    }


def apply_app(document: Document, app: App) -> None:
    """Set the managed fields of ``app`` in ``document``, leaving every other field as it was.

    Raises:
        BackendError: a secret or a ``secretRef`` breaks a rule of the service (nothing is changed).
    """
    check_secrets(app)
    properties = document["properties"]
    document["tags"] = dict(app.tags)
    if app.identities:
        # principalId/clientId are the identity's own; derived from its id so they stay stable and say nothing.
        assigned = {}
        for resource_id in app.identities:
            identity_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, resource_id))
            assigned[resource_id] = {"principalId": identity_uuid, "clientId": identity_uuid}
        document["identity"] = {"type": "UserAssigned", "userAssignedIdentities": assigned}
    else:
        document["identity"] = {"type": "None"}
    registries: list[Document] = []
    if app.registry_server:
        registry: Document = {"server": app.registry_server}
        if app.identity:
            registry["identity"] = app.identity
        registries.append(registry)
    properties["configuration"]["registries"] = registries
    # Key Vault references only, as the service keeps them: a name, the secret's URL and who reads it.
    properties["configuration"]["secrets"] = [
        {"name": name, "keyVaultUrl": secret.key_vault_url, "identity": secret.identity}
        for name, secret in app.secrets.items()
    ]
    template = properties["template"]
    container = template["containers"][0]
    container["image"] = app.image
    container["env"] = [{"name": key, "value": value} for key, value in app.env.items()] + [
        {"name": key, "secretRef": secret} for key, secret in app.secret_env.items()
    ]
    container["volumeMounts"] = [{"volumeName": m.storage_name, "mountPath": m.mount_path} for m in app.mounts]
    volumes = dict.fromkeys(m.storage_name for m in app.mounts)
    template["volumes"] = [{"name": s, "storageType": "AzureFile", "storageName": s} for s in volumes]


def revise_app(document: Document, before: Document | None, revision: int) -> int:
    """The app's revision number after a write: like ACA, a new app or a change to the template (image, env,
    volumes) is a new revision; tags, registries and identity are application-scope and keep the current one."""
    if before is not None and document["properties"]["template"] == before["properties"]["template"]:
        return revision
    _set_revision(document, revision + 1)
    return revision + 1


def _set_revision(document: Document, revision: int) -> None:
    """Name revision number ``revision`` like ACA does (``<app>--<suffix>``) and point the app at it as its latest
    revision; whether it also becomes the latest *ready* one is the revision's own fate (:mod:`.revisions`)."""
    name = document["name"]
    template = json.dumps(document["properties"]["template"], sort_keys=True)
    suffix = hashlib.sha256(f"{name}\n{revision}\n{template}".encode()).hexdigest()[:7]
    revision_name = f"{name}--{suffix}"
    properties = document["properties"]
    properties["latestRevisionName"] = revision_name
    properties["latestRevisionFqdn"] = f"{revision_name}.{DEFAULT_DOMAIN}"


def no_revisions(document: Document, before: Document | None, revision: int) -> int:
    """Storages and shares have no revisions: the number stays 0."""
    return revision


# -- environment storages and shares ---------------------------------------------------------------


def new_storage_document(name: str) -> Document:
    """An environment storage (a share link of the managed environment) before its fields are set."""
    return {
        "id": f"{_ENVIRONMENT_ID}/storages/{name}",
        "name": name,
        "type": "Microsoft.App/managedEnvironments/storages",
        "systemData": _system_data(),
        "properties": {"azureFile": {}},
    }


def apply_storage(document: Document, storage: Storage) -> None:
    """Set the share, account and access mode of an environment storage."""
    # The account key is write-only on Azure and there is none locally: it is never stored.
    document["properties"]["azureFile"] = {
        "accountName": storage.account_name,
        "shareName": storage.share_name,
        "accessMode": storage.access_mode,
    }


def new_share_document(name: str) -> Document:
    """A premium file share as Azure Files returns it before its quota and metadata are set."""
    return {
        "id": f"{_SHARES_ID}/{name}",
        "name": name,
        "type": "Microsoft.Storage/storageAccounts/fileServices/shares",
        "etag": "",
        "properties": {
            "accessTier": "Premium",
            "enabledProtocols": "SMB",
            "leaseStatus": "unlocked",
            "leaseState": "available",
            "lastModifiedTime": "",
            "shareQuota": 0,
            "metadata": {},
        },
    }


def apply_share(document: Document, share: Share) -> None:
    """Set the quota and metadata of a share."""
    document["properties"]["shareQuota"] = share.quota_gib
    document["properties"]["metadata"] = dict(share.metadata)
