"""The DuckDB store: cumulative sums become increments, every metric type is kept, the schema
stamp guards the file, a reopened file keeps its data and its series state, and the ingest
journal is indexed after a crash."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import duckdb
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from claude_top.core.sources.otlp.decode import accept_protobuf, decode_protobuf, decode_request
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store, StoreError
from claude_top.core.store.writer import StoreWriter
from truth import GRPC_FIXTURES, Truth, grpc_requests

DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
S = 1_000_000_000  # one second in ns
T0 = 1_795_000_000 * S


def kv(key: str, value) -> KeyValue:
    k = KeyValue(key=key)
    if isinstance(value, str):
        k.value.string_value = value
    else:
        k.value.double_value = value
    return k


def sum_request(
    points: list[tuple[int, int, float]],
    *,
    temporality=CUMULATIVE,
    monotonic: bool = True,
    name: str = "claude_code.cost.usage",
    model: str = "claude-sonnet-4-5",
    as_int: bool = False,
) -> ExportMetricsServiceRequest:
    """One Sum metric with a data point (start_ns, time_ns, value) per entry, one series."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "otel-sdk-app"))
    sm = rm.scope_metrics.add()
    sm.scope.name = "test"
    metric = sm.metrics.add(name=name, unit="USD")
    metric.sum.aggregation_temporality = temporality
    metric.sum.is_monotonic = monotonic
    for start, t, value in points:
        p = metric.sum.data_points.add(start_time_unix_nano=start, time_unix_nano=t)
        if as_int:
            p.as_int = int(value)
        else:
            p.as_double = value
        p.attributes.extend([kv("session.id", "s-1"), kv("model", model)])
    return req


def write(store: Store, req: ExportMetricsServiceRequest) -> None:
    write_rows(store, [decode_request("metrics", req)])


def total(store: Store, name: str = "claude_code.cost.usage", **where) -> float:
    sql = "SELECT coalesce(sum(increment), 0) FROM metric_points WHERE name = ?"
    params: list = [name]
    for column, value in where.items():
        sql += f" AND {column} = ?"
        params.append(value)
    return store.cursor().execute(sql, params).fetchone()[0]


def increments(store: Store) -> list[float]:
    rows = (
        store.cursor()
        .execute("SELECT increment FROM metric_points ORDER BY time_ns, received_ns")
        .fetchall()
    )
    return [r[0] for r in rows]


@pytest.fixture
def store():
    s = Store.open(":memory:")
    yield s
    s.close()


# --- cumulative sums -----------------------------------------------------------------------


def test_cumulative_points_become_increments(store):
    start = T0
    for i, value in enumerate([0.5, 0.75, 1.25]):
        write(store, sum_request([(start, T0 + (i + 1) * S, value)]))
    assert increments(store) == [0.5, 0.25, 0.5]
    assert total(store) == pytest.approx(1.25)


def test_cumulative_points_in_one_export_become_increments(store):
    # out of time order inside the export, too
    write(store, sum_request([(T0, T0 + 3 * S, 9.0), (T0, T0 + S, 2.0), (T0, T0 + 2 * S, 5.0)]))
    assert increments(store) == [2.0, 3.0, 4.0]
    assert total(store) == 9.0


def test_resent_cumulative_point_adds_nothing(store):
    write(store, sum_request([(T0, T0 + S, 2.0)]))
    write(store, sum_request([(T0, T0 + 2 * S, 5.0)]))
    write(store, sum_request([(T0, T0 + 2 * S, 5.0)]))  # the same export again
    write(store, sum_request([(T0, T0 + 2 * S, 5.0), (T0, T0 + 3 * S, 6.0)]))  # re-sent + new
    assert total(store) == 6.0
    assert store.cursor().execute("SELECT count(*) FROM metric_points").fetchone()[0] == 3


def test_older_cumulative_point_adds_nothing_and_does_not_rewind_the_series(store):
    write(store, sum_request([(T0, T0 + 3 * S, 10.0)]))
    write(store, sum_request([(T0, T0 + 2 * S, 7.0)]))  # late, older
    assert total(store) == 10.0
    write(store, sum_request([(T0, T0 + 4 * S, 12.0)]))
    assert total(store) == 12.0  # +2 from 10, not +5 from the late 7


def test_new_start_time_restarts_the_series(store):
    write(store, sum_request([(T0, T0 + S, 4.0), (T0, T0 + 2 * S, 6.0)]))
    restart = T0 + 10 * S  # the process restarted: the running total starts again
    write(store, sum_request([(restart, restart + S, 1.5)]))
    write(store, sum_request([(restart, restart + 2 * S, 2.0)]))
    assert increments(store) == [4.0, 2.0, 1.5, 0.5]
    assert total(store) == 8.0


def test_monotonic_total_that_drops_without_a_start_time_restarts(store):
    write(store, sum_request([(0, T0 + S, 10.0)]))
    write(store, sum_request([(0, T0 + 2 * S, 3.0)]))
    assert total(store) == 13.0


def test_non_monotonic_cumulative_sum_can_go_down(store):
    write(store, sum_request([(T0, T0 + S, 10.0)], monotonic=False, name="queue.depth"))
    write(store, sum_request([(T0, T0 + 2 * S, 4.0)], monotonic=False, name="queue.depth"))
    assert increments(store) == [10.0, -6.0]


def test_series_are_kept_apart_by_attributes(store):
    write(store, sum_request([(T0, T0 + S, 1.0)], model="a"))
    write(store, sum_request([(T0, T0 + S, 5.0)], model="b"))
    write(store, sum_request([(T0, T0 + 2 * S, 3.0)], model="a"))
    write(store, sum_request([(T0, T0 + 2 * S, 6.0)], model="b"))
    assert total(store, model="a") == 3.0
    assert total(store, model="b") == 6.0


def test_cumulative_int_points(store):
    name = "claude_code.token.usage"
    write(store, sum_request([(T0, T0 + S, 100)], as_int=True, name=name))
    write(store, sum_request([(T0, T0 + 2 * S, 250)], as_int=True, name=name))
    assert total(store, name) == 250


def test_cumulative_series_continues_across_reopen(tmp_path):
    path = tmp_path / "ct.duckdb"
    store = Store.open(path)
    write(store, sum_request([(T0, T0 + S, 5.0)]))
    store.close()
    store = Store.open(path)
    try:
        write(store, sum_request([(T0, T0 + 2 * S, 8.0)]))
        assert increments(store) == [5.0, 3.0]
    finally:
        store.close()


def test_cumulative_series_continues_across_a_restarted_writer(tmp_path):
    path = tmp_path / "ct.duckdb"
    for t, value in ((T0 + S, 5.0), (T0 + 2 * S, 8.0)):
        store = Store.open(path)
        writer = StoreWriter(store, decode_in_worker=False)
        export = accept_protobuf("metrics", sum_request([(T0, t, value)]).SerializeToString())
        writer.submit(export).result(10)
        assert writer.sync(10)
        writer.close()
        store.close()
    store = Store.open(path, read_only=True)
    try:
        assert increments(store) == [5.0, 3.0]
    finally:
        store.close()


def test_an_export_whose_client_went_away_does_not_stop_the_journal(tmp_path):
    """The receiver cancels the future of a client that hung up; later exports still commit."""
    store = Store.open(tmp_path / "ct.duckdb")
    writer = StoreWriter(store, decode_in_worker=False)
    entered, release = threading.Event(), threading.Event()
    append = writer.journal.append

    def held(records):
        entered.set()
        release.wait(10)
        return append(records)

    writer.journal.append = held
    try:
        gone = writer.submit(
            accept_protobuf("metrics", sum_request([(T0, T0 + S, 5.0)]).SerializeToString())
        )
        assert entered.wait(10)
        assert gone.cancel()
        release.set()
        later = accept_protobuf("metrics", sum_request([(T0, T0 + 2 * S, 8.0)]).SerializeToString())
        assert writer.submit(later).result(10) == 1
        assert writer.sync(10)
        # the cancelled export was journalled before its client left: it is stored once
        assert increments(store) == [5.0, 3.0]
    finally:
        release.set()
        writer.close()
        store.close()


# --- delta sums and other metric types -----------------------------------------------------


def test_delta_sums_are_stored_as_is(store):
    write(store, sum_request([(T0, T0 + S, 1.0)], temporality=DELTA))
    write(store, sum_request([(T0 + S, T0 + 2 * S, 1.0)], temporality=DELTA))
    write(store, sum_request([(T0 + 2 * S, T0 + 3 * S, 0.25)], temporality=DELTA))
    assert increments(store) == [1.0, 1.0, 0.25]
    # the same delta export again counts once
    write(store, sum_request([(T0 + S, T0 + 2 * S, 1.0)], temporality=DELTA))
    assert total(store) == 2.25


def test_fixture_deltas_sum_to_the_api_request_cost(store):
    truth = Truth(*GRPC_FIXTURES)
    for name in GRPC_FIXTURES:
        for signal, body in grpc_requests(name):
            if signal == "metrics":
                write_rows(store, [decode_protobuf(signal, body)])
    assert total(store) == pytest.approx(truth.cost(), abs=1e-9)
    temporality = store.cursor().execute("SELECT DISTINCT temporality FROM metric_points")
    assert temporality.fetchall() == [("delta",)]


def other_types_request() -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    gauge = sm.metrics.add(name="g")
    gauge.gauge.data_points.add(time_unix_nano=T0, as_double=0.5)
    gauge.gauge.data_points.add(time_unix_nano=T0 + S, as_int=7)
    gauge.gauge.data_points.add(time_unix_nano=T0 + 2 * S, as_double=float("nan"))
    hist = sm.metrics.add(name="h")
    hist.histogram.aggregation_temporality = CUMULATIVE
    hist.histogram.data_points.add(
        time_unix_nano=T0, count=3, sum=12.5, bucket_counts=[1, 2], explicit_bounds=[5.0]
    )
    hist.histogram.data_points.add(time_unix_nano=T0 + S, count=0)  # no sum
    exp = sm.metrics.add(name="e")
    exp.exponential_histogram.aggregation_temporality = DELTA
    p = exp.exponential_histogram.data_points.add(time_unix_nano=T0, count=4, sum=2.0, scale=1)
    p.positive.offset = 1
    p.positive.bucket_counts.extend([1, 3])
    summary = sm.metrics.add(name="s")
    q = summary.summary.data_points.add(time_unix_nano=T0, count=10, sum=99.0)
    q.quantile_values.add(quantile=0.5, value=9.0)
    q.quantile_values.add(quantile=0.99, value=float("inf"))
    return req


def test_gauge_histogram_exponential_histogram_summary_are_kept(store):
    write(store, other_types_request())
    rows = (
        store.cursor()
        .execute(
            "SELECT name, metric_type, value, count, increment, data FROM metric_points "
            "ORDER BY name, time_ns"
        )
        .fetchall()
    )
    by = [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
    assert by == [
        ("e", "exponential_histogram", 2.0, 4, None),
        ("g", "gauge", 0.5, None, None),
        ("g", "gauge", 7.0, None, None),
        ("g", "gauge", None, None, None),  # NaN is not a value
        ("h", "histogram", 12.5, 3, None),
        ("h", "histogram", None, 0, None),
        ("s", "summary", 99.0, 10, None),
    ]
    data = {(r[0], r[3]): json.loads(r[5]) for r in rows if r[5]}
    assert [int(n) for n in data["h", 3]["bucket_counts"]] == [1, 2]
    assert data["h", 3]["explicit_bounds"] == [5.0]
    assert [int(n) for n in data["e", 4]["positive"]["bucket_counts"]] == [1, 3]
    assert data["s", 10]["quantile_values"][1] == {"quantile": 0.99, "value": "Infinity"}


def test_other_types_and_sums_in_one_export(store):
    req = other_types_request()
    req.MergeFrom(sum_request([(T0, T0 + S, 3.0)]))
    write(store, req)
    assert store.cursor().execute("SELECT count(*) FROM metric_points").fetchone()[0] == 8
    assert total(store) == 3.0


# --- idempotency ----------------------------------------------------------------------------


def test_writing_the_same_decoded_export_twice_counts_once(store):
    truth = Truth("continued.grpc")
    for _ in range(2):
        for signal, body in grpc_requests("continued.grpc"):
            write_rows(store, [decode_protobuf(signal, body)])
    cur = store.cursor()
    assert cur.execute("SELECT count(*) FROM spans").fetchone()[0] == len(truth.spans)
    assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == len(truth.events)
    assert cur.execute("SELECT count(*) FROM metric_points").fetchone()[0] == truth.data_points


def test_duplicates_inside_one_transaction_count_once(store):
    truth = Truth("basic.grpc")
    batches = [decode_protobuf(s, b) for s, b in grpc_requests("basic.grpc")]
    write_rows(store, batches + batches)
    cur = store.cursor()
    assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == len(truth.events)
    assert total(store) == pytest.approx(truth.cost(), abs=1e-9)


# --- schema stamp and files ------------------------------------------------------------------


def test_foreign_duckdb_file_is_refused_naming_the_problem(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE invoices (id INTEGER)")
    con.close()
    with pytest.raises(StoreError) as err:
        Store.open(path)
    message = str(err.value)
    assert str(path) in message
    assert "did not create" in message
    assert "invoices" in message
    # and it was not touched
    con = duckdb.connect(str(path), read_only=True)
    tables = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    con.close()
    assert tables == [("invoices",)]


def _stamp(path: Path, **meta: str) -> None:
    store = Store.open(path)
    store.close()
    con = duckdb.connect(str(path))
    for key, value in meta.items():
        con.execute("UPDATE claude_top_meta SET value = ? WHERE key = ?", [value, key])
    con.close()


def test_newer_schema_version_is_refused(tmp_path):
    path = tmp_path / "ct.duckdb"
    _stamp(path, schema_version="999")
    with pytest.raises(StoreError, match="newer") as err:
        Store.open(path)
    assert "999" in str(err.value)
    with pytest.raises(StoreError, match="newer"):
        Store.open(path, read_only=True)


def test_older_schema_version_is_refused(tmp_path):
    path = tmp_path / "ct.duckdb"
    _stamp(path, schema_version="0")
    with pytest.raises(StoreError, match="older"):
        Store.open(path)


def test_file_stamped_by_another_app_is_refused(tmp_path):
    path = tmp_path / "ct.duckdb"
    _stamp(path, app="someone-else")
    with pytest.raises(StoreError, match="not created by claude-top"):
        Store.open(path)


def test_non_duckdb_file_is_refused(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="not a valid DuckDB database") as err:
        Store.open(path)
    assert str(path) in str(err.value)
    assert path.read_text().startswith("these are my notes")


def test_read_only_open_of_a_missing_file(tmp_path):
    with pytest.raises(StoreError, match="no claude-top database"):
        Store.open(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


def test_reopening_a_file_keeps_the_data(tmp_path):
    path = tmp_path / "sub" / "ct.duckdb"
    truth = Truth(*GRPC_FIXTURES)
    with pytest.raises(StoreError, match=f"no folder {tmp_path / 'sub'} for {path}"):
        Store.open(path)
    assert not path.parent.exists()
    store = Store.open(path, make_folder=True)  # the default path's folder is made
    for name in GRPC_FIXTURES:
        for signal, body in grpc_requests(name):
            write_rows(store, [decode_protobuf(signal, body)])
    store.close()
    for read_only in (False, True):
        store = Store.open(path, read_only=read_only)
        try:
            cur = store.cursor()
            assert cur.execute("SELECT count(*) FROM spans").fetchone()[0] == len(truth.spans)
            assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == len(truth.events)
            got = cur.execute(
                "SELECT sum(cost_usd) FROM events WHERE name = 'claude_code.api_request'"
            ).fetchone()[0]
            assert got == pytest.approx(truth.cost(), abs=1e-9)
        finally:
            store.close()


def test_duckdb_threads_and_memory_are_bounded(store):
    cur = store.cursor()
    assert cur.execute("SELECT current_setting('threads')").fetchone()[0] == 2
    limit = cur.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "").upper() in {"1GB", "953.6MIB", "1.0GIB", "1000.0MB", "953.6MB"}


# --- the ingest journal ----------------------------------------------------------------------


def test_journalled_exports_are_indexed_after_a_crash(tmp_path):
    """Acknowledged but not yet indexed when the process died: indexed at the next start."""
    path = tmp_path / "ct.duckdb"
    truth = Truth("errors.grpc")
    store = Store.open(path)
    writer = StoreWriter(store, decode_in_worker=False)
    entered, never = threading.Event(), threading.Event()
    index_commit = writer._committer.commit

    def stuck(*args, **kwargs):  # the indexer never gets to commit: a crash before indexing
        entered.set()
        never.wait(10)
        return index_commit(*args, **kwargs)

    writer._committer.commit = stuck
    try:
        for signal, body in grpc_requests("errors.grpc"):
            writer.submit(accept_protobuf(signal, body)).result(10)  # acknowledged
        assert entered.wait(10)
        # the files as a crash would leave them: the exports are in the journal's segments
        crashed = tmp_path / "crashed.duckdb"
        shutil.copy(path, crashed)
        wal = Path(str(path) + ".wal")
        if wal.exists():
            shutil.copy(wal, str(crashed) + ".wal")
        shutil.copytree(str(path) + ".journal", str(crashed) + ".journal")
    finally:
        never.set()
        writer.close()
        store.close()

    store = Store.open(crashed)
    try:
        cur = store.cursor()
        journalled = store.journal_backlog()
        records = len(truth.spans) + len(truth.events) + truth.data_points
        assert journalled == (len(grpc_requests("errors.grpc")), records)
        assert cur.execute("SELECT count(*) FROM spans").fetchone()[0] == 0
        writer = StoreWriter(store, decode_in_worker=False)
        assert writer.sync(10)
        writer.close()
        cur = store.cursor()
        assert store.journal_backlog() == (0, 0)
        assert list(Path(str(crashed) + ".journal").iterdir()) == []  # indexed: released
        assert cur.execute("SELECT count(*) FROM spans").fetchone()[0] == len(truth.spans)
        assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == len(truth.events)
        assert total(store) == pytest.approx(truth.cost(), abs=1e-9)
    finally:
        store.close()


def test_checkpoint_waits_for_no_one(tmp_path):
    """At exit the indexer may still be committing: the checkpoint is skipped, not an error."""
    store = Store.open(tmp_path / "ct.duckdb")
    store.con.execute("CREATE TABLE scratch (a INTEGER PRIMARY KEY)")
    store.con.execute("INSERT INTO scratch SELECT range FROM range(100000)")
    other = store.cursor()
    other.begin()  # a large write still running, as the indexer's can be
    other.execute("INSERT OR REPLACE INTO scratch SELECT range FROM range(100000, 200000)")
    other.execute("DELETE FROM scratch WHERE a < 10")
    store.checkpoint()
    other.commit()
    store.checkpoint()
    assert store.cursor().execute("SELECT count(*) FROM scratch").fetchone() == (199990,)
    store.close()


def test_an_idle_writer_folds_its_rows_into_the_file(tmp_path, monkeypatch):
    """Rows committed since the last checkpoint are kept in DuckDB's memory (and the WAL) until
    one: once nothing was indexed for IDLE_CHECKPOINT_S the indexer checkpoints, once."""
    monkeypatch.setattr("claude_top.core.store.writer.IDLE_CHECKPOINT_S", 0.3)
    path = tmp_path / "ct.duckdb"
    store = Store.open(path)
    writer = StoreWriter(store, decode_in_worker=False)
    truth = Truth(*GRPC_FIXTURES)
    try:
        for name in GRPC_FIXTURES:
            for signal, body in grpc_requests(name):
                writer.submit(accept_protobuf(signal, body)).result(10)
        assert writer.sync(10)
        wal = Path(str(path) + ".wal")
        assert wal.stat().st_size > 0
        assert writer.stats.idle_checkpoints == 0
        deadline = time.monotonic() + 10
        while writer.stats.idle_checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.stats.idle_checkpoints == 1
        assert not wal.exists() or wal.stat().st_size == 0
        time.sleep(1.0)  # nothing new: no second checkpoint
        assert writer.stats.idle_checkpoints == 1
        cur = store.cursor()
        assert cur.execute("SELECT count(*) FROM spans").fetchone()[0] == len(truth.spans)
        assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == len(truth.events)
    finally:
        writer.close()
        store.close()


def test_an_idle_writer_in_memory_never_checkpoints(monkeypatch):
    monkeypatch.setattr("claude_top.core.store.writer.IDLE_CHECKPOINT_S", 0.1)
    store = Store.open()
    writer = StoreWriter(store, decode_in_worker=False)
    try:
        for signal, body in grpc_requests("basic.grpc"):
            writer.submit(accept_protobuf(signal, body)).result(10)
        assert writer.sync(10)
        time.sleep(1.0)
        assert writer.stats.idle_checkpoints == 0
    finally:
        writer.close()
        store.close()


def test_duckdb_hands_back_freed_memory_in_the_background():
    """After a large commit or a checkpoint DuckDB's allocator returns what it used within
    seconds (bench/large_exports.py: some 50 MB less held after a burst of large exports)."""
    store = Store.open()
    with store.reading() as cur:
        assert cur.execute("SELECT current_setting('allocator_background_threads')").fetchone()[0]
    store.close()
