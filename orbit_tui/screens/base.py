"""What every console screen shares: header, mode bar, footer, Esc to go back, and read-only hiding."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header

from orbit_tui.widgets import ModeBar

if TYPE_CHECKING:
    from orbit_ops.workspace import Workspace
    from orbit_tui.app import OrbitApp


class OrbitScreen(Screen[None]):
    """A full screen of the console; subclasses yield their body from :meth:`compose_body`."""

    MODE: ClassVar[str | None] = None  # the mode this screen is the root of; None for screens pushed on top
    MUTATING: ClassVar[frozenset[str]] = frozenset()  # actions hidden by --read-only
    AUTO_FOCUS = "StateTable"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back", tooltip="Back to the previous screen")]

    @property
    def orbit(self) -> OrbitApp:
        return cast("OrbitApp", self.app)

    @property
    def workspace(self) -> Workspace:
        return self.orbit.workspace

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◎")
        yield ModeBar(self.MODE or self.app.current_mode)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MUTATING and self.orbit.read_only:
            return False
        if action == "back":
            return self.can_go_back()
        return True

    def can_go_back(self) -> bool:
        """Whether Esc has somewhere to go (screens with a search or filter box also close it)."""
        return self.orbit.can_go_back()

    def action_back(self) -> None:
        self.orbit.go_back()

    def on_mode_bar_picked(self, message: ModeBar.Picked) -> None:
        self.orbit.action_mode(message.mode)
