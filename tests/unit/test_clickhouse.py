"""The team view's source: the collector's ClickHouse exporter tables, in the real ClickHouse
engine (chdb), created with the exporter's own DDL (`tests/clickhouse/ddl`) and filled with the
captures mapped the way the exporter maps OTLP (`clickhouse_rows.py`). The truths come out of
the ClickHouse source exactly as out of the local DuckDB store: the same CSV files."""

from __future__ import annotations

import csv
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

import clickhouse_rows as cr
from claude_top.core.export import (
    EVENTS_CSV,
    FILES,
    SPANS_CSV,
    export_reader_snapshot,
    export_snapshot,
)
from claude_top.core.queries.clickhouse import ChdbRunner, ClickHouseSource
from claude_top.core.queries.clickhouse.exprs import UNREAD
from claude_top.core.queries.clickhouse.runner import ClickHouseURL
from claude_top.core.queries.clickhouse.tables import statements
from claude_top.core.queries.filters import Filter
from claude_top.core.queries.reader import LocalSource, SourceUnavailable
from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from truth import (
    GRPC_FIXTURES,
    OTHER_AGENT_CAPTURES,
    Truth,
    capture_requests,
    grpc_requests,
    request_docs,
)

REQUESTS = [r for name in GRPC_FIXTURES for r in grpc_requests(name)]
NOW = 1_900_000_000_000_000_000
TRUTH = Truth(*GRPC_FIXTURES)
JSON_COLUMNS = ("attributes", "events", "links")
"""The only cells that may differ as text: the exporter stores every attribute value as a
string, so the local store's typed JSON is compared after the exporter's stringification."""


def clickhouse(
    layout: str = "current", requests=REQUESTS, times: int = 1, typed: bool = False
) -> ClickHouseSource:
    """The exporter's tables holding `requests` (`times` over); with `typed`, claude-top's
    typed tables made halfway (filled from the first half, then by their views)."""
    session, db = cr.session(), cr.new_database()
    cr.create_tables(session, layout, db)
    half = len(requests) // 2 if typed else len(requests)
    for _ in range(times):
        cr.load(session, requests[:half], layout, db)
    if typed:
        made = ClickHouseSource(ChdbRunner(session, db), "chdb")
        for _, sql in statements(made.layout):
            session.query(sql)
        for _ in range(times):
            cr.load(session, requests[half:], layout, db)
    source = ClickHouseSource(ChdbRunner(session, db), f"chdb:{layout}")
    assert (source.layout.events_table is not None) == typed
    return source


@pytest.fixture(scope="module")
def local():
    store = Store.open(":memory:")
    for signal, body in REQUESTS:
        write_rows(store, [decode_protobuf(signal, body)])
    yield LocalSource(store)
    store.close()


@pytest.fixture(scope="module", params=cr.LAYOUTS)
def team(request):
    return clickhouse(request.param)


def read(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def as_exported(attributes: dict) -> dict:
    """Attributes as the exporter stores them: every value a string
    (`pcommon.Value.AsString`), so the local store's typed values are compared that way."""
    return {k: as_string(v) for k, v in attributes.items()}


def as_string(value) -> str:
    if isinstance(value, list | dict):
        return cr._go_json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return cr.go_float(value)
    return value


def attrs_as_exported(text: str, column: str):
    doc = json.loads(text)
    if column == "attributes":
        return as_exported(doc)
    # span events / links: their own attributes are stringified, the rest kept
    return [{**item, "attributes": as_exported(item["attributes"])} for item in doc]


def same_cell(column: str, local: str, team: str) -> bool:
    """Byte for byte, but for the attribute JSON (typed locally, strings in ClickHouse)."""
    if local == team:
        return True
    return (
        column in JSON_COLUMNS
        and bool(local and team)
        and (attrs_as_exported(local, column) == json.loads(team))
    )


def assert_same_files(local_dir: Path, team_dir: Path, files=FILES) -> None:
    for name in files:
        lh, lrows = read(local_dir / f"{name}.csv")
        th, trows = read(team_dir / f"{name}.csv")
        assert th == lh, name
        assert len(trows) == len(lrows), name
        for i, (lr, tr) in enumerate(zip(lrows, trows, strict=True)):
            diff = [(c, a, b) for c, a, b in zip(lh, lr, tr, strict=True) if not same_cell(c, a, b)]
            assert not diff, f"{name}.csv row {i}: {diff}"


def export_both(local, team, tmp_path, **kw) -> tuple[Path, Path]:
    args = {"db_path": "x", "window": None, "window_s": None, "session_id": None, "now_ns": NOW}
    args.update(kw)
    with local.store.reading() as cur:
        export_snapshot(cur, tmp_path / "local", **args)
    with team.reader() as r:
        export_reader_snapshot(r, tmp_path / "team", **args)
    return tmp_path / "local", tmp_path / "team"


# --- the layout ------------------------------------------------------------------------------


def test_the_layout_found_is_said(team):
    text = team.describe()
    layout = team.layout
    assert layout.problem is None
    if layout.logs_sort == "five_minutes":
        assert "otel_logs with EventName, sorted by (toStartOfFiveMinutes(Timestamp)" in text
    elif layout.event_name_column:
        assert "otel_logs with EventName, sorted by (ServiceName, TimestampTime" in text
        assert "otel_traces (ScopeName, Duration UInt64)" in text
        assert "otel_metrics_sum (TimeUnix DateTime64(9))" in text
        assert "otel_metrics_exp_histogram" in text
    else:
        assert "otel_logs without EventName" in text
        assert "otel_traces (scope in SpanAttributes, Duration Int64)" in text
        assert "otel_metrics_sum (TimeUnix DateTime)" in text


def test_what_is_missing_is_said_and_the_reader_refuses_with_it():
    session, db = cr.session(), cr.new_database()
    session.query(f"CREATE DATABASE {db}")
    source = ClickHouseSource(ChdbRunner(session, db), "chdb")
    assert f"no table otel_logs in '{db}'" in source.problem
    assert "tables found: none" in source.problem
    with pytest.raises(SourceUnavailable, match="no table otel_logs"), source.reader():
        pass
    nodb = ClickHouseSource(ChdbRunner(session, "nope"), "chdb")
    assert nodb.problem == "there is no database 'nope' on this server"
    session.query(
        f"CREATE TABLE {db}.otel_logs (Timestamp DateTime64(9), Body String) "
        "ENGINE = MergeTree ORDER BY Timestamp"
    )
    partial = ClickHouseSource(ChdbRunner(session, db), "chdb")
    assert "otel_logs cannot be read" in partial.problem
    assert "lacks TraceId, SpanId" in partial.problem


def test_the_exporters_json_mode_is_named_not_misread():
    session, db = cr.session(), cr.new_database()
    session.query(f"CREATE DATABASE {db}")
    ddl = cr.ddl("current", "logs", db)
    ddl = ddl.replace("LogAttributes Map(LowCardinality(String), String)", "LogAttributes JSON")
    ddl = "\n".join(line for line in ddl.splitlines() if "(LogAttributes)" not in line)
    session.query(ddl)
    source = ClickHouseSource(ChdbRunner(session, db), "chdb")
    assert "otel_logs.LogAttributes is JSON, not a Map" in source.problem
    assert "json mode is not supported" in source.problem


def test_a_url_is_read_and_a_bad_one_refused():
    u = ClickHouseURL.parse("clickhouse://lead:s%40cret@ch.example:9123/otel?logs=team_logs")
    assert (u.host, u.port, u.database, u.user, u.password) == (
        "ch.example",
        9123,
        "otel",
        "lead",
        "s@cret",
    )
    assert dict(u.tables) == {"logs": "team_logs"}
    assert u.label() == "clickhouse://lead@ch.example:9123/otel"  # no password
    assert ClickHouseURL.parse("clickhouses://h/db").port == 8443
    assert ClickHouseURL.parse("clickhouse://h").database == "default"
    for bad, says in [
        ("postgres://h/db", "expected clickhouse://"),
        ("clickhouse:///db", "no host"),
        ("clickhouse://h:x/db", "port is not a number"),
        ("clickhouse://h/a/b", "one database name"),
        ("clickhouse://u:pw@h/db?foo=1", "unknown option 'foo'"),
    ]:
        with pytest.raises(ValueError, match=says) as info:
            ClickHouseURL.parse(bad)
        assert "pw@" not in str(info.value)


def test_an_unreachable_server_is_named_and_the_ui_can_start():
    source = ClickHouseSource.open("clickhouse://127.0.0.1:1/otel")
    assert "cannot connect to 127.0.0.1:1" in source.problem
    assert source.describe().startswith("clickhouse://default@127.0.0.1:1/otel: ")
    with pytest.raises(SourceUnavailable, match="cannot connect"), source.reader():
        pass


class _Refuses(BaseHTTPRequestHandler):
    """Answers every query as a ClickHouse server does a wrong password."""

    def _answer(self):
        body = (
            b"Code: 516. DB::Exception: lead: Authentication failed: password is incorrect, "
            b"or there is no user with such name. (AUTHENTICATION_FAILED)"
        )
        self.send_response(401)
        self.send_header("X-ClickHouse-Exception-Code", "516")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def test_wrong_credentials_are_named():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = ClickHouseSource.open(f"clickhouse://lead:bad@127.0.0.1:{server.server_port}/otel")
        assert "wrong user or password" in source.problem
        assert "bad" not in source.problem
    finally:
        server.shutdown()


# --- the same truths -------------------------------------------------------------------------


def test_the_panes_hold_the_truth(team):
    with team.reader() as r:
        sessions = {s["session_id"]: s for s in r.sessions(Filter(), NOW)}
        models = {m["model"]: m for m in r.models(Filter())}
        tools = {t["tool_name"]: t for t in r.tools(Filter())}
        durations = {t: sorted(r.tool_durations(Filter(), t)) for t in tools}
        overview = r.overview(Filter())
    assert set(sessions) == TRUTH.sessions()
    timed: dict[str, list[float]] = {t: [] for t in tools}
    for e in TRUTH.tool_results():
        if e.get("duration_ms") is not None:
            timed[e["tool_name"]].append(float(e["duration_ms"]))
    assert durations == {t: sorted(v) for t, v in timed.items()}
    assert sum(map(len, durations.values())) > 0
    for sid, s in sessions.items():
        assert s["cost_usd"] == pytest.approx(TRUTH.cost(sid), abs=1e-12)
        assert s["api_requests"] == len(TRUTH.api_requests(sid))
        for kind in ("input", "output", "cache_read", "cache_creation"):
            assert s[f"{kind}_tokens"] == TRUTH.tokens(kind, sid)
    for model, m in models.items():
        assert m["cost_usd"] == pytest.approx(TRUTH.cost(model=model), abs=1e-12)
    assert {k: t["calls"] for k, t in tools.items()} == TRUTH.tool_calls()
    assert overview["api_requests"] == len(TRUTH.api_requests())
    assert overview["events_total"] == len(TRUTH.events)
    assert overview["spans_total"] == len(TRUTH.spans)
    assert overview["sessions"] == len(TRUTH.working_sessions())


@pytest.mark.parametrize(
    "layout,typed", [("current", False), ("five_minutes", False), ("current", True)]
)
def test_the_csv_export_is_the_same_file_as_from_duckdb(local, tmp_path, layout, typed):
    local_dir, team_dir = export_both(local, clickhouse(layout, typed=typed), tmp_path)
    assert_same_files(local_dir, team_dir)
    assert read(team_dir / "spans.csv")[0] == list(SPANS_CSV)
    assert read(team_dir / "events.csv")[0] == list(EVENTS_CSV)
    assert len(read(team_dir / "events.csv")[1]) == len(TRUTH.events)


@pytest.mark.parametrize("typed", [False, True])
def test_rows_the_collector_inserted_twice_count_once(local, tmp_path, typed):
    local_dir, team_dir = export_both(local, clickhouse("current", times=2, typed=typed), tmp_path)
    assert_same_files(local_dir, team_dir)


@pytest.mark.parametrize("typed", [False, True])
def test_a_window_and_a_text_filter_give_the_same_files(local, tmp_path, typed):
    team = clickhouse("current", typed=typed)
    times = sorted(int(d["timeUnixNano"]) for _, d in _records())
    since = times[len(times) // 2]
    window_s = (NOW - since) // 10**9
    for i, kw in enumerate(
        [
            {"window": "mid", "window_s": window_s},
            {"text": "bash"},
            {"text": TRUTH.api_requests()[0]["model"][-6:]},
            {"session_id": sorted(TRUTH.sessions())[0]},
        ]
    ):
        local_dir, team_dir = export_both(local, team, tmp_path / str(i), **kw)
        assert_same_files(local_dir, team_dir)


def _records():
    for _, req in request_docs(GRPC_FIXTURES[0]):
        for rl in req.get("resourceLogs", []):
            for sl in rl["scopeLogs"]:
                for r in sl["logRecords"]:
                    yield rl, r


@pytest.mark.parametrize("typed", [False, True])
def test_turns_and_span_trees_are_the_same(local, typed):
    team = clickhouse("current", typed=typed)
    with local.reader() as lr, team.reader() as tr:
        for sid in TRUTH.sessions():
            lt, tt = lr.turns(sid), tr.turns(sid)
            assert tt == lt
            for turn in lt:
                lroots, lsrc = lr.span_tree(sid, turn["key"])
                troots, tsrc = tr.span_tree(sid, turn["key"])
                assert tsrc == lsrc
                shape = [
                    [(n.kind, n.label, n.is_error, n.duration_ms) for n in root.walk()]
                    for root in lroots
                ]
                assert [
                    [(n.kind, n.label, n.is_error, n.duration_ms) for n in root.walk()]
                    for root in troots
                ] == shape


def test_older_layouts_metric_seconds_and_scope_in_attributes(local):
    """The older exporter keeps metric times in whole seconds: the panes' figures still hold."""
    team = clickhouse("older")
    with local.reader() as lr, team.reader() as tr:
        assert tr.models(Filter()) == lr.models(Filter())
        lt, tt = lr.tools(Filter()), tr.tools(Filter())
        assert [t["tool_name"] for t in tt] == [t["tool_name"] for t in lt]
        ls = {s["session_id"]: s for s in lr.sessions(Filter(), NOW)}
        for s in tr.sessions(Filter(), NOW):
            assert s["cost_usd"] == pytest.approx(ls[s["session_id"]]["cost_usd"], abs=1e-12)
            want = ls[s["session_id"]]["metric_cost_usd"]
            if want is None:
                assert s["metric_cost_usd"] is None
            else:
                assert s["metric_cost_usd"] == pytest.approx(
                    TRUTH.metric_sum("claude_code.cost.usage", **{"session.id": s["session_id"]}),
                    abs=1e-12,
                )
        spans = tr.export_spans(Filter(), None)
        assert len(spans) == len(TRUTH.spans)
        assert all("otel.scope.name" not in json.loads(s["attributes"]) for s in spans)
        assert {s["scope_name"] for s in spans} == {"com.anthropic.claude_code.tracing"}


# --- grouping by person and team -------------------------------------------------------------


def _tagged(name: str, team_name: str, email: str) -> list[tuple[str, bytes]]:
    """A fixture's requests with a `team` resource attribute and a user.email on each event."""
    out = []
    for signal, body in grpc_requests(name):
        from claude_top.core.sources.otlp.signals import SIGNALS

        req = SIGNALS[signal].request.FromString(body)
        resources = getattr(
            req,
            {"logs": "resource_logs", "traces": "resource_spans", "metrics": "resource_metrics"}[
                signal
            ],
        )
        for rl in resources:
            rl.resource.attributes.add(key="team").value.string_value = team_name
        if isinstance(req, ExportLogsServiceRequest):
            for rl in req.resource_logs:
                for sl in rl.scope_logs:
                    for r in sl.log_records:
                        r.attributes.add(key="user.email").value.string_value = email
        out.append((signal, req.SerializeToString()))
    return out


def test_grouping_by_person_and_team_is_the_same_on_both_stores():
    tagged = (
        _tagged("basic.grpc", "red", "ana@example.com")
        + _tagged("errors.grpc", "blue", "bo@example.com")
        + _tagged("continued.grpc", "red", "bo@example.com")
    )
    store = Store.open(":memory:")
    for signal, body in tagged:
        write_rows(store, [decode_protobuf(signal, body)])
    local = LocalSource(store)
    team = clickhouse("current", tagged, typed=True)
    red = Truth("basic.grpc", "continued.grpc")
    bo = Truth("errors.grpc", "continued.grpc")
    for source in (local, team, clickhouse("current", tagged)):
        with source.reader() as r:
            assert r.group_keys(Filter()) == ["user.email", "team"]
            sessions, models = r.grouped(Filter(), "team", NOW)
            by = {s["session_id"]: s for s in sessions}
            assert set(by) == {"red", "blue"}
            assert by["red"]["cost_usd"] == pytest.approx(red.cost(), abs=1e-12)
            assert by["red"]["sessions"] == len(red.working_sessions())
            assert by["blue"]["api_requests"] == len(Truth("errors.grpc").api_requests())
            sessions, models = r.grouped(Filter(), "user.email", NOW)
            by = {s["session_id"]: s for s in sessions}
            assert by["bo@example.com"]["cost_usd"] == pytest.approx(bo.cost(), abs=1e-12)
            cost = {(m["grp"], m["model"]): m["cost_usd"] for m in models}
            assert sum(cost.values()) == pytest.approx(TRUTH.cost(), abs=1e-12)
            for (who, model), c in cost.items():
                t = Truth("basic.grpc") if who == "ana@example.com" else bo
                assert c == pytest.approx(t.cost(model=model), abs=1e-12)
    store.close()


def _cumulative(requests) -> list[tuple[str, bytes]]:
    """The captures with every sum sent as a running total (CUMULATIVE), as an OTel SDK or a
    collector in front would send them."""
    from claude_top.core.sources.otlp.signals import SIGNALS

    totals: dict[tuple, float] = {}
    out = []
    for signal, body in requests:
        req = SIGNALS[signal].request.FromString(body)
        if signal == "metrics":
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.WhichOneof("data") != "sum":
                            continue
                        m.sum.aggregation_temporality = 2
                        for p in m.sum.data_points:
                            key = (m.name, tuple((a.key, str(a.value)) for a in p.attributes))
                            totals[key] = totals.get(key, 0.0) + p.as_double
                            p.as_double = totals[key]
                            p.start_time_unix_nano = 1_795_300_000 * 10**9
        out.append((signal, req.SerializeToString()))
    return out


def test_cumulative_sums_become_the_same_increments():
    requests = _cumulative(REQUESTS)
    store = Store.open(":memory:")
    for signal, body in requests:
        write_rows(store, [decode_protobuf(signal, body)])
    local = LocalSource(store)
    for team in (clickhouse("current", requests), clickhouse("current", requests, typed=True)):
        with local.reader() as lr, team.reader() as tr:
            want = {s["session_id"]: s["metric_cost_usd"] for s in lr.sessions(Filter(), NOW)}
            got = {s["session_id"]: s["metric_cost_usd"] for s in tr.sessions(Filter(), NOW)}
        assert got == pytest.approx(want)
        for sid, cost in want.items():
            if cost is not None:
                assert cost == pytest.approx(
                    TRUTH.metric_sum("claude_code.cost.usage", **{"session.id": sid})
                )
    store.close()


@pytest.mark.parametrize("agent", sorted(OTHER_AGENT_CAPTURES))
def test_other_agents_are_named_and_said_to_be_unread(tmp_path, agent):
    """Gemini CLI's and Codex CLI's records in a team's ClickHouse: their names, agent and
    sessions as the local store finds them, every record counted as not read (their requests,
    costs and tools are not mapped in the team view yet), and no session listed as one that
    did no work."""
    requests = capture_requests(OTHER_AGENT_CAPTURES[agent])
    store = Store.open(":memory:")
    for signal, body in requests:
        write_rows(store, [decode_protobuf(signal, body)])
    local = LocalSource(store)
    team = clickhouse("current", requests, typed=True)
    local_dir, team_dir = export_both(local, team, tmp_path)
    lh, lrows = read(local_dir / "events.csv")
    th, trows = read(team_dir / "events.csv")
    col = {c: i for i, c in enumerate(th)}
    keys = ("time_ns", "name", "agent", "session_id")  # records at one time come in any order
    assert sorted(tuple(r[col[c]] for c in keys) for r in trows) == sorted(
        tuple(r[lh.index(c)] for c in keys) for r in lrows
    )
    assert {r[col["agent"]] for r in trows} == {agent}
    assert {r[col["not_understood"]] for r in trows} == {UNREAD}
    with team.reader() as r:
        overview = r.overview(Filter())
        sessions = r.sessions(Filter(), NOW)
    spans = len(read(team_dir / "spans.csv")[1])
    assert overview["not_understood"] == len(trows) + spans > 0
    assert overview["agents"] == [agent]
    assert overview["sessions"] == overview["api_requests"] == 0
    assert sessions == []


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return a == b


def _same_rows(team: list[dict], local: list[dict]) -> None:
    assert len(team) == len(local)
    for t, lo in zip(team, local, strict=True):
        t, lo = (
            {k: v for k, v in t.items() if k != "key"},
            {k: v for k, v in lo.items() if k != "key"},
        )
        assert t.keys() == lo.keys()
        assert all(_close(t[k], lo[k]) for k in t), (t, lo)


def test_a_typed_table_made_before_it_kept_the_input_is_named_and_read_around(local, monkeypatch):
    """claude_top_events as an earlier claude-top made it (no `input`): the source says so and
    a tool's calls, input included, come from the Maps."""
    from claude_top.core.queries.clickhouse import tables

    monkeypatch.setattr(tables, "_EVENTS_SKIP", (*tables._EVENTS_SKIP, "input"))
    team = clickhouse("current", typed=True)
    assert not team.layout.events_table.has("input")
    assert (
        "claude_top_events lacks input (made by an earlier claude-top): a tool's calls are read "
        "from the Maps, slower (claude-top team-tables --rebuild makes it again)"
    ) in team.describe()
    with local.reader() as lr, team.reader() as tr:
        for tool, calls in TRUTH.tool_calls().items():
            got = tr.tool_calls(Filter(), tool)
            _same_rows(got, lr.tool_calls(Filter(), tool))
            assert len(got) == calls and all(r["input"] for r in got)


@pytest.mark.parametrize(("typed", "times"), [(False, 1), (True, 1), (True, 2)])
def test_a_tools_calls_a_models_requests_and_the_cost_history_are_the_same(local, typed, times):
    """Enter on a tool or a model, and `h`, read the same rows from both stores (the rows
    inserted once, or twice as a collector's retries do)."""
    team = clickhouse("current", typed=typed, times=times)
    with local.reader() as lr, team.reader() as tr:
        now = max(s["last_seen_ns"] for s in lr.sessions(Filter(), NOW)) + 60 * 10**9
        for f in (Filter(), Filter.for_window(600, now), Filter(text="bash")):
            for tool in TRUTH.tool_calls():
                calls = lr.tool_calls(f, tool)
                _same_rows(tr.tool_calls(f, tool), calls)
                if f.since_ns is None and f.needle is None:
                    assert len(calls) == TRUTH.tool_calls()[tool]
            for model in {e["model"] for e in TRUTH.api_requests()}:
                requests = lr.model_requests(f, model)
                _same_rows(tr.model_requests(f, model), requests)
            assert len({r["key"] for r in tr.model_requests(f, model)}) == len(requests)
        for period, count in (("day", 30), ("week", 13), ("month", 12)):
            lh, th = lr.cost_history(period, count, now), tr.cost_history(period, count, now)
            assert (th.labels, th.starts, th.models) == (lh.labels, lh.starts, lh.models)
            assert (th.requests, th.tokens) == (lh.requests, lh.tokens)
            assert sum(th.requests) == len(TRUTH.api_requests())
            for m in lh.models:
                assert all(_close(a, b) for a, b in zip(th.cost[m], lh.cost[m], strict=True))
            since = lh.starts[0] * 10**9
            _same_rows(tr.top_projects(since, now, 20), lr.top_projects(since, now, 20))
