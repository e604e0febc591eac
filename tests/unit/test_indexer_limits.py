"""Acknowledged means visible, whatever the export's size: huge attribute values are stored cut
(with their original size), the indexer's chunks are bounded in bytes, and an export that cannot
be indexed is kept in `ingest_failed` with the reason instead of blocking what follows."""

from __future__ import annotations

import json
import random

import duckdb
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from claude_top.core.sources.otlp.decode import (
    MAX_VALUE_BYTES,
    accept_protobuf,
    decode_protobuf,
)
from claude_top.core.store import writer as writer_mod
from claude_top.core.store.commit import Committer
from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter

MB = 1_000_000


def span_export(n: int, value: str | None = None, name: str = "claude_code.tool") -> bytes:
    """One span of trace `n` (fresh ids), with a `tool_input` attribute of `value`."""
    rng = random.Random(n)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "claude-code"
    span = rs.scope_spans.add().spans.add(
        trace_id=n.to_bytes(4, "big") + rng.randbytes(12),
        span_id=rng.randbytes(8),
        name=name,
        start_time_unix_nano=1_800_000_000_000_000_000 + n,
        end_time_unix_nano=1_800_000_000_000_000_000 + n + 1_000,
    )
    span.attributes.add(key="session.id").value.string_value = "large"
    if value is not None:
        span.attributes.add(key="tool_input").value.string_value = value
    return req.SerializeToString()


def span_row(body: bytes) -> dict:
    from claude_top.core.schema import column_names

    (row,) = decode_protobuf("traces", body).rows["spans"]
    return dict(zip(column_names("spans"), row, strict=True))


# --- values larger than MAX_VALUE_BYTES ------------------------------------------------------


def test_a_15_mb_attribute_is_stored_cut_with_its_size_beside_it():
    row = span_row(span_export(1, "x" * (15 * MB)))
    attrs = json.loads(row["attributes"])
    assert attrs["tool_input"] == "x" * MAX_VALUE_BYTES
    assert attrs["tool_input.truncated_from"] == 15 * MB
    assert attrs["session.id"] == "large"
    assert row["session_id"] == "large"
    assert len(row["attributes"]) < MAX_VALUE_BYTES + 200


def test_a_value_is_cut_on_a_character_boundary():
    value = "é" * MAX_VALUE_BYTES  # two bytes each: 2 MiB
    attrs = json.loads(span_row(span_export(2, value))["attributes"])
    assert attrs["tool_input"] == "é" * (MAX_VALUE_BYTES // 2)
    assert attrs["tool_input.truncated_from"] == 2 * MAX_VALUE_BYTES


def test_values_up_to_the_limit_are_kept_whole():
    value = "y" * MAX_VALUE_BYTES
    attrs = json.loads(span_row(span_export(3, value))["attributes"])
    assert attrs == {"session.id": "large", "tool_input": value}


def test_names_and_log_bodies_are_cut_with_a_marker():
    row = span_row(span_export(4, "small", name="n" * (3 * MB)))
    assert row["name"] == "n" * MAX_VALUE_BYTES + f"…[truncated from {3 * MB} bytes]"
    req = ExportLogsServiceRequest()
    rec = req.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=1)
    rec.body.string_value = "b" * (2 * MB)
    nested = rec.attributes.add(key="tool_parameters").value.kvlist_value.values.add(key="cmd")
    nested.value.string_value = "c" * (2 * MB)
    (event,) = decode_protobuf("logs", req.SerializeToString()).rows["events"]
    from claude_top.core.schema import column_names

    event = dict(zip(column_names("events"), event, strict=True))
    assert event["body"] == "b" * MAX_VALUE_BYTES + f"…[truncated from {2 * MB} bytes]"
    attrs = json.loads(event["attributes"])
    assert attrs["tool_parameters"] == {
        "cmd": "c" * MAX_VALUE_BYTES,
        "cmd.truncated_from": 2 * MB,
    }


# --- the indexer under large exports ---------------------------------------------------------


def count(store: Store, sql: str) -> int:
    with store.reading() as cur:
        return cur.execute(sql).fetchone()[0]


def test_a_burst_of_large_exports_is_all_indexed(tmp_path):
    """Large exports acknowledged in a burst, then small ones: every one becomes visible, the
    large values cut (under a memory limit that a chunk of them whole exceeds)."""
    store = Store.open(tmp_path / "ct.duckdb", memory_limit="256MB")
    writer = StoreWriter(store)
    try:
        large = [span_export(n, "v" * (12 * MB)) for n in range(12)]
        small = [span_export(100 + n) for n in range(30)]
        futures = [writer.submit(accept_protobuf("traces", b)) for b in large + small]
        assert [f.result(60) for f in futures] == [1] * 42
        assert writer.sync(120), writer.stats
    finally:
        writer.close()
    assert count(store, "SELECT count(*) FROM spans") == 42
    assert count(store, "SELECT count(*) FROM ingest_failed") == 0
    assert count(store, "SELECT max(length(attributes)) FROM spans") < MAX_VALUE_BYTES + 200
    truncated = "SELECT count(*) FROM spans WHERE attributes->>'tool_input.truncated_from' = ?"
    with store.reading() as cur:
        assert cur.execute(truncated, [str(12 * MB)]).fetchone()[0] == 12
    assert store.journal_backlog() == (0, 0)
    store.close()


def poisoned_commits(monkeypatch, poison_trace: int, error: Exception, times: int | None = None):
    """Committer.commit raising `error` for any chunk holding trace `poison_trace` (`times`
    times, or always)."""
    original = Committer.commit
    prefix = poison_trace.to_bytes(4, "big").hex()
    raised = []

    def commit(self, batches, indexed_seq=None, failed=()):
        if times is None or len(raised) < times:
            for b in batches:
                if any(row[1].startswith(prefix) for row in b.rows["spans"]):
                    raised.append(indexed_seq)
                    raise error
        return original(self, batches, indexed_seq, failed)

    monkeypatch.setattr(Committer, "commit", commit)
    return raised


def submit_all(writer: StoreWriter, bodies: list[bytes]) -> None:
    futures = [writer.submit(accept_protobuf("traces", b)) for b in bodies]
    assert [f.result(30) for f in futures] == [1] * len(bodies)


def test_an_export_that_cannot_be_indexed_is_kept_aside_and_the_rest_go_on(monkeypatch):
    bodies = [span_export(n) for n in range(10)]
    raised = poisoned_commits(monkeypatch, 5, duckdb.OutOfMemoryException("injected: no memory"))
    store = Store.open()
    writer = StoreWriter(store, decode_in_worker=False)
    try:
        submit_all(writer, bodies)
        assert writer.sync(30), writer.stats
    finally:
        writer.close()
    assert count(store, "SELECT count(*) FROM spans") == 9
    with store.reading() as cur:
        failed = cur.execute(
            "SELECT seq, signal, records, error, body FROM ingest_failed"
        ).fetchall()
    assert failed == [
        (6, "traces", 1, "export 6 could not be indexed: injected: no memory", bodies[5])
    ]
    assert raised.count(6) == writer_mod.INDEX_ATTEMPTS  # alone, after the chunks that held it
    assert writer.stats.index_errors == len(raised)
    store.close()


def test_a_disk_that_cannot_be_written_is_waited_for_not_blamed_on_the_export(monkeypatch):
    bodies = [span_export(n) for n in range(10)]
    error = duckdb.IOException("injected: No space left on device")
    raised = poisoned_commits(monkeypatch, 5, error, times=writer_mod.INDEX_ATTEMPTS + 2)
    store = Store.open()
    writer = StoreWriter(store, decode_in_worker=False)
    try:
        submit_all(writer, bodies)
        assert writer.sync(60), writer.stats
    finally:
        writer.close()
    assert len(raised) == writer_mod.INDEX_ATTEMPTS + 2
    assert count(store, "SELECT count(*) FROM spans") == 10
    assert count(store, "SELECT count(*) FROM ingest_failed") == 0
    store.close()
