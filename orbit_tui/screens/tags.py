"""One component's release tags: commit, date, kind, release record and how many solutions pin each."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Label

from orbit_ops.text import visible
from orbit_tui.messages import BuildRequested, ReadRequested
from orbit_tui.model import ConsoleModel, TagsRead
from orbit_tui.render import PROBLEM_MARK, TAG_COLUMNS
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.widgets import StateTable


class TagsScreen(OrbitScreen):
    """Pushed from Components with Enter; ``b`` builds the tag under the cursor."""

    MUTATING = frozenset({"build"})
    ROW_ACTIONS = frozenset({"build"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "build", "Build tag", tooltip="Build the tag under the cursor (asks first)")
    ]

    def __init__(self, model: ConsoleModel, component: str) -> None:
        super().__init__(model)
        self.component = component

    def compose_body(self) -> ComposeResult:
        yield Label(f"Tags of {self.component}", classes="screen-title", id="tags-title", markup=False)
        yield StateTable(TAG_COLUMNS, id="tags", openable=False)
        yield Label("", id="tags-problems", classes="problems", markup=False)

    def on_mount(self) -> None:
        self.model.tags_read.subscribe(self, self.on_tags_read)
        self.model.workspace_changed.subscribe(self, lambda _: self.request())
        self.request()

    def request(self) -> None:
        self.post_message(ReadRequested("tags", self.component))

    def on_tags_read(self, read: TagsRead) -> None:
        """The tags; once their records were verified (``problems``), with any problem marked and listed."""
        if read.component != self.component:
            return
        self.query_one(StateTable).show_rows(read.rows)
        self.query_one("#tags-title", Label).update(
            f"Tags of {self.component}: {len(read.rows)} tags, {read.released} released"
        )
        self.refresh_bindings()
        if read.problems is None:
            return
        lines = [
            f"{PROBLEM_MARK} {version}: {problem}" for version, found in read.problems.items() for problem in found
        ]
        self.query_one("#tags-problems", Label).update("\n".join(visible(line) for line in lines))

    def action_build(self) -> None:
        version = self.cursor_key()
        if version is not None:
            self.post_message(BuildRequested(self.component, version))
