"""Health and revisions → cells and lines: the solution detail's health and revisions tables, and the notice of
solutions whose health turned degraded (pure, like ``orbit_tui.render``; colours live in orbit.tcss).

A revision's states are the service's own words (``Provisioned``, ``RunningAtMaxScale``, ``Unhealthy``), shown as
they came; the state class only colours the ones Orbit knows (decision 0043's mapping), and a value it does not
know is shown plain, never hidden. Reasons and errors come from the platform: they are redacted here (a
container's words may quote its env), and every cell is shown with its control characters as escapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from orbit_ops.console_queries import AppRevisions
from orbit_ops.fleet.drift import AppStatus
from orbit_ops.fleet.health import Health, RevisionFacts
from orbit_ops.redact import redact
from orbit_tui.render import NOT_KNOWN, Cell, state_cell

# "health" is the app's (Orbit's judgement, on its first row); "health state" is the revision's healthState.
REVISION_COLUMNS = ("app", "health", "revision", "provisioning", "running", "health state", "active", "replicas",
                    "restarts", "age")
NOTICE_SHOWN = 5  # solutions named in one degraded notice; the rest are counted

# The service's revision states (lower-cased) Orbit knows, and how they look.
REVISION_STATES: dict[str, str] = {
    "provisioned": "-healthy",
    "running": "-healthy",
    "runningatmaxscale": "-healthy",
    "healthy": "-healthy",
    "provisioning": "-progressing",
    "processing": "-progressing",
    "activating": "-progressing",
    "failed": "-degraded",
    "activationfailed": "-degraded",
    "degraded": "-degraded",
    "unhealthy": "-degraded",
    "stopped": "-muted",
    "deprovisioning": "-muted",
    "deprovisioned": "-muted",
    "none": "-muted",
}


def shown_reason(reason: str | None) -> str:
    """A health reason as the console shows it: redacted; empty when there is none."""
    return redact(reason) if reason else ""


def health_lines(apps: Sequence[AppStatus]) -> list[str]:
    """Why each app that is not healthy is not (``orbit  degraded: image pull failed: …``; apps with the same
    health and reason share a line), or that all of them run."""
    said: dict[tuple[str, str], list[str]] = {}
    for app in apps:
        if app.health.health is not Health.HEALTHY:
            why = shown_reason(app.health.health_reason) or "no reason given"
            said.setdefault((str(app.health.health), why), []).append(app.component)
    lines = [f"{', '.join(components):<6} {health}: {why}" for (health, why), components in said.items()]
    return lines or (["every app's latest revision runs"] if apps else ["health not read yet"])


def revision_state_cell(value: str) -> Cell:
    """A revision state in the service's words, coloured when Orbit knows it."""
    return Cell(value, REVISION_STATES.get(value.strip().lower())) if value else Cell(NOT_KNOWN, "-muted")


def age_text(since: datetime | None, now: datetime) -> str:
    """``45 s``, ``6 min``, ``3 h``, ``2 d`` since ``since`` (a time ahead of ``now`` counts as 0 s)."""
    if since is None:
        return NOT_KNOWN
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def revision_row(app: Cell, health: Cell, revision: RevisionFacts, now: datetime) -> tuple[Cell, ...]:
    return (
        app,
        health,
        Cell(revision.name),
        revision_state_cell(revision.provisioning_state),
        revision_state_cell(revision.running_state),
        revision_state_cell(revision.health_state),
        Cell("yes", "-healthy") if revision.active else Cell("no", "-muted"),
        Cell(str(revision.replicas)),
        Cell(str(revision.restarts), "-degraded" if revision.restarts else None),
        Cell(age_text(revision.created, now)),
    )


def revision_rows(apps: Sequence[AppRevisions], health: Mapping[str, AppStatus],
                  now: datetime) -> list[tuple[str, tuple[Cell, ...]]]:
    """Each app's newest revisions (newest first), keyed ``app/revision``, its component and health (from
    ``health``, component → status; a dash before the platform was read) on its first row; an app without any
    revision, or whose revisions could not be read, is one row saying so."""
    rows: list[tuple[str, tuple[Cell, ...]]] = []
    dash = Cell(NOT_KNOWN, "-muted")
    for app in apps:
        status = health.get(app.component)
        first = (Cell(app.component), state_cell(str(status.health.health) if status else None))
        if app.error is not None or not app.revisions:
            said = Cell(f"not read: {redact(app.error)}", "-problem") if app.error else Cell("no revision", "-muted")
            rows.append((app.app, (*first, said, *(dash for _ in REVISION_COLUMNS[3:]))))
            continue
        for index, revision in enumerate(app.revisions):
            lead = first if index == 0 else (Cell(""), Cell(""))
            rows.append((f"{app.app}/{revision.name}", revision_row(*lead, revision, now)))
    return rows


def degraded_notice(solutions: Sequence[tuple[str, str | None]]) -> tuple[str, str]:
    """(title, message) announcing solutions whose health turned degraded: each named with its reason."""
    lines = [f"{solution_id}: {shown_reason(reason) or 'no reason given'}"
             for solution_id, reason in solutions[:NOTICE_SHOWN]]
    more = len(solutions) - NOTICE_SHOWN
    if more > 0:
        lines.append(f"… and {more} more (filter: health:degraded)")
    count = len(solutions)
    return f"Health degraded: {count} solution{'s' if count != 1 else ''}", "\n".join(lines)

