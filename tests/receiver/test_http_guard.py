"""The OTLP/HTTP listener against hostile clients: slow ones are dropped (headers, body, idle
keep-alive), a declared length over --max-body is refused before any body is read, a request
addressed to another host (a web page's DNS rebinding) or in another content type is refused and
stores nothing, and aiohttp's own refusals print one short line, never a traceback."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import pytest
from receiver_harness import JSON, PROTOBUF, running_server

from claude_top.receiver.rejects import RejectLog
from truth import Truth, grpc_requests

BASIC = dict(grpc_requests("basic.grpc"))
SPANS = len(Truth("basic.grpc").spans)
NOTHING = {"spans": 0, "events": 0, "metric_points": 0}
QUICK = {"http_idle_s": 0.5, "http_body_stall_s": 0.5, "http_body_s": 2.0}


async def connect(server):
    return await asyncio.open_connection("127.0.0.1", server.rx.http_port)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bool, bytes]:
    """(whether the server closed the connection within `seconds`, what it sent before)."""
    got = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            return False, got
        except ConnectionResetError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def head(length: int | str, host: str = "127.0.0.1", ctype: str = PROTOBUF) -> bytes:
    return (
        f"POST /v1/traces HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


# --- slow clients ----------------------------------------------------------------------------


async def test_partial_headers_are_dropped():
    async with running_server(**QUICK) as server:
        reader, writer = await connect(server)
        writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        closed, _ = await closed_within(reader, 5)
        writer.close()
        assert closed, "a connection that never finished its headers was kept open"


async def test_an_idle_keep_alive_connection_is_dropped():
    async with running_server(**QUICK) as server:
        reader, writer = await connect(server)
        writer.write(head(len(BASIC["traces"])) + BASIC["traces"])
        first = await reader.readuntil(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200"), first
        closed, _ = await closed_within(reader, 5)
        writer.close()
        assert closed, "an idle keep-alive connection was kept open"
        assert server.counts() == {**NOTHING, "spans": SPANS}


async def test_a_stalled_body_is_answered_408_and_dropped():
    async with running_server(**QUICK) as server:
        reader, writer = await connect(server)
        writer.write(head(len(BASIC["traces"])) + BASIC["traces"][:100])
        closed, answer = await closed_within(reader, 5)
        writer.close()
        assert closed
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"stopped arriving (100 bytes read)" in answer
        assert server.counts() == NOTHING


async def test_a_trickled_body_is_cut_off_at_its_deadline():
    async with running_server(**QUICK) as server:
        reader, writer = await connect(server)
        writer.write(head(len(BASIC["traces"])))
        started = time.monotonic()
        answer = b""
        for byte in BASIC["traces"][:50]:  # a byte every 0.1 s: never a long pause
            writer.write(bytes([byte]))
            try:
                answer = await asyncio.wait_for(reader.read(65536), 0.1)
            except TimeoutError:
                continue
            break
        closed, rest = await closed_within(reader, 5)
        writer.close()
        assert closed and (answer + rest).startswith(b"HTTP/1.1 408"), answer
        assert 2.0 <= time.monotonic() - started < 2.0 + 4
        assert server.counts() == NOTHING


async def test_a_declared_length_over_the_limit_is_refused_before_the_body():
    async with running_server(max_body=1 << 20) as server:
        reader, writer = await connect(server)
        writer.write(head(10**12))  # and not one byte of body
        closed, answer = await closed_within(reader, 5)
        writer.close()
        assert closed and answer.startswith(b"HTTP/1.1 413"), answer
        assert b"Content-Length 1000000000000 is over the 1048576-byte limit" in answer
        reply = await server.post("/v1/traces", BASIC["traces"])
        assert reply.status == 200
        assert server.counts() == {**NOTHING, "spans": SPANS}


# --- requests not addressed to this machine, or in another format -------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:4318", "10.0.0.7", "[::2]:80"])
async def test_a_request_for_another_host_is_refused_on_loopback(host):
    async with running_server() as server:
        reply = await server.post("/v1/traces", BASIC["traces"], PROTOBUF, {"Host": host})
        assert reply.status == 403, reply.body
        reply = await server.post("/v1/logs", BASIC["logs"], JSON, {"Host": host})
        assert reply.status == 403
        assert "is not this machine" in json.loads(reply.body)["message"]
        assert server.counts() == NOTHING


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:4318", "LOCALHOST.", "127.0.0.1:4318", "127.8.9.10", "[::1]"]
)
async def test_requests_for_this_machine_are_served(host):
    async with running_server() as server:
        reply = await server.post("/v1/traces", BASIC["traces"], PROTOBUF, {"Host": host})
        assert reply.status == 200, reply.body
        assert server.counts() == {**NOTHING, "spans": SPANS}


async def test_any_host_is_served_beyond_loopback_where_the_token_guards():
    async with running_server(bind="0.0.0.0", token="s3cret") as server:
        headers = {"Host": "collector.example:4318", "Authorization": "Bearer s3cret"}
        reply = await server.post("/v1/traces", BASIC["traces"], PROTOBUF, headers)
        assert reply.status == 200, reply.body


@pytest.mark.parametrize(
    "ctype", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"]
)
async def test_what_a_web_form_can_send_is_refused(ctype):
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{**span, "name": "x"}]}]}]}
    async with running_server() as server:
        reply = await server.post("/v1/traces", json.dumps(doc).encode(), ctype)
        assert reply.status == 415, reply.body
        assert server.counts() == NOTHING


# --- what a refusal prints -------------------------------------------------------------------


async def test_malformed_http_prints_one_line_each_at_most():
    """aiohttp refuses these itself; claude-top prints a line, rate-limited, no traceback."""
    log = logging.getLogger("claude_top.http")
    (handler,) = [h for h in log.handlers if isinstance(h, RejectLog)] or [None]
    async with running_server() as server:
        (handler,) = [h for h in log.handlers if isinstance(h, RejectLog)]
        out = io.StringIO()
        handler.stream, handler.last, handler.unsaid = out, -float("inf"), 0
        try:
            for bad in (b"GARBAGE\r\n\r\n", b"POST /v1/traces HTTP/1.1\r\nBad Header\r\n\r\n",
                        b"POST / HTTP/9.9\r\n\r\n") * 7:  # fmt: skip
                reader, writer = await connect(server)
                writer.write(bad)
                await closed_within(reader, 5)
                writer.close()
            await asyncio.sleep(0.1)
        finally:
            handler.stream = None
        assert (await server.post("/v1/traces", BASIC["traces"])).status == 200
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("claude-top: refused a malformed HTTP request from 127.0.0.1: ")
    assert "Traceback" not in out.getvalue()
    assert handler.unsaid >= 10  # the rest (aiohttp logs some at debug level only)
