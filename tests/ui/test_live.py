"""The running app with real receivers: exports stream in, the selection stays put; clean exits."""

from __future__ import annotations

import argparse
import socket

import grpc
import pytest
from uihelpers import make_app, relabelled_logs, settle, shown

from claude_top.commands.ui import run_app
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from claude_top.core.store.writer import Backpressure, StoreWriter
from claude_top.receiver.server import ReceiverConfig, Receivers
from claude_top.ui.panes.header import HeaderBar
from truth import Truth

LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
NEW_SESSION = "0a0a0a0a-1111-4222-8333-444444444444"


def _live_app(store: Store, **config):
    writer = StoreWriter(store, decode_in_worker=False)
    rx = Receivers(writer, ReceiverConfig(grpc_port=0, http_port=0, **config))
    return make_app(store, writer=writer, receivers=rx), writer, rx


async def _wait_for(pilot, condition, what: str) -> None:
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never saw {what}")


async def test_streamed_exports_keep_the_selection(ui_store):
    errors_session = next(iter(Truth("errors.grpc").sessions()))
    basic = Truth("basic.grpc")
    app, _writer, rx = _live_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.main.table("sessions")
        table.clear = lambda *a, **k: pytest.fail("the sessions table was cleared")
        assert table.select_key(errors_session)
        await settle(pilot)
        before = table.cursor_row
        scroll = table.scroll_y
        assert NEW_SESSION not in table.rows_by_key

        async with grpc.aio.insecure_channel(f"127.0.0.1:{rx.grpc_port}") as channel:
            export = channel.unary_unary(LOGS_EXPORT)
            for body in relabelled_logs("basic.grpc", NEW_SESSION, 40):
                assert await export(body, timeout=10) == b""
            await _wait_for(pilot, lambda: NEW_SESSION in table.rows_by_key, "the new session")
            await settle(pilot)
            # The new session is the most recent, so it lands on top; the cursor moves with
            # the selected session instead of staying on its old row index.
            assert table.keys_in_order()[0] == NEW_SESSION
            assert table.cursor_key == errors_session
            assert table.cursor_row == before + 1 == table.get_row_index(errors_session)
            assert table.scroll_y == scroll
            assert shown(table, NEW_SESSION, "cost") == f"${basic.cost():.4f}"
            assert app.main.table("turns").keys_in_order() == [
                e["prompt.id"]
                for e in Truth("errors.grpc").events
                if e["event.name"] == "user_prompt"
            ]

            # A second run's events for the selected session itself: its row updates in place.
            api = len(Truth("errors.grpc").api_requests())
            for body in relabelled_logs("errors.grpc", errors_session, 60):
                assert await export(body, timeout=10) == b""
            await _wait_for(
                pilot, lambda: shown(table, errors_session, "api") == str(2 * api), "the update"
            )
            await settle(pilot)
            assert table.cursor_key == errors_session
            assert table.keys_in_order()[0] == errors_session
            assert table.cursor_row == 0
        await pilot.press("q")
    assert app.return_code == 0


async def test_quit_stops_receivers_and_flushes(ui_store):
    app, writer, rx = _live_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        port = rx.grpc_port
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for body in relabelled_logs("basic.grpc", NEW_SESSION, 40):
                assert await channel.unary_unary(LOGS_EXPORT)(body, timeout=10) == b""
        await pilot.press("q")
    assert app.return_code == 0
    with pytest.raises(Backpressure):
        writer.submit(type("E", (), {"count": 1, "body": b"x"})())
    cur = ui_store.cursor()
    (n,) = cur.execute("SELECT count(*) FROM events WHERE session_id = ?", [NEW_SESSION]).fetchone()
    assert n == len(Truth("basic.grpc").events)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


async def test_port_in_use_exits_with_the_message(ui_store):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        writer = StoreWriter(ui_store, decode_in_worker=False)
        rx = Receivers(writer, ReceiverConfig(grpc_port=port, http_port=0))
        app = make_app(ui_store, writer=writer, receivers=rx)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
        writer.close()
    assert app.return_code == 2
    assert f"port {port}" in app.startup_error
    assert "already in use" in app.startup_error


def test_run_app_rejects_a_file_that_is_not_a_database(tmp_path, capsys):
    bad = tmp_path / "notes.duckdb"
    bad.write_text("not a database\n")
    args = argparse.Namespace(
        db=str(bad), grpc_port=0, http_port=0, bind="127.0.0.1", max_body=1 << 20
    )
    assert run_app(args, str(bad)) == 2
    err = capsys.readouterr().err
    assert err.startswith("claude-top: ")
    assert str(bad) in err
    assert len(err.strip().splitlines()) == 1


async def test_scrolled_view_stays_put_when_sessions_arrive_above():
    from claude_top.core.sources.otlp.decode import decode_protobuf

    store = Store.open(":memory:")

    def add_session(i: int) -> str:
        sid = f"{i:08x}-0000-4000-8000-000000000000"
        for body in relabelled_logs("basic.grpc", sid, 10 * i):
            write_rows(store, [decode_protobuf("logs", body)])
        return sid

    ids = [add_session(i) for i in range(1, 41)]
    app = make_app(store)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            table = app.main.table("sessions")
            assert table.keys_in_order() == ids[::-1]  # most recent first
            await pilot.press("G")
            for _ in range(5):
                await pilot.press("k")
            await pilot.pause()
            selected = table.cursor_key
            assert selected == ids[5]
            scroll = table.scroll_y
            assert scroll > 0
            line = table.cursor_row - scroll
            table.clear = lambda *a, **k: pytest.fail("the sessions table was cleared")

            newest = add_session(100)
            app.main.request_load()
            await settle(pilot)
            assert table.keys_in_order()[0] == newest
            assert table.cursor_key == selected
            assert table.cursor_row == table.get_row_index(selected) == 35
            # The row under the cursor is on the same screen line: nothing on screen moved.
            assert table.scroll_y == scroll + 1
            assert table.cursor_row - table.scroll_y == line
    finally:
        store.close()


async def test_indexing_errors_are_shown_in_the_header_and_told(ui_store):
    app, writer, _rx = _live_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        header = app.main.query_one(HeaderBar)
        assert "not indexed" not in header.render().plain
        with writer._lock:  # as the indexer counts an export it cannot decode
            writer.stats.index_errors += 1
            writer.stats.last_index_error = "export 7: journal record 7 fails its checksum"
        await _wait_for(pilot, lambda: "✗ 1 not indexed" in header.render().plain, "the count")
        await _wait_for(pilot, lambda: len(app._notifications) == 1, "the toast")
        (toast,) = app._notifications
        assert toast.severity == "error"
        assert "export 7: journal record 7 fails its checksum" in toast.message
        assert "ingest_failed" in toast.message
        await pilot.pause(0.6)
        assert len(app._notifications) == 1  # told once, not at every tick
        await pilot.press("q")  # stops the receivers
    assert app.return_code == 0


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
async def test_the_newest_session_stays_in_view_while_the_cursor_follows_the_top(size):
    """Untouched, the cursor stays on the first row as sessions arrive above it (as htop's
    does), so the newest is never above the view; once the user moves it, it keeps its row."""
    from claude_top.core.sources.otlp.decode import decode_protobuf

    store = Store.open(":memory:")

    def add_session(i: int) -> str:
        sid = f"{i:08x}-0000-4000-8000-000000000000"
        for body in relabelled_logs("basic.grpc", sid, 10 * i):
            write_rows(store, [decode_protobuf("logs", body)])
        return sid

    add_session(1)
    app = make_app(store)
    try:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            table = app.main.table("sessions")
            visible = table.scrollable_content_region.height - table.header_height
            for i in range(2, visible + 6):
                newest = add_session(i)
                app.main.request_load()
                await settle(pilot)
                assert table.keys_in_order()[0] == newest
                assert (table.cursor_row, table.cursor_key, table.scroll_y) == (0, newest, 0)
                first = table.render_line(table.header_height).text
                assert first.split()[0] == newest[:8]
            assert str(app.main.query_one("#turns-pane").border_title).endswith(newest[:8])
            await pilot.press("j")
            held = table.cursor_key
            newest = add_session(100)
            app.main.request_load()
            await settle(pilot)
            assert table.keys_in_order()[0] == newest
            assert table.cursor_key == held
            assert table.cursor_row == 2
            await pilot.press("g")
            newest = add_session(101)
            app.main.request_load()
            await settle(pilot)
            assert (table.cursor_row, table.cursor_key) == (0, newest)
    finally:
        store.close()
