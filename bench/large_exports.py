"""Large exports through a real `claude-top serve`: how long until a burst of exports with huge
attribute values is indexed, and what it costs in memory while and after.

Each large export is one span carrying one string attribute of `--value-mb` MB (under the
default 16 MB `--max-body`, so every one is acknowledged); they are sent over OTLP/HTTP
protobuf, `--in-flight` at a time, then `--small` exports of one ordinary span each. The
script polls serve's status (control API, `<db>.instance.json`) until every acknowledged export
is indexed (in the tables or in `ingest_failed`), sampling the RSS of serve's main process and
of its process tree (the decode workers) every 0.2 s; then it samples each second for `--idle`
seconds with no traffic. Last it stops serve and reads the file: spans, `ingest_failed` rows,
the size the large value is stored at, what is left in the journal.

Two scenarios by default (each on a fresh database): `burst`, 24 exports of 15 MB then 50
small ones (a burst of large exports must not stall indexing); `memory`, 20 exports of 10 MB
(RSS at the peak and after the idle time).

    python bench/large_exports.py [--scenario burst|memory|both] [--exports N] [--value-mb MB]
                                  [--small N] [--in-flight N] [--idle S] [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import free_port, tree, wait_listening

SCENARIOS = {"burst": (24, 15.0, 50), "memory": (20, 10.0, 0)}
SAMPLE_S = 0.2


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def span_export(value_bytes: int, n: int) -> bytes:
    """One span (fresh ids) with a `value_bytes`-byte string attribute when > 0."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    rng = random.Random(n)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "claude-code"
    span = rs.scope_spans.add().spans.add(
        trace_id=rng.randbytes(16),
        span_id=rng.randbytes(8),
        name="claude_code.tool",
        start_time_unix_nano=1_800_000_000_000_000_000 + n,
        end_time_unix_nano=1_800_000_000_000_000_000 + n + 1_000,
    )
    span.attributes.add(key="session.id").value.string_value = "bench-large"
    if value_bytes:
        span.attributes.add(key="tool_input").value.string_value = "x" * value_bytes
    return req.SerializeToString()


@dataclass
class Sampler:
    """RSS of serve's main process and of its whole tree, sampled in a thread."""

    pid: int
    peak_main: float = 0.0
    peak_tree: float = 0.0
    peak_at: float = 0.0
    started: float = field(default_factory=time.monotonic)
    timeline: list[tuple[float, float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> tuple[float, float]:
        main = rss_mb(self.pid)
        total = sum(rss_mb(p) for p in tree(self.pid))
        if main > self.peak_main:
            self.peak_main, self.peak_at = main, time.monotonic() - self.started
        self.peak_tree = max(self.peak_tree, total)
        return main, total

    def run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.sample()

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


async def send(port: int, bodies: list[bytes], in_flight: int) -> tuple[int, int]:
    """POST every body (retrying 503s); returns (acknowledged, other answers)."""
    import aiohttp

    acked = refused = 0
    queue = list(reversed(bodies))
    url = f"http://127.0.0.1:{port}/v1/traces"
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def worker() -> None:
            nonlocal acked, refused
            while queue:
                body = queue.pop()
                while True:
                    headers = {"Content-Type": "application/x-protobuf"}
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                    if resp.status != 503:
                        break
                    await asyncio.sleep(0.2)
                if resp.status == 200:
                    acked += 1
                else:
                    refused += 1

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return acked, refused


def status(db: str) -> dict | None:
    """serve's writer status over its control API (None if it does not answer one)."""
    try:
        doc = json.loads(Path(db + ".instance.json").read_text())
        req = urllib.request.Request(doc["http"] + "/claude-top/v1/writer")
        req.add_header("X-Claude-Top-Key", doc["key"])
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return None


def run(name: str, exports: int, value_mb: float, small: int, args) -> None:
    value_bytes = int(value_mb * 1_000_000)
    tmp = tempfile.TemporaryDirectory(prefix="claude-top-large-")
    db = os.path.join(tmp.name, "large.duckdb")
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_top.cli", "serve", "--db", db,
         "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    print(f"\n== {name}: {exports} exports of one span with a {value_mb:g} MB attribute, "
          f"then {small} small ones ({args.in_flight} in flight)")  # fmt: skip
    try:
        wait_listening(http_port, proc)
        time.sleep(1.0)
        sampler = Sampler(proc.pid)
        base_main, base_tree = sampler.sample()
        large = [span_export(value_bytes, i) for i in range(exports)]
        smalls = [span_export(0, exports + i) for i in range(small)]
        with sampler:
            t0 = sampler.started = time.monotonic()
            acked, refused = asyncio.run(send(http_port, large, args.in_flight))
            acked_large_s = time.monotonic() - t0
            if smalls:
                a, r = asyncio.run(send(http_port, smalls, args.in_flight))
                acked, refused = acked + a, refused + r
            acked_s = time.monotonic() - t0
            indexed_s = None
            last = None
            while time.monotonic() - t0 < args.timeout:
                last = status(db)
                if last is not None and last["indexed_seq"] >= last["journalled_seq"] >= acked:
                    indexed_s = time.monotonic() - t0
                    break
                if proc.poll() is not None:
                    break
                time.sleep(0.25)
        peak_main, peak_tree = sampler.peak_main, sampler.peak_tree
        idle = []
        for second in range(1, args.idle + 1):
            time.sleep(1.0)
            if second in (1, 5, 15, 30, 45, 60, 75) or second == args.idle:
                idle.append((second, *sampler.sample()))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()

    from claude_top.core.store.database import Store

    store = Store.open(db, read_only=True)
    cur = store.cursor()
    spans = cur.execute("SELECT count(*) FROM spans").fetchone()[0]
    big = cur.execute(
        "SELECT max(length(json_extract_string(attributes, '$.tool_input'))) FROM spans"
    ).fetchone()[0]
    failed = cur.execute("SELECT count(*), any_value(error) FROM ingest_failed").fetchone()
    journal = store.journal_backlog()[0]
    store.close()
    size = sum(p.stat().st_size for p in Path(tmp.name).rglob("*") if p.is_file())
    tmp.cleanup()

    print(f"acknowledged {acked} of {exports + small} ({refused} refused) in {acked_s:.1f} s "
          f"(the large ones in {acked_large_s:.1f} s)")  # fmt: skip
    if indexed_s is not None:
        print(f"all indexed {indexed_s:.1f} s after the first send")
    else:
        seen = f"{last['indexed_seq']} of {last['journalled_seq']}" if last else "unknown"
        print(f"NOT all indexed after {args.timeout:.0f} s (indexed seq {seen})")
    print(f"after the stop: {spans} spans stored, {failed[0]} in ingest_failed"
          + (f" ({failed[1][:100]})" if failed[0] else "")
          + f", {journal} exports left in the journal; the large value stored at "
          f"{big or 0:,} characters; files {size / 1e6:.1f} MB")  # fmt: skip
    print(f"RSS before: serve {base_main:.0f} MB (tree {base_tree:.0f} MB); peak: serve "
          f"{peak_main:.0f} MB at {sampler.peak_at:.1f} s (tree {peak_tree:.0f} MB)")  # fmt: skip
    print("RSS after the last export, no traffic: "
          + ", ".join(f"{s} s {m:.0f} MB (tree {t:.0f})" for s, m, t in idle))  # fmt: skip
    errors = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
    if errors:
        print(f"serve's stderr: {len(errors)} lines, e.g. {errors[-1][:160]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", choices=(*SCENARIOS, "both"), default="both")
    p.add_argument("--exports", type=int, help="large exports (default: the scenario's)")
    p.add_argument("--value-mb", type=float, help="attribute size in MB (default: the scenario's)")
    p.add_argument("--small", type=int, help="small exports sent after (default: the scenario's)")
    p.add_argument("--in-flight", type=int, default=4)
    p.add_argument("--idle", type=int, default=75, help="seconds sampled with no traffic")
    p.add_argument("--timeout", type=float, default=300.0, help="longest wait for indexing")
    args = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    names = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    for name in names:
        exports, value_mb, small = SCENARIOS[name]
        run(
            name,
            args.exports if args.exports is not None else exports,
            args.value_mb if args.value_mb is not None else value_mb,
            args.small if args.small is not None else small,
            args,
        )


if __name__ == "__main__":
    main()
