"""OTLP/HTTP specifics: `POST /` tells the signal from the payload, gzip and chunked bodies,
and the success responses in the request's format."""

from __future__ import annotations

import gzip
import json

import pytest
from receiver_harness import JSON, PROTOBUF, RESPONSES, SIGNAL_TABLE, running_server

from truth import GRPC_FIXTURES, Truth, grpc_requests, http_requests

SIGNALS = ("traces", "logs", "metrics")


def records(t: Truth, signal: str) -> int:
    return {"traces": len(t.spans), "logs": len(t.events), "metrics": t.data_points}[signal]


def only(signal: str, n: int) -> dict[str, int]:
    return {table: n if s == signal else 0 for s, table in SIGNAL_TABLE.items()}


def protobuf_body(signal: str) -> bytes:
    """basic.grpc's request of that signal."""
    return dict(grpc_requests("basic.grpc"))[signal]


def json_body(signal: str) -> bytes:
    """basic.http-json's request of that signal (hex ids, ints as numbers)."""
    (d,) = (d for d in http_requests("basic.http-json") if d["path"] == f"/v1/{signal}")
    return d["body"]


async def chunks(body: bytes, size: int = 997):
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize("signal", SIGNALS)
async def test_post_root_protobuf_tells_the_signal(signal):
    async with running_server() as server:
        reply = await server.post("/", protobuf_body(signal), PROTOBUF)
        assert reply.status == 200, reply.body
        assert reply.headers["Content-Type"] == PROTOBUF
        assert reply.body == b""  # an empty Export*ServiceResponse
        assert server.counts() == only(signal, records(Truth("basic.grpc"), signal))


@pytest.mark.parametrize("signal", SIGNALS)
async def test_post_root_json_tells_the_signal(signal):
    async with running_server() as server:
        reply = await server.post("/", json_body(signal), JSON)
        assert reply.status == 200, reply.body
        assert reply.headers["Content-Type"].startswith(JSON)
        assert json.loads(reply.body) == {}
        want = records(Truth("basic.http-json"), signal)
        assert server.counts() == only(signal, want)


async def test_post_root_stores_the_same_rows_as_the_signal_path():
    t = Truth("basic.http-json")
    async with running_server() as server:
        for signal in SIGNALS:
            assert (await server.post("/", json_body(signal), JSON)).status == 200
        ids = server.query("SELECT trace_id, span_id FROM spans")
        assert sorted(ids) == sorted((s["_trace_id"], s["_span_id"]) for s in t.spans)
        names = dict(server.query("SELECT name, count(*) FROM events GROUP BY 1"))
        assert names == t.events_by_name()
        (cost,) = server.query(
            "SELECT sum(increment) FROM metric_points WHERE name = 'claude_code.cost.usage'"
        )[0]
        assert cost == pytest.approx(t.cost(), abs=1e-9)


async def test_post_root_json_with_two_signals_is_rejected():
    doc = {"resourceSpans": [], "resourceLogs": []}
    async with running_server() as server:
        reply = await server.post("/", json.dumps(doc).encode(), JSON)
        assert reply.status == 400
        assert "signal" in json.loads(reply.body)["message"]


@pytest.mark.parametrize("fmt", ["protobuf", "json"])
@pytest.mark.parametrize("signal", SIGNALS)
async def test_gzip_body(signal, fmt):
    body = protobuf_body(signal) if fmt == "protobuf" else json_body(signal)
    ctype = PROTOBUF if fmt == "protobuf" else JSON
    fixture = "basic.grpc" if fmt == "protobuf" else "basic.http-json"
    async with running_server() as server:
        reply = await server.post(
            f"/v1/{signal}", gzip.compress(body), ctype, {"Content-Encoding": "gzip"}
        )
        assert reply.status == 200, reply.body
        assert server.counts() == only(signal, records(Truth(fixture), signal))


@pytest.mark.parametrize("signal", SIGNALS)
async def test_chunked_body(signal):
    async with running_server() as server:
        reply = await server.post(f"/v1/{signal}", chunks(protobuf_body(signal)), PROTOBUF)
        assert reply.status == 200, reply.body
        assert server.counts() == only(signal, records(Truth("basic.grpc"), signal))


async def test_chunked_gzip_json_to_root():
    body = gzip.compress(json_body("logs"))
    async with running_server() as server:
        reply = await server.post("/", chunks(body, 101), JSON, {"Content-Encoding": "gzip"})
        assert reply.status == 200, reply.body
        assert server.counts() == only("logs", len(Truth("basic.http-json").events))


@pytest.mark.parametrize("signal", SIGNALS)
async def test_protobuf_success_response_parses(signal):
    async with running_server() as server:
        reply = await server.post(f"/v1/{signal}", protobuf_body(signal), PROTOBUF)
        assert reply.status == 200
        response = RESPONSES[signal]()
        response.ParseFromString(reply.body)
        assert not response.HasField("partial_success")


async def test_json_content_type_with_charset():
    async with running_server() as server:
        reply = await server.post("/v1/logs", json_body("logs"), "application/json; charset=utf-8")
        assert reply.status == 200, reply.body
        assert server.counts()["events"] == len(Truth("basic.http-json").events)


async def test_post_root_protobuf_every_grpc_fixture_request():
    t = Truth(*GRPC_FIXTURES)
    async with running_server() as server:
        for name in GRPC_FIXTURES:
            for _signal, body in grpc_requests(name):
                reply = await server.post("/", body, PROTOBUF)
                assert reply.status == 200, reply.body
        assert server.counts() == {
            "spans": len(t.spans),
            "events": len(t.events),
            "metric_points": t.data_points,
        }
