"""Engine values → table cells and state class names: the console's one pure mapping (colours live in orbit.tcss).

Screens never decide how a value looks. They ask this module for :class:`Cell` tuples, each carrying its text
and, where the value is a state, the state class (``-drifted``, ``-behind``, ``-failed`` …) that ``orbit.tcss``
styles. Nothing here imports Textual or Rich, so every mapping is a table-driven unit test.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from orbit_ops.config import SolutionSpec, WorkspaceConfig
from orbit_ops.drift import FRESHNESS_ORDER, ReleaseIndex, freshness
from orbit_ops.events import LogLine
from orbit_ops.names import APP_COMPONENTS
from orbit_ops.operations import OperationRecord
from orbit_ops.releases import ReleaseRecord
from orbit_ops.tags import ReleaseTag
from orbit_ops.versions import LATEST, image_tag
from orbit_ops.workspace import ComponentSummary

# Every state the engine reports, and the class orbit.tcss styles it with.
STATE_CLASSES: dict[str, str] = {
    # sync (SPEC §3.2)
    "synced": "-synced",
    "drifted": "-drifted",
    "missing": "-missing",
    "unknown": "-unknown",
    # freshness (SPEC §3.2)
    "current": "-current",
    "behind": "-behind",
    "unreleased": "-unreleased",
    "floating": "-floating",
    # operations and sweep members (SPEC §3.5)
    "queued": "-queued",
    "pending": "-queued",
    "running": "-running",
    "succeeded": "-succeeded",
    "failed": "-failed",
    "cancelled": "-cancelled",
    "interrupted": "-interrupted",
    "skipped": "-cancelled",
    # tags
    "prerelease": "-prerelease",
    "released": "-succeeded",
}
STYLED_CLASSES: frozenset[str] = frozenset(STATE_CLASSES.values()) | {"-muted", "-selected"}

NOT_KNOWN = "—"  # a value the engine has not supplied (never a guess)
FRESHNESS_MARKS = {"current": "", "behind": " ↓", "unreleased": " !", "floating": ""}

COMPONENT_COLUMNS = ("component", "latest tag", "latest release", "unreleased tags", "on latest")
TAG_COLUMNS = ("version", "commit", "date", "kind", "release", "built at", "solutions")
SOLUTION_COLUMNS = ("", "id", "name", *APP_COMPONENTS, "freshness", "sync", "last operation")
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


def state_cell(value: str | None) -> Cell:
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


# --- rows ----------------------------------------------------------------------------------------------------


def component_row(summary: ComponentSummary) -> tuple[Cell, ...]:
    behind = summary.solutions and summary.solutions_on_latest < summary.solutions
    return (
        Cell(summary.name),
        Cell(summary.latest_tag or NOT_KNOWN, None if summary.latest_tag else "-muted"),
        Cell(summary.latest_release or "none", None if summary.latest_release else "-unreleased"),
        Cell(", ".join(summary.unreleased) or NOT_KNOWN, "-unreleased" if summary.unreleased else "-muted"),
        Cell(
            f"{summary.solutions_on_latest}/{summary.solutions}" if summary.solutions else NOT_KNOWN,
            "-behind" if behind else ("-current" if summary.solutions else "-muted"),
        ),
    )


def tag_row(tag: ReleaseTag, record: ReleaseRecord | None, pins: int) -> tuple[Cell, ...]:
    return (
        Cell(tag.version, "-prerelease" if tag.prerelease else None),
        Cell(short_commit(tag.commit)),
        Cell(date_only(tag.date)),
        Cell("annotated" if tag.annotated else "lightweight", None if tag.annotated else "-muted"),
        Cell(short_digest(record.digest), "-succeeded") if record else Cell("unreleased", "-unreleased"),
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

    @property
    def cell(self) -> Cell:
        text = self.pinned
        if self.pinned == LATEST:
            text = f"latest ({self.resolved})" if self.resolved else "latest"
        return Cell(text + FRESHNESS_MARKS.get(self.freshness, ""), state_class(self.freshness))


def pin_views(spec: SolutionSpec, releases: ReleaseIndex) -> tuple[PinView, ...]:
    """The freshness of each app pin of ``spec`` (computable from config and records alone)."""
    views = []
    for component in APP_COMPONENTS:
        pin = spec.pin(component)
        resolved = releases.resolve(component, pin)
        released = resolved is not None and releases.released(component, resolved)
        latest = releases.latest(component)
        views.append(PinView(component, pin, resolved, latest, freshness(pin, resolved, latest, released)))
    return tuple(views)


def worst_freshness(pins: Iterable[PinView]) -> str:
    values = [pin.freshness for pin in pins]
    return next((value for value in FRESHNESS_ORDER if value in values), "current")


@dataclass(frozen=True)
class SolutionView:
    """A solution row: config and pins now; sync and last operation once the engine supplies them."""

    spec: SolutionSpec
    pins: tuple[PinView, ...]
    sync: str | None = None  # hook: SolutionStatus.sync from the provisioning engine
    last_operation: OperationRecord | None = None  # hook: the newest operation that touched this solution

    @property
    def freshness(self) -> str:
        return worst_freshness(self.pins)

    def search_text(self) -> str:
        return " ".join([self.spec.id, self.spec.display_name, *(pin.pinned for pin in self.pins)]).lower()


def solution_row(view: SolutionView, *, selected: bool = False) -> tuple[Cell, ...]:
    last = view.last_operation
    return (
        Cell("✓" if selected else " ", "-selected" if selected else None),
        Cell(view.spec.id),
        Cell(view.spec.display_name),
        *(pin.cell for pin in view.pins),
        state_cell(view.freshness),
        state_cell(view.sync),
        Cell(f"{last.kind} {last.state}", state_class(last.state)) if last else Cell(NOT_KNOWN, "-muted"),
    )


def operation_row(record: OperationRecord) -> tuple[Cell, ...]:
    return (
        Cell(record.id),
        Cell(record.kind),
        Cell(record.target),
        state_cell(record.state),
        Cell(progress_text(record.done, record.total)),
        Cell(timestamp(record.created_at)),
        Cell(timestamp(record.finished_at)),
    )


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


# --- provisioning: resources, plans, rolls -----------------------------------------------------------------

RESOURCE_COLUMNS = ("kind", "name", "sync", "diff")


def resource_row(kind: str, name: str, sync: str, diff: Iterable[str]) -> tuple[Cell, ...]:
    """One resource of a solution, desired vs live: ``diff`` lists the field-level differences."""
    return (Cell(kind), Cell(name), state_cell(sync), Cell("; ".join(diff) or ("" if sync == "synced" else NOT_KNOWN)))


def plan_lines(planned: Iterable[tuple[SolutionSpec, object, str | None]]) -> list[str]:
    """What provisioning would do, per solution, as ``orbit plan`` prints it (refusals with their reason).

    ``planned`` is ``orbit_ops.sweeps.plan_many``'s answer: (spec, SolutionPlan or None, reason or None).
    """
    lines: list[str] = []
    creates = updates = refused = count = 0
    for spec, plan, reason in planned:
        count += 1
        if plan is None:
            refused += 1
            lines.append(f"{spec.id}: refused: {reason}")
            continue
        creates += plan.creates  # type: ignore[attr-defined]
        updates += plan.updates  # type: ignore[attr-defined]
        lines.append(f"{spec.id}: {plan.summary()}")  # type: ignore[attr-defined]
        lines += [f"    note: {note}" for note in plan.notes]  # type: ignore[attr-defined]
        for action in plan.actions:  # type: ignore[attr-defined]
            if action.action != "none":
                lines.append(f"    {action.action} {action.kind} {action.name}: {'; '.join(action.changes)}")
    lines.append(plan_totals(count, creates, updates, refused))
    return lines


def plan_totals(count: int, creates: int, updates: int, refused: int) -> str:
    return f"plan: {count} solution(s), {creates} to create, {updates} to update" + (
        f", {refused} refused" if refused else ""
    )


def roll_lines(changes: Iterable[tuple[str, str, str, str]], unchanged: Iterable[str], version: str) -> list[str]:
    """A roll's pin changes (id, component, before, after) and the solutions already on ``version``."""
    lines = [f"{solution}: {component} {before} → {after}" for solution, component, before, after in changes]
    already = list(unchanged)
    if already:
        lines.append(f"already on {version}: {', '.join(already)}")
    return lines or ["nothing to change"]
