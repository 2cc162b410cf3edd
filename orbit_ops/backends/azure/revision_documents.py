"""Container Apps health facts: an app's status fields, its revisions and their replicas as Orbit's facts.

The projections :func:`~orbit_ops.fleet.health.app_health` judges (decision 0043), as pure functions of
azure-mgmt-appcontainers 5.x models. The SDK types every state as ``str or <Enum>``: a value its enums know
arrives as an enum member, any other (``RunningAtMaxScale``, ``Activating``) as the plain string the service
sent. Both are kept as the service's words, never compared here and never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from orbit_ops.fleet.health import AppFacts, RevisionFacts


def app_facts(model: Any) -> AppFacts:
    """The status fields of a ContainerApp as the app listing reports them."""
    properties = model.properties
    if properties is None:
        return AppFacts(model.name)
    return AppFacts(model.name, _text(properties.provisioning_state), _text(properties.running_status),
                    properties.latest_revision_name or "", properties.latest_ready_revision_name or "")


def app_facts_from_document(document: Mapping[str, Any]) -> AppFacts:
    """:func:`app_facts` of a ContainerApp as the service sent it (JSON, wire names; decision 0071)."""
    properties = document.get("properties")
    if not isinstance(properties, dict):
        return AppFacts(document.get("name"))  # type: ignore[arg-type]
    return AppFacts(document.get("name"), _text(properties.get("provisioningState")),  # type: ignore[arg-type]
                    _text(properties.get("runningStatus")), properties.get("latestRevisionName") or "",
                    properties.get("latestReadyRevisionName") or "")


def needs_replicas(model: Any) -> bool:
    """Whether the reason for a revision's health lies in its replicas: it is active and degraded or unhealthy
    (restart counts, the container's own words), and provisioned (a revision that failed to provision has none)."""
    properties = model.properties
    if properties is None or not properties.active or _text(properties.provisioning_state).lower() == "failed":
        return False
    return (_text(properties.running_state).lower() == "degraded"
            or _text(properties.health_state).lower() == "unhealthy")


def revision_facts(model: Any, replicas: Iterable[Any] = ()) -> RevisionFacts:
    """One Revision with, when read, its replicas: their containers' restarts summed, and the first thing a
    replica or container says about its running state."""
    properties = model.properties
    if properties is None:
        return RevisionFacts(model.name)
    restarts = 0
    details: list[str] = []
    for replica in replicas:
        replica_properties = replica.properties
        if replica_properties is None:
            continue
        for container in [*(replica_properties.containers or []), *(replica_properties.init_containers or [])]:
            restarts += container.restart_count or 0
            details.append(container.running_state_details or "")
        details.append(replica_properties.running_state_details or "")
    return RevisionFacts(
        name=model.name,
        provisioning_state=_text(properties.provisioning_state),
        health_state=_text(properties.health_state),
        running_state=_text(properties.running_state),
        active=bool(properties.active),
        replicas=properties.replicas or 0,
        restarts=restarts,
        provisioning_error=properties.provisioning_error or "",
        detail=next((said for said in details if said), ""),
        created=_utc(properties.created_time),
    )


def newest_first(revisions: list[RevisionFacts]) -> list[RevisionFacts]:
    """Revisions newest first by their creation time (the service lists them in no promised order); those
    without one last, in the order listed."""
    dated = sorted((r for r in revisions if r.created is not None), key=lambda r: r.created or _EPOCH, reverse=True)
    return dated + [r for r in revisions if r.created is None]


_EPOCH = datetime.min.replace(tzinfo=UTC)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _text(value: Any) -> str:
    """An SDK enum member or string as its wire value."""
    return str(getattr(value, "value", value) or "")
