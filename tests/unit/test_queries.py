"""core.queries against the real fixtures: every number is checked against the captured JSON."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest

from claude_top.core import queries as Q
from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.store import rollup
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from truth import GRPC_FIXTURES, Truth, grpc_requests, request_docs

ERRORS_SESSION = "a81f7f10-c25a-48a3-a14c-e3d66aa434bc"
CONTINUED_SESSION = "851b8ffd-2541-408a-9c22-e285d2e26c58"
BASIC_SESSION = "f342a5f2-dc13-4b24-b0cc-e5cd8ea7d070"
TOKEN_KINDS = ("input", "output", "cache_read", "cache_creation")


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth(*GRPC_FIXTURES)


@pytest.fixture
def cur(fixture_store):
    return fixture_store.cursor()


def store_of(signals: set[str], names=GRPC_FIXTURES) -> Store:
    """An in-memory store holding only some signals of the fixtures."""
    store = Store.open(":memory:")
    for name in names:
        for signal, body in grpc_requests(name):
            if signal in signals:
                write_rows(store, [decode_protobuf(signal, body)])
    return store


def record_times(names=GRPC_FIXTURES) -> list[int]:
    """timeUnixNano of every log record and metric point and span start, from the JSON."""
    out: list[int] = []
    for name in names:
        for _signal, req in request_docs(name):
            for rl in req.get("resourceLogs", []):
                for sl in rl.get("scopeLogs", []):
                    out += [int(r["timeUnixNano"]) for r in sl.get("logRecords", [])]
            for rs in req.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    out += [int(s["startTimeUnixNano"]) for s in ss.get("spans", [])]
            for rm in req.get("resourceMetrics", []):
                for sm in rm.get("scopeMetrics", []):
                    for m in sm.get("metrics", []):
                        for p in m.get("sum", {}).get("dataPoints", []):
                            out.append(int(p["timeUnixNano"]))
    return out


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def is_false(v) -> bool:
    return v is False or str(v).lower() == "false"


def ratio(read: int, inp: int, creation: int) -> float | None:
    den = read + inp + creation
    return read / den if den else None


# --- parse_window / Filter -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900),
        ("1h", 3600),
        ("24h", 86400),
        ("7d", 604800),
        ("30s", 30),
        ("2h", 7200),
        ("90m", 5400),
        ("1w", 604800),
        (" 1H ", 3600),
        ("all", None),
        ("ALL", None),
    ],
)
def test_parse_window(text, seconds):
    assert Q.parse_window(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "1.5h", "-1h", "0m", "1y", "15 minutes", "1h30m"])
def test_parse_window_rejects_with_a_clear_message(text):
    with pytest.raises(ValueError, match=r"time window"):
        Q.parse_window(text)


def test_windows_all_parse():
    assert [Q.parse_window(w) for w in Q.WINDOWS] == [900, 3600, 86400, 604800, None]


def test_filter_for_window():
    f = Q.Filter.for_window(900, now_ns=10_000_000_000_000, session_id="s", text="x")
    assert f == Q.Filter(since_ns=10_000_000_000_000 - 900 * 10**9, session_id="s", text="x")
    assert Q.Filter.for_window(None, now_ns=5).since_ns is None


# --- sessions ------------------------------------------------------------------------------


def test_sessions_totals_per_session(cur, truth):
    rows = {r["session_id"]: r for r in Q.sessions(cur, Q.Filter())}
    assert set(rows) == truth.sessions()
    assert len(rows) == 4
    for sid, r in rows.items():
        api = truth.api_requests(sid)
        assert r["api_requests"] == len(api)
        assert r["cost_usd"] == pytest.approx(truth.cost(sid), abs=1e-9)
        for kind in TOKEN_KINDS:
            assert r[f"{kind}_tokens"] == truth.tokens(kind, sid), kind
        results = [e for e in truth.tool_results() if e["session.id"] == sid]
        assert r["tool_calls"] == len(results)
        assert r["tool_errors"] == sum(is_false(e["success"]) for e in results)
        prompts = [
            e for e in truth.events if e["session.id"] == sid and e["event.name"] == "user_prompt"
        ]
        assert r["prompts"] == len(prompts)
        assert r["models"] == ", ".join(sorted({e["model"] for e in api}))
        expected_ratio = ratio(
            truth.tokens("cache_read", sid),
            truth.tokens("input", sid),
            truth.tokens("cache_creation", sid),
        )
        assert r["cache_hit_ratio"] == (
            None if expected_ratio is None else pytest.approx(expected_ratio, abs=1e-12)
        )
        metric_cost = truth.metric_sum("claude_code.cost.usage", **{"session.id": sid})
        if metric_cost:
            assert r["metric_cost_usd"] == pytest.approx(metric_cost, abs=1e-9)
        else:
            assert r["metric_cost_usd"] is None
    assert rows[CONTINUED_SESSION]["prompts"] == 2
    assert rows[ERRORS_SESSION]["tool_errors"] == 1
    assert rows[ERRORS_SESSION]["models"] == "claude-opus-5-5"
    # the metric reconciles with the events in these captures
    assert rows[BASIC_SESSION]["metric_cost_usd"] == pytest.approx(
        rows[BASIC_SESSION]["cost_usd"], abs=1e-9
    )


def test_sessions_times_terminal_custom_and_order(cur):
    rows = Q.sessions(cur, Q.Filter())
    times = sorted(record_times())
    assert min(r["first_seen_ns"] for r in rows) == times[0]
    assert max(r["last_seen_ns"] for r in rows) <= max(times) + 10**9
    assert [r["last_seen_ns"] for r in rows] == sorted(
        (r["last_seen_ns"] for r in rows), reverse=True
    )
    for r in rows:
        assert r["first_seen"].tzinfo is UTC
        assert r["first_seen"] == datetime.fromtimestamp(r["first_seen_ns"] // 1000 / 1e6, UTC)
        assert r["first_seen"].strftime("%Y-%m-%d") == "2026-11-22"
        assert r["custom"] == {}
    by_id = {r["session_id"]: r for r in rows}
    assert by_id[ERRORS_SESSION]["terminal"] == "xterm"
    assert by_id[BASIC_SESSION]["terminal"] == "xterm"


def test_session_status_active_then_idle(cur):
    now = max(record_times())
    rows = Q.sessions(cur, Q.Filter(), now_ns=now + 10**9)
    assert {r["status"] for r in rows} == {"active"}
    later = Q.sessions(cur, Q.Filter(), now_ns=now + 10**15)  # received long before "now"
    assert {r["status"] for r in later} == {"idle"}


def test_session_status_of_fetched_rows_is_the_sql_status(cur):
    """`session_status` (the UI, as the clock moves) agrees with the SQL (the CSV) to the ns."""
    cur.execute(
        "UPDATE events SET received_ns = time_ns + 5 * 10**9 WHERE session_id = $s",
        {"s": BASIC_SESSION},
    )
    rollup.build(cur)
    rows = Q.sessions(cur, Q.Filter())
    edges = {r["last_seen_ns"] + Q.ACTIVE_WITHIN_S * 10**9 for r in rows}
    nows = sorted(t + d for t in edges for d in (-1, 0, 1))
    statuses = set()
    for now in nows:
        for r in Q.sessions(cur, Q.Filter(), now_ns=now):
            assert Q.session_status(r, now) == r["status"], (r["session_id"], now)
            statuses.add((r["session_id"], r["status"]))
    assert {sid for sid, st in statuses if st == "active"} == {r["session_id"] for r in rows}
    assert {sid for sid, st in statuses if st == "idle"} == {r["session_id"] for r in rows}
    assert Q.session_status({"last_seen_ns": None, "last_received_ns": None}, 0) == "idle"


def test_status_follows_the_record_times_not_their_arrival(cur):
    """A replay or a backlog (sent hours or minutes ago, received now) is idle; a record made
    less than ACTIVE_WITHIN_S ago is active whenever it arrived."""
    for lag_s in (4 * 3600, 120):
        cur.execute("UPDATE events SET received_ns = time_ns + $lag", {"lag": lag_s * 10**9})
        cur.execute("UPDATE spans SET received_ns = start_ns + $lag", {"lag": lag_s * 10**9})
        cur.execute("UPDATE metric_points SET received_ns = time_ns + $lag", {"lag": lag_s * 10**9})
        rollup.build(cur)  # rows changed behind the writer's back: recompute what sums them
        rows = Q.sessions(cur, Q.Filter())
        now = max(r["last_received_ns"] for r in rows) + 10**9
        replayed = Q.sessions(cur, Q.Filter(), now_ns=now)
        assert {r["status"] for r in replayed} == {"idle"}
        assert {Q.session_status(r, now) for r in replayed} == {"idle"}
    for r in Q.sessions(cur, Q.Filter()):
        for now, status in (
            (r["last_seen_ns"] + (Q.ACTIVE_WITHIN_S - 1) * 10**9, "active"),
            (r["last_seen_ns"] + (Q.ACTIVE_WITHIN_S + 1) * 10**9, "idle"),
        ):
            (row,) = [
                x
                for x in Q.sessions(cur, Q.Filter(), now_ns=now)
                if x["session_id"] == r["session_id"]
            ]
            assert (row["status"], Q.session_status(row, now)) == (status, status)


def test_earliest_ns_in_the_window(cur):
    times = sorted(record_times())
    assert Q.earliest_ns(cur, Q.Filter()) == times[0]
    assert Q.earliest_ns(cur, Q.Filter(since_ns=times[1])) == times[1]
    assert Q.earliest_ns(cur, Q.Filter(since_ns=times[-1] + 1)) is None


def test_custom_resource_attributes_are_reported():
    """OTEL_RESOURCE_ATTRIBUTES keys (workflow_id, stage) show; service/os/host ones do not."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from claude_top.core.sources.otlp.decode import decode_logs

    body = next(b for s, b in grpc_requests("basic.grpc") if s == "logs" and b"api_request" in b)
    req = ExportLogsServiceRequest.FromString(body)
    for rl in req.resource_logs:
        for key, value in (("workflow_id", "wf-42"), ("stage", "review")):
            kv = rl.resource.attributes.add()
            kv.key = key
            kv.value.string_value = value
    store = Store.open(":memory:")
    try:
        write_rows(store, [decode_logs(req)])
        (row,) = Q.sessions(store.cursor(), Q.Filter())
        assert row["custom"] == {"workflow_id": "wf-42", "stage": "review"}
    finally:
        store.close()


def test_session_filter_and_text_filter(cur, truth):
    (only,) = Q.sessions(cur, Q.Filter(session_id=ERRORS_SESSION))
    assert only["session_id"] == ERRORS_SESSION
    assert only["cost_usd"] == pytest.approx(truth.cost(ERRORS_SESSION), abs=1e-9)
    assert [r["session_id"] for r in Q.sessions(cur, Q.Filter(text="OPUS"))] == [ERRORS_SESSION]
    # a tool name selects the sessions that used it; the continued session alone used Glob
    assert [r["session_id"] for r in Q.sessions(cur, Q.Filter(text="glob"))] == [CONTINUED_SESSION]
    assert [r["session_id"] for r in Q.sessions(cur, Q.Filter(text="a81f7f10"))] == [ERRORS_SESSION]
    assert Q.sessions(cur, Q.Filter(text="no-such-thing")) == []
    # SQL wildcards in the text are literal
    assert Q.sessions(cur, Q.Filter(text="%")) == []
    assert Q.sessions(cur, Q.Filter(text="'; DROP TABLE events; --")) == []
    assert len(Q.sessions(cur, Q.Filter(text="  "))) == 4


def test_window_after_the_fixtures_is_empty(cur):
    f = Q.Filter(since_ns=max(record_times()) + 1)
    assert Q.sessions(cur, f) == []
    assert Q.models(cur, f) == []
    assert Q.tools(cur, f) == []
    assert list(Q.tool_durations(cur, f, "Bash")) == []
    o = Q.overview(cur, f)
    assert (o["sessions"], o["api_requests"], o["events_total"], o["cost_usd"]) == (0, 0, 0, 0)


def test_window_splits_the_fixtures(cur, truth):
    """Only the continued session's records are after its own first record."""
    continued = Q.sessions(cur, Q.Filter(session_id=CONTINUED_SESSION))[0]
    f = Q.Filter(since_ns=continued["first_seen_ns"])
    rows = {r["session_id"] for r in Q.sessions(cur, f)}
    assert CONTINUED_SESSION in rows
    assert ERRORS_SESSION not in rows and BASIC_SESSION not in rows
    (model,) = Q.models(cur, f)
    assert model["cost_usd"] == pytest.approx(truth.cost(CONTINUED_SESSION), abs=1e-9)
    wide = Q.Filter.for_window(900, now_ns=max(record_times()) + 60 * 10**9)
    assert len(Q.sessions(cur, wide)) == 4


# --- models --------------------------------------------------------------------------------


def test_models(cur, truth):
    rows = Q.models(cur, Q.Filter())
    total = truth.cost()
    assert [r["model"] for r in rows] == sorted(
        {e["model"] for e in truth.api_requests()}, key=lambda m: -truth.cost(model=m)
    )
    for r in rows:
        m = r["model"]
        assert r["api_requests"] == sum(e["model"] == m for e in truth.api_requests())
        assert r["cost_usd"] == pytest.approx(truth.cost(model=m), abs=1e-9)
        assert r["share"] == pytest.approx(truth.cost(model=m) / total, abs=1e-12)
        for kind in TOKEN_KINDS:
            assert r[f"{kind}_tokens"] == truth.tokens(kind, model=m)
        assert r["cache_hit_ratio"] == pytest.approx(
            ratio(
                truth.tokens("cache_read", model=m),
                truth.tokens("input", model=m),
                truth.tokens("cache_creation", model=m),
            ),
            abs=1e-12,
        )
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert {r["model"]: r["api_requests"] for r in rows} == {
        "claude-sonnet-4-5": 9,
        "claude-opus-5-5": 4,
    }


def test_models_text_filter(cur, truth):
    (row,) = Q.models(cur, Q.Filter(text="sonnet"))
    assert row["cost_usd"] == pytest.approx(truth.cost(model="claude-sonnet-4-5"), abs=1e-9)
    assert row["share"] == 1.0
    (by_session,) = Q.models(cur, Q.Filter(text=BASIC_SESSION[:8]))
    assert by_session["api_requests"] == len(truth.api_requests(BASIC_SESSION))


# --- tools ---------------------------------------------------------------------------------


def test_tools(cur, truth):
    rows = Q.tools(cur, Q.Filter())
    calls = truth.tool_calls()
    assert calls == {"Bash": 5, "Read": 1, "Write": 1, "Glob": 2}
    assert {r["tool_name"]: r["calls"] for r in rows} == calls
    assert [r["total_ms"] for r in rows] == sorted((r["total_ms"] for r in rows), reverse=True)
    for r in rows:
        results = [e for e in truth.tool_results() if e["tool_name"] == r["tool_name"]]
        durations = [float(e["duration_ms"]) for e in results]
        errors = sum(is_false(e["success"]) for e in results)
        assert r["errors"] == errors
        assert r["error_pct"] == pytest.approx(100.0 * errors / len(results))
        assert r["p50_ms"] == pytest.approx(percentile(durations, 0.5))
        assert r["p95_ms"] == pytest.approx(percentile(durations, 0.95))
        assert r["p99_ms"] == pytest.approx(percentile(durations, 0.99))
        assert r["max_ms"] == max(durations)
        assert r["total_ms"] == pytest.approx(sum(durations))
        assert sorted(Q.tool_durations(cur, Q.Filter(), r["tool_name"])) == sorted(durations)
    bash = next(r for r in rows if r["tool_name"] == "Bash")
    assert (bash["errors"], bash["error_pct"]) == (1, 20.0)


def test_tools_for_one_session_and_text(cur):
    rows = Q.tools(cur, Q.Filter(session_id=ERRORS_SESSION))
    assert {r["tool_name"]: (r["calls"], r["errors"]) for r in rows} == {
        "Bash": (2, 1),
        "Write": (1, 0),
    }
    (glob,) = Q.tools(cur, Q.Filter(text="GLOB"))
    assert glob["calls"] == 2
    assert sorted(Q.tool_durations(cur, Q.Filter(session_id=ERRORS_SESSION), "Bash")) == [
        58.0,
        317.0,
    ]


# --- overview ------------------------------------------------------------------------------


def test_overview(cur, truth):
    o = Q.overview(cur, Q.Filter())
    assert o["sessions"] == len(truth.working_sessions()) == 3  # start-up telemetry alone: none
    assert o["cost_usd"] == pytest.approx(truth.cost(), abs=1e-9)
    assert o["api_requests"] == len(truth.api_requests()) == 13
    assert o["events_total"] == len(truth.events)
    assert o["spans_total"] == len(truth.spans)
    assert o["received_total"] == len(truth.events) + len(truth.spans) + truth.data_points
    assert o["last_received_ns"] > 0
    one = Q.overview(cur, Q.Filter(session_id=ERRORS_SESSION))
    assert one["sessions"] == 1
    assert one["cost_usd"] == pytest.approx(truth.cost(ERRORS_SESSION), abs=1e-9)


# --- turns ---------------------------------------------------------------------------------


def truth_turns(truth: Truth, session: str) -> dict[str, dict]:
    """Per prompt.id of a session: cost, requests, tools in order of use, errors, prompt."""
    out: dict[str, dict] = defaultdict(
        lambda: {"cost": 0.0, "api": 0, "tools": [], "errors": 0, "prompt": None}
    )
    for e in truth.events:
        if e.get("session.id") != session or "prompt.id" not in e:
            continue
        t = out[e["prompt.id"]]
        name = e["event.name"]
        if name == "api_request":
            t["cost"] += float(e["cost_usd"])
            t["api"] += 1
        elif name == "tool_result":
            t["tools"].append(e["tool_name"])
            t["errors"] += is_false(e["success"])
        elif name == "user_prompt":
            t["prompt"] = e["prompt"]
    return dict(out)


def tools_text(names: list[str]) -> str:
    counts = Counter(names)
    order = list(dict.fromkeys(names))
    return ", ".join(n if counts[n] == 1 else f"{n}\u00d7{counts[n]}" for n in order)


@pytest.mark.parametrize("session", [CONTINUED_SESSION, ERRORS_SESSION, BASIC_SESSION])
def test_turns(cur, truth, session):
    rows = Q.turns(cur, session)
    expected = truth_turns(truth, session)
    assert [r["prompt_id"] for r in rows] == list(expected)  # captured in order
    interactions = {
        s["_trace_id"]: s
        for s in truth.spans
        if s["_name"] == "claude_code.interaction" and s["session.id"] == session
    }
    for r in rows:
        t = expected[r["prompt_id"]]
        assert r["key"] == r["prompt_id"]
        assert r["cost_usd"] == pytest.approx(t["cost"], abs=1e-9)
        assert r["api_requests"] == t["api"]
        assert r["tools"] == tools_text(t["tools"])
        assert r["tool_errors"] == t["errors"]
        assert r["prompt"] == t["prompt"]
        assert r["has_spans"] is True
        assert r["trace_id"] in interactions
        assert interactions[r["trace_id"]]["user_prompt"] == t["prompt"]
    assert [r["start_ns"] for r in rows] == sorted(r["start_ns"] for r in rows)


def test_continued_session_has_two_turns(cur):
    rows = Q.turns(cur, CONTINUED_SESSION)
    assert len(rows) == 2
    assert [r["prompt"] for r in rows] == ["make a data file", "now edit it"]
    assert [r["tools"] for r in rows] == ["Glob, Bash", "Glob, Bash"]
    (errors_turn,) = Q.turns(cur, ERRORS_SESSION)
    assert errors_turn["tools"] == "Bash\u00d72, Write"
    assert errors_turn["tool_errors"] == 1
    assert Q.turns(cur, "no-such-session") == []


# --- span tree -----------------------------------------------------------------------------


def flatten(roots: list[Q.TreeNode]) -> list[Q.TreeNode]:
    return [n for r in roots for n in r.walk()]


def test_span_tree_of_the_errors_turn(cur, truth):
    (turn,) = Q.turns(cur, ERRORS_SESSION)
    roots, source = Q.span_tree(cur, ERRORS_SESSION, turn["key"])
    assert source == "spans"
    spans = [s for s in truth.spans if s["_trace_id"] == turn["trace_id"]]
    nodes = flatten(roots)
    assert len(nodes) == len(spans) == 14
    (root,) = roots
    assert root.kind == "interaction"
    # every parent link as captured
    links = {(c.attributes["span_id"], n.attributes["span_id"]) for n in nodes for c in n.children}
    assert links == {(s["_span_id"], s["_parent"]) for s in spans if s["_parent"]}
    kinds = Counter(n.kind for n in nodes)
    assert kinds == {
        "interaction": 1,
        "llm_request": 4,
        "tool": 3,
        "blocked_on_user": 3,
        "execution": 3,
    }
    # the failing Bash: its execution span is the only error
    errors = [n for n in nodes if n.is_error]
    (failed,) = errors
    assert failed.kind == "execution"
    bash = next(n for n in nodes if failed in n.children)
    assert bash.kind == "tool" and bash.attributes["tool_name"] == "Bash"
    assert "ls /nonexistent-dir-xyz" in bash.label
    truth_failed = next(s for s in spans if s["_status"] == "STATUS_CODE_ERROR")
    assert failed.attributes["span_id"] == truth_failed["_span_id"]
    # the retried request: attempt 2 is shown, with its tokens and its cost
    llm = [n for n in root.children if n.kind == "llm_request"]
    retried = [n for n in llm if n.attributes["attempt"] == 2]
    assert len(retried) == 1
    assert "attempt 2" in retried[0].label
    assert "1.24k/80 tok" in retried[0].label
    costs = [float(e["cost_usd"]) for e in truth.api_requests(ERRORS_SESSION)]
    assert [n.attributes["cost_usd"] for n in llm] == pytest.approx(costs, abs=1e-12)
    assert "$0.0090" in retried[0].label
    # children are in time order
    for n in nodes:
        starts = [c.start_ns for c in n.children]
        assert starts == sorted(starts)


def test_span_tree_falls_back_to_events(truth):
    """A store without traces rebuilds the same interaction -> llm_request/tool tree."""
    full = store_of({"traces", "logs", "metrics"})
    logs_only = store_of({"logs", "metrics"})
    try:
        for session in (ERRORS_SESSION, CONTINUED_SESSION, BASIC_SESSION):
            span_turns = Q.turns(full.cursor(), session)
            event_turns = Q.turns(logs_only.cursor(), session)
            assert [t["key"] for t in event_turns] == [t["key"] for t in span_turns]
            assert [t["has_spans"] for t in event_turns] == [False] * len(span_turns)
            for st, et in zip(span_turns, event_turns, strict=True):
                assert et["tools"] == st["tools"]
                assert et["cost_usd"] == pytest.approx(st["cost_usd"], abs=1e-12)
                s_roots, s_src = Q.span_tree(full.cursor(), session, st["key"])
                e_roots, e_src = Q.span_tree(logs_only.cursor(), session, et["key"])
                assert (s_src, e_src) == ("spans", "events")
                (e_root,) = e_roots
                assert e_root.kind == "interaction"

                def shape(roots):
                    return [
                        (n.kind, n.attributes.get("tool_name") if n.kind == "tool" else None)
                        for n in flatten(roots)
                        if n.kind in ("llm_request", "tool", "blocked_on_user", "execution")
                    ]

                assert shape(e_roots) == shape(s_roots)
                s_err = [n.kind for n in flatten(s_roots) if n.is_error]
                e_err = [n.kind for n in flatten(e_roots) if n.is_error]
                assert e_err == s_err
        (turn,) = Q.turns(logs_only.cursor(), ERRORS_SESSION)
        roots, _ = Q.span_tree(logs_only.cursor(), ERRORS_SESSION, turn["key"])
        nodes = flatten(roots)
        tools = [n for n in nodes if n.kind == "tool"]
        assert [n.attributes["tool_name"] for n in tools] == ["Bash", "Bash", "Write"]
        (failed,) = [n for n in nodes if n.is_error]
        assert failed.kind == "execution" and failed in tools[0].children
        assert "Shell command failed" in failed.label
        assert "ls /nonexistent-dir-xyz" in tools[0].label
        llm = [n for n in nodes if n.kind == "llm_request"]
        costs = [float(e["cost_usd"]) for e in truth.api_requests(ERRORS_SESSION)]
        assert [n.attributes["cost_usd"] for n in llm] == pytest.approx(costs, abs=1e-12)
        assert all(n.duration_ms is not None for n in llm)
    finally:
        full.close()
        logs_only.close()


def test_spans_only_store(truth, fixture_store):
    """Without log events, turns and trees still come from the interaction spans."""
    store = store_of({"traces"})
    try:
        cur = store.cursor()
        rows = {r["session_id"]: r for r in Q.sessions(cur, Q.Filter())}
        assert {r["terminal"] for r in rows.values()} == {None}
        # another store with the events knows the terminal (nothing stale was remembered)
        full = {r["session_id"]: r for r in Q.sessions(fixture_store.cursor(), Q.Filter())}
        assert full[ERRORS_SESSION]["terminal"] == "xterm"
        interactions = Counter(
            s["session.id"] for s in truth.spans if s["_name"] == "claude_code.interaction"
        )
        assert {sid: r["prompts"] for sid, r in rows.items()} == dict(interactions)
        assert all(r["cost_usd"] == 0 and r["api_requests"] == 0 for r in rows.values())
        turns = Q.turns(cur, CONTINUED_SESSION)
        assert len(turns) == 2
        assert [t["prompt"] for t in turns] == ["make a data file", "now edit it"]
        assert all(t["key"] == t["trace_id"] and t["prompt_id"] is None for t in turns)
        assert [t["tools"] for t in turns] == ["Glob, Bash", "Glob, Bash"]
        assert [t["api_requests"] for t in turns] == [3, 3]
        (et,) = Q.turns(cur, ERRORS_SESSION)
        assert et["tool_errors"] == 1
        roots, source = Q.span_tree(cur, ERRORS_SESSION, et["key"])
        assert source == "spans"
        assert len(flatten(roots)) == sum(1 for s in truth.spans if s["_trace_id"] == et["key"])
    finally:
        store.close()


def test_span_tree_unknown_turn_is_empty(cur):
    assert Q.span_tree(cur, ERRORS_SESSION, "no-such-prompt") == ([], "events")


def test_turn_in_progress_before_its_interaction_span_arrives(truth):
    """The interaction span is exported when the turn ends; its children arrive first."""
    store = store_of({"traces", "logs", "metrics"})
    try:
        cur = store.cursor()
        cur.execute("DELETE FROM spans WHERE name = 'claude_code.interaction'")
        (turn,) = Q.turns(cur, ERRORS_SESSION)
        assert turn["has_spans"] is True
        assert turn["tools"] == "Bash\u00d72, Write"
        roots, source = Q.span_tree(cur, ERRORS_SESSION, turn["key"])
        assert source == "spans"
        (root,) = roots
        assert root.kind == "interaction" and "in progress" in root.label
        spans = [
            s
            for s in truth.spans
            if s["_trace_id"] == turn["trace_id"] and s["_name"] != "claude_code.interaction"
        ]
        assert len(flatten(roots)) == len(spans) + 1
        assert [c.kind for c in root.children] == [
            "llm_request",
            "tool",
            "llm_request",
            "tool",
            "llm_request",
            "tool",
            "llm_request",
        ]
    finally:
        store.close()


def test_subagent_spans_nest_under_their_tool():
    """A Task tool's subagent llm_request/tool spans hang under that tool span."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from claude_top.core.sources.otlp.decode import decode_traces

    trace = bytes.fromhex("ab" * 16)
    t0 = 1_795_310_000_000_000_000
    req = ExportTraceServiceRequest()
    scope_spans = req.resource_spans.add().scope_spans.add()
    scope_spans.scope.name = "com.anthropic.claude_code.tracing"
    spans = scope_spans.spans
    layout = [  # span id, parent, name, extra attributes
        ("01", None, "claude_code.interaction", {"user_prompt": "delegate"}),
        ("02", "01", "claude_code.tool", {"tool_name": "Task"}),
        ("03", "02", "claude_code.llm_request", {"model": "m", "agent_id": "agent-7"}),
        ("04", "02", "claude_code.tool", {"tool_name": "Grep", "agent_id": "agent-7"}),
        ("05", "04", "claude_code.tool.execution", {"agent_id": "agent-7"}),
        ("06", "01", "claude_code.llm_request", {"model": "m"}),
    ]
    for i, (sid, parent, name, extra) in enumerate(layout):
        s = spans.add()
        s.trace_id = trace
        s.span_id = bytes.fromhex(sid * 8)
        if parent:
            s.parent_span_id = bytes.fromhex(parent * 8)
        s.name = name
        s.start_time_unix_nano = t0 + i * 10**6
        s.end_time_unix_nano = t0 + (i + 1) * 10**6
        for k, v in {"session.id": "sub-session", **extra}.items():
            kv = s.attributes.add()
            kv.key = k
            kv.value.string_value = v
    store = Store.open(":memory:")
    try:
        write_rows(store, [decode_traces(req)])
        cur = store.cursor()
        (turn,) = Q.turns(cur, "sub-session")
        assert (turn["key"], turn["tools"], turn["api_requests"]) == (trace.hex(), "Task, Grep", 2)
        (root,) = Q.span_tree(cur, "sub-session", turn["key"])[0]
        assert [c.attributes.get("tool_name") or c.kind for c in root.children] == [
            "Task",
            "llm_request",
        ]
        task = root.children[0]
        assert [c.kind for c in task.children] == ["llm_request", "tool"]
        assert "[agent agent-7]" in task.children[0].label
        assert [c.kind for c in task.children[1].children] == ["execution"]
    finally:
        store.close()


# --- telling sessions apart ----------------------------------------------------------------


def test_sessions_say_their_agent_source_first_prompt_retries_and_errors(cur, truth):
    rows = {r["session_id"]: r for r in Q.sessions(cur, Q.Filter())}
    assert set(rows) == truth.sessions()
    for sid, r in rows.items():
        prompts = [
            e["prompt"]
            for e in sorted(truth.events, key=lambda e: e["event.timestamp"])
            if e["session.id"] == sid and e["event.name"] == "user_prompt"
        ]
        llm = [
            s for s in truth.spans if s["session.id"] == sid and s["_name"].endswith("llm_request")
        ]
        assert (r["agent"], r["source"]) == ("claude-code", "otel")
        assert r["first_prompt"] == (prompts[0] if prompts else None)
        assert r["retries"] == sum(int(s["attempt"]) - 1 for s in llm)
        assert r["api_errors"] == sum(
            e["session.id"] == sid and e["event.name"] == "api_error" for e in truth.events
        )
        assert r["has_work"] == (sid in truth.working_sessions())
        assert r["partial"] is False
    assert rows[ERRORS_SESSION]["retries"] == 1  # the 529, retried as attempt 2


def _logs_without(fixture: str, drop) -> list[bytes]:
    """A fixture's log exports without the records `drop(attributes)` picks."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    out = []
    for signal, body in grpc_requests(fixture):
        if signal != "logs":
            continue
        req = ExportLogsServiceRequest.FromString(body)
        for rl in req.resource_logs:
            for sl in rl.scope_logs:
                kept = [
                    r
                    for r in sl.log_records
                    if not drop(
                        {kv.key: kv.value.string_value or kv.value.int_value for kv in r.attributes}
                    )
                ]
                del sl.log_records[:]
                sl.log_records.extend(kept)
        out.append(req.SerializeToString())
    return out


@pytest.mark.parametrize(
    "what, drop",
    [
        ("started before claude-top", lambda a: int(a.get("event.sequence") or 0) < 3),
        ("its prompt never arrived", lambda a: a.get("event.name") == "user_prompt"),
    ],
)
def test_a_session_missing_its_start_is_marked_partial(what, drop):
    """Claude Code started before claude-top (its first events were never received): the
    session's first event has `event.sequence` > 0, or it made requests with no prompt."""
    store = Store.open(":memory:")
    for body in _logs_without("basic.grpc", drop):
        write_rows(store, [decode_protobuf("logs", body)])
    (row,) = Q.sessions(store.cursor(), Q.Filter())
    assert row["session_id"] == BASIC_SESSION
    assert row["partial"] is True, what
    for body in _logs_without("basic.grpc", lambda a: False):
        write_rows(store, [decode_protobuf("logs", body)])  # the rest arrives: complete
    (row,) = Q.sessions(store.cursor(), Q.Filter())
    assert row["partial"] is False
    store.close()


def _tool_calls_store(durations: list[float]) -> Store:
    """A store of tool_result events with these durations (rows made by SQL, rollups built)."""
    store = Store.open(":memory:")
    cur = store.cursor()
    cur.execute(
        """
        INSERT INTO events (uid, name, kind, agent, source, session_id, time_ns, tool_name,
          duration_ms, success)
        SELECT ('\\x' || lpad(to_hex(i), 32, '0'))::BLOB, 'claude_code.tool_result',
          'tool_result', 'claude-code', 'otel', 's-' || (i % 7), 1795310000 * 10**9 + i * 10**9,
          'Bash', d, i % 13 <> 0
        FROM (SELECT unnest($d::DOUBLE[]) AS d, generate_subscripts($d::DOUBLE[], 1) AS i)
        """,
        {"d": durations},
    )
    rollup.build(cur)
    return store


def test_percentiles_of_a_large_view_come_from_the_latency_buckets_within_one_percent(
    monkeypatch,
):
    """Past EXACT_PERCENTILES_MAX calls (and with no session or text filter) the tools pane
    reads p50/p95/p99 from tool_latency's 1 % buckets instead of sorting every call."""
    import random

    from claude_top.core.queries import breakdowns

    rng = random.Random(5)
    durations = [round(rng.lognormvariate(4, 1.2), 3) for _ in range(20_000)]
    store = _tool_calls_store(durations)
    cur = store.cursor()
    (exact,) = Q.tools(cur, Q.Filter())  # 20,000 calls: exact
    xs = sorted(durations)
    for key, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        h = (len(xs) - 1) * q
        lo = math.floor(h)
        assert exact[key] == pytest.approx(xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo]), rel=1e-9)
    assert (exact["calls"], exact["max_ms"]) == (20_000, max(durations))
    assert exact["errors"] == sum(i % 13 == 0 for i in range(1, 20_001))
    monkeypatch.setattr(breakdowns, "EXACT_PERCENTILES_MAX", 19_999)
    (bucketed,) = Q.tools(cur, Q.Filter())
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        assert bucketed[key] == pytest.approx(exact[key], rel=0.011), key
        assert bucketed[key] != exact[key]
    for key in ("calls", "errors", "max_ms", "total_ms"):
        assert bucketed[key] == pytest.approx(exact[key], rel=1e-12)
    (one,) = Q.tools(cur, Q.Filter(session_id="s-3"))  # a session's percentiles stay exact
    mine = sorted(d for i, d in enumerate(durations, 1) if i % 7 == 3)
    assert one["max_ms"] == mine[-1] and one["calls"] == len(mine)
    store.close()


def test_a_large_views_durations_are_their_buckets_middles(monkeypatch):
    from claude_top.core.queries import breakdowns
    from claude_top.core.store import hourly

    durations = [1.0, 1.0, 250.0, 1000.0, 3000.0]
    store = _tool_calls_store(durations)
    cur = store.cursor()
    assert sorted(Q.tool_durations(cur, Q.Filter(), "Bash")) == durations
    monkeypatch.setattr(breakdowns, "EXACT_PERCENTILES_MAX", 4)
    got = sorted(Q.tool_durations(cur, Q.Filter(), "Bash"))
    assert got == pytest.approx(durations, rel=0.01)
    assert got[0] == got[1] == hourly.bucket_ms(117) != 1.0  # 1.0's bucket's middle
    store.close()
