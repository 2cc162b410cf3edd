"""The blob store of an OCI image layout: content-addressed files under ``blobs/sha256/``, written and re-hashed.

A blob is named by the sha256 of its bytes, so writing one needs no lock and an intact existing blob is
the same blob; a layer is copied in while its digest, size and uncompressed diff_id are checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orbit_ops.errors import BackendError, BuildError
from orbit_ops.fsutil import atomic_write_bytes

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
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


def blob_path(layout_dir: Path, digest: str) -> Path:
    """Where the blob ``digest`` lives in the layout."""
    algorithm, _, hexdigest = digest.partition(":")
    return layout_dir / "blobs" / algorithm / hexdigest


def ingest_layer(blobs: Path, layer: LayerInput) -> None:
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


def put_blob(blobs: Path, data: bytes) -> str:
    """Store ``data`` in the blob folder ``blobs`` and return its digest."""
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


def read_json_blob(layout_dir: Path, digest: str) -> dict[str, Any]:
    """The JSON object stored as blob ``digest``.

    Raises:
        BackendError: the blob is missing, unreadable or not a JSON object.
    """
    path = blob_path(layout_dir, digest)
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise BackendError(f"blob {digest} is missing from {layout_dir}") from exc
    except (OSError, ValueError) as exc:
        raise BackendError(f"{path}: cannot be read as JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise BackendError(f"{path}: not a JSON object")
    return document


def verify_blob(layout_dir: Path, descriptor: Descriptor, *, diff_id: str | None = None) -> int:
    """Re-hash the blob ``descriptor`` names (and, given ``diff_id``, its uncompressed content); its size.

    Raises:
        BackendError: the blob is missing or unreadable, or its size or a digest does not match.
    """
    path = blob_path(layout_dir, descriptor.digest)
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
