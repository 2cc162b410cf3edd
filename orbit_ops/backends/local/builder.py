"""The embedded local backend: a real OCI image layout per repository under ``.orbit/registry``.

No Docker runs here: the local builder writes the packed context as the image's one layer, derives
the image config from the Dockerfile (ENV, CMD, LABEL...; RUN steps are recorded in the history,
not executed, and the log says so) and tags the manifest ``:<version>`` and ``:latest``. What it
writes is a valid OCI layout that ``skopeo``/``oras`` can read, with real sha256 digests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from orbit_ops.backends.base import BuildRequest, BuiltImage, HeldImage, ImageLabels, RecordedImage
from orbit_ops.backends.local.blobs import LayerInput
from orbit_ops.backends.local.dockerfile.read import parse_dockerfile
from orbit_ops.backends.local.image import write_image
from orbit_ops.backends.local.oci import LocalRegistry, config_labels, read_image_config, verify_image
from orbit_ops.errors import BackendError, BuildError, MissingOnPlatformError
from orbit_ops.statedir import make_private_dir
from orbit_ops.versions import image_tag

REGISTRY_DIR = "registry"


class LocalBuilder:
    """Builds into ``<state_dir>/registry/<component>/`` (an OCI image layout)."""

    name = "local"

    def __init__(self, state_dir: Path) -> None:
        self.local_registry = LocalRegistry(f"oci:{state_dir.name}/{REGISTRY_DIR}", state_dir / REGISTRY_DIR)
        self.root = self.local_registry.root
        self.registry = self.local_registry.name

    def layout(self, component: str) -> Path:
        return self.root / component

    async def held_images(self, images: Sequence[RecordedImage]) -> dict[RecordedImage, HeldImage]:
        """What each image's layout holds under its tag, every blob of it re-hashed (a damaged image says why).

        The layout is the component's, whatever the record's image reference says. Runs in a thread.
        """
        return await asyncio.to_thread(lambda: {image: self._held(image) for image in images})

    def _held(self, image: RecordedImage) -> HeldImage:
        try:
            verified = verify_image(self.layout(image.component), image.tag)
        except MissingOnPlatformError:
            return HeldImage(None)
        except BackendError as exc:
            return HeldImage(None, damaged=str(exc))
        return HeldImage(verified.manifest_digest)

    async def image_labels(self, images: Sequence[RecordedImage]) -> dict[RecordedImage, ImageLabels]:
        """The config labels of each image (read once each) from its component's layout. Runs in a thread."""
        return await asyncio.to_thread(lambda: {image: self._labels(image) for image in dict.fromkeys(images)})

    def _labels(self, image: RecordedImage) -> ImageLabels:
        if image.registry != self.registry:
            return ImageLabels(None, f"not an image of the local registry {self.registry}")
        try:
            config = read_image_config(self.layout(image.component), image.tag)
        except MissingOnPlatformError:
            return ImageLabels(None, "not in the local registry")
        except BackendError as exc:
            return ImageLabels(None, str(exc))
        return ImageLabels(config_labels(config))

    async def build(self, request: BuildRequest, log: Callable[[str], None]) -> BuiltImage:
        """Write the image and its tags; runs the file work in a thread so the caller stays live.

        Raises:
            BuildError: the Dockerfile is invalid or the layout cannot be written.
        """
        return await asyncio.to_thread(self._build, request, log)

    def _build(self, request: BuildRequest, log: Callable[[str], None]) -> BuiltImage:
        try:
            text = request.dockerfile.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildError(f"cannot read {request.dockerfile.name}: {exc}") from None
        try:
            make_private_dir(self.root)
        except OSError as exc:
            raise BuildError(f"cannot write the local registry {self.root}: {exc.strerror or exc}") from None
        dockerfile = parse_dockerfile(text, request.context.dockerfile_in_archive)
        created = datetime.now(UTC).replace(microsecond=0)
        packed = request.context
        result = write_image(
            self.layout(request.component),
            layer=LayerInput(path=packed.path, digest=packed.digest, diff_id=packed.diff_id, size=packed.size),
            dockerfile=dockerfile,
            labels={
                "org.opencontainers.image.revision": request.commit,
                "org.opencontainers.image.version": request.version,
                "org.opencontainers.image.source": request.source,
                "org.opencontainers.image.created": created.isoformat().replace("+00:00", "Z"),
                "org.opencontainers.image.ref.name": request.tag,
            },
            created=created,
            tags=[image_tag(request.version), "latest"],
            log=log,
            repository=f"{self.registry}/{request.component}",
        )
        return BuiltImage(
            image=f"{self.registry}/{request.component}:{image_tag(request.version)}",
            registry=self.registry,
            digest=result.manifest_digest,
            run_id=f"local-{request.run_name}",
        )
