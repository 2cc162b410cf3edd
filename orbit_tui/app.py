"""The Orbit console application (a first screen; the full console is built out over the engine)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header

from orbit_ops.workspace import Workspace, summarize_components


class OrbitApp(App[None]):
    """Orbit's console: gets its engine (a :class:`Workspace`) through the constructor."""

    CSS_PATH = "orbit.tcss"
    TITLE = "Orbit"
    BINDINGS = [("q", "quit", "Quit"), ("r", "reload", "Reload")]

    def __init__(self, workspace: Workspace, *, read_only: bool = False) -> None:
        super().__init__()
        self.workspace = workspace
        self.read_only = read_only
        self.sub_title = f"{workspace.config.root} · backend {workspace.config.backend}"

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="components", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("component", "latest tag", "latest release", "unreleased", "on latest")
        self._fill()

    def action_reload(self) -> None:
        self.workspace.refresh()
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for row in summarize_components(self.workspace):
            table.add_row(
                row.name,
                row.latest_tag or "-",
                row.latest_release or "-",
                ", ".join(row.unreleased) or "-",
                f"{row.solutions_on_latest}/{row.solutions}",
                key=row.name,
            )


def run(workspace: Workspace, *, read_only: bool = False) -> None:
    """Open the console on ``workspace`` (blocks until the operator quits)."""
    OrbitApp(workspace, read_only=read_only).run()
