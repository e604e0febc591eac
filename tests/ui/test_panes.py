"""The numbers in each pane equal truths computed from the fixtures' JSON."""

from __future__ import annotations

import math

from uihelpers import make_app, settle, shown

from truth import GRPC_FIXTURES, Truth

TRUTH = Truth(*GRPC_FIXTURES)


def _tokens(n: int) -> str:
    """A count as the panes show one: exact below 1000, else 3 significant digits and k/M."""
    if n < 1000:
        return str(n)
    value, suffix = (n / 1000, "k") if n < 999_500 else (n / 1_000_000, "M")
    return f"{value:#.3g}".rstrip(".") + suffix


def _quantile(values: list[float], q: float) -> float:
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def _ms(v: float) -> str:
    assert v < 1000
    return f"{v:.0f}ms"


async def test_sessions_pane_shows_each_sessions_totals(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.main.table("sessions")
        assert set(table.keys_in_order()) == TRUTH.working_sessions()
        for sid in TRUTH.working_sessions():
            results = [e for e in TRUTH.tool_results() if e["session.id"] == sid]
            assert shown(table, sid, "session") == sid[:8]
            spent = f"${TRUTH.cost(sid):.4f}" if TRUTH.api_requests(sid) else "-"
            assert shown(table, sid, "cost") == spent
            assert shown(table, sid, "api") == str(len(TRUTH.api_requests(sid)))
            assert shown(table, sid, "in") == _tokens(TRUTH.tokens("input", sid))
            assert shown(table, sid, "out") == _tokens(TRUTH.tokens("output", sid))
            assert shown(table, sid, "tools") == str(len(results))
            errors = sum(1 for e in results if e["success"] == "false")
            assert shown(table, sid, "errors") == str(errors)
            prompts = {
                e["prompt.id"]
                for e in TRUTH.events
                if e.get("session.id") == sid and e["event.name"] == "user_prompt"
            }
            assert shown(table, sid, "prompts") == str(len(prompts))
            read = TRUTH.tokens("cache_read", sid)
            total = read + TRUTH.tokens("input", sid) + TRUTH.tokens("cache_creation", sid)
            expected = f"{read / total * 100:.0f}%" if total else "-"
            assert shown(table, sid, "cache") == expected
        errors_session = next(iter(Truth("errors.grpc").sessions()))
        assert shown(table, errors_session, "models") == "opus-5-5"
        assert shown(table, errors_session, "errors") == "1"
        assert shown(table, errors_session, "terminal") == "xterm"
        subtitle = str(app.main.query_one("#sessions-pane").border_subtitle)
        assert f"{len(TRUTH.working_sessions())} sessions" in subtitle
        assert f"${TRUTH.cost():.4f}" in subtitle
        assert f"{len(TRUTH.api_requests())} API requests" in subtitle


async def test_sessions_sorted_by_last_activity_and_status(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.main.table("sessions")
        continued = "851b8ffd-2541-408a-9c22-e285d2e26c58"
        basic = next(iter(Truth("basic.grpc").sessions()))
        order = table.keys_in_order()
        assert order.index(continued) < order.index(basic)
        # NOW_NS is 27 s after the continued session's last event and 70 s after basic's.
        assert shown(table, continued, "status") == "● active"
        assert shown(table, basic, "status") == "○ idle"
        assert shown(table, basic, "last") == "1m"


async def test_tools_pane_calls_errors_and_latency(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.main.table("tools")
        calls = TRUTH.tool_calls()
        assert calls == {"Bash": 5, "Read": 1, "Write": 1, "Glob": 2}
        assert set(table.keys_in_order()) == set(calls)
        for tool, n in calls.items():
            results = [e for e in TRUTH.tool_results() if e["tool_name"] == tool]
            durations = [float(e["duration_ms"]) for e in results]
            errors = sum(1 for e in results if e["success"] == "false")
            assert shown(table, tool, "calls") == str(n)
            assert shown(table, tool, "error_pct") == f"{errors / n * 100:.0f}%"
            assert shown(table, tool, "p50_ms") == _ms(_quantile(durations, 0.5))
            assert shown(table, tool, "p95_ms") == _ms(_quantile(durations, 0.95))
            assert shown(table, tool, "p99_ms") == _ms(_quantile(durations, 0.99))
            assert shown(table, tool, "max_ms") == _ms(max(durations))
            assert shown(table, tool, "total_ms") == _ms(sum(durations))
        assert shown(table, "Bash", "error_pct") == "20%"
        # Sorted by total time: Bash first, so the chart shows Bash's five calls.
        assert table.cursor_key == "Bash"
        chart = app.main.query_one("#latency-chart")
        bash = sorted(
            float(e["duration_ms"]) for e in TRUTH.tool_results() if e["tool_name"] == "Bash"
        )
        assert chart.state[0] == "Bash"
        assert sorted(chart.state[1]) == bash


async def test_chart_follows_the_selected_tool(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        table = app.main.table("tools")
        assert table.has_focus
        assert table.select_key("Glob")
        await settle(pilot)
        chart = app.main.query_one("#latency-chart")
        glob = sorted(
            float(e["duration_ms"]) for e in TRUTH.tool_results() if e["tool_name"] == "Glob"
        )
        assert chart.state[0] == "Glob"
        assert sorted(chart.state[1]) == glob
        assert "chart: Glob" in str(app.main.query_one("#tools-pane").border_subtitle)


async def test_models_pane_cost_split(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.main.table("models")
        models = {e["model"] for e in TRUTH.api_requests()}
        assert set(table.keys_in_order()) == models
        total = TRUTH.cost()
        for model in models:
            requests = [e for e in TRUTH.api_requests() if e["model"] == model]
            assert shown(table, model, "requests") == str(len(requests))
            assert shown(table, model, "cost") == f"${TRUTH.cost(model=model):.4f}"
            assert shown(table, model, "share") == f"{TRUTH.cost(model=model) / total * 100:.0f}%"
            for kind, column in (
                ("input", "input_tokens"),
                ("output", "output_tokens"),
                ("cache_read", "cache_read_tokens"),
                ("cache_creation", "cache_creation_tokens"),
            ):
                assert shown(table, model, column) == _tokens(TRUTH.tokens(kind, model=model))
        assert table.keys_in_order()[0] == max(models, key=lambda m: TRUTH.cost(model=m))
        chart = app.main.query_one("#cost-chart")
        assert {name for name, _ in chart.state} == {m.removeprefix("claude-") for m in models}


async def test_turns_pane_follows_the_selected_session(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        sessions = app.main.table("sessions")
        errors_session = next(iter(Truth("errors.grpc").sessions()))
        assert sessions.select_key(errors_session)
        await settle(pilot)
        turns = app.main.table("turns")
        assert turns.row_count == 1
        (key,) = turns.keys_in_order()
        truth = Truth("errors.grpc")
        prompt = next(e for e in truth.events if e["event.name"] == "user_prompt")
        assert key == prompt["prompt.id"]
        assert shown(turns, key, "prompt") == prompt["prompt"]
        assert shown(turns, key, "cost") == f"${truth.cost():.4f}"
        assert shown(turns, key, "api") == str(len(truth.api_requests()))
        assert shown(turns, key, "errors") == "1"
        assert shown(turns, key, "tools") == "Bash\u00d72, Write"
        assert f"session {errors_session[:8]}" in str(
            app.main.query_one("#turns-pane").border_title
        )


async def test_scope_key_limits_tools_and_models_to_the_selected_session(ui_store):
    truth = Truth("errors.grpc")
    (session_id,) = truth.sessions()
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.main.table("sessions").select_key(session_id)
        await pilot.press("a")
        await settle(pilot)
        tools = app.main.table("tools")
        assert {k: shown(tools, k, "calls") for k in tools.keys_in_order()} == {
            tool: str(n) for tool, n in truth.tool_calls().items()
        }
        models = app.main.table("models")
        assert models.keys_in_order() == ["claude-opus-5-5"]
        assert shown(models, "claude-opus-5-5", "share") == "100%"
        assert f"session {session_id[:8]}" in str(app.main.query_one("#tools-pane").border_title)
        await pilot.press("a")
        await settle(pilot)
        assert set(tools.keys_in_order()) == set(TRUTH.tool_calls())


async def test_custom_resource_attributes_get_a_column():
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    from claude_top.core.sources.otlp.decode import decode_protobuf
    from claude_top.core.store.commit import write_rows
    from claude_top.core.store.database import Store
    from truth import grpc_requests

    store = Store.open(":memory:")
    (session_id,) = Truth("basic.grpc").sessions()
    for signal, body in grpc_requests("basic.grpc"):
        if signal == "logs":
            req = ExportLogsServiceRequest.FromString(body)
            for rl in req.resource_logs:
                for key, value in (("workflow_id", "wf-7"), ("stage", "review")):
                    kv = KeyValue(key=key)
                    kv.value.string_value = value
                    rl.resource.attributes.append(kv)
            body = req.SerializeToString()
        write_rows(store, [decode_protobuf(signal, body)])
    app = make_app(store)
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot)
            table = app.main.table("sessions")
            assert "custom" in table.columns
            assert shown(table, session_id, "custom") == "stage=review workflow_id=wf-7"
    finally:
        store.close()


async def test_no_custom_attributes_no_column(ui_store):
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "custom" not in app.main.table("sessions").columns


async def test_a_session_with_only_start_up_events_is_folded_away(ui_store):
    """A session that has sent only start-up events (plugins, settings: a `--continue` sends
    them under a fresh session id) is not a row, nor counted; the pane says it is folded."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from uihelpers import NOW_NS, relabelled_logs

    from claude_top.core.sources.otlp.decode import decode_protobuf
    from claude_top.core.store.commit import write_rows

    start_up = ("plugin_loaded", "managed_settings_resolved")
    shift = None
    for body in relabelled_logs("basic.grpc", "new-session-0000", 0):
        req = ExportLogsServiceRequest.FromString(body)
        for rl in req.resource_logs:
            for sl in rl.scope_logs:
                keep = [
                    r
                    for r in sl.log_records
                    if any(
                        kv.key == "event.name" and kv.value.string_value in start_up
                        for kv in r.attributes
                    )
                ]
                if shift is None and keep:
                    shift = NOW_NS - 5 * 10**9 - keep[0].time_unix_nano
                for r in keep:
                    r.time_unix_nano += shift or 0
                    r.observed_time_unix_nano += shift or 0
                del sl.log_records[:]
                sl.log_records.extend(keep)
        write_rows(ui_store, [decode_protobuf("logs", req.SerializeToString())])
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.main.table("sessions")
        assert "new-session-0000" not in table.rows_by_key
        working = len(TRUTH.working_sessions())
        assert set(table.rows_by_key) == TRUTH.working_sessions()
        subtitle = str(app.main.query_one("#sessions-pane").border_subtitle)
        ghosts = len(TRUTH.sessions()) + 1 - working
        assert subtitle.startswith(f"{working} sessions (+{ghosts} without a prompt yet) ·")
