"""An in-process claude-top receiver on ephemeral ports, a real gRPC channel and HTTP client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from claude_top.core.schema import INDEXED_SEQ_KEY, META_TABLE
from claude_top.core.store.database import Store
from claude_top.core.store.journal import JournalError
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.server import ReceiverConfig, Receivers
from truth import grpc_requests, http_requests

SERVICES = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
REQUESTS = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
RESPONSES = {
    "traces": ExportTraceServiceResponse,
    "metrics": ExportMetricsServiceResponse,
    "logs": ExportLogsServiceResponse,
}
PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TABLES = ("spans", "events", "metric_points")
SIGNAL_TABLE = {"traces": "spans", "logs": "events", "metrics": "metric_points"}


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes


class Server:
    """A running receiver and clients for it."""

    def __init__(self, store: Store, writer: StoreWriter, rx: Receivers) -> None:
        self.store = store
        self.writer = writer
        self.rx = rx
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{rx.grpc_port}")
        self.session = aiohttp.ClientSession()
        self.url = f"http://127.0.0.1:{rx.http_port}"

    async def export(self, signal: str, body: bytes, timeout: float = 10.0) -> bytes:
        """One gRPC Export call with raw protobuf bytes; returns the raw response bytes."""
        return await self.channel.unary_unary(SERVICES[signal])(body, timeout=timeout)

    async def post(
        self,
        path: str,
        body,
        ctype: str | None = PROTOBUF,
        headers: dict[str, str] | None = None,
    ) -> HttpReply:
        """One HTTP POST; `body` may be bytes or an async generator (sent chunked)."""
        hdrs = dict(headers or {})
        if ctype is not None:
            hdrs["Content-Type"] = ctype
        async with self.session.post(self.url + path, data=body, headers=hdrs) as resp:
            return HttpReply(resp.status, dict(resp.headers), await resp.read())

    async def replay(self, name: str) -> None:
        """Send every request of a fixture the way it was captured; each must succeed."""
        if name.endswith(".grpc"):
            for signal, body in grpc_requests(name):
                assert await self.export(signal, body) == b""
        else:
            for d in http_requests(name):
                headers = {"Content-Encoding": d["enc"]} if d["enc"] else None
                reply = await self.post(d["path"], d["body"], d["ctype"], headers)
                assert reply.status == 200, reply.body

    def settle(self) -> None:
        """Wait until every acknowledged export is indexed into the tables."""
        assert self.writer.sync(10.0), "acknowledged exports were not indexed within 10 s"

    def query(self, sql: str, *params, settle: bool = True) -> list[tuple]:
        """Run a query on a fresh cursor (after `settle()` unless told not to)."""
        if settle:
            self.settle()
        cur = self.store.cursor()
        try:
            return cur.execute(sql, list(params)).fetchall()
        finally:
            cur.close()

    def counts(self) -> dict[str, int]:
        """Rows per telemetry table, once everything acknowledged is indexed."""
        self.settle()
        return {t: self.query(f"SELECT count(*) FROM {t}", settle=False)[0][0] for t in TABLES}

    def durable_records(self) -> dict[str, int]:
        """Records per signal that are committed: indexed, or still in the journal.

        The journal is read first, then the tables and the journal seq they reach in one
        statement: an export moving from the journal to the tables meanwhile counts once.
        """
        while True:
            try:
                journalled = self.writer.journal.entries()
                break
            except (FileNotFoundError, JournalError):  # a segment released meanwhile
                continue
        parts = [f"(SELECT count(*) FROM {table})" for table in SIGNAL_TABLE.values()]
        parts.append(f"(SELECT value FROM {META_TABLE} WHERE key = '{INDEXED_SEQ_KEY}')")
        *row, indexed = self.query("SELECT " + ", ".join(parts), settle=False)[0]
        indexed = int(indexed or 0)
        counts = dict(zip(SIGNAL_TABLE, map(int, row), strict=True))
        for e in journalled:
            if e.seq > indexed:
                counts[e.signal] += e.records
        return counts

    def journal_records(self) -> int:
        """Records acknowledged but not yet indexed."""
        return self.writer.journal.pending()[1]

    async def close(self) -> None:
        await self.session.close()
        await self.channel.close()
        await self.rx.stop(grace=0)
        self.writer.close()


@contextlib.asynccontextmanager
async def running_server(
    store: Store | None = None,
    *,
    writer_options: dict | None = None,
    **config,
) -> AsyncIterator[Server]:
    """Start receivers on ephemeral ports over `store` (a fresh in-memory one by default).

    `writer_options` go to StoreWriter; `config` to ReceiverConfig.
    """
    own_store = store is None
    store = store or Store.open(":memory:")
    writer = StoreWriter(store, **(writer_options or {}))
    rx = Receivers(writer, ReceiverConfig(grpc_port=0, http_port=0, **config))
    try:
        await rx.start()
    except BaseException:
        writer.close()
        raise
    server = Server(store, writer, rx)
    try:
        yield server
    finally:
        await server.close()
        if own_store:
            store.close()
