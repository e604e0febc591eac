"""The ingest queue bounds in bytes: what 200,000 pending and 2,000,000 journalled records cost.

The writer bounds its two queues in records (`DEFAULT_MAX_PENDING_ROWS` waiting in memory for
the journal, `DEFAULT_MAX_BACKLOG_ROWS` journalled and waiting for the indexer); beyond them
exporters are told to retry. This fills each one to its bound with Claude-Code-shaped exports
sent over OTLP/gRPC by a separate process, and measures what it costs:

1. pending: the journal writer is held (its commit waits on an event), so every export stays in
   memory; the receivers' process RSS is read at the first UNAVAILABLE, then the writer is
   released and every held export must be acknowledged.
2. backlog: the indexer is held, so exports are acknowledged and stay in the journal; RSS and
   the database file + WAL size are read at the first UNAVAILABLE.

Plus the protobuf bytes per record of each signal (what a pending record holds in memory and a
journalled one on disk), from the same generators as bench/ingest.py.

    python bench/queue_bound.py [--batch 512] [--skip-backlog]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import METHODS, SIGNALS, UNIT, free_port, make_batches


def rss_kb(pid: int | None = None) -> int:
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fill_sender(port: int, batch: int, in_flight: int) -> None:
    """Send exports (fresh span ids in each) with `in_flight` outstanding until told to stop
    on stdin; print `sent acked unavailable` counts."""
    import random

    import grpc

    from claude_top.core.sources.otlp.decode import REQUEST_TYPES

    template = REQUEST_TYPES["traces"].FromString(make_batches(batch, batch)[0])
    spans = template.resource_spans[0].scope_spans[0].spans
    rng = random.Random(1)

    def fresh() -> bytes:
        for span in spans:
            span.span_id = rng.randbytes(8)
        return template.SerializeToString()

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
        counts = {"sent": 0, "acked": 0, "unavailable": 0}
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]
        ) as channel:
            export = channel.unary_unary(METHODS["traces"])

            async def worker() -> None:
                while not stop.is_set():
                    body = fresh()
                    counts["sent"] += 1
                    try:
                        await export(body, timeout=600)
                        counts["acked"] += 1
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.UNAVAILABLE:
                            raise
                        counts["unavailable"] += 1
                        await asyncio.sleep(0.2)

            workers = [asyncio.create_task(worker()) for _ in range(in_flight)]
            await stop.wait()
            await asyncio.wait(workers, timeout=120)
        print(counts["sent"], counts["acked"], counts["unavailable"], flush=True)

    asyncio.run(run())


async def fill(what: str, batch: int, tmp: str) -> dict:
    """Hold the journal (`pending`) or the indexer (`backlog`) and send until UNAVAILABLE."""
    from claude_top.core.store import writer as store_mod
    from claude_top.core.store.database import Store
    from claude_top.core.store.writer import StoreWriter
    from claude_top.receiver.server import ReceiverConfig, Receivers

    release = threading.Event()
    original_commit = store_mod.StoreWriter._commit_journal
    original_indexer = store_mod.StoreWriter._run_indexer

    def held_commit(self, group, rows):
        release.wait()
        original_commit(self, group, rows)

    def held_indexer(self):
        release.wait()
        original_indexer(self)

    if what == "pending":
        store_mod.StoreWriter._commit_journal = held_commit
    else:
        store_mod.StoreWriter._run_indexer = held_indexer
    db = os.path.join(tmp, f"{what}.duckdb")
    store = Store.open(db)
    writer = StoreWriter(store)
    receivers = Receivers(writer, ReceiverConfig(grpc_port=free_port(), http_port=free_port()))
    await receivers.start()
    await asyncio.sleep(1)
    base = rss_kb()
    bound = writer.max_pending_rows if what == "pending" else writer.max_backlog_rows
    in_flight = bound // batch + 8 if what == "pending" else 16
    sender = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sender", "--port", str(receivers.grpc_port),
        "--batch", str(batch), "--in-flight", str(in_flight),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    started = time.monotonic()
    peak = base
    s = writer.stats
    while True:
        await asyncio.sleep(0.1)
        peak = max(peak, rss_kb())
        held = s.pending_rows if what == "pending" else s.backlog_rows
        if held + batch > bound or time.monotonic() - started > 600:
            break
    await asyncio.sleep(1.0)  # the refusals that follow, and memory settling
    held = s.pending_rows if what == "pending" else s.backlog_rows
    at_bound = rss_kb()
    peak = max(peak, at_bound)
    journal = Path(db + ".journal")
    segments = [str(p) for p in journal.iterdir()] if journal.is_dir() else []
    files = sum(os.path.getsize(p) for p in (db, db + ".wal", *segments) if os.path.exists(p))
    fill_s = time.monotonic() - started
    sender.stdin.close()
    release.set()
    out = (await sender.stdout.read()).decode().split()
    await sender.wait()
    await receivers.stop(1.0)
    drained = writer.sync(120) if what == "pending" else True
    committed = s.rows_committed
    writer.close(5.0)
    store.close()
    store_mod.StoreWriter._commit_journal = original_commit
    store_mod.StoreWriter._run_indexer = original_indexer
    sent, acked, unavailable = (int(x) for x in out) if out else (0, 0, 0)
    return {
        "held": held,
        "bound": bound,
        "base_kb": base,
        "at_bound_kb": at_bound,
        "peak_kb": peak,
        "files": files,
        "fill_s": fill_s,
        "sent": sent,
        "acked": acked,
        "unavailable": unavailable,
        "committed": committed,
        "drained": drained,
    }


def bytes_per_record(batch: int) -> dict[str, float]:
    out = {}
    for signal in SIGNALS:
        bodies = make_batches(20 * batch, batch, signal_=signal)
        out[signal] = sum(map(len, bodies)) / (20 * batch)
    return out


async def bench(args) -> None:
    from claude_top.core.store.writer import DEFAULT_MAX_BACKLOG_ROWS, DEFAULT_MAX_PENDING_ROWS

    print(f"machine    {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    sizes = bytes_per_record(args.batch)
    print("protobuf bytes per record (Claude-Code-shaped, exports of "
          f"{args.batch}):")  # fmt: skip
    for signal, size in sizes.items():
        print(f"  {UNIT[signal]:14} {size:6.0f} B")
    with tempfile.TemporaryDirectory() as tmp:
        p = await fill("pending", args.batch, tmp)
        grown = (p["at_bound_kb"] - p["base_kb"]) * 1024
        print(f"pending (in memory, journal writer held): {p['held']:,} spans at the bound of "
              f"{p['bound']:,}")  # fmt: skip
        print(f"  RSS {p['base_kb'] / 1024:.0f} MB -> {p['at_bound_kb'] / 1024:.0f} MB (peak "
              f"{p['peak_kb'] / 1024:.0f} MB): +{grown / 1e6:.0f} MB, "
              f"{grown / max(1, p['held']):.0f} B per pending span")  # fmt: skip
        print(f"  sender: {p['sent']} exports sent, {p['unavailable']} refused UNAVAILABLE, "
              f"{p['acked']} acknowledged once released; "
              f"{'all indexed' if p['drained'] else 'NOT drained'}")  # fmt: skip
        if not args.skip_backlog:
            b = await fill("backlog", args.batch, tmp)
            grown = (b["at_bound_kb"] - b["base_kb"]) * 1024
            print(f"backlog (journalled, indexer held): {b['held']:,} spans at the bound of "
                  f"{b['bound']:,}, filled in {b['fill_s']:.0f} s")  # fmt: skip
            print(
                f"  database file + WAL + journal {b['files'] / 1e6:,.0f} MB "
                f"({b['files'] / max(1, b['held']):.0f} B per journalled span)"
            )
            print(f"  RSS {b['base_kb'] / 1024:.0f} MB -> {b['at_bound_kb'] / 1024:.0f} MB "
                  f"(peak {b['peak_kb'] / 1024:.0f} MB): +{grown / 1e6:.0f} MB")  # fmt: skip
            print(f"  sender: {b['acked']} exports acknowledged, {b['unavailable']} refused "
                  "UNAVAILABLE")  # fmt: skip
        pending, backlog = DEFAULT_MAX_PENDING_ROWS, DEFAULT_MAX_BACKLOG_ROWS
        print("bounds at these sizes (records x protobuf bytes per record):")
        for signal, size in sizes.items():
            print(f"  {UNIT[signal]:14} pending {pending * size / 1e6:5.0f} MB, "
                  f"journal {backlog * size / 1e6:6.0f} MB")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch", type=int, default=512, help="spans per export")
    ap.add_argument("--skip-backlog", action="store_true", help="only the pending bound")
    ap.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--in-flight", type=int, default=16, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sender:
        fill_sender(args.port, args.batch, args.in_flight)
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
