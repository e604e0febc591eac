"""Property tests against running receivers: random bytes, truncated and corrupted fixture
protobuf, random JSON documents, to every gRPC service and HTTP path. The answer is always OK
(maybe with partial_success) or INVALID_ARGUMENT / 400, never an internal error; a rejected
request stores nothing; the server keeps serving."""

from __future__ import annotations

import asyncio
import collections
import gzip
import http.client
import json
import threading

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from receiver_harness import REQUESTS, RESPONSES, SERVICES

from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.server import ReceiverConfig, Receivers
from truth import GRPC_FIXTURES, grpc_requests

MAX_BODY = 256 * 1024
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FIXTURE_BODIES = [(sig, body) for name in GRPC_FIXTURES for sig, body in grpc_requests(name)]
PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}
SIGNALS = sorted(SERVICES)
OUTCOMES: collections.Counter[tuple[str, object]] = collections.Counter()


class ThreadedServer:
    """Receivers on their own event loop thread, so synchronous clients can drive them."""

    def __init__(self) -> None:
        self.store = Store.open(":memory:")
        self.writer = StoreWriter(self.store, decode_in_worker=False)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.rx = Receivers(
            self.writer, ReceiverConfig(grpc_port=0, http_port=0, max_body=MAX_BODY)
        )
        self._run(self.rx.start())
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.rx.grpc_port}")

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def grpc(self, signal: str, body: bytes) -> tuple[grpc.StatusCode, bytes]:
        try:
            return grpc.StatusCode.OK, self.channel.unary_unary(SERVICES[signal])(body, timeout=10)
        except grpc.RpcError as exc:
            return exc.code(), b""

    def http(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.rx.http_port, timeout=10)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stored(self) -> tuple[int, ...]:
        """Records in the tables and the journal, once everything acknowledged is indexed."""
        assert self.writer.sync(10)
        cur = self.store.cursor()
        try:
            return (
                *cur.execute(
                    "SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM events), "
                    "(SELECT count(*) FROM metric_points)"
                ).fetchone(),
                self.writer.journal.pending()[1],
            )
        finally:
            cur.close()

    def close(self) -> None:
        self.channel.close()
        self._run(self.rx.stop(0))
        self.writer.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.store.close()


@pytest.fixture(scope="module")
def server():
    s = ThreadedServer()
    yield s
    s.close()


def records(signal: str, response: bytes | None = None) -> int:
    """partial_success's rejected count in a response (0 when empty)."""
    msg = RESPONSES[signal]()
    msg.ParseFromString(response or b"")
    field = {"traces": "rejected_spans", "metrics": "rejected_data_points"}.get(
        signal, "rejected_log_records"
    )
    return getattr(msg.partial_success, field)


def mutate(body: bytes, data) -> bytes:
    """A fixture body cut short, with bytes flipped, or with junk spliced in."""
    how = data.draw(st.sampled_from(["truncate", "flip", "splice"]))
    if how == "truncate":
        return body[: data.draw(st.integers(0, max(0, len(body) - 1)))]
    out = bytearray(body)
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(out) - 1))
            out[i] ^= data.draw(st.integers(1, 255))
        return bytes(out)
    i = data.draw(st.integers(0, len(out)))
    return bytes(out[:i]) + data.draw(st.binary(min_size=1, max_size=16)) + bytes(out[i:])


bodies = st.binary(max_size=300)


def payload(data) -> tuple[str, bytes]:
    """(signal, body): random bytes, or a corrupted fixture export."""
    if data.draw(st.booleans()):
        return data.draw(st.sampled_from(SIGNALS)), data.draw(bodies)
    signal, body = data.draw(st.sampled_from(FIXTURE_BODIES))
    return data.draw(st.sampled_from([signal, *SIGNALS])), mutate(body, data)


@EXAMPLES
@given(data=st.data())
def test_grpc_answers_ok_or_invalid_argument_and_rejects_whole(server, data):
    signal, body = payload(data)
    before = server.stored()
    code, response = server.grpc(signal, body)
    OUTCOMES["grpc", code] += 1
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), code
    if code == grpc.StatusCode.OK:
        records(signal, response)  # a well-formed Export*ServiceResponse
    else:
        assert server.stored() == before


@EXAMPLES
@given(data=st.data(), to_root=st.booleans(), gzipped=st.booleans())
def test_http_protobuf_answers_200_or_400_and_rejects_whole(server, data, to_root, gzipped):
    signal, body = payload(data)
    headers = {"Content-Type": "application/x-protobuf"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
        body = (
            gzip.compress(body) if data.draw(st.booleans()) else mutate(gzip.compress(body), data)
        )
    before = server.stored()
    status, response = server.http("/" if to_root else PATHS[signal], body, headers)
    OUTCOMES["http/protobuf", status] += 1
    assert status in (200, 400), (status, response[:200])
    if status == 200 and not to_root:
        records(signal, response)
    if status == 400:
        assert server.stored() == before


JSON_KEYS = [
    "resourceSpans",
    "resourceLogs",
    "resourceMetrics",
    "scopeSpans",
    "scopeLogs",
    "scopeMetrics",
    "spans",
    "logRecords",
    "metrics",
    "traceId",
    "spanId",
    "name",
    "attributes",
    "key",
    "value",
    "stringValue",
    "intValue",
    "body",
    "gauge",
    "dataPoints",
    "asDouble",
    "timeUnixNano",
    "x",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(JSON_KEYS), inner, max_size=4)
    ),
    max_leaves=16,
)


@EXAMPLES
@given(doc=json_values, path=st.sampled_from([*PATHS.values(), "/"]), raw=st.booleans())
def test_http_json_answers_200_or_400_and_rejects_whole(server, doc, path, raw):
    body = json.dumps(doc).encode()
    if raw:  # cut short
        body = body[: len(body) // 2]
    before = server.stored()
    status, response = server.http(path, body, {"Content-Type": "application/json"})
    OUTCOMES["http/json", status] += 1
    assert status in (200, 400), (status, response[:200])
    json.loads(response)  # `{}`, a partial_success, or a google.rpc.Status: JSON in any case
    if status == 400:
        assert server.stored() == before


def test_still_serving_and_counting_exactly_after_the_fuzzing(server):
    """After everything above, a fresh export is stored exactly (its trace ids are new), and
    the fuzzing above got both answers from every transport (it tested something)."""
    if OUTCOMES:
        assert (
            OUTCOMES["grpc", grpc.StatusCode.OK]
            and OUTCOMES["grpc", grpc.StatusCode.INVALID_ARGUMENT]
        ), OUTCOMES
        for transport in ("http/protobuf", "http/json"):
            assert OUTCOMES[transport, 200] and OUTCOMES[transport, 400], OUTCOMES
    msg = REQUESTS["traces"]()
    msg.ParseFromString(dict(grpc_requests("basic.grpc"))["traces"])
    spans = msg.resource_spans[0].scope_spans[0].spans
    for span in spans:
        span.trace_id = b"\xf0" * 4 + span.trace_id[4:]
    before = server.stored()
    code, _ = server.grpc("traces", msg.SerializeToString())
    assert code == grpc.StatusCode.OK
    after = server.stored()
    assert after[0] - before[0] == len(spans)
