"""`DemoSender`: paces the demo's virtual clock against real time and sends what is due over
OTLP/gRPC, retried like an OTLP exporter; the ledger counts what the receiver acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

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

from claude_top.demo.catalog import NS
from claude_top.demo.generate import Script
from claude_top.demo.ledger import Ledger

SERVICES = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
_CODECS = {
    "traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


@dataclass
class _Batch:
    """One export call, and the notes the ledger applies when it is acknowledged."""

    signal: str
    request: Any
    notes: list[dict]


class DemoSender:
    """Feeds synthetic Claude Code telemetry to an OTLP/gRPC endpoint (`host:port`).

    `speed` scales the virtual clock against real time; `history_s` starts it that many virtual
    seconds in the past, so the first `step()` sends a backlog at once. `seed` (random when None)
    and `start_ns` fix what is generated. `ledger` holds what the receiver acknowledged.
    """

    def __init__(
        self,
        target: str,
        *,
        seed: int | None = None,
        speed: float = 1.0,
        sessions: int = 4,
        start_ns: int | None = None,
        history_s: float = 0.0,
        timeout: float = 10.0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if sessions < 1:
            raise ValueError("sessions must be at least 1")
        self.target = target
        self.seed = seed if seed is not None else int.from_bytes(os.urandom(4), "big")
        self.speed = speed
        self.timeout = timeout
        self.ledger = Ledger()
        now = time.time_ns() if start_ns is None else start_ns
        self.start_ns = now - int(history_s * NS)
        self.vnow = self.start_ns
        self._history_ns = int(history_s * NS)
        self._t0: float | None = None
        self._script = Script(self.seed, self.start_ns, sessions)
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[str, Any] = {}
        self._stop = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.finished = False

    # generation

    def _due(self, upto: int, final: bool = False) -> list[_Batch]:
        """Requests for everything due by `upto` (everything generated when `final`)."""
        return [_Batch(*export) for export in self._script.due(upto, final)]

    def build(self, upto: int) -> list[_Batch]:
        """Generate up to virtual time `upto` and take the requests due (no network)."""
        self.vnow = max(self.vnow, upto)
        self._script.generate(upto)
        return self._due(upto)

    # network

    def _call(self, signal: str):
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.target)
        call = self._calls.get(signal)
        if call is None:
            req_cls, resp_cls = _CODECS[signal]
            call = self._calls[signal] = self._channel.unary_unary(
                SERVICES[signal],
                request_serializer=req_cls.SerializeToString,
                response_deserializer=resp_cls.FromString,
            )
        return call

    async def _send(self, batch: _Batch, attempts: int = 6) -> bool:
        """One export, retried like an OTLP exporter on UNAVAILABLE; True when acknowledged."""
        delay = 0.1
        for attempt in range(attempts):
            try:
                await self._call(batch.signal)(batch.request, timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or attempt == attempts - 1 or self._stop.is_set():
                    break
                await self._pause(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.ledger.exports += 1
            for note in batch.notes:
                self.ledger.apply(note)
            return True
        self.ledger.failed_exports += 1
        self.ledger.lost_records += len(batch.notes)
        return False

    async def _pause(self, seconds: float) -> None:
        """Sleep, waking at once when `stop()` is called."""
        if self._wake is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def send(self, batches: list[_Batch]) -> int:
        """Send batches concurrently; returns how many records were acknowledged."""
        results = await asyncio.gather(*(self._send(b) for b in batches))
        return sum(len(b.notes) for b, ok in zip(batches, results, strict=True) if ok)

    # driving

    def _paced_now(self) -> int:
        if self._t0 is None:
            self._t0 = time.monotonic()
        elapsed = time.monotonic() - self._t0
        return self.start_ns + self._history_ns + int(elapsed * self.speed * NS)

    async def step(self) -> int:
        """Send what is due by the paced virtual clock; returns records acknowledged."""
        return await self.send(self.build(max(self.vnow, self._paced_now())))

    async def advance(self, seconds: float, batch_s: float = 1.0) -> int:
        """Move the virtual clock `seconds` ahead without waiting, `batch_s` per export round."""
        end = self.vnow + int(seconds * NS)
        sent = 0
        while self.vnow < end:
            sent += await self.send(self.build(min(end, self.vnow + int(batch_s * NS))))
        return sent

    async def finish(self) -> int:
        """Send everything generated and each process's last metrics, as exiting processes do."""
        self.finished = True
        return await self.send(self._due(self.vnow, final=True))

    async def run(
        self, duration: float | None = None, *, tick: float = 0.5, drain: bool = True
    ) -> Ledger:
        """Send live until `duration` real seconds pass (forever when None) or `stop()`."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stop.is_set():
            self._wake.set()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not self._stop.is_set():
                await self.step()
                wait = tick
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                await self._pause(wait)
            if drain:
                await self.finish()
        finally:
            await self.close()
        return self.ledger

    def stop(self) -> None:
        """Ask `run()` to stop (from any thread)."""
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._calls.clear()
