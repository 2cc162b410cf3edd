"""The log of one operation, streamed live from the store (any process's): follow, search, save, cancel."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Input, Label, ProgressBar

from orbit_ops.errors import BackendError
from orbit_ops.operations.events import (
    ChildChanged,
    Event,
    LogLine,
    OperationFinished,
    OperationStarted,
    ProgressChanged,
)
from orbit_ops.operations.kinds import ACTIVE_STATES, SWEEPING_KINDS
from orbit_ops.team import follow_operation, operation_record
from orbit_ops.text import visible
from orbit_tui.messages import CancelRequested, DialogRequested, RetryRequested
from orbit_tui.model import ConsoleModel
from orbit_tui.render import (
    CHILD_COLUMNS,
    child_counts,
    child_row,
    display_path,
    log_text,
    state_class,
    stored_log_text,
)
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.screens.modals import ConfirmScreen, PathScreen
from orbit_tui.widgets import OperationLog, StateTable

EXPORTS_DIR = Path(".orbit") / "exports"
# A key travels driver → app → screen → binding, one loop turn a hop: after each batch the stream waits that many
# turns, so a key pressed during a replay is handled before the next batch, not several batches later.
YIELDS_PER_BATCH = 4


class LogScreen(OrbitScreen):
    """Streams the operation's log from the store (``team.follow_operation``: this machine's
    ``operations.log.follow_batches``, else the shared state store's log of another machine's operation): the
    store is the one source, for this console's runs and others'."""

    MUTATING = frozenset({"cancel", "retry_failed"})
    AUTO_FOCUS = "#log"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_follow", "Follow", tooltip="Follow the end of the log (auto-scroll) on/off"),
        Binding("slash", "search", "Search", tooltip="Search the log; Enter jumps to the next match"),
        Binding("n", "next_match", "Next", show=False, tooltip="Next search match"),
        Binding("N", "previous_match", "Previous", show=False, tooltip="Previous search match"),
        Binding("s", "save", "Save", tooltip="Save the log to a file"),
        Binding("c", "cancel", "Cancel op", tooltip="Cancel the operation (asks first)"),
        Binding(
            "r",
            "retry_failed",
            "Retry failed",
            tooltip="Re-provision only the solutions that failed in this sweep (asks first)",
        ),
    ]

    def __init__(self, model: ConsoleModel, op_id: str) -> None:
        super().__init__(model)
        self.op_id = op_id
        self.kind = self.target = ""
        self.state = "queued"
        self.error: str | None = None
        self.following = True
        self.members: dict[str, str] = {}
        self.matches: list[int] = []
        self.match_index = -1
        self._pending: list[str | bytes] = []  # text, or stored log lines the widget decodes when shown
        self._header_stale = False

    def compose_body(self) -> ComposeResult:
        yield from self.compose_header()
        children = StateTable(CHILD_COLUMNS, id="children", openable=False)
        children.show_cursor = False
        children.display = False  # shown when there is something to show
        yield children
        yield from self.compose_log()

    def compose_header(self) -> ComposeResult:
        """The title line: what the operation is, its state and counts, its progress."""
        with Horizontal(id="log-header"):
            yield Label("", id="log-title", classes="screen-title", markup=False)
            yield Label("", id="log-state", classes="state", markup=False)
            yield ProgressBar(id="log-progress", show_eta=False)

    def compose_log(self) -> ComposeResult:
        """The log itself, the follow/search line under it and the search box (shown by ``/``)."""
        yield OperationLog(stored_log_text, id="log")
        yield Label("", id="log-mode", classes="note", markup=False)
        search = Input(
            placeholder="search the log (Enter: keep, n/N: next/previous, Esc: close)", id="log-search", compact=True
        )
        search.display = False
        yield search

    def on_mount(self) -> None:
        self.query_one("#log-progress").display = False
        self._show_header()
        self.stream()

    # -- the stream -----------------------------------------------------------------------------------------

    @work(exclusive=True, group="log", exit_on_error=False)
    async def stream(self) -> None:
        """Follow the operation's log a bounded batch at a time (``team.follow_operation``: this machine's store, or
        the team's shared store for another machine's operation): each batch is one
        write to the log widget, and keys are handled between batches. Log lines stay as stored until the widget
        shows them (``raw_log_lines``); the header is redrawn once a batch, if an event changed it."""
        record = await operation_record(self.workspace, self.op_id)  # this machine's, else the team's
        self.op_id, self.kind, self.target, self.state = record.id, record.kind, record.target, record.state
        self._show_header()
        async with contextlib.aclosing(follow_operation(self.workspace, self.op_id)) as batches:
            async for batch in batches:
                pending = self._pending
                for item in batch:
                    if isinstance(item, bytes):
                        pending.append(item)
                    else:
                        self.apply(item)
                self._flush()
                for _ in range(YIELDS_PER_BATCH):
                    await asyncio.sleep(0)

    def apply(self, event: Event) -> None:
        """Render one engine event (log lines are batched: a replay of thousands is one write)."""
        if isinstance(event, LogLine):
            self._queue_line(log_text(event))
            return
        self._header_stale = True
        if isinstance(event, OperationStarted):
            self.state = "running"
        elif isinstance(event, ProgressChanged):
            bar = self.query_one("#log-progress", ProgressBar)
            bar.display = event.total > 0
            bar.update(total=event.total or None, progress=event.done)
        elif isinstance(event, ChildChanged):
            self.members[event.child] = event.state
            table = self.query_one("#children", StateTable)
            table.display = True
            table.upsert_row(event.child, child_row(event.child, event.state, event.message))
        elif isinstance(event, OperationFinished):
            self.state, self.error = event.state, event.error
            error = f": {event.error}" if event.error else ""
            self._queue_line(f"{event.at[11:19]} {self.kind} {self.target} {event.state}{error}")

    def _queue_line(self, line: str) -> None:
        if not self._pending:
            self.call_later(self._flush)
        self._pending.append(line)

    def _flush(self) -> None:
        lines, self._pending = self._pending, []
        if lines:
            log = self.query_one(OperationLog)
            start = log.line_count
            log.write_lines(lines, scroll_end=self.following)
            if log.search.query:  # only the new lines can hold new matches
                found = log.find(log.search.query, start)
                self.matches += found
                self._header_stale = self._header_stale or bool(found)
        if self._header_stale:
            self._header_stale = False
            self._show_header()

    @property
    def lines(self) -> list[str]:
        """Every line shown so far (what ``s`` saves)."""
        pending = [line if isinstance(line, str) else stored_log_text(line) for line in self._pending]
        return [*self.query_one(OperationLog).lines, *pending]

    def _show_header(self) -> None:
        title = f"{self.kind or 'operation'} {self.target}  ·  {self.op_id}"
        self.query_one("#log-title", Label).update(visible(title))
        state = self.query_one("#log-state", Label)
        for name in {
            state_class(value) for value in ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
        }:
            state.remove_class(name or "")
        state.add_class(state_class(self.state) or "-unknown")
        counts = f"  {child_counts(self.members)}" if self.members else ""
        state.update(f" {self.state}{counts} ")
        self._show_mode()
        self.refresh_bindings()

    def _show_mode(self) -> None:
        mode = "follow on" if self.following else "follow off"
        if self.matches:
            mode += f"  ·  match {self.match_index + 1}/{len(self.matches)}"
        self.query_one("#log-mode", Label).update(mode)

    # -- actions --------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if allowed and action == "cancel" and self.state not in ACTIVE_STATES:
            return False  # a finished operation never becomes cancellable: not offered at all
        if allowed and action in ("next_match", "previous_match") and not self.matches:
            return None
        if allowed and action == "retry_failed":
            retryable = self.kind in SWEEPING_KINDS and self.state not in ACTIVE_STATES
            return retryable and "failed" in self.members.values()  # shown only where a failure can be retried
        return allowed

    def action_retry_failed(self) -> None:
        self.post_message(RetryRequested(self.op_id))

    def action_toggle_follow(self) -> None:
        self.following = not self.following
        log = self.query_one(OperationLog)
        log.auto_scroll = self.following
        if self.following:
            log.scroll_end(animate=False)
        self._show_mode()  # nothing else of the header depends on following

    def action_search(self) -> None:
        search = self.query_one("#log-search", Input)
        search.display = True
        search.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-search":
            self.find(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "log-search":
            self.query_one(OperationLog).focus()  # the query stays; n and N walk its matches

    def find(self, query: str) -> None:
        """Mark ``query``, stop following, and jump to its first match.

        Incremental: a query that extends the last one (a character typed) can only match lines the last one
        matched, so only those are looked at again; new lines are searched as they arrive (``_flush``).
        """
        log = self.query_one(OperationLog)
        previous = log.search.query
        narrows = bool(previous) and previous.lower() in query.lower()
        self.matches = log.set_query(query, within=self.matches if narrows else None)
        self.match_index = -1
        if self.matches:
            if self.following:
                self.action_toggle_follow()
            self.action_next_match()
        self._show_header()

    def action_next_match(self) -> None:
        self._jump(+1)

    def action_previous_match(self) -> None:
        self._jump(-1)

    def _jump(self, step: int) -> None:
        if not self.matches:
            return
        self.match_index = (self.match_index + step) % len(self.matches)
        self.query_one(OperationLog).show_line(self.matches[self.match_index])
        self._show_header()

    def action_back(self) -> None:
        search = self.query_one("#log-search", Input)
        if search.display:
            search.value = ""
            search.display = False
            self.find("")
            self.query_one(OperationLog).focus()
            return
        super().action_back()

    def can_go_back(self) -> bool:
        # Asked by the bindings before the screen is composed too: no search box yet means no search open.
        searches = self.query("#log-search")
        return bool(searches and searches.first(Input).display) or super().can_go_back()

    def action_save(self) -> None:
        default = self.workspace.config.root / EXPORTS_DIR / f"{self.op_id}.log"
        note = "Relative paths are taken from the workspace folder."
        self.post_message(DialogRequested(PathScreen("Save the log to", display_path(default), note), self._save))

    def _save(self, answer: str | None) -> None:
        if answer:
            self.save_to(answer)

    @work(group="save", exit_on_error=False)
    async def save_to(self, answer: str) -> Path:
        path = Path(answer).expanduser()
        if not path.is_absolute():
            path = self.workspace.config.root / path
        text = "\n".join(self.lines) + "\n"

        def write() -> None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise BackendError(f"cannot save the log to {path}: {exc.strerror or exc}") from exc

        await asyncio.to_thread(write)
        self.notify(f"saved {len(self.lines)} lines to {display_path(path)}", title="Log saved", markup=False)
        return path

    def action_cancel(self) -> None:
        question = ConfirmScreen(
            f"Cancel {self.kind} {self.target}?",
            [
                ("operation", self.op_id),
                ("state", self.state),
                "The engine stops it and runs its cleanup (worktree, remote run); it ends as cancelled.",
            ],
            confirm="Cancel operation",
            dismiss="Keep running",
            id="confirm-cancel",
        )
        self.post_message(DialogRequested(question, self._cancel))

    def _cancel(self, confirmed: bool | None) -> None:
        if confirmed:
            self.post_message(CancelRequested(self.op_id, f"{self.kind} {self.target}"))
