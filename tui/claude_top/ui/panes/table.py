"""A DataTable kept up to date by keyed diffs, sortable by any column, cursor pinned to its row.

Rows are dicts from `core.queries`; each column says how to show a row (text plus an optional
theme colour name) and what to sort it by. The table shows the columns that fit its width, by
priority, cutting long text with an ellipsis: never a horizontal scroll. `set_rows` updates
changed cells, adds new rows and removes gone ones inside one `batch_update()`, re-orders only
when the order changed, and puts the cursor back on the row it was on. It never clears the
table.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from claude_top.core.export import PaneView

Cell = str | tuple[str, str | None]
"""What a column shows: plain text, or (text, theme colour name such as "error")."""

OPEN_TIP = "the session's turns, the turn's span tree, the tool's calls, the model's requests"
"""What Enter opens, by table."""
SORT_MARK = {False: " ▲", True: " ▼"}
"""Appended to the sorted column's label: descending ▼, ascending ▲."""


@dataclass(frozen=True)
class Col:
    """One column: its key, header label, how a row shows in it and how it sorts."""

    key: str
    label: str
    cell: Callable[[dict], Cell]
    sort: Callable[[dict], Any] | None = None
    right: bool = False
    descending: bool = True
    optional: bool = False
    """Shown only while some row has something in it (e.g. custom resource attributes)."""
    clock: bool = False
    """Shows what moves with the row's `now_ns` (an age, a status); `retime` redraws it."""
    priority: int = 50
    """When the columns do not all fit, the lowest priorities are left out first (the first
    column and the sorted one always stay)."""
    min_width: int | None = None
    """Text that may be cut, with an ellipsis, down to this width before columns are left out;
    it takes the room left over back first, up to its widest cell."""
    help: str = ""
    """What the column means, for the help screen's glossary."""


CACHED_SCREENS = 3
"""How many table heights of rendered lines, rows and cells a table keeps cached. DataTable
keeps 1000 lines and rows and 10000 cells whatever its size: over 20 MB once the cursor has
been over a few hundred rows, where three screens are what a repaint reuses."""
_ROW_CACHES = ("_row_render_cache", "_row_renderable_cache", "_line_cache")


def _discard(cache, stale: Callable[[tuple], bool]) -> None:
    for key in [k for k in cache.keys() if stale(k)]:  # noqa: SIM118 (LRUCache has no __iter__)
        cache.discard(key)


_DATA_TABLE_INTERNALS = (
    "_data",
    "_update_count",
    "_row_locations",
    "_ordered_row_cache",
    "_offset_cache",
    "_refresh_region",
    "_cell_render_cache",
    "_row_render_cache",
    "_row_renderable_cache",
    "_line_cache",
)
"""What `KeyedTable._put_cell` and `_move_rows` use of DataTable's private state (as of Textual
8.2); a Textual without them gets update_cell and sort."""


_PLAIN, _DIM, _BOLD = Style(), Style(dim=True), Style(bold=True)


def theme_style(app, name: str | None) -> Style:
    """A Rich style in the app theme's colour `name` (error, success, warning, accent, muted).
    One style object per colour, shared (Rich styles are immutable), not one per cell."""
    if not name:
        return _PLAIN
    if name == "muted":
        return _DIM
    if name == "bold":
        return _BOLD
    value = app.theme_variables.get(name)
    return _PLAIN if value is None else _colour_style(value)


@functools.lru_cache(maxsize=64)
def _colour_style(value: str) -> Style:
    return Style(color=Color.parse(value).rich_color)


def _plain(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


class _KeyedText(Text):
    """Cell text that knows its row key, so rows can be ordered by key."""

    row_key: str = ""


class KeyedTable(DataTable):
    """A DataTable of keyed rows with `s` (sort column) and `r` (reverse) and vi keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", tooltip=OPEN_TIP, id="table.open"),
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g", "scroll_top", "First row", show=False, id="table.first"),
        Binding("G", "scroll_bottom", "Last row", show=False, id="table.last"),
        Binding(
            "s", "cycle_sort", "Sort", tooltip="by the next column (▼ ▲ mark it)", id="table.sort"
        ),
        Binding("r", "reverse_sort", "Reverse", show=False, id="table.reverse"),
    ]

    class CursorKeyChanged(Message):
        """The row under the cursor is a different row (not merely a moved one)."""

        def __init__(self, table: KeyedTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> KeyedTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[Col],
        row_key: Callable[[dict], str],
        sort_key: str,
        *,
        fixed_columns: int = 0,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(
            id=id,
            classes=classes,
            cursor_type="row",
            zebra_stripes=False,
            fixed_columns=fixed_columns,
        )
        self.cols = {c.key: c for c in columns}
        self._row_key_of = row_key
        self.sort_key = sort_key
        self.reversed = False
        self.rows_by_key: dict[str, dict] = {}
        self._shown: dict[str, tuple[Cell, ...]] = {}
        self._cursor_key: str | None = None
        self._first_col = columns[0].key
        self._clock_ns: int | None = None
        self._edited: set[RowKey] = set()
        self._natural: dict[str, int] = {}
        """Each column's widest cell or label (0: an optional column with nothing in it)."""
        self._widths_changed = False
        self.follow_top = True
        """Keep the cursor on the first row as rows arrive above it (as htop does): while it is
        there and the user has not moved it away; moving it back to the first row follows
        again."""
        self._arranging = False
        self._row_local_edits = all(hasattr(self, name) for name in _DATA_TABLE_INTERNALS)

    def on_mount(self) -> None:
        for col in self.cols.values():
            if not col.optional:
                self.add_column(self._label(col), key=col.key, width=self._label(col).cell_len)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    def on_resize(self) -> None:  # also sent once the table is first laid out
        self._fit_caches()
        if self._shown:
            with self._arranging_rows():
                self._fill(self._layout())
                self._redraw_edited()

    def _fit_caches(self) -> None:
        """Size DataTable's render caches to CACHED_SCREENS of this table. A cache that changes
        size is emptied (a full one would not grow), as a resize repaints every line anyway."""
        rows = CACHED_SCREENS * max(self.size.height, 24)
        sizes = dict.fromkeys(_ROW_CACHES, rows)
        sizes["_cell_render_cache"] = rows * max(len(self.cols), 1)
        for name, size in sizes.items():
            cache = getattr(self, name, None)
            if hasattr(cache, "maxsize") and cache.maxsize != size:
                cache.maxsize = size
                cache.clear()

    # --- reading -------------------------------------------------------------------------

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        except Exception:
            return None

    @property
    def cursor_data(self) -> dict | None:
        """The query row under the cursor."""
        key = self.cursor_key
        return self._current(key) if key in self.rows_by_key else None

    def keys_in_order(self) -> list[str]:
        """Row keys as displayed, top to bottom."""
        return [row.key.value for row in self.ordered_rows]

    def rows_in_order(self) -> list[dict]:
        """The query rows as displayed (current filter, window and sort), top to bottom."""
        return [self._current(key) for key in self.keys_in_order()]

    def as_view(self, pane: str, session_id: str | None = None) -> PaneView:
        """The table as shown, for a snapshot's `focused-<pane>.csv`."""
        col = self.cols[self.sort_key]
        return PaneView(
            pane,
            self.rows_in_order(),
            sort_column=col.key,
            sort_label=col.label,
            descending=col.descending != self.reversed,
            session_id=session_id,
        )

    def _current(self, key: str) -> dict:
        """A held row as of the table's clock (`retime` moves only the rows on screen)."""
        row = self.rows_by_key[key]
        if self._clock_ns is not None and row.get("now_ns") != self._clock_ns:
            row = self.rows_by_key[key] = self.timed(row, self._clock_ns)
        return row

    # --- updating ------------------------------------------------------------------------

    def set_rows(self, rows: Iterable[dict]) -> None:
        """Make the table show `rows`: keyed diff, re-sort if needed, cursor stays on its row."""
        new = {self._row_key_of(r): r for r in rows}
        clocks = {r["now_ns"] for r in new.values() if "now_ns" in r}
        self._clock_ns = max(clocks) if clocks else self._clock_ns
        selected = self.cursor_key
        line = self.cursor_row - round(self.scroll_y) if self.scroll_y > 0 else None
        cols = list(self.cols.values())
        index = {c.key: i for i, c in enumerate(cols)}
        shown_new = {key: tuple(c.cell(row) for c in cols) for key, row in new.items()}
        with self._arranging_rows():
            for key in [k for k in self._shown if k not in new]:
                self.remove_row(key)
                del self._shown[key]
            self._measure(shown_new)
            added = self._layout(len(shown_new))
            present = [c for c in cols if c.key in self.columns]
            for key, shown in shown_new.items():
                old = self._shown.get(key)
                if old is None:
                    cells = (self._text(key, c, shown[index[c.key]]) for c in present)
                    self.add_row(*cells, key=key)
                    continue
                for c in present:
                    i = index[c.key]
                    if old[i] != shown[i] or c.key in added:
                        # widths are set by _layout; DataTable's update_width would
                        # re-measure the whole column for each narrower cell (quadratic)
                        self._put_cell(key, c.key, self._text(key, c, shown[i]))
            self._shown = shown_new
            self.rows_by_key = new
            self._redraw_edited()
            self._reorder(selected, line)
        self._note_cursor_key()

    def timed(self, row: dict, now_ns: int) -> dict:
        """`row` as of `now_ns`: what the clock columns read (here only `now_ns` itself)."""
        return dict(row, now_ns=now_ns)

    def retime(self, now_ns: int) -> None:
        """Move the clock columns to `now_ns`, from the rows held (no query): only cells whose
        text changes are updated; rows re-sort if they are sorted by a clock column.

        Only the rows on screen move (all of them when sorted by a clock column): ages ticking
        in rows nobody sees would be rendered every second, and a column that widens repaints
        the whole table. Scrolling retimes the rows it brings in; exports and the cursor's row
        read rows as of the clock (`_current`).
        """
        self._clock_ns = now_ns
        clocked = [(i, c) for i, c in enumerate(self.cols.values()) if c.clock]
        if not clocked or not self.rows_by_key:
            return
        selected = self.cursor_key
        line = self.cursor_row - round(self.scroll_y) if self.scroll_y > 0 else None
        near = self._near_view()
        by_clock = self.cols[self.sort_key].clock
        changed: set[int] = set()
        with self._arranging_rows():
            for key in list(self.rows_by_key):
                if near is not None and key not in near:
                    if by_clock:
                        self._current(key)
                    continue
                row = self._current(key)
                shown = self._shown[key]
                cells = {i: c.cell(row) for i, c in clocked}
                if all(shown[i] == cell for i, cell in cells.items()):
                    continue
                self._shown[key] = tuple(cells.get(i, old) for i, old in enumerate(shown))
                for i, c in clocked:
                    if cells[i] != shown[i]:
                        changed.add(i)
                        if c.key in self.columns:
                            self._put_cell(key, c.key, self._text(key, c, cells[i]))
            if changed:
                self._measure(self._shown, changed)
                self._fill(self._layout())
                self._redraw_edited()
                if by_clock:
                    self._reorder(selected, line)
        self._note_cursor_key()

    def _put_cell(self, key: str, column: str, value: Text) -> None:
        """Set a cell's text; `_redraw_edited` then repaints only the rows set this way.

        DataTable.update_cell bumps the table's update count, which every cached cell, row
        and line is keyed by: one changed cell re-renders every row on screen.
        """
        if not self._row_local_edits:
            self.update_cell(key, column, value)
            return
        row_key = RowKey(key)
        self._data[row_key][ColumnKey(column)] = value
        self._edited.add(row_key)

    def _redraw_edited(self) -> None:
        """Drop the cached renders of the rows `_put_cell` changed and repaint them; all rows
        when a column's width changed or rows were added (every cached cell, row and line was
        rendered at the old widths)."""
        edited, self._edited = self._edited, set()
        if self._widths_changed or (edited and self._require_update_dimensions):
            self._redraw_all()
        elif edited:
            _discard(self._cell_render_cache, lambda k: k[0] in edited)
            self._repaint_rows(edited)

    def _redraw_all(self) -> None:
        """Render every line again, the header too (what DataTable's own calls do)."""
        self._widths_changed = False
        if hasattr(self, "_update_count"):
            self._update_count += 1
        self._require_update_dimensions = True
        self.refresh(layout=True)

    def _move_rows(self, order: list[str]) -> None:
        """Put the rows in `order`, repainting only the lines whose row changed (DataTable.sort
        re-renders every row). A moved row's cells are rendered again too: each carries its
        row index for the mouse."""
        moved: set[RowKey] = set()
        locations: dict[RowKey, int] = {}
        for index, key in enumerate(order):
            row_key = RowKey(key)
            locations[row_key] = index
            if self._row_locations.get(row_key) != index:
                moved.add(row_key)
        self._row_locations = TwoWayDict(locations)
        self._ordered_row_cache.clear()
        self._offset_cache.clear()
        _discard(self._cell_render_cache, lambda k: k[0] in moved)
        self._repaint_rows(moved)

    def _repaint_rows(self, rows: set[RowKey]) -> None:
        """Drop the cached renders of `rows` (their cells' own stay) at their current places
        and repaint those lines; rows are one line high."""
        indices = {i for i in map(self._row_locations.get, rows) if i is not None}
        header = self.header_height if self.show_header else 0
        lines = {header + i for i in indices}
        _discard(self._row_render_cache, lambda k: k[0] in rows)
        _discard(self._row_renderable_cache, lambda k: k[1] in indices)
        _discard(self._line_cache, lambda k: k[0] in lines)
        width = max(self.size.width, self.virtual_size.width)
        for y in sorted(lines):
            self._refresh_region(Region(0, y, width, 1))

    def _near_view(self) -> set[str] | None:
        """Keys of the rows on screen (None: not laid out yet)."""
        height = self.scrollable_content_region.height
        if height <= 0:
            return None
        top = round(self.scroll_y)
        return set(self.keys_in_order()[top : top + height])

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._clock_ns is not None and round(old_value) != round(new_value):
            self.call_later(self.retime, self._clock_ns)

    # --- columns -----------------------------------------------------------------------

    def _measure(self, shown: dict[str, tuple[Cell, ...]], only: set[int] | None = None) -> None:
        """Note each column's widest cell or label (or only the columns at indices `only`)."""
        before = sum(self._natural.values())
        for i, col in enumerate(self.cols.values()):
            if only is not None and i not in only:
                continue
            widest = max((cell_len(_plain(cells[i])) for cells in shown.values()), default=0)
            if col.optional and not widest:
                self._natural[col.key] = 0
            else:
                self._natural[col.key] = max(self._label(col).cell_len, widest)
        width = self.styles.width
        if sum(self._natural.values()) != before and width is not None and width.is_auto:
            self.refresh(layout=True)  # `width: auto` follows get_content_width

    def get_content_width(self, container: Size, viewport: Size) -> int:
        """`width: auto` asks for every column at its full width (and a scrollbar's room): a
        `max-width` then decides how much of it fits."""
        pad = 2 * self.cell_padding
        return sum(w + pad for w in self._natural.values() if w) + (
            self.styles.scrollbar_size_vertical
        )

    def _room(self, rows: int) -> int | None:
        """The width the columns may take with `rows` rows (None: not laid out yet)."""
        width = self.size.width
        if width <= 0:
            return None
        if rows + (self.header_height if self.show_header else 0) > self.size.height:
            width -= self.styles.scrollbar_size_vertical
        return width

    def fitted_widths(self, rows: int | None = None) -> dict[str, int]:
        """The columns that fit the table's width and their widths, in display order.

        By priority (the first and the sorted column first), each column at its least width
        (its full width unless it has a `min_width`) if that fits, else left out; then the room
        left over goes back to the cut ones, by priority: long text is cut before a column is
        left out.
        """
        natural = self._natural
        cols = [c for c in self.cols.values() if natural.get(c.key)]
        room = self._room(len(self._shown) if rows is None else rows)
        if room is None:
            return {c.key: natural[c.key] for c in cols}
        ranked = sorted(
            cols,
            key=lambda c: (c.key != self._first_col, c.key != self.sort_key, -c.priority),
        )
        pad = 2 * self.cell_padding
        widths: dict[str, int] = {}
        used = 0
        for c in ranked:
            least = max(min(natural[c.key], c.min_width or natural[c.key]), self._label(c).cell_len)
            if not widths or used + least + pad <= room:
                widths[c.key] = least
                used += least + pad
        for c in ranked:
            if c.key in widths and used < room:
                grow = min(natural[c.key] - widths[c.key], room - used)
                widths[c.key] += grow
                used += grow
        return {c.key: widths[c.key] for c in cols if c.key in widths}

    def _layout(self, rows: int | None = None) -> set[str]:
        """Show the columns that fit, at their widths (synchronously: DataTable's own auto
        width is settled on idle, and a frame drawn before that stays cached with the old
        widths, Textual issue #4470). Returns the columns added, whose cells are to be set."""
        widths = self.fitted_widths(rows)
        shown = [c.key.value for c in self.ordered_columns]
        wanted = list(widths)
        added: set[str] = set()
        if shown != wanted:
            same = 0
            while same < min(len(shown), len(wanted)) and shown[same] == wanted[same]:
                same += 1
            for key in shown[same:]:
                self.remove_column(key)
            for key in wanted[same:]:
                self.add_column(self._label(self.cols[key]), key=key, width=widths[key])
                added.add(key)
            self._widths_changed = True
        for key, width in widths.items():
            column = self.columns[ColumnKey(key)]
            if column.width != width:
                column.width = width
                self._widths_changed = True
        return added

    def _fill(self, added: set[str]) -> None:
        """Set every row's cells in the columns just added."""
        if not added:
            return
        index = {k: i for i, k in enumerate(self.cols)}
        for key, shown in self._shown.items():
            for column in added:
                col = self.cols[column]
                self._put_cell(key, column, self._text(key, col, shown[index[column]]))

    @contextlib.contextmanager
    def _arranging_rows(self) -> Iterator[None]:
        """The table itself moves rows and the cursor (not the user), in one batch update."""
        self._arranging = True
        try:
            with self.app.batch_update():
                yield
        finally:
            self._arranging = False

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        super().watch_cursor_coordinate(old, new)
        if not self._arranging and old != new:
            self.follow_top = new.row == 0

    def _reorder(self, selected: str | None, line: int | None = None) -> None:
        """Apply the sort order; the cursor follows its row, or stays on the first row while
        it follows the top (`follow_top`).

        When the table is scrolled (`line` is the cursor's line in the view), the view moves
        with that row too, so rows inserted above it do not shift what is on screen.
        """
        order = self._order()
        if self.follow_top and order:
            selected, line = order[0], None
        if order != self.keys_in_order():
            if self._row_local_edits:
                self._move_rows(order)
            else:
                rank = {k: i for i, k in enumerate(order)}
                self.sort(self._first_col, key=lambda cell: rank[cell.row_key])
        if selected is None or selected not in self.rows_by_key:
            return
        index = self.get_row_index(selected)
        if line is not None and index - line != round(self.scroll_y):
            header = self.header_height if self.show_header else 0
            height = self.row_count + header
            if self.virtual_size.height < height:
                self.virtual_size = Size(self.virtual_size.width, height)
            self.scroll_to(y=max(0, index - line), animate=False, immediate=True)
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False)

    def _order(self) -> list[str]:
        col = self.cols[self.sort_key]
        descending = col.descending != self.reversed
        present: list[tuple[Any, str]] = []
        missing: list[str] = []
        for key, row in self.rows_by_key.items():
            value = col.sort(row) if col.sort else None
            if value is None:
                missing.append(key)
            else:
                present.append((value, key))
        present.sort(reverse=descending)
        return [k for _, k in present] + sorted(missing)

    def _text(self, key: str, col: Col, cell: Cell) -> Text:
        text, style = (cell, None) if isinstance(cell, str) else cell
        out = _KeyedText(
            text,
            style=theme_style(self.app, style),
            justify="right" if col.right else "left",
            no_wrap=True,
            overflow="ellipsis",
            end="",
        )
        out.row_key = key
        return out

    def _label(self, col: Col) -> Text:
        mark = SORT_MARK[col.descending != self.reversed] if col.key == self.sort_key else ""
        return Text(col.label + mark, justify="right" if col.right else "left", no_wrap=True)

    def _restyle(self) -> None:
        """Re-apply theme colours to every cell (after a theme change)."""
        cols = list(self.cols.values())
        with self.app.batch_update():
            for key, shown in self._shown.items():
                for c, v in zip(cols, shown, strict=True):
                    if c.key in self.columns:
                        self.update_cell(key, c.key, self._text(key, c, v))

    def _relabel(self) -> None:
        """Put the sort mark on the sorted column's label; the header and every row (whose
        widths may change with the label's) are rendered again."""
        for col in self.cols.values():
            if col.key in self.columns:
                self.columns[col.key].label = self._label(col)
        self._measure(self._shown)
        self._fill(self._layout())
        self._redraw_all()

    # --- cursor --------------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self:
            self._note_cursor_key()

    def _note_cursor_key(self) -> None:
        key = self.cursor_key
        if key != self._cursor_key:
            self._cursor_key = key
            self.post_message(self.CursorKeyChanged(self, key))

    def select_key(self, key: str) -> bool:
        """Put the cursor on the row with `key`; False when there is no such row."""
        if key not in self.rows_by_key:
            return False
        self.move_cursor(row=self.get_row_index(key), animate=False)
        return True

    # --- sorting -------------------------------------------------------------------------

    @property
    def sortable(self) -> list[str]:
        """The columns on screen that sort (`s` cycles through them)."""
        return [k for k, c in self.cols.items() if c.sort is not None and k in self.columns]

    def sort_by(self, key: str, reversed_: bool = False) -> None:
        """Sort by column `key` in its natural direction (or reversed)."""
        self.sort_key = key
        self.reversed = reversed_
        with self._arranging_rows():
            self._relabel()
            self._reorder(self.cursor_key, self.cursor_row - round(self.scroll_y))
        self._note_cursor_key()  # another row may be under the cursor (it follows the top)

    def action_cycle_sort(self) -> None:
        """Sort by the next sortable column."""
        keys = self.sortable
        if not keys:
            return
        i = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_by(keys[(i + 1) % len(keys)])
        self.notify(f"sorted by {self.cols[self.sort_key].label}", timeout=1.5)

    def action_reverse_sort(self) -> None:
        """Reverse the sort order."""
        self.sort_by(self.sort_key, not self.reversed)
