"""An export delivered twice (an exporter retrying after a timeout) counts once; distinct
events that look alike (the `continued` fixture) are never merged."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from google.protobuf import json_format
from receiver_harness import JSON, PATHS, PROTOBUF, REQUESTS, running_server

from truth import GRPC_FIXTURES, Truth, grpc_requests, http_requests


def expected_counts(t: Truth) -> dict[str, int]:
    return {"spans": len(t.spans), "events": len(t.events), "metric_points": t.data_points}


def totals(server) -> dict[str, float]:
    cost_events, cost_metric, tokens_metric = server.query(
        "SELECT (SELECT sum(cost_usd) FROM events WHERE name = 'claude_code.api_request'), "
        "(SELECT sum(increment) FROM metric_points WHERE name = 'claude_code.cost.usage'), "
        "(SELECT sum(increment) FROM metric_points WHERE name = 'claude_code.token.usage')"
    )[0]
    return {"events": cost_events, "metric": cost_metric, "tokens": tokens_metric}


def assert_totals(server, t: Truth) -> None:
    got = totals(server)
    assert got["events"] == pytest.approx(t.cost(), abs=1e-9)
    assert got["metric"] == pytest.approx(t.metric_sum("claude_code.cost.usage"), abs=1e-9)
    assert got["tokens"] == t.metric_sum("claude_code.token.usage")


@pytest.mark.parametrize("name", GRPC_FIXTURES)
async def test_grpc_export_sent_twice_counts_once(name):
    t = Truth(name)
    async with running_server() as server:
        await server.replay(name)
        await server.replay(name)
        assert server.counts() == expected_counts(t)
        assert_totals(server, t)


async def test_grpc_duplicates_in_one_group_commit_count_once():
    """The copies arrive together, so the writer gathers them into one transaction."""
    t = Truth("basic.grpc")
    async with running_server() as server:
        calls = [server.export(s, b) for s, b in grpc_requests("basic.grpc") for _ in range(3)]
        assert await asyncio.gather(*calls) == [b""] * len(calls)
        assert server.counts() == expected_counts(t)
        assert_totals(server, t)


@pytest.mark.parametrize("name", ["basic.http-json", "basic.http-protobuf"])
async def test_http_export_sent_twice_counts_once(name):
    t = Truth(name)
    async with running_server() as server:
        await server.replay(name)
        await server.replay(name)
        assert server.counts() == expected_counts(t)
        assert_totals(server, t)


async def test_http_duplicates_sent_concurrently_count_once():
    t = Truth("basic.http-protobuf")
    async with running_server() as server:
        calls = [
            server.post(d["path"], d["body"], d["ctype"])
            for d in http_requests("basic.http-protobuf")
            for _ in range(3)
        ]
        assert {r.status for r in await asyncio.gather(*calls)} == {200}
        assert server.counts() == expected_counts(t)
        assert_totals(server, t)


def _hex_ids(node) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                node[k] = base64.b64decode(v).hex()
            else:
                _hex_ids(v)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


def otlp_json(signal: str, body: bytes) -> bytes:
    """The OTLP/JSON form of a protobuf export (hex ids), built with protobuf only."""
    msg = REQUESTS[signal]()
    msg.ParseFromString(body)
    doc = json_format.MessageToDict(msg)
    _hex_ids(doc)
    return json.dumps(doc).encode()


async def test_same_export_over_grpc_http_protobuf_and_json_counts_once():
    t = Truth("errors.grpc")
    async with running_server() as server:
        for signal, body in grpc_requests("errors.grpc"):
            assert await server.export(signal, body) == b""
            reply = await server.post(PATHS[signal], body, PROTOBUF)
            assert reply.status == 200
            reply = await server.post(PATHS[signal], otlp_json(signal, body), JSON)
            assert (reply.status, reply.body) == (200, b"{}")
        assert server.counts() == expected_counts(t)
        assert_totals(server, t)


async def test_continued_replayed_twice_keeps_both_processes_once():
    t = Truth("continued.grpc")
    async with running_server() as server:
        await server.replay("continued.grpc")
        await server.replay("continued.grpc")
        got = dict(server.query("SELECT name, count(*) FROM events GROUP BY 1"))
        assert got == t.events_by_name()
        assert got["claude_code.api_request"] == 6
        sequences = server.query(
            "SELECT sequence, count(*) FROM events WHERE name = 'claude_code.api_request' "
            "GROUP BY 1 ORDER BY 1"
        )
        want: dict[int, int] = {}
        for e in t.api_requests():
            want[e["event.sequence"]] = want.get(e["event.sequence"], 0) + 1
        assert dict(sequences) == want
        assert max(want.values()) == 2  # the same sequence number from both processes
