"""Printing an operation's event stream: live lines and a progress line on a terminal, plain when piped.

Log lines carry what builds and services said (an ACR run's output, error bodies): each is shown through
``orbit_ops.text.visible``, so a control sequence in it is displayed, never acted on by the terminal.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from orbit_cli.output import echo
from orbit_ops.operations.events import (
    ChildChanged,
    Event,
    LogLine,
    OperationFinished,
    OperationStarted,
    ProgressChanged,
)
from orbit_ops.text import visible

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status


class EventPrinter:
    """Prints events as they arrive; ``quiet`` (for ``--json``) prints nothing but keeps the outcome."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.finished: OperationFinished | None = None
        self.tty = sys.stdout.isatty() and not quiet
        self._console: Console | None = None
        self._status: Status | None = None
        self._label = ""

    def __enter__(self) -> EventPrinter:
        if self.tty:
            from rich.console import Console

            self._console = Console(highlight=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def handle(self, event: Event) -> None:
        if isinstance(event, OperationFinished):
            self.finished = event
        if self.quiet:
            return
        if isinstance(event, OperationStarted):
            self._label = f"{event.kind} {event.target}"
            self._line(f"operation {event.op_id}: {self._label}  (follow from elsewhere: orbit logs {event.op_id} "
                       "--follow)", style="bold")
        elif isinstance(event, LogLine):
            prefix = f"[{event.child}] " if event.child else ""
            self._line(f"{event.at[11:19]} {prefix}{event.text}")
        elif isinstance(event, ProgressChanged):
            self._progress(event.done, event.total)
        elif isinstance(event, ChildChanged):
            message = f": {event.message}" if event.message else ""
            self._line(f"{event.child} {event.state}{message}", style=_STATE_STYLE.get(event.state))
        elif isinstance(event, OperationFinished):
            if self._status is not None:
                self._status.stop()
                self._status = None
            error = f": {event.error}" if event.error else ""
            self._line(f"{self._label or event.op_id} {event.state}{error}", style=_STATE_STYLE.get(event.state))

    def _line(self, text: str, style: str | None = None) -> None:
        if self._console is not None:
            self._console.print(visible(text, multiline=True), style=style, markup=False)
        else:
            echo(text)

    def _progress(self, done: int, total: int) -> None:
        if self._console is None:
            return
        from rich.text import Text

        text = Text(visible(f"{self._label}: step {done}/{total}" if total else f"{self._label}: {done} done"))
        if self._status is None:
            self._status = self._console.status(text)
            self._status.start()
        else:
            self._status.update(text)


_STATE_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "interrupted": "yellow",
    "running": "cyan",
}
