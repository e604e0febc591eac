"""Ingest throughput: spans/s acknowledged end to end by a separate `claude-top serve` process.

Sends N spans in Claude-Code-shaped batches (the real spans of the basic fixture, with fresh
ids) over OTLP/gRPC or OTLP/HTTP, waits for every acknowledgement, then checks the file holds
exactly N spans. Beside the figure it prints the bare protobuf parse rate of the same bytes in
one Python thread: the ceiling of any Python receiver.

    python bench/ingest.py [--spans 200000] [--batch 512] [--concurrency 4]
                           [--protocol grpc|http-protobuf|http-json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO.parent / "shared" / "fixtures" / "claude-code-2.1.328" / "basic.grpc.jsonl"
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_batches(total: int, batch: int, sessions: int = 8) -> list[bytes]:
    """Export requests of `batch` spans each, shaped like Claude Code's (fresh ids, 8 sessions)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    with open(FIXTURE) as fh:
        first = next(json.loads(line) for line in fh if json.loads(line)["kind"] == "traces")
    template = ExportTraceServiceRequest.FromString(base64.b64decode(first["pb"]))
    spans = list(template.resource_spans[0].scope_spans[0].spans)
    rng = random.Random(7)
    session_ids = [f"bench-{i:04d}-{rng.getrandbits(64):016x}" for i in range(sessions)]
    bodies = []
    made = 0
    while made < total:
        n = min(batch, total - made)
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.CopyFrom(template.resource_spans[0].resource)
        ss = rs.scope_spans.add()
        ss.scope.CopyFrom(template.resource_spans[0].scope_spans[0].scope)
        session = session_ids[len(bodies) % sessions]
        trace_id = rng.randbytes(16)
        for i in range(n):
            span = ss.spans.add()
            span.CopyFrom(spans[i % len(spans)])
            if i % len(spans) == 0:
                trace_id = rng.randbytes(16)
            span.trace_id = trace_id
            span.span_id = rng.randbytes(8)
            for kv in span.attributes:
                if kv.key == "session.id":
                    kv.value.string_value = session
        bodies.append(req.SerializeToString())
        made += n
    return bodies


def parse_rate(bodies: list[bytes], total: int) -> float:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    t = time.perf_counter()
    for body in bodies:
        ExportTraceServiceRequest.FromString(body)
    return total / (time.perf_counter() - t)


def to_json_bodies(bodies: list[bytes]) -> list[bytes]:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    out = []
    for body in bodies:
        doc = json_format.MessageToDict(ExportTraceServiceRequest.FromString(body))
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    for k in ("traceId", "spanId", "parentSpanId"):
                        if k in s:
                            s[k] = base64.b64decode(s[k]).hex()
        out.append(json.dumps(doc).encode())
    return out


async def send_grpc(port: int, bodies: list[bytes], concurrency: int) -> int:
    import grpc

    retries = 0
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]
    ) as channel:
        export = channel.unary_unary(TRACE_METHOD)
        queue = list(reversed(bodies))

        async def worker() -> None:
            nonlocal retries
            while queue:
                body = queue.pop()
                while True:
                    try:
                        await export(body, timeout=60)
                        break
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.UNAVAILABLE:
                            raise
                        retries += 1
                        await asyncio.sleep(0.05)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return retries


async def send_http(port: int, bodies: list[bytes], concurrency: int, ctype: str) -> int:
    import aiohttp

    retries = 0
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal retries
            while queue:
                body = queue.pop()
                while True:
                    async with session.post(
                        f"http://127.0.0.1:{port}/v1/traces",
                        data=body,
                        headers={"Content-Type": ctype},
                    ) as resp:
                        await resp.read()
                        if resp.status == 200:
                            break
                        if resp.status != 503:
                            raise RuntimeError(f"HTTP {resp.status}")
                        retries += 1
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return retries


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far (Linux /proc), or NaN."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / ticks
    return own + sum(cpu_seconds(c) for c in children)


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"claude-top serve exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("claude-top serve did not start listening")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--spans", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--protocol", choices=("grpc", "http-protobuf", "http-json"), default="grpc")
    ap.add_argument("--db", help="database file (default: a fresh temporary file)")
    args = ap.parse_args()

    bodies = make_batches(args.spans, args.batch)
    ceiling = parse_rate(bodies, args.spans)
    payload = sum(map(len, bodies))
    if args.protocol == "http-json":
        bodies = to_json_bodies(bodies)
        payload = sum(map(len, bodies))

    tmp = tempfile.TemporaryDirectory()
    db = args.db or os.path.join(tmp.name, "bench.duckdb")
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_top.cli", "serve", "--db", db,
         "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_listening(grpc_port if args.protocol == "grpc" else http_port, proc)
        cpu_before = cpu_seconds(proc.pid)
        t = time.perf_counter()
        if args.protocol == "grpc":
            retries = asyncio.run(send_grpc(grpc_port, bodies, args.concurrency))
        else:
            ctype = "application/json" if args.protocol == "http-json" else "application/x-protobuf"
            retries = asyncio.run(send_http(http_port, bodies, args.concurrency, ctype))
        elapsed = time.perf_counter() - t
        cpu_during = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    drained = time.perf_counter() - t

    import duckdb

    con = duckdb.connect(db, read_only=True)
    stored = con.execute("SELECT count(*) FROM spans").fetchone()[0]
    con.close()
    kb = payload / len(bodies) / 1e3
    print(f"protocol            {args.protocol}, {args.concurrency} exports in flight")
    print(f"spans sent          {args.spans} in {len(bodies)} exports of {args.batch}")
    print(f"payload             {payload / 1e6:.1f} MB ({kb:.0f} kB/export)")
    print(
        f"acked end to end    {args.spans / elapsed:,.0f} spans/s  ({elapsed:.2f} s, "
        f"{retries} retries after 503/UNAVAILABLE)"
    )
    print(
        f"indexed and closed  {args.spans / drained:,.0f} spans/s  ({drained:.2f} s until "
        "serve exited with every span indexed)"
    )
    print(f"protobuf parse only {ceiling:,.0f} spans/s  (one thread, same bytes: the ceiling)")
    print(f"server CPU          {cpu_during:.2f} s while acking (all its processes)")
    print(f"stored              {stored} spans ({'OK' if stored == args.spans else 'MISMATCH'})")
    tmp.cleanup()
    if stored != args.spans:
        sys.exit(1)


if __name__ == "__main__":
    main()
