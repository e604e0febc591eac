"""Transcripts and telemetry of the same runs, imported in every order, give each session
exactly the OTLP truth: cost to the micro-dollar, every token count, API requests, tool calls
and errors, per session and per model. Expected values come from the capture files
(`truth.Truth`), never from claude-top code; the rollups equal a rebuild after each step."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest
from test_rollup import rebuilt, rollup_rows

from claude_top.core import pricing
from claude_top.core.queries import Filter, models, sessions, turns
from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from claude_top.core.store.importer import TranscriptImporter
from transcript_cases import SUBAGENT_ID, multi_block, with_subagent
from truth import FIXTURES, TRANSCRIPT_SETS, TranscriptTruth, Truth, grpc_requests

ORDERS = ("transcripts", "otlp-then-transcripts", "transcripts-then-otlp")
SHIPPED = pricing.parse(pricing.SHIPPED.read_text(), "shipped")


def load(order: str, otlp: str, projects) -> Store:
    """A store holding a run's telemetry and transcripts, written in `order`."""
    store = Store.open(":memory:")
    importer = TranscriptImporter(store, prices=SHIPPED)

    def telemetry():
        for signal, body in grpc_requests(otlp):
            write_rows(store, [decode_protobuf(signal, body)])
            check_rollups(store)

    if order == "otlp-then-transcripts":
        telemetry()
    if order != "otlp":
        importer.run([FIXTURES / projects])
        check_rollups(store)
    if order == "transcripts-then-otlp":
        telemetry()
    return store


def check_rollups(store: Store) -> None:
    cur = store.cursor()
    assert rollup_rows(cur) == rebuilt(cur)


def session_truth(truth: Truth, sid: str) -> dict:
    results = [e for e in truth.tool_results() if e["session.id"] == sid]
    return {
        "api_requests": len(truth.api_requests(sid)),
        "cost_usd": round(truth.cost(sid), 6),
        "input_tokens": truth.tokens("input", sid),
        "output_tokens": truth.tokens("output", sid),
        "cache_read_tokens": truth.tokens("cache_read", sid),
        "cache_creation_tokens": truth.tokens("cache_creation", sid),
        "tool_calls": len(results),
        "tool_errors": sum(1 for e in results if str(e["success"]).lower() == "false"),
        "models": ", ".join(sorted({e["model"] for e in truth.api_requests(sid)})),
    }


def session_got(row: dict) -> dict:
    got = {k: row[k] for k in ("api_requests", "input_tokens", "output_tokens", "tool_calls")}
    got.update(
        cost_usd=round(row["cost_usd"], 6),
        cache_read_tokens=row["cache_read_tokens"],
        cache_creation_tokens=row["cache_creation_tokens"],
        tool_errors=row["tool_errors"],
        models=row["models"],
    )
    return got


def assert_otlp_truth(store: Store, otlp: str, order: str) -> dict[str, dict]:
    truth = Truth(otlp)
    cur = store.cursor()
    rows = {r["session_id"]: r for r in sessions(cur, Filter())}
    assert set(rows) >= truth.working_sessions()
    for sid in truth.working_sessions():
        assert session_got(rows[sid]) == session_truth(truth, sid), (sid, order)
        assert rows[sid]["source"] == ("transcript" if order == "transcripts" else "both")
        assert rows[sid]["partial"] is False
        by_prompt = Counter(e["prompt.id"] for e in truth.api_requests(sid))
        got = {t["prompt_id"]: t["api_requests"] for t in turns(cur, sid)}
        assert {p: n for p, n in got.items() if n} == dict(by_prompt)
    per_model = defaultdict(lambda: [0.0, 0, 0])
    for e in truth.api_requests():
        m = per_model[e["model"]]
        m[0] += float(e["cost_usd"])
        m[1] += 1
        m[2] += int(e["input_tokens"])
    got_models = {m["model"]: [round(m["cost_usd"], 6), m["api_requests"], m["input_tokens"]]
                  for m in models(cur, Filter())}  # fmt: skip
    assert got_models == {k: [round(v[0], 6), v[1], v[2]] for k, v in per_model.items()}
    return rows


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("name", sorted(TRANSCRIPT_SETS))
def test_every_import_order_gives_each_session_the_otlp_truth(name, order):
    otlp, projects = TRANSCRIPT_SETS[name]
    store = load(order, otlp, projects)
    rows = assert_otlp_truth(store, otlp, order)
    cur = store.cursor()
    sources = Counter(
        cur.execute(
            "SELECT source || '/' || coalesce(cost_source, '-') FROM events "
            "WHERE kind = 'api_request'"
        ).fetchall()
    )
    n = len(Truth(otlp).api_requests())
    if order == "transcripts":  # every cost from the cost-state lines, none estimated
        assert sources == {("transcript/transcript",): n}
        assert all(rows[s]["cost_sources"] == "transcript" for s in Truth(otlp).working_sessions())
    else:  # telemetry has every request: nothing derived, nothing counted twice
        assert sources == {("otel/reported",): n}
    store.close()


def test_the_fixture_transcripts_hold_the_same_requests_as_their_telemetry():
    """The join key holds one to one in every set (what the orders test stands on)."""
    for otlp, projects in TRANSCRIPT_SETS.values():
        t = TranscriptTruth(projects)
        o = {e["request_id"]: e for e in Truth(otlp).api_requests()}
        assert set(t.requests) == set(o)
        for rid, r in t.requests.items():
            assert (r["input"], r["output"], r["cache_read"], r["cache_creation"]) == tuple(
                int(o[rid][f"{k}_tokens"])
                for k in ("input", "output", "cache_read", "cache_creation")
            )
        for sid, total in t.cost_state.items():
            assert round(total, 9) == round(Truth(otlp).cost(sid), 9)


DERIVED = {"multi-block": multi_block, "subagent": with_subagent}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("case", sorted(DERIVED))
@pytest.mark.parametrize("name", ["basic", "limits"])
def test_multi_block_messages_and_subagents_count_once_in_every_order(tmp_path, name, case, order):
    otlp, projects = TRANSCRIPT_SETS[name]
    tree = DERIVED[case](projects, tmp_path)
    store = load(order, otlp, tree)
    assert_otlp_truth(store, otlp, order)
    if case == "subagent" and order == "transcripts":
        moved = TranscriptTruth(tree)
        (rid,) = [k for k, r in moved.requests.items() if r["agent_id"] == SUBAGENT_ID]
        attrs, sid = (
            store.cursor()
            .execute("SELECT attributes, session_id FROM events WHERE request_id = ?", [rid])
            .fetchone()
        )
        assert json.loads(attrs)["agent_id"] == SUBAGENT_ID
        assert sid == moved.requests[rid]["session"]
    store.close()


def test_a_request_read_again_from_another_line_or_file_counts_once(tmp_path):
    """Reading the same transcripts twice, and a copy of them at another path, adds nothing."""
    otlp, projects = TRANSCRIPT_SETS["continued"]
    store = Store.open(":memory:")
    importer = TranscriptImporter(store, prices=SHIPPED)
    importer.run([FIXTURES / projects])
    first = rollup_rows(store.cursor())
    importer.run([FIXTURES / projects])
    importer.run([multi_block(projects, tmp_path)])
    assert rollup_rows(store.cursor()) == first
    check_rollups(store)
    assert_otlp_truth(store, otlp, "transcripts")
    store.close()
