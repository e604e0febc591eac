"""Bad input gets the right status and a message; nothing of it is stored, and the server
answers the next good request (over the same HTTP connection)."""

from __future__ import annotations

import functools
import gzip
import json
import tracemalloc
import zlib

import grpc
import pytest
from receiver_harness import JSON, PROTOBUF, REQUESTS, RESPONSES, running_server

from truth import Truth, grpc_requests, http_requests

BASIC = dict(grpc_requests("basic.grpc"))
BASIC_JSON = {d["path"]: d["body"] for d in http_requests("basic.http-json")}
TRUTH = Truth("basic.grpc")
JSON_TRUTH = Truth("basic.http-json")
GOOD_LOGS = {"spans": 0, "events": len(TRUTH.events), "metric_points": 0}
MAX_BODY = 64 * 1024


@functools.cache
def gzip_bomb(megabytes: int) -> bytes:
    """`megabytes` MiB of zeros, gzip-compressed a MiB at a time (about 200 KB for 200 MiB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    parts = [z.compress(zeros) for _ in range(megabytes)]
    parts.append(z.flush())
    return b"".join(parts)


def truncated(body: bytes) -> bytes:
    return body[: len(body) // 2]


def span_json(trace_id: str, span_id: str) -> bytes:
    doc = {
        "resourceSpans": [
            {"scopeSpans": [{"spans": [{"traceId": trace_id, "spanId": span_id, "name": "x"}]}]}
        ]
    }
    return json.dumps(doc).encode()


# id, path, body, content type, extra headers, status, words the message must contain
HTTP_CASES = [
    ("malformed-protobuf", "/v1/traces", b"\xff\xff\xff\xff", PROTOBUF, None, 400, "malformed"),
    ("truncated-protobuf", "/v1/traces", truncated(BASIC["traces"]), PROTOBUF, None, 400, "traces"),
    ("garbage-to-root", "/", b"\x0a\xff\xff\xff\x0f", PROTOBUF, None, 400, "OTLP"),
    ("bad-json", "/v1/logs", b'{"resourceLogs": [', JSON, None, 400, "JSON"),
    ("json-array", "/v1/logs", b"[1, 2]", JSON, None, 400, "object"),
    ("json-not-utf8", "/v1/logs", b"\xff\xfe{}", JSON, None, 400, "JSON"),
    (
        "json-non-hex-trace-id",
        "/v1/traces",
        span_json("not-hex-at-all-zz", "0102030405060708"),
        JSON,
        None,
        400,
        "traceId",
    ),
    (
        "json-bad-int",
        "/v1/traces",
        BASIC_JSON["/v1/traces"].replace(b'"startTimeUnixNano":"', b'"startTimeUnixNano":"x', 1),
        JSON,
        None,
        400,
        "startTimeUnixNano",
    ),
    (
        "json-bad-base64",
        "/v1/logs",
        BASIC_JSON["/v1/logs"].replace(
            b'"body":{"stringValue":', b'"body":{"bytesValue":"a","x":', 1
        ),
        JSON,
        None,
        400,
        "logRecords[0].body.bytesValue",
    ),
    (  # json_format took a string for an empty message
        "json-string-for-object",
        "/v1/metrics",
        BASIC_JSON["/v1/metrics"].replace(b'"scope":{"name":', b'"scope":"x","y":{"name":', 1),
        JSON,
        None,
        400,
        "scopeMetrics[0].scope: expected an object",
    ),
    (
        "json-number-for-string",
        "/v1/traces",
        BASIC_JSON["/v1/traces"].replace(b'"name":"claude_code.', b'"name":1,"x":"', 1),
        JSON,
        None,
        400,
        "spans[0].name",
    ),
    ("text-plain", "/v1/traces", BASIC["traces"], "text/plain", None, 415, "content type"),
    ("no-content-type", "/v1/traces", BASIC["traces"], None, None, 415, "content type"),
    ("form", "/v1/logs", b"a=b", "application/x-www-form-urlencoded", None, 415, "content type"),
    ("too-big", "/v1/traces", bytes(MAX_BODY + 1), PROTOBUF, None, 413, "limit"),
    ("too-big-json", "/v1/logs", b" " * (MAX_BODY + 1), JSON, None, 413, "limit"),
    (
        "too-big-after-gzip",
        "/v1/traces",
        gzip.compress(bytes(MAX_BODY + 1)),
        PROTOBUF,
        {"Content-Encoding": "gzip"},
        413,
        "limit",
    ),
    (
        "not-gzip",
        "/v1/traces",
        BASIC["traces"],
        PROTOBUF,
        {"Content-Encoding": "gzip"},
        400,
        "gzip",
    ),
]


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def parse_rpc_status(buf: bytes) -> tuple[int, str]:
    """google.rpc.Status from protobuf bytes: field 1 code (varint), field 2 message."""
    code, message, i = 0, "", 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        if tag == 0x08:
            code, i = _varint(buf, i)
        elif tag == 0x12:
            n, i = _varint(buf, i)
            message, i = buf[i : i + n].decode(), i + n
        else:
            raise AssertionError(f"unexpected field tag {tag} in a google.rpc.Status")
    return code, message


def status_message(ctype: str | None, body: bytes) -> tuple[int, str]:
    """The google.rpc.Status of an error reply (JSON or protobuf), as (code, message)."""
    if ctype == PROTOBUF:
        return parse_rpc_status(body)
    doc = json.loads(body)
    return doc["code"], doc["message"]


@pytest.mark.parametrize(
    ("path", "body", "ctype", "headers", "status", "words"),
    [c[1:] for c in HTTP_CASES],
    ids=[c[0] for c in HTTP_CASES],
)
async def test_http_bad_input(path, body, ctype, headers, status, words):
    async with running_server(max_body=MAX_BODY) as server:
        assert (await server.post("/v1/logs", BASIC["logs"], PROTOBUF)).status == 200
        assert server.counts() == GOOD_LOGS

        reply = await server.post(path, body, ctype, headers)
        assert reply.status == status, reply.body
        reply_ctype = reply.headers["Content-Type"].split(";")[0]
        assert reply_ctype == (PROTOBUF if ctype == PROTOBUF else JSON)
        code, message = status_message(reply_ctype, reply.body)
        assert words.lower() in message.lower()
        assert code == {400: 3, 413: 8, 415: 3}[status]
        assert server.counts() == GOOD_LOGS  # nothing of the bad request was stored

        # the next good request, on the same keep-alive connection, is served
        reply = await server.post("/v1/traces", BASIC["traces"], PROTOBUF)
        assert reply.status == 200, reply.body
        assert server.counts() == {**GOOD_LOGS, "spans": len(TRUTH.spans)}


async def test_http_gzip_bomb_is_cut_off_at_the_limit():
    bomb = gzip_bomb(200)
    assert len(bomb) < 1 << 20
    async with running_server(max_body=1 << 20) as server:
        tracemalloc.start()
        try:
            reply = await server.post("/v1/traces", bomb, PROTOBUF, {"Content-Encoding": "gzip"})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert reply.status == 413, reply.body
        assert peak < 32 << 20, f"inflating the bomb took {peak >> 20} MiB"
        assert server.counts() == {"spans": 0, "events": 0, "metric_points": 0}
        reply = await server.post("/v1/logs", BASIC["logs"], PROTOBUF)
        assert reply.status == 200
        assert server.counts() == GOOD_LOGS


async def test_http_gzip_bomb_at_the_default_limit():
    async with running_server() as server:
        reply = await server.post(
            "/v1/traces", gzip_bomb(200), PROTOBUF, {"Content-Encoding": "gzip"}
        )
        assert reply.status == 413
        assert "16777216" in status_message(PROTOBUF, reply.body)[1]
        assert (await server.post("/v1/logs", BASIC["logs"], PROTOBUF)).status == 200
        assert server.counts() == GOOD_LOGS


INVALID, EXHAUSTED = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED
GRPC_CASES = [
    ("malformed", "traces", b"\xff\xff\xff\xff", INVALID, "malformed"),
    ("truncated-traces", "traces", truncated(BASIC["traces"]), INVALID, "traces"),
    ("truncated-logs", "logs", truncated(BASIC["logs"]), INVALID, "logs"),
    ("truncated-metrics", "metrics", truncated(BASIC["metrics"]), INVALID, "metrics"),
    ("too-big", "traces", bytes(MAX_BODY + 1), EXHAUSTED, "larger"),
]


@pytest.mark.parametrize(
    ("signal", "body", "code", "words"),
    [c[1:] for c in GRPC_CASES],
    ids=[c[0] for c in GRPC_CASES],
)
async def test_grpc_bad_input(signal, body, code, words):
    async with running_server(max_body=MAX_BODY) as server:
        await server.export("logs", BASIC["logs"])
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await server.export(signal, body)
        assert err.value.code() == code
        assert words.lower() in err.value.details().lower()
        assert server.counts() == GOOD_LOGS
        assert await server.export("traces", BASIC["traces"]) == b""
        assert server.counts() == {**GOOD_LOGS, "spans": len(TRUTH.spans)}


# --- partial success ---------------------------------------------------------------------


def traces_with_one_bad_span(bad_span_id: bytes):
    """basic.grpc's traces export with one more span whose span_id is invalid."""
    msg = REQUESTS["traces"]()
    msg.ParseFromString(BASIC["traces"])
    spans = msg.resource_spans[0].scope_spans[0].spans
    bad = spans.add()
    bad.CopyFrom(spans[0])
    bad.span_id = bad_span_id
    return msg


@pytest.mark.parametrize(
    "bad_span_id", [b"", bytes(8), b"\x01\x02\x03"], ids=["empty", "zero", "short"]
)
async def test_grpc_partial_success(bad_span_id):
    msg = traces_with_one_bad_span(bad_span_id)
    async with running_server() as server:
        raw = await server.export("traces", msg.SerializeToString())
        response = RESPONSES["traces"]()
        response.ParseFromString(raw)
        assert response.partial_success.rejected_spans == 1
        assert response.partial_success.error_message
        got = server.query("SELECT span_id FROM spans")
        assert sorted(r[0] for r in got) == sorted(s["_span_id"] for s in TRUTH.spans)


async def test_http_protobuf_partial_success():
    msg = traces_with_one_bad_span(b"")
    async with running_server() as server:
        reply = await server.post("/v1/traces", msg.SerializeToString(), PROTOBUF)
        assert reply.status == 200
        response = RESPONSES["traces"]()
        response.ParseFromString(reply.body)
        assert response.partial_success.rejected_spans == 1
        assert server.counts()["spans"] == len(TRUTH.spans)


@pytest.mark.parametrize("bad_span_id", ["", "0000000000000000", "0102"])
async def test_http_json_partial_success(bad_span_id):
    doc = json.loads(BASIC_JSON["/v1/traces"])
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": bad_span_id})
    async with running_server() as server:
        reply = await server.post("/v1/traces", json.dumps(doc).encode(), JSON)
        assert reply.status == 200, reply.body
        partial = json.loads(reply.body)["partialSuccess"]
        assert int(partial["rejectedSpans"]) == 1
        assert partial["errorMessage"]
        got = server.query("SELECT span_id FROM spans")
        assert sorted(r[0] for r in got) == sorted(s["_span_id"] for s in JSON_TRUTH.spans)


async def test_grpc_metrics_partial_success():
    msg = REQUESTS["metrics"]()
    msg.ParseFromString(BASIC["metrics"])
    msg.resource_metrics[0].scope_metrics[0].metrics.add(name="no.data")
    async with running_server() as server:
        response = RESPONSES["metrics"]()
        response.ParseFromString(await server.export("metrics", msg.SerializeToString()))
        assert response.partial_success.rejected_data_points == 1
        assert server.counts()["metric_points"] == TRUTH.data_points


MISROUTED = [("/v1/traces", "logs"), ("/v1/traces", "metrics"), ("/v1/logs", "traces"),
             ("/v1/metrics", "logs")]  # fmt: skip


@pytest.mark.parametrize(("path", "carried"), MISROUTED)
async def test_json_of_another_signal_is_refused_not_dropped(path, carried):
    """Acknowledging a body the path's signal does not carry would lose it silently."""
    async with running_server() as server:
        reply = await server.post(path, BASIC_JSON[f"/v1/{carried}"], JSON)
        assert reply.status == 400, reply.body
        assert carried in status_message(JSON, reply.body)[1]
        assert server.counts() == {"spans": 0, "events": 0, "metric_points": 0}


@pytest.mark.parametrize("signal", ["traces", "logs"])
async def test_protobuf_metrics_export_sent_as_another_signal_is_refused(signal):
    """Claude Code's metrics protobuf parses as `signal` (its records as junk): refused over
    both transports, naming what it is; nothing stored."""
    body = BASIC["metrics"]
    async with running_server() as server:
        reply = await server.post(f"/v1/{signal}", body, PROTOBUF)
        assert reply.status == 400, reply.body
        assert "is an OTLP metrics export, not " + signal in status_message(PROTOBUF, reply.body)[1]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await server.export(signal, body)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "send it to the metrics endpoint" in err.value.details()
        assert server.counts() == {"spans": 0, "events": 0, "metric_points": 0}
        for sig, good in BASIC.items():  # the right ones still land
            assert await server.export(sig, good) == b""
        assert server.counts() == {
            "spans": len(TRUTH.spans), "events": len(TRUTH.events),
            "metric_points": TRUTH.data_points,
        }  # fmt: skip
