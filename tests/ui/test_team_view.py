"""The team view: the same panes over a team's ClickHouse (chdb here, with the exporter's DDL);
a source that cannot be read still starts the UI, its panes saying why; `u` groups the
sessions and models panes by person and team; the header shows the relay's state."""

from __future__ import annotations

import asyncio
import csv
import socket

from uihelpers import make_app, settle

import clickhouse_rows as cr
from claude_top.core.queries.clickhouse import ChdbRunner, ClickHouseSource
from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.forward import ForwardConfig, Forwarder, ForwardState
from claude_top.ui.panes.connect import ConnectPane
from truth import GRPC_FIXTURES, Truth, grpc_requests

REQUESTS = [r for name in GRPC_FIXTURES for r in grpc_requests(name)]
TRUTH = Truth(*GRPC_FIXTURES)


def team_source(requests=REQUESTS, layout: str = "current") -> ClickHouseSource:
    session, db = cr.session(), cr.new_database("ui")
    cr.create_tables(session, layout, db)
    cr.load(session, requests, layout, db)
    return ClickHouseSource(ChdbRunner(session, db), f"clickhouse://lead@team/{db}")


def tagged(name: str, team: str) -> list[tuple[str, bytes]]:
    from claude_top.core.sources.otlp.signals import SIGNALS

    out = []
    for signal, body in grpc_requests(name):
        req = SIGNALS[signal].request.FromString(body)
        field = {"logs": "resource_logs", "traces": "resource_spans", "metrics": "resource_metrics"}
        for r in getattr(req, field[signal]):
            r.resource.attributes.add(key="team").value.string_value = team
        out.append((signal, req.SerializeToString()))
    return out


async def test_the_panes_over_clickhouse_show_the_truth_and_export_the_same(tmp_path):
    source = team_source()
    app = make_app(None, source=source, export_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = app.main
        assert not main.empty
        assert set(main.table("sessions").keys_in_order()) == TRUTH.working_sessions()
        models = main.table("models").keys_in_order()
        assert set(models) == {e["model"] for e in TRUTH.api_requests()}
        assert set(main.table("tools").keys_in_order()) == set(TRUTH.tool_calls())
        header = str(main.query_one("#header").render())
        assert f"team view {source.label}" in header
        assert "not listening" not in header
        assert (
            f"{len(TRUTH.api_requests())} API requests"
            in main.query_one("#sessions-pane").border_subtitle
        )
        await pilot.press("e")
        for _ in range(100):
            await pilot.pause(0.05)
            if list(tmp_path.glob("claude-top-export-*/snapshot.json")):
                break
        await settle(pilot)
    (folder,) = tmp_path.glob("claude-top-export-*")
    with open(folder / "events.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(TRUTH.events)
    with open(folder / "models.csv", newline="") as fh:
        cost = {r["model"]: float(r["cost_usd"]) for r in csv.DictReader(fh)}
    assert cost == {m: TRUTH.cost(model=m) for m in cost}


async def test_a_source_that_cannot_be_read_starts_with_panes_saying_why():
    session, db = cr.session(), cr.new_database("ui_empty")
    session.query(f"CREATE DATABASE {db}")
    source = ClickHouseSource(ChdbRunner(session, db), f"clickhouse://lead@team/{db}")
    app = make_app(None, source=source)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.main.empty
        pane = app.main.query_one(ConnectPane)
        lead = str(pane.query_one("#connect-lead").render())
        assert f"no table otel_logs in '{db}'" in lead
        assert "Team view" in str(pane.query_one("#connect-title").render())
        assert not app.main.check_action("copy_env", ())  # no settings to copy


async def test_u_groups_sessions_and_models_by_team_then_ungroups():
    requests = tagged("basic.grpc", "red") + tagged("errors.grpc", "blue")
    requests += tagged("continued.grpc", "red")
    source = team_source(requests)
    app = make_app(None, source=source)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        sessions = app.main.table("sessions")
        await pilot.press("u")
        for _ in range(50):
            await pilot.pause(0.05)
            if app.main.group:
                break
        await settle(pilot)
        assert app.main.group == "team"
        assert sorted(sessions.keys_in_order()) == ["blue", "red"]
        red = sessions.rows_by_key["red"]
        assert red["cost_usd"] == TRUTH.cost() - Truth("errors.grpc").cost()
        assert "by team" in app.main.query_one("#sessions-pane").border_title
        # a group row is not a session: the turns pane says how to see one's turns
        assert app.main.query_one("#turns-pane").border_title == "4 Turns"
        note = app.main.query_one("#turns-empty")
        assert note.display
        assert str(note.render()) == ("Grouped by team: u until ungrouped shows a session's turns.")
        models = app.main.table("models").keys_in_order()
        assert {m.split(" · ")[0] for m in models} == {"red", "blue"}
        await pilot.press("u")
        for _ in range(50):
            await pilot.pause(0.05)
            if app.main.group is None:
                break
        await settle(pilot)
        assert set(sessions.keys_in_order()) == TRUTH.working_sessions()
        assert app.main.query_one("#turns-pane").border_title.startswith("4 Turns · session ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_header_shows_the_relay_failing_then_up_to_date(ui_store):
    from claude_top.receiver.server import ReceiverConfig, Receivers

    port = _free_port()
    store = Store.open(":memory:")
    writer = StoreWriter(store, decode_in_worker=False, journal_hold=0)
    relay = Forwarder(
        writer.journal,
        ForwardConfig.parse(f"http://127.0.0.1:{port}"),
        ForwardState.load(store),
        backoff_s=(0.05, 0.1),
    )
    relay.start()
    from claude_top.core.sources.otlp.decode import accept_protobuf

    for signal, body in REQUESTS[:3]:
        await asyncio.wrap_future(writer.submit(accept_protobuf(signal, body)))
    app = make_app(ui_store, relay=relay)
    up_store = Store.open(":memory:")
    up_writer = StoreWriter(up_store, decode_in_worker=False)
    rx = Receivers(up_writer, ReceiverConfig(grpc_port=port, http_port=0))
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot)
            for _ in range(100):
                await pilot.pause(0.05)
                if relay.status().state == "failing":
                    break
            app.main.update_header()
            await pilot.pause()
            header = str(app.main.query_one("#header").render())
            assert "relay ✗ lag 3" in header
            assert "UNAVAILABLE" in header
            await rx.start()
            for _ in range(200):
                await pilot.pause(0.05)
                if relay.status().lag_exports == 0:
                    break
            app.main.update_header()
            await pilot.pause()
            assert "relay ✓" in str(app.main.query_one("#header").render())
    finally:
        relay.close()
        await rx.stop()
        up_writer.close()
        writer.close()
        store.close()
        up_store.close()


async def test_a_narrow_header_still_says_it_is_the_team_view(tmp_path):
    source = team_source()
    app = make_app(None, source=source)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        header = app.main.query_one("#header")
        assert f"team view {source.label}" in str(header.render())
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        line = str(header.render())
        assert "team view" in line and source.label not in line
        assert "window all" in line


async def test_history_limits_and_a_tools_calls_in_the_team_view():
    """`h` sums the team's requests per day, `l` says why plan limits are not there, Enter on
    a tool lists its calls: nothing fails and nothing shows empty for want of a query."""
    from claude_top.ui.screens.detail import DetailScreen
    from claude_top.ui.screens.history import HistoryScreen
    from claude_top.ui.screens.limits import NOT_IN_TEAM_VIEW, LimitsScreen

    app = make_app(None, source=team_source())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen)
        h = app.screen.data.history
        assert sum(h.requests) == len(TRUTH.api_requests())
        assert abs(h.total - TRUTH.cost()) < 1e-9
        assert sum(p["requests"] for p in app.screen.data.projects) == len(TRUTH.api_requests())
        await pilot.press("escape", "l")
        await settle(pilot)
        assert isinstance(app.screen, LimitsScreen)
        view = app.screen.query_one("#limits-view")
        assert [t.plain for t in view.body(None, app.clock()).renderables] == [NOT_IN_TEAM_VIEW]
        assert app.limits_monitor.state is None and app.limits_monitor.error is None
        assert not app.screen.query_one("#gauges-pane").display
        await pilot.press("escape")
        await settle(pilot)
        tools = app.main.table("tools")
        tools.focus()
        await settle(pilot)
        tool = tools.cursor_key
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert len(app.screen.table.rows_by_key) == TRUTH.tool_calls()[tool]
        assert not [n.message for n in app._notifications if n.severity == "error"]
