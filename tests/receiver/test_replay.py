"""Replay every captured fixture over real gRPC and HTTP, then check the store against the truth.

The gRPC captures go over a grpc.aio channel, the HTTP captures (JSON and protobuf) over
aiohttp, all to one receiver on ephemeral ports. Every expected number comes from the
fixtures' JSON (`truth.Truth`), never from claude-top code.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from receiver_harness import running_server

from claude_top.core.store.database import Store
from truth import GRPC_FIXTURES, HTTP_FIXTURES, Truth, grpc_requests, http_requests

ALL = GRPC_FIXTURES + HTTP_FIXTURES
TOKEN_KINDS = ("input", "output", "cache_read", "cache_creation")
METRIC_TOKEN_TYPE = {
    "input": "input",
    "output": "output",
    "cache_read": "cacheRead",
    "cache_creation": "cacheCreation",
}


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth(*ALL)


@pytest.fixture(scope="module")
def replayed():
    """A store that received every fixture through the running receivers."""
    store = Store.open(":memory:")

    async def replay_all() -> None:
        async with running_server(store) as server:
            for name in ALL:
                await server.replay(name)

    asyncio.run(replay_all())
    yield store
    store.close()


def q(store: Store, sql: str, *params) -> list[tuple]:
    cur = store.cursor()
    try:
        return cur.execute(sql, list(params)).fetchall()
    finally:
        cur.close()


def test_every_fixture_has_its_own_session(truth):
    # the per-session assertions below tell the transports apart only if this holds
    per_fixture = [Truth(name).sessions() for name in ALL]
    assert sum(len(s) for s in per_fixture) == len(truth.sessions()) == 6


def test_cost_per_session(replayed, truth):
    got = dict(
        q(
            replayed,
            "SELECT session_id, sum(cost_usd) FROM events "
            "WHERE name = 'claude_code.api_request' GROUP BY 1",
        )
    )
    want = {s: truth.cost(session=s) for s in truth.sessions() if truth.api_requests(s)}
    assert got.keys() == want.keys()
    for session, cost in want.items():
        assert got[session] == pytest.approx(cost, abs=1e-9), session


def test_cost_per_model(replayed, truth):
    got = dict(
        q(
            replayed,
            "SELECT model, sum(cost_usd) FROM events "
            "WHERE name = 'claude_code.api_request' GROUP BY 1",
        )
    )
    models = {e["model"] for e in truth.api_requests()}
    assert (
        got.keys()
        == models
        == {
            "claude-sonnet-4-5",
            "claude-haiku-4-5",
            "claude-opus-5-5",
        }
    )
    for model in models:
        assert got[model] == pytest.approx(truth.cost(model=model), abs=1e-9), model


def test_api_request_counts_per_session(replayed, truth):
    got = dict(
        q(
            replayed,
            "SELECT session_id, count(*) FROM events "
            "WHERE name = 'claude_code.api_request' GROUP BY 1",
        )
    )
    want = Counter(e["session.id"] for e in truth.api_requests())
    assert got == dict(want)
    assert sum(got.values()) == 19


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_tokens_by_kind_per_session_and_model(replayed, truth, kind):
    rows = q(
        replayed,
        f"SELECT session_id, model, sum({kind}_tokens)::BIGINT FROM events "
        "WHERE name = 'claude_code.api_request' GROUP BY 1, 2",
    )
    want = {
        (e["session.id"], e["model"]): truth.tokens(kind, session=e["session.id"], model=e["model"])
        for e in truth.api_requests()
    }
    assert {(s, m): n for s, m, n in rows} == want


def test_tool_calls_per_tool(replayed, truth):
    got = dict(
        q(
            replayed,
            "SELECT tool_name, count(*) FROM events "
            "WHERE name = 'claude_code.tool_result' GROUP BY 1",
        )
    )
    assert got == truth.tool_calls()
    assert got == {"Bash": 7, "Read": 3, "Write": 1, "Glob": 2}


def test_tool_spans_per_tool(replayed, truth):
    got = dict(
        q(
            replayed,
            "SELECT tool_name, count(*) FROM spans WHERE name = 'claude_code.tool' GROUP BY 1",
        )
    )
    want = Counter(s["tool_name"] for s in truth.spans if s["_name"] == "claude_code.tool")
    assert got == dict(want)


def test_tool_failures(replayed, truth):
    got = q(
        replayed,
        "SELECT count(*) FROM events WHERE name = 'claude_code.tool_result' AND NOT success",
    )[0][0]
    want = sum(1 for e in truth.tool_results() if str(e["success"]).lower() == "false")
    assert got == want == 1


def test_span_ids_and_parents_are_exact(replayed, truth):
    got = q(replayed, "SELECT trace_id, span_id, coalesce(parent_span_id, ''), name FROM spans")
    want = [(s["_trace_id"], s["_span_id"], s["_parent"], s["_name"]) for s in truth.spans]
    assert len(got) == len(want) == 64
    assert Counter(got) == Counter(want)


def test_every_non_root_span_has_its_parent_in_the_same_trace(replayed, truth):
    non_root, orphans = q(
        replayed,
        "SELECT count(*), count(*) FILTER (WHERE p.span_id IS NULL) FROM spans c "
        "LEFT JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id "
        "WHERE c.parent_span_id IS NOT NULL",
    )[0]
    assert non_root == sum(1 for s in truth.spans if s["_parent"])
    assert orphans == 0


def test_span_count_per_session(replayed, truth):
    got = dict(q(replayed, "SELECT session_id, count(*) FROM spans GROUP BY 1"))
    assert got == dict(Counter(s["session.id"] for s in truth.spans))


def test_error_spans(replayed, truth):
    got = q(replayed, "SELECT name FROM spans WHERE status_code = 2")
    want = [s["_name"] for s in truth.spans if s["_status"] == "STATUS_CODE_ERROR"]
    assert sorted(r[0] for r in got) == sorted(want)
    assert want


def test_events_per_name(replayed, truth):
    got = dict(q(replayed, "SELECT name, count(*) FROM events GROUP BY 1"))
    assert got == truth.events_by_name()
    assert sum(got.values()) == len(truth.events) == 81


def test_events_per_session_and_name(replayed, truth):
    rows = q(replayed, "SELECT session_id, name, count(*) FROM events GROUP BY 1, 2")
    got = {(s, n): c for s, n, c in rows}
    want = Counter((e["session.id"], "claude_code." + e["event.name"]) for e in truth.events)
    assert got == dict(want)


def test_every_metric_point_is_stored(replayed, truth):
    assert q(replayed, "SELECT count(*) FROM metric_points")[0][0] == truth.data_points == 50


def test_cost_metric_equals_api_request_cost(replayed, truth):
    got = dict(
        q(
            replayed,
            "SELECT session_id, sum(increment) FROM metric_points "
            "WHERE name = 'claude_code.cost.usage' GROUP BY 1",
        )
    )
    for session in truth.sessions():
        want = truth.cost(session=session)
        assert truth.metric_sum("claude_code.cost.usage", **{"session.id": session}) == (
            pytest.approx(want, abs=1e-9)
        )
        assert got.get(session, 0.0) == pytest.approx(want, abs=1e-9), session
    assert sum(got.values()) == pytest.approx(truth.cost(), abs=1e-9)


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_token_metric_equals_api_request_tokens(replayed, truth, kind):
    got = dict(
        q(
            replayed,
            "SELECT session_id, sum(increment) FROM metric_points "
            "WHERE name = 'claude_code.token.usage' AND type = ? GROUP BY 1",
            METRIC_TOKEN_TYPE[kind],
        )
    )
    for session in truth.sessions():
        assert got.get(session, 0) == truth.tokens(kind, session=session), session


def test_continued_keeps_both_processes_events(replayed):
    # event.sequence restarts at 0 in the second process of the same session
    continued = Truth("continued.grpc")
    for session in continued.sessions():
        got = q(
            replayed,
            "SELECT sequence FROM events WHERE session_id = ? ORDER BY sequence",
            session,
        )
        want = sorted(e["event.sequence"] for e in continued.events if e["session.id"] == session)
        assert [r[0] for r in got] == want
    repeated = q(
        replayed,
        "SELECT count(*) FROM (SELECT session_id, sequence FROM events "
        "WHERE session_id IN (SELECT unnest(?)) GROUP BY ALL HAVING count(*) > 1)",
        sorted(continued.sessions()),
    )[0][0]
    assert repeated > 0
    got = dict(
        q(
            replayed,
            "SELECT name, count(*) FROM events WHERE session_id IN (SELECT unnest(?)) GROUP BY 1",
            sorted(continued.sessions()),
        )
    )
    assert got == continued.events_by_name()


async def test_grpc_ack_means_committed():
    """When an Export call returns, its records are committed: a fresh cursor sees them."""
    t = Truth("basic.grpc")
    sizes = {"traces": len(t.spans), "logs": len(t.events), "metrics": t.data_points}
    async with running_server() as server:
        expected = dict.fromkeys(sizes, 0)
        for signal, body in grpc_requests("basic.grpc"):
            assert await server.export(signal, body) == b""
            expected[signal] = sizes[signal]
            assert server.durable_records() == expected, signal
        assert server.counts() == {
            "spans": sizes["traces"],
            "events": sizes["logs"],
            "metric_points": sizes["metrics"],
        }


async def test_http_ack_means_committed():
    t = Truth("basic.http-json")
    sizes = {"traces": len(t.spans), "logs": len(t.events), "metrics": t.data_points}
    async with running_server() as server:
        expected = dict.fromkeys(sizes, 0)
        for d in http_requests("basic.http-json"):
            reply = await server.post(d["path"], d["body"], d["ctype"])
            assert (reply.status, reply.body) == (200, b"{}")
            signal = d["path"].rsplit("/", 1)[1]
            expected[signal] = sizes[signal]
            assert server.durable_records() == expected, signal
