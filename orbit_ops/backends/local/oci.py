"""OCI image layouts: the local builder's registry, one layout per repository.

The local backend has no Docker daemon and no registry server, yet its builds must leave something an
operator (or ``skopeo``, ``crane``, ``oras``) can inspect and verify: a real OCI image layout
(image-spec ``image-layout.md``) with content-addressed blobs, an image config and a manifest, and
``index.json`` mapping each tag (``org.opencontainers.image.ref.name``) to a manifest. The image holds
exactly one filesystem layer, the packed build context; Dockerfile instructions shape the config and
the history but are not executed (no RUN, no base image pull). Digests are real sha256 of canonical
bytes, so identical inputs give the identical manifest digest, which is what a release record stores.

Blobs are written before ``index.json`` changes and are content-addressed, so they need no lock; the
read-modify-write of ``index.json`` happens under a file lock and lands by atomic rename, so
concurrent builds into one repository keep each other's tags and readers never see a torn file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from orbit_ops.backends.local.dockerfile import SCRATCH, Dockerfile, ImageSettings, Instruction, image_settings
from orbit_ops.errors import BackendError, BuildError, InputError, NotFoundError
from orbit_ops.fsutil import atomic_write_bytes

MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"
# Label keys copied onto the manifest as annotations, so registries show them without the config.
_LABELS_AS_ANNOTATIONS = (
    "org.opencontainers.image.revision",
    "org.opencontainers.image.version",
    "org.opencontainers.image.source",
)

ARCHITECTURE = "amd64"
OS = "linux"
LAYOUT_VERSION = "1.0.0"
LOCK_NAME = "index.json.lock"
LOCK_TIMEOUT_SECONDS = 60.0

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerInput:
    """A gzip-compressed tar layer on disk with the digests its producer computed."""

    path: Path
    digest: str  # sha256 of the compressed bytes
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # compressed size in bytes


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (image-spec ``descriptor.md``)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The descriptor as the JSON object the spec defines."""
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data


@dataclass(frozen=True)
class ImageResult:
    """What a build wrote. ``manifest_digest`` is the image digest a release record stores."""

    manifest_digest: str
    config_digest: str
    layer_digest: str
    size: int  # manifest size in bytes
    tags: tuple[str, ...]


@dataclass(frozen=True)
class VerifiedImage:
    """A tag whose manifest, config and layers were re-read and re-hashed successfully."""

    tag: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]
    bytes_checked: int


def write_image(
    layout_dir: Path,
    *,
    layer: LayerInput,
    dockerfile: Dockerfile,
    labels: Mapping[str, str],
    created: datetime,
    tags: Sequence[str],
    log: Callable[[str], None],
    repository: str | None = None,
    build_args: Mapping[str, str] | None = None,
) -> ImageResult:
    """Write an image (one context layer, config, manifest) into the layout and point ``tags`` at it.

    ``labels`` are merged over the Dockerfile's LABELs; ``created`` (timezone-aware) is the only
    time recorded, so identical inputs yield an identical manifest digest. ``repository`` names the
    repository in the log (default: the layout folder's name). Tags that already exist move.

    Raises:
        InputError: a tag is not a valid tag, ``tags`` is empty, ``created`` is naive, or a digest in
            ``layer`` is not ``sha256:<64 hex>``.
        DockerfileError: the final stage's settings cannot be evaluated.
        BuildError: the layer is missing, is not gzip, or does not match its digest, diff_id or size;
            the layout exists but is not a version 1.0.0 OCI layout or its index.json is malformed;
            another build held the repository lock for too long. ``index.json`` is unchanged then.
    """
    repo = repository or layout_dir.name
    _check_inputs(layer, created, tags)
    settings = image_settings(dockerfile, build_args=build_args)
    when = _rfc3339(created)
    merged_labels = {**settings.labels, **labels}
    merged_labels.setdefault(ANNOTATION_CREATED, when)

    _log_steps(dockerfile, log, build_args)
    blobs = _prepare_layout(layout_dir)

    _ingest_layer(blobs, layer)
    log(f"layer {layer.digest} ({layer.size} bytes, diff_id {layer.diff_id})")

    config = _config_document(settings, merged_labels, when, layer, _history(dockerfile, when, layer, build_args))
    config_bytes = canonical_json(config)
    config_digest = _put_blob(blobs, config_bytes)
    log(f"config {config_digest} ({len(config_bytes)} bytes)")

    manifest = _manifest_document(settings, merged_labels, when, layer, config_digest, len(config_bytes))
    manifest_bytes = canonical_json(manifest)
    manifest_digest = _put_blob(blobs, manifest_bytes)
    log(f"manifest {manifest_digest} ({len(manifest_bytes)} bytes)")

    _tag(layout_dir, Descriptor(MEDIA_TYPE_MANIFEST, manifest_digest, len(manifest_bytes)), tags)
    for tag in tags:
        log(f"tagged {repo}:{tag}")
    return ImageResult(
        manifest_digest=manifest_digest,
        config_digest=config_digest,
        layer_digest=layer.digest,
        size=len(manifest_bytes),
        tags=tuple(tags),
    )


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
        NotFoundError: the tag does not exist.
        BackendError: a blob is missing or not JSON, or ``index.json`` is malformed.
    """
    descriptor = _tagged(layout_dir, tag)
    manifest = _read_json_blob(layout_dir, descriptor.digest)
    config = _descriptor(manifest.get("config"), _blob_path(layout_dir, descriptor.digest), BackendError)
    return _read_json_blob(layout_dir, config.digest)


def verify_image(layout_dir: Path, tag: str) -> VerifiedImage:
    """Re-hash every blob of the image ``tag`` points at: manifest, config, layers (and diff_ids).

    Raises:
        NotFoundError: the tag does not exist.
        BackendError: a blob is missing, has the wrong size or digest, a layer's uncompressed content
            does not match the config's diff_id, or a document is malformed.
    """
    descriptor = _tagged(layout_dir, tag)
    checked = _verify_blob(layout_dir, descriptor)
    manifest = _read_json_blob(layout_dir, descriptor.digest)
    manifest_path = _blob_path(layout_dir, descriptor.digest)
    if manifest.get("mediaType", MEDIA_TYPE_MANIFEST) != MEDIA_TYPE_MANIFEST or manifest.get("schemaVersion") != 2:
        raise BackendError(f"{manifest_path}: not an OCI image manifest (schemaVersion 2)")
    config = _descriptor(manifest.get("config"), manifest_path, BackendError)
    checked += _verify_blob(layout_dir, config)
    layers_json = manifest.get("layers")
    if not isinstance(layers_json, list):
        raise BackendError(f"{manifest_path}: manifest has no layers list")
    layers = [_descriptor(entry, manifest_path, BackendError) for entry in layers_json]
    config_document = _read_json_blob(layout_dir, config.digest)
    rootfs = config_document.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise BackendError(f"{_blob_path(layout_dir, config.digest)}: rootfs.diff_ids does not match the layers")
    for layer, diff_id in zip(layers, diff_ids, strict=True):
        checked += _verify_blob(layout_dir, layer, diff_id=str(diff_id))
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


def qualified_reference(reference: str) -> str:
    """A Docker image reference made fully qualified (``python:3.12`` → ``docker.io/library/python:3.12``).

    References that still hold an unexpanded variable are returned unchanged.
    """
    if "$" in reference:
        return reference
    name, _, digest = reference.partition("@")
    tag = ""
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    text = f"{domain}/{path}"
    if tag or not digest:
        text += f":{tag or 'latest'}"
    if digest:
        text += f"@{digest}"
    return text


def _check_inputs(layer: LayerInput, created: datetime, tags: Sequence[str]) -> None:
    if not tags:
        raise InputError("an image needs at least one tag")
    for tag in tags:
        if not _TAG_RE.match(tag):
            raise InputError(
                f"invalid image tag {tag!r} (rule: a tag is up to 128 letters, digits, '_', '.' and '-', "
                "not starting with '.' or '-')"
            )
    if created.tzinfo is None or created.utcoffset() is None:
        raise InputError("the image creation time must be timezone-aware")
    for what, digest in (("digest", layer.digest), ("diff_id", layer.diff_id)):
        if not _DIGEST_RE.match(digest):
            raise InputError(f"layer {what} {digest!r} is not sha256:<64 lowercase hex digits>")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _blob_path(layout_dir: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout_dir / "blobs" / algorithm / hexdigest


def _prepare_layout(layout_dir: Path) -> Path:
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


def _ingest_layer(blobs: Path, layer: LayerInput) -> None:
    """Copy the layer into the blob store, verifying digest, size and diff_id while streaming."""
    target = blobs / layer.digest.removeprefix("sha256:")
    fd, temp = tempfile.mkstemp(prefix=".ingest-", dir=blobs)
    try:
        compressed = hashlib.sha256()
        tar = _GzipContentHasher()
        size = 0
        try:
            with open(layer.path, "rb") as source, os.fdopen(fd, "wb") as sink:
                while chunk := source.read(_CHUNK):
                    compressed.update(chunk)
                    tar.update(chunk)
                    size += len(chunk)
                    sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
        except FileNotFoundError as exc:
            raise BuildError(f"layer {layer.path} does not exist") from exc
        except OSError as exc:
            raise BuildError(f"layer {layer.path} cannot be read: {exc}") from exc
        digest = f"sha256:{compressed.hexdigest()}"
        if digest != layer.digest:
            raise BuildError(f"layer {layer.path} hashes to {digest}, not the expected {layer.digest}")
        if size != layer.size:
            raise BuildError(f"layer {layer.path} is {size} bytes, not the expected {layer.size}")
        try:
            diff_id = tar.finish()
        except ValueError as exc:
            raise BuildError(f"layer {layer.path} cannot be read as gzip: {exc}") from exc
        if diff_id != layer.diff_id:
            raise BuildError(f"layer {layer.path} uncompresses to {diff_id}, not the expected {layer.diff_id}")
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _put_blob(blobs: Path, data: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    target = blobs / digest.removeprefix("sha256:")
    # Content addressing makes an intact existing blob identical; a damaged one is replaced.
    if not (target.exists() and _file_digest(target) == digest):
        atomic_write_bytes(target, data)
    return digest


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


class _GzipContentHasher:
    """sha256 of the uncompressed content of a (possibly multi-member) gzip stream, fed in chunks.

    Output is drained in bounded pieces, so a highly compressible layer cannot balloon memory. A
    decoding error is kept for ``finish`` rather than raised, so callers can first report the more
    telling digest mismatch of a damaged file.
    """

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._inflater = zlib.decompressobj(wbits=31)
        self._pending = False  # the current member has started but not reached its end
        self._members = 0
        self._error: str | None = None

    def update(self, data: bytes) -> None:
        if self._error is not None:
            return
        try:
            while data:
                self._pending = True
                self._digest.update(self._inflater.decompress(data, _CHUNK))
                if self._inflater.eof:
                    self._members += 1
                    self._pending = False
                    data = self._inflater.unused_data
                    self._inflater = zlib.decompressobj(wbits=31)
                else:
                    # Output held back by the size cap comes out on the next call or in finish().
                    data = self._inflater.unconsumed_tail
        except zlib.error as exc:
            self._error = str(exc)

    def finish(self) -> str:
        """The uncompressed content's digest.

        Raises:
            ValueError: the stream is not gzip, is damaged, truncated or empty.
        """
        if self._error is None:
            try:
                self._digest.update(self._inflater.flush())
            except zlib.error as exc:
                self._error = str(exc)
        if self._error is None:
            if self._inflater.eof:
                self._members += 1
            elif self._pending:
                self._error = "the gzip stream is truncated"
            if self._members == 0:
                self._error = "the file holds no gzip data"
        if self._error is not None:
            raise ValueError(self._error)
        return f"sha256:{self._digest.hexdigest()}"


def _config_document(
    settings: ImageSettings, labels: Mapping[str, str], when: str, layer: LayerInput, history: list[dict[str, Any]]
) -> dict[str, Any]:
    runtime: dict[str, Any] = {}
    if settings.env:
        runtime["Env"] = [f"{key}={value}" for key, value in settings.env.items()]
    if settings.entrypoint is not None:
        runtime["Entrypoint"] = list(settings.entrypoint)
    if settings.cmd is not None:
        runtime["Cmd"] = list(settings.cmd)
    if settings.working_dir:
        runtime["WorkingDir"] = settings.working_dir
    if settings.user:
        runtime["User"] = settings.user
    if settings.exposed_ports:
        runtime["ExposedPorts"] = {port: {} for port in settings.exposed_ports}
    if settings.volumes:
        runtime["Volumes"] = {volume: {} for volume in settings.volumes}
    if settings.stop_signal:
        runtime["StopSignal"] = settings.stop_signal
    if labels:
        runtime["Labels"] = dict(labels)
    document: dict[str, Any] = {
        "created": when,
        "architecture": ARCHITECTURE,
        "os": OS,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": history,
    }
    if settings.author:
        document["author"] = settings.author
    return document


def _history(
    dockerfile: Dockerfile, when: str, layer: LayerInput, build_args: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """One entry for the context layer, then one per instruction of the stages the image is built from."""
    entries: list[dict[str, Any]] = [
        {
            "created": when,
            "created_by": f"orbit local builder: build context {layer.digest}",
            "comment": "the packed build context is the image's only filesystem layer",
        }
    ]
    for stage in dockerfile.final_chain(build_args):
        for instruction in stage.instructions[1:]:
            entry: dict[str, Any] = {
                "created": when,
                "created_by": f"{instruction.keyword} {instruction.args}".rstrip(),
                "empty_layer": True,
            }
            if instruction.keyword == "RUN":
                entry["comment"] = "recorded by the orbit local builder, not executed"
            elif instruction.keyword in ("COPY", "ADD"):
                entry["comment"] = "content provided by the build-context layer"
            entries.append(entry)
    return entries


def _manifest_document(
    settings: ImageSettings,
    labels: Mapping[str, str],
    when: str,
    layer: LayerInput,
    config_digest: str,
    config_size: int,
) -> dict[str, Any]:
    annotations = {ANNOTATION_CREATED: when}
    if settings.base_image.lower() != SCRATCH:
        base = qualified_reference(settings.base_image)
        annotations[ANNOTATION_BASE_NAME] = base
        _, _, pinned = base.partition("@")
        if pinned:
            annotations[ANNOTATION_BASE_DIGEST] = pinned
    for key in _LABELS_AS_ANNOTATIONS:
        if key in labels:
            annotations[key] = labels[key]
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": Descriptor(MEDIA_TYPE_CONFIG, config_digest, config_size).to_json(),
        "layers": [Descriptor(MEDIA_TYPE_LAYER, layer.digest, layer.size).to_json()],
        "annotations": annotations,
    }


def _tag(layout_dir: Path, manifest: Descriptor, tags: Sequence[str]) -> None:
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
        or not _DIGEST_RE.match(digest)
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
        raise NotFoundError(f"{layout_dir.name}:{tag} does not exist in {layout_dir} (tags: {known})")
    return descriptor


def _read_json_blob(layout_dir: Path, digest: str) -> dict[str, Any]:
    path = _blob_path(layout_dir, digest)
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise BackendError(f"blob {digest} is missing from {layout_dir}") from exc
    except (OSError, ValueError) as exc:
        raise BackendError(f"{path}: cannot be read as JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise BackendError(f"{path}: not a JSON object")
    return document


def _verify_blob(layout_dir: Path, descriptor: Descriptor, *, diff_id: str | None = None) -> int:
    path = _blob_path(layout_dir, descriptor.digest)
    digest = hashlib.sha256()
    content = _GzipContentHasher() if diff_id is not None else None
    size = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if content is not None:
                    content.update(chunk)
    except FileNotFoundError as exc:
        raise BackendError(f"blob {descriptor.digest} is missing from {layout_dir}") from exc
    except OSError as exc:
        raise BackendError(f"{path}: cannot be read ({exc})") from exc
    actual = f"sha256:{digest.hexdigest()}"
    if actual != descriptor.digest:
        raise BackendError(f"{path}: content hashes to {actual}, not {descriptor.digest}")
    if size != descriptor.size:
        raise BackendError(f"{path}: {size} bytes, but its descriptor says {descriptor.size}")
    if content is not None:
        try:
            actual_diff_id = content.finish()
        except ValueError as exc:
            raise BackendError(f"{path}: cannot be read as gzip ({exc})") from exc
        if actual_diff_id != diff_id:
            raise BackendError(f"{path}: uncompressed content hashes to {actual_diff_id}, not diff_id {diff_id}")
    return size


def _log_steps(dockerfile: Dockerfile, log: Callable[[str], None], build_args: Mapping[str, str] | None) -> None:
    """Log each instruction as ``Step i/n`` with what the local builder did with it."""
    chain = {stage.index for stage in dockerfile.final_chain(build_args)}
    bases = dockerfile.base_images(build_args)
    stage_of = {id(instruction): stage for stage in dockerfile.stages for instruction in stage.instructions}
    total = len(dockerfile.instructions)
    explained: set[str] = set()
    for number, instruction in enumerate(dockerfile.instructions, start=1):
        log(f"Step {number}/{total} : {_display(instruction)}")
        stage = stage_of.get(id(instruction))
        if stage is None:
            note = "build argument for FROM lines"
        elif stage.index not in chain:
            label = stage.name or f"#{stage.index}"
            note = f"skipped: stage {label} is not part of the final image"
        elif instruction.keyword == "FROM":
            parent = dockerfile.parent_stage(stage, build_args)
            if parent is not None:
                note = f"continues from stage {parent.name}"
            elif bases[stage.index].lower() == SCRATCH:
                note = "starts from scratch"
            else:
                note = _once(
                    explained,
                    "FROM",
                    f"base image {bases[stage.index]} recorded as {ANNOTATION_BASE_NAME}, not pulled: "
                    "the local builder writes only the build-context layer",
                    f"base image {bases[stage.index]} recorded, not pulled",
                )
        else:
            note = _note(instruction, explained)
        log(f" ---> {note}")


def _note(instruction: Instruction, explained: set[str]) -> str:
    keyword = instruction.keyword
    if keyword == "RUN":
        return _once(
            explained,
            "RUN",
            "not executed: the local builder runs no commands; RUN is recorded in the image history",
            "recorded in history, not executed",
        )
    if keyword in ("COPY", "ADD"):
        return _once(
            explained,
            "COPY",
            "not copied file by file: the whole packed build context is the image's single layer",
            "provided by the build-context layer",
        )
    if keyword == "ARG":
        return "build argument (not stored in the image)"
    if keyword in ("HEALTHCHECK", "ONBUILD"):
        return "recorded in history; the OCI image config has no field for it"
    return "applied to the image config"


def _once(explained: set[str], key: str, first: str, later: str) -> str:
    if key in explained:
        return later
    explained.add(key)
    return first


def _display(instruction: Instruction) -> str:
    if not instruction.heredocs:
        return instruction.text
    lines = sum(doc.content.count("\n") for doc in instruction.heredocs)
    names = ", ".join(doc.name for doc in instruction.heredocs)
    return f"{instruction.text}  (heredoc {names}: {lines} lines)"
