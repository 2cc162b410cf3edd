"""OCI image layouts: the local builder's registry, one layout per repository.

The local backend has no Docker daemon and no registry server, yet its builds must leave something an
operator (or ``skopeo``, ``crane``, ``oras``) can inspect and verify: a real OCI image layout
(image-spec ``image-layout.md``) with content-addressed blobs (:mod:`.blobs`) and ``index.json``
mapping each tag (``org.opencontainers.image.ref.name``) to a manifest. What goes into an image is
:mod:`.image`; this module keeps the layout itself: its marker, its index and the reading and
verifying of what a tag points at.

Blobs are written before ``index.json`` changes and are content-addressed, so they need no lock; the
read-modify-write of ``index.json`` happens under a file lock and lands by atomic rename, so
concurrent builds into one repository keep each other's tags and readers never see a torn file.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from orbit_ops.backends.local.blobs import DIGEST_RE, Descriptor, blob_path, read_json_blob, verify_blob
from orbit_ops.errors import BackendError, BuildError, MissingOnPlatformError
from orbit_ops.fsutil import atomic_write_bytes

MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"

ARCHITECTURE = "amd64"
OS = "linux"
LAYOUT_VERSION = "1.0.0"
LOCK_NAME = "index.json.lock"
LOCK_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class LocalRegistry:
    """The local registry: its name in image references (``oci:.orbit/registry``) and its folder, which holds
    one layout per repository (``<root>/<component>/``)."""

    name: str
    root: Path

    def layout(self, repository: str) -> Path:
        return self.root / repository


@dataclass(frozen=True)
class VerifiedImage:
    """A tag whose manifest, config and layers were re-read and re-hashed successfully."""

    tag: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]
    bytes_checked: int


def read_index(layout_dir: Path) -> dict[str, Descriptor]:
    """Map each tag in the layout's ``index.json`` to its manifest descriptor.

    A layout that does not exist yet has no tags. Descriptors without a ref name are skipped.

    Raises:
        BackendError: ``index.json`` exists but is malformed.
    """
    if not (layout_dir / "index.json").exists():
        return {}
    document = _load_index(layout_dir, BackendError)
    tags: dict[str, Descriptor] = {}
    for entry in document["manifests"]:
        descriptor = _descriptor(entry, layout_dir / "index.json", BackendError)
        name = descriptor.annotations.get(ANNOTATION_REF_NAME)
        if name is not None:
            tags[name] = descriptor
    return tags


def resolve_tag(layout_dir: Path, tag: str) -> str | None:
    """The manifest digest ``tag`` points at, or None when the tag does not exist.

    Raises:
        BackendError: ``index.json`` exists but is malformed.
    """
    descriptor = read_index(layout_dir).get(tag)
    return descriptor.digest if descriptor else None


def read_image_config(layout_dir: Path, tag: str) -> dict[str, Any]:
    """The image config (the JSON document) of the image ``tag`` points at.

    Raises:
        MissingOnPlatformError: the tag does not exist (the registry does not hold it).
        BackendError: a blob is missing or not JSON, or ``index.json`` is malformed.
    """
    descriptor = _tagged(layout_dir, tag)
    manifest = read_json_blob(layout_dir, descriptor.digest)
    config = _descriptor(manifest.get("config"), blob_path(layout_dir, descriptor.digest), BackendError)
    return read_json_blob(layout_dir, config.digest)


def config_labels(config: Mapping[str, Any]) -> dict[str, str]:
    """The labels of an image config document (``config.Labels``; none when it has none)."""
    runtime = config.get("config")
    labels = runtime.get("Labels") if isinstance(runtime, Mapping) else None
    return {str(key): str(value) for key, value in labels.items()} if isinstance(labels, Mapping) else {}


def verify_image(layout_dir: Path, tag: str) -> VerifiedImage:
    """Re-hash every blob of the image ``tag`` points at: manifest, config, layers (and diff_ids).

    Raises:
        MissingOnPlatformError: the tag does not exist (the registry does not hold it).
        BackendError: a blob is missing, has the wrong size or digest, a layer's uncompressed content
            does not match the config's diff_id, or a document is malformed.
    """
    descriptor = _tagged(layout_dir, tag)
    checked = verify_blob(layout_dir, descriptor)
    manifest = read_json_blob(layout_dir, descriptor.digest)
    manifest_path = blob_path(layout_dir, descriptor.digest)
    if manifest.get("mediaType", MEDIA_TYPE_MANIFEST) != MEDIA_TYPE_MANIFEST or manifest.get("schemaVersion") != 2:
        raise BackendError(f"{manifest_path}: not an OCI image manifest (schemaVersion 2)")
    config = _descriptor(manifest.get("config"), manifest_path, BackendError)
    checked += verify_blob(layout_dir, config)
    layers_json = manifest.get("layers")
    if not isinstance(layers_json, list):
        raise BackendError(f"{manifest_path}: manifest has no layers list")
    layers = [_descriptor(entry, manifest_path, BackendError) for entry in layers_json]
    config_document = read_json_blob(layout_dir, config.digest)
    rootfs = config_document.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise BackendError(f"{blob_path(layout_dir, config.digest)}: rootfs.diff_ids does not match the layers")
    for layer, diff_id in zip(layers, diff_ids, strict=True):
        checked += verify_blob(layout_dir, layer, diff_id=str(diff_id))
    return VerifiedImage(
        tag=tag,
        manifest_digest=descriptor.digest,
        config_digest=config.digest,
        layer_digests=tuple(layer.digest for layer in layers),
        bytes_checked=checked,
    )


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """JSON with sorted keys and no insignificant whitespace: equal documents, equal bytes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def prepare_layout(layout_dir: Path) -> Path:
    """Create the layout if needed, or check the existing one; return the sha256 blob folder."""
    marker = layout_dir / "oci-layout"
    layout_dir.mkdir(parents=True, exist_ok=True)
    # Under the lock, so a concurrent build creating this layout is never mistaken for foreign content.
    with _index_lock(layout_dir):
        if marker.exists():
            try:
                version = json.loads(marker.read_text(encoding="utf-8")).get("imageLayoutVersion")
            except (OSError, ValueError, AttributeError) as exc:
                raise BuildError(f"{marker}: not an OCI layout marker ({exc})") from exc
            if version != LAYOUT_VERSION:
                raise BuildError(f"{marker}: image layout version {version!r}, expected {LAYOUT_VERSION!r}")
        else:
            ours = {LOCK_NAME}
            if any(p.name not in ours and not p.name.startswith(".oci-layout.") for p in layout_dir.iterdir()):
                raise BuildError(f"{layout_dir}: exists, is not empty and is not an OCI image layout")
            atomic_write_bytes(marker, canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
        if (layout_dir / "index.json").exists():
            # Checked before any blob is written, so a broken layout fails the build early.
            _load_index(layout_dir, BuildError)
    blobs = layout_dir / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    return blobs


@contextlib.contextmanager
def _index_lock(layout_dir: Path) -> Iterator[None]:
    """Hold the repository's cross-process lock (also excludes other threads: one fd per holder)."""
    lock = FileLock(layout_dir / LOCK_NAME, timeout=LOCK_TIMEOUT_SECONDS)
    try:
        lock.acquire()
    except Timeout as exc:
        raise BuildError(
            f"{layout_dir}: another build has held the repository lock for {LOCK_TIMEOUT_SECONDS:.0f} s"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def tag_manifest(layout_dir: Path, manifest: Descriptor, tags: Sequence[str]) -> None:
    """Point each tag at ``manifest`` in ``index.json``: locked read-modify-write, atomic replace."""
    index_path = layout_dir / "index.json"
    with _index_lock(layout_dir):
        if index_path.exists():
            document = _load_index(layout_dir, BuildError)
        else:
            document = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": []}
        moving = set(tags)
        kept = [
            entry for entry in document["manifests"] if not (isinstance(entry, dict) and _ref_name(entry) in moving)
        ]
        for tag in dict.fromkeys(tags):
            platform = {"architecture": ARCHITECTURE, "os": OS}
            entry = Descriptor(manifest.media_type, manifest.digest, manifest.size, {ANNOTATION_REF_NAME: tag})
            kept.append({**entry.to_json(), "platform": platform})
        document["manifests"] = kept
        text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        atomic_write_bytes(index_path, text.encode("utf-8"))


def _ref_name(entry: Mapping[str, Any]) -> str | None:
    annotations = entry.get("annotations")
    if isinstance(annotations, dict):
        name = annotations.get(ANNOTATION_REF_NAME)
        return name if isinstance(name, str) else None
    return None


def _load_index(layout_dir: Path, error: type[BuildError] | type[BackendError]) -> dict[str, Any]:
    path = layout_dir / "index.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise error(f"{path}: cannot be read as JSON ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
        raise error(f"{path}: not an OCI image index (no manifests list)")
    return document


def _descriptor(entry: object, source: Path, error: type[BuildError] | type[BackendError]) -> Descriptor:
    if not isinstance(entry, dict):
        raise error(f"{source}: a descriptor is not a JSON object")
    media_type, digest, size = entry.get("mediaType"), entry.get("digest"), entry.get("size")
    annotations = entry.get("annotations") or {}
    if (
        not isinstance(media_type, str)
        or not isinstance(digest, str)
        or not DIGEST_RE.match(digest)
        or not isinstance(size, int)
        or size < 0
        or not isinstance(annotations, dict)
    ):
        raise error(f"{source}: malformed descriptor {json.dumps(entry, sort_keys=True)}")
    return Descriptor(media_type, digest, size, {str(k): str(v) for k, v in annotations.items()})


def _tagged(layout_dir: Path, tag: str) -> Descriptor:
    descriptor = read_index(layout_dir).get(tag)
    if descriptor is None:
        known = ", ".join(sorted(read_index(layout_dir))) or "none"
        raise MissingOnPlatformError(f"{layout_dir.name}:{tag} does not exist in {layout_dir} (tags: {known})")
    return descriptor
