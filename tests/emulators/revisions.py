"""Container Apps revisions on the ARM emulator: their life on an emulated clock, and faults per image.

A container app gets a new revision on every revision-scope change, that is any change to
``properties.template`` (containers with their images, env and secret references, resources, probes and
volume mounts; scale; volumes; the revision suffix), and none on an application-scope change
(configuration: secret values, ingress, registries, revision mode; tags; identity), as Container Apps
documents its change types. A revision is named ``<app>--<suffix>``: the template's ``revisionSuffix``
when set, otherwise a generated one.

Each revision's state is a pure function of the time since it was created, read on an emulated clock
(:class:`Clock`) that tests step: a revision is ``Provisioning``/``Processing`` for
:data:`PROVISIONING_SECONDS`, then ``Provisioned``/``Activating`` for :data:`ACTIVATION_SECONDS`, then
``Running``/``Healthy``. The clock also moves by ``Clock.per_request`` seconds before each Microsoft.App
request, because on the service time passes between a client's requests: a client that polls
(``orbit provision`` following a new revision) sees it advance, with no sleeps; a test that wants to
watch each state sets ``per_request`` to 0 and calls :meth:`Clock.advance`. Reads never change state
by themselves, so the request log stays the only thing a read leaves behind.

A fault set on an image (:meth:`Revisions.image_fault`) is taken by each revision created with that
image from then on, as a pull or a crash happens to the revision that runs the image:

- ``pull-failure``: provisioning ends ``Failed`` with the service's ``provisioningError``;
- ``crash-loop``: the revision runs for a moment, then is ``Degraded``/``Unhealthy`` with its
  container's ``restartCount`` climbing by one every :data:`RESTART_SECONDS`;
- ``activation-stalls``: it stays ``Activating`` with no running replica;
- ``reports-state``: once ready it reports ``running_state`` (e.g. ``RunningAtMaxScale``, which the
  service sends and the SDK's ``RevisionRunningState`` does not know).

The app's ``latestReadyRevisionName`` is the newest revision that has become ready (a revision that
became ready keeps that name even if it crashes later); its ``runningStatus`` follows the latest
revision. In ``Single`` revision mode the latest ready revision keeps its traffic until a newer one is
ready; other revisions are deactivated.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

PROVISIONING_SECONDS = 10.0
ACTIVATION_SECONDS = 10.0
RESTART_SECONDS = 10.0  # a crash-looping container restarts this often (the service backs off; kept even here)
FAULT_KINDS = ("pull-failure", "crash-loop", "activation-stalls", "reports-state")


@dataclass
class Clock:
    """Emulated time in seconds: stepped by tests, and by ``per_request`` before each request."""

    per_request: float = 10.0
    now: float = 0.0

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def stamp(self, at: float) -> str:
        """``at`` as the service writes a time (RFC 3339, UTC): as long before the real time now as it is
        before emulated now, so a client that reads an age from it (now - createdTime) gets the emulated age."""
        when = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.now - at)
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ImageFault:
    image: str
    kind: str
    running_state: str = ""


@dataclass
class Revision:
    """One revision: its template as created, when, and the fault it took from its images."""

    app: str
    name: str
    template: dict[str, Any]
    created: float
    fault: ImageFault | None = None

    def ready_at(self) -> float | None:
        """When it becomes ready (provisioned and running healthy), or None if it never does."""
        if self.fault is not None and self.fault.kind in ("pull-failure", "activation-stalls"):
            return None
        return self.created + PROVISIONING_SECONDS + ACTIVATION_SECONDS

    def state(self, now: float) -> tuple[str, str, str]:
        """(provisioningState, runningState, healthState) at ``now``, while active."""
        elapsed = now - self.created
        kind = self.fault.kind if self.fault else ""
        if elapsed < PROVISIONING_SECONDS:
            return "Provisioning", "Processing", "None"
        if kind == "pull-failure":
            return "Failed", "Failed", "Unhealthy"
        if elapsed < PROVISIONING_SECONDS + ACTIVATION_SECONDS or kind == "activation-stalls":
            return "Provisioned", "Activating", "None"
        if kind == "crash-loop" and self.restarts(now) > 0:
            return "Provisioned", "Degraded", "Unhealthy"
        if kind == "reports-state" and self.fault is not None:
            return "Provisioned", self.fault.running_state, "Healthy"
        return "Provisioned", "Running", "Healthy"

    def restarts(self, now: float) -> int:
        ready = self.ready_at()
        if self.fault is None or self.fault.kind != "crash-loop" or ready is None or now < ready:
            return 0
        return int((now - ready) // RESTART_SECONDS)

    def provisioning_error(self) -> str:
        """Why provisioning failed, worded as the platform reports a pull that fails (kubelet and containerd)."""
        image = self.fault.image if self.fault else ""
        return (f"ImagePullBackOff: Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to "
                f"pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found")


@dataclass
class Revisions:
    """The revisions of every app of the emulator, the faults per image and the clock."""

    apps_id: str
    domain: str
    clock: Clock = field(default_factory=Clock)
    faults: dict[str, ImageFault] = field(default_factory=dict)
    by_app: dict[str, list[Revision]] = field(default_factory=dict)

    def reset(self) -> None:
        self.clock = Clock()
        self.faults.clear()
        self.by_app.clear()

    def image_fault(self, image: str, kind: str, *, running_state: str = "RunningAtMaxScale") -> None:
        """Make every revision created from now on with ``image`` (a full reference) behave as ``kind``.

        Raises:
            ValueError: ``kind`` is not one of :data:`FAULT_KINDS`.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown image fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        self.faults[image] = ImageFault(image, kind, running_state if kind == "reports-state" else "")

    def record(self, app: str, template: dict[str, Any], *, settled: bool = False) -> Revision:
        """A new revision of ``app`` with ``template`` (``settled``: created long enough ago to be ready)."""
        history = self.by_app.setdefault(app, [])
        suffix = template.get("revisionSuffix") or hashlib.sha256(f"{app}/{len(history) + 1}".encode()).hexdigest()[:7]
        images = [str(c.get("image")) for c in template.get("containers") or []]
        fault = next((self.faults[image] for image in images if image in self.faults), None)
        created = self.clock.now - (PROVISIONING_SECONDS + ACTIVATION_SECONDS if settled else 0.0)
        revision = Revision(app, f"{app}--{suffix}", copy.deepcopy(template), created, fault)
        history.append(revision)
        return revision

    def forget(self, app: str) -> None:
        self.by_app.pop(app, None)

    def find(self, app: str, name: str) -> Revision | None:
        return next((r for r in self.by_app.get(app, []) if r.name.lower() == name.lower()), None)

    def latest_ready(self, app: str) -> Revision | None:
        now = self.clock.now
        ready = [r for r in self.by_app.get(app, []) if (at := r.ready_at()) is not None and at <= now]
        return ready[-1] if ready else None

    def running_status(self, app: str) -> str:
        """The app's ``runningStatus`` from its latest revision (as the existing emulator words a failure)."""
        history = self.by_app.get(app)
        if not history:
            return "Running"
        _, running, _ = history[-1].state(self.clock.now)
        if running in ("Failed", "Degraded"):
            return "Degraded"
        return "Progressing" if running in ("Processing", "Activating") else "Running"

    def _active(self, revision: Revision, mode: str) -> bool:
        history = self.by_app.get(revision.app, [])
        if mode.lower() != "single":
            return True
        return revision is history[-1] or revision is self.latest_ready(revision.app)

    def _deactivated(self, revision: Revision) -> float:
        """When an inactive revision stopped being active: when a newer one was made, and, if it had been
        ready, when a newer one became ready (until then it kept the traffic)."""
        history = self.by_app[revision.app]
        newer = history[history.index(revision) + 1:]
        ready_since = [at for r in newer if (at := r.ready_at()) is not None and at <= self.clock.now]
        was_ready = (at := revision.ready_at()) is not None and at <= self.clock.now
        return max(newer[0].created, min(ready_since)) if was_ready else newer[0].created

    def view(self, revision: Revision, mode: str) -> dict[str, Any]:
        """The revision as GET returns it."""
        now = self.clock.now
        active = self._active(revision, mode)
        serving = self.latest_ready(revision.app)
        if active:
            provisioning, running, health = revision.state(now)
        else:
            provisioning, running, health = "Deprovisioned", "Stopped", "None"
        properties: dict[str, Any] = {
            "createdTime": self.clock.stamp(revision.created),
            "fqdn": f"{revision.name}.{self.domain}",
            "template": copy.deepcopy(revision.template),
            "active": active,
            "replicas": self._running_replicas(revision) if active and running not in (
                "Processing", "Activating", "Failed", "Degraded") else 0,
            "trafficWeight": 100 if revision is serving else 0,
            "healthState": health,
            "provisioningState": provisioning,
            "runningState": running,
        }
        properties["lastActiveTime"] = self.clock.stamp(now if active else self._deactivated(revision))
        if provisioning == "Failed":
            properties["provisioningError"] = revision.provisioning_error()
        return {"id": f"{self.apps_id}/{revision.app}/revisions/{revision.name}", "name": revision.name,
                "type": "Microsoft.App/containerApps/revisions", "properties": properties}

    def replicas(self, revision: Revision, mode: str) -> list[dict[str, Any]]:
        """The revision's replicas as the replicas listing returns them."""
        if not self._active(revision, mode):
            return []
        now = self.clock.now
        provisioning, running, _ = revision.state(now)
        if provisioning != "Provisioned":
            return []
        count = 1 if running in ("Activating", "Degraded") else self._running_replicas(revision)
        restarts = revision.restarts(now)
        if running == "Activating":
            replica_state, container_state, details = "NotRunning", "Waiting", "ContainerCreating"
        elif running == "Degraded":
            replica_state, container_state = "NotRunning", "Waiting"
            # kubelet's wording of a container in CrashLoopBackOff (its back-off doubles up to 5 min)
            details = f"back-off {min(300, 10 * 2 ** min(restarts, 5))}s restarting failed container"
        else:
            replica_state, container_state, details = "Running", "Running", ""
        pod = hashlib.sha256(revision.name.encode()).hexdigest()
        listed = []
        for index in range(count):
            name = f"{revision.name}-{pod[:9]}-{pod[9 + index * 5:14 + index * 5]}"
            containers = [_container(str(c.get("name")), name, self.domain, restarts, container_state, details)
                          for c in revision.template.get("containers") or []]
            listed.append({
                "id": f"{self.apps_id}/{revision.app}/revisions/{revision.name}/replicas/{name}",
                "name": name,
                "type": "Microsoft.App/containerApps/revisions/replicas",
                "properties": {"createdTime": self.clock.stamp(revision.created + PROVISIONING_SECONDS),
                               "runningState": replica_state, "runningStateDetails": details,
                               "containers": containers, "initContainers": []},
            })
        return listed

    @staticmethod
    def _running_replicas(revision: Revision) -> int:
        return max(1, int((revision.template.get("scale") or {}).get("minReplicas") or 0))


def _container(container: str, replica: str, domain: str, restarts: int, state: str, details: str) -> dict[str, Any]:
    """One container of a replica, as the replicas listing reports it."""
    return {
        "name": container,
        "containerId": f"containerd://{hashlib.sha256(f'{replica}/{container}'.encode()).hexdigest()}",
        "ready": state == "Running",
        "started": state == "Running",
        "restartCount": restarts,
        "runningState": state,
        "runningStateDetails": details,
        "logStreamEndpoint": f"https://{domain}/logstream/{replica}/{container}",
        "execEndpoint": f"https://{domain}/exec/{replica}/{container}",
    }
