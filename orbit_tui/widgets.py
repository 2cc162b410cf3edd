"""Widgets of the console: a table styled by state class, the mode bar, and a searchable operation log."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.highlighter import Highlighter
from rich.padding import Padding
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.containers import Horizontal
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.widgets import DataTable, Label, Static

from orbit_ops.bulk import bulk_built
from orbit_ops.text import visible
from orbit_tui.plan_render import PlanModel, entry_changes
from orbit_tui.render import STYLED_CLASSES, Cell

MODES = (("1", "components", "Components"), ("2", "solutions", "Solutions"), ("3", "operations", "Operations"))


class StateTable(DataTable[Text]):
    """A row-cursor DataTable whose cells take their style from the state classes in ``orbit.tcss``.

    Each state class is a component class here, so ``StateTable > .-drifted`` in the stylesheet decides how a
    drifted cell looks; render code only names the class. Rows are replaced by key, keeping the cursor on the
    same key, so a periodic refresh never makes the selection jump.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = set(STYLED_CLASSES) | {"-changed"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", tooltip="Open the row under the cursor")
    ]
    FLASH_SECONDS: ClassVar[float] = 1.5  # how long a row changed by a refresh stays flagged

    def __init__(self, columns: Sequence[str], *, id: str | None = None, openable: bool = True) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.openable = openable
        self._column_names = tuple(columns)
        self._rows: list[tuple[str, tuple[Cell, ...]]] = []
        self._index: dict[str, int] = {}
        self.flashing: dict[str, int] = {}  # key of a row a refresh just changed (styled -changed) → that refresh
        self._refreshes = 0
        self._styles: dict[tuple[str | None, bool], Style] = {}  # looked up once per state, not once per cell

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

    def show_rows(self, rows: Iterable[tuple[str, tuple[Cell, ...]]], *, flash: bool = False) -> None:
        """Replace every row with ``rows`` (key, cells), keeping the cursor on the same key if it is still there.

        ``flash``: this is a refresh, so rows whose content changed are flagged with the ``-changed`` style for
        :attr:`FLASH_SECONDS` (a filter or a selection passes False: nothing changed in the world).
        """
        with bulk_built():  # thousands of cells live on in the table: no collector passes while they are made
            self._show_rows(list(rows), flash)

    def _show_rows(self, new: list[tuple[str, tuple[Cell, ...]]], flash: bool) -> None:
        if [key for key, _ in new] == [key for key, _ in self._rows] and self.row_count == len(new):
            # Same rows in the same order (a periodic refresh): redraw only the cells that changed.
            changed: set[str] = set()
            for (key, cells), (_, before) in zip(new, self._rows, strict=True):
                if cells == before:
                    continue
                changed.add(key)
                for column, cell, old in zip(self._column_names, cells, before, strict=True):
                    if cell != old or (flash and key not in self.flashing):
                        glow = flash or key in self.flashing
                        self.update_cell(key, column or "mark", self.styled(cell, glow), update_width=cell != old)
            self._rows = new
            if flash and changed:
                self._flash(changed)
            return
        self._rows = new
        self._index = {key: index for index, (key, _) in enumerate(self._rows)}
        self.flashing.clear()
        self._redraw()

    async def _on_idle(self, event: events.Idle) -> None:
        # DataTable measures new and changed rows when its queue goes idle, building every cell's renderable:
        # for 10,000 rows, full collections over the console's live objects cost more than the measuring.
        widths = [column.content_width for column in self.columns.values()]
        with bulk_built():
            await super()._on_idle(event)
        if widths != [column.content_width for column in self.columns.values()]:
            # DataTable caches rendered cells by content, not by width (Textual issue #3533): a paint between a
            # cell's update and this measuring would keep the cell cut to the old width ("miss" for "missing")
            # until the row next changed. A column that moved: draw everything again.
            self._clear_caches()
            self.refresh()

    def _flash(self, keys: set[str]) -> None:
        self._refreshes += 1
        refresh = self._refreshes
        self.flashing.update(dict.fromkeys(keys, refresh))
        self.set_timer(self.FLASH_SECONDS, lambda: self._unflash(refresh))

    def _unflash(self, refresh: int) -> None:
        """The moment is over: restyle the rows flagged by one refresh (unless a later refresh flagged them again)."""
        done = [key for key, flagged_by in self.flashing.items() if flagged_by == refresh]
        for key in done:
            del self.flashing[key]
        for key in done:
            if key in self._index:
                _, cells = self._rows[self._index[key]]
                for column, cell in zip(self._column_names, cells, strict=True):
                    self.update_cell(key, column or "mark", self.styled(cell))

    def upsert_row(self, key: str, cells: tuple[Cell, ...]) -> None:
        """Redraw the row ``key`` in place, or append it (a sweep's members arrive one event at a time)."""
        if key in self._index:
            _, before = self._rows[self._index[key]]
            self._rows[self._index[key]] = (key, cells)
            for column, cell, old in zip(self._column_names, cells, before, strict=True):
                if cell != old:  # a longer state or message widens its column, as a new row would
                    self.update_cell(key, column or "mark", self.styled(cell), update_width=True)
            return
        self._index[key] = len(self._rows)
        self._rows.append((key, cells))
        self.add_row(*(self.styled(cell) for cell in cells), key=key)

    def styled(self, cell: Cell, changed: bool = False) -> Text:
        style = self._styles.get((cell.state, changed))
        if style is None:
            style = Style.null()
            if cell.state is not None:
                style = self.get_component_rich_style(cell.state, partial=True, default=Style.null())
            if changed:
                style += self.get_component_rich_style("-changed", partial=True, default=Style.null())
            self._styles[cell.state, changed] = style
        return Text(visible(cell.text), style=style)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def _restyle(self) -> None:
        """Re-apply the state styles in place (same text, so no column is measured again)."""
        self._styles.clear()
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


class OperationLog(ScrollView, can_focus=True):
    """An operation's log: a scrolling list of lines that can be searched (matches marked by the ``log--match``
    style of orbit.tcss) and selected with the mouse.

    Lines are given as text, or as stored log lines (bytes) with ``decode`` to turn one into its text: those
    are decoded when first shown, searched or saved, so a replay of 100,000 lines decodes the screenful it
    shows. A line's width is known once it is decoded, so the horizontal scroll range grows as lines are
    seen. Rendering follows Textual's ``Log`` (one ``Strip`` a line, tabs expanded), control characters shown as their
    escapes (``orbit_ops.text.visible``).
    """

    ALLOW_SELECT = True
    COMPONENT_CLASSES: ClassVar[set[str]] = {"log--match", "log--time"}
    DEFAULT_CSS = """
    OperationLog {
        background: $surface;
        color: $text;
        overflow: scroll;
        &:focus {
            background-tint: $foreground 5%;
        }
    }
    """

    def __init__(self, decode: Callable[[bytes], str] = bytes.decode, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.decode = decode
        self.auto_scroll = True
        self.search = SearchHighlighter()
        self._entries: list[str | bytes] = []
        self._width = 0
        self._strips: LRUCache[int, Strip] = LRUCache(1024)
        self._at_end = True  # showing the last line: kept there when lines come or the view is resized

    @property
    def lines(self) -> list[str]:
        """Every line, as text (decodes the ones not shown yet)."""
        return [self._text(index) for index in range(len(self._entries))]

    @property
    def line_count(self) -> int:
        return len(self._entries)

    def on_mount(self) -> None:
        self._restyle()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._restyle()

    def _restyle(self) -> None:
        with contextlib.suppress(KeyError):
            self.search.match_style = self.get_component_rich_style("log--match", partial=True)
            self.search.time_style = self.get_component_rich_style("log--time", partial=True)

    def write_lines(self, lines: Iterable[str | bytes], scroll_end: bool | None = None) -> None:
        """Append lines (text, or stored lines for ``decode``); follow the end if asked (default: ``auto_scroll``)
        and the view was at the end."""
        start = len(self._entries)
        width = self._width
        for line in lines:
            if isinstance(line, str):
                for part in line.splitlines() or [""]:
                    self._entries.append(part)
                    width = max(width, cell_len(_printable(part)))
            else:
                self._entries.append(line)
        self._width = width
        self.virtual_size = Size(self._width, len(self._entries))
        self.refresh_lines(start, len(self._entries) - start)
        follow = self.auto_scroll if scroll_end is None else scroll_end
        if follow and self._at_end and not self.is_vertical_scrollbar_grabbed:
            self._keep_end()
        else:
            self.refresh()

    def _keep_end(self) -> None:
        # Forced: the first lines arrive before the layout has given the view its scrollbar, and an
        # unforced scroll is ignored until then (Textual's Log opens a long finished log at its top).
        self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self._at_end = True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._at_end = new_value >= self.max_scroll_y

    def on_resize(self) -> None:
        # A sweep's member table appears above the log once its first member reports, making the log shorter:
        # a view that showed the end still shows it.
        if self.auto_scroll and self._at_end:
            self._keep_end()

    def set_query(self, query: str, within: Sequence[int] | None = None) -> list[int]:
        """Mark ``query`` and return the indexes of the lines containing it; ``within``: only these lines can
        (the matches of a query that ``query`` extends: typing a search looks again only at what still matched)."""
        self.search.query = query
        self._strips.clear()
        self.refresh()
        if within is not None:
            needle = query.lower()
            return [index for index in within if needle in self._text(index).lower()] if needle else []
        return self.find(query)

    def find(self, query: str, start: int = 0) -> list[int]:
        """The indexes of the lines from ``start`` on that contain ``query`` (case-insensitive)."""
        needle = query.lower()
        if not needle:
            return []
        return [index for index in range(start, len(self._entries)) if needle in self._text(index).lower()]

    def show_line(self, index: int) -> None:
        self.scroll_to(y=max(0, index - self.size.height // 2), animate=False)

    def _text(self, index: int) -> str:
        entry = self._entries[index]
        if isinstance(entry, str):
            return entry
        text = self._entries[index] = self.decode(entry)
        width = cell_len(_printable(text))
        if width > self._width:
            self._width = width
            self.call_later(self._grow)  # not while a frame is being rendered
        return text

    def _grow(self) -> None:
        self.virtual_size = Size(self._width, len(self._entries))

    # -- Textual's line API --------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        rich_style = self.rich_style
        if index >= len(self._entries):
            return Strip.blank(width, rich_style)
        strip = self._strip(index, rich_style)
        return strip.crop_extend(scroll_x, scroll_x + width, rich_style).apply_offsets(scroll_x, index)

    def _strip(self, index: int, rich_style: Style) -> Strip:
        selection = self.text_selection
        if selection is None and index in self._strips:
            return self._strips[index]
        line = _printable(self._text(index))
        text = Text(line, no_wrap=True)
        text.stylize(rich_style)
        self.search.highlight(text)
        if selection is not None and (span := selection.get_span(index)) is not None:
            start, end = span
            text.stylize(self.screen.get_component_rich_style("screen--selection"), start,
                         len(text) if end == -1 else end)
        strip = Strip(text.render(self.app.console), cell_len(line))
        if selection is None:
            self._strips[index] = strip
        return strip

    def refresh_lines(self, y_start: int, line_count: int = 1) -> None:
        for index in range(y_start, y_start + line_count):
            self._strips.discard(index)
        super().refresh_lines(y_start, line_count)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract("\n".join(self.lines)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self._strips.clear()
        self.refresh()


def _printable(line: str) -> str:
    """``line`` as one screen row: tabs expanded, control characters shown as their escapes (``\\x1b``)."""
    return visible(line)


class PlanView(Static):
    """A plan laid out in aligned columns: per solution a header, then action, kind, name and the changes
    (an update's field-level diffs one a line, wrapped under their own column). Styles from ``orbit.tcss``."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "plan--create",
        "plan--update",
        "plan--refused",
        "plan--muted",
        "plan--solution",
    }

    def __init__(self, model: PlanModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model

    def on_mount(self) -> None:
        self.update(self.layout_plan())

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self.update(self.layout_plan())

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True, default=Style.null())

    def layout_plan(self) -> RenderableType:
        parts: list[RenderableType] = []
        width = self.model.name_width
        for block in self.model.blocks:
            header = Text(visible(block.solution), style=self._style("plan--solution"))
            header.append("  ")
            header.append(visible(block.summary), style=self._style(block.state))
            parts.append(header)
            for note in block.notes:
                style = self._style("plan--refused") if block.state == "plan--refused" else Style.null()
                parts.append(Padding(Text(visible(note, multiline=True), style=style), (0, 0, 0, 4)))
            if not block.entries:
                continue
            grid = Table.grid(padding=(0, 2), pad_edge=False)
            grid.add_column(width=6, no_wrap=True)
            grid.add_column(width=7, no_wrap=True)
            grid.add_column(min_width=width, no_wrap=True)
            grid.add_column(ratio=1)
            for entry in block.entries:
                grid.add_row(
                    Text(entry.action, style=self._style(f"plan--{entry.action}")),
                    entry.kind,
                    Text(visible(entry.name)),
                    Text("\n".join(visible(change) for change in entry_changes(entry))),
                )
            parts.append(Padding(grid, (0, 0, 0, 4)))
        return Group(*parts)
