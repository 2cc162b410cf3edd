"""Azure Files shares on the HTTPS emulator: the REST operations azure-storage-file-share uses.

Path-style URLs, as Azurite uses for blobs: ``https://127.0.0.1:<port>/<account>`` is the service,
``/<account>/<share>?restype=share`` a share. Implemented: create share (``x-ms-share-quota`` and
``x-ms-meta-*``; 409 ``ShareAlreadyExists``), get properties, set properties (quota), set metadata
(replaces all of it), and list shares (``comp=list``, ``include=metadata``, paged with
``NextMarker``). Quotas follow premium FileStorage: 100-102400 GiB.

Known SDK quirks handled as the service does (SPEC §5): azure-storage-file-share 12.27 sends a stray
``x-ms-meta`` header beside the ``x-ms-meta-*`` ones, which is ignored; metadata keys keep their case
from the raw headers. Errors carry their code in ``x-ms-error-code``. Every request must be signed
with SharedKey for the configured account (403 ``AuthenticationFailed`` otherwise); the signature
itself is not recomputed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from xml.sax.saxutils import escape

from emulators.server import Emulator, Request, Response, storage_error

MIN_QUOTA_GIB = 100
MAX_QUOTA_GIB = 102400
_META = "x-ms-meta-"


@dataclass
class StoredShare:
    name: str
    quota: int
    metadata: dict[str, str] = field(default_factory=dict)
    etag: int = 1
    modified: str = field(default_factory=lambda: formatdate(usegmt=True))

    def touch(self) -> None:
        self.etag += 1
        self.modified = formatdate(usegmt=True)

    @property
    def etag_header(self) -> str:
        return f'"0x8DC{self.etag:013X}"'


class FilesEmulator:
    """The shares of one storage account."""

    def __init__(self, emulator: Emulator, *, account: str, page_size: int = 5000) -> None:
        self.emulator = emulator
        self.account = account
        self.page_size = page_size
        self.shares: dict[str, StoredShare] = {}
        self._lock = threading.RLock()
        emulator.error = storage_error
        emulator.route("GET", r"/(?P<account>[^/]+)/?")(self._guard(self._service))
        for method in ("GET", "HEAD", "PUT"):
            emulator.route(method, r"/(?P<account>[^/]+)/(?P<share>[^/]+)")(self._guard(self._share))

    def reset(self) -> None:
        with self._lock:
            self.shares.clear()
            self.page_size = 5000

    def put_share(self, name: str, quota: int, metadata: dict[str, str] | None = None) -> None:
        """Create a share as if someone else had (no request logged)."""
        with self._lock:
            self.shares[name] = StoredShare(name, quota, dict(metadata or {}))

    def _guard(self, handler: Any) -> Any:
        def guarded(request: Request) -> Response:
            assert request.match is not None
            if request.match["account"] != self.account:
                return storage_error(400, "InvalidUri", f"unknown account {request.match['account']}")
            authorization = request.headers.get("authorization", "")
            if not authorization.startswith(f"SharedKey {self.account}:") or len(authorization) < 20:
                return storage_error(403, "AuthenticationFailed",
                             "Server failed to authenticate the request. Make sure the value of Authorization "
                             "header is formed correctly including the signature.")
            if "x-ms-version" not in request.headers:
                return storage_error(400, "MissingRequiredHeader", "x-ms-version is required")
            with self._lock:
                response = handler(request)
            response.headers.setdefault("x-ms-version", request.headers["x-ms-version"])
            response.headers.setdefault("Date", formatdate(usegmt=True))
            return response

        return guarded

    # -- service: list shares ----------------------------------------------------------------------

    def _service(self, request: Request) -> Response:
        if request.param("comp") != "list":
            return storage_error(400, "InvalidQueryParameterValue", "only comp=list is emulated on the service")
        include = (request.param("include") or "").split(",")
        prefix = request.param("prefix") or ""
        marker = request.param("marker") or ""
        size = min(int(request.param("maxresults") or self.page_size), self.page_size)
        names = sorted(name for name in self.shares if name.startswith(prefix) and name >= marker)
        page, rest = names[:size], names[size:]
        items = []
        for name in page:
            share = self.shares[name]
            metadata = ""
            if "metadata" in include:
                metadata = "<Metadata>" + "".join(
                    f"<{key}>{escape(value)}</{key}>" for key, value in share.metadata.items()) + "</Metadata>"
            items.append(
                f"<Share><Name>{escape(name)}</Name><Properties><Last-Modified>{share.modified}</Last-Modified>"
                f"<Etag>{share.etag_header}</Etag><Quota>{share.quota}</Quota><AccessTier>Premium</AccessTier>"
                f"<ProvisionedIops>{3000 + share.quota}</ProvisionedIops>"
                f"<EnabledProtocols>SMB</EnabledProtocols></Properties>{metadata}</Share>"
            )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="{self.emulator.base_url}/{self.account}/">'
            + (f"<Prefix>{escape(prefix)}</Prefix>" if prefix else "")
            + (f"<Marker>{escape(marker)}</Marker>" if marker else "")
            + f"<MaxResults>{size}</MaxResults><Shares>{''.join(items)}</Shares>"
            + f"<NextMarker>{escape(rest[0]) if rest else ''}</NextMarker></EnumerationResults>"
        )
        return Response(200, body.encode(), {"Content-Type": "application/xml"})

    # -- one share -----------------------------------------------------------------------------------

    def _share(self, request: Request) -> Response:
        assert request.match is not None
        name = request.match["share"]
        if request.param("restype") != "share":
            return storage_error(400, "InvalidQueryParameterValue",
                                 "only share operations (restype=share) are emulated")
        comp = request.param("comp")
        share = self.shares.get(name)
        if request.method in ("GET", "HEAD") and comp is None:
            if share is None:
                return _share_not_found()
            headers = {f"{_META}{key}": value for key, value in share.metadata.items()}
            headers.update(self._common(share))
            headers.update({"x-ms-share-quota": str(share.quota), "x-ms-access-tier": "Premium",
                            "x-ms-share-provisioned-iops": str(3000 + share.quota),
                            "x-ms-enabled-protocols": "SMB"})
            return Response(200, None, headers)
        if request.method != "PUT":
            return storage_error(400, "UnsupportedHttpVerb", f"{request.method} is not supported here")
        if comp is None:
            if share is not None:
                return storage_error(409, "ShareAlreadyExists", "The specified share already exists.")
            quota = _quota(request, default=MIN_QUOTA_GIB)
            if isinstance(quota, Response):
                return quota
            share = StoredShare(name, quota, _metadata(request))
            self.shares[name] = share
            return Response(201, None, self._common(share))
        if share is None:
            return _share_not_found()
        if comp == "properties":
            quota = _quota(request, default=share.quota)
            if isinstance(quota, Response):
                return quota
            share.quota = quota
        elif comp == "metadata":
            share.metadata = _metadata(request)
        else:
            return storage_error(400, "InvalidQueryParameterValue", f"comp={comp} is not emulated")
        share.touch()
        return Response(200, None, self._common(share))

    @staticmethod
    def _common(share: StoredShare) -> dict[str, str]:
        return {"ETag": share.etag_header, "Last-Modified": share.modified}


def _metadata(request: Request) -> dict[str, str]:
    # The raw headers keep the case the client sent; the bare "x-ms-meta" header is the SDK's stray one.
    return {key[len(_META):]: value for key, value in request.raw_headers
            if key.lower().startswith(_META) and len(key) > len(_META)}


def _quota(request: Request, *, default: int) -> int | Response:
    raw = request.headers.get("x-ms-share-quota")
    if raw is None:
        return default
    try:
        quota = int(raw)
    except ValueError:
        quota = -1
    if not MIN_QUOTA_GIB <= quota <= MAX_QUOTA_GIB:
        return storage_error(400, "InvalidHeaderValue",
                     f"The value for x-ms-share-quota ({raw}) is outside {MIN_QUOTA_GIB}-{MAX_QUOTA_GIB} GiB.")
    return quota


def _share_not_found() -> Response:
    return storage_error(404, "ShareNotFound", "The specified share does not exist.")
