"""Capability Protocols every backend implements, one small interface per capability.

The engine depends on these only; ``backend:`` in orbit.yaml picks the implementation, and only the
workspace (:meth:`orbit_ops.workspace.Workspace.builder` and ``platform``) names a concrete backend. The
local backend is the reference implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from orbit_ops.fleet.health import AppFacts, RevisionFacts
from orbit_ops.fleet.resources import App, Share, Storage

if TYPE_CHECKING:  # the build's packing (tarfile, gzip, .dockerignore) is not imported by commands that do not build
    from orbit_ops.build.context import PackedContext

# Told each page of an app listing as it is read: the page's apps and their states, by name.
AppsRead = Callable[[Mapping[str, App], Mapping[str, AppFacts]], None]


@dataclass(frozen=True)
class BuildRequest:
    """Everything a builder needs to build and push one release from a packed context."""

    component: str
    version: str
    tag: str
    commit: str
    context: PackedContext
    dockerfile: Path  # the Dockerfile inside the worktree (for parsing and the log)
    source: str  # where the code came from, recorded in the image labels
    run_name: str  # unique per build: the operation id


@dataclass(frozen=True)
class BuiltImage:
    """What the builder pushed: the reference, registry and manifest digest, and its run id."""

    image: str
    registry: str
    digest: str
    run_id: str


@dataclass(frozen=True)
class RecordedImage:
    """An image as a release record names it, for its builder to look up in the registry."""

    component: str
    image: str  # ``<registry>/<repository>:<tag>``
    registry: str
    tag: str  # the version's image tag

    @property
    def repository(self) -> str:
        """The repository part of ``image``, else (an image not under ``registry``) the component's name."""
        name = self.image.removeprefix(f"{self.registry}/")
        repository, _, tag = name.rpartition(":")
        return repository if repository and tag and "/" not in tag and name != self.image else self.component


@dataclass(frozen=True)
class HeldImage:
    """What a registry holds under a recorded image's tag now."""

    digest: str | None  # the manifest digest there; None when there is no image (or it was not read)
    damaged: str | None = None  # the image is there but does not verify: why
    unchecked: str | None = None  # the registry was not asked: why


REQUIRED_ENV_LABEL = "org.orbit.env.required"  # an image config label: the env variables it cannot start without


def required_env(labels: Mapping[str, str]) -> list[str]:
    """The variables an image's labels declare it requires (``org.orbit.env.required``), in order, once each."""
    declared = labels.get(REQUIRED_ENV_LABEL, "")
    return [name for name in dict.fromkeys(part.strip() for part in declared.split(",")) if name]


@dataclass(frozen=True)
class ImageLabels:
    """The labels of an image's config (``config.Labels``) as its registry holds them now."""

    labels: Mapping[str, str] | None  # None when the config was not read
    unreadable: str | None = None  # why not: no such image, a damaged one, another registry's


class ImageBuilder(Protocol):
    """Builds an image from a packed context and pushes ``:<version>`` and ``:latest``."""

    name: str  # "local" or "acr": the ``builder`` of the release record
    registry: str  # where images go: a login server, or ``oci:.orbit/registry``

    async def build(self, request: BuildRequest, log: Callable[[str], None]) -> BuiltImage:
        """Build and push; stream log lines through ``log`` as they happen.

        Raises:
            BuildError: the build failed (its log says why).
            BackendError: the service could not be reached or refused the request.
        """
        ...

    async def held_images(self, images: Sequence[RecordedImage]) -> dict[RecordedImage, HeldImage]:
        """What this builder's registry holds under each image's tag now, every image of ``images`` answered.

        Raises:
            BackendError: the registry could not be reached or read.
        """
        ...

    async def image_labels(self, images: Sequence[RecordedImage]) -> dict[RecordedImage, ImageLabels]:
        """The config labels of each image of ``images`` as this builder's registry holds it now, every image
        answered (one it holds no config of, with why); each image is read once, however often it is listed.

        Raises:
            BackendError: the registry could not be reached, refused the sign-in or the read.
        """
        ...


class AppPlatform(Protocol):
    """Container apps and environment storages of one environment (Azure: one resource group).

    Listings return managed fields only (see ``orbit_ops.fleet.resources``), keyed by name, and read the
    whole environment in paged calls rather than one call per app. Every create raises
    :class:`~orbit_ops.errors.ResourceExistsError` when the resource exists; every write is one call.

    Health (``orbit_ops.fleet.health``) is read in two steps, so a healthy fleet costs listings only:
    :meth:`list_app_states` gives every app's status fields from the app listing, and only for an app whose
    fields do not show it plainly healthy does the caller read :meth:`list_revisions` (one read per such app).
    Both report the service's values as strings and raise nothing for a value they do not know.
    """

    async def list_apps(self, on_page: AppsRead | None = None) -> dict[str, App]:
        """Every app, by name. A backend that reads them in pages calls ``on_page`` on the event loop with each
        page's apps and their :meth:`list_app_states` as it is read, so that a caller may judge them while the
        rest is awaited; one that reads them at once need not call it. A backend whose listings are work of this
        process rather than waits on a service (the local one) says so with a true ``lists_at_once`` attribute:
        a caller then does nothing beside them that would only slow them (``fleet.status.read_statuses``).

        Raises:
            BackendError: the listing failed (after ``on_page`` may have been told some pages).
        """
        ...

    async def get_app(self, name: str) -> App | None: ...

    async def create_app(self, app: App) -> None: ...

    async def update_app(self, app: App) -> None: ...

    async def list_app_states(self) -> dict[str, AppFacts]:
        """Every app's provisioningState, runningStatus, latestRevisionName and latestReadyRevisionName, keyed by
        name, from the app listing's pages (no read per app). An app it does not report has no known health.

        Raises:
            BackendError: the listing failed.
        """
        ...

    async def list_revisions(self, app: str) -> list[RevisionFacts]:
        """The revisions of app ``app``, newest first (empty when it has none or does not exist).

        Raises:
            BackendError: the read failed.
        """
        ...

    async def list_storages(self) -> dict[str, Storage]: ...

    async def get_storage(self, name: str) -> Storage | None: ...

    async def create_storage(self, storage: Storage) -> None: ...

    async def update_storage(self, storage: Storage) -> None: ...


class ShareStore(Protocol):
    """File shares of the storage account: quota and metadata are the managed fields."""

    async def list_shares(self) -> dict[str, Share]: ...

    async def get_share(self, name: str) -> Share | None: ...

    async def create_share(self, share: Share) -> None: ...

    async def update_share(self, share: Share) -> None: ...
