"""Other coding agents beside Claude Code: the real Gemini CLI 0.61.0 and Codex CLI 0.169.0
captures in the same panes, with exact counts computed from the capture files (`truth.py`)."""

from __future__ import annotations

import csv
import json
import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from claude_top.core import pricing
from claude_top.core import queries as Q
from claude_top.core.export import export_snapshot
from claude_top.core.sources.otlp.agents import agent_of
from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from truth import (
    CODEX_CAPTURE,
    GEMINI_CAPTURE,
    GRPC_FIXTURES,
    OTHER_AGENT_CAPTURES,
    Truth,
    agent_sessions,
    capture_records,
    capture_requests,
    capture_spans,
    grpc_requests,
    stranger_logs,
)

GEMINI_SESSION = "2bea2199-2a2c-41f9-b2be-f2524641385b"
CODEX_SESSION = "01a244ea-6136-7851-97d5-6ad90ba44d72"
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")


def write(store: Store, requests) -> None:
    for signal, body in requests:
        write_rows(store, [decode_protobuf(signal, body)])


@pytest.fixture(scope="module")
def mixed():
    """Claude Code's three gRPC captures, Gemini CLI's and Codex CLI's, in one store."""
    store = Store.open(":memory:")
    for name in GRPC_FIXTURES:
        write(store, grpc_requests(name))
    for path in OTHER_AGENT_CAPTURES.values():
        write(store, capture_requests(path))
    yield store
    store.close()


@pytest.fixture
def cur(mixed):
    return mixed.cursor()


def expected_sessions() -> dict[str, dict]:
    """Every session's agent and counts, from the capture files only."""
    want: dict[str, dict] = {}
    for agent, path in OTHER_AGENT_CAPTURES.items():
        for sid, s in agent_sessions(agent, path).items():
            want[sid] = {k: s[k] for k in ("agent", "api_requests", *TOKENS)} | {
                "tool_calls": s["tool_calls"],
                "tool_errors": s["tool_errors"],
            }
    truth = Truth(*GRPC_FIXTURES)
    for sid in truth.working_sessions():
        requests = truth.api_requests(sid)
        tools = [e for e in truth.tool_results() if e["session.id"] == sid]
        want[sid] = {
            "agent": "claude-code",
            "api_requests": len(requests),
            **{k: truth.tokens(k.removesuffix("_tokens"), sid) for k in TOKENS},
            "tool_calls": len(tools),
            "tool_errors": sum(str(e["success"]) == "false" for e in tools),
        }
    return want


def test_agents_are_told_by_their_scope_and_service_not_their_endpoint():
    assert agent_of("claude-code", "com.anthropic.claude_code.events") == "claude-code"
    assert agent_of("gemini-cli", "gemini-cli") == "gemini-cli"
    assert agent_of("codex_exec", "codex_otel.log_only") == "codex"
    assert agent_of("codex_exec", "codex_otel::metrics::client") == "codex"
    assert agent_of("codex_exec", "codex") == "codex"  # its metrics
    assert agent_of("codex_exec", "codex_exec") == "codex"  # its spans
    assert agent_of("codex_cli_rs", "codex_cli_rs") == "codex"  # the TUI's
    # a sender that only calls itself one of them is not taken for it
    for service in ("claude-code", "gemini-cli", "codex_exec"):
        assert agent_of(service, "my-exporter") == "unknown"
        assert agent_of(service, None) == "unknown"
    assert agent_of("copilot-cli", "github.copilot") == "copilot-cli"
    # and every record of the captures is named by its agent
    scopes = Counter(r["_scope"] for r in capture_records(CODEX_CAPTURE))
    assert set(scopes) == {"codex_otel.log_only", "codex_otel::metrics::client"}


def test_every_session_of_every_agent_counts_what_its_capture_says(cur):
    want = expected_sessions()
    assert {s["agent"] for s in want.values()} == {"claude-code", "gemini-cli", "codex"}
    got = {
        s["session_id"]: {k: s[k] for k in ("agent", "api_requests", *TOKENS)}
        | {"tool_calls": s["tool_calls"], "tool_errors": s["tool_errors"]}
        for s in Q.sessions(cur, Q.Filter())
        if s["has_work"]
    }
    assert got == want
    # the two other agents' numbers, checked by hand against the captures
    assert want[GEMINI_SESSION] == {
        "agent": "gemini-cli",
        "api_requests": 5,  # the routing call to gemini-3.5-flash-lite included
        "input_tokens": 7746 - 5000,
        "output_tokens": 300 + 60,  # output + thoughts
        "cache_read_tokens": 5000,
        "cache_creation_tokens": 0,
        "tool_calls": 3,
        "tool_errors": 2,
    }
    assert want[CODEX_SESSION] == {
        "agent": "codex",
        "api_requests": 3,
        "input_tokens": 6159 - 4500,
        "output_tokens": 210,  # reasoning already inside
        "cache_read_tokens": 4500,
        "cache_creation_tokens": 0,
        "tool_calls": 2,
        "tool_errors": 0,  # Codex reports success=true even when `ls` exits non-zero
    }


def test_codex_counts_each_completed_response_once():
    """Codex logs every SSE event, `response.completed` included, and then the completion once
    more with its counts: six `response.completed` records for three requests."""
    records = capture_records(CODEX_CAPTURE)
    completed = [r for r in records if r.get("event.kind") == "response.completed"]
    requests = [r for r in records if r.get("event.name") == "codex.api_request"]
    assert (len(completed), len(requests)) == (6, 3)
    with_counts = [r for r in completed if "input_token_count" in r]
    assert len(with_counts) == 3
    store = Store.open(":memory:")
    write(store, capture_requests(CODEX_CAPTURE))
    rows = (
        store.cursor()
        .execute(
            "SELECT input_tokens + cache_read_tokens, output_tokens, prompt_id, kind "
            "FROM events WHERE name = 'codex.sse_event' "
            "AND json_extract_string(attributes, '$.\"event.kind\"') = 'response.completed' "
            "ORDER BY time_ns"
        )
        .fetchall()
    )
    assert [r[3] for r in rows] == [None, "api_request"] * 3
    assert [(r[0], r[1]) for r in rows if r[3]] == [
        (int(r["input_token_count"]), int(r["output_token_count"])) for r in with_counts
    ]
    # each request belongs to the turn (the trace) its codex.api_request carried
    (turn,) = {r["_trace"] for r in requests}
    assert {r[2] for r in rows if r[3]} == {turn}
    store.close()


def test_the_csv_carries_each_sessions_agent_and_exact_counts(mixed, tmp_path):
    result = export_snapshot(
        mixed.cursor(), tmp_path, db_path="x", window=None, window_s=None, session_id=None
    )
    with open(tmp_path / "sessions.csv", newline="") as fh:
        rows = {r["session_id"]: r for r in csv.DictReader(fh)}
    want = expected_sessions()
    for sid, w in want.items():
        r = rows[sid]
        assert r["agent"] == w["agent"]
        for k, v in w.items():
            if k != "agent":
                assert int(r[k]) == v, (sid, k)
    for name in ("models", "tools", "spans", "events"):
        with open(tmp_path / f"{name}.csv", newline="") as fh:
            reader = csv.DictReader(fh)
            assert "agent" in (reader.fieldnames or [])
            agents = {a for r in reader for a in r["agent"].split(", ")}
        assert {"claude-code", "gemini-cli", "codex"} <= agents, name
    assert result.snapshot["not_understood"] == 0
    assert result.snapshot["prices"]["date"]


def test_tool_latency_is_each_agents_reported_durations(cur):
    durations: dict[str, list[float]] = {}
    for agent, path in OTHER_AGENT_CAPTURES.items():
        for s in agent_sessions(agent, path).values():
            for tool, ms in s["tools"].items():
                durations.setdefault(tool, []).extend(ms)
    got = {t["tool_name"]: t for t in Q.tools(cur, Q.Filter())}
    for tool, ms in durations.items():
        t = got[tool]
        assert t["calls"] == len(ms)
        assert t["total_ms"] == pytest.approx(sum(ms))
        assert t["max_ms"] == max(ms)
    assert got["read_file"]["errors"] == 2 and got["read_file"]["agent"] == "gemini-cli"
    assert got["exec_command"]["agent"] == "codex"
    assert list(Q.tool_durations(cur, Q.Filter(), "exec_command")) == pytest.approx([44.0, 33.0])


def test_costs_no_agent_reports_are_estimates_from_the_price_table(cur):
    table = tomllib.loads(pricing.SHIPPED.read_text())["models"]
    gpt5 = table["gpt-5"]  # gpt-5-codex: no entry of its own, the longest prefix
    assert pricing.load().price("gpt-5-nano").input == 0.05  # not priced as gpt-5
    cost = 0.0
    for r in capture_records(CODEX_CAPTURE):
        if r.get("event.kind") == "response.completed" and "input_token_count" in r:
            cached = int(r["cached_token_count"])
            cost += (
                (int(r["input_token_count"]) - cached) * gpt5["input"]
                + int(r["output_token_count"]) * gpt5["output"]
                + cached * gpt5["cache_read"]
            ) / 1e6
    sessions = {s["session_id"]: s for s in Q.sessions(cur, Q.Filter())}
    codex = sessions[CODEX_SESSION]
    assert codex["cost_usd"] == pytest.approx(cost, rel=1e-12)
    assert (codex["cost_source"], codex["unpriced_requests"]) == ("estimate", 0)
    # Gemini's models (gemini-3.x) are not in the table: no price is made up for them
    gemini = sessions[GEMINI_SESSION]
    assert (gemini["cost_usd"], gemini["cost_source"], gemini["unpriced_requests"]) == (
        0.0,
        "none",
        5,
    )
    claude = [s for s in sessions.values() if s["agent"] == "claude-code" and s["api_requests"]]
    assert {s["cost_source"] for s in claude} == {"reported"}
    models = {m["model"]: m for m in Q.models(cur, Q.Filter())}
    assert models["gpt-5-codex"]["cost_source"] == "estimate"
    assert models["gemini-3.5-flash-lite"]["api_requests"] == 1
    ov = Q.overview(cur, Q.Filter())
    assert ov["estimated_cost_usd"] == pytest.approx(cost, rel=1e-12)
    assert ov["agents"] == ["claude-code", "codex", "gemini-cli"]


def test_one_key_keeps_one_agent(cur):
    for agent, sid in (("gemini-cli", GEMINI_SESSION), ("codex", CODEX_SESSION)):
        f = Q.Filter(agent=agent)
        assert [s["session_id"] for s in Q.sessions(cur, f)] == [sid]
        assert {m["agent"] for m in Q.models(cur, f)} == {agent}
        assert {t["agent"] for t in Q.tools(cur, f)} == {agent}
        want = agent_sessions(agent, OTHER_AGENT_CAPTURES[agent])[sid]
        assert Q.overview(cur, f)["api_requests"] == want["api_requests"]
    claude = Q.sessions(cur, Q.Filter(agent="claude-code"))
    assert {s["agent"] for s in claude} == {"claude-code"} and len(claude) >= 3


def test_each_agents_prompt_is_one_turn(cur):
    gemini = Q.turns(cur, GEMINI_SESSION)
    codex = Q.turns(cur, CODEX_SESSION)
    assert [(t["prompt"], t["api_requests"], t["tools"], t["tool_errors"]) for t in gemini] == [
        ("say hello and read the hostname", 5, "run_shell_command, read_file\u00d72", 2)
    ]
    assert [(t["prompt"], t["api_requests"], t["tools"], t["tool_errors"]) for t in codex] == [
        ("say hello and list a missing dir", 3, "exec_command\u00d72", 0)
    ]


def _labels(node, depth=0):
    yield depth, node.kind, node.label, node.is_error
    for c in node.children:
        yield from _labels(c, depth + 1)


def test_codex_span_tree_folds_its_internal_spans_into_a_turn(cur):
    (turn,) = Q.turns(cur, CODEX_SESSION)
    roots, source = Q.span_tree(cur, CODEX_SESSION, turn["key"])
    assert source == "spans"
    (root,) = roots
    tree = [(d, k) for d, k, _, _ in _labels(root)]
    assert tree == [
        (0, "interaction"),
        (1, "llm_request"),
        (2, "tool"),
        (3, "execution"),
        (1, "llm_request"),
        (2, "tool"),
        (3, "execution"),
        (1, "llm_request"),
    ]
    spans = capture_spans(CODEX_CAPTURE)
    assert len(spans) == 646  # folded to 8 nodes
    assert '"say hello and list a missing dir"' in root.label
    llm = [n for n in root.walk() if n.kind == "llm_request"]
    completions = [
        r
        for r in capture_records(CODEX_CAPTURE)
        if r.get("event.kind") == "response.completed" and "input_token_count" in r
    ]
    inputs = [int(r["input_token_count"]) - int(r["cached_token_count"]) for r in completions]
    assert [n.label.split("  ")[2] for n in llm] == [
        f"{i}/{r['output_token_count']} tok" for i, r in zip(inputs, completions, strict=True)
    ]
    commands = [n.label for n in root.walk() if n.kind == "tool"]
    assert ["echo hello from codex" in commands[0], "ls /nonexistent-dir" in commands[1]] == [
        True,
        True,
    ]


def test_gemini_span_tree_is_rooted_at_its_prompt_with_every_tool(cur):
    (turn,) = Q.turns(cur, GEMINI_SESSION)
    roots, source = Q.span_tree(cur, GEMINI_SESSION, turn["key"])
    assert source == "spans"
    (root,) = roots
    assert root.kind == "interaction" and '"say hello and read the hostname"' in root.label
    assert "in progress" not in root.label
    kinds = Counter(c.kind for c in root.children)
    calls = [
        r for r in capture_records(GEMINI_CAPTURE) if r.get("event.name") == "gemini_cli.tool_call"
    ]
    responses = [
        r
        for r in capture_records(GEMINI_CAPTURE)
        if r.get("event.name") == "gemini_cli.api_response"
    ]
    assert kinds == {"llm_request": len(responses), "tool": len(calls)}
    tool_spans = [s for s in capture_spans(GEMINI_CAPTURE) if s["_name"] == "tool_call"]
    assert len(tool_spans) == 1  # the two rejected read_file calls sent no span: from events
    failed = [n for n in root.walk() if n.is_error]
    assert len(failed) == sum(r["success"] is False for r in calls) == 2
    models = [c.label.split()[1] for c in root.children if c.kind == "llm_request"]
    assert models == [r["model"] for r in responses]


# --- bad input ---------------------------------------------------------------------------


def _logs_docs(path: Path) -> list[dict]:
    with open(path) as fh:
        return [d["req"] for d in map(json.loads, fh) if d["kind"] == "logs"]


def _records(doc: dict):
    for rl in doc.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            yield from sl.get("logRecords", [])


def _set(record: dict, key: str, value) -> None:
    attrs = [a for a in record.get("attributes", []) if a["key"] != key]
    if value is not None:
        attrs.append({"key": key, "value": {"stringValue": value}})
    record["attributes"] = attrs


def _attr(record: dict, key: str):
    for a in record.get("attributes", []):
        if a["key"] == key:
            return next(iter(a["value"].values()), None)
    return None


def _as_request(doc: dict) -> bytes:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    return json_format.ParseDict(doc, ExportLogsServiceRequest()).SerializeToString()


def test_bad_counts_renamed_fields_and_strangers_are_stored_and_tallied(mixed):
    """A Gemini response whose counts are not numbers or missing, a Codex completion from a
    version with renamed fields, an unknown agent and a sender posing as Claude Code: all
    stored as received, each counted as not understood; nobody else's numbers move."""
    gemini = _logs_docs(GEMINI_CAPTURE)
    responses = [
        r
        for doc in gemini
        for r in _records(doc)
        if _attr(r, "event.name") == "gemini_cli.api_response"
    ]
    r1, r2 = responses[1], responses[2]
    lost_input = int(_attr(r1, "input_token_count")) - int(_attr(r1, "cached_content_token_count"))
    lost_output = int(_attr(r2, "output_token_count")) + int(_attr(r2, "thoughts_token_count"))
    _set(r1, "input_token_count", "lots")
    _set(r2, "output_token_count", None)
    codex = _logs_docs(CODEX_CAPTURE)
    completions = [
        r for doc in codex for r in _records(doc) if _attr(r, "input_token_count") is not None
    ]
    renamed = completions[0]
    assert (_attr(renamed, "input_token_count"), _attr(renamed, "cached_token_count")) == (
        "2000",
        "1500",
    )
    _set(renamed, "input_tokens", _attr(renamed, "input_token_count"))
    _set(renamed, "input_token_count", None)
    _set(renamed, "output_tokens", _attr(renamed, "output_token_count"))
    _set(renamed, "output_token_count", None)

    store = Store.open(":memory:")
    for name in GRPC_FIXTURES:
        write(store, grpc_requests(name))
    for doc in gemini + codex:
        write(store, [("logs", _as_request(doc))])
    write(store, [("logs", stranger_logs("some-agent", "some.scope", 3))])
    write(store, [("logs", stranger_logs("claude-code", "not.claude", 2))])
    cur = store.cursor()

    records = sum(1 for doc in gemini + codex for _ in _records(doc)) + 5
    (stored,) = cur.execute(
        "SELECT count(*) FROM events WHERE agent IS DISTINCT FROM 'claude-code'"
    ).fetchone()
    assert stored == records  # nothing dropped
    odd = dict(
        cur.execute("SELECT agent, count(not_understood) FROM events GROUP BY agent").fetchall()
    )
    assert odd == {"claude-code": 0, "gemini-cli": 2, "codex": 1, "some-agent": 3, "unknown": 2}
    reasons = [
        r[0]
        for r in cur.execute(
            "SELECT not_understood FROM events WHERE agent IN ('gemini-cli', 'codex') "
            "AND not_understood IS NOT NULL ORDER BY time_ns"
        ).fetchall()
    ]
    assert reasons[0] == "input_token_count='lots' is not a count"
    assert reasons[1] == "no output_token_count"
    assert "input_token_count" in reasons[2]
    assert Q.overview(cur, Q.Filter())["not_understood"] == 8
    # the requests still count; only the unreadable numbers are missing from the sums
    sessions = {s["session_id"]: s for s in Q.sessions(cur, Q.Filter())}
    want = agent_sessions("gemini-cli", GEMINI_CAPTURE)[GEMINI_SESSION]
    g = sessions[GEMINI_SESSION]
    assert (g["api_requests"], g["not_understood"]) == (5, 2)
    assert g["input_tokens"] == want["input_tokens"] - lost_input
    assert g["output_tokens"] == want["output_tokens"] - lost_output
    assert g["cache_read_tokens"] == want["cache_read_tokens"]
    c = sessions[CODEX_SESSION]
    assert (c["api_requests"], c["not_understood"]) == (3, 1)
    assert c["input_tokens"] == 1659 - (2000 - 1500)
    # strangers' events count nowhere; Claude Code's numbers are what they were
    assert "some-agent-s" not in sessions or not sessions["some-agent-s"]["api_requests"]
    for sid, w in expected_sessions().items():
        if w["agent"] == "claude-code":
            s = sessions[sid]
            assert {k: s[k] for k in w} == w
            assert s["not_understood"] == 0
    store.close()


# --- any other agent that follows the OpenTelemetry GenAI conventions --------------------


def _genai_trace() -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from truth import set_value

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    set_value(rs.resource.attributes.add(key="service.name").value, "copilot-cli")
    ss = rs.scope_spans.add()
    ss.scope.name = "github.copilot.cli"
    trace = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    t0 = 1_796_452_600_000_000_000

    def span(n: int, name: str, parent: int | None, start_ms: int, end_ms: int, attrs, error=False):
        s = ss.spans.add(
            trace_id=trace,
            span_id=n.to_bytes(8, "big"),
            name=name,
            start_time_unix_nano=t0 + start_ms * 10**6,
            end_time_unix_nano=t0 + end_ms * 10**6,
        )
        if parent:
            s.parent_span_id = parent.to_bytes(8, "big")
        if error:
            s.status.code = 2
        for k, v in attrs.items():
            set_value(s.attributes.add(key=k).value, v)

    span(1, "invoke_agent copilot", None, 0, 900,
         {"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "conv-1"})  # fmt: skip
    span(2, "chat gpt-4.1", 1, 10, 400, {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1",
        "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cache_read.input_tokens": 200,
        "gen_ai.usage.output_tokens": 50})  # fmt: skip
    span(3, "execute_tool view", 1, 400, 430,
         {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "view"})  # fmt: skip
    bash = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "bash"}
    span(4, "execute_tool bash", 1, 430, 800, bash, error=True)
    span(5, "http.request", 2, 20, 390, {"http.method": "POST"})
    return req.SerializeToString()


def test_another_agent_following_the_genai_conventions_fills_the_panes():
    store = Store.open(":memory:")
    write(store, [("traces", _genai_trace())])
    cur = store.cursor()
    (s,) = Q.sessions(cur, Q.Filter())
    assert (s["session_id"], s["agent"], s["prompts"], s["api_requests"]) == (
        "conv-1",
        "copilot-cli",
        1,
        1,
    )
    assert [s[k] for k in TOKENS] == [800, 50, 200, 0]
    assert (s["tool_calls"], s["tool_errors"], s["models"]) == (2, 1, "gpt-4.1")
    tools = {
        t["tool_name"]: (t["calls"], t["errors"], t["max_ms"]) for t in Q.tools(cur, Q.Filter())
    }
    assert tools == {"view": (1, 0, 30.0), "bash": (1, 1, 370.0)}
    assert Q.overview(cur, Q.Filter())["not_understood"] == 1  # the http.request span
    (turn,) = Q.turns(cur, "conv-1")
    (root,), _ = Q.span_tree(cur, "conv-1", turn["key"])
    assert [(d, k) for d, k, _, _ in _labels(root)] == [
        (0, "interaction"),
        (1, "llm_request"),
        (1, "tool"),
        (1, "tool"),
    ]
    store.close()


@pytest.mark.parametrize("agent", ["gemini-cli", "codex"])
def test_without_traces_each_agents_tree_is_built_from_its_events(agent):
    path = OTHER_AGENT_CAPTURES[agent]
    store = Store.open(":memory:")
    write(store, [r for r in capture_requests(path) if r[0] == "logs"])
    cur = store.cursor()
    ((sid, want),) = agent_sessions(agent, path).items()
    (turn,) = Q.turns(cur, sid)
    (root,), source = Q.span_tree(cur, sid, turn["key"])
    assert source == "events"
    kinds = Counter(c.kind for c in root.children if c.kind != "event")
    assert kinds == {"llm_request": want["api_requests"], "tool": want["tool_calls"]}
    llm = [c for c in root.children if c.kind == "llm_request"]
    tokens = [re.search(r"(\d+)/(\d+) tok", c.label) for c in llm]
    assert sum(int(t.group(1)) for t in tokens) == want["input_tokens"]
    assert sum(int(t.group(2)) for t in tokens) == want["output_tokens"]
    if agent == "codex":
        assert all("~$" in c.label for c in llm)  # estimated, and marked so
    store.close()
