"""Azure Files shares of the storage account, over azure-storage-file-share with the account key.

Shares are data-plane storage, not ARM: they are reached at the account's file endpoint with
SharedKey (the key from ``ORBIT_STORAGE_ACCOUNT_KEY``), are not paced by ARM's token buckets, and
the storage SDK never retries a 429 (its own retry only covers 5xx and connection errors), so every
call goes through :func:`~orbit_ops.backends.azure.common.call`, which honours ``Retry-After``.
Quota and metadata are the managed fields; an update sets both (two calls).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from orbit_ops.backends.azure.common import ACCOUNT_KEY_ENV, AzureEndpoints, account_key, call
from orbit_ops.bulk import bulk_built
from orbit_ops.errors import BackendError
from orbit_ops.fleet.resources import Share

T = TypeVar("T")


class AzureFileShares:
    """``ShareStore`` over one storage account's file service.

    ``options`` are extra keyword arguments for ``ShareServiceClient`` (tests zero the retry waits:
    ``initial_backoff``, ``increment_base``, ``random_jitter_range``).
    """

    def __init__(self, endpoints: AzureEndpoints, account_name: str, options: Mapping[str, Any] | None = None) -> None:
        self.endpoints = endpoints
        self.account_name = account_name
        self.options = dict(options or {})
        self._client: Any = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    async def list_shares(self) -> dict[str, Share]:
        """Every share of the account with its quota and metadata, page by page (``NextMarker``).

        Each page is the SDK's own List Shares operation asked for the body as bytes
        (:mod:`~orbit_ops.backends.azure.storage_private`), read here with ElementTree: the SDK's models took
        about 0.2 ms a share to build, for the three fields Orbit reads (decision 0080).

        Raises:
            BackendError: the listing failed (after retries), or the account key is missing or refused.
        """
        client = self._service()

        def listing() -> list[Share]:
            from orbit_ops.backends.azure.storage_private import share_listing_bytes

            shares: list[Share] = []
            marker: str | None = None
            while True:
                body = share_listing_bytes(client, marker)
                if body is None:  # an SDK without the operation this reads: its public listing, models and all
                    return [_share(item) for item in client.list_shares(include_metadata=True)]
                with bulk_built():  # thousands of small acyclic objects: no collector passes while they are made
                    page = share_page(body)
                shares += page.shares
                if not page.next_marker:
                    return shares
                marker = page.next_marker

        shares = await self._call(listing, what=f"list the file shares of {self.account_name}")
        return {share.name: share for share in shares}

    async def get_share(self, name: str) -> Share | None:
        """The share ``name``, or None when it does not exist.

        Raises:
            BackendError: the read failed, or the account key is missing or refused.
        """
        client = self._service()

        def get() -> Share | None:
            from azure.core.exceptions import ResourceNotFoundError

            try:
                return _share(client.get_share_client(name).get_share_properties())
            except ResourceNotFoundError:
                return None

        return await self._call(get, what=f"read file share {name}")

    async def create_share(self, share: Share) -> None:
        """Create the share with its quota and metadata.

        Raises:
            ResourceExistsError: the share exists (``ShareAlreadyExists``).
            BackendError: the call failed, or the account key is missing or refused.
        """
        client = self._service()

        def create() -> None:
            client.create_share(share.name, metadata=dict(share.metadata), quota=share.quota_gib)

        await self._call(create, what=f"create file share {share.name}")

    async def update_share(self, share: Share) -> None:
        """Set the quota, then replace the metadata, of an existing share.

        Raises:
            MissingOnPlatformError: the share does not exist.
            BackendError: a call failed, or the account key is missing or refused.
        """
        client = self._service()
        share_client = client.get_share_client(share.name)
        await self._call(share_client.set_share_quota, share.quota_gib,
                         what=f"set the quota of file share {share.name}")
        await self._call(share_client.set_share_metadata, dict(share.metadata),
                         what=f"set the metadata of file share {share.name}")

    # -- plumbing ---------------------------------------------------------------------------------

    def _service(self) -> Any:
        """The ShareServiceClient, made on first use (needs the account key).

        Raises:
            BackendError: ``ORBIT_STORAGE_ACCOUNT_KEY`` is not set.
        """
        with self._lock:
            if self._client is None:
                from azure.storage.fileshare import ShareServiceClient

                self._client = ShareServiceClient(
                    account_url=self.endpoints.files,
                    credential={"account_name": self.account_name, "account_key": account_key()},
                    # the storage SDK's own timeouts unless the options say otherwise: 20 s to connect, 60 s to read
                    **self.endpoints.pooled_transport(self.endpoints.files, self.options, connection_timeout=20,
                                                      read_timeout=60),
                )
            return self._client

    async def _call(self, func: Callable[..., T], *args: Any, what: str) -> T:
        return await call(_refused_key(func, self.account_name, what), *args, what=what)


def _refused_key(func: Callable[..., T], account: str, what: str) -> Callable[..., T]:
    """``func`` with the service's AuthenticationFailed (a wrong key, not a missing role) said plainly."""

    def run(*args: Any) -> T:
        from azure.core.exceptions import HttpResponseError

        try:
            return func(*args)
        except HttpResponseError as exc:
            if getattr(exc, "error_code", None) == "AuthenticationFailed":
                raise BackendError(f"{what}: storage account {account} refused the key in {ACCOUNT_KEY_ENV} "
                                   "(check that it is a current key of that account)") from None
            raise

    return run


class SharePage(NamedTuple):
    shares: list[Share]
    next_marker: str


def share_page(body: bytes) -> SharePage:
    """One List Shares page (``EnumerationResults``) read as the SDK's models read it: a share's name and quota
    are its ``Name`` and ``Properties/Quota``, its metadata every child of ``Metadata`` (an empty one is "").

    Raises:
        DecodeError: the body is not XML (what the SDK raises for it).
    """
    from xml.etree.ElementTree import ParseError, fromstring

    from azure.core.exceptions import DecodeError

    try:
        root = fromstring(body)
    except ParseError as exc:
        raise DecodeError(f"the file service's share listing is not XML ({exc})") from None
    shares = []
    for item in root.iterfind("Shares/Share"):
        quota = item.findtext("Properties/Quota")
        found = item.find("Metadata")
        metadata = {child.tag: child.text or "" for child in found} if found is not None else {}
        shares.append(Share(name=item.findtext("Name") or "", quota_gib=int(quota) if quota else 0,
                            metadata=MappingProxyType(dict(sorted(metadata.items())))))
    return SharePage(shares, root.findtext("NextMarker") or "")


def _share(item: Any) -> Share:
    metadata = {str(key): str(value) for key, value in (item.metadata or {}).items()}
    return Share(name=item.name, quota_gib=int(item.quota or 0),
                 metadata=MappingProxyType(dict(sorted(metadata.items()))))
