"""What every console screen shares: header, mode bar, footer, Esc to go back, and read-only hiding.

A screen is given the console model (``orbit_tui.model``) to render from and posts requests
(``orbit_tui.messages``) for everything else; it never calls the app.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Header

from orbit_ops.workspace import Workspace
from orbit_tui.line_table import LineTable
from orbit_tui.messages import BackRequested, Part
from orbit_tui.model import ConsoleModel
from orbit_tui.widgets import ModeBar, StateTable


class OrbitScreen(Screen[None]):
    """A full screen of the console; subclasses yield their body from :meth:`compose_body`."""

    MODE: ClassVar[str | None] = None  # the mode this screen is the root of; None for screens pushed on top
    MUTATING: ClassVar[frozenset[str]] = frozenset()  # actions hidden by --read-only
    LEGEND: ClassVar[str] = ""  # what the marks and colours of this screen mean (shown by ?)
    ROW_ACTIONS: ClassVar[frozenset[str]] = frozenset()  # actions on the table row under the cursor (dimmed without)
    SHOWS: ClassVar[Part | None] = None  # what the model's interval refreshes while this screen is current
    AUTO_FOCUS = "StateTable"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back", tooltip="Back to the previous screen")]

    def __init__(self, model: ConsoleModel) -> None:
        super().__init__()
        self.model = model

    @property
    def workspace(self) -> Workspace:
        return self.model.workspace

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◎")
        yield ModeBar(self.MODE or self.app.current_mode)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    _bindings_shown: tuple[object, ...] | None = None

    def refresh_bindings(self) -> None:
        """Tell the footer, only when what it would show changed: a rebuild of the footer restyles every key in it,
        which at one refresh per log batch or per keystroke costs more than the work itself."""
        try:
            shown = (id(self.focused), *self._availability(self), *self._availability(self.focused))
        except NoMatches:  # still composing: the footer is built once the screen is
            super().refresh_bindings()
            return
        if shown != self._bindings_shown:
            self._bindings_shown = shown
            super().refresh_bindings()

    @staticmethod
    def _availability(node: DOMNode | None) -> tuple[bool | None, ...]:
        if node is None:
            return ()
        bindings = node._bindings.key_to_bindings.values()
        return tuple(node.check_action(binding.action, ()) for group in bindings for binding in group)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MUTATING and self.model.read_only:
            return False
        if action == "back":
            return self.can_go_back()
        if action in self.ROW_ACTIONS and self.cursor_key() is None:
            return None
        return True

    def shows_key(self) -> str:
        """The component or solution that what this screen shows (``SHOWS``) is about; empty for none."""
        return ""

    def cursor_key(self) -> str | None:
        """The key of the table row under the cursor (screens with a :class:`StateTable` or a
        :class:`LineTable`), or None."""
        for table in self.query("StateTable, LineTable"):
            if isinstance(table, StateTable | LineTable):
                return table.current_key
        return None

    def can_go_back(self) -> bool:
        """Whether Esc has somewhere to go (screens with a search or filter box also close it); dialogs above a
        console screen do not count."""
        pushed = [screen for screen in self.app.screen_stack if not isinstance(screen, ModalScreen)]
        return len(pushed) > 1 or bool(self.model.mode_history)

    def action_back(self) -> None:
        self.post_message(BackRequested())
