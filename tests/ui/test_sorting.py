"""A sort shows its column and aligned rows at once, live or paused, in every table.

What is checked is what the table paints (`render_line`, through DataTable's render caches):
the header line and every visible row, column by column at the widths the table set.
"""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from uihelpers import make_app, settle

from claude_top.ui.panes.table import SORT_MARK, KeyedTable

SIZES = [(120, 40), (80, 24)]


def _fit(text: str, width: int, right: bool) -> str:
    if cell_len(text) > width:
        text = text[: max(0, width - 1)] + "…"
    return text.rjust(width) if right else text.ljust(width)


def expected_lines(table: KeyedTable) -> list[str]:
    """The header and the rows on screen as they should be painted: each cell fitted to its
    column's width, the sort mark on the sorted column's label alone."""
    columns = table.ordered_columns
    pad = table.cell_padding

    def line(cells: list[str]) -> str:
        out = ""
        for column, text in zip(columns, cells, strict=True):
            col = table.cols[column.key.value]
            out += " " * pad + _fit(text, column.width, col.right) + " " * pad
        return out

    header = []
    for column in columns:
        col = table.cols[column.key.value]
        mark = SORT_MARK[col.descending != table.reversed] if col.key == table.sort_key else ""
        header.append(col.label + mark)
    top = round(table.scroll_y)
    height = table.scrollable_content_region.height - table.header_height
    keys = table.keys_in_order()[top : top + height]
    index = {k: i for i, k in enumerate(table.cols)}
    rows = [line([_plain(table._shown[key][index[c.key.value]]) for c in columns]) for key in keys]
    return [line(header), *rows]


def _plain(cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


def painted_lines(table: KeyedTable, n: int) -> list[str]:
    width = table.scrollable_content_region.width
    return [table.render_line(y).text[:width] for y in range(n)]


def assert_painted_as_sorted(table: KeyedTable) -> None:
    want = expected_lines(table)
    width = table.scrollable_content_region.width
    got = painted_lines(table, len(want))
    assert [g.rstrip() for g in got] == [w[:width].rstrip() for w in want]


@pytest.mark.parametrize("paused", [False, True], ids=["live", "paused"])
@pytest.mark.parametrize("size", SIZES, ids=["120x40", "80x24"])
@pytest.mark.parametrize("pane", ["sessions", "tools"])
async def test_each_sort_paints_its_mark_and_aligned_rows(ui_store, size, pane, paused):
    app = make_app(ui_store)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press({"sessions": "1", "tools": "2", "models": "3"}[pane])
        if paused:
            await pilot.press("p")
        table = app.main.table(pane)
        assert app.focused is table
        assert_painted_as_sorted(table)
        for _ in range(len(table.sortable) + 1):
            await pilot.press("s")
            await pilot.pause()
            assert_painted_as_sorted(table)
            await pilot.press("r")
            await pilot.pause()
            assert_painted_as_sorted(table)
            if not paused:
                await settle(pilot)
                assert_painted_as_sorted(table)


async def test_a_sort_that_puts_another_row_under_the_cursor_moves_the_turns_with_it(ui_store):
    """The cursor follows the top: after a sort the first row is another session, and the
    turns pane shows that session's turns."""
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        sessions = app.main.table("sessions")
        before = sessions.cursor_key
        for _ in range(len(sessions.cols)):  # the next column, until another session is first
            await pilot.press("s")
            await settle(pilot)
            after = sessions.keys_in_order()[0]
            if after != before:
                break
        assert after != before and sessions.cursor_key == after
        assert str(app.main.query_one("#turns-pane").border_title).endswith(after[:8])
