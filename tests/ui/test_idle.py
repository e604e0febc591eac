"""Idle: the panes query the store only when the result can change; ages and status still tick.

The clock is a list the test moves; each `_tick()` is what the screen's 0.25 s timer runs.
Queries are counted at `Store.cursor()`, which every query of every screen goes through.
"""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from uihelpers import NOW_NS, make_app, relabelled_logs, settle, shown

from claude_top.core.sources.otlp.decode import accept_protobuf, decode_protobuf
from claude_top.core.store.commit import write_rows
from claude_top.core.store.writer import StoreWriter
from claude_top.ui.data import MainData, MainQuery
from truth import GRPC_FIXTURES, Truth

S = 1_000_000_000
CONTINUED = "851b8ffd-2541-408a-9c22-e285d2e26c58"
"""Last telemetry 46.9 s before NOW_NS: active, idle from NOW_NS + 14 s."""
BASIC = next(iter(Truth("basic.grpc").sessions()))
"""Last telemetry 69.4 s before NOW_NS, the oldest session."""
OTHER = "a81f7f10-c25a-48a3-a14c-e3d66aa434bc"
"""First telemetry 64.6 s, last 63.3 s before NOW_NS."""
NEW_SESSION = "0a0a0a0a-1111-4222-8333-444444444444"


def _counted(store) -> list[int]:
    calls = [0]
    cursor = store.cursor

    def counting():
        calls[0] += 1
        return cursor()

    store.cursor = counting
    return calls


async def _write_and_refresh(pilot, main, log_bodies: list[bytes]) -> None:
    """Store log exports as the indexer would, and let the main screen query and repaint."""
    write_rows(main.app.store, [decode_protobuf("logs", body) for body in log_bodies])
    main.request_load()
    await settle(pilot)
    await pilot.pause(0.1)


async def _tick(pilot, screen) -> None:
    screen._tick()
    await settle(pilot)


async def test_window_all_no_new_data_no_query_while_ages_and_status_tick(ui_store):
    now = [NOW_NS]
    app = make_app(ui_store, clock=lambda: now[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = app.main
        sessions, turns = main.table("sessions"), main.table("turns")
        assert sessions.select_key(CONTINUED)
        await settle(pilot)
        first_turn = turns.keys_in_order()[0]
        assert (shown(sessions, CONTINUED, "last"), shown(sessions, CONTINUED, "status")) == (
            "46s",
            "● active",
        )
        assert shown(turns, first_turn, "start") == "47s"
        calls = _counted(ui_store)
        seen: list[tuple[str, str, str]] = []
        for _ in range(20):
            now[0] += S
            await _tick(pilot, main)
            seen.append(
                (
                    shown(sessions, CONTINUED, "last"),
                    shown(sessions, CONTINUED, "status"),
                    shown(turns, first_turn, "start"),
                )
            )
        assert calls[0] == 0
        assert seen[0] == ("47s", "● active", "48s")
        assert seen[12] == ("59s", "● active", "1m")
        assert seen[13] == ("1m", "○ idle", "1m")  # 60 s after its last telemetry
        assert sessions.cursor_data["status"] == "idle"  # what a pane export writes
        assert sessions.cursor_key == CONTINUED


async def test_new_ingest_queries_again(ui_store):
    writer = StoreWriter(ui_store, decode_in_worker=False)
    now = [NOW_NS]
    app = make_app(ui_store, writer=writer, clock=lambda: now[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = app.main
        # the cursors off the first rows: a new top row would move them (and query again)
        await pilot.press("j", "2", "j", "1")
        await settle(pilot)
        assert not main.table("sessions").follow_top and not main.table("tools").follow_top
        await _tick(pilot, main)
        calls = _counted(ui_store)
        for _ in range(5):
            now[0] += S
            await _tick(pilot, main)
        assert calls[0] == 0
        for body in relabelled_logs("basic.grpc", NEW_SESSION, 40):
            writer.submit(accept_protobuf("logs", body)).result(10)
        assert writer.sync(10)
        await _tick(pilot, main)
        # one load for the new rows; a loaded machine may let the 4 Hz timer see the commit and
        # the indexing apart (a load each), never none
        assert 1 <= calls[0] <= 3
        table = main.table("sessions")
        assert NEW_SESSION in table.rows_by_key
        assert shown(table, NEW_SESSION, "cost") == f"${Truth('basic.grpc').cost():.4f}"
        await pilot.press("q")
    assert app.return_code == 0


async def test_window_1h_queries_again_once_its_edge_passes_a_row(ui_store):
    now = [NOW_NS]
    app = make_app(ui_store, window="1h", clock=lambda: now[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = app.main
        table = main.table("sessions")
        assert set(table.rows_by_key) == Truth(*GRPC_FIXTURES).working_sessions()
        calls = _counted(ui_store)

        now[0] = NOW_NS + 100 * S  # past the 30 s edge step, but no row is near the edge
        await _tick(pilot, main)
        assert calls[0] == 0

        now[0] = NOW_NS + 3531 * S  # 1 h after BASIC's last telemetry (-69.4 s), not OTHER's
        await _tick(pilot, main)
        assert calls[0] > 0
        assert BASIC not in table.rows_by_key
        assert OTHER in table.rows_by_key

        # The rest leaves the window from +3536.7 s (OTHER) to +3553.1 s (CONTINUED); the
        # edge moves 30 s after the last query, so they stay until +3561 s and not longer.
        calls[0] = 0
        now[0] = NOW_NS + 3560 * S
        await _tick(pilot, main)
        assert calls[0] == 0
        assert OTHER in table.rows_by_key
        now[0] = NOW_NS + 3561 * S
        await _tick(pilot, main)
        assert calls[0] > 0
        assert table.rows_by_key == {}
        assert main.query_one("#sessions-empty").display


def test_stale_only_when_the_window_edge_can_drop_a_row():
    def data(window: str, first_ns: int | None) -> MainData:
        return MainData(MainQuery(window=window, now_ns=NOW_NS), first_ns=first_ns)

    assert not data("all", None).stale(NOW_NS + 10**6 * S)
    assert data("1h", None).stale(NOW_NS - S)  # the clock went back: rows may re-enter
    assert not data("1h", None).stale(NOW_NS + 10**6 * S)  # empty window: only ingest adds
    old = NOW_NS - 3600 * S  # at the edge already: drops after one 30 s step
    assert not data("1h", old).stale(NOW_NS + 29 * S)
    assert data("1h", old).stale(NOW_NS + 30 * S)
    assert data("15m", NOW_NS - 900 * S).stale(NOW_NS + 7 * S)
    assert data("7d", NOW_NS - 7 * 86400 * S).stale(NOW_NS + 60 * S)
    recent = NOW_NS - 60 * S  # leaves 3540 s from now
    assert not data("1h", recent).stale(NOW_NS + 3540 * S)
    assert data("1h", recent).stale(NOW_NS + 3540 * S + 1)


async def test_session_screen_no_query_while_its_ages_and_status_tick(ui_store):
    now = [NOW_NS]
    app = make_app(ui_store, clock=lambda: now[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.main.table("sessions").select_key(CONTINUED)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        summary = screen.query_one("#session-summary")
        turns = screen.query_one("#session-turns")
        first_turn = turns.keys_in_order()[0]
        assert "● active" in str(summary.render())
        assert "last 46s ago" in str(summary.render())
        calls = _counted(ui_store)
        for _ in range(14):
            now[0] += S
            await _tick(pilot, screen)
        assert calls[0] == 0
        assert "○ idle" in str(summary.render())
        assert "last 1m ago" in str(summary.render())
        assert shown(turns, first_turn, "start") == "1m"


async def test_ages_off_screen_are_drawn_when_scrolled_into_view(ui_store):
    """Every row's data moves with the clock (exports, sorting), but only rows on screen are
    redrawn; the rest get their new ages as they scroll in."""
    for i in range(40):
        sid = f"{i:08x}-1111-4222-8333-444444444444"
        for body in relabelled_logs("basic.grpc", sid, -60 * (i + 1)):
            write_rows(ui_store, [decode_protobuf("logs", body)])
    now = [NOW_NS]
    app = make_app(ui_store, clock=lambda: now[0])
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = app.main
        sessions = main.table("sessions")
        order = sessions.keys_in_order()
        top, bottom = order[0], order[-1]
        assert shown(sessions, bottom, "last") == "41m"  # 40 min + the fixture's 69 s
        before = shown(sessions, top, "last")
        now[0] += 10 * 60 * S
        await _tick(pilot, main)
        assert shown(sessions, top, "last") != before
        assert shown(sessions, bottom, "last") == "41m"  # off screen: not redrawn yet
        assert sessions.rows_in_order()[-1]["now_ns"] == now[0]  # but its data moved
        sessions.scroll_end(animate=False, immediate=True)
        await settle(pilot)
        await pilot.pause(0.1)
        assert shown(sessions, bottom, "last") == "51m"


async def test_new_data_redraws_only_the_rows_it_changed(ui_store):
    """A refresh that changes one session's cells re-renders that row alone; the other rows'
    cached renders stay (DataTable.update_cell would re-render every row on screen)."""
    app = make_app(ui_store, clock=lambda: NOW_NS)  # the clock stands still
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = app.main
        sessions = main.table("sessions")
        assert sessions.row_count == len(Truth(*GRPC_FIXTURES).working_sessions())
        assert (shown(sessions, BASIC, "cost"), shown(sessions, BASIC, "in")) == (
            "$0.0226",
            "3.71k",
        )
        order = sessions.keys_in_order()
        rendered: list[str] = []
        render_row = sessions._render_line_in_row

        def counting(row_key, *args, **kwargs):
            rendered.append(row_key.value)
            return render_row(row_key, *args, **kwargs)

        sessions._render_line_in_row = counting
        again = relabelled_logs("basic.grpc", BASIC, -5)  # the same turn again, 5 s earlier
        await _write_and_refresh(pilot, main, again)
        assert (shown(sessions, BASIC, "cost"), shown(sessions, BASIC, "in")) == (
            "$0.0452",
            "7.42k",
        )
        assert sessions.keys_in_order() == order
        line = sessions.get_row_index(BASIC) + sessions.header_height - round(sessions.scroll_y)
        assert "$0.0452" in sessions.render_line(line).text
        assert set(rendered) == {BASIC}


async def test_a_row_that_moves_up_is_painted_in_its_new_place(ui_store):
    """New data re-sorts the sessions (by last activity): the rows it moved are painted in
    their new places, the row below them (under the cursor, so nothing else moves) stays."""
    app = make_app(ui_store, clock=lambda: NOW_NS)  # the clock stands still
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = app.main
        sessions = main.table("sessions")
        assert sessions.keys_in_order()[1:] == [OTHER, BASIC]
        assert sessions.select_key(BASIC)
        await settle(pilot)
        count = sessions._update_count
        (body,) = relabelled_logs("basic.grpc", OTHER, 60)  # basic's tool results, a minute
        request = ExportLogsServiceRequest.FromString(body)  # later: no column widens
        for scope in request.resource_logs[0].scope_logs:
            kept = [r for r in scope.log_records if r.body.string_value.endswith("tool_result")]
            del scope.log_records[:]
            scope.log_records.extend(kept)
        await _write_and_refresh(pilot, main, [request.SerializeToString()])
        order = sessions.keys_in_order()
        assert order[0] == OTHER and order[2] == BASIC
        assert shown(sessions, OTHER, "tools") == "5"  # 3 + basic's 2
        assert sessions.cursor_key == BASIC and sessions.cursor_row == 2
        assert sessions._update_count == count, "a full redraw: the test proves nothing"
        assert shown(sessions, OTHER, "last") == "9s"
        header = sessions.header_height
        painted = [sessions.render_line(header + i).text for i in range(len(order))]
        assert [line.split()[0] for line in painted] == [key[:8] for key in order]
        assert "$0.0371" in painted[0]
