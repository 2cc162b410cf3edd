"""The local platform's table of resource kinds: for each, how its document is made, checked, written and read.

``LocalPlatform`` has one implementation of list, get, create and update; the protocol methods of
``AppPlatform`` and ``ShareStore`` (``list_apps``, ``create_share``...) are made from this table, so a new
kind is one entry here plus its document and projection functions, never another copy of four methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from orbit_ops.backends.local import documents, projections
from orbit_ops.backends.local.documents import Document
from orbit_ops.backends.local.rules import check_access_mode, check_quota, no_check
from orbit_ops.fleet.resources import App, Resource, ResourceKind, Share, Storage

R = TypeVar("R", bound=Resource)


@dataclass(frozen=True)
class Kind(Generic[R]):
    """One kind of resource of the local platform."""

    name: ResourceKind
    plural: str  # in the protocol's method names: list_<plural>
    title: str  # in their docstrings: "container app"
    new_document: Callable[[str], Document]  # the service's defaults, before any managed field is set
    apply: Callable[[Document, R], None]  # set the managed fields; raises BackendError on a broken rule
    check: Callable[[R], None]  # the service's rules checked before the stored document is read
    revise: Callable[[Document, Document | None, int], int]  # (after, before or None when new, revision) -> revision
    written: Callable[[Document], str]  # when the document was last written
    stamp: Callable[[Document, datetime, bool], None]  # record a write (moment, created)
    read: Callable[[Document], R]  # the managed fields of a whole document
    listing: str  # SQL cutting out the parts ``from_parts`` reads, per row
    from_parts: Callable[[list[Any]], R | None]  # None: a part is missing or odd, read the whole document
    mirrored: bool = False  # a share: its folder and sidecar follow every write
    revisioned: bool = False  # an app: a new revision number is a new revision document (.revisions)


APPS = Kind[App](
    name="app",
    plural="apps",
    title="container app",
    new_document=documents.new_app_document,
    apply=documents.apply_app,
    check=no_check,
    revise=documents.revise_app,
    written=documents.system_data_written,
    stamp=documents.stamp_system_data,
    read=projections.app_from_document,
    listing=projections.APP_LISTING,
    from_parts=projections.listed_app,
    revisioned=True,
)
STORAGES = Kind[Storage](
    name="storage",
    plural="storages",
    title="environment storage (share link)",
    new_document=documents.new_storage_document,
    apply=documents.apply_storage,
    check=check_access_mode,
    revise=documents.no_revisions,
    written=documents.system_data_written,
    stamp=documents.stamp_system_data,
    read=projections.storage_from_document,
    listing=projections.STORAGE_LISTING,
    from_parts=projections.listed_storage,
)
SHARES = Kind[Share](
    name="share",
    plural="shares",
    title="file share",
    new_document=documents.new_share_document,
    apply=documents.apply_share,
    check=check_quota,
    revise=documents.no_revisions,
    written=documents.share_written,
    stamp=documents.stamp_share,
    read=projections.share_from_document,
    listing=projections.SHARE_LISTING,
    from_parts=projections.listed_share,
    mirrored=True,
)
