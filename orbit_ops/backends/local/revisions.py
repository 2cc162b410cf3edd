"""The local platform's revisions: every template change of an app is a new revision that decides at once if it runs.

Like Container Apps, a change to an app's template (image, env and secret env, mounts) makes a new revision
named ``<app>--<suffix>``; tags, registries, identities and the secrets list are application-scope and make
none. Each is kept as a ``Microsoft.App/containerApps/revisions`` document beside the app's. There is no
container runtime here, so a revision's fate is decided from real facts when it is made, with no delay: it fails
(provisioningState and runningState ``Failed``, a ``provisioningError`` naming the cause) when its image does not
resolve in the local registry, or when the image's config label ``org.orbit.env.required`` (comma-separated
names) names a variable the template's env does not set; otherwise it is provisioned, running and healthy, the
app's latest ready revision, and it takes the traffic from the revision before it (single revision mode).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from orbit_ops.backends.base import REQUIRED_ENV_LABEL, required_env
from orbit_ops.backends.local.documents import Document
from orbit_ops.backends.local.oci import LocalRegistry, config_labels, read_image_config, read_index
from orbit_ops.errors import BackendError
from orbit_ops.fleet.health import AppFacts, RevisionFacts

KEPT_REVISIONS = 101  # the active one and ACA's default of 100 inactive ones
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def failure(registry: LocalRegistry | None, template: Document) -> str | None:
    """Why a revision of ``template`` fails (the service's provisioningError), or None when it runs."""
    container = template["containers"][0]
    image = str(container.get("image") or "")
    if registry is None:
        return f"Failed to pull image '{image}': this local platform has no registry to pull from"
    repository, _, tag = image.removeprefix(f"{registry.name}/").rpartition(":")
    if not image.startswith(f"{registry.name}/") or not _REPOSITORY.match(repository) or not tag:
        return f"Failed to pull image '{image}': it is not an image of the local registry {registry.name}"
    layout = registry.layout(repository)
    try:
        tags = read_index(layout)
        if tag not in tags:
            held = ", ".join(sorted(tags)) or "nothing"
            return f"Failed to pull image '{image}': the local registry has no {repository}:{tag} (it holds {held})"
        config = read_image_config(layout, tag)
    except BackendError as exc:  # a damaged layout does not pull either
        return f"Failed to pull image '{image}': {exc}"
    given = {str(item.get("name")) for item in container.get("env") or []}
    missing = [name for name in required_env(config_labels(config)) if name not in given]
    if missing:
        names = ", ".join(missing)
        return (f"container {container.get('name')} exited at start: {repository}:{tag} requires env {names} "
                f"(label {REQUIRED_ENV_LABEL}), which the app does not set")
    return None


def new_revision(app: Document, moment: str, error: str | None) -> Document:
    """The document of the app's new latest revision, failed with ``error`` or running."""
    properties = app["properties"]
    name = properties["latestRevisionName"]
    return {
        "id": f"{app['id']}/revisions/{name}",
        "name": name,
        "type": "Microsoft.App/containerApps/revisions",
        "properties": {
            "createdTime": moment,
            "lastActiveTime": moment,
            "fqdn": properties["latestRevisionFqdn"],
            "template": app["properties"]["template"],
            "active": error is None,
            "replicas": 0 if error else 1,
            "trafficWeight": 0 if error else 100,
            "provisioningError": error,
            "healthState": "Unhealthy" if error else "Healthy",
            "provisioningState": "Failed" if error else "Provisioned",
            "runningState": "Failed" if error else "Running",
        },
    }


def deactivate(revision: Document, moment: str) -> None:
    """The revision a new ready one replaced: inactive, no replicas, no traffic (its states kept)."""
    properties = revision["properties"]
    if properties.get("active"):
        properties.update(active=False, replicas=0, trafficWeight=0, lastActiveTime=moment)


def facts(revision: Document) -> RevisionFacts:
    """The service's facts about one stored revision (no restarts: nothing runs to restart locally)."""
    properties = revision["properties"]
    return RevisionFacts(
        name=str(revision["name"]),
        provisioning_state=str(properties.get("provisioningState") or ""),
        health_state=str(properties.get("healthState") or ""),
        running_state=str(properties.get("runningState") or ""),
        active=bool(properties.get("active")),
        replicas=int(properties.get("replicas") or 0),
        provisioning_error=str(properties.get("provisioningError") or ""),
        created=_moment(properties.get("createdTime")),
    )


def derived(app: Document) -> list[RevisionFacts]:
    """The revision of an app stored before revisions were kept: its latest revision as the app names it, ready
    when the app says it is (such an app was always made ready at once)."""
    properties = app["properties"]
    name = str(properties.get("latestRevisionName") or "")
    if not name:
        return []
    ready = name == properties.get("latestReadyRevisionName")
    return [RevisionFacts(name=name, provisioning_state="Provisioned" if ready else "Provisioning",
                          health_state="Healthy" if ready else "None",
                          running_state="Running" if ready else "Processing", active=ready, replicas=1 if ready else 0,
                          created=_moment(app.get("systemData", {}).get("lastModifiedAt")))]


APP_STATES = ("SELECT name, json_extract(document, '$.properties.provisioningState', '$.properties.runningStatus', "
              "'$.properties.latestRevisionName', '$.properties.latestReadyRevisionName') "
              "FROM resources WHERE kind = 'app' ORDER BY name")


def app_facts(name: str, parts: list[Any]) -> AppFacts:
    """An app's status fields from the parts :data:`APP_STATES` cut out (missing ones read as empty)."""
    state, running, latest, ready = (str(part) if part is not None else "" for part in parts)
    return AppFacts(name, state, running, latest, ready)


def name_range(app: str) -> tuple[str, str]:
    """The bounds of the revision names of ``app`` (``<app>--…``): app names never hold ``--``, so no other
    app's revisions fall between them."""
    return f"{app}--", f"{app}-."


def _moment(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
