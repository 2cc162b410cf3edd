"""The one place Orbit touches a private part of azure-storage-file-share: the share listing as bytes.

``ShareServiceClient.list_shares`` builds a TypeSpec model per share (about 0.2 ms each, 0.25-0.45 s for 2,000
shares) for the three fields Orbit reads, and cannot be asked for the body instead. The listing therefore runs
the SDK's own generated List Shares operation (``client._client.service.list_shares_segment``: its request,
``x-ms-version``, SharedKey signing, retries and error map) with ``stream=True``, and maps a failure with the
SDK's ``process_storage_error``, as ``list_shares`` does (decision 0080). Where either is missing (another
release of the SDK), :func:`share_listing_bytes` says so by returning None and the caller lists through the
public API; tests/azure/test_core_private.py keeps every other module off the SDK's private parts.
"""

from __future__ import annotations

from typing import Any

PRIVATE_STORAGE_MODULE = "azure.storage.fileshare._shared.response_handlers"


def share_listing_bytes(client: Any, marker: str | None) -> bytes | None:
    """One page of List Shares with metadata, from ``marker`` (None: the first), as the bytes the service sent;
    None when the installed SDK lacks the private parts this needs.

    Raises:
        HttpResponseError: (the storage SDK's, with ``error_code``) the service did not answer 200.
    """
    from azure.core.exceptions import HttpResponseError

    try:
        from azure.storage.fileshare._shared.response_handlers import process_storage_error

        segment = client._client.service.list_shares_segment
    except (ImportError, AttributeError):
        return None
    try:
        return b"".join(segment(include=["metadata"], marker=marker,
                                file_request_intent=getattr(client, "file_request_intent", None), stream=True))
    except HttpResponseError as error:
        process_storage_error(error)  # raises the storage error (its code and message), as list_shares does
    except TypeError:  # a generated operation without ``stream``
        return None
