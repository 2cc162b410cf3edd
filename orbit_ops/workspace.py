"""A workspace opened for use: config plus lazily loaded solutions, tags and release records.

Front ends hold one :class:`Workspace` and ask it questions; it reads each source once and caches it
until :meth:`Workspace.refresh`, so a screen that shows tags, records and pins reads git once.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orbit_ops.backends.base import ImageBuilder
from orbit_ops.config.load import find_workspace, load_config, load_solution_set
from orbit_ops.config.model import InvalidSolution, SolutionHeads, SolutionSet, SolutionSpec, WorkspaceConfig
from orbit_ops.errors import BackendError, NotFoundError, StateStoreUnreachableError, StateUnwritableError
from orbit_ops.fleet.resources import PlatformTarget
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.versions import LATEST, newest_first

if TYPE_CHECKING:  # the catalog and the operations are imported where used: `orbit status` starts its listings first
    from orbit_ops.backends.azure.platform import AzurePlatform
    from orbit_ops.backends.azure.state_blobs import StateContainer
    from orbit_ops.backends.local.platform import LocalPlatform
    from orbit_ops.catalog.releases import ReleaseRecord
    from orbit_ops.catalog.tags import TagScan
    from orbit_ops.config.solution_heads import HeadsLook
    from orbit_ops.fleet.drift import ReleaseIndex
    from orbit_ops.operations.lockstore import LockStore
    from orbit_ops.operations.shared import SharedOperations
    from orbit_ops.operations.store import OperationStore


class Workspace:
    """One workspace: ``orbit.yaml`` validated at open, everything else read on first use."""

    def __init__(self, config: WorkspaceConfig) -> None:
        self.config = config
        self._solutions: SolutionSet | None = None
        self._heads: SolutionHeads | None = None  # the cache's heads, while the set itself has not been read
        self._heads_tried = False  # whether they were asked for since the last refresh
        self._heads_look: HeadsLook | None = None  # a look at the files for them, begun by look_ahead
        self._scan: TagScan | None = None
        self._records: dict[str, list[ReleaseRecord]] | None = None
        self._operations: OperationStore | None = None
        self._platform: LocalPlatform | AzurePlatform | None = None
        self._locks: LockStore | None = None
        self._state: StateContainer | None = None
        # Told once, with the reason, when a store under .orbit/ had to be opened read-only.
        self.on_read_only_state: Callable[[str], None] | None = None
        self._told_read_only = False

    @classmethod
    def open(cls, explicit: str | Path | None = None) -> Workspace:
        """Find and load the workspace (see :func:`orbit_ops.config.load.find_workspace`).

        Raises:
            InputError: no workspace found.
            ConfigError: orbit.yaml breaks a rule.
        """
        return cls(load_config(find_workspace(explicit)))

    def operations(self) -> OperationStore:
        """The operation store under ``.orbit/`` (opened on first use)."""
        if self._operations is None:
            from orbit_ops.operations.store import OperationStore

            self._operations = OperationStore(self.config.state_dir)
            self._tell_read_only(self._operations.read_only)
            if self.config.state.shared:
                from orbit_ops.backends.azure.state_mirror import BlobOperationMirror

                self._operations.mirror = BlobOperationMirror(self._state_container())
        return self._operations

    def shared_operations(self) -> SharedOperations | None:
        """The team's operations in the shared state store; None with the local store (``state: local``)."""
        if not self.config.state.shared:
            return None
        from orbit_ops.backends.azure.state_operations import BlobSharedOperations

        return BlobSharedOperations(self._state_container())

    def _state_container(self) -> StateContainer:
        if self._state is None:
            from orbit_ops.backends.azure.state_blobs import StateContainer

            self._state = StateContainer(self.config.state)
        return self._state

    def locks(self) -> LockStore:
        """The locks of ``state:`` in ``orbit.yaml``: this machine's flocks, or leases in the shared container."""
        if self._locks is None:
            state = self.config.state
            if state.shared:
                from orbit_ops.backends.azure.state_locks import BlobLockStore

                self._locks = BlobLockStore(self._state_container())
            else:
                from orbit_ops.operations.lockstore import LocalLockStore

                self._locks = LocalLockStore(self.config.state_dir)
        return self._locks

    def state_unwritable(self) -> str | None:
        """Why ``.orbit/`` cannot be written (``"<folder> is read-only"``...), or None when it can.

        Raises:
            BackendError: the operation store cannot be opened at all.
        """
        return self.operations().read_only

    def require_writable_state(self, what: str) -> None:
        """Refuse ``what`` (a mutating command) before it starts when ``.orbit/`` cannot be written.

        Raises:
            StateUnwritableError: the folder is read-only, full or not writable (exit 1).
            BackendError: the operation store cannot be opened at all.
        """
        reason = self.state_unwritable()
        if reason is not None:
            raise StateUnwritableError(f"cannot {what}: {reason}, so nothing could be recorded; nothing was done")

    def require_reachable_state(self, what: str) -> None:
        """Refuse ``what`` (a mutating command) before it starts when the shared state store cannot be reached:
        no operation runs unlocked or unrecorded. The container is created when it does not exist yet.

        Raises:
            StateStoreUnreachableError: the store cannot be reached, or refused our credential (exit 1).
        """
        if not self.config.state.shared:
            return
        from orbit_ops.backends.azure.state_blobs import probe

        try:
            probe(self._state_container())
        except StateStoreUnreachableError as exc:
            raise StateStoreUnreachableError(f"cannot {what}: {exc}; nothing was done (no operation runs unlocked "
                                             "while the team's store is out of reach)") from None

    def _tell_read_only(self, reason: str | None) -> None:
        if reason is not None and not self._told_read_only and self.on_read_only_state is not None:
            self._told_read_only = True
            self.on_read_only_state(reason)

    def operation_is_live(self, op_id: str) -> bool:
        """Whether operation ``op_id`` is queued or running in some live process."""
        try:
            return not self.operations().get(op_id).finished
        except NotFoundError:
            return False

    def builder(self) -> ImageBuilder:
        """The image builder of the configured backend."""
        if self.config.backend == "local":
            from orbit_ops.backends.local.builder import LocalBuilder

            return LocalBuilder(self.config.state_dir)
        if self.config.backend == "azure" and self.config.azure is not None:
            from orbit_ops.backends.azure.acr import AcrBuilder

            return AcrBuilder(self.config.azure)
        raise BackendError(f"the {self.config.backend} builder is not available in this version of Orbit")

    def platform(self) -> LocalPlatform | AzurePlatform:
        """The app platform and share store of the configured backend (one object serves both)."""
        if self.config.backend == "local":
            if self._platform is None:
                from orbit_ops.backends.local.builder import LocalBuilder
                from orbit_ops.backends.local.platform import LocalPlatform

                # The apps pull from the registry the local builder pushes to.
                registry = LocalBuilder(self.config.state_dir).local_registry
                self._platform = LocalPlatform(self.config.state_dir, registry)
                self._tell_read_only(self._platform.read_only)
            return self._platform
        if self.config.backend == "azure" and self.config.azure is not None:
            if self._platform is None:
                from orbit_ops.backends.azure.platform import AzurePlatform

                self._platform = AzurePlatform(self.config.azure)
            return self._platform
        raise BackendError(f"the {self.config.backend} platform is not available in this version of Orbit")

    def target(self) -> PlatformTarget:
        """Registry, storage account and pull identity the desired state refers to."""
        azure = self.config.azure
        if self.config.backend == "azure" and azure is not None:
            return PlatformTarget(azure.registry_login_server, azure.storage_account, azure.pull_identity)
        return PlatformTarget(self.builder().registry, "local", "local")

    def release_index(self) -> ReleaseIndex:
        from orbit_ops.fleet.drift import ReleaseIndex

        return ReleaseIndex(self.records())

    def refresh(self) -> None:
        self.refresh_solutions()
        self._scan = self._records = None

    def refresh_solutions(self) -> None:
        """Read the solution files again on next use (tags and records stay cached)."""
        self._solutions = self._heads = None
        self._heads_tried = False
        look, self._heads_look = self._heads_look, None
        if look is not None:
            look.close()

    def solution_set(self) -> SolutionSet:
        """Every solution file: the valid solutions and each invalid file with its error (read once)."""
        if self._solutions is None:
            self._solutions = load_solution_set(self.config)
            self._heads = None  # the set is their own heads from now on: theirs are not kept alive beside it
        return self._solutions

    def solution_heads(self) -> SolutionHeads:
        """Every solution file as a list shows it: the set's specs when it has been read; else, when every file is
        as the cache's last read found it, their heads (id, name, pins, labels) without a spec built (decision
        0094); else the set, read now (once, as :meth:`solution_set`)."""
        heads = self.cached_heads()
        return heads if heads is not None else self.solution_set().heads()

    def cached_heads(self) -> SolutionHeads | None:
        """The solution cache's heads of every solution file while the set itself has not been read, when every
        file is as the cache's last read found it (one ``lstat`` each); None otherwise, without reading the set."""
        if self._solutions is not None:
            return None
        if not self._heads_tried:
            from orbit_ops.bulk import bulk_built
            from orbit_ops.config.solution_heads import HeadsLook

            look, self._heads_look = self._heads_look, None
            with bulk_built():
                self._heads = (look or HeadsLook(self.config)).heads()
            self._heads_tried = True
        return self._heads

    def look_ahead(self) -> None:
        """Begin the look at the solution files that :meth:`cached_heads` takes, now: a helper process looks at
        thousands of them while the caller goes on (the console calls this as it starts, before its first screen
        is drawn). Nothing is read of the set; no error is raised here."""
        if self._solutions is None and not self._heads_tried and self._heads_look is None:
            from orbit_ops.config.solution_heads import HeadsLook

            self._heads_look = HeadsLook(self.config)

    def solutions(self) -> list[SolutionSpec]:
        """The valid solutions, sorted by id; the invalid files are in :meth:`invalid_solutions`."""
        return self.solution_set().valid

    def invalid_solutions(self) -> list[InvalidSolution]:
        """Each solution file that breaks a rule, as its own entry (one bad file never hides the fleet)."""
        return self.solution_set().invalid

    def tags(self) -> TagScan:
        if self._scan is None:
            from orbit_ops.catalog.tags import scan_tags

            self._scan = scan_tags(self.config.platform_repo, self.config.components)
        return self._scan

    def records(self) -> dict[str, list[ReleaseRecord]]:
        if self._records is None:
            from orbit_ops.catalog.releases import load_all_records

            self._records = load_all_records(self.config.releases_dir, self.config.components)
        return self._records

    def latest_release(self, component: str) -> ReleaseRecord | None:
        from orbit_ops.catalog.releases import newest_release

        return newest_release(self.records().get(component, []))

    def release_of(self, component: str, version: str) -> ReleaseRecord | None:
        from orbit_ops.catalog.releases import latest_record

        return latest_record(self.records().get(component, []), version)

    def resolve_pin(self, component: str, pin: str) -> str | None:
        """A pin with ``latest`` replaced by the newest released version (None if nothing is released)."""
        if pin != LATEST:
            return pin
        record = self.latest_release(component)
        return record.version if record else None


@dataclass(frozen=True)
class ComponentSummary:
    """One row of ``orbit components``."""

    name: str
    latest_tag: str | None
    latest_release: str | None
    unreleased: list[str]
    solutions_on_latest: int
    solutions: int
    versions: dict[str, int] = field(default_factory=dict)  # version the solutions' pins resolve to → how many

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "latest_tag": self.latest_tag,
            "latest_release": self.latest_release,
            "unreleased": list(self.unreleased),
            "solutions_on_latest": self.solutions_on_latest,
            "solutions": self.solutions,
            "versions": dict(self.versions),
        }


def summarize_components(workspace: Workspace) -> list[ComponentSummary]:
    """Every component with its newest tag and release, unreleased tags, and adoption of the latest."""
    from orbit_ops.catalog.releases import newest_release

    scan = workspace.tags()
    solutions = workspace.solution_heads().valid  # counted from the pins alone: no spec built for it
    rows = []
    for name in sorted(workspace.config.components):
        records = workspace.records().get(name, [])
        released = {record.version for record in records}
        latest_tag = scan.latest_stable(name)
        latest = newest_release(records)
        on_latest = 0
        running = 0
        versions: dict[str, int] = {}
        if name in APP_COMPONENTS:
            running = len(solutions)
            # Each distinct pin resolved once: a fleet of 10,000 pins a few versions (the Components screen's read).
            key = f"{name}_tag"
            for pin, count in Counter(map(operator.itemgetter(key), map(_IMAGES, solutions))).items():
                resolved = workspace.resolve_pin(name, pin)
                if resolved is not None:
                    versions[resolved] = versions.get(resolved, 0) + count
            if latest is not None:
                on_latest = versions.get(latest.version, 0)
            versions = {version: versions[version] for version in newest_first(versions)}
        rows.append(
            ComponentSummary(
                name=name,
                latest_tag=latest_tag.tag if latest_tag else None,
                latest_release=latest.version if latest else None,
                unreleased=[tag.version for tag in scan.of(name) if tag.version not in released],
                solutions_on_latest=on_latest,
                solutions=running,
                versions=versions,
            )
        )
    return rows


_IMAGES = operator.attrgetter("images")


def pin_counts(workspace: Workspace, component: str) -> dict[str, int]:
    """How many solutions pin each version of ``component`` (``latest`` counted as itself)."""
    counts: dict[str, int] = {}
    if component not in APP_COMPONENTS:
        return counts
    for spec in workspace.solution_heads().valid:
        pin = spec.pin(component)
        counts[pin] = counts.get(pin, 0) + 1
    return counts
