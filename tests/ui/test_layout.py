"""Each table shows the columns that fit its width (never a horizontal scroll), cuts text with an
ellipsis, and uses the width when there is room; the header keeps the database path; a tool with
one call gets a sentence, not a histogram filled solid."""

from __future__ import annotations

import pytest
from test_sorting import assert_painted_as_sorted
from uihelpers import make_app, settle

from claude_top.ui.panes.header import HeaderBar
from truth import GRPC_FIXTURES, Truth

TRUTH = Truth(*GRPC_FIXTURES)
CONTINUED = "851b8ffd-2541-408a-9c22-e285d2e26c58"
SIZES = [(200, 50), (120, 40), (80, 24), (60, 24)]
IDS = ["200x50", "120x40", "80x24", "60x24"]


def _no_horizontal_scroll(table) -> None:
    assert table.virtual_size.width <= table.scrollable_content_region.width
    assert not table.show_horizontal_scrollbar


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_every_table_fits_its_width(ui_store, size):
    app = make_app(ui_store)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        main = app.main
        assert main.table("sessions").select_key(CONTINUED)
        await settle(pilot)
        for key, pane in (("1", "sessions"), ("2", "tools"), ("3", "models"), ("4", "turns")):
            await pilot.press(key)
            await settle(pilot)
            table = main.table(pane)
            _no_horizontal_scroll(table)
            assert_painted_as_sorted(table)
            shown = [c.key.value for c in table.ordered_columns]
            assert shown[0] == table._first_col and table.sort_key in shown


async def test_at_80_columns_the_sessions_table_keeps_tools_and_errors(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.main.table("sessions")
        shown = [c.key.value for c in table.ordered_columns]
        assert shown == [
            "session",
            "last",
            "status",
            "cost",
            "models",
            "prompts",
            "api",
            "tools",
            "errors",
        ]
        assert sum(c.get_render_width(table) for c in table.ordered_columns) <= 78


async def test_at_200_columns_every_column_shows_and_nothing_is_padded(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        main = app.main
        sessions = main.table("sessions")
        assert [c.key.value for c in sessions.ordered_columns] == [
            k for k, c in sessions.cols.items() if not c.optional
        ]
        for pane in ("tools", "models"):
            table = main.table(pane)
            columns = sum(c.get_render_width(table) for c in table.ordered_columns)
            assert table.size.width - columns <= table.styles.scrollbar_size_vertical
            chart = main.query_one("#latency-chart" if pane == "tools" else "#cost-chart")
            assert chart.size.width > 100  # the rest of the width goes to the chart


async def test_text_that_does_not_fit_is_cut_with_an_ellipsis(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(44, 24)) as pilot:
        await settle(pilot)
        assert app.main.table("sessions").select_key(next(iter(Truth("basic.grpc").sessions())))
        await pilot.press("4")
        await settle(pilot)
        turns = app.main.table("turns")
        prompt = turns.columns["prompt"]
        (text,) = [
            e["prompt"] for e in Truth("basic.grpc").events if e["event.name"] == "user_prompt"
        ]
        assert prompt.width < len(text)
        header = turns.header_height
        line = turns.render_line(header).text
        assert text[: prompt.width - 1] + "…" in line


@pytest.mark.parametrize("size", [(120, 40), (100, 30)], ids=["120x40", "100x30"])
async def test_the_header_shortens_a_long_database_path_instead_of_hiding_it(ui_store, size):
    path = "/home/someone/projects/observability/claude-code-telemetry/store/claude-top.duckdb"
    app = make_app(ui_store, db_path=path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        line = app.main.query_one(HeaderBar).render().plain
        assert len(line) <= size[0]
        db = line.split(" │ ")[2]  # after the name and "not listening"
        assert db.startswith("db /home/") and db.endswith("…/claude-top.duckdb")


async def test_a_tool_with_one_call_is_a_sentence_not_a_solid_block(ui_store):
    ((tool, _),) = [(t, n) for t, n in TRUTH.tool_calls().items() if t == "Read"]
    (call,) = [e for e in TRUTH.tool_results() if e["tool_name"] == tool]
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.main.table("tools").select_key(tool)
        await settle(pilot)
        chart = app.main.query_one("#latency-chart")
        text = chart.render().plain
        assert "█" not in text
        assert f"its one call took {float(call['duration_ms']):.0f}ms" in text
