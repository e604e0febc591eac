"""Ingest throughput: records/s acknowledged end to end by a separate `claude-top serve` process.

Sends N records in Claude-Code-shaped exports over OTLP/gRPC or OTLP/HTTP (protobuf or JSON),
waits for every acknowledgement, then checks the file holds exactly N rows. The records come
from the captured fixtures with fresh ids and values, so nothing dedupes:

- traces: the spans of the basic fixture, fresh trace/span ids, 8 sessions;
- logs: every log record of the gRPC fixtures (api_request, tool_result, user_prompt, ...),
  fresh session, `event.sequence` and timestamps;
- metrics: the fixtures' metric exports (cost, tokens, sessions, lines of code, active time),
  one resource block per Claude Code process as a collector would batch them, fresh session,
  times and values.

Beside each figure it prints the bare protobuf parse rate of the same bytes in one Python
thread: the ceiling of any Python receiver. `--all` runs every signal over every protocol and
prints one table.

    python bench/ingest.py [--spans 200000] [--batch 512] [--concurrency 4]
                           [--protocol grpc|http-protobuf|http-json]
                           [--signal traces|logs|metrics] [--all] [--repeat 1]

With `--repeat N` each run is made N times and the median one (by acked rate) is shown, with
the range: on a shared 2-core machine single runs vary by +-15 %.
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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "claude-code-2.1.328"
FIXTURE = FIXTURES / "basic.grpc.jsonl"
GRPC_FIXTURES = ("basic.grpc.jsonl", "errors.grpc.jsonl", "continued.grpc.jsonl")
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
METHODS = {
    "traces": TRACE_METHOD,
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}
SIGNALS = ("traces", "logs", "metrics")
PROTOCOLS = ("grpc", "http-protobuf", "http-json")
UNIT = {"traces": "spans", "logs": "log records", "metrics": "metric points"}
TABLE = {"traces": "spans", "logs": "events", "metrics": "metric_points"}
ID_KEYS = ("traceId", "spanId", "parentSpanId")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_type(signal_: str):
    from claude_top.core.sources.otlp.decode import REQUEST_TYPES

    return REQUEST_TYPES[signal_]


def fixture_requests(kind: str, files=GRPC_FIXTURES) -> list:
    """The captured export requests of one signal, parsed, in file order."""
    cls = request_type(kind)
    out = []
    for name in files:
        with open(FIXTURES / name) as fh:
            for line in fh:
                doc = json.loads(line)
                if doc["kind"] == kind:
                    out.append(cls.FromString(base64.b64decode(doc["pb"])))
    return out


def _set_attr(attributes, key: str, value: str | int) -> None:
    for kv in attributes:
        if kv.key == key:
            if isinstance(value, int):
                kv.value.int_value = value
            else:
                kv.value.string_value = value
            return


def make_batches(total: int, batch: int, sessions: int = 8, signal_: str = "traces") -> list[bytes]:
    """Export requests of `batch` records each, Claude-Code-shaped (fresh ids, 8 sessions)."""
    rng = random.Random(7)
    session_ids = [f"bench-{i:04d}-{rng.getrandbits(64):016x}" for i in range(sessions)]
    make = {"traces": _trace_batches, "logs": _log_batches, "metrics": _metric_batches}[signal_]
    return make(total, batch, session_ids, rng)


def _trace_batches(total: int, batch: int, session_ids: list[str], rng) -> list[bytes]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    template = fixture_requests("traces", ("basic.grpc.jsonl",))[0]
    spans = list(template.resource_spans[0].scope_spans[0].spans)
    sessions = len(session_ids)
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


def _log_batches(total: int, batch: int, session_ids: list[str], rng) -> list[bytes]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    templates = fixture_requests("logs")
    records = [r for t in templates for sl in t.resource_logs[0].scope_logs for r in sl.log_records]
    resource = templates[0].resource_logs[0].resource
    scope = templates[0].resource_logs[0].scope_logs[0].scope
    base_ns = time.time_ns() - 3600 * 10**9
    bodies = []
    made = 0
    while made < total:
        n = min(batch, total - made)
        req = ExportLogsServiceRequest()
        rl = req.resource_logs.add()
        rl.resource.CopyFrom(resource)
        sl = rl.scope_logs.add()
        sl.scope.CopyFrom(scope)
        session = session_ids[len(bodies) % len(session_ids)]
        prompt = f"prompt-{rng.getrandbits(64):016x}"
        for i in range(n):
            rec = sl.log_records.add()
            rec.CopyFrom(records[(made + i) % len(records)])
            t = base_ns + (made + i) * 1000
            rec.time_unix_nano = rec.observed_time_unix_nano = t
            _set_attr(rec.attributes, "session.id", session)
            _set_attr(rec.attributes, "event.sequence", made + i)
            _set_attr(rec.attributes, "prompt.id", prompt)
        bodies.append(req.SerializeToString())
        made += n
    return bodies


def _metric_batches(total: int, batch: int, session_ids: list[str], rng) -> list[bytes]:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    blocks = [t.resource_metrics[0] for t in fixture_requests("metrics")]
    base_ns = time.time_ns() - 3600 * 10**9
    bodies = []
    made = 0
    block_no = 0
    while made < total:
        want = min(batch, total - made)
        req = ExportMetricsServiceRequest()
        n = 0
        while n < want:
            rm = req.resource_metrics.add()
            rm.CopyFrom(blocks[block_no % len(blocks)])
            session = f"{session_ids[block_no % len(session_ids)]}-{block_no // len(session_ids)}"
            t = base_ns + block_no * 10**6
            block_no += 1
            for sm in rm.scope_metrics:
                for metric in list(sm.metrics):
                    points = getattr(metric, metric.WhichOneof("data")).data_points
                    del points[max(0, want - n) :]
                    if not points:
                        sm.metrics.remove(metric)
                        continue
                    for p in points:
                        p.start_time_unix_nano = t - 10**9
                        p.time_unix_nano = t
                        if p.WhichOneof("value") == "as_int":
                            p.as_int = rng.randrange(1, 5000)
                        else:
                            p.as_double = round(rng.uniform(0.0001, 2.0), 6)
                        _set_attr(p.attributes, "session.id", session)
                    n += len(points)
        bodies.append(req.SerializeToString())
        made += n
    return bodies


def parse_rate(bodies: list[bytes], total: int, signal_: str = "traces") -> float:
    cls = request_type(signal_)
    t = time.perf_counter()
    for body in bodies:
        cls.FromString(body)
    return total / (time.perf_counter() - t)


def _hex_ids(node) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ID_KEYS and isinstance(v, str):
                node[k] = base64.b64decode(v).hex()
            else:
                _hex_ids(v)
    elif isinstance(node, list):
        for v in node:
            _hex_ids(v)


def to_json_bodies(bodies: list[bytes], signal_: str = "traces") -> list[bytes]:
    """The same requests as OTLP/JSON (ids as hex, as OTLP/JSON specifies)."""
    from google.protobuf import json_format

    cls = request_type(signal_)
    out = []
    for body in bodies:
        doc = json_format.MessageToDict(cls.FromString(body))
        _hex_ids(doc)
        out.append(json.dumps(doc).encode())
    return out


async def send_grpc(port: int, bodies: list[bytes], concurrency: int, signal_="traces") -> int:
    import grpc

    retries = 0
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]
    ) as channel:
        export = channel.unary_unary(METHODS[signal_])
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


async def send_http(
    port: int, bodies: list[bytes], concurrency: int, ctype: str, signal_: str = "traces"
) -> int:
    import aiohttp

    retries = 0
    queue = list(reversed(bodies))
    url = f"http://127.0.0.1:{port}/v1/{signal_}"
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal retries
            while queue:
                body = queue.pop()
                while True:
                    async with session.post(
                        url, data=body, headers={"Content-Type": ctype}
                    ) as resp:
                        await resp.read()
                        if resp.status == 200:
                            break
                        if resp.status != 503:
                            raise RuntimeError(f"HTTP {resp.status}: {await resp.text()}")
                        retries += 1
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return retries


def tree(pid: int) -> list[int]:
    """`pid` and every descendant (Linux /proc; children of every thread, as the decode
    workers are spawned by the indexer thread)."""
    out = [pid]
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for c in children:
            out.extend(tree(int(c)))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


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


@dataclass
class Result:
    signal: str
    protocol: str
    records: int
    exports: int
    payload: int
    acked_s: float
    drained_s: float
    parse_rate: float
    cpu_s: float
    retries: int
    stored: int
    journalled: int

    @property
    def ok(self) -> bool:
        return self.stored + self.journalled == self.records


def run(signal_: str, protocol: str, records: int, batch: int, concurrency: int, db=None) -> Result:
    """Start `claude-top serve`, send `records` records, wait for the acks, stop it, count."""
    bodies = make_batches(records, batch, signal_=signal_)
    ceiling = parse_rate(bodies, records, signal_)
    if protocol == "http-json":
        bodies = to_json_bodies(bodies, signal_)
    payload = sum(map(len, bodies))

    tmp = tempfile.TemporaryDirectory()
    db = db or os.path.join(tmp.name, "bench.duckdb")
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_top.cli", "serve", "--db", db,
         "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_listening(grpc_port if protocol == "grpc" else http_port, proc)
        cpu_before = cpu_seconds(proc.pid)
        t = time.perf_counter()
        if protocol == "grpc":
            retries = asyncio.run(send_grpc(grpc_port, bodies, concurrency, signal_))
        else:
            ctype = "application/json" if protocol == "http-json" else "application/x-protobuf"
            retries = asyncio.run(send_http(http_port, bodies, concurrency, ctype, signal_))
        elapsed = time.perf_counter() - t
        cpu_during = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    drained = time.perf_counter() - t

    from claude_top.core.store.database import Store

    store = Store.open(db, read_only=True)
    stored = store.cursor().execute(f"SELECT count(*) FROM {TABLE[signal_]}").fetchone()[0]
    journalled = store.journal_backlog()[1]
    store.close()
    tmp.cleanup()
    return Result(
        signal_, protocol, records, len(bodies), payload, elapsed, drained, ceiling,
        cpu_during, retries, stored, int(journalled),
    )  # fmt: skip


def report(r: Result, batch: int, concurrency: int) -> None:
    unit = UNIT[r.signal]
    short = unit.split()[-1]
    kb = r.payload / r.exports / 1e3
    print(f"protocol            {r.protocol}, {concurrency} exports in flight")
    print(f"{unit + ' sent':19} {r.records} in {r.exports} exports of {batch}")
    print(f"payload             {r.payload / 1e6:.1f} MB ({kb:.0f} kB/export)")
    print(
        f"acked end to end    {r.records / r.acked_s:,.0f} {short}/s  ({r.acked_s:.2f} s, "
        f"{r.retries} retries after 503/UNAVAILABLE)"
    )
    print(
        f"indexed and closed  {r.stored / r.drained_s:,.0f} {short}/s  ({r.drained_s:.2f} s until "
        f"serve exited with every {short[:-1]} indexed)"
    )
    print(
        f"protobuf parse only {r.parse_rate:,.0f} {short}/s  (one thread, same bytes: the ceiling)"
    )
    print(f"server CPU          {r.cpu_s:.2f} s while acking (all its processes)")
    left = f", {r.journalled} still journalled (indexed at the next start)" if r.journalled else ""
    print(f"stored              {r.stored} {unit}{left} ({'OK' if r.ok else 'MISMATCH'})")


def median_run(runs: list[Result]) -> Result:
    return sorted(runs, key=lambda r: r.acked_s)[len(runs) // 2]


def spread(runs: list[Result]) -> str:
    rates = sorted(r.records / r.acked_s for r in runs)
    return f"{rates[0] / 1e3:.0f}-{rates[-1] / 1e3:.0f}k" if len(rates) > 1 else ""


def table(cells: list[list[Result]]) -> None:
    print(
        f"{'signal':8} {'protocol':14} {'acked/s':>10} {'range':>9} {'indexed/s':>10} "
        f"{'parse/s':>11} {'kB/export':>9} {'CPU s':>6} {'retries':>7}  stored"
    )
    for runs in cells:
        r = median_run(runs)
        print(
            f"{r.signal:8} {r.protocol:14} {r.records / r.acked_s:10,.0f} {spread(runs):>9} "
            f"{r.stored / r.drained_s:10,.0f} {r.parse_rate:11,.0f} "
            f"{r.payload / r.exports / 1e3:9.0f} {r.cpu_s:6.2f} {r.retries:7}  "
            f"{'OK' if all(x.ok for x in runs) else 'MISMATCH'}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--spans", "--records", dest="records", type=int, default=200_000,
                    help="records to send (spans, log records or metric points)")  # fmt: skip
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--protocol", choices=PROTOCOLS, default="grpc")
    ap.add_argument("--signal", choices=SIGNALS, default="traces")
    ap.add_argument("--all", action="store_true", help="every signal over every protocol")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the median is shown")
    ap.add_argument("--db", help="database file (default: a fresh temporary file)")
    args = ap.parse_args()
    if args.db and (args.repeat > 1 or args.all):
        ap.error("--db holds one run: use it without --repeat and --all")

    load = os.getloadavg()[0]
    print(f"machine             {os.cpu_count()} CPUs, load average {load:.2f} before the run")
    cells = []
    combos = [(args.signal, args.protocol)]
    if args.all:
        combos = [(s, p) for s in SIGNALS for p in PROTOCOLS]
    for signal_, protocol in combos:
        runs = []
        for _ in range(args.repeat):
            r = run(signal_, protocol, args.records, args.batch, args.concurrency, args.db)
            runs.append(r)
            if args.all or args.repeat > 1:
                print(f"  {signal_}/{protocol}: {r.records / r.acked_s:,.0f}/s acked", flush=True)
        cells.append(runs)
    if not args.all:
        report(median_run(cells[0]), args.batch, args.concurrency)
        if args.repeat > 1:
            print(f"acked range         {spread(cells[0])} spans/s over {args.repeat} runs")
    else:
        print(
            f"\n{args.records} records per run in exports of {args.batch}, {args.concurrency} "
            "in flight; rates are records/s (spans, log records, metric points)"
            + (f"; median of {args.repeat} runs" if args.repeat > 1 else "")
        )
        table(cells)
    sys.exit(0 if all(r.ok for runs in cells for r in runs) else 1)


if __name__ == "__main__":
    main()
