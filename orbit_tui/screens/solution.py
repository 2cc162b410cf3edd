"""One solution: its Azure names, its pins judged against the releases, its env values (secrets masked),
integrity problems of its pins, each app's health and its newest revisions, desired vs live per resource (kind,
name, sync and the field-level diff), and the operations that named it. ``u`` rolls one app back to the pin it
had before its last roll (``orbit rollback``), asked with the same question as any roll.

Health, sync and resources come from the fleet model's platform read, the revisions from a read of this
solution's three apps; both are read again on every interval while the detail is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, Static

from orbit_ops.config.model import InvalidSolution, SolutionSpec
from orbit_ops.fleet.drift import ResourceStatus, SolutionStatus
from orbit_ops.names import azure_names
from orbit_ops.operations.kinds import SWEEPING_KINDS
from orbit_ops.redact import shown_env_value
from orbit_ops.text import visible
from orbit_tui.health_render import REVISION_COLUMNS, health_lines, revision_rows
from orbit_tui.messages import LogRequested, Part, ReadRequested, RollBackRequested
from orbit_tui.model import ConsoleModel, HistoryRead, RevisionsRead
from orbit_tui.plan_render import RESOURCE_COLUMNS, resource_row
from orbit_tui.render import (
    NOT_KNOWN,
    OPERATION_COLUMNS,
    PROBLEM_MARK,
    Cell,
    SolutionView,
    display_path,
    operation_row,
    problem_cell,
    state_cell,
)
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.widgets import StateTable

PIN_COLUMNS = ("app", "pinned", "resolved", "latest release", "freshness")


class SolutionScreen(OrbitScreen):
    """Pushed from Solutions with Enter."""

    AUTO_FOCUS = "#history"
    SHOWS: ClassVar[Part | None] = "solution"
    MUTATING = frozenset({"roll_back"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u", "roll_back", "Roll back", tooltip="Roll an app back to its pin before its last roll (asks first)"),
    ]

    def __init__(self, model: ConsoleModel, view: SolutionView, spec: SolutionSpec,
                 status: SolutionStatus | None = None) -> None:
        """``spec``: the solution's whole spec (``view.whole``: the detail is opened once the specs are read)."""
        super().__init__(model)
        self.view = view
        self.spec = spec
        self.status = status
        self.revisions: RevisionsRead | None = None  # the last read of its apps' revisions

    def compose_body(self) -> ComposeResult:
        spec = self.spec
        names = azure_names(spec.id)
        yield Label(visible(f"{spec.id}  ·  {spec.display_name}"), classes="screen-title", markup=False)
        with Horizontal(id="solution-top"):
            with Vertical(id="solution-names"):
                yield Label("Names", classes="section-title", markup=False)
                yield Static(
                    "\n".join(
                        [f"h         {names.h}"]
                        + [f"app       {name}" for name in names.apps.values()]
                        + [f"share     {name}" for name in names.shares.values()]
                        + [f"storage   {name}" for name in names.storages.values()]
                        + [f"file      {visible(spec.path.name)}", f"quota     {spec.share_quota_gib} GiB"]
                        + ([f"labels    {visible(', '.join(f'{k}={v}' for k, v in sorted(spec.labels.items())))}"]
                           if spec.labels else [])
                    ),
                    markup=False,
                )
            with Vertical(id="solution-pins"):
                yield Label("Pins", classes="section-title", markup=False)
                yield StateTable(PIN_COLUMNS, id="pins", openable=False)
                yield Label(self.sync_note(), classes="note", id="solution-sync", markup=False)
                yield Label("Env", classes="section-title", markup=False)
                yield Static(self.env_text(), id="solution-env", classes="note", markup=False)
                if any(spec.secrets.values()) or any(spec.secret_env.values()):
                    yield Label("Secrets (Key Vault references)", classes="section-title", markup=False)
                    yield Static(self.secrets_text(), id="solution-secrets", classes="note", markup=False)
        if self.view.problems:
            yield Label(f"Integrity {PROBLEM_MARK}", classes="section-title", markup=False)
            yield Static("\n".join(visible(problem) for problem in self.view.problems), classes="problems",
                         id="solution-problems", markup=False)
        yield Label("Health and revisions (newest first)", classes="section-title", markup=False)
        yield StateTable(REVISION_COLUMNS, id="revisions", openable=False)
        yield Static("", id="solution-health", classes="note", markup=False)
        yield Label("Resources (desired vs live)", classes="section-title", markup=False)
        yield StateTable(RESOURCE_COLUMNS, id="resources", openable=False)
        yield Label("Operations", classes="section-title", markup=False)
        yield StateTable(OPERATION_COLUMNS, id="history")

    def on_mount(self) -> None:
        self.query_one("#pins", StateTable).show_cursor = False
        self.query_one("#pins", StateTable).show_rows(
            (
                pin.component,
                (
                    Cell(pin.component),
                    problem_cell(Cell(pin.pinned)) if pin.component in self.view.problem_pins else Cell(pin.pinned),
                    Cell(pin.resolved or NOT_KNOWN),
                    Cell(pin.latest or NOT_KNOWN),
                    state_cell(pin.freshness),
                ),
            )
            for pin in self.view.pins
        )
        for table in ("#resources", "#revisions"):
            self.query_one(table, StateTable).show_cursor = False
        self.show_status()
        self.model.history_read.subscribe(self, self.on_history_read)
        self.model.revisions_read.subscribe(self, self.on_revisions_read)
        self.model.fleet.changed.subscribe(self, self.on_fleet_changed)
        self.post_message(ReadRequested("history", self.view.spec.id))
        self.post_message(ReadRequested("solution", self.view.spec.id))

    def shows_key(self) -> str:
        return self.view.spec.id

    def on_fleet_changed(self, _changed: bool) -> None:
        """A platform read of the fleet answered: this solution's sync, health and resources as it found them."""
        self.status = self.model.fleet.statuses.get(self.view.spec.id, self.status)
        self.show_status()

    def show_status(self) -> None:
        status = self.status
        self.query_one("#solution-sync", Label).update(self.sync_note())
        apps = list(status.apps.values()) if status else []
        self.query_one("#solution-health", Static).update(visible("\n".join(health_lines(apps)), multiline=True))
        self.query_one("#resources", StateTable).show_rows(
            (f"{r.kind}/{r.name}", resource_row(r.kind, r.name, r.sync, r.diff)) for r in self.read_resources()
        )
        self.show_revisions()

    def on_revisions_read(self, read: RevisionsRead) -> None:
        if read.solution_id == self.view.spec.id:
            self.revisions = read
            self.show_revisions()

    def show_revisions(self) -> None:
        """Each app's newest revisions, with the app's health from the fleet's last read on its first row."""
        read = self.revisions
        table = self.query_one("#revisions", StateTable)
        # No app has a revision (none provisioned yet): the line below says why; an empty table would say nothing.
        table.display = read is not None and any(app.revisions or app.error for app in read.apps)
        if read is not None:
            health = dict(self.status.apps) if self.status else {}
            table.show_rows(revision_rows(read.apps, health, read.at))

    def env_text(self) -> str:
        """Each app's env values as provisioning sets them: ``***`` for a secret-named variable, secret-shaped
        parts of the others masked, control characters shown as escapes."""
        lines = [
            visible(f"{component:<6} {name}={shown_env_value(name, value)}")
            for component, values in sorted(self.spec.env.items())
            for name, value in sorted(values.items())
        ]
        return "\n".join(lines) or "none"

    def secrets_text(self) -> str:
        """Each app's env vars that take a secret, and its secrets: where in Key Vault, read by which identity.

        There is no value to show: the app reads it from Key Vault (decision 0032).
        """
        spec = self.spec
        lines = [
            f"{component:<6} {name} ← secret {secret}"
            for component, refs in sorted(spec.secret_env.items())
            for name, secret in sorted(refs.items())
        ]
        lines += [
            f"{component:<6} secret {name}: {ref.key_vault_url}"
            f" (read by {ref.identity.rsplit('/', 1)[-1] if ref.identity else 'the pull identity'})"
            for component, secrets in sorted(spec.secrets.items())
            for name, ref in sorted(secrets.items())
        ]
        return "\n".join(lines)

    def sync_note(self) -> str:
        status = self.status
        if status is None:
            return f"sync  {self.view.sync or NOT_KNOWN}   (the platform has not been read yet)"
        return f"sync  {status.sync}" + (f"   ({visible(status.reason)})" if status.reason else "")

    def on_history_read(self, read: HistoryRead) -> None:
        solution_id = self.view.spec.id
        if read.solution_id != solution_id:
            return
        mine = [
            r for r in read.records
            if r.kind in SWEEPING_KINDS and (r.target == solution_id or solution_id in r.children)
        ]
        self.query_one("#history", StateTable).show_rows(
            (record.id, operation_row(record, member=solution_id)) for record in mine
        )
        self.refresh_bindings()  # Enter opens a row now that there are rows: the footer says so

    def read_resources(self) -> Sequence[ResourceStatus]:
        """This solution's resources, desired vs live (kind, name, sync, diff); empty before the platform read."""
        return self.status.resources if self.status is not None else ()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "history" and event.row_key.value is not None:
            self.post_message(LogRequested(event.row_key.value))

    def action_roll_back(self) -> None:
        self.post_message(RollBackRequested(self.view.spec.id))


class InvalidSolutionScreen(OrbitScreen):
    """Pushed from Solutions with Enter on an invalid file's row: what is wrong, where, and by which rule."""

    def __init__(self, model: ConsoleModel, entry: InvalidSolution) -> None:
        super().__init__(model)
        self.entry = entry

    def compose_body(self) -> ComposeResult:
        error = self.entry.error
        yield Label(f"{visible(self.entry.id)}  ·  invalid solution file", classes="screen-title", markup=False)
        yield Label("Error", classes="section-title", markup=False)
        lines = [
            f"file      {display_path(error.path)}",
            f"line      {error.line or NOT_KNOWN}",
            f"problem   {error.problem}",
        ]
        if error.rule:
            lines.append(f"rule      {error.rule}")
        yield Static("\n".join(visible(line) for line in lines), id="invalid-error", classes="problems", markup=False)
        yield Static(
            "This file is left out of every plan, provision and roll until it is fixed; the other solutions are "
            "not affected. The console reads it again as soon as it changes.",
            classes="note",
            markup=False,
        )
