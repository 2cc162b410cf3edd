"""Widgets of the console: a table styled by state class, the mode bar, and a searchable operation log."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.highlighter import Highlighter
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Label, Log

from orbit_tui.render import STYLED_CLASSES, Cell

MODES = (("1", "components", "Components"), ("2", "solutions", "Solutions"), ("3", "operations", "Operations"))


class StateTable(DataTable[Text]):
    """A row-cursor DataTable whose cells take their style from the state classes in ``orbit.tcss``.

    Each state class is a component class here, so ``StateTable > .-drifted`` in the stylesheet decides how a
    drifted cell looks; render code only names the class. Rows are replaced by key, keeping the cursor on the
    same key, so a periodic refresh never makes the selection jump.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = set(STYLED_CLASSES)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", tooltip="Open the row under the cursor")
    ]

    def __init__(self, columns: Sequence[str], *, id: str | None = None, openable: bool = True) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.openable = openable
        self._column_names = tuple(columns)
        self._rows: list[tuple[str, tuple[Cell, ...]]] = []
        self._index: dict[str, int] = {}

    def on_mount(self) -> None:
        for name in self._column_names:
            self.add_column(name, key=name or "mark")
        # A new theme restyles the component classes after this signal: restyle the cells once that is done.
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.call_after_refresh(self._restyle))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "select_cursor":
            if not self.openable:
                return False
            return True if self.row_count else None
        return True

    @property
    def current_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show_rows(self, rows: Iterable[tuple[str, tuple[Cell, ...]]]) -> None:
        """Replace every row with ``rows`` (key, cells), keeping the cursor on the same key if it is still there."""
        new = list(rows)
        if [key for key, _ in new] == [key for key, _ in self._rows] and self.row_count == len(new):
            # Same rows in the same order (a periodic refresh): redraw only the cells that changed.
            for (key, cells), (_, before) in zip(new, self._rows, strict=True):
                for column, cell, old in zip(self._column_names, cells, before, strict=True):
                    if cell != old:
                        self.update_cell(key, column or "mark", self.styled(cell), update_width=True)
            self._rows = new
            return
        self._rows = new
        self._index = {key: index for index, (key, _) in enumerate(self._rows)}
        self._redraw()

    def upsert_row(self, key: str, cells: tuple[Cell, ...]) -> None:
        """Redraw the row ``key`` in place, or append it (a sweep's members arrive one event at a time)."""
        if key in self._index:
            self._rows[self._index[key]] = (key, cells)
            for column, cell in zip(self._column_names, cells, strict=True):
                self.update_cell(key, column or "mark", self.styled(cell))
            return
        self._index[key] = len(self._rows)
        self._rows.append((key, cells))
        self.add_row(*(self.styled(cell) for cell in cells), key=key)

    def styled(self, cell: Cell) -> Text:
        if cell.state is None:
            return Text(cell.text)
        return Text(cell.text, style=self.get_component_rich_style(cell.state, partial=True, default=Style.null()))

    def _restyle(self) -> None:
        """Re-apply the state styles in place (same text, so no column is measured again)."""
        for key, cells in self._rows:
            for column, cell in zip(self._column_names, cells, strict=True):
                if cell.state is not None:
                    self.update_cell(key, column or "mark", self.styled(cell))

    def _redraw(self) -> None:
        keep = self.current_key
        scroll = self.scroll_y
        self.clear()
        for key, cells in self._rows:
            self.add_row(*(self.styled(cell) for cell in cells), key=key)
        if keep is not None and keep in self._index:
            self.move_cursor(row=self._index[keep], animate=False, scroll=False)
            self.scroll_y = scroll


class ModeBar(Horizontal):
    """``1 Components  2 Solutions  3 Operations``, the current one marked; a click switches."""

    class Picked(Message):
        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        for key, mode, title in MODES:
            label = Label(f" {key} {title} ", id=f"mode-{mode}", classes="mode", markup=False)
            label.set_class(mode == self.current, "-active")
            yield label

    def on_click(self, event: events.Click) -> None:
        widget = event.widget
        if widget is not None and widget.id and widget.id.startswith("mode-"):
            self.post_message(self.Picked(widget.id.removeprefix("mode-")))


class SearchHighlighter(Highlighter):
    """Dims the timestamp and marks every match of the search (case-insensitive)."""

    def __init__(self) -> None:
        self.query = ""
        self.match_style = Style()
        self.time_style = Style()

    def highlight(self, text: Text) -> None:
        text.stylize(self.time_style, 0, 8)
        if not self.query:
            return
        plain, needle, start = text.plain.lower(), self.query.lower(), 0
        while (found := plain.find(needle, start)) >= 0:
            text.stylize(self.match_style, found, found + len(needle))
            start = found + len(needle)


class OperationLog(Log):
    """A ``Log`` whose lines can be searched: matches are marked by the ``log--match`` style of orbit.tcss."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"log--match", "log--time"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(highlight=True, id=id)
        self.highlighter = self.search = SearchHighlighter()

    def on_mount(self) -> None:
        self._restyle()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._restyle()

    def _restyle(self) -> None:
        with contextlib.suppress(KeyError):
            self.search.match_style = self.get_component_rich_style("log--match", partial=True)
            self.search.time_style = self.get_component_rich_style("log--time", partial=True)

    def set_query(self, query: str) -> list[int]:
        """Mark ``query`` and return the indexes of the lines containing it."""
        self.search.query = query
        self._render_line_cache.clear()
        self.refresh()
        needle = query.lower()
        return [index for index, line in enumerate(self.lines) if needle and needle in line.lower()]

    def show_line(self, index: int) -> None:
        self.scroll_to(y=max(0, index - self.size.height // 2), animate=False)
