"""The local builder's image: the packed context as its one layer, a config and a manifest from the Dockerfile.

The image holds exactly one filesystem layer, the packed build context; Dockerfile instructions shape the
config and the history but are not executed (no RUN, no base image pull). Digests are real sha256 of
canonical bytes, so identical inputs give the identical manifest digest, which is what a release record
stores. What the build tells the operator on the way is :mod:`.narration`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orbit_ops.backends.local.blobs import DIGEST_RE, Descriptor, LayerInput, ingest_layer, put_blob
from orbit_ops.backends.local.dockerfile.evaluate import ImageSettings, image_settings
from orbit_ops.backends.local.dockerfile.model import SCRATCH, Dockerfile
from orbit_ops.backends.local.narration import BuildNarration
from orbit_ops.backends.local.oci import (
    ANNOTATION_BASE_DIGEST,
    ANNOTATION_BASE_NAME,
    ANNOTATION_CREATED,
    ARCHITECTURE,
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_LAYER,
    MEDIA_TYPE_MANIFEST,
    OS,
    canonical_json,
    prepare_layout,
    tag_manifest,
)
from orbit_ops.errors import InputError

# Label keys copied onto the manifest as annotations, so registries show them without the config.
_LABELS_AS_ANNOTATIONS = (
    "org.opencontainers.image.revision",
    "org.opencontainers.image.version",
    "org.opencontainers.image.source",
)
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ImageResult:
    """What a build wrote. ``manifest_digest`` is the image digest a release record stores."""

    manifest_digest: str
    config_digest: str
    layer_digest: str
    size: int  # manifest size in bytes
    tags: tuple[str, ...]


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
    _check_inputs(layer, created, tags)
    settings = image_settings(dockerfile, build_args=build_args)
    when = _rfc3339(created)
    merged_labels = {**settings.labels, **labels}
    merged_labels.setdefault(ANNOTATION_CREATED, when)

    narration = BuildNarration(log)
    narration.steps(dockerfile, build_args)
    blobs = prepare_layout(layout_dir)

    ingest_layer(blobs, layer)
    narration.layer(layer)

    config = _config_document(settings, merged_labels, when, layer, _history(dockerfile, when, layer, build_args))
    config_bytes = canonical_json(config)
    config_digest = put_blob(blobs, config_bytes)
    narration.blob("config", config_digest, len(config_bytes))

    manifest = _manifest_document(settings, merged_labels, when, layer, config_digest, len(config_bytes))
    manifest_bytes = canonical_json(manifest)
    manifest_digest = put_blob(blobs, manifest_bytes)
    narration.blob("manifest", manifest_digest, len(manifest_bytes))

    tag_manifest(layout_dir, Descriptor(MEDIA_TYPE_MANIFEST, manifest_digest, len(manifest_bytes)), tags)
    narration.tagged(repository or layout_dir.name, tags)
    return ImageResult(
        manifest_digest=manifest_digest,
        config_digest=config_digest,
        layer_digest=layer.digest,
        size=len(manifest_bytes),
        tags=tuple(tags),
    )


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
        if not DIGEST_RE.match(digest):
            raise InputError(f"layer {what} {digest!r} is not sha256:<64 lowercase hex digits>")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
