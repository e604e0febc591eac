"""A table's render caches stay sized to the table while the cursor walks many rows."""

from __future__ import annotations

from textual.app import App, ComposeResult

from claude_top.ui.panes.table import CACHED_SCREENS, Col, KeyedTable

ROWS = 400


class _OneTable(App):
    def compose(self) -> ComposeResult:
        cols = [Col("n", "N", lambda r: str(r["n"]), sort=lambda r: r["n"], descending=False)]
        cols += [Col(f"c{i}", f"C{i}", lambda r, i=i: f"{r['n'] * i}") for i in range(5)]
        yield KeyedTable(cols, lambda r: str(r["n"]), "n", id="t")


async def _walk(pilot, table: KeyedTable, rows: range) -> None:
    """Put the cursor on each of `rows` in turn, the table painted at each."""
    for row in rows:
        table.move_cursor(row=row)
        await pilot.pause()
    assert table.cursor_row == rows[-1]


def _sizes(table: KeyedTable) -> dict[str, int]:
    names = ("_cell_render_cache", "_row_render_cache", "_row_renderable_cache", "_line_cache")
    return {name: len(getattr(table, name)) for name in names}


async def test_the_render_caches_hold_three_screens_of_the_table_not_a_thousand_rows():
    app = _OneTable()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_rows({"n": n} for n in range(ROWS))
        await _walk(pilot, table, range(0, ROWS, 8))
        await _walk(pilot, table, range(ROWS - 1, ROWS // 2, -8))
        rows = CACHED_SCREENS * 24  # the table is shorter than 24 lines: the floor applies
        assert _sizes(table) == {
            "_cell_render_cache": rows * 6,
            "_row_render_cache": rows,
            "_row_renderable_cache": rows,
            "_line_cache": rows,
        }

        await pilot.resize_terminal(100, 60)
        await pilot.pause()
        taller = CACHED_SCREENS * table.size.height
        assert taller > rows
        assert table._line_cache.maxsize == taller
        assert table._cell_render_cache.maxsize == taller * 6
        await _walk(pilot, table, range(0, ROWS, 8))
        assert max(_sizes(table).values()) <= taller * 6
        assert len(table._line_cache) == taller
