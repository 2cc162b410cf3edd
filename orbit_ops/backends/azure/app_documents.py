"""Container Apps documents: an ``App`` and a ``Storage`` as azure-mgmt-appcontainers 5.x models, and back.

What Orbit sends (a create's whole ``ContainerApp``, an update's JSON merge patch, an environment storage's
PUT) and what it reads back (the managed fields only) are shaped here, as pure functions of the models; the
platform makes the calls. Reads map ARM documents back to managed fields only, so what the service fills in
(provisioning state, revisions, resource defaults, scale, principal ids) or keeps secret (secret values, the
storage account key) never shows up as drift. An app's Key Vault reference secrets (name, ``keyVaultUrl``,
identity) and the env vars taking them (``secretRef``) are managed; secrets with a value, and env vars taking
those, are someone else's (decision 0032).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, cast

from orbit_ops.errors import BackendError
from orbit_ops.fleet.resources import AccessMode, App, AppSecret, Mount, Storage

STORAGE_TYPE = "AzureFile"


def new_app_model(app: App, *, location: str, environment_id: str) -> Any:
    """The full ContainerApp of a create: environment, identity, registry, one container, volumes, tags."""
    from azure.mgmt.appcontainers.models import (
        Configuration,
        ContainerApp,
        ContainerAppProperties,
        Template,
    )

    return ContainerApp(
        location=location,
        tags=dict(app.tags),
        identity=_identity(app.identities, keep_system=False) if app.identities else None,
        properties=ContainerAppProperties(
            managed_environment_id=environment_id,
            configuration=Configuration(registries=_registries(app, []), secrets=_secrets(app) or None),
            template=Template(containers=[_container(app, None, set())], volumes=_volumes(app)),
        ),
    )


def app_patch(app: App, live: Any, *, location: str) -> Any:
    """The merge patch that converges ``live`` to ``app`` and leaves every unmanaged field alone; ``location``
    is sent where ``live`` has none (unchanged: the model requires it).

    Arrays are replaced whole by a merge patch, so the first container is rebuilt from the live
    one (its secretRef env vars, resources, probes, command are kept), other containers are sent
    back unchanged, and volumes they mount are kept. Tags Orbit does not want are deleted (null).

    Raises:
        BackendError: the app's Key Vault secrets must change while it also holds secrets with values,
            which the patch would have to send back and Orbit never reads.
    """
    from azure.mgmt.appcontainers.models import (
        Configuration,
        ContainerApp,
        ContainerAppProperties,
        Template,
    )

    properties = live.properties
    template = properties.template if properties is not None else None
    configuration = properties.configuration if properties is not None else None
    containers = list((template.containers if template is not None else None) or [])
    others = containers[1:]
    init = list((template.init_containers if template is not None else None) or [])
    mounted = {m.volume_name for c in [*others, *init] for m in (c.volume_mounts or [])}
    volumes = _volumes(app)
    wanted = {volume.name for volume in volumes}
    volumes += [
        type(v)(v.as_dict()) for v in (template.volumes if template is not None else None) or []
        if v.name in mounted and v.name not in wanted
    ]
    by_reference, with_value = _live_secrets(configuration)
    converged = Configuration(
        registries=_registries(app, (configuration.registries if configuration is not None else None) or []))
    if not _same_secrets(app.secrets, by_reference):
        # The secrets array is replaced whole, and a secret with a value can only be sent back with its
        # value, which Orbit never reads (listSecrets): such a secret it does not replace blocks the change.
        kept = sorted(with_value - set(app.secrets))
        if kept:
            raise BackendError(
                f"update container app {app.name}: cannot change its Key Vault secrets while it also holds secrets "
                f"with values ({', '.join(kept)}): Orbit never reads secret values, and changing the secrets would "
                "need them sent back; move them to Key Vault references in the solution file, or remove them "
                "from the app")
        converged.secrets = _secrets(app)
    patch = ContainerApp(
        location=live.location or location,  # unchanged; the model requires it
        properties=ContainerAppProperties(
            configuration=converged,
            template=Template(
                containers=[_container(app, containers[0] if containers else None, with_value),
                            *(type(c)(c.as_dict()) for c in others)],
                volumes=volumes,
            ),
        ),
    )
    tags: dict[str, str | None] = {key: None for key in (live.tags or {}) if key not in app.tags}
    tags.update(app.tags)
    patch["tags"] = tags
    if any(not _has_identity(live.identity, resource_id) for resource_id in app.identities):
        # A merge patch adds to userAssignedIdentities: identities assigned by others stay.
        kinds = _text(live.identity.type if live.identity is not None else "").replace(" ", "").split(",")
        patch.identity = _identity(app.identities, keep_system="SystemAssigned" in kinds)
    return patch


def storage_model(storage: Storage, account_key: str) -> Any:
    """The ManagedEnvironmentStorage a PUT sends: the share, account, access mode and the account key."""
    from azure.mgmt.appcontainers.models import (
        AzureFileProperties,
        ManagedEnvironmentStorage,
        ManagedEnvironmentStorageProperties,
    )

    return ManagedEnvironmentStorage(
        properties=ManagedEnvironmentStorageProperties(
            azure_file=AzureFileProperties(
                account_name=storage.account_name,
                account_key=account_key,
                share_name=storage.share_name,
                access_mode=storage.access_mode,
            )
        )
    )


def app_from_model(model: Any) -> App:
    """Managed fields of a ContainerApp: image, plain env, mounts, tags, registry and identity."""
    properties = model.properties
    template = properties.template if properties is not None else None
    configuration = properties.configuration if properties is not None else None
    containers = (template.containers if template is not None else None) or []
    container = containers[0] if containers else None
    storage_of = {v.name: v.storage_name or v.name for v in (template.volumes if template is not None else None) or []}
    registries = (configuration.registries if configuration is not None else None) or []
    assigned = list((model.identity.user_assigned_identities if model.identity is not None else None) or {})
    identity = (registries[0].identity if registries else None) or (assigned[0] if assigned else "")
    variables = (container.env if container is not None else None) or []
    env = {v.name: v.value or "" for v in variables if not v.secret_ref}
    by_reference, with_value = _live_secrets(configuration)
    # An env var taking a secret with a value is someone else's (decision 0032); one taking a Key Vault
    # reference is Orbit's, compared with the solution file.
    secret_env = {v.name: v.secret_ref for v in variables if v.secret_ref and v.secret_ref not in with_value}
    mounts = tuple(
        Mount(storage_of.get(m.volume_name, m.volume_name), m.mount_path)
        for m in (container.volume_mounts if container is not None else None) or []
    )
    return App(
        name=model.name,
        image=(container.image if container is not None else None) or "",
        env=_frozen(env),
        mounts=mounts,
        tags=_frozen(dict(model.tags or {})),
        registry_server=(registries[0].server if registries else None) or "",
        identity=identity,
        secrets=MappingProxyType(dict(sorted(by_reference.items()))),
        secret_env=_frozen(secret_env),
    )


def storage_from_model(model: Any) -> Storage:
    """Managed fields of an environment storage; an NFS or empty storage reads as an unusable link (drift)."""
    properties = model.properties
    azure_file = properties.azure_file if properties is not None else None
    if azure_file is None:
        return Storage(name=model.name, share_name="", access_mode="ReadWrite", account_name="")
    return Storage(
        name=model.name,
        share_name=azure_file.share_name or "",
        access_mode=cast(AccessMode, _text(azure_file.access_mode)),
        account_name=azure_file.account_name or "",
    )


def app_from_document(document: Mapping[str, Any]) -> App:
    """:func:`app_from_model` of a ContainerApp as the service sent it (JSON, wire names): the same ``App``,
    without building the SDK model a listing of thousands would pay for (decision 0071)."""
    properties = _object(document.get("properties"))
    template = _object(properties.get("template"))
    configuration = _object(properties.get("configuration"))
    containers = template.get("containers") or []
    container = _object(containers[0]) if containers else {}
    storage_of = {v.get("name"): v.get("storageName") or v.get("name") for v in _objects(template.get("volumes"))}
    registries = _objects(configuration.get("registries"))
    assigned = list(_object(document.get("identity")).get("userAssignedIdentities") or {})
    identity = (registries[0].get("identity") if registries else None) or (assigned[0] if assigned else "")
    variables = _objects(container.get("env"))
    env = {v.get("name"): v.get("value") or "" for v in variables if not v.get("secretRef")}
    by_reference, with_value = _document_secrets(configuration)
    secret_env = {v.get("name"): v.get("secretRef") for v in variables
                  if v.get("secretRef") and v.get("secretRef") not in with_value}
    mounts = tuple(Mount(storage_of.get(m.get("volumeName"), m.get("volumeName")),  # type: ignore[arg-type]
                         m.get("mountPath"))  # type: ignore[arg-type]
                   for m in _objects(container.get("volumeMounts")))
    return App(
        name=document.get("name"),  # type: ignore[arg-type]  # as the model gives it: the service always names it
        image=container.get("image") or "",
        env=_frozen(env),  # type: ignore[arg-type]
        mounts=mounts,
        tags=_frozen(dict(document.get("tags") or {})),
        registry_server=(registries[0].get("server") if registries else None) or "",
        identity=identity,
        secrets=MappingProxyType(dict(sorted(by_reference.items()))),
        secret_env=_frozen(secret_env),  # type: ignore[arg-type]
    )


def storage_from_document(document: Mapping[str, Any]) -> Storage:
    """:func:`storage_from_model` of an environment storage as the service sent it (JSON, wire names)."""
    azure_file = _object(document.get("properties")).get("azureFile")
    if azure_file is None:
        return Storage(name=document.get("name"), share_name="", access_mode="ReadWrite",  # type: ignore[arg-type]
                       account_name="")
    azure_file = _object(azure_file)
    return Storage(
        name=document.get("name"),  # type: ignore[arg-type]
        share_name=azure_file.get("shareName") or "",
        access_mode=cast(AccessMode, _text(azure_file.get("accessMode"))),
        account_name=azure_file.get("accountName") or "",
    )


# -- the parts of a document -------------------------------------------------------------------------


def _component(app: App) -> str:
    return app.name.rsplit("-", 1)[0] if "-" in app.name else app.name


def _container(app: App, live: Any, with_value: set[str]) -> Any:
    """Container 0 of ``app``; from ``live`` it keeps every field Orbit does not manage, among them the
    env vars that take a secret with a value (``with_value``: someone else's, decision 0032)."""
    from azure.mgmt.appcontainers.models import Container, EnvironmentVar, VolumeMount

    container = Container(live.as_dict()) if live is not None else Container(name=_component(app))
    kept = [EnvironmentVar(v.as_dict()) for v in (container.env or [])
            if v.secret_ref in with_value and v.name not in app.env and v.name not in app.secret_env]
    container.image = app.image
    container.env = [EnvironmentVar(name=name, value=value) for name, value in app.env.items()] + [
        EnvironmentVar(name=name, secret_ref=secret) for name, secret in app.secret_env.items()] + kept
    container.volume_mounts = [VolumeMount(volume_name=m.storage_name, mount_path=m.mount_path) for m in app.mounts]
    return container


def _volumes(app: App) -> list[Any]:
    from azure.mgmt.appcontainers.models import Volume

    names = dict.fromkeys(mount.storage_name for mount in app.mounts)
    return [Volume(name=name, storage_type=STORAGE_TYPE, storage_name=name) for name in names]


def _registries(app: App, live: list[Any]) -> list[Any]:
    """Orbit's registry first (pulled with the identity, no password), then any other registry kept."""
    from azure.mgmt.appcontainers.models import RegistryCredentials

    others = [RegistryCredentials(r.as_dict()) for r in live if r.server != app.registry_server]
    if not app.registry_server:
        return others
    ours = RegistryCredentials(server=app.registry_server, identity=app.identity or None)
    return [ours, *others]


def _identity(resource_ids: tuple[str, ...], *, keep_system: bool) -> Any:
    from azure.mgmt.appcontainers.models import ManagedServiceIdentity, UserAssignedIdentity

    return ManagedServiceIdentity(
        type="SystemAssigned,UserAssigned" if keep_system else "UserAssigned",
        user_assigned_identities={resource_id: UserAssignedIdentity() for resource_id in resource_ids},
    )


def _secrets(app: App) -> list[Any]:
    """The app's secrets as the service takes Key Vault references: name, URL and identity, no value."""
    from azure.mgmt.appcontainers.models import Secret

    return [Secret(name=name, key_vault_url=secret.key_vault_url, identity=secret.identity)
            for name, secret in app.secrets.items()]


def _live_secrets(configuration: Any) -> tuple[dict[str, AppSecret], set[str]]:
    """The live app's secrets: its Key Vault references by name, and the names of those with a value (which
    GET never returns: only their names are known)."""
    by_reference: dict[str, AppSecret] = {}
    with_value: set[str] = set()
    for secret in (configuration.secrets if configuration is not None else None) or []:
        if not secret.name:
            continue
        if secret.key_vault_url:
            by_reference[secret.name] = AppSecret(secret.key_vault_url, secret.identity or "")
        else:
            with_value.add(secret.name)
    return by_reference, with_value


def _document_secrets(configuration: Mapping[str, Any]) -> tuple[dict[str, AppSecret], set[str]]:
    """:func:`_live_secrets` of a ``configuration`` as the service sent it (JSON)."""
    by_reference: dict[str, AppSecret] = {}
    with_value: set[str] = set()
    for secret in _objects(configuration.get("secrets")):
        name = secret.get("name")
        if not name:
            continue
        if secret.get("keyVaultUrl"):
            by_reference[name] = AppSecret(secret["keyVaultUrl"], secret.get("identity") or "")
        else:
            with_value.add(name)
    return by_reference, with_value


def _object(value: Any) -> Mapping[str, Any]:
    """A JSON object of a document, or an empty one where it is absent (null) or not an object."""
    return value if isinstance(value, dict) else {}


def _objects(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a JSON array of a document (none where it is absent or null)."""
    return [item if isinstance(item, dict) else {} for item in value or []]


def _same_secrets(desired: Mapping[str, AppSecret], live: Mapping[str, AppSecret]) -> bool:
    """Equal as drift compares them: the same names and URLs, identities compared without case (ARM ids)."""
    return set(desired) == set(live) and all(
        desired[name].key_vault_url == live[name].key_vault_url
        and desired[name].identity.lower() == live[name].identity.lower()
        for name in desired
    )


def _has_identity(identity: Any, resource_id: str) -> bool:
    if identity is None or "UserAssigned" not in _text(identity.type):
        return False
    return any(key.lower() == resource_id.lower() for key in identity.user_assigned_identities or {})


def _text(value: Any) -> str:
    """An SDK enum member or string as its wire value."""
    return str(getattr(value, "value", value) or "")


def _frozen(values: dict[str, str]) -> MappingProxyType[str, str]:
    return MappingProxyType(dict(sorted(values.items())))
