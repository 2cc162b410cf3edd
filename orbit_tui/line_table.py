"""A table that draws only the rows on screen: Textual's line API over plain rows (decision 0075).

:class:`LineTable` holds its rows as keys, and a function giving a row's cells (``orbit_tui.render.Cell``: text
and state class) by key, called when Textual asks for a line (``render_line``): drawing, scrolling and replacing
the rows cost the rows on screen, not the rows held. Replacing 10,000 rows (:meth:`LineTable.show_keys`) is a list
assignment; the caller gives the columns' widths, which it can tell from its data's distinct values, and the keys a
refresh changed. Nothing is built per row that is not shown (decision 0088). :meth:`LineTable.show_rows` takes rows
with their cells made, for a caller that has them.

It looks and behaves as :class:`orbit_tui.widgets.StateTable` (a ``DataTable`` in row-cursor mode) does, so the
Solutions screen reads the same: the same header, zebra stripes, cursor and hover styles (the component classes
below copy ``DataTable``'s default CSS), cells styled by the state classes of ``orbit.tcss`` (``LineTable >
.-drifted``), a row a refresh changed flagged ``-changed`` for :attr:`FLASH_SECONDS`, the cursor kept on its key
when the rows are replaced, Enter and a click on the cursor row posting :class:`LineTable.RowSelected`, the
same keys (up, down, page up/down, home/end) and the same page step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size, Spacing
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from orbit_ops.text import visible
from orbit_tui.render import STYLED_CLASSES, Cell

Row = tuple[str, tuple[Cell, ...]]
CellsOf = Callable[[str], tuple[Cell, ...]]
PADDING = 1  # cells of space on each side of each column, as DataTable's default cell_padding


class LineTable(ScrollView, can_focus=True):
    """Rows of state-styled cells by key, a row cursor, drawn line by line for the viewport only."""

    COMPONENT_CLASSES: ClassVar[set[str]] = set(STYLED_CLASSES) | {
        "-changed",
        "linetable--cursor",
        "linetable--hover",
        "linetable--header",
        "linetable--even-row",
        "linetable--odd-row",
    }
    DEFAULT_CSS = """
    LineTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;

        &:focus {
            background-tint: $foreground 5%;
            & > .linetable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .linetable--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark {
            & > .linetable--even-row {
                background: $surface-darken-1 40%;
            }
        }
        & > .linetable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .linetable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .linetable--odd-row {
        }
        & > .linetable--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .linetable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .linetable--hover {
            background: $block-hover-background;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", tooltip="Open the row under the cursor"),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("ctrl+home", "scroll_top", "Top", show=False),
        Binding("ctrl+end", "scroll_bottom", "Bottom", show=False),
        Binding("home", "scroll_top", "Top", show=False),
        Binding("end", "scroll_bottom", "Bottom", show=False),
    ]
    FLASH_SECONDS: ClassVar[float] = 1.5  # how long a row changed by a refresh stays flagged

    class RowSelected(Message):
        """Enter on a row, or a click on the row under the cursor."""

        def __init__(self, table: LineTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LineTable:
            return self.table

    def __init__(self, columns: Sequence[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._labels = tuple(columns)
        self._keys: Sequence[str] = []
        self._cells_of: CellsOf = _no_cells
        self._index: dict[str, int] | None = {}
        self._widths = tuple(cell_len(label) for label in self._labels)
        # What a text shows as, and its width, kept once per distinct text drawn.
        self._shown_texts: dict[str, tuple[str, int]] = {}
        self.cursor_row = 0
        self.hover_row = -1
        self._show_hover = False
        self.flashing: dict[str, int] = {}  # key of a row a refresh just changed (styled -changed) → that refresh
        self._refreshes = 0
        self._styles: dict[tuple[str | None, bool], Style] = {}
        # (row kind, cursor, hover, state, glow) → its styles: a line is drawn from looked-up styles only.
        self._line_styles: dict[tuple[str, bool, bool, str | None, bool], tuple[Style, Style]] = {}

    def on_mount(self) -> None:
        # A new theme restyles the component classes after this signal: drop the looked-up styles once done.
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.call_after_refresh(self._restyle))

    # -- rows -----------------------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def current_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        return self._keys[self.cursor_row] if self._keys else None

    def get_row(self, key: str) -> list[Text]:
        """The row ``key`` as it is drawn: one styled text per cell."""
        if self._index is None:
            self._index = {key: index for index, key in enumerate(self._keys)}
        return self.get_row_at(self._index[key])

    def get_row_at(self, index: int) -> list[Text]:
        key = self._keys[index]
        cells = self._cells_of(key)
        glow = key in self.flashing
        texts = self._texts(cells)
        return [Text(text, style=self._cell_style(cell.state, glow)) for cell, text in zip(cells, texts, strict=True)]

    def show_rows(self, rows: Iterable[Row], *, flash: bool = False) -> None:
        """Replace every row with ``rows`` (key, cells), keeping the cursor on the same key if it is still there.

        ``flash``: this is a refresh, so rows whose content changed are flagged with the ``-changed`` style for
        :attr:`FLASH_SECONDS` (a filter or a selection passes False: nothing changed in the world). The columns
        are widened to every row's cells (see :meth:`show_keys` for rows whose cells are made when drawn).
        """
        new = dict(rows)
        keys = list(new)
        changed: set[str] = set()
        if flash and keys == self._keys:
            before = self._cells_of
            changed = {key for key, cells in new.items() if (old := before(key)) is not cells and old != cells}
        widths = [max((self._shown(cells[column].text)[1] for cells in new.values()), default=0)
                  for column in range(len(self._labels))]
        self.show_keys(keys, new.__getitem__, widths=widths, changed=changed)

    def show_keys(self, keys: Sequence[str], cells_of: CellsOf, *, widths: Sequence[int],
                  changed: Collection[str] = ()) -> None:
        """Replace every row: ``keys`` in order, the cells of each made by ``cells_of`` when the row is drawn.

        ``widths``: the widest text of each column over these rows as shown (control characters as escapes: see
        :func:`text_width`); as DataTable's, the columns only grow, so a filter narrowing the rows keeps them where
        they were and the table does not shift under the operator's eyes at every keystroke. ``changed``: the
        keys of rows a refresh changed, flagged ``-changed`` for :attr:`FLASH_SECONDS` when the rows are the same
        as before (a filter or a selection passes none: nothing changed in the world). The cursor stays on the same
        key if it is still there.
        """
        same_keys = len(keys) == len(self._keys) and keys == self._keys
        found = -1
        if not same_keys:
            keep = self.current_key
            self._index = None  # made when a key is looked up (get_row), not at every keystroke of a filter
            self.flashing.clear()
            if keep is not None:
                with contextlib.suppress(ValueError):
                    found = keys.index(keep)
        self._keys, self._cells_of = keys, cells_of
        if same_keys:
            if changed:
                self._flash(set(changed))
        elif found >= 0:
            self.cursor_row = found
        else:
            self.cursor_row = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        self._widths = tuple(max(old, new) for old, new in zip(self._widths, widths, strict=True))
        self.virtual_size = Size(self._table_width(), len(keys) + 1)
        if found >= 0 and self.size.height:
            self._scroll_cursor_into_view()  # its row stays in view (a filter cleared: found among all the rows)
        self.refresh()

    def _texts(self, cells: Sequence[Cell]) -> list[str]:
        """The texts of ``cells`` as they are shown (each distinct text made visible once, when first drawn)."""
        return [self._shown(cell.text)[0] for cell in cells]

    def _shown(self, text: str) -> tuple[str, int]:
        """``text`` as a cell shows it (control characters as escapes) and its width; once per distinct text."""
        found = self._shown_texts.get(text)
        if found is None:
            shown = visible(text)
            found = self._shown_texts[text] = (shown, cell_len(shown))
        return found

    def _table_width(self) -> int:
        return sum(width + 2 * PADDING for width in self._widths)

    # -- flags of a refresh ---------------------------------------------------------------------------------

    def _flash(self, keys: set[str]) -> None:
        self._refreshes += 1
        refresh = self._refreshes
        self.flashing.update(dict.fromkeys(keys, refresh))
        self.set_timer(self.FLASH_SECONDS, lambda: self._unflash(refresh))

    def _unflash(self, refresh: int) -> None:
        """The moment is over: draw the rows flagged by one refresh plain (unless a later refresh flagged them)."""
        done = [key for key, flagged_by in self.flashing.items() if flagged_by == refresh]
        for key in done:
            del self.flashing[key]
        if done:
            self.refresh()

    # -- cursor ---------------------------------------------------------------------------------------------

    def move_cursor(self, *, row: int, scroll: bool = True) -> None:
        """Put the cursor on ``row`` (clamped to the rows), scrolling it into view unless ``scroll`` is False."""
        self.cursor_row = max(0, min(row, len(self._keys) - 1))
        if scroll:
            self._scroll_cursor_into_view()
        self.refresh()

    def _scroll_cursor_into_view(self) -> None:
        region = Region(int(self.scroll_x), self.cursor_row + 1, max(1, self.size.width), 1)
        self.scroll_to_region(region, animate=False, spacing=Spacing(1, 0, 0, 0), force=True, immediate=True)

    def _page_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "select_cursor":
            return True if self._keys else None
        return True

    def action_cursor_up(self) -> None:
        self._show_hover = False
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._show_hover = False
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_down(self) -> None:
        """As DataTable: scroll one page of rows and move the cursor by as many."""
        self._show_hover = False
        height = self._page_height()
        self.scroll_to(y=self.scroll_y + height, animate=False, force=True, immediate=True)
        self.move_cursor(row=self.cursor_row + height, scroll=False)

    def action_page_up(self) -> None:
        self._show_hover = False
        height = self._page_height()
        self.scroll_to(y=max(0, self.scroll_y - height), animate=False, force=True, immediate=True)
        self.move_cursor(row=self.cursor_row - height, scroll=False)

    def action_scroll_top(self) -> None:
        self._show_hover = False
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        self._show_hover = False
        self.move_cursor(row=len(self._keys) - 1)

    def action_select_cursor(self) -> None:
        self._show_hover = False
        if key := self.current_key:
            self.post_message(self.RowSelected(self, key))

    # -- mouse ----------------------------------------------------------------------------------------------

    async def _on_click(self, event: events.Click) -> None:
        row = event.style.meta.get("row")
        if not isinstance(row, int) or row < 0 or row >= len(self._keys):
            return  # the header, or below the last row
        event.stop()
        if row == self.cursor_row:
            self.action_select_cursor()
            return
        self.move_cursor(row=row)

    def _on_mouse_move(self, event: events.MouseMove) -> None:
        row = event.style.meta.get("row")
        hover = row if isinstance(row, int) else -1
        if hover != self.hover_row or not self._show_hover:
            self.hover_row, self._show_hover = hover, True
            self.refresh()

    def _on_leave(self, _: events.Leave) -> None:
        if self._show_hover:
            self._show_hover = False
            self.refresh()

    # -- styles ---------------------------------------------------------------------------------------------

    def _cell_style(self, state: str | None, changed: bool) -> Style:
        style = self._styles.get((state, changed))
        if style is None:
            style = Style.null()
            if state is not None:
                style = self.get_component_rich_style(state, partial=True, default=Style.null())
            if changed:
                style += self.get_component_rich_style("-changed", partial=True, default=Style.null())
            self._styles[state, changed] = style
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._line_styles.clear()

    def _on_focus(self, event: events.Focus) -> None:
        self._line_styles.clear()  # the cursor's style is another with the focus

    def _on_blur(self, event: events.Blur) -> None:
        self._line_styles.clear()

    def _restyle(self) -> None:
        self._styles.clear()
        self._line_styles.clear()
        self.refresh()

    # -- Textual's line API ---------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            return self._render_row(-1, self._labels, None, base, width)
        index = int(self.scroll_y) + y - 1
        if index >= len(self._keys):
            return Strip.blank(width, base)
        key = self._keys[index]
        cells = self._cells_of(key)
        texts = self._texts(cells)
        return self._render_row(index, texts, cells, base, width, glow=key in self.flashing)

    def _render_row(
        self,
        index: int,
        texts: Sequence[str],
        cells: Sequence[Cell] | None,
        base: Style,
        width: int,
        *,
        glow: bool = False,
    ) -> Strip:
        """One line, as DataTable draws a row: each cell padded to its column, styled row → cursor → cell."""
        cursor = index == self.cursor_row
        hover = self._show_hover and index == self.hover_row and index >= 0
        plain, extend = self._row_styles(index, cursor, hover)
        segments: list[Segment] = []
        for column, (text, column_width) in enumerate(zip(texts, self._widths, strict=True)):
            # The cell's position as meta (what a click reads), as DataTable gives it: it also keeps each cell
            # its own segment on screen, so the screen is painted exactly as it was with DataTable.
            meta = Style.from_meta({"row": index, "column": column})
            plain_meta = plain + meta
            shown = text if cell_len(text) <= column_width else set_cell_size(text, column_width)
            fill = " " * (column_width - cell_len(shown) + PADDING)
            segments.append(Segment(" " * PADDING, plain_meta))
            if shown:
                state = cells[column].state if cells is not None else None
                segments.append(Segment(shown, self._text_style(index, cursor, hover, state, glow) + meta))
            segments.append(Segment(fill, plain_meta))
        remaining = max(0, width - self._table_width())
        segments.append(Segment(" " * remaining, extend + Style.from_meta({"row": index, "column": 0,
                                                                           "out_of_bounds": True})))
        scroll_x = int(self.scroll_x)
        strip = Strip(segments)
        if scroll_x:
            strip = strip.crop(scroll_x, scroll_x + width)
        return strip.adjust_cell_length(width, base).simplify()

    def _row_styles(self, index: int, cursor: bool, hover: bool) -> tuple[Style, Style]:
        """(padding and fill, the space right of the last column) of a row: looked up once per kind of row."""
        kind = "header" if index < 0 else ("odd" if index % 2 else "even")
        key = (kind, cursor, hover, None, False)
        found = self._line_styles.get(key)
        if found is None:
            row_style, component = self._row_and_component(kind, cursor, hover)
            post = Style.from_color(color=component.color)  # the cursor's colour wins over a cell's, as in DataTable
            found = self._line_styles[key] = (row_style + component + post, row_style + component)
        return found

    def _text_style(self, index: int, cursor: bool, hover: bool, state: str | None, glow: bool) -> Style:
        kind = "header" if index < 0 else ("odd" if index % 2 else "even")
        key = (kind, cursor, hover, state, glow)
        found = self._line_styles.get(key)
        if found is None:
            row_style, component = self._row_and_component(kind, cursor, hover)
            post = Style.from_color(color=component.color)
            text = row_style + component + self._cell_style(state, glow) + post
            found = self._line_styles[key] = (text, text)
        return found[0]

    def _row_and_component(self, kind: str, cursor: bool, hover: bool) -> tuple[Style, Style]:
        if kind == "header":
            return self.get_component_styles("linetable--header").rich_style, Style()
        row_style = self.get_component_styles(f"linetable--{kind}-row").rich_style
        component = Style()
        if hover:
            component += self.get_component_rich_style("linetable--hover")
        if cursor:
            component += self.get_component_rich_style("linetable--cursor")
        return row_style, component


def _no_cells(key: str) -> tuple[Cell, ...]:
    raise KeyError(key)  # no rows yet: never asked


def text_width(text: str) -> int:
    """How many cells wide a :class:`LineTable` shows ``text`` (control characters as escapes): ``len`` for
    printable ASCII, the common case, which a caller measuring 10,000 ids can afford."""
    if text.isascii() and text.isprintable():
        return len(text)
    return cell_len(visible(text))


def column_width(texts: Collection[str]) -> int:
    """How wide a column must be for ``texts``: the widest :func:`text_width`, told at once when they are all
    printable ASCII (10,000 ids: one join and the lengths)."""
    joined = "".join(texts)
    if joined.isascii() and joined.isprintable():
        return max(map(len, texts), default=0)
    return max(map(text_width, texts), default=0)
