"""Engine values → table cells and state class names: the console's one pure mapping (colours live in orbit.tcss).

Screens never decide how a value looks. They ask this module for :class:`Cell` tuples, each carrying its text
and, where the value is a state, the state class (``-drifted``, ``-behind``, ``-failed`` …) that ``orbit.tcss``
styles. Nothing here imports Textual or Rich, so every mapping is a table-driven unit test.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from orbit_ops.catalog.releases import ReleaseRecord
from orbit_ops.catalog.tags import ReleaseTag
from orbit_ops.config.model import InvalidSolution, Listed, SolutionSpec, WorkspaceConfig
from orbit_ops.fleet.drift import FRESHNESS_ORDER, ReleaseIndex, freshness
from orbit_ops.fleet.status import LastOperation
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.operations.events import LogLine
from orbit_ops.operations.log import decode_log_line
from orbit_ops.operations.records import OperationRecord
from orbit_ops.versions import LATEST, image_tag
from orbit_ops.workspace import ComponentSummary

# Every state the engine reports, and the class orbit.tcss styles it with.
STATE_CLASSES: dict[str, str] = {
    # sync (SPEC §3.2)
    "synced": "-synced",
    "drifted": "-drifted",
    "missing": "-missing",
    "unknown": "-unknown",
    "invalid": "-invalid",  # a solution file that breaks a rule (SPEC §2): its own row, never a blind fleet
    # freshness (SPEC §3.2)
    "current": "-current",
    "behind": "-behind",
    "unreleased": "-unreleased",
    "floating": "-floating",
    # health (SPEC §3.6; missing and unknown as for sync)
    "healthy": "-healthy",
    "progressing": "-progressing",
    "degraded": "-degraded",
    # operations and sweep members (SPEC §3.5)
    "queued": "-queued",
    "pending": "-queued",
    "running": "-running",
    "succeeded": "-succeeded",
    "failed": "-failed",
    "cancelled": "-cancelled",
    "interrupted": "-interrupted",
    "skipped": "-cancelled",
    "soaking": "-progressing",  # a wave of a roll in waves, watched after its provisioning
    # tags
    "prerelease": "-prerelease",
    "released": "-succeeded",
}
STYLED_CLASSES: frozenset[str] = frozenset(STATE_CLASSES.values()) | {"-muted", "-selected", "-problem"}

NOT_KNOWN = "—"  # a value the engine has not supplied (never a guess)
FRESHNESS_MARKS = {"current": "", "behind": " ↓", "unreleased": " !", "floating": ""}
PROBLEM_MARK = "⚠"  # an integrity problem (moved tag, lost image, vanished record): the text is in the detail

COMPONENT_COLUMNS = ("component", "latest tag", "latest release", "unreleased tags", "on latest", "integrity")
TAG_COLUMNS = ("version", "commit", "date", "kind", "release", "built at", "solutions")
SOLUTION_COLUMNS = ("", "id", "name", *APP_COMPONENTS, "freshness", "sync", "health", "last operation")
OPERATION_COLUMNS = ("id", "kind", "target", "state", "progress", "created", "finished")
CHILD_COLUMNS = ("solution", "state", "message")


@dataclass(frozen=True)
class Cell:
    """One table cell: its text and the state class that styles it (None: plain)."""

    text: str
    state: str | None = None


def state_class(value: str | None) -> str | None:
    """The class of an engine state (``drifted`` → ``-drifted``); None for a value that is not a state."""
    return STATE_CLASSES.get(value or "")


@functools.lru_cache(maxsize=256)
def state_cell(value: str | None) -> Cell:
    """The cell of a state (one shared cell per value: a fleet's 10,000 rows hold a handful of states)."""
    return Cell(value or NOT_KNOWN, state_class(value) if value else "-muted")


# --- small formats -------------------------------------------------------------------------------------------


def short_commit(commit: str) -> str:
    return commit[:12]


def short_digest(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def timestamp(iso: str | None, *, seconds: bool = True) -> str:
    """``2026-11-24T16:18:15.123Z`` → ``2026-11-24 16:18:15`` (UTC, as the engine stores it)."""
    if not iso:
        return ""
    text = iso.replace("T", " ")
    return text[:19] if seconds else text[:16]


def date_only(iso: str) -> str:
    return iso[:10]


def clock_time(moment: datetime) -> str:
    """``HH:MM:SS`` in UTC (a naive datetime is taken to be UTC already)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%H:%M:%S")


def progress_text(done: int, total: int) -> str:
    if total:
        return f"{done}/{total}"
    return str(done) if done else ""


def display_path(path: Path | str) -> str:
    """A path as an operator reads it: the home folder shortened to ``~``."""
    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/", "~") and (text == home or text.startswith(home.rstrip("/") + "/")):
        return "~" + text[len(home.rstrip("/")) :]
    return text


def describe_target(config: WorkspaceConfig) -> str:
    """Where this workspace builds and provisions: ``local``, or subscription / resource group / registry."""
    azure = config.azure
    if config.backend != "azure" or azure is None:
        return config.backend
    return f"azure {azure.subscription_id} / {azure.resource_group} / {azure.registry_login_server}"


def images_to_push(registry: str, component: str, version: str) -> list[str]:
    """The references a build of ``component`` ``version`` pushes: ``:<version>`` and ``:latest``."""
    return [f"{registry}/{component}:{image_tag(version)}", f"{registry}/{component}:latest"]


def log_text(event: LogLine) -> str:
    """One log line as the console and ``orbit logs`` print it: ``HH:MM:SS [child] text``."""
    prefix = f"[{event.child}] " if event.child else ""
    return f"{event.at[11:19]} {prefix}{event.text}"


def stored_log_text(raw: bytes) -> str:
    """A stored log line (``follow_batches(raw_log_lines=True)``) as :func:`log_text` shows it; a line that
    cannot be read is shown as such, in its place, rather than dropped."""
    try:
        return log_text(decode_log_line(raw))
    except ValueError as exc:
        return f"(unreadable log line: {exc})"


# --- rows ----------------------------------------------------------------------------------------------------


def component_row(summary: ComponentSummary, problems: int | None = None) -> tuple[Cell, ...]:
    """A component; ``problems``: how many of its release records failed verification (None: not checked yet)."""
    behind = summary.solutions and summary.solutions_on_latest < summary.solutions
    if problems is None:
        integrity = Cell(NOT_KNOWN, "-muted")
    elif problems:
        integrity = Cell(f"{PROBLEM_MARK} {problems} record problem{'s' if problems != 1 else ''}", "-problem")
    else:
        integrity = Cell("ok", "-succeeded")
    return (
        Cell(summary.name),
        Cell(summary.latest_tag or NOT_KNOWN, None if summary.latest_tag else "-muted"),
        Cell(summary.latest_release or "none", None if summary.latest_release else "-unreleased"),
        Cell(", ".join(summary.unreleased) or NOT_KNOWN, "-unreleased" if summary.unreleased else "-muted"),
        Cell(
            f"{summary.solutions_on_latest}/{summary.solutions}" if summary.solutions else NOT_KNOWN,
            "-behind" if behind else ("-current" if summary.solutions else "-muted"),
        ),
        integrity,
    )


def tag_row(tag: ReleaseTag, record: ReleaseRecord | None, pins: int, *, problem: bool = False) -> tuple[Cell, ...]:
    """A release tag; ``problem``: its release record failed verification (the text is in the note below)."""
    release = Cell(short_digest(record.digest), "-succeeded") if record else Cell("unreleased", "-unreleased")
    return (
        Cell(tag.version, "-prerelease" if tag.prerelease else None),
        Cell(short_commit(tag.commit)),
        Cell(date_only(tag.date)),
        Cell("annotated" if tag.annotated else "lightweight", None if tag.annotated else "-muted"),
        problem_cell(release) if problem else release,
        Cell(timestamp(record.built_at, seconds=False) if record else NOT_KNOWN, None if record else "-muted"),
        Cell(str(pins) if pins else "", None),
    )


@dataclass(frozen=True)
class PinView:
    """One app pin of a solution, judged against the release records."""

    component: str
    pinned: str
    resolved: str | None
    latest: str | None
    freshness: str

    @functools.cached_property
    def cell(self) -> Cell:
        text = self.pinned
        if self.pinned == LATEST:
            text = f"latest ({self.resolved})" if self.resolved else "latest"
        return Cell(text + FRESHNESS_MARKS.get(self.freshness, ""), state_class(self.freshness))


def pin_views(
    spec: Listed, releases: ReleaseIndex, judged: dict[tuple[str, ...], tuple[PinView, ...]] | None = None
) -> tuple[PinView, ...]:
    """The freshness of each app pin of ``spec`` (computable from config and records alone).

    ``judged``: the pins judged so far against the same ``releases``, by the versions pinned: a fleet pins a few
    versions, so 10,000 solutions share a few dozen tuples (decision 0078) instead of each judging its own.
    """
    if judged is not None:
        try:
            pinned = _PINNED(spec.images)  # the versions pinned, at C speed: 10,000 solutions at each load
        except KeyError:
            pinned = tuple(spec.pin(component) for component in APP_COMPONENTS)  # says which pin is missing
        found = judged.get(pinned)
        if found is None:
            found = judged[pinned] = pin_views(spec, releases)
        return found
    views = []
    for component in APP_COMPONENTS:
        pin = spec.pin(component)
        resolved = releases.resolve(component, pin)
        released = resolved is not None and releases.released(component, resolved)
        latest = releases.latest(component)
        views.append(PinView(component, pin, resolved, latest, freshness(pin, resolved, latest, released)))
    return tuple(views)


_PINNED = operator.itemgetter(*(f"{component}_tag" for component in APP_COMPONENTS))


def worst_freshness(pins: Iterable[PinView]) -> str:
    values = [pin.freshness for pin in pins]
    return next((value for value in FRESHNESS_ORDER if value in values), "current")


@dataclass(frozen=True)
class SolutionView:
    """A solution row: config and pins now; sync, health and last operation once the engine supplies them.

    ``spec`` is the solution's whole spec, or only its head (id, name, pins, labels) while the console shows the
    fleet from the solution cache's heads before the specs have been read (decision 0094): :attr:`whole` says."""

    spec: Listed
    pins: tuple[PinView, ...]
    sync: str | None = None  # SolutionStatus.sync from the last platform read
    health: str | None = None  # SolutionStatus.health from the last platform read
    health_reason: str | None = None  # the worst app's reason, named by its component
    last_operation: LastOperation | None = None  # the newest operation that touched it, with its own state in it
    problems: tuple[str, ...] = ()  # integrity problems of its pins (console_queries.integrity_report)
    problem_pins: frozenset[str] = frozenset()  # the components whose pin has one

    @functools.cached_property
    def freshness(self) -> str:
        """The worst freshness of its pins (computed once per view: filters and counts ask it of every row)."""
        return worst_freshness(self.pins)

    @functools.cached_property
    def search_text(self) -> str:
        """What ``/`` words are looked up in: id, name, pins and labels (``ring=canary``), lower-case (computed once
        per view)."""
        labels = (f"{key}={value}" for key, value in self.spec.labels.items())
        return " ".join([self.spec.id, self.spec.display_name, *(pin.pinned for pin in self.pins), *labels]).lower()

    @property
    def whole(self) -> SolutionSpec | None:
        """The solution's whole spec; None while this view holds only its head."""
        return self.spec if isinstance(self.spec, SolutionSpec) else None

    @classmethod
    def plain(cls, spec: Listed, pins: tuple[PinView, ...]) -> SolutionView:
        """``SolutionView(spec, pins)``, with every other field at its default, made at once (the dataclass's
        ``__init__`` sets eight fields one by one: 10,000 views are made at each load; decision 0088)."""
        view = object.__new__(cls)
        view.__dict__.update(_PLAIN_VIEW, spec=spec, pins=pins)
        return view

    def with_live(self, sync: str | None, health: str | None, health_reason: str | None,
                  last_operation: LastOperation | None) -> SolutionView:
        """This view with another platform read's sync, health and reason and another last operation: what
        ``dataclasses.replace`` gives, made as a copy of the view's fields and of what it computed of its spec
        and pins (freshness, search words), which these four do not change. A platform read of 10,000
        solutions makes 10,000 of these (decision 0088)."""
        view = object.__new__(SolutionView)
        view.__dict__.update(self.__dict__, sync=sync, health=health, health_reason=health_reason,
                             last_operation=last_operation)
        return view


# Every field of a SolutionView but the two given, at its default (each has a plain default: a test holds it so).
_PLAIN_VIEW = {field.name: field.default for field in dataclasses.fields(SolutionView)
               if field.name not in ("spec", "pins")}


def solution_row(view: SolutionView, *, selected: bool = False) -> tuple[Cell, ...]:
    """The Solutions row; the last operation is shown with *this solution's* state in it (a sweep that failed
    overall may have succeeded here), and a pin with an integrity problem carries the problem mark."""
    last = view.last_operation
    problem_pins = view.problem_pins
    return (
        SELECTED if selected else UNSELECTED,
        Cell(view.spec.id),
        Cell(view.spec.display_name),
        *(problem_cell(pin.cell) if problem_pins and pin.component in problem_pins else pin.cell for pin in view.pins),
        state_cell(view.freshness),
        state_cell(view.sync),
        state_cell(view.health),
        _last_operation_cell(last.kind, last.state) if last else NOT_KNOWN_CELL,
    )


def same_row(before: SolutionView, after: SolutionView) -> bool:
    """Whether two views of one solution show the same row: what :func:`solution_row` shows of them is equal. A
    refresh keeps the spec and pins objects of the views it did not change, so this is a few identity checks
    then; a reload (new objects, most of them equal) compares the values shown; a last operation shows its kind
    and state only, so another operation that ended the same is the same row."""
    old, new = before.spec, after.spec
    if old is not new and (old.id, old.display_name) != (new.id, new.display_name):
        return False
    last, then = before.last_operation, after.last_operation
    if last is not then and (last is None or then is None or (last.kind, last.state) != (then.kind, then.state)):
        return False
    return (
        (before.pins is after.pins or before.pins == after.pins)
        and before.sync == after.sync
        and before.health == after.health
        and before.problem_pins == after.problem_pins
    )


SELECTED, UNSELECTED, NOT_KNOWN_CELL = Cell("✓", "-selected"), Cell(" "), Cell(NOT_KNOWN, "-muted")


def solution_column_texts(views: Sequence[SolutionView]) -> list[set[str]]:
    """The distinct texts of each Solutions column over ``views``, as :func:`solution_row` makes them, selected or
    not: what each column must be wide enough for. Ids and names are taken as they are; the other columns from
    one row per distinct look (pins, problem pins, sync, health, last operation), which a fleet's rows repeat:
    10,000 solutions are a few hundred rows made, not 10,000 (decision 0088). The looks are told apart at C speed
    (``operator.attrgetter`` and ``id`` over the views, every publication of 10,000 of them), the last operations
    by identity first, then by what their cell shows."""
    columns: list[set[str]] = [set() for _ in SOLUTION_COLUMNS]
    columns[0].update((SELECTED.text, UNSELECTED.text))
    specs = list(map(_SPEC, views))
    columns[1].update(map(_ID, specs))
    columns[2].update(map(_NAME, specs))
    lasts = list(map(_LAST, views))
    # The pins by identity: judged once per tuple of versions pinned, shared by the views (all alive here).
    looked = zip(map(id, map(_PINS, views)), map(_SHOWN_STATES, views), map(id, lasts), strict=True)
    by_identity = dict(zip(looked, views, strict=True))
    looks: dict[tuple[object, ...], SolutionView] = {}
    for (pins, states, _), view in by_identity.items():
        last = view.last_operation
        looks.setdefault((pins, states, last and (last.kind, last.state)), view)
    for view in looks.values():
        for column, cell in enumerate(solution_row(view)[3:], start=3):
            columns[column].add(cell.text)
    return columns


_SPEC, _ID, _NAME = operator.attrgetter("spec"), operator.attrgetter("id"), operator.attrgetter("display_name")
_PINS, _LAST = operator.attrgetter("pins"), operator.attrgetter("last_operation")
_SHOWN_STATES = operator.attrgetter("problem_pins", "sync", "health")


@functools.lru_cache(maxsize=256)
def _last_operation_cell(kind: str, state: str) -> Cell:
    return Cell(f"{kind} {state}", state_class(state))


INVALID_KEY_PREFIX = "file:"  # row keys of invalid files: never a solution id (ids have no ':'), never acted on


def invalid_key(entry: InvalidSolution) -> str:
    """The row key of an invalid solution file (by file name: two files may claim one id)."""
    return INVALID_KEY_PREFIX + entry.path.name


def invalid_row(entry: InvalidSolution) -> tuple[Cell, ...]:
    """The Solutions row of a solution file that breaks a rule: its id (the file's stem), ``invalid``, the file."""
    return (
        Cell(" "),
        Cell(entry.id),
        Cell(f"{PROBLEM_MARK} {entry.path.name}", "-problem"),
        *(Cell(NOT_KNOWN, "-muted") for _ in APP_COMPONENTS),
        Cell(NOT_KNOWN, "-muted"),
        state_cell("invalid"),
        Cell(NOT_KNOWN, "-muted"),
        Cell(NOT_KNOWN, "-muted"),
    )


def problem_cell(cell: Cell) -> Cell:
    """``cell`` marked as having an integrity problem."""
    return Cell(f"{cell.text} {PROBLEM_MARK}", "-problem")


def operation_row(record: OperationRecord, member: str | None = None) -> tuple[Cell, ...]:
    """An operation; with ``member`` (a solution), the state shown is that solution's own state in it."""
    child = record.children.get(member) if member else None
    return (
        Cell(record.id),
        Cell(record.kind),
        Cell(record.target),
        state_cell(child.state if child else record.state),
        Cell(progress_text(record.done, record.total)),
        Cell(timestamp(record.created_at)),
        Cell(timestamp(record.finished_at)),
    )


TEAM_COLUMNS = ("user", "host")  # beside OPERATION_COLUMNS when the state store is shared


def team_cells(record: OperationRecord) -> tuple[Cell, ...]:
    """Who started the operation and where (the shared state store's record; this machine's index has no user)."""
    return Cell(record.user or ""), Cell(record.host)


def child_row(child: str, state: str, message: str) -> tuple[Cell, ...]:
    return (Cell(child), state_cell(state), Cell(message))


def operation_summary(kind: str, target: str, op_id: str, state: str, error: str | None = None) -> str:
    """One line naming an operation and how it stands, for headers and notifications."""
    tail = f": {error}" if error else ""
    return f"{kind} {target} {state}{tail} · {op_id}"


def notification_severity(state: str) -> Literal["information", "warning", "error"]:
    """How loudly the end of an operation is announced."""
    if state == "succeeded":
        return "information"
    return "warning" if state == "cancelled" else "error"


def child_counts(children: Mapping[str, str]) -> str:
    """``3 succeeded, 1 failed, 2 running`` for a sweep's members."""
    counts: dict[str, int] = {}
    for state in children.values():
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
