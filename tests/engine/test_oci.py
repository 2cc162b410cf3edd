"""The local builder's OCI image layout: blobs, config, manifest, tags, concurrency and verification."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import orbit_ops
from orbit_ops import fsutil
from orbit_ops.backends.local.blobs import LayerInput
from orbit_ops.backends.local.dockerfile.model import Dockerfile
from orbit_ops.backends.local.dockerfile.read import parse_dockerfile
from orbit_ops.backends.local.image import ImageResult, qualified_reference, write_image
from orbit_ops.backends.local.oci import (
    ANNOTATION_BASE_NAME,
    ANNOTATION_CREATED,
    ANNOTATION_REF_NAME,
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_LAYER,
    MEDIA_TYPE_MANIFEST,
    read_image_config,
    read_index,
    resolve_tag,
    verify_image,
)
from orbit_ops.errors import BackendError, BuildError, InputError, MissingOnPlatformError

CREATED = datetime(2026, 6, 27, 12, 0, 0, tzinfo=UTC)
DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG PY=3.12
FROM python:${PY}-slim AS base
ENV PYTHONUNBUFFERED=1 APP_HOME=/app
WORKDIR $APP_HOME
RUN pip install --no-cache-dir -r requirements.txt
RUN useradd app
COPY . .
LABEL org.opencontainers.image.title=orbit org.opencontainers.image.version=from-dockerfile
USER app
EXPOSE 8080
ENTRYPOINT ["python", "-m", "orbit"]
CMD ["serve"]
"""
LABELS = {
    "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
    "org.opencontainers.image.version": "1.2.0",
    "org.opencontainers.image.source": "https://example.com/platform.git",
    "org.opencontainers.image.created": "2026-06-27T12:00:00Z",
}


def make_layer(folder: Path, files: dict[str, bytes], *, members: int = 1) -> LayerInput:
    """A deterministic tar.gz of ``files`` with its digest, diff_id and size computed independently."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    tar = raw.getvalue()
    cut = len(tar) // members
    pieces = [tar[i * cut : (i + 1) * cut if i < members - 1 else len(tar)] for i in range(members)]
    compressed = b"".join(gzip.compress(piece, mtime=0) for piece in pieces)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"context-{hashlib.sha256(compressed).hexdigest()[:8]}.tar.gz"
    path.write_bytes(compressed)
    return LayerInput(
        path=path,
        digest=f"sha256:{hashlib.sha256(compressed).hexdigest()}",
        diff_id=f"sha256:{hashlib.sha256(tar).hexdigest()}",
        size=len(compressed),
    )


def dockerfile(text: str = DOCKERFILE) -> Dockerfile:
    return parse_dockerfile(text, "apps/orbit/Dockerfile")


def build(
    layout: Path,
    layer: LayerInput,
    tags: list[str],
    *,
    log: list[str] | None = None,
    created: datetime = CREATED,
    labels: dict[str, str] | None = None,
) -> ImageResult:
    lines = log if log is not None else []
    return write_image(
        layout,
        layer=layer,
        dockerfile=dockerfile(),
        labels=LABELS if labels is None else labels,
        created=created,
        tags=tags,
        log=lines.append,
    )


def blob(layout: Path, digest: str) -> bytes:
    algorithm, _, hexdigest = digest.partition(":")
    return (layout / "blobs" / algorithm / hexdigest).read_bytes()


def blob_json(layout: Path, digest: str) -> dict[str, Any]:
    document = json.loads(blob(layout, digest))
    assert isinstance(document, dict)
    return document


def assert_layout_valid(layout: Path) -> None:
    """Walk the layout as an OCI consumer would and check every descriptor against its blob."""
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == MEDIA_TYPE_INDEX

    def check(descriptor: dict[str, Any]) -> bytes:
        data = blob(layout, descriptor["digest"])
        assert f"sha256:{hashlib.sha256(data).hexdigest()}" == descriptor["digest"]
        assert len(data) == descriptor["size"]
        return data

    for entry in index["manifests"]:
        assert entry["mediaType"] == MEDIA_TYPE_MANIFEST
        assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
        manifest = json.loads(check(entry))
        assert manifest["schemaVersion"] == 2
        assert manifest["mediaType"] == MEDIA_TYPE_MANIFEST
        assert manifest["config"]["mediaType"] == MEDIA_TYPE_CONFIG
        config = json.loads(check(manifest["config"]))
        assert [layer["mediaType"] for layer in manifest["layers"]] == [MEDIA_TYPE_LAYER]
        for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
            data = check(layer)
            assert f"sha256:{hashlib.sha256(gzip.decompress(data)).hexdigest()}" == diff_id
        assert config["rootfs"]["type"] == "layers"
        non_empty = [entry for entry in config["history"] if not entry.get("empty_layer", False)]
        assert len(non_empty) == len(manifest["layers"])


def test_written_layout_validates_and_every_blob_hashes_to_its_digest(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "in", {"app.py": b"print('hi')\n", "requirements.txt": b"flask\n"})
    result = build(tmp_path / "registry" / "orbit", layer, ["1.2.0", "latest"])
    layout = tmp_path / "registry" / "orbit"
    assert_layout_valid(layout)
    assert result.layer_digest == layer.digest
    assert result.size == len(blob(layout, result.manifest_digest))
    assert result.manifest_digest == f"sha256:{hashlib.sha256(blob(layout, result.manifest_digest)).hexdigest()}"
    assert blob(layout, layer.digest) == layer.path.read_bytes()
    assert result.tags == ("1.2.0", "latest")


def test_config_carries_dockerfile_settings_and_labels(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "in", {"app.py": b"x"})
    result = build(tmp_path / "orbit", layer, ["1.2.0"])
    config = blob_json(tmp_path / "orbit", result.config_digest)
    assert config["architecture"] == "amd64"
    assert config["os"] == "linux"
    assert config["created"] == "2026-06-27T12:00:00Z"
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id]}
    runtime = config["config"]
    assert runtime["Env"] == ["PYTHONUNBUFFERED=1", "APP_HOME=/app"]
    assert runtime["WorkingDir"] == "/app"
    assert runtime["User"] == "app"
    assert runtime["ExposedPorts"] == {"8080/tcp": {}}
    assert runtime["Entrypoint"] == ["python", "-m", "orbit"]
    assert runtime["Cmd"] == ["serve"]
    assert runtime["Labels"] == {**LABELS, "org.opencontainers.image.title": "orbit"}  # the build's version wins
    assert read_image_config(tmp_path / "orbit", "1.2.0") == config


def test_history_has_one_content_layer_and_records_instructions(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "in", {"a": b"a"})
    result = build(tmp_path / "orbit", layer, ["1.0.0"])
    history = blob_json(tmp_path / "orbit", result.config_digest)["history"]
    assert [entry.get("empty_layer", False) for entry in history].count(False) == 1
    assert layer.digest in history[0]["created_by"]
    recorded = [entry["created_by"] for entry in history[1:]]
    assert recorded[0] == "ENV PYTHONUNBUFFERED=1 APP_HOME=/app"
    assert "RUN pip install --no-cache-dir -r requirements.txt" in recorded
    assert len(recorded) == 10  # the final stage's instructions after FROM
    assert all(entry["created"] == "2026-06-27T12:00:00Z" for entry in history)
    run = next(entry for entry in history if entry["created_by"].startswith("RUN"))
    assert "not executed" in run["comment"]


def test_manifest_annotations(tmp_path: Path) -> None:
    result = build(tmp_path / "orbit", make_layer(tmp_path / "in", {"a": b"a"}), ["1.2.0"])
    manifest = blob_json(tmp_path / "orbit", result.manifest_digest)
    assert manifest["annotations"][ANNOTATION_CREATED] == "2026-06-27T12:00:00Z"
    assert manifest["annotations"][ANNOTATION_BASE_NAME] == "docker.io/library/python:3.12-slim"
    assert manifest["annotations"]["org.opencontainers.image.revision"] == LABELS["org.opencontainers.image.revision"]
    assert manifest["annotations"]["org.opencontainers.image.version"] == "1.2.0"


def test_tags_point_at_the_manifest(tmp_path: Path) -> None:
    layout = tmp_path / "orbit"
    result = build(layout, make_layer(tmp_path / "in", {"a": b"a"}), ["1.2.0", "latest"])
    index = read_index(layout)
    assert set(index) == {"1.2.0", "latest"}
    for tag, descriptor in index.items():
        assert descriptor.digest == result.manifest_digest
        assert descriptor.size == result.size
        assert descriptor.media_type == MEDIA_TYPE_MANIFEST
        assert descriptor.annotations[ANNOTATION_REF_NAME] == tag
    assert resolve_tag(layout, "latest") == result.manifest_digest
    assert resolve_tag(layout, "9.9.9") is None


def test_retagging_latest_moves_it_and_keeps_the_old_version(tmp_path: Path) -> None:
    layout = tmp_path / "orbit"
    first = build(layout, make_layer(tmp_path / "in", {"v": b"1"}), ["1.0.0", "latest"])
    second = build(layout, make_layer(tmp_path / "in", {"v": b"2"}), ["1.1.0", "latest"])
    assert first.manifest_digest != second.manifest_digest
    assert resolve_tag(layout, "1.0.0") == first.manifest_digest
    assert resolve_tag(layout, "1.1.0") == second.manifest_digest
    assert resolve_tag(layout, "latest") == second.manifest_digest
    names = [
        entry["annotations"][ANNOTATION_REF_NAME]
        for entry in json.loads((layout / "index.json").read_text())["manifests"]
    ]
    assert sorted(names) == ["1.0.0", "1.1.0", "latest"]  # one descriptor per tag, the old latest removed
    assert_layout_valid(layout)
    verify_image(layout, "1.0.0")


def test_rebuilding_the_same_inputs_gives_the_same_digest(tmp_path: Path) -> None:
    files = {"app.py": b"print(1)\n", "lib/util.py": b"X = 1\n"}
    one = build(tmp_path / "one", make_layer(tmp_path / "in1", files), ["1.0.0"])
    two = build(tmp_path / "two", make_layer(tmp_path / "in2", files), ["1.0.0", "latest"])
    again = build(tmp_path / "one", make_layer(tmp_path / "in3", files), ["1.0.0"])
    assert one.manifest_digest == two.manifest_digest == again.manifest_digest
    assert one.config_digest == two.config_digest
    later = build(tmp_path / "three", make_layer(tmp_path / "in4", files), ["1.0.0"], created=CREATED + timedelta(1))
    assert later.manifest_digest != one.manifest_digest


def test_created_is_recorded_in_utc(tmp_path: Path) -> None:
    local = CREATED.astimezone(timezone(timedelta(hours=2)))
    result = build(tmp_path / "orbit", make_layer(tmp_path / "in", {"a": b"a"}), ["1.0.0"], created=local, labels={})
    config = blob_json(tmp_path / "orbit", result.config_digest)
    assert config["created"] == "2026-06-27T12:00:00Z"
    assert config["config"]["Labels"][ANNOTATION_CREATED] == "2026-06-27T12:00:00Z"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(
            lambda layer: LayerInput(layer.path, "sha256:" + "0" * 64, layer.diff_id, layer.size),
            "hashes to",
            id="digest",
        ),
        pytest.param(
            lambda layer: LayerInput(layer.path, layer.digest, "sha256:" + "1" * 64, layer.size),
            "uncompresses to",
            id="diff-id",
        ),
        pytest.param(
            lambda layer: LayerInput(layer.path, layer.digest, layer.diff_id, layer.size + 1),
            "bytes, not the expected",
            id="size",
        ),
        pytest.param(
            lambda layer: LayerInput(layer.path.with_name("missing.tar.gz"), layer.digest, layer.diff_id, layer.size),
            "does not exist",
            id="missing-file",
        ),
    ],
)
def test_layer_mismatch_fails_and_leaves_index_unchanged(tmp_path: Path, damage: Any, message: str) -> None:
    layout = tmp_path / "orbit"
    build(layout, make_layer(tmp_path / "in", {"v": b"1"}), ["1.0.0", "latest"])
    before = (layout / "index.json").read_bytes()
    layer = damage(make_layer(tmp_path / "in", {"v": b"2"}))
    with pytest.raises(BuildError, match=message):
        build(layout, layer, ["1.1.0", "latest"])
    assert (layout / "index.json").read_bytes() == before
    leftovers = [p.name for p in (layout / "blobs" / "sha256").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_corrupted_layer_file_is_refused(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "in", {"v": b"1" * 10_000})
    data = bytearray(layer.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.path.write_bytes(bytes(data))
    with pytest.raises(BuildError):
        build(tmp_path / "orbit", layer, ["1.0.0"])
    assert read_index(tmp_path / "orbit") == {}


def test_not_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.tar"
    path.write_bytes(b"not gzip at all")
    digest = f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    with pytest.raises(BuildError, match="cannot be read as gzip"):
        build(tmp_path / "orbit", LayerInput(path, digest, digest, path.stat().st_size), ["1.0.0"])


def test_multi_member_gzip_layer_is_accepted(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "in", {f"f{i}": os.urandom(3000) for i in range(5)}, members=3)
    build(tmp_path / "orbit", layer, ["1.0.0"])
    assert verify_image(tmp_path / "orbit", "1.0.0").layer_digests == (layer.digest,)


def test_large_layer_streams_through(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "in", {"zeros.bin": bytes(8 << 20), "noise.bin": os.urandom(2 << 20)})
    build(tmp_path / "orbit", layer, ["1.0.0"])
    assert verify_image(tmp_path / "orbit", "1.0.0").bytes_checked > layer.size


def test_concurrent_threads_keep_every_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = tmp_path / "orbit"
    real_write = fsutil.atomic_write_bytes

    def slow_index_write(path: Path, data: bytes) -> None:
        # Widen the read-modify-write window so a missing lock would lose tags every time.
        if path.name == "index.json":
            time.sleep(0.02)
        real_write(path, data)

    monkeypatch.setattr("orbit_ops.backends.local.oci.atomic_write_bytes", slow_index_write)
    layers = [make_layer(tmp_path / f"in{i}", {"v": str(i).encode()}) for i in range(8)]
    results: dict[str, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(layers))

    def worker(number: int) -> None:
        try:
            start.wait()
            results[f"1.{number}.0"] = build(layout, layers[number], [f"1.{number}.0"]).manifest_digest
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(layers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {tag: d.digest for tag, d in read_index(layout).items()} == results
    assert_layout_valid(layout)


PROCESS_SCRIPT = """
import json, sys
from datetime import datetime
from pathlib import Path
from orbit_ops.backends.local.dockerfile.read import parse_dockerfile
from orbit_ops.backends.local.blobs import LayerInput
from orbit_ops.backends.local.image import write_image

layout, path, digest, diff_id, size, tag, created = sys.argv[1:]
result = write_image(
    Path(layout),
    layer=LayerInput(Path(path), digest, diff_id, int(size)),
    dockerfile=parse_dockerfile("FROM scratch\\nCOPY . /\\n", "Dockerfile"),
    labels={},
    created=datetime.fromisoformat(created),
    tags=[tag],
    log=lambda line: None,
)
print(result.manifest_digest)
"""


def test_concurrent_processes_keep_every_tag(tmp_path: Path) -> None:
    layout = tmp_path / "orbit"
    root = str(Path(orbit_ops.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    children: dict[str, subprocess.Popen[str]] = {}
    for number in range(6):
        layer = make_layer(tmp_path / f"in{number}", {"v": str(number).encode()})
        tag = f"2.{number}.0"
        argv = [str(layout), str(layer.path), layer.digest, layer.diff_id, str(layer.size), tag, CREATED.isoformat()]
        children[tag] = subprocess.Popen(
            [sys.executable, "-c", PROCESS_SCRIPT, *argv], env=env, stdout=subprocess.PIPE, text=True
        )
    digests = {}
    for tag, child in children.items():
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        digests[tag] = out.strip()
    assert {tag: d.digest for tag, d in read_index(layout).items()} == digests
    assert_layout_valid(layout)


def test_log_reports_real_steps_digests_and_tags(tmp_path: Path) -> None:
    lines: list[str] = []
    layer = make_layer(tmp_path / "in", {"a": b"a"})
    result = build(tmp_path / "orbit", layer, ["1.2.0", "latest"], log=lines)
    steps = [line for line in lines if line.startswith("Step ")]
    assert steps[0] == "Step 1/12 : ARG PY=3.12"
    assert steps[2] == "Step 3/12 : ENV PYTHONUNBUFFERED=1 APP_HOME=/app"
    assert len(steps) == 12
    notes = [line for line in lines if "not executed" in line]
    assert len(notes) == 2
    assert "runs no commands" in notes[0]  # explained once, then abbreviated
    assert any("not pulled" in line for line in lines)
    assert f"layer {layer.digest} ({layer.size} bytes, diff_id {layer.diff_id})" in lines
    assert any(line.startswith(f"config {result.config_digest}") for line in lines)
    assert any(line.startswith(f"manifest {result.manifest_digest}") for line in lines)
    assert lines[-2:] == ["tagged orbit:1.2.0", "tagged orbit:latest"]


def test_steps_of_stages_outside_the_final_image_are_marked_skipped(tmp_path: Path) -> None:
    lines: list[str] = []
    text = "FROM golang AS build\nRUN go build\nFROM scratch\nCOPY --from=build /app /app\n"
    write_image(
        tmp_path / "mc",
        layer=make_layer(tmp_path / "in", {"a": b"a"}),
        dockerfile=dockerfile(text),
        labels={},
        created=CREATED,
        tags=["1.0.0"],
        log=lines.append,
    )
    assert lines[1] == " ---> skipped: stage build is not part of the final image"
    assert lines[3] == " ---> skipped: stage build is not part of the final image"
    assert lines[5] == " ---> starts from scratch"
    manifest_digest = resolve_tag(tmp_path / "mc", "1.0.0")
    assert manifest_digest is not None
    assert ANNOTATION_BASE_NAME not in blob_json(tmp_path / "mc", manifest_digest)["annotations"]


def test_verify_detects_a_damaged_or_missing_blob(tmp_path: Path) -> None:
    layout = tmp_path / "orbit"
    layer = make_layer(tmp_path / "in", {"a": b"a" * 1000})
    result = build(layout, layer, ["1.0.0"])
    verified = verify_image(layout, "1.0.0")
    assert verified.manifest_digest == result.manifest_digest
    assert verified.config_digest == result.config_digest
    layer_blob = layout / "blobs" / "sha256" / layer.digest.removeprefix("sha256:")
    damaged = bytearray(layer_blob.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    layer_blob.write_bytes(bytes(damaged))
    with pytest.raises(BackendError, match="hashes to"):
        verify_image(layout, "1.0.0")
    layer_blob.unlink()
    with pytest.raises(BackendError, match="missing"):
        verify_image(layout, "1.0.0")
    with pytest.raises(MissingOnPlatformError, match=r"9\.9\.9"):
        verify_image(layout, "9.9.9")


def test_a_rebuild_repairs_a_damaged_blob(tmp_path: Path) -> None:
    layout = tmp_path / "orbit"
    layer = make_layer(tmp_path / "in", {"a": b"a"})
    result = build(layout, layer, ["1.0.0"])
    (layout / "blobs" / "sha256" / result.config_digest.removeprefix("sha256:")).write_bytes(b"{}")
    build(layout, layer, ["1.0.0"])
    verify_image(layout, "1.0.0")


@pytest.mark.parametrize(
    ("tags", "created"),
    [
        pytest.param([], CREATED, id="no-tags"),
        pytest.param(["1.0.0+build.5"], CREATED, id="plus-is-not-a-tag-character"),
        pytest.param([".hidden"], CREATED, id="leading-dot"),
        pytest.param(["1.0.0"], datetime(2026, 1, 1), id="naive-time"),
    ],
)
def test_invalid_input_is_refused_before_writing(tmp_path: Path, tags: list[str], created: datetime) -> None:
    with pytest.raises(InputError):
        build(tmp_path / "orbit", make_layer(tmp_path / "in", {"a": b"a"}), tags, created=created)
    assert not (tmp_path / "orbit").exists()


def test_a_foreign_layout_is_not_overwritten(tmp_path: Path) -> None:
    layout = tmp_path / "orbit"
    layout.mkdir()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(BuildError, match="layout version"):
        build(layout, make_layer(tmp_path / "in", {"a": b"a"}), ["1.0.0"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="not an OCI image layout"):
        build(other, make_layer(tmp_path / "in", {"a": b"a"}), ["1.0.0"])


def test_a_malformed_index_is_reported_not_replaced(tmp_path: Path) -> None:
    layout = tmp_path / "orbit"
    build(layout, make_layer(tmp_path / "in", {"a": b"a"}), ["1.0.0"])
    (layout / "index.json").write_text("{not json")
    with pytest.raises(BuildError, match=r"index\.json"):
        build(layout, make_layer(tmp_path / "in", {"a": b"b"}), ["1.1.0"])
    assert (layout / "index.json").read_text() == "{not json"
    with pytest.raises(BackendError, match=r"index\.json"):
        read_index(layout)


def test_reading_a_layout_that_does_not_exist(tmp_path: Path) -> None:
    assert read_index(tmp_path / "nothing") == {}
    assert resolve_tag(tmp_path / "nothing", "latest") is None
    with pytest.raises(MissingOnPlatformError):
        verify_image(tmp_path / "nothing", "latest")


@pytest.mark.parametrize(
    ("reference", "qualified"),
    [
        ("python:3.12-slim", "docker.io/library/python:3.12-slim"),
        ("python", "docker.io/library/python:latest"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
        ("ghcr.io/acme/app", "ghcr.io/acme/app:latest"),
        ("localhost:5000/app:1", "localhost:5000/app:1"),
        ("mcr.microsoft.com/dotnet/aspnet:8.0", "mcr.microsoft.com/dotnet/aspnet:8.0"),
        ("alpine@sha256:" + "a" * 64, "docker.io/library/alpine@sha256:" + "a" * 64),
        ("alpine:3.20@sha256:" + "a" * 64, "docker.io/library/alpine:3.20@sha256:" + "a" * 64),
        ("${BASE}:1", "${BASE}:1"),
    ],
)
def test_qualified_reference(reference: str, qualified: str) -> None:
    assert qualified_reference(reference) == qualified
