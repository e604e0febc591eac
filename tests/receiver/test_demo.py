"""The demo sender: its telemetry is shaped like the real fixtures, is the same for the same seed,
and arrives through a real receiver with exactly the totals it recorded (sessions, models, tools,
turns, span trees, the continued session, the subagent, retries and failures)."""

from __future__ import annotations

import asyncio
import copy
import os
import socket
import subprocess
import sys
from collections import Counter, defaultdict

import pytest
from google.protobuf.json_format import MessageToDict
from receiver_harness import running_server

from claude_top.core import queries
from claude_top.core.queries import Filter
from claude_top.core.store.database import Store
from claude_top.demo.catalog import NS, PRICES
from claude_top.demo.ledger import Ledger
from claude_top.demo.sender import DemoSender
from claude_top.demo.verify import verify
from truth import GRPC_FIXTURES, request_docs

SEED = 11
START_NS = 1_800_000_000 * NS
VIRTUAL_S = 240
# Keys the demo adds that the fixtures cannot show: subagent tags, custom resource attributes.
EXTRA_KEYS = {"agent_id", "parent_agent_id", "team", "stage"}
EXTRA_EVENTS = {"subagent_completed"}


@pytest.fixture(scope="module")
def demo() -> tuple[Store, Ledger]:
    """Four virtual minutes of demo telemetry, sent through a real receiver into one store."""
    store = Store.open(":memory:")

    async def send() -> Ledger:
        async with running_server(store) as server:
            sender = DemoSender(f"127.0.0.1:{server.rx.grpc_port}", seed=SEED, start_ns=START_NS)
            await sender.advance(VIRTUAL_S, batch_s=2.0)
            await sender.finish()
            await sender.close()
            server.settle()
            return sender.ledger

    ledger = asyncio.run(send())
    yield store, ledger
    store.close()


@pytest.fixture
def cur(demo):
    c = demo[0].cursor()
    yield c
    c.close()


# --- shape ---------------------------------------------------------------------------------


def _type(value: dict) -> str:
    return next(iter(value), "empty")


def signatures(docs) -> dict[tuple[str, str], dict[str, str]]:
    """{(what, name): {attribute key: value type}} over requests in protobuf's JSON mapping."""
    sig: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)

    def add(what: str, name: str, attrs) -> None:
        for kv in attrs or []:
            sig[(what, name)][kv["key"]] = _type(kv["value"])

    for signal, req in docs:
        for res in req.get("resourceSpans", []) + req.get("resourceLogs", []):
            add("resource", "", res["resource"]["attributes"])
        for res in req.get("resourceMetrics", []):
            add("resource", "", res["resource"]["attributes"])
        for rs in req.get("resourceSpans", []):
            for ss in rs["scopeSpans"]:
                sig[("scope", signal)][ss["scope"]["name"]] = ss["scope"].get("version", "")
                for span in ss["spans"]:
                    add("span", span["name"], span["attributes"])
                    sig[("span-fields", span["name"])].update(
                        {k: str(span[k]) for k in ("kind", "flags")}
                    )
                    for ev in span.get("events", []):
                        add("span-event", ev["name"], ev["attributes"])
        for rl in req.get("resourceLogs", []):
            for sl in rl["scopeLogs"]:
                sig[("scope", signal)][sl["scope"]["name"]] = sl["scope"].get("version", "")
                for rec in sl["logRecords"]:
                    name = next(
                        kv["value"]["stringValue"]
                        for kv in rec["attributes"]
                        if kv["key"] == "event.name"
                    )
                    add("event", name, rec["attributes"])
                    sig[("event-fields", name)]["body"] = rec["body"]["stringValue"]
                    sig[("event-fields", name)]["flags"] = str(rec.get("flags", 0))
        for rm in req.get("resourceMetrics", []):
            for sm in rm["scopeMetrics"]:
                sig[("scope", signal)][sm["scope"]["name"]] = sm["scope"].get("version", "")
                for m in sm["metrics"]:
                    s = m["sum"]
                    sig[("metric-fields", m["name"])].update(
                        unit=m.get("unit", ""),
                        description=m["description"],
                        temporality=s["aggregationTemporality"],
                        monotonic=str(s["isMonotonic"]),
                    )
                    for p in s["dataPoints"]:
                        add("metric", m["name"], p["attributes"])
                        sig[("metric-fields", m["name"])]["value"] = "asDouble" in p and "double"
    return sig


def demo_docs(seconds: float = VIRTUAL_S) -> list[tuple[str, dict]]:
    sender = DemoSender("127.0.0.1:1", seed=SEED, start_ns=START_NS)
    batches = sender.build(START_NS + int(seconds * NS)) + sender._due(0, final=True)
    return [(b.signal, MessageToDict(b.request)) for b in batches]


def test_shaped_like_the_fixtures():
    """Every span, event, metric, scope and resource attribute the real Claude Code sent in the
    fixtures, the demo sends too, with the same value types (string-typed numbers included)."""
    real = signatures(d for name in GRPC_FIXTURES for d in request_docs(name))
    ours = signatures(demo_docs())
    for key, fields in real.items():
        assert key in ours, f"the demo never sends {key}"
        for attr, kind in fields.items():
            if key[0] == "resource" and attr == "os.version":
                continue
            if key[0] == "metric-fields" and attr == "value":
                assert ours[key][attr] == kind, (key, attr)
                continue
            got = ours[key].get(attr)
            if key[0] in ("event-fields", "span-fields", "metric-fields", "scope"):
                assert got == kind, (key, attr, got, kind)
            else:
                assert got == kind, f"{key} {attr}: demo sends {got}, Claude Code sent {kind}"
    extra = {k for k in ours if k not in real}
    assert {name for what, name in extra if what == "event"} == EXTRA_EVENTS
    for key in real:
        assert set(ours[key]) - set(real[key]) <= EXTRA_KEYS, key


def test_the_same_seed_sends_the_same_telemetry_however_it_is_paced():
    def records(step_s: float, seed: int = SEED) -> list[bytes]:
        sender = DemoSender("127.0.0.1:1", seed=seed, start_ns=START_NS)
        out = []
        t = START_NS
        while t < START_NS + 120 * NS:
            t += int(step_s * NS)
            for batch in sender.build(t):
                for part in ("resource_logs", "resource_spans"):
                    for r in getattr(batch.request, part, []):
                        for scope in getattr(r, part.replace("resource", "scope")):
                            items = getattr(scope, "log_records", None) or scope.spans
                            out.extend(x.SerializeToString() for x in items)
        return sorted(out)

    whole = records(120)
    assert len(whole) > 300
    assert records(0.7) == whole
    assert records(120, seed=SEED + 1) != whole


def test_cost_is_tokens_times_price():
    docs = demo_docs(60)
    requests = 0
    for _, req in docs:
        for rl in req.get("resourceLogs", []):
            for rec in rl["scopeLogs"][0]["logRecords"]:
                a = {kv["key"]: next(iter(kv["value"].values()), None) for kv in rec["attributes"]}
                if a["event.name"] != "api_request":
                    continue
                requests += 1
                p = PRICES[a["model"]]
                nusd = (
                    int(a["input_tokens"]) * p.input
                    + int(a["output_tokens"]) * p.output
                    + int(a["cache_read_tokens"]) * p.cache_read
                    + int(a["cache_creation_tokens"]) * p.cache_creation
                )
                assert a["cost_usd"] == nusd / NS
                assert int(a["cost_usd_micros"]) == round(nusd / 1000)
    assert requests > 10


# --- through a receiver --------------------------------------------------------------------


def test_sessions_match_what_was_acknowledged(demo, cur):
    _, ledger = demo
    rows = {r["session_id"]: r for r in queries.sessions(cur, Filter())}
    assert set(rows) == set(ledger.sessions)
    assert len(rows) >= 5
    for sid, want in ledger.sessions.items():
        r = rows[sid]
        assert (
            r["prompts"],
            r["api_requests"],
            r["input_tokens"],
            r["output_tokens"],
            r["cache_read_tokens"],
            r["cache_creation_tokens"],
            r["tool_calls"],
            r["tool_errors"],
            r["models"],
        ) == (
            want.prompts,
            want.api_requests,
            want.input_tokens,
            want.output_tokens,
            want.cache_read_tokens,
            want.cache_creation_tokens,
            want.tool_calls,
            want.tool_errors,
            ", ".join(sorted(want.models)),
        ), sid
        assert r["cost_usd"] == pytest.approx(want.cost_usd, abs=1e-9)
        if want.api_requests:
            assert r["metric_cost_usd"] == pytest.approx(want.cost_usd, abs=1e-9)
    assert verify(ledger, cur) == []


def test_verify_reports_differences(demo, cur):
    _, ledger = demo
    sid = max(ledger.sessions, key=lambda k: ledger.sessions[k].cost_nusd)
    off = copy.deepcopy(ledger)
    off.sessions[sid].cost_nusd += 1_000
    off.tools["Read"].errors += 1
    assert [p.split(":")[0] for p in verify(off, cur)] == [f"session {sid}", "tool Read"]
    fewer = copy.deepcopy(ledger)
    del fewer.sessions[sid]
    assert verify(fewer, cur)[0] == "1 sessions stored but not sent"
    assert verify(fewer, cur, only_sessions=True) == []


def test_three_models_with_their_totals(demo, cur):
    _, ledger = demo
    rows = {r["model"]: r for r in queries.models(cur, Filter())}
    assert set(rows) == set(PRICES) == set(ledger.models)
    for model, want in ledger.models.items():
        r = rows[model]
        assert (r["api_requests"], r["input_tokens"], r["output_tokens"]) == (
            want.api_requests,
            want.input_tokens,
            want.output_tokens,
        )
        assert r["cost_usd"] == pytest.approx(want.cost_usd, abs=1e-9)


def test_tools_calls_errors_and_latencies(demo, cur):
    _, ledger = demo
    rows = {r["tool_name"]: r for r in queries.tools(cur, Filter())}
    assert set(rows) == set(ledger.tools)
    assert len(rows) >= 10
    for tool, want in ledger.tools.items():
        r = rows[tool]
        assert (r["calls"], r["errors"]) == (want.calls, want.errors), tool
        assert r["max_ms"] == max(want.durations_ms)
        assert r["total_ms"] == sum(want.durations_ms)
    assert ledger.tools["Bash"].errors >= 1
    assert rows["Bash"]["p95_ms"] > 10 * rows["Read"]["p95_ms"]


def test_turns_and_their_span_trees(demo, cur):
    _, ledger = demo
    by_session = defaultdict(dict)
    for turn in ledger.turns.values():
        by_session[turn.session_id][turn.prompt_id] = turn
    for sid, want in by_session.items():
        got = {t["key"]: t for t in queries.turns(cur, sid)}
        assert set(got) == set(want), sid
        for key, turn in want.items():
            t = got[key]
            assert (t["api_requests"], t["tool_errors"], t["has_spans"]) == (
                turn.api_requests,
                turn.tool_errors,
                True,
            )
            assert t["cost_usd"] == pytest.approx(turn.cost_nusd / NS, abs=1e-9)
            roots, source = queries.span_tree(cur, sid, key)
            assert source == "spans"
            assert [r.kind for r in roots] == ["interaction"]
            assert sum(1 for _ in roots[0].walk()) == turn.spans
            tools = [n.attributes["tool_name"] for n in roots[0].walk() if n.kind == "tool"]
            assert Counter(tools) == Counter(turn.tools)


def test_the_subagent_nests_under_its_task_tool(demo, cur):
    _, ledger = demo
    assert ledger.subagents
    for sub in ledger.subagents.values():
        roots, _ = queries.span_tree(cur, sub.session_id, sub.prompt_id)
        [task] = [n for n in roots[0].walk() if n.key == f"{sub.trace_id}:{sub.tool_span_id}"]
        assert task.attributes["tool_name"] == "Task"
        agent = [c for c in task.children if c.attributes.get("agent_id") == sub.agent_id]
        assert Counter(c.kind for c in agent) == {
            "llm_request": sub.llm_requests,
            "tool": sub.tools,
        }
        assert sub.llm_requests >= 3
        assert all(
            f"[agent {sub.agent_id[:12]}]" in c.label for c in agent if c.kind == "llm_request"
        )
        for c in agent:
            assert c.attributes["parent_agent_id"] == sub.session_id
        # the main agent's requests stay directly under the interaction
        main = [c for c in roots[0].children if c.kind == "llm_request"]
        assert main and not any(c.attributes.get("agent_id") for c in main)


def test_the_continued_session_has_two_processes(demo, cur):
    _, ledger = demo
    [sid] = [sid for sid, s in ledger.sessions.items() if len(s.processes) == 2]
    prompt_seqs = [
        r[0]
        for r in cur.execute(
            "SELECT sequence FROM events WHERE session_id = ? AND name = 'claude_code.user_prompt' "
            "ORDER BY time_ns",
            [sid],
        ).fetchall()
    ]
    assert prompt_seqs.count(4) == 2  # each process's first prompt follows 4 startup events
    assert prompt_seqs != sorted(prompt_seqs)  # event.sequence restarted
    assert len(prompt_seqs) == ledger.sessions[sid].prompts
    first_interactions = cur.execute(
        "SELECT count(*) FROM spans WHERE session_id = ? AND name = 'claude_code.interaction' "
        "AND json_extract_string(attributes, '$.\"interaction.sequence\"') = '1'",
        [sid],
    ).fetchone()[0]
    assert first_interactions == 2
    # as in Claude Code 2.1.328, the continuing process counts itself under a transient id
    starts = cur.execute(
        "SELECT session_id, json_extract_string(attributes, '$.start_type') FROM metric_points "
        "WHERE name = 'claude_code.session.count' ORDER BY time_ns"
    ).fetchall()
    continued = [s for s, kind in starts if kind == "continue"]
    assert len(continued) == 1 and continued[0] != sid
    assert ledger.sessions[continued[0]].prompts == 0


def test_retries_and_failures(demo, cur):
    _, ledger = demo
    assert ledger.retried_requests >= 1
    retried = cur.execute(
        "SELECT count(*), min(json_array_length(events)) FROM spans "
        "WHERE name = 'claude_code.llm_request' AND attempt = 2"
    ).fetchone()
    assert retried == (ledger.retried_requests, 2)
    failed = cur.execute(
        "SELECT count(*) FROM spans WHERE name = 'claude_code.tool.execution' AND status_code = 2"
    ).fetchone()[0]
    assert failed == sum(t.errors for t in ledger.tools.values())
    bash = cur.execute(
        "SELECT count(*) FROM events WHERE name = 'claude_code.tool_result' AND tool_name = 'Bash' "
        "AND success = false AND json_extract_string(attributes, '$.error_type') = 'ShellError'"
    ).fetchone()[0]
    assert bash == ledger.tools["Bash"].errors


def test_every_record_arrived_once(demo, cur):
    _, ledger = demo
    spans = dict(cur.execute("SELECT name, count(*) FROM spans GROUP BY name").fetchall())
    events = dict(cur.execute("SELECT name, count(*) FROM events GROUP BY name").fetchall())
    points = dict(cur.execute("SELECT name, count(*) FROM metric_points GROUP BY name").fetchall())
    assert spans == dict(ledger.spans)
    assert events == dict(ledger.events)
    assert points == dict(ledger.metric_points)
    assert ledger.failed_exports == 0


async def test_live_run_against_a_server():
    """The paced path: a couple of real seconds at high speed, then everything generated."""
    async with running_server() as server:
        sender = DemoSender(f"127.0.0.1:{server.rx.grpc_port}", seed=3, speed=60.0)
        ledger = await sender.run(duration=1.5, tick=0.2)
        server.settle()
        cur = server.store.cursor()
        try:
            assert verify(ledger, cur) == []
            assert sum(s.prompts for s in ledger.sessions.values()) >= 4
            assert len(ledger.sessions) >= 4
        finally:
            cur.close()


def test_stop_from_another_thread():
    async def main():
        async with running_server() as server:
            sender = DemoSender(f"127.0.0.1:{server.rx.grpc_port}", seed=5, speed=30.0)
            task = asyncio.create_task(sender.run(tick=0.1, drain=False))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(sender.stop)
            await asyncio.wait_for(task, 5)
            assert sender.ledger.exports > 0

    asyncio.run(main())


async def test_stop_cuts_retries_short():
    """With nothing listening every export is retried; stop() still ends the run promptly."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = DemoSender(f"127.0.0.1:{port}", seed=5, speed=60.0, history_s=60)
    task = asyncio.create_task(sender.run(tick=0.1, drain=False))
    await asyncio.sleep(0.5)
    sender.stop()
    await asyncio.wait_for(task, 1.5)
    assert sender.ledger.exports == 0
    assert sender.ledger.failed_exports > 0
    assert sender.ledger.sessions == {}


def claude_top(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "claude_top.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_the_sender_does_not_import_textual():
    code = "import sys, claude_top.commands.demo; sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0


def test_cli_headless_demo(tmp_path):
    db = tmp_path / "demo.duckdb"
    proc = claude_top(
        "demo", "--headless", "--duration", "1.5", "--speed", "60", "--seed", "4", "--db", str(db)
    )
    assert proc.returncode == 0, proc.stderr
    assert "OTLP/gRPC on 127.0.0.1:" in proc.stdout
    assert "sent and acknowledged: " in proc.stdout
    assert f"stored in {db}: the same sessions, costs, models and tool calls" in proc.stdout
    store = Store.open(db, read_only=True)
    try:
        n = store.cursor().execute("SELECT count(DISTINCT session_id) FROM events").fetchone()[0]
    finally:
        store.close()
    assert f"sent and acknowledged: {n} sessions" in proc.stdout
    # a second run into the same database checks its own sessions
    again = claude_top("demo", "--headless", "--duration", "1", "--speed", "60", "--db", str(db))
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"stored in {db}: the same sessions" in again.stdout


def test_cli_demo_never_sends_to_a_taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = claude_top("demo", "--grpc-port", str(port), timeout=30)
    assert proc.returncode == 2
    assert f"port {port} (OTLP/gRPC) is already in use" in proc.stderr
    assert "claude-top demo: sent" not in proc.stdout  # the sender never started
