"""DuckDB's cached table blocks are dropped when the last DuckDB work ends, never under work in
flight, and the configured memory limit is back afterwards; queries and commits running side
by side with releases lose nothing."""

from __future__ import annotations

import shutil
import threading

import pytest

from claude_top.core.sources.otlp.decode import accept_protobuf
from claude_top.core.store.database import CACHE_KEEP_BYTES, Store
from claude_top.core.store.writer import StoreWriter
from truth import GRPC_FIXTURES, Truth, grpc_requests

ROWS = 300_000
FRESH_ROWS = 50_000  # under a row group: committed rows DuckDB keeps in memory until a checkpoint


def cached_bytes(store: Store) -> int:
    cur = store.cursor()
    try:
        return cur.execute(
            "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
            "WHERE tag = 'BASE_TABLE'"
        ).fetchone()[0]
    finally:
        cur.close()


def memory_limit(store: Store) -> str:
    cur = store.cursor()
    try:
        return cur.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        cur.close()


def scan(cur) -> tuple:
    return cur.execute(
        "SELECT count(*), count(DISTINCT session_id), sum(duration_ms), max(attributes), max(uid) "
        "FROM spans"
    ).fetchone()


@pytest.fixture(scope="module")
def big_db(tmp_path_factory) -> str:
    """A file with ROWS spans on disk (checkpointed, so a scan reads persistent blocks)."""
    path = str(tmp_path_factory.mktemp("cache") / "big.duckdb")
    store = Store.open(path)
    store.cursor().execute(f"""
        INSERT INTO spans (uid, name, start_ns, duration_ms, session_id, attributes)
        SELECT ('\\x' || lpad(to_hex(i), 32, '0'))::BLOB, 'claude_code.tool', i * 1000,
               (i % 997)::DOUBLE, 'session-' || (i % 50),
               '{{"n":' || i || ',"pad":"' || md5(i::VARCHAR) || '"}}'
        FROM range({ROWS}) t(i)
    """)  # fmt: skip
    store.checkpoint()
    store.close()
    return path


def test_blocks_read_are_dropped_when_the_reading_ends(big_db):
    store = Store.open(big_db, memory_limit="512MB")
    try:
        limit = memory_limit(store)
        with store.reading() as cur:
            assert scan(cur)[:3] == (ROWS, 50, float(sum(i % 997 for i in range(ROWS))))
            held = cached_bytes(store)
        assert held > 2 * CACHE_KEEP_BYTES  # the scan cached its blocks while it ran
        assert cached_bytes(store) <= CACHE_KEEP_BYTES
        assert memory_limit(store) == limit
        assert store.cache_releases == 1
        with store.reading() as cur:  # read again from the file: the same answer
            assert scan(cur)[0] == ROWS
    finally:
        store.close()


def test_nothing_is_released_while_other_work_is_in_flight(big_db):
    store = Store.open(big_db)
    try:
        with store.using():
            with store.reading() as cur:
                scan(cur)
            assert cached_bytes(store) > 2 * CACHE_KEEP_BYTES  # one user still in flight
            assert store.cache_releases == 0
        assert cached_bytes(store) <= CACHE_KEEP_BYTES
        assert store.cache_releases == 1
    finally:
        store.close()


def test_rows_not_yet_checkpointed_stay_in_memory(tmp_path, big_db):
    """Rows committed since the last checkpoint live in DuckDB's memory, not in the file: the
    lowered limit leaves room for them, so a release never spills them to temporary files."""
    path = tmp_path / "fresh.duckdb"
    shutil.copy(big_db, path)
    store = Store.open(path)
    try:
        store.cursor().execute("SET checkpoint_threshold = '1GB'")
        with store.reading() as cur:
            cur.execute(f"""
                INSERT INTO events (uid, name, time_ns, session_id, attributes)
                SELECT ('\\x' || lpad(to_hex(i), 32, '0'))::BLOB, 'claude_code.api_request',
                       i, 'session-' || (i % 7), '{{"k":"' || md5(i::VARCHAR) || '"}}'
                FROM range({FRESH_ROWS}) t(i)
            """)  # fmt: skip
            assert scan(cur)[0] == ROWS  # and the file's blocks are cached too
        assert store.cache_releases == 1
        cur = store.cursor()
        in_memory, spilled = cur.execute(
            "SELECT sum(memory_usage_bytes) FILTER (WHERE tag = 'IN_MEMORY_TABLE'), "
            "sum(temporary_storage_bytes) FROM duckdb_memory()"
        ).fetchone()
        assert in_memory > 2 * CACHE_KEEP_BYTES
        assert spilled == 0
        assert cached_bytes(store) <= CACHE_KEEP_BYTES
        assert cur.execute("SELECT count(DISTINCT uid) FROM events").fetchone()[0] == FRESH_ROWS
    finally:
        store.close()


def test_queries_and_indexing_side_by_side_with_releases(tmp_path, big_db):
    """Four reader threads scan in a loop while every fixture is indexed twice over (the second
    time as exporter retries): no query fails, nothing indexed is lost or doubled."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(big_db, path)
    store = Store.open(path)
    writer = StoreWriter(store, decode_in_worker=False)
    errors: list[BaseException] = []
    stop = threading.Event()
    scans = [0] * 4

    def reader(i: int) -> None:
        try:
            while not stop.is_set():
                with store.reading() as cur:
                    assert scan(cur)[0] >= ROWS
                scans[i] += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(2):
            for name in GRPC_FIXTURES:
                for signal, body in grpc_requests(name):
                    writer.submit(accept_protobuf(signal, body)).result(10)
        assert writer.sync(30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        writer.close()
    try:
        assert errors == []
        assert min(scans) > 0
        assert writer.stats.index_errors == 0
        assert store.cache_releases > 0
        truth = Truth(*GRPC_FIXTURES)
        cur = store.cursor()
        assert cur.execute("SELECT count(*) FROM spans").fetchone()[0] == ROWS + len(truth.spans)
        assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == len(truth.events)
        cost = cur.execute(
            "SELECT sum(cost_usd) FROM events WHERE name = 'claude_code.api_request'"
        ).fetchone()[0]
        assert cost == pytest.approx(truth.cost(), abs=1e-12)
        assert memory_limit(store) == "953.6 MiB"  # the default 1GB, restored
    finally:
        store.close()


def eviction_nodes(store: Store) -> int:
    cur = store.cursor()
    try:
        (nodes,) = cur.execute(
            "SELECT sum(approximate_size) FROM duckdb_eviction_queues()"
        ).fetchone()
        return nodes
    finally:
        cur.close()


def test_the_eviction_queues_are_drained_past_their_bound(tmp_path, big_db):
    """Each query leaves nodes in DuckDB's eviction queues (one per buffer it unpinned; most
    are of buffers already freed). Past `drain_nodes` a release walks the queues empty, and
    the answers and the memory limit are as before. A row is written first, as the indexer's
    commits do: it loads the uid index, which stays in memory (with nothing at all left in
    memory, the lowered limit is reached at the table blocks' queue and the walk stops there)."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(big_db, path)
    store = Store.open(path)
    try:
        limit = memory_limit(store)
        store.cursor().execute(
            "INSERT OR IGNORE INTO spans (uid, name, start_ns, session_id) "
            "VALUES ('\\x01'::BLOB, 'claude_code.tool', 1, 'session-x')"
        )
        with store.using():  # no release in between: the nodes pile up
            for _ in range(3):
                with store.reading() as cur:
                    first = scan(cur)
        piled = eviction_nodes(store)
        assert piled > 200
        assert store.queue_drains == 0
        store.drain_nodes = 200
        with store.reading() as cur:
            assert scan(cur) == first
        assert first[0] == ROWS + 1
        assert store.queue_drains == 1
        assert eviction_nodes(store) < 200 < piled
        assert memory_limit(store) == limit
        with store.reading() as cur:
            assert scan(cur) == first
    finally:
        store.close()


def test_below_the_bound_the_queues_are_left_alone(big_db):
    store = Store.open(big_db)
    try:
        for _ in range(3):
            with store.reading() as cur:
                scan(cur)
        assert 0 < eviction_nodes(store) < store.drain_nodes
        assert store.queue_drains == 0
    finally:
        store.close()
