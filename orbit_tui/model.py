"""The console's model: what it reads from the engine, when it reads it again, and who is told.

k9s's ``model`` layer for Textual: screens never call the engine or the app. A screen posts a request
(``orbit_tui.messages``); the app asks this model, which reads in workers of its own (run on the app, so the one
worker-error handler sees their errors) and publishes each answer as a past-tense fact on a Signal that the screens
showing it subscribe to. The model keeps the fleet (``orbit_tui.fleet_model``: load → platform read → integrity),
one solution's revisions (``orbit_ops.console_queries.solution_revisions``) while its detail is shown, what each
tick of the app's interval refreshes, the reading lock, and the operations this console started. It
knows no screen and no app.

``at_rest`` (``orbit_tui.jobs``) is set whenever no read of the model is running or scheduled.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from textual.dom import DOMNode
from textual.signal import Signal

from orbit_ops.console_queries import AppRevisions, solution_revisions
from orbit_ops.operations.records import OperationRecord
from orbit_ops.team import team_records
from orbit_ops.workspace import ComponentSummary, Workspace, pin_counts, summarize_components
from orbit_tui.fleet_model import FleetModel
from orbit_tui.jobs import Jobs
from orbit_tui.messages import Part
from orbit_tui.record_checks import Problems, RecordChecks
from orbit_tui.render import Cell, clock_time, tag_row
from orbit_tui.runs import ConsoleRuns

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ComponentsRead:
    """Every component's summary, and what ``orbit.yaml`` ignores."""

    summaries: Sequence[ComponentSummary]
    ignored: str | None


@dataclass(frozen=True)
class RecordsVerified:
    """Every release record verified: (component, version) → its problems."""

    problems: Problems


@dataclass(frozen=True)
class TagsRead:
    """One component's tags as rows; ``problems`` (version → problems) once its records were verified."""

    component: str
    rows: Sequence[tuple[str, tuple[Cell, ...]]]
    released: int
    problems: dict[str, tuple[str, ...]] | None


@dataclass(frozen=True)
class OperationsRead:
    """Every operation of the store, newest first, as of ``at`` (HH:MM:SS)."""

    records: Sequence[OperationRecord]
    at: str
    note: str | None = None  # why the team's operations are missing (the shared state store is out of reach)


@dataclass(frozen=True)
class HistoryRead:
    """Every operation of the store, read for the detail of ``solution_id``."""

    solution_id: str
    records: Sequence[OperationRecord]


@dataclass(frozen=True)
class RevisionsRead:
    """The newest revisions of each app of ``solution_id``, as of ``at`` (the console's clock)."""

    solution_id: str
    apps: Sequence[AppRevisions]
    at: datetime


class ConsoleModel:
    """The console's data over one workspace; ``host`` (the app) runs its workers and owns its signals."""

    def __init__(
        self, workspace: Workspace, host: DOMNode, *, read_only: bool, clock: Clock, refresh_seconds: float
    ) -> None:
        self.workspace = workspace
        self.read_only = read_only
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.runs = ConsoleRuns()
        # Reads of the workspace run in threads; one at a time, so 10,000 solution files are parsed once (the
        # workspace caches them) rather than by two reads at once.
        self.reading = threading.Lock()
        self.mode_history: list[str] = []  # the modes used before the current one (Esc returns to them)
        self.jobs = Jobs(host)
        self.at_rest = self.jobs.at_rest
        self.workspace_changed: Signal[None] = Signal(host, "workspace-changed")
        self.components_read: Signal[ComponentsRead] = Signal(host, "components-read")
        self.records_verified: Signal[RecordsVerified] = Signal(host, "records-verified")
        self.tags_read: Signal[TagsRead] = Signal(host, "tags-read")
        self.operations_read: Signal[OperationsRead] = Signal(host, "operations-read")
        self.history_read: Signal[HistoryRead] = Signal(host, "history-read")
        self.revisions_read: Signal[RevisionsRead] = Signal(host, "revisions-read")
        self.checks = RecordChecks(workspace)  # one verification of the release records per refresh, shared
        self.fleet = FleetModel(workspace, self.jobs, clock=clock, reading=self.reading, checks=self.checks)
        workspace.look_ahead()  # the solution files are looked at while the first screen is drawn (decision 0094)

    # -- refresh ----------------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read config, solutions, tags and records (verified again); every screen showing them asks again."""
        self.workspace.refresh()
        self.checks.invalidate()
        self.workspace_changed.publish(None)

    def tick(self, shown: Part | None, key: str = "") -> None:
        """The interval: refresh what the current screen shows (``fleet``, ``operations``, or the ``solution``
        ``key``: the fleet's status, which holds its health, and its revisions), nothing else."""
        if shown in ("fleet", "solution"):
            self.fleet.tick()
        if shown == "operations":
            self.read_operations()
        elif shown == "solution" and not self.jobs.busy(f"revisions:{key}"):
            self.read_revisions(key)

    # -- reads ------------------------------------------------------------------------------------------------

    def read(self, what: Part, key: str = "") -> None:
        """A screen's :class:`~orbit_tui.messages.ReadRequested`."""
        reads: dict[Part, Callable[[], object]] = {
            "components": self.read_components,
            "tags": lambda: self.read_tags(key),
            "operations": self.read_operations,
            "history": lambda: self.read_history(key),
            "fleet": self.fleet.load,
            "solution": lambda: self.read_revisions(key),
        }
        reads[what]()

    def read_components(self) -> None:
        """Components' summaries, then every release record verified (tag still on its commit, image still there)."""

        async def read() -> None:
            def summarize() -> ComponentsRead:
                with self.reading:
                    return ComponentsRead(summarize_components(self.workspace), self.workspace.tags().ignored_message())

            self.components_read.publish(await asyncio.to_thread(summarize))
            self.jobs.run("components-integrity", verify)

        async def verify() -> None:
            self.records_verified.publish(RecordsVerified(await asyncio.to_thread(self.checks.problems)))

        self.jobs.run("components", read)

    def read_tags(self, component: str) -> None:
        """The tags of ``component`` at once; then again with the problems of their records marked."""

        async def read(problems: dict[str, tuple[str, ...]] | None = None) -> None:
            def rows() -> TagsRead:
                workspace = self.workspace
                counts = pin_counts(workspace, component)
                found, released = [], 0
                for tag in workspace.tags().of(component):
                    record = workspace.release_of(component, tag.version)
                    released += record is not None
                    flagged = problems is not None and tag.version in problems
                    found.append((tag.version, tag_row(tag, record, counts.get(tag.version, 0), problem=flagged)))
                return TagsRead(component, found, released, problems)

            self.tags_read.publish(await asyncio.to_thread(rows))
            if problems is None:
                self.jobs.run(f"tags-integrity:{component}", verify)

        async def verify() -> None:
            found = await asyncio.to_thread(self.checks.problems)
            mine = {version: problems for (name, version), problems in found.items() if name == component}
            self.jobs.run(f"tags:{component}", lambda: read(mine))

        self.jobs.run(f"tags:{component}", read)

    def read_operations(self) -> None:
        """Every operation of the store (this console's, the CLI's, CI's)."""

        async def read() -> None:
            note = None
            if self.workspace.config.state.shared:  # the team's, through the shared state store
                records, note = await team_records(self.workspace)
            else:
                records = await asyncio.to_thread(self.workspace.operations().list)
            self.operations_read.publish(OperationsRead(records, clock_time(self.clock()), note))

        self.jobs.run("operations", read)

    def read_history(self, solution_id: str) -> None:
        """The operations, for the detail of ``solution_id`` (which picks those that named it)."""

        async def read() -> None:
            records = await asyncio.to_thread(self.workspace.operations().list)
            self.history_read.publish(HistoryRead(solution_id, records))

        self.jobs.run(f"history:{solution_id}", read)

    def read_revisions(self, solution_id: str) -> None:
        """The newest revisions of the three apps of ``solution_id`` (one read per app, in a thread of its own)."""

        async def read() -> None:
            workspace = self.workspace
            apps = await asyncio.to_thread(lambda: asyncio.run(solution_revisions(workspace, solution_id)))
            self.revisions_read.publish(RevisionsRead(solution_id, apps, self.clock()))

        self.jobs.run(f"revisions:{solution_id}", read)
