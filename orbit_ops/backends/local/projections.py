"""The local platform's projections: a stored document read back as managed fields only.

Reads map a document to :mod:`orbit_ops.fleet.resources` types with the managed fields only, so the
fields the service fills in (provisioning state, revision names, timestamps, etags) can never show up as
drift, exactly as on Azure. A whole document is read for a GET; a listing reads only the parts these
functions use, cut out by SQLite (see ``docs/decisions/0014-fleet-speed.md``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, cast

from orbit_ops.backends.local.documents import Document
from orbit_ops.fleet.resources import AccessMode, App, AppSecret, Mount, Share, Storage


def app_from_document(document: Document) -> App:
    """The container app a stored document describes (managed fields only)."""
    properties = document["properties"]
    container = properties["template"]["containers"][0]
    return _app_from_parts(
        document["name"],
        container["image"],
        container.get("env"),
        container.get("volumeMounts"),
        properties["template"].get("volumes"),
        properties["configuration"].get("registries"),
        (document.get("identity") or {}).get("userAssignedIdentities"),
        document.get("tags"),
        properties["configuration"].get("secrets"),
    )


def _app_from_parts(name: str, image: str, env: Any, volume_mounts: Any, volumes: Any, registries: Any,
                    assigned_identities: Any, tags: Any, secrets: Any = None) -> App:
    storage_of = {v["name"]: v.get("storageName", v["name"]) for v in volumes or []}
    registries = registries or []
    assigned = list(assigned_identities or {})
    identity = (registries[0].get("identity") if registries else None) or (assigned[0] if assigned else "")
    env = env or []
    return App(
        name=name,
        image=image,
        env=_frozen({item["name"]: item["value"] for item in env if "secretRef" not in item}),
        mounts=tuple(
            Mount(storage_of.get(m["volumeName"], m["volumeName"]), m["mountPath"]) for m in volume_mounts or []
        ),
        tags=_frozen(tags or {}),
        registry_server=registries[0]["server"] if registries else "",
        identity=identity,
        secrets=MappingProxyType({
            item["name"]: AppSecret(item["keyVaultUrl"], item.get("identity") or "")
            for item in sorted(secrets or [], key=lambda item: str(item["name"]))
        }),
        secret_env=_frozen({item["name"]: item["secretRef"] for item in env if "secretRef" in item}),
    )


def storage_from_document(document: Document) -> Storage:
    """The environment storage a stored document describes."""
    azure_file = document["properties"]["azureFile"]
    return Storage(
        name=document["name"],
        share_name=azure_file["shareName"],
        access_mode=cast(AccessMode, azure_file["accessMode"]),
        account_name=azure_file["accountName"],
    )


def share_from_document(document: Document) -> Share:
    """The file share a stored document describes (quota and metadata)."""
    properties = document["properties"]
    return _share_from_parts(document["name"], properties["shareQuota"], properties.get("metadata"))


def _share_from_parts(name: str, quota: Any, metadata: Any) -> Share:
    return Share(name=name, quota_gib=int(quota), metadata=_frozen(metadata or {}))


# -- listings: managed fields cut out by SQLite ------------------------------------------------------
# A listing reads every resource of a kind. SQLite's json functions (C) hand back only the parts the
# read-back functions above use, as one small JSON array per row, with the types of the objects a
# whole-document read would index into. When such an object is not one, or a part
# that must be there is absent, that row is read whole and parsed as a GET would, so a malformed
# document fails exactly as before; a document that is not JSON at all makes the listing read whole
# documents, and the error names it.


def _select(types: tuple[str, ...], parts: tuple[str, ...]) -> str:
    """Per row: the name, the json_type of each of ``types``, and the ``parts`` (two or more) as one JSON array."""
    columns = [f"json_type(document, '{path}')" for path in types]
    columns.append("json_extract(document, " + ", ".join(f"'{path}'" for path in parts) + ")")
    return f"SELECT name, {', '.join(columns)} FROM resources WHERE kind = ? ORDER BY name"


_CONTAINER = "$.properties.template.containers[0]"
APP_LISTING = _select(
    ("$.properties.configuration", "$.identity"),
    ("$.name", f"{_CONTAINER}.image", f"{_CONTAINER}.env", f"{_CONTAINER}.volumeMounts",
     "$.properties.template.volumes", "$.properties.configuration.registries",
     "$.identity.userAssignedIdentities", "$.tags", "$.properties.configuration.secrets"),
)
STORAGE_LISTING = _select((), ("$.name", "$.properties.azureFile"))
SHARE_LISTING = _select(("$.properties",), ("$.name", "$.properties.shareQuota", "$.properties.metadata"))


def listed_app(parts: list[Any]) -> App | None:
    """An app from the parts :data:`APP_LISTING` cut out, or None when one is missing or odd."""
    configuration, identity, name, image, *rest = parts
    if configuration != "object" or identity not in (None, "null", "object") or name is None or image is None:
        return None
    return _app_from_parts(name, image, *rest)


def listed_storage(parts: list[Any]) -> Storage | None:
    """A storage from the parts :data:`STORAGE_LISTING` cut out, or None when one is missing."""
    name, azure_file = parts
    if name is None or azure_file is None:
        return None
    return storage_from_document({"name": name, "properties": {"azureFile": azure_file}})


def listed_share(parts: list[Any]) -> Share | None:
    """A share from the parts :data:`SHARE_LISTING` cut out, or None when one is missing or odd."""
    properties, name, quota, metadata = parts
    if properties != "object" or name is None or quota is None:
        return None
    return _share_from_parts(name, quota, metadata)


def _frozen(values: dict[str, str]) -> MappingProxyType[str, str]:
    return MappingProxyType(dict(sorted(values.items())))

