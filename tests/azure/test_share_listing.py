"""The share listing read from the List Shares XML (decision 0080) gives exactly what the SDK's models gave.

The reference is ``ShareServiceClient.list_shares(include_metadata=True)`` projected as Orbit projected it before,
with the same client; the listing under test is ``AzurePlatform.list_shares``. The pages are small so that the
listing follows ``NextMarker``, and the shares include someone else's (no metadata, an empty value, characters
XML escapes).
"""

from __future__ import annotations

import asyncio
import sys
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pytest

from orbit_ops.backends.azure.platform import AzurePlatform
from orbit_ops.errors import BackendError
from orbit_ops.fleet.resources import Share

if TYPE_CHECKING:
    from conftest import AzureEmulators  # tests/azure/conftest.py


def sdk_share(item: Any) -> Share:
    """The projection Orbit made of an SDK ``ShareProperties`` before this listing."""
    metadata = {str(key): str(value) for key, value in (item.metadata or {}).items()}
    return Share(name=item.name, quota_gib=int(item.quota or 0),
                 metadata=MappingProxyType(dict(sorted(metadata.items()))))


def test_the_share_listing_equals_the_sdk_models_projection(emulators: AzureEmulators) -> None:
    for index in range(11):
        emulators.files.put_share(f"customer-{index}-customer", 100 + index,
                                  {"solution_id": f"customer-{index}", "role": "customer"})
    emulators.files.put_share("theirs-bare", 5120)
    emulators.files.put_share("theirs-odd", 102400, {"note": "a < b & c > \"d\" 'e'", "empty": "", "Zeta": "z"})
    emulators.files.page_size = 4
    platform = AzurePlatform(emulators.settings(), emulators.fast)
    try:
        emulators.clear_logs()
        listed = asyncio.run(platform.list_shares())
        pages = [entry for entry in emulators.files_server.log if entry.method == "GET"]
        client = platform.shares._service()
        expected = {item.name: sdk_share(item) for item in client.list_shares(include_metadata=True)}
    finally:
        platform.close()
    assert len(expected) == 13
    assert listed == expected
    assert list(listed) == list(expected)  # the service's order
    assert listed["theirs-odd"].metadata["note"] == "a < b & c > \"d\" 'e'"
    assert listed["theirs-odd"].metadata["empty"] == ""
    assert listed["theirs-bare"].metadata == {}
    assert len(pages) == 4  # 13 shares, 4 a page: the listing followed NextMarker to the end


def test_a_failed_listing_says_what_the_sdk_path_said(emulators: AzureEmulators) -> None:
    """An account the file service does not know: the storage error (code and message) reaches the operator as
    it did through the SDK's listing."""
    from dataclasses import replace

    settings = emulators.settings()
    elsewhere = replace(settings, files_endpoint=settings.files_endpoint.rsplit("/", 1)[0] + "/elsewhere")
    platform = AzurePlatform(elsewhere, emulators.fast)
    try:
        with pytest.raises(BackendError) as raised:
            asyncio.run(platform.list_shares())
    finally:
        platform.close()
    # the code before this listing said exactly this (the SDK's storage error, its code and message)
    assert raised.value.message == ("list the file shares of orbitfiles: Azure answered 400 "
                                    "(StorageErrorCode.INVALID_URI: unknown account elsewhere ErrorCode:InvalidUri)")


def test_a_transient_failure_of_a_page_is_retried(emulators: AzureEmulators) -> None:
    from emulators.server import Fault

    for index in range(6):
        emulators.files.put_share(f"customer-{index}-customer", 100)
    emulators.files.page_size = 4
    emulators.files_server.inject(Fault("503", method="GET", count=1))
    platform = AzurePlatform(emulators.settings(), emulators.fast)
    try:
        listed = asyncio.run(platform.list_shares())
    finally:
        platform.close()
    assert sorted(listed) == [f"customer-{index}-customer" for index in range(6)]


def test_an_sdk_without_the_operation_lists_through_its_public_api(emulators: AzureEmulators,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from orbit_ops.backends.azure import storage_private

    for index in range(6):
        emulators.files.put_share(f"customer-{index}-customer", 100 + index, {"role": "customer"})
    emulators.files.page_size = 4
    platform = AzurePlatform(emulators.settings(), emulators.fast)
    try:
        fast = asyncio.run(platform.list_shares())
        # as on a release where the private module moved (the SDK's own code imported it long before)
        monkeypatch.setitem(sys.modules, storage_private.PRIVATE_STORAGE_MODULE, None)
        assert storage_private.share_listing_bytes(platform.shares._service(), None) is None
        emulators.clear_logs()
        slow = asyncio.run(platform.list_shares())
    finally:
        platform.close()
    assert slow == fast and list(slow) == list(fast)
    assert len([entry for entry in emulators.files_server.log if entry.method == "GET"]) == 2
