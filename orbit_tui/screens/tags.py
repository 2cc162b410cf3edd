"""One component's release tags: commit, date, kind, release record and how many solutions pin each."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Label

from orbit_ops.console_queries import record_problems
from orbit_ops.text import visible
from orbit_ops.workspace import pin_counts
from orbit_tui.render import PROBLEM_MARK, TAG_COLUMNS, Cell, tag_row
from orbit_tui.screens.base import OrbitScreen
from orbit_tui.widgets import StateTable


class TagsScreen(OrbitScreen):
    """Pushed from Components with Enter; ``b`` builds the tag under the cursor."""

    MUTATING = frozenset({"build"})
    ROW_ACTIONS = frozenset({"build"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "build", "Build tag", tooltip="Build the tag under the cursor (asks first)")
    ]

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def compose_body(self) -> ComposeResult:
        yield Label(f"Tags of {self.component}", classes="screen-title", id="tags-title", markup=False)
        yield StateTable(TAG_COLUMNS, id="tags", openable=False)
        yield Label("", id="tags-problems", classes="problems", markup=False)

    def on_mount(self) -> None:
        self.orbit.workspace_changed.subscribe(self, lambda _: self.load())
        self.load()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load(self, problems: dict[str, tuple[str, ...]] | None = None) -> None:
        """Show the tags; then verify their records in a thread and show them again with any problem marked."""

        def read() -> tuple[list[tuple[str, tuple[Cell, ...]]], int]:
            workspace = self.workspace
            counts = pin_counts(workspace, self.component)
            rows, released = [], 0
            for tag in workspace.tags().of(self.component):
                record = workspace.release_of(self.component, tag.version)
                released += record is not None
                flagged = problems is not None and tag.version in problems
                rows.append((tag.version, tag_row(tag, record, counts.get(tag.version, 0), problem=flagged)))
            return rows, released

        rows, released = await asyncio.to_thread(read)
        self.query_one(StateTable).show_rows(rows)
        self.query_one("#tags-title", Label).update(f"Tags of {self.component}: {len(rows)} tags, {released} released")
        self.refresh_bindings()
        if problems is None:
            self.verify()
            return
        lines = [f"{PROBLEM_MARK} {version}: {problem}" for version, found in problems.items() for problem in found]
        self.query_one("#tags-problems", Label).update("\n".join(visible(line) for line in lines))

    @work(exclusive=True, group="integrity", exit_on_error=False)
    async def verify(self) -> None:
        found = await asyncio.to_thread(record_problems, self.workspace)
        self.load({version: problems for (name, version), problems in found.items() if name == self.component})

    def action_build(self) -> None:
        version = self.cursor_key()
        if version is not None:
            self.orbit.build_release(self.component, version)
