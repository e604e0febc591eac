"""The relay (`--forward`): the real captures go to a real upstream claude-top that is down for
the first half; afterwards both stores hold exactly the truth, and every export was delivered
once. Retries honour the upstream's RetryInfo and Retry-After; a permanent rejection is counted
and not retried; past the journal's bounds the oldest are given up and counted; the position
survives a restart; `--redact` applies before anything leaves."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from claude_top.core.sources.otlp.decode import accept_protobuf
from claude_top.core.sources.otlp.redact import Redactor
from claude_top.core.sources.otlp.signals import SIGNALS
from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.forward import (
    ForwardConfig,
    Forwarder,
    ForwardState,
    retry_after_delay,
    retry_info_delay,
)
from claude_top.receiver.server import ReceiverConfig, Receivers
from truth import GRPC_FIXTURES, Truth, grpc_requests

REQUESTS = [r for name in GRPC_FIXTURES for r in grpc_requests(name)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def totals(store: Store) -> dict:
    with store.reading() as cur:
        events, cost = cur.execute("SELECT count(*), sum(cost_usd) FROM events").fetchone()
        (spans,) = cur.execute("SELECT count(*) FROM spans").fetchone()
        (points,) = cur.execute("SELECT count(*) FROM metric_points").fetchone()
        names = dict(cur.execute("SELECT name, count(*) FROM events GROUP BY 1").fetchall())
    return {
        "events": events,
        "cost": round(cost, 9),
        "spans": spans,
        "points": points,
        "names": names,
    }


def expected(truth: Truth) -> dict:
    return {
        "events": len(truth.events),
        "cost": round(truth.cost(), 9),
        "spans": len(truth.spans),
        "points": truth.data_points,
        "names": truth.events_by_name(),
    }


class Relay:
    """A relay store whose journal the forwarder reads (no receivers needed: exports go in
    through the writer as the listeners hand them over)."""

    def __init__(self, path: str, config: ForwardConfig, **kw) -> None:
        self.store = Store.open(path)
        self.state = ForwardState.load(self.store)
        self.writer = StoreWriter(self.store, decode_in_worker=False, journal_hold=self.state.seq)
        self.forwarder = Forwarder(self.writer.journal, config, self.state, **kw)
        self.forwarder.start()

    async def send(self, requests, redact: Redactor | None = None) -> None:
        for signal, body in requests:
            await asyncio.wrap_future(self.writer.submit(accept_protobuf(signal, body, redact)))

    def close(self) -> None:
        self.forwarder.close()
        self.writer.close()
        self.store.close()


async def upstream(port: int) -> tuple[Store, StoreWriter, Receivers]:
    store = Store.open(":memory:")
    writer = StoreWriter(store, decode_in_worker=False)
    rx = Receivers(writer, ReceiverConfig(grpc_port=port, http_port=0))
    await rx.start()
    return store, writer, rx


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
async def test_an_upstream_down_for_the_first_half_ends_with_exactly_the_truth(tmp_path, protocol):
    port = free_port()
    http_port = free_port()
    endpoint = f"http://127.0.0.1:{port if protocol == 'grpc' else http_port}"
    relay = Relay(
        str(tmp_path / "relay.duckdb"),
        ForwardConfig.parse(endpoint, protocol),
        backoff_s=(0.05, 0.3),
    )
    half = len(REQUESTS) // 2
    await relay.send(REQUESTS[:half])
    await until(lambda: relay.forwarder.status().failing)
    status = relay.forwarder.status()
    assert status.state == "failing" and status.lag_exports == half
    assert status.lag_s is not None and status.error
    assert relay.writer.sync()
    assert relay.writer.journal.entries()  # indexed, but kept for the relay
    store = Store.open(":memory:")
    writer = StoreWriter(store, decode_in_worker=False)
    rx = Receivers(writer, ReceiverConfig(grpc_port=port, http_port=http_port))
    await rx.start()
    try:
        await relay.send(REQUESTS[half:])
        await until(lambda: relay.forwarder.status().lag_exports == 0)
        assert writer.sync()
        truth = expected(Truth(*GRPC_FIXTURES))
        assert totals(store) == truth
        assert relay.writer.sync()
        assert totals(relay.store) == truth
        # nothing lost, nothing doubled: every export reached the upstream exactly once
        assert writer.stats.exports_committed == len(REQUESTS)
        s = relay.forwarder.status()
        assert (s.delivered, s.rejected, s.dropped, s.state) == (len(REQUESTS), 0, 0, "up to date")
        assert relay.forwarder.attempts > len(REQUESTS)  # the first half was tried while down
    finally:
        relay.close()
        await rx.stop()
        writer.close()
        store.close()
    assert not list((tmp_path / "relay.duckdb.journal").glob("*.ctj"))  # all sent: let go


async def test_the_position_survives_a_restart_and_nothing_is_sent_twice(tmp_path):
    port = free_port()
    config = ForwardConfig.parse(f"http://127.0.0.1:{port}")
    db = str(tmp_path / "relay.duckdb")
    relay = Relay(db, config, backoff_s=(0.05, 0.2))
    half = len(REQUESTS) // 2
    store, writer, rx = await upstream(port)
    try:
        await relay.send(REQUESTS[:half])
        await until(lambda: relay.forwarder.status().lag_exports == 0)
    finally:
        await rx.stop()
    await relay.send(REQUESTS[half:])  # upstream gone: these wait in the journal
    await until(lambda: relay.forwarder.status().failing)
    relay.close()
    assert ForwardState.load(Store.open(db, read_only=True)).seq == half
    relay = Relay(db, config, backoff_s=(0.05, 0.2))  # a restart with the upstream back
    rx = Receivers(writer, ReceiverConfig(grpc_port=port, http_port=0))
    await rx.start()
    try:
        await until(lambda: relay.forwarder.status().lag_exports == 0)
        assert writer.sync()
        assert writer.stats.exports_committed == len(REQUESTS)
        assert totals(store) == expected(Truth(*GRPC_FIXTURES))
    finally:
        relay.close()
        await rx.stop()
        writer.close()
        store.close()


async def test_redaction_applies_before_forwarding():
    port = free_port()
    store, writer, rx = await upstream(port)
    relay = Relay(":memory:", ForwardConfig.parse(f"http://127.0.0.1:{port}"))
    try:
        await relay.send(REQUESTS, Redactor(frozenset({"prompts", "commands"})))
        await until(lambda: relay.forwarder.status().lag_exports == 0)
        assert writer.sync()
        with store.reading() as cur:
            prompts = cur.execute(
                "SELECT DISTINCT json_extract_string(attributes, '$.prompt') FROM events "
                "WHERE kind = 'user_prompt'"
            ).fetchall()
        truth = Truth(*GRPC_FIXTURES)
        assert {e["prompt"] for e in truth.events if e.get("event.name") == "user_prompt"} != {
            "<REDACTED>"
        }
        assert prompts == [("<REDACTED>",)]
    finally:
        relay.close()
        await rx.stop()
        writer.close()
        store.close()


class _Http(BaseHTTPRequestHandler):
    """An OTLP/HTTP upstream that answers from a script: {signal: [status, ...]}."""

    script: dict[str, list[tuple[int, dict]]] = {}
    seen: list[tuple[float, str, int]] = []

    def do_POST(self):
        signal = self.path.rsplit("/", 1)[-1]
        self.rfile.read(int(self.headers["Content-Length"]))
        plan = self.script.get(signal) or [(200, {})]
        status, headers = plan.pop(0) if len(plan) > 1 else plan[0]
        self.seen.append((time.monotonic(), signal, status))
        body = SIGNALS[signal].response().SerializeToString() if status == 200 else b"no"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header(
            "Content-Type", "application/x-protobuf" if status == 200 else "text/plain"
        )
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_upstream():
    _Http.script = {}
    _Http.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


async def test_a_permanent_rejection_is_counted_once_and_never_retried(http_upstream):
    _Http.script = {"traces": [(400, {})]}
    url = f"http://127.0.0.1:{http_upstream.server_port}"
    relay = Relay(":memory:", ForwardConfig.parse(url, "http/protobuf"))
    try:
        await relay.send(REQUESTS)
        await until(lambda: relay.forwarder.status().lag_exports == 0)
        traces = sum(1 for s, _ in REQUESTS if s == "traces")
        s = relay.forwarder.status()
        assert (s.rejected, s.delivered) == (traces, len(REQUESTS) - traces)
        assert "HTTP 400" in s.error
        assert len(_Http.seen) == len(REQUESTS)  # one attempt each
        assert relay.writer.sync()
        assert totals(relay.store) == expected(Truth(*GRPC_FIXTURES))  # local data unaffected
    finally:
        relay.close()


async def test_retry_after_is_honoured(http_upstream):
    _Http.script = {"logs": [(503, {"Retry-After": "1"}), (429, {"Retry-After": "1"}), (200, {})]}
    url = f"http://127.0.0.1:{http_upstream.server_port}"
    relay = Relay(":memory:", ForwardConfig.parse(url, "http/protobuf"), backoff_s=(0.01, 0.02))
    logs = [r for r in REQUESTS if r[0] == "logs"][:2]
    try:
        await relay.send(logs)
        await until(lambda: relay.forwarder.status().lag_exports == 0)
        times = [t for t, _, _ in _Http.seen]
        assert [st for _, _, st in _Http.seen] == [503, 429, 200, 200]
        assert times[1] - times[0] >= 0.95 and times[2] - times[1] >= 0.95
        assert relay.forwarder.delivered == 2
    finally:
        relay.close()


def _status_with_retry_info(seconds: int) -> bytes:
    duration = b"\x08" + bytes([seconds])
    retry = b"\n" + bytes([len(duration)]) + duration
    url = b"type.googleapis.com/google.rpc.RetryInfo"
    any_ = b"\n" + bytes([len(url)]) + url + b"\x12" + bytes([len(retry)]) + retry
    return b"\x08\x08\x12\x04busy\x1a" + bytes([len(any_)]) + any_


def test_retry_info_and_retry_after_are_read():
    assert retry_info_delay(_status_with_retry_info(2)) == 2.0
    assert retry_info_delay(b"\x08\x08\x12\x04busy") is None
    assert retry_after_delay("7") == 7.0
    assert retry_after_delay("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_delay("soon") is None


async def test_resource_exhausted_is_retried_only_with_retry_info():
    calls: list[tuple[float, str]] = []

    async def export(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        n = len([c for c in calls if c[1] == "logs"])
        calls.append((time.monotonic(), "logs"))
        if n == 0:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "slow down",
                trailing_metadata=(("grpc-status-details-bin", _status_with_retry_info(1)),),
            )
        if n == 1:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too big")  # permanent
        return SIGNALS["logs"].response().SerializeToString()

    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        SIGNALS["logs"].service, {"Export": grpc.unary_unary_rpc_method_handler(export)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    relay = Relay(
        ":memory:", ForwardConfig.parse(f"http://127.0.0.1:{port}"), backoff_s=(0.01, 0.02)
    )
    logs = [r for r in REQUESTS if r[0] == "logs"][:3]
    try:
        await relay.send(logs)
        await until(lambda: relay.forwarder.status().lag_exports == 0)
        s = relay.forwarder.status()
        assert (s.delivered, s.rejected) == (2, 1)
        assert len(calls) == 4  # retried once (RetryInfo), the second refusal never again
        assert calls[1][0] - calls[0][0] >= 0.95
    finally:
        relay.close()
        await server.stop(0)


async def test_past_the_bounds_the_oldest_are_given_up_and_counted(http_upstream):
    port = free_port()  # nothing listens: the upstream is away
    sizes = [len(accept_protobuf(s, b).body) for s, b in REQUESTS]
    config = ForwardConfig(f"http://127.0.0.1:{port}", max_bytes=sum(sizes[-3:]))
    relay = Relay(":memory:", config, backoff_s=(0.05, 0.1))
    try:
        await relay.send(REQUESTS)
        await until(lambda: relay.forwarder.status().dropped == len(REQUESTS) - 3)
        s = relay.forwarder.status()
        assert s.lag_exports == 3 and "given up" in s.line()
        assert relay.state.dropped_records == sum(
            accept_protobuf(sig, b).count for sig, b in REQUESTS[:-3]
        )
    finally:
        relay.close()


def test_bad_forward_options_are_refused_with_a_reason(tmp_path):
    for args, says in [
        (("collector:4317",), "with its scheme"),
        (("ftp://c:1",), "with its scheme"),
        (("http://c:x",), "port is not a number"),
        (("http://c:4317", "udp"), "--forward-protocol"),
        (("http://c:4317/v1", "grpc"), "has no path"),
    ]:
        with pytest.raises(ValueError, match=says):
            ForwardConfig.parse(*args)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        ForwardConfig.parse("http://c:4317", headers=["novalue"])
    with pytest.raises(ValueError, match="cannot read"):
        ForwardConfig.parse("https://c:4317", ca_file=str(tmp_path / "none.pem"))
    c = ForwardConfig.parse(
        "http://c:4318/otlp/",
        "http/protobuf",
        headers=["Authorization=Bearer x"],
        env_headers="x-team=a%20b",
    )
    assert c.headers == (("x-team", "a b"), ("authorization", "Bearer x"))
    assert c.endpoint == "http://c:4318/otlp" and c.target == "c:4318"
