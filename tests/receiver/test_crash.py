"""Crash safety: several sender processes stream exports over gRPC (each also resent, and sent
twice at once, as retrying exporters do), `claude-top serve` is killed with SIGKILL mid-stream
and restarted on the same file: every acknowledged export is there exactly once; an
unacknowledged one is there whole or not at all, never twice."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

from receiver_harness import SERVICES

from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
from serving import start_serve

SENDERS = 3
SPANS_PER_EXPORT = 20
ACKED_BEFORE_KILL = 150  # exports acknowledged (all senders) before the kill


def export_body(sender: int, batch: int) -> bytes:
    """A traces export whose trace id names (sender, batch) and whose spans are 1..N in it."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "crash-test"
    spans = rs.scope_spans.add().spans
    trace_id = b"\xc7" + sender.to_bytes(3, "big") + batch.to_bytes(8, "big") + b"\x00" * 4
    for i in range(1, SPANS_PER_EXPORT + 1):
        span = spans.add(
            trace_id=trace_id,
            span_id=i.to_bytes(8, "big"),
            name="work",
            start_time_unix_nano=1_700_000_000_000_000_000 + batch * 1000 + i,
            end_time_unix_nano=1_700_000_000_000_000_000 + batch * 1000 + i + 500,
        )
        span.attributes.add(key="session.id").value.string_value = f"sender-{sender}"
    return req.SerializeToString()


def run_sender(sender: int, port: int, ack_path: str, stop) -> None:
    """Send exports until told to stop; append `sender:batch` to `ack_path` for every ack.

    Every export is sent twice at once; every third one also repeats an export that was
    already acknowledged. Only OK answers are recorded.
    """
    import grpc

    fd = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary(SERVICES["traces"])
    acked: list[int] = []
    batch = 0
    try:
        while not stop.is_set():
            sends = [batch, batch]
            if acked and batch % 3 == 0:
                sends.append(acked[len(acked) // 2])
            futures = [(b, call.future(export_body(sender, b), timeout=10)) for b in sends]
            for b, fut in futures:
                try:
                    fut.result()
                except grpc.RpcError:
                    continue
                os.write(fd, f"{sender}:{b}\n".encode())
                if b == batch and (not acked or acked[-1] != b):
                    acked.append(b)
            batch += 1
    finally:
        channel.close()
        os.close(fd)


def acknowledged(ack_dir: Path) -> tuple[set[tuple[int, int]], int]:
    """The (sender, batch) exports acknowledged at least once, and the number of acks."""
    lines = [ln for p in ack_dir.iterdir() for ln in p.read_text().splitlines() if ln]
    return {tuple(map(int, ln.split(":"))) for ln in lines}, len(lines)


def wait_for_acks(ack_dir: Path, want: int, senders: list, timeout: float = 90.0) -> None:
    """Until `want` acks arrived, at least one for every sender."""
    deadline = time.monotonic() + timeout
    while True:
        acked, acks = acknowledged(ack_dir)
        if acks >= want and len({sender for sender, _ in acked}) == len(senders):
            return
        assert all(s.is_alive() for s in senders), "a sender died"
        assert time.monotonic() < deadline, f"fewer than {want} acks in {timeout:.0f} s"
        time.sleep(0.05)


def test_acknowledged_exports_survive_sigkill_exactly_once(tmp_path):
    db = tmp_path / "ct.duckdb"
    ack_dir = tmp_path / "acks"
    ack_dir.mkdir()
    serve, port = start_serve(db)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    senders = [
        ctx.Process(target=run_sender, args=(i, port, str(ack_dir / f"{i}.acks"), stop))
        for i in range(SENDERS)
    ]
    try:
        for s in senders:
            s.start()
        wait_for_acks(ack_dir, ACKED_BEFORE_KILL, senders)
        serve.send_signal(signal.SIGKILL)  # mid-stream: the senders are still sending
        serve.wait(30)
    finally:
        stop.set()
        if serve.poll() is None:
            serve.kill()
        serve.communicate()
        for s in senders:
            s.join(30)
            if s.is_alive():
                s.kill()
    assert all(s.exitcode == 0 for s in senders), [s.exitcode for s in senders]
    acked, acks = acknowledged(ack_dir)
    assert acks > len(acked)  # duplicates were sent and acknowledged too

    # restart on the same file: it opens, and serve resumes indexing the journal
    serve, _ = start_serve(db)
    serve.send_signal(signal.SIGTERM)
    _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    store = Store.open(db)
    try:
        writer = StoreWriter(store, decode_in_worker=False)
        assert writer.sync(30)
        writer.close()
        cur = store.cursor()
        assert store.journal_backlog() == (0, 0)
        assert not any(Path(f"{db}.journal").iterdir())
        rows = cur.execute(
            "SELECT trace_id, count(*), count(DISTINCT span_id) FROM spans GROUP BY trace_id"
        ).fetchall()
        duplicates = cur.execute(
            "SELECT count(*) - count(DISTINCT (trace_id, span_id)) FROM spans"
        ).fetchone()[0]
    finally:
        store.close()
    assert duplicates == 0
    stored: dict[tuple[int, int], int] = {}
    for trace_id, n, distinct in rows:
        raw = bytes.fromhex(trace_id)
        assert raw[0] == 0xC7, trace_id
        key = (int.from_bytes(raw[1:4], "big"), int.from_bytes(raw[4:12], "big"))
        assert n == distinct == SPANS_PER_EXPORT, (key, n, distinct)  # whole, and once
        stored[key] = n
    missing = sorted(acked - stored.keys())
    assert not missing, f"{len(missing)} acknowledged exports lost, e.g. {missing[:5]}"
    senders_seen = {s for s, _ in stored}
    assert senders_seen == set(range(SENDERS))
