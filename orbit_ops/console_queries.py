"""Questions the console asks that compose several engine calls: record integrity per release and per pin,
the previous pins a rollback can restore, the failures of a finished sweep, and an operation's log in batches.

Each answer is built from existing engine functions (``integrity.verify_records``, ``roll.previous_pin``, the
operation store) so the CLI and the console never disagree; nothing here writes. The console runs these in
worker threads (``verify_records`` reads git and the registry). :func:`follow_batches` is ``operations.follow``
for a screen: the same events in the same order and the same ending, but read and decoded a bounded batch at a
time (one JSON decode per batch), yielding to the event loop between batches, so replaying a 100,000-line log
never holds the loop for more than one batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orbit_ops.bulk import bulk_built
from orbit_ops.errors import BackendError, NotFoundError
from orbit_ops.fleet.drift import ReleaseIndex, SolutionStatus
from orbit_ops.fleet.integrity import verify_records
from orbit_ops.fleet.planned import PlannedSolution
from orbit_ops.fleet.roll import RollPlan, previous_pin
from orbit_ops.fleet.sweeps import plan_many
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.operations.events import Event, LogLine, OperationFinished, from_json
from orbit_ops.operations.store import LOG_LINE_PREFIX, OperationRecord, OperationStore, utc_now
from orbit_ops.workspace import Workspace

SWEEPING_KINDS = ("provision", "sweep", "roll")
BATCH_BYTES = 256 * 1024  # at most this much log is decoded per batch (about 2,000 lines)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntegrityReport:
    """Every integrity problem found: per release record, and per solution whose pins depend on one."""

    records: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # (component, version)
    solutions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # solution id → problems
    pins: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # (solution id, component)

    def of_component(self, component: str) -> list[tuple[str, str]]:
        """(version, problem) of every problem with a record of ``component``."""
        return [(version, problem) for (name, version), found in self.records.items() if name == component
                for problem in found]


def record_problems(workspace: Workspace) -> dict[tuple[str, str], tuple[str, ...]]:
    """(component, version) → what ``verify_records`` found wrong with its newest record (moved tag, lost image).

    Raises:
        GitError: the tags cannot be listed.
    """
    found: dict[tuple[str, str], list[str]] = {}
    for problem in verify_records(workspace):
        found.setdefault((problem.record.component, problem.record.version), []).append(problem.problem)
    return {key: tuple(values) for key, values in found.items()}


def rolled_versions(records: Iterable[OperationRecord]) -> set[tuple[str, str]]:
    """(component, version) of every roll that wrote a pin: a roll is refused without a release record, so each
    of these had one when it was rolled."""
    rolled: set[tuple[str, str]] = set()
    for record in records:
        result = record.result or {}
        if record.kind == "roll" and result.get("pins"):
            rolled.add((str(result.get("component")), str(result.get("version"))))
    return rolled


def pin_problems(
    solution_id: str,
    pins: Mapping[str, str | None],
    releases: ReleaseIndex,
    records: Mapping[tuple[str, str], tuple[str, ...]],
    rolled: set[tuple[str, str]],
    live: Mapping[str, str | None] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Component → the problems of one solution's resolved ``pins`` (pure).

    A pin has a problem when the record of its version has one, or when its version has no record although it
    was rolled out once or runs live (the record vanished).
    """
    found: dict[str, tuple[str, ...]] = {}
    for component, version in pins.items():
        if version is None:
            continue
        problems = [f"{component} {version}: {problem}" for problem in records.get((component, version), ())]
        if not releases.released(component, version):
            why = []
            if (component, version) in rolled:
                why.append("it was rolled out before")
            if live and live.get(component) == version:
                why.append("it runs live")
            if why:
                problems.append(f"{component} {version}: its release record vanished ({' and '.join(why)}); "
                                f"restore the record or rebuild: orbit build {component}@{version} --force")
        if problems:
            found[component] = tuple(problems)
    return found


def integrity_report(workspace: Workspace, statuses: Sequence[SolutionStatus] = ()) -> IntegrityReport:
    """Record problems, and each solution pinning a version whose record is wrong or gone.

    ``statuses`` (from ``fleet.fleet_status``) add what runs live; without them only the history of rolls says
    whether a version without a record was released once.

    Raises:
        GitError: the tags cannot be listed.
    """
    records = record_problems(workspace)
    releases = workspace.release_index()
    rolled = rolled_versions(workspace.operations().list(kind="roll"))
    live = {status.id: {name: app.live for name, app in status.apps.items()} for status in statuses}
    solutions: dict[str, tuple[str, ...]] = {}
    pins: dict[tuple[str, str], tuple[str, ...]] = {}
    for spec in workspace.solutions():
        resolved = {component: releases.resolve(component, spec.pin(component)) for component in APP_COMPONENTS}
        found = pin_problems(spec.id, resolved, releases, records, rolled, live.get(spec.id))
        for component, problems in found.items():
            pins[spec.id, component] = problems
        if found:
            solutions[spec.id] = tuple(problem for problems in found.values() for problem in problems)
    return IntegrityReport(records, solutions, pins)


@dataclass(frozen=True)
class RollbackChoice:
    """What ``u`` can do for one app of a solution: restore ``previous``, or why it cannot (``reason``)."""

    component: str
    current: str
    previous: str | None
    reason: str | None = None


def rollback_choices(workspace: Workspace, solution_id: str) -> list[RollbackChoice]:
    """For each app component of ``solution_id``: the pin it had before the roll that set the current one.

    Raises:
        NotFoundError: no such solution.
    """
    spec = next((spec for spec in workspace.solutions() if spec.id == solution_id), None)
    if spec is None:
        raise NotFoundError(f"no solution '{solution_id}' in {workspace.config.solutions_dir}")
    choices = []
    for component in APP_COMPONENTS:
        current = spec.pin(component)
        try:
            choices.append(RollbackChoice(component, current, previous_pin(workspace, solution_id, component, current)))
        except NotFoundError as exc:
            choices.append(RollbackChoice(component, current, None, str(exc)))
    return choices


async def plan_after_roll(workspace: Workspace, plan: RollPlan) -> list[PlannedSolution]:
    """What provisioning the solutions of ``plan`` would do once its pins are written; writes nothing.

    Raises:
        BackendError: the platform cannot be read.
    """
    key = f"{plan.component}_tag"
    rolled = [dataclasses.replace(spec, images={**spec.images, key: plan.version}) for spec in plan.specs.values()]
    return await plan_many(workspace, rolled)


def failed_members(record: OperationRecord) -> list[str]:
    """The solutions that failed in a finished provision, sweep or roll (what ``--failed-from`` retries)."""
    if record.kind not in SWEEPING_KINDS or not record.finished:
        return []
    return [name for name, child in record.children.items() if child.state == "failed"]


def decode_log_line(raw: bytes) -> LogLine:
    """The log event of one stored line that ``follow_batches(raw_log_lines=True)`` passed on undecoded.

    Raises:
        ValueError: the line is not valid JSON, or not a well-formed log event.
    """
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    event = from_json(document)
    if not isinstance(event, LogLine):
        raise ValueError(f"a {type(event).__name__} event, not a log line")
    return event


class _BatchReader:
    """Reads complete JSONL lines appended to a log, at most ``limit`` bytes a call; with ``raw_log_lines``,
    log events stay undecoded bytes (see ``LOG_LINE_PREFIX``) and only the other events are decoded."""

    def __init__(self, path: Path, limit: int, raw_log_lines: bool = False) -> None:
        self.path = path
        self.limit = limit
        self.raw_log_lines = raw_log_lines
        self.offset = 0
        self.partial = b""

    def read(self) -> list[Event | bytes]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(self.limit)
        except FileNotFoundError:
            return []  # not started yet
        except OSError as exc:
            raise BackendError(f"cannot read {self.path}: {exc}") from exc
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        if not self.raw_log_lines:
            return list(self._decode([line for line in lines if line.strip()]))
        items: list[Event | bytes] = []
        for line in lines:
            if line.startswith(LOG_LINE_PREFIX):
                items.append(line)
            elif line.strip():
                items.extend(self._decode([line]))
        return items

    def _decode(self, lines: list[bytes]) -> list[Event]:
        try:  # one decode of the whole batch is several times faster than one a line
            with bulk_built():  # thousands of small acyclic objects: no collector passes while they are made
                documents: list[Any] = json.loads(b"[" + b",".join(lines) + b"]")
                if all(isinstance(document, dict) for document in documents):
                    return [from_json(document) for document in documents]
        except ValueError:  # a malformed line somewhere (json.JSONDecodeError and from_json's errors alike)
            pass
        events: list[Event] = []
        for line in lines:
            try:
                decoded = json.loads(line)
                if not isinstance(decoded, dict):
                    raise ValueError("not a JSON object")
                events.append(from_json(decoded))
            except ValueError as exc:
                _log.warning("skipping a malformed line in %s: %s", self.path, exc)
        return events

    def more(self) -> bool:
        """Whether the last read was cut at the limit (more is already written)."""
        try:
            return self.path.stat().st_size > self.offset
        except OSError:
            return False


async def follow_batches(
    store: OperationStore, op_id: str, *, poll: float = 0.1, limit: int = BATCH_BYTES, raw_log_lines: bool = False
) -> AsyncGenerator[list[Event | bytes], None]:
    """Replay an operation's log and tail it, as lists of events: what ``operations.follow`` yields, batched.

    At most ``limit`` bytes are read and decoded at a time (a few milliseconds), and the loop gets a turn
    between batches; the index (SQLite) is read in a thread. With ``raw_log_lines`` the log lines come as the
    stored bytes, for :func:`decode_log_line` to decode when (if ever) they are shown: a viewer of a
    100,000-line log decodes the screenful it shows, not the whole log. The stream ends with an
    ``OperationFinished``: the logged one, or one made from the index when the operation ended without logging
    it (its owner died).

    Raises:
        NotFoundError: no such operation.
        BackendError: the store or the log cannot be read.
    """
    record = await asyncio.to_thread(store.get, op_id)
    reader = _BatchReader(store.log_path(record.id), limit, raw_log_lines)
    while True:
        events = reader.read()  # a bounded batch: ~10 ms of decoding, cheaper here than through a thread
        end = next((index for index, event in enumerate(events) if isinstance(event, OperationFinished)), None)
        if end is not None:
            yield events[: end + 1]
            return
        if events:
            yield events
            await asyncio.sleep(0)  # let keys and frames in between batches
            continue
        if reader.more():
            continue
        record = await asyncio.to_thread(store.get, record.id)
        if record.finished:
            # The closing event may have landed between the read and the look at the index.
            while tail := reader.read():
                end = next((index for index, event in enumerate(tail) if isinstance(event, OperationFinished)), None)
                if end is not None:
                    yield tail[: end + 1]
                    return
                yield tail
            yield [OperationFinished(record.id, record.state, record.finished_at or utc_now(), record.error,
                                     record.result)]
            return
        await asyncio.sleep(poll)
