"""Decode workers exit after a spell with nothing to decode and are spawned again by the next
export; nothing acknowledged meanwhile is lost."""

from __future__ import annotations

import multiprocessing as mp
import time

from claude_top.core.sources.otlp.decode import accept_protobuf
from claude_top.core.store import writer as store_module
from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
from truth import Truth, grpc_requests


def decode_workers() -> list:
    return [p for p in mp.active_children() if p.is_alive()]


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def send(writer: StoreWriter, fixture: str) -> None:
    for signal, body in grpc_requests(fixture):
        writer.submit(accept_protobuf(signal, body)).result(10)


def test_idle_workers_exit_and_come_back(tmp_path):
    store = Store.open(tmp_path / "w.duckdb")
    writer = StoreWriter(store, worker_idle_s=1.0)
    try:
        send(writer, "basic.grpc")
        assert writer.sync(60)
        assert store_module._decode_pool is not None
        assert 1 <= len(decode_workers()) <= store_module.DECODE_WORKERS
        assert wait_for(lambda: store_module._decode_pool is None)  # idle for 1 s: stopped
        assert wait_for(lambda: decode_workers() == [])
        send(writer, "errors.grpc")  # spawned again
        assert writer.sync(60)
        assert store_module._decode_pool is not None
        assert 1 <= len(decode_workers()) <= store_module.DECODE_WORKERS
        assert writer.decode_in_worker
        assert writer.stats.index_errors == 0
    finally:
        writer.close()
    truth = Truth("basic.grpc", "errors.grpc")
    cur = store.cursor()
    assert cur.execute("SELECT count(*) FROM spans").fetchone()[0] == len(truth.spans)
    assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == len(truth.events)
    store.close()
