"""Keys: window, filter, pause, help, panes, sort; the command palette offers the same actions."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual.binding import Binding
from textual.widgets import Tabs
from uihelpers import NOW_NS, make_app, settle, shown

from claude_top.core.store import rollup
from claude_top.ui.app import ClaudeTopApp
from claude_top.ui.panes.table import KeyedTable
from claude_top.ui.screens.help import HelpScreen, _sections, help_table
from claude_top.ui.screens.main import MainScreen
from truth import GRPC_FIXTURES, Truth

TRUTH = Truth(*GRPC_FIXTURES)


def _all_bindings(app) -> list[Binding]:
    return [b for _, bindings in _sections(app) for b in bindings if isinstance(b, Binding)]


async def test_every_binding_has_an_id_and_none_is_ctrl_b(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(80, 24)):
        bindings = _all_bindings(app)
        assert len(bindings) > 20
        assert all(b.id for b in bindings)
        assert len({b.id for b in bindings}) == len(bindings)
        keys = {k for b in bindings for k in b.key.split(",")}
        assert "ctrl+b" not in keys
        assert "ctrl+b" not in {k for k, _ in app._bindings.key_to_bindings.items()}


async def test_window_cycles_and_filters_by_time(ui_store):
    app = make_app(ui_store, window="7d")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        sessions = app.main.table("sessions")
        assert sessions.row_count == len(TRUTH.working_sessions())
        await pilot.press("t")  # 7d -> all
        await settle(pilot)
        assert app.window == "all"
        await pilot.press("t")  # all -> 15m: the fixtures are 47 s to 70 s old at NOW_NS
        await settle(pilot)
        assert app.window == "15m"
        assert sessions.row_count == len(TRUTH.working_sessions())
        assert "window 15m" in str(app.main.query_one("#header").render())
        app.clock = lambda: NOW_NS + 3600 * 1_000_000_000
        await pilot.press("t")  # 15m -> 1h, an hour later: nothing left in the window
        await settle(pilot)
        assert app.window == "1h"
        assert sessions.row_count == 0
        note = app.main.query_one("#sessions-empty")
        assert note.display
        assert "No sessions in the last 1h" in str(note.render())


async def test_filter_narrows_every_pane_and_esc_clears(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "o", "p", "u", "s")
        await settle(pilot)
        assert app.filter_text == "opus"
        models = app.main.table("models")
        assert models.keys_in_order() == ["claude-opus-5-5"]
        (opus_session,) = Truth("errors.grpc").sessions()
        assert app.main.table("sessions").keys_in_order() == [opus_session]
        await pilot.press("enter")
        assert isinstance(app.focused, KeyedTable)
        assert app.main.has_class("-filtering")
        await pilot.press("slash", "escape")
        await settle(pilot)
        assert app.filter_text == ""
        assert not app.main.has_class("-filtering")
        assert models.row_count == len({e["model"] for e in TRUTH.api_requests()})


async def test_pause_freezes_the_tables(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        assert app.paused
        assert "PAUSED" in str(app.main.query_one("#header").render())
        sessions = app.main.table("sessions")
        before = sessions.row_count
        (gone,) = Truth("errors.grpc").sessions()
        cur = ui_store.cursor()
        for table in ("events", "spans", "metric_points"):
            cur.execute(f"DELETE FROM {table} WHERE session_id = ?", [gone])
        rollup.build(cur)
        for _ in range(10):
            await pilot.pause(0.15)
        await settle(pilot)
        assert sessions.row_count == before
        await pilot.press("p")
        assert not app.paused
        await settle(pilot)
        assert sessions.row_count == before - 1
        assert gone not in sessions.rows_by_key


async def test_help_lists_every_key(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        console = Console(width=100, record=True, file=io.StringIO())
        console.print(help_table(app))
        text = console.export_text()
        for binding in _all_bindings(app):
            assert binding.description in text
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_pane_keys_wide_and_tabbed(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = app.main
        assert main.has_class("-wide")
        assert app.focused.id == "sessions"
        await pilot.press("3")
        assert app.focused.id == "models"
        await pilot.press("tab")
        assert app.focused.id == "turns"
        await pilot.press("tab")
        assert app.focused.id == "sessions"
        await pilot.press("shift+tab")
        assert app.focused.id == "turns"
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert main.has_class("-tabbed")
        assert app.focused.id == "turns"
        await pilot.press("2")
        await pilot.pause()
        assert app.focused.id == "tools"
        assert main.query_one("#pane-tabs", Tabs).active == "tab-tools"
        assert main.query_one("#tools-pane").display
        assert not main.query_one("#sessions-pane").display
        await pilot.press("tab")
        await pilot.pause()
        assert main.query_one("#pane-tabs", Tabs).active == "tab-models"


async def test_sort_cycles_and_reverses_keeping_the_cursor(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.main.table("sessions")
        (errors_session,) = Truth("errors.grpc").sessions()
        table.select_key(errors_session)
        order = ["last", "status", "cost"]
        assert table.sort_key == order[0]
        await pilot.press("s", "s")
        assert table.sort_key == "cost"
        by_cost = sorted(TRUTH.working_sessions(), key=lambda s: (TRUTH.cost(s), s), reverse=True)
        assert table.keys_in_order() == by_cost
        assert [r["session_id"] for r in table.rows_in_order()] == by_cost
        assert table.cursor_key == errors_session
        assert "Cost ▼" in table.columns["cost"].label.plain
        await pilot.press("r")
        assert table.keys_in_order() == by_cost[::-1]
        assert "Cost ▲" in table.columns["cost"].label.plain
        assert table.cursor_key == errors_session
        assert shown(table, errors_session, "cost") == f"${TRUTH.cost(errors_session):.4f}"


async def test_command_palette_offers_the_actions(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = {c.title: c for c in app.get_system_commands(app.screen)}
        for title in (
            "Time window: next",
            "Filter rows",
            "Pause / resume refresh",
            "Help: every key",
            "Sort by the next column",
            "Reverse the sort",
            "Go to pane 2: Tools",
            "Quit",
        ):
            assert title in titles
        titles["Go to pane 2: Tools"].callback()
        await pilot.pause()
        assert app.focused.id == "tools"
        titles["Pause / resume refresh"].callback()
        assert app.paused
        titles["Time window: next"].callback()
        assert app.window == "15m"


async def test_connect_view_until_data_arrives(tmp_path):
    from claude_top.core.store.database import Store

    store = Store.open(":memory:")
    app = ClaudeTopApp(store, window="all")
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            main = app.main
            assert main.empty
            connect = main.query_one("#connect")
            assert connect.display
            assert not main.query_one("#panes").display
            text = str(main.query_one("#connect-shell").render())
            assert "export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317" in text
            assert "export CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1" in text
            assert '"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"' in str(
                main.query_one("#connect-json").render()
            )
    finally:
        store.close()


async def test_text_typed_right_after_slash_lands_in_the_filter(ui_store):
    from textual import events

    app = make_app(ui_store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # All at once, as a fast typist or `tmux send-keys` delivers them.
        for key, char in (("slash", "/"), ("o", "o"), ("p", "p"), ("u", "u"), ("s", "s")):
            app.post_message(events.Key(key, char))
        await settle(pilot)
        assert app.filter_text == "opus"
        assert not app.paused
        assert app.main.table("sessions").sort_key == "last"


async def test_slash_is_plain_text_in_the_command_palette(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press("a", "slash", "b")
        await pilot.pause()
        assert app.screen.query_one("Input").value == "a/b"
        assert app.filter_text == ""


async def _filter_opus(pilot) -> None:
    await settle(pilot)
    await pilot.press("slash", "o", "p", "u", "s", "enter")
    await settle(pilot)
    assert isinstance(pilot.app.focused, KeyedTable)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
async def test_esc_clears_a_filter_kept_with_enter(ui_store, size):
    (opus_session,) = Truth("errors.grpc").sessions()
    app = make_app(ui_store)
    async with app.run_test(size=size) as pilot:
        await _filter_opus(pilot)
        main = app.main
        assert main.table("sessions").keys_in_order() == [opus_session]
        await pilot.press("escape")
        await settle(pilot)
        assert app.filter_text == ""
        assert main.query_one("#filter").value == ""
        assert not main.has_class("-filtering")
        assert set(main.table("sessions").keys_in_order()) == TRUTH.working_sessions()


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
async def test_pane_titles_and_totals_follow_the_filter(ui_store, size):
    (opus_session,) = Truth("errors.grpc").sessions()
    app = make_app(ui_store)
    async with app.run_test(size=size) as pilot:
        await _filter_opus(pilot)
        main = app.main
        subtitle = str(main.query_one("#sessions-pane").border_subtitle)
        assert subtitle.startswith(
            f"1 matching session · ${TRUTH.cost(opus_session):.4f} · "
            f"{len(TRUTH.api_requests(opus_session))} API requests · "
        )
        for pane in ("sessions", "tools", "models"):
            assert 'filter "opus"' in str(main.query_one(f"#{pane}-pane").border_title)
        await pilot.press("slash", *["backspace"] * 4, "enter")
        await settle(pilot)
        subtitle = str(main.query_one("#sessions-pane").border_subtitle)
        folded = len(TRUTH.sessions()) - len(TRUTH.working_sessions())
        assert subtitle.startswith(
            f"{len(TRUTH.working_sessions())} sessions (+{folded} without a prompt yet) · "
            f"${TRUTH.cost():.4f} · "
            f"{len(TRUTH.api_requests())} API requests · "
        )
        assert str(main.query_one("#tools-pane").border_title) == "2 Tools · all sessions"


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
async def test_help_lists_each_key_once_says_there_is_more_and_explains_the_columns(ui_store, size):
    from claude_top.ui.panes import calls, models, sessions, tools, turns
    from claude_top.ui.screens.help import help_rows

    app = make_app(ui_store)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        rows = help_rows(app)
        pairs = [(key, what.split(":")[0]) for _, key, what in rows]
        assert len(pairs) == len(set(pairs)), sorted(p for p in pairs if pairs.count(p) > 1)
        for section in {s for s, _, _ in rows}:
            keys = [k for s, k, _ in rows if s == section]
            assert len(keys) == len(set(keys)), (section, keys)
        opens = [what for _, key, what in rows if what.startswith("Open")]
        assert len(opens) == 1
        body = app.screen.query_one("#help-body")
        assert body.max_scroll_y > 0
        assert str(body.border_subtitle).startswith("↓ more below")
        await pilot.press("G")
        await pilot.pause()
        assert str(body.border_subtitle) == "Esc / q / ? closes"
        console = Console(width=size[0], record=True, file=io.StringIO())
        console.print(help_table(app))
        text = console.export_text()
        for cols in (sessions.COLUMNS, tools.COLUMNS, models.COLUMNS, turns.COLUMNS):
            for col in cols:
                assert col.help, col.key
                assert " ".join(col.help.split()[:4]) in " ".join(text.split())
        assert calls.CALL_COLUMNS[0].help in " ".join(text.split())
