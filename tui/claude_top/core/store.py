"""The DuckDB store: opening (schema stamp, clear errors), the ingest journal and the indexer.

One process owns the file. Ingest is two steps, each its own thread:

1. The journal writer appends the validated exports that arrive within a few milliseconds to
   the ingest journal (`core.journal`: segment files beside the database) in one write and
   fdatasync, then resolves every waiting future: receivers acknowledge only after that, so an
   acknowledged export survives a crash.
2. The indexer decodes journalled exports into `spans`, `events` and `metric_points` and
   stores the last journal seq it indexed in the same transaction (exactly once, in arrival
   order, resumed at the next start after a crash); the journal then drops what is indexed.
   It runs right behind the journal: milliseconds at Claude Code's rates, a bounded backlog
   under bursts.

Readers use their own cursors (`Store.reading()`), one per thread. DuckDB keeps every table block
a query or commit read cached up to its memory limit; `Store.using()` marks DuckDB work, and
when the last work in flight ends the cached blocks are dropped (`Store.release_cache`), so a
monitor left open holds megabytes, not the tables it last scanned (the file's pages stay in the
OS page cache, so the next scan still reads from memory).
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import duckdb
import platformdirs

from claude_top import __version__
from claude_top.core import rollup
from claude_top.core.decode import Decoded, Export
from claude_top.core.journal import Entry, Journal, read_body
from claude_top.core.schema import (
    APP_ID,
    SCHEMA_VERSION,
    TABLES,
    column_names,
    create_table_sql,
)
from claude_top.core.worker import (
    Spooled,
    decode_for_index,
    decode_here,
    init_decode_worker,
    is_cumulative_sum,
)

MEMORY = ":memory:"
META_TABLE = "claude_top_meta"
DEFAULT_THREADS = 2
DEFAULT_MEMORY_LIMIT = "1GB"
CACHE_KEEP_BYTES = 4 << 20
DRAIN_QUEUE_NODES = 16_384
DEFAULT_MAX_PENDING_ROWS = 200_000
DEFAULT_MAX_BACKLOG_ROWS = 2_000_000
DEFAULT_MAX_PENDING_BYTES = 256 << 20
DEFAULT_MAX_BACKLOG_BYTES = 4 << 30
GROUP_WINDOW_S = 0.003
GROUP_MAX_ROWS = 50_000
INDEX_CHUNK_EXPORTS = 16
INDEX_PIPELINE_DEPTH = 2
ACK_PRIORITY_MAX_WAIT_S = 0.05
CLOSE_GRACE_S = 5.0
DECODE_WORKERS = max(1, min(2, os.cpu_count() or 1))
WORKER_IDLE_S = 60.0
FAILED_DDL = (
    "CREATE TABLE IF NOT EXISTS ingest_failed (seq BIGINT, signal VARCHAR, received_ns BIGINT, "
    "records BIGINT, error VARCHAR, body BLOB)"
)
INDEXED_SEQ_KEY = "indexed_seq"


RETENTION_COLUMNS = {"spans": "start_ns", "events": "time_ns", "metric_points": "time_ns"}
PRUNE_EVERY_S = 600
IDLE_CHECKPOINT_S = 30.0


class StoreError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


class StoreLocked(StoreError):
    """Another process (a running claude-top) holds the database file."""


def _settle(fut: Future, outcome: int | BaseException) -> None:
    """Resolve an export's future; one its waiter cancelled (the client went away) is left."""
    with contextlib.suppress(InvalidStateError):
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


class Backpressure(RuntimeError):
    """The writer is behind; the exporter should retry later."""

    retry_after_s = 1


def default_db_path() -> Path:
    """The database file in the platform's user data directory."""
    return Path(platformdirs.user_data_dir("claude-top", appauthor=False)) / "claude-top.duckdb"


@contextlib.contextmanager
def transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT on a cursor; ROLLBACK if anything raises."""
    cur.begin()
    try:
        yield cur
        cur.commit()
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            cur.rollback()
        raise


class Store:
    """An open claude-top database."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: str,
        read_only: bool,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only
        self.memory_limit = memory_limit
        self.cache_releases = 0
        self.queue_drains = 0
        self.drain_nodes = DRAIN_QUEUE_NODES
        self._count_nodes = True
        self._use = threading.Condition()
        self._users = 0
        self._releasing = False

    @classmethod
    def open(
        cls,
        path: str | os.PathLike = MEMORY,
        *,
        read_only: bool = False,
        threads: int = DEFAULT_THREADS,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> Store:
        """Open (creating if needed) a claude-top database, checking its schema stamp."""
        path = str(path)
        config = {"threads": threads, "memory_limit": memory_limit}
        is_file = path != MEMORY
        if is_file and read_only and not Path(path).exists():
            raise StoreError(f"no claude-top database at {path}")
        old_umask = os.umask(0o077)  # a new file and any folder made for it: this user only
        try:
            if is_file and not read_only:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(path, read_only=read_only, config=config)
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                raise StoreLocked(
                    f"{path} is in use by a running claude-top; stop it first, or export "
                    "from its UI"
                ) from None
            raise StoreError(f"cannot open {path}: {msg}") from None
        except duckdb.Error as exc:
            raise StoreError(f"cannot open {path}: not a DuckDB database ({exc})") from None
        finally:
            os.umask(old_umask)
        store = cls(con, path, read_only, memory_limit)
        try:
            store._check_or_create_schema()
        except StoreError:
            con.close()
            raise
        return store

    def _check_or_create_schema(self) -> None:
        tables = {
            r[0]
            for r in self.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        if not tables:
            if self.read_only:
                raise StoreError(f"{self.path} is an empty database, not a claude-top one")
            self._create_schema()
            return
        if META_TABLE not in tables:
            raise StoreError(
                f"{self.path} is a DuckDB file that claude-top did not create "
                f"(tables: {', '.join(sorted(tables))}); choose another --db"
            )
        meta = dict(self.con.execute(f"SELECT key, value FROM {META_TABLE}").fetchall())
        if meta.get("app") != APP_ID:
            raise StoreError(f"{self.path} was not created by claude-top; choose another --db")
        version = int(meta.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer claude-top (schema v{version}, "
                f"this is v{SCHEMA_VERSION}, claude-top {__version__}); upgrade claude-top "
                "or choose another --db"
            )
        if version == 1 and not self.read_only:
            self._add_rollups()
        elif version == 1:
            raise StoreError(
                f"{self.path} has schema v1; open it once with `claude-top --db {self.path}` "
                f"(not read-only) so it gains the rollups of v{SCHEMA_VERSION}"
            )
        elif version < SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has an older schema (v{version}) that this claude-top cannot "
                "migrate; choose another --db"
            )

    def _add_rollups(self) -> None:
        """Schema v1 -> v2: the rollup tables, computed from the rows already stored."""
        with transaction(self.con) as con:
            for sql in rollup.create_sql():
                con.execute(sql)
            rollup.build(con)
            con.execute(
                f"UPDATE {META_TABLE} SET value = ? WHERE key = 'schema_version'",
                [str(SCHEMA_VERSION)],
            )

    def _create_schema(self) -> None:
        with transaction(self.con) as con:
            for table in TABLES:
                con.execute(create_table_sql(table))
            for sql in rollup.create_sql():
                con.execute(sql)
            con.execute(FAILED_DDL)
            con.execute(
                "CREATE TABLE IF NOT EXISTS metric_series "
                "(series BLOB PRIMARY KEY, start_ns BIGINT, time_ns BIGINT, value DOUBLE)"
            )
            con.execute(f"CREATE TABLE {META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
            con.executemany(
                f"INSERT INTO {META_TABLE} VALUES (?, ?)",
                [
                    ("app", APP_ID),
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("created_by", __version__),
                    ("created_ns", str(time.time_ns())),
                ],
            )

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for one thread (wrap its work in `using()`, or take it from `reading()`)."""
        return self.con.cursor()

    @contextlib.contextmanager
    def using(self) -> Iterator[None]:
        """Mark DuckDB work in flight (queries, a commit). When the last such work ends, the
        table blocks DuckDB cached for it are dropped (`release_cache`); new work waits for
        that (a few milliseconds) instead of running under the lowered limit."""
        with self._use:
            while self._releasing:
                self._use.wait()
            self._users += 1
        try:
            yield
        finally:
            with self._use:
                self._users -= 1
                last = self._users == 0 and not self._releasing
                self._releasing = last
            if last:
                try:
                    self.release_cache()
                finally:
                    with self._use:
                        self._releasing = False
                        self._use.notify_all()

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor for one thread's queries, its work marked as in `using()`."""
        with self.using():
            cur = self.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def release_cache(self) -> int:
        """Drop the table blocks DuckDB keeps cached beyond CACHE_KEEP_BYTES; returns the bytes
        it held before. Only `using()` calls this, when no DuckDB work is in flight: the memory
        limit is lowered for a moment to what the non-table memory (indexes, uncommitted
        rows) needs plus CACHE_KEEP_BYTES, which evicts cached blocks first, then restored.
        An in-memory database holds no such blocks, so nothing changes there.

        Every buffer a query unpins leaves a node in DuckDB's eviction queues, and DuckDB
        purges the nodes of freed buffers only once a queue holds about 32k of them: about
        200 bytes each (the freed buffer's handle stays allocated), some 45 MB over the queues
        of a monitor left open. Past `drain_nodes`, the limit is set for a moment to one it
        cannot reach, which walks every queue to its end and drops those nodes (uncommitted
        rows may be written to DuckDB's temporary file on the way, and read back when a query
        needs them). Only when DuckDB keeps nothing else in memory (no index loaded yet: no
        row written since the file was opened) is that limit reached, at the table blocks'
        queue: the walk stops there and the rest wait for DuckDB's own purge."""
        try:
            cur = self.con.cursor()
        except duckdb.Error:  # closed: nothing is cached any more
            return 0
        try:
            cached, other = cur.execute(
                "SELECT coalesce(sum(memory_usage_bytes) FILTER (WHERE tag = 'BASE_TABLE'), 0),"
                " coalesce(sum(memory_usage_bytes) FILTER (WHERE tag <> 'BASE_TABLE'), 0) "
                "FROM duckdb_memory()"
            ).fetchone()
            drain = self.path != MEMORY and self._eviction_nodes(cur) > self.drain_nodes
            release = cached > CACHE_KEEP_BYTES
            if drain or release:  # a drain evicts the cached blocks too
                self._limit_for_a_moment(cur, 1 if drain else int(other) + CACHE_KEEP_BYTES)
                self.cache_releases += release
                self.queue_drains += drain
            return int(cached)
        finally:
            cur.close()

    def _limit_for_a_moment(self, cur: duckdb.DuckDBPyConnection, limit: int) -> None:
        """Evict down to `limit` bytes, then restore the configured memory limit."""
        try:  # a limit it cannot reach is refused, after evicting what it could
            cur.execute(f"SET memory_limit = '{limit}B'")
        except duckdb.OutOfMemoryException:
            pass
        finally:
            cur.execute(f"SET memory_limit = '{self.memory_limit}'")

    def _eviction_nodes(self, cur: duckdb.DuckDBPyConnection) -> int:
        """The nodes in DuckDB's eviction queues (0 where DuckDB cannot tell)."""
        if not self._count_nodes:
            return 0
        try:
            return int(
                cur.execute(
                    "SELECT coalesce(sum(approximate_size), 0) FROM duckdb_eviction_queues()"
                ).fetchone()[0]
            )
        except duckdb.CatalogException:  # a DuckDB before duckdb_eviction_queues()
            self._count_nodes = False
            return 0

    @property
    def journal_dir(self) -> Path | None:
        """Where the ingest journal's segments live (None: in memory, with the database)."""
        return None if self.path == MEMORY else Path(self.path + ".journal")

    def indexed_seq(self) -> int:
        """The last journal seq whose export is in the tables."""
        with self.reading() as cur:
            row = cur.execute(
                f"SELECT value FROM {META_TABLE} WHERE key = ?", [INDEXED_SEQ_KEY]
            ).fetchone()
        return int(row[0]) if row else 0

    def journal_backlog(self) -> tuple[int, int]:
        """(exports, records) acknowledged but not yet indexed (a writer indexes them)."""
        if self.journal_dir is None:
            return 0, 0
        return Journal(self.journal_dir, self.indexed_seq(), read_only=True).pending()

    def write(self, batches: Iterable[Decoded]) -> None:
        """Write decoded batches in one transaction (synchronous; tests and loaders)."""
        _Committer(self).commit(list(batches))

    def size_bytes(self) -> int:
        """Bytes the database takes: the file, its WAL and the ingest journal's segments
        (in memory: DuckDB's own count)."""
        if self.path == MEMORY:
            row = self.con.cursor().execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()")
            return int(row.fetchone()[0] or 0)
        paths = [self.path, self.path + ".wal"]
        with contextlib.suppress(OSError):
            paths += [str(p) for p in self.journal_dir.iterdir()]
        total = 0
        for p in paths:
            with contextlib.suppress(OSError):
                total += os.path.getsize(p)
        return total

    def prune(self, before_ns: int, cur: duckdb.DuckDBPyConnection | None = None) -> int:
        """Delete telemetry older than `before_ns` (retention) and recompute the rollups
        that summed it; returns the rows deleted."""
        deleted = 0
        with self.using(), transaction(cur or self.cursor()) as tx:
            rollup.begin(tx)
            for table, time_col in RETENTION_COLUMNS.items():
                rollup.touch_before(tx, table, before_ns)
                deleted += tx.execute(
                    f"DELETE FROM {table} WHERE {time_col} < ?", [before_ns]
                ).fetchone()[0]
            rollup.refresh(tx)
        return deleted

    def checkpoint(self) -> bool:
        """Fold the WAL into the file now; False if skipped (another write is running, or
        there is no file)."""
        if self.read_only or self.path == MEMORY:
            return False
        with self.using():
            cur = self.con.cursor()
            try:
                cur.execute("CHECKPOINT")
            except duckdb.TransactionException:
                return False
            finally:
                cur.close()
        return True

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.close()


_decode_pool: ProcessPoolExecutor | None = None
_decode_pool_lock = threading.Lock()


def _shared_decode_pool() -> ProcessPoolExecutor | None:
    """The decode worker processes, shared by the whole program.

    Decoding is pure Python; in other processes it uses the other core instead of contending
    for the GIL that the receivers and the UI need.
    """
    global _decode_pool
    with _decode_pool_lock:
        if _decode_pool is None:
            try:
                _decode_pool = ProcessPoolExecutor(
                    DECODE_WORKERS,
                    mp_context=mp.get_context("spawn"),
                    initializer=init_decode_worker,
                    initargs=(os.getpid(),),
                )
            except (OSError, ValueError):
                return None
        return _decode_pool


def _stop_decode_pool() -> None:
    """Let the decode workers exit once what they were given is done; the next export that
    needs decoding spawns them again."""
    global _decode_pool
    with _decode_pool_lock:
        pool, _decode_pool = _decode_pool, None
    if pool is not None:
        pool.shutdown(wait=False)


def _new_spool(store: Store) -> str:
    """An empty folder for the decode workers' Parquet files: `<db>.spool` beside a database
    file (what an earlier run left there is stale: the journal holds every export), else a
    temporary one."""
    if store.path == MEMORY:
        return tempfile.mkdtemp(prefix="claude-top-spool-")
    path = store.path + ".spool"
    shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path, 0o700)
    return path


_STAGE = "rollup_stage"
"""The temporary table `_Committer._insert` binds a batch of row tuples into, once."""


@dataclass
class _SeriesState:
    start_ns: int | None
    time_ns: int
    value: float


class _Committer:
    """Turns decoded batches into one DuckDB transaction (cumulative sums become increments)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cur = store.cursor()
        with store.using():
            rows = self.cur.execute(
                "SELECT series, start_ns, time_ns, value FROM metric_series"
            ).fetchall()
        self.series = {s: _SeriesState(start, t, v) for s, start, t, v in rows}
        self._added: set[str] = set()
        self._recompute: set[str] = set()

    def commit(
        self,
        batches: list[Decoded],
        indexed_seq: int | None = None,
        failed: Iterable[tuple[Entry, str, bytes | None]] = (),
    ) -> int:
        """Write the batches in one transaction; returns the telemetry rows offered.

        `indexed_seq` (the journal seq these batches end at) and the journal records that could
        not be decoded (`failed`: entry, error, body; kept for a fixed claude-top) are stored
        in the same transaction.
        """
        merged: dict[str, list[tuple]] = {table: [] for table in TABLES}
        spooled: dict[str, list[Spooled]] = {table: [] for table in TABLES}
        for b in batches:
            for table, rows in b.rows.items():
                if isinstance(rows, Spooled):
                    spooled[table].append(rows)
                else:
                    merged[table].extend(rows)
        merged["resources"] = list({r[0]: r for r in merged["resources"]}.values())
        metric_rows, series_updates = self._cumulative_to_increments(merged["metric_points"])
        merged["metric_points"] = metric_rows
        offered = 0
        try:
            with self.store.using(), transaction(self.cur) as cur:
                rollup.begin(cur)
                self._added, self._recompute = set(), set()
                for table in TABLES:
                    if merged[table]:
                        self._insert_rows(table, merged[table])
                    if spooled[table]:
                        self._insert_spooled(table, spooled[table])
                    if table != "resources":
                        offered += len(merged[table]) + sum(f.rows for f in spooled[table])
                rollup.refresh(cur, self._added - self._recompute)
                self._commit_state(cur, series_updates, failed, indexed_seq)
        finally:
            for files in spooled.values():
                for f in files:
                    with contextlib.suppress(OSError):
                        os.remove(f.path)
        self.series.update(series_updates)
        return offered

    def _commit_state(
        self,
        cur: duckdb.DuckDBPyConnection,
        series_updates: dict[bytes, _SeriesState],
        failed: Iterable[tuple[Entry, str, bytes | None]],
        indexed_seq: int | None,
    ) -> None:
        """What a commit stores beside the rows: series totals, failed exports, journal seq."""
        if series_updates:
            cur.executemany(
                "INSERT OR REPLACE INTO metric_series VALUES (?, ?, ?, ?)",
                [(k, s.start_ns, s.time_ns, s.value) for k, s in series_updates.items()],
            )
        for entry, error, body in failed:
            cur.execute(
                "INSERT INTO ingest_failed VALUES (?, ?, ?, ?, ?, ?)",
                [entry.seq, entry.signal, entry.received_ns, entry.records, error, body],
            )
        if indexed_seq is not None:
            cur.execute(
                f"INSERT OR REPLACE INTO {META_TABLE} VALUES (?, ?)",
                [INDEXED_SEQ_KEY, str(indexed_seq)],
            )

    def _insert_rows(self, table: str, rows: list[tuple]) -> None:
        """Row tuples in one statement: each column passed as a typed list and unnested."""
        names = ", ".join(column_names(table))
        lists = ", ".join(f"unnest(${i}::{sql}[])" for i, (_, sql) in enumerate(TABLES[table], 1))
        params = [list(values) for values in zip(*rows, strict=True)]
        self._insert(table, f"(SELECT {lists}) AS s({names})", params, len(rows), stage=True)

    def _insert_spooled(self, table: str, files: list[Spooled]) -> None:
        paths = [f.path for f in files]
        self._insert(table, "read_parquet($1)", [paths], sum(f.rows for f in files))

    def _insert(
        self, table: str, source: str, params: list, offered: int, stage: bool = False
    ) -> None:
        """Insert `source`'s rows (redelivered ones are ignored) and tell the rollups: the new
        rows' sums when every row offered was new, else the keys to recompute.

        The rollups read the rows twice more: with `stage`, the source (typed lists, costly to
        bind) is bound once into a temporary table, dropped when they have read it; Parquet is
        cheaper read again (only the columns the rollups need) than copied.
        """
        names = ", ".join(column_names(table))
        staged = stage and table in rollup.TIME_COLUMN
        if staged:
            self.cur.execute(f"CREATE TEMP TABLE {_STAGE} AS SELECT {names} FROM {source}", params)
            source, params = _STAGE, []
        stored = self.cur.execute(
            f"INSERT OR IGNORE INTO {table} ({names}) SELECT {names} FROM {source}", params
        ).fetchone()[0]
        touch = rollup.touch_sql(table, source)
        if touch is None:
            return
        self.cur.execute(touch, params)
        if stored == offered and table not in self._recompute:
            self.cur.execute(rollup.added_sql(table, source), params)
            self._added.add(table)
        else:
            self._recompute.add(table)
        if staged:
            self.cur.execute(f"DROP TABLE {_STAGE}")

    def _cumulative_to_increments(
        self, rows: list[tuple]
    ) -> tuple[list[tuple], dict[bytes, _SeriesState]]:
        """Fill `increment` for cumulative sums from each series' previous running total.

        A new start time (or a drop in a monotonic total) restarts the series; an older or
        repeated point adds nothing. Returns the rows and the new series states, which are
        applied only after the commit succeeds.
        """
        if not any(map(is_cumulative_sum, rows)):
            return rows, {}
        out: list[tuple] = []
        cumulative: list[list] = []
        for r in rows:
            if is_cumulative_sum(r):
                cumulative.append(list(r))
            else:
                out.append(r)
        cumulative.sort(key=lambda r: r[_M_TIME])
        seen: set[bytes] = set()
        updates: dict[bytes, _SeriesState] = {}
        for r in cumulative:
            value = r[_M_VALUE]
            if r[_M_UID] in seen or value is None:
                r[_M_INCREMENT] = 0.0 if value is not None else None
                out.append(tuple(r))
                continue
            seen.add(r[_M_UID])
            key, start, t = r[_M_SERIES], r[_M_START], r[_M_TIME]
            prev = updates.get(key) or self.series.get(key)
            if prev is None or (start is not None and start != prev.start_ns):
                inc = value
            elif t <= prev.time_ns:
                inc = 0.0
            else:
                inc = value - prev.value
                if inc < 0 and r[_M_MONOTONIC]:
                    inc = value
            r[_M_INCREMENT] = inc
            if prev is None or inc or t > prev.time_ns:
                updates[key] = _SeriesState(start, t, value)
            out.append(tuple(r))
        return out, updates


_MC = column_names("metric_points")
_M_UID, _M_SERIES, _M_MONOTONIC = (_MC.index(c) for c in ("uid", "series", "monotonic"))
_M_START, _M_TIME, _M_VALUE, _M_INCREMENT = (
    _MC.index(c) for c in ("start_ns", "time_ns", "value", "increment")
)


@dataclass
class WriterStats:
    """Counters the UI header and `serve` show."""

    exports_committed: int = 0
    rows_committed: int = 0
    commits: int = 0
    last_commit_ns: int = 0
    pending_rows: int = 0
    pending_bytes: int = 0
    rows_indexed: int = 0
    backlog_rows: int = 0
    backlog_bytes: int = 0
    last_index_ns: int = 0
    index_errors: int = 0
    last_index_error: str = ""
    rows_pruned: int = 0
    idle_checkpoints: int = 0


class StoreWriter:
    """The journal writer (group commit, then acknowledge) and the indexer behind it."""

    def __init__(
        self,
        store: Store,
        max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS,
        max_backlog_rows: int = DEFAULT_MAX_BACKLOG_ROWS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
        decode_in_worker: bool = True,
        retention_s: int | None = None,
        worker_idle_s: float = WORKER_IDLE_S,
    ) -> None:
        self.store = store
        self.decode_in_worker = decode_in_worker
        self.worker_idle_s = worker_idle_s
        self._workers_last_used: float | None = None
        self.retention_s = retention_s
        self._next_prune = time.monotonic()
        self._checkpoint_at: float | None = None  # when an idle checkpoint is due
        self.max_pending_rows = max_pending_rows
        self.max_backlog_rows = max_backlog_rows
        self.max_pending_bytes = max_pending_bytes
        self.max_backlog_bytes = max_backlog_bytes
        self.stats = WriterStats()
        self._queue: queue.Queue[tuple[Export, Future] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._indexed = threading.Condition(self._lock)
        if not store.read_only:
            store.con.execute(FAILED_DDL)
        self._indexed_seq = store.indexed_seq()
        self.journal = Journal(store.journal_dir, self._indexed_seq)
        self._adopt_table_journal()
        self._committed_seq = self.journal.last_seq
        backlog = [e for e in self.journal.entries() if e.seq > self._indexed_seq]
        self.stats.backlog_rows = sum(e.records for e in backlog)
        self.stats.backlog_bytes = sum(e.length for e in backlog)
        for problem in self.journal.damage:
            self.stats.index_errors += 1
            self.stats.last_index_error = problem
        self._committer = _Committer(store)
        self._closed = False
        self._stop_index_at: float | None = None
        self.spool_dir: str | None = None
        if decode_in_worker:
            # Now, not at the first export: a UI started after this (Textual) replaces
            # sys.stderr, and multiprocessing's resource tracker cannot start without its fd
            # (pools made again after an idle stop reuse the tracker started here).
            _shared_decode_pool()
            self.spool_dir = _new_spool(store)
        self._journal_thread = threading.Thread(
            target=self._run_journal, name="claude-top-journal", daemon=True
        )
        self._index_thread = threading.Thread(
            target=self._run_indexer, name="claude-top-indexer", daemon=True
        )
        self._journal_thread.start()
        self._index_thread.start()

    def _adopt_table_journal(self) -> None:
        """Move a journal kept by an earlier claude-top in the `ingest_journal` table."""
        with self.store.reading() as cur:
            found = cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'ingest_journal'"
            ).fetchone()[0]
            if not found:
                return
            rows = cur.execute(
                "SELECT signal, received_ns, records, body FROM ingest_journal ORDER BY seq"
            ).fetchall()
            if rows:
                self.journal.append(rows)
            cur.execute("DROP TABLE ingest_journal")

    # -- journal ------------------------------------------------------------------------------

    def submit(self, export: Export) -> Future:
        """Queue an export; the future resolves once it is committed. Raises Backpressure."""
        fut: Future = Future()
        rows, size = export.count, len(export.body)
        if not rows:
            fut.set_result(0)
            return fut
        with self._lock:
            if self._closed:
                raise Backpressure("claude-top is shutting down")
            s = self.stats
            if s.pending_rows and (
                s.pending_rows + rows > self.max_pending_rows
                or s.pending_bytes + size > self.max_pending_bytes
            ):
                raise Backpressure(
                    f"writer is behind ({s.pending_rows} rows, {s.pending_bytes >> 20} MB "
                    "pending); retry shortly"
                )
            if s.backlog_rows and (  # what is pending will be journalled too
                s.backlog_rows + s.pending_rows + rows > self.max_backlog_rows
                or s.backlog_bytes + s.pending_bytes + size > self.max_backlog_bytes
            ):
                raise Backpressure(
                    f"indexer is behind ({s.backlog_rows} rows, {s.backlog_bytes >> 20} MB "
                    "journalled); retry shortly"
                )
            s.pending_rows += rows
            s.pending_bytes += size
        self._queue.put((export, fut))
        return fut

    def _run_journal(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            if item is None:
                break
            group = [item]
            rows = item[0].count
            deadline = time.monotonic() + GROUP_WINDOW_S
            stop = False
            while rows < GROUP_MAX_ROWS:
                remaining = deadline - time.monotonic()
                try:
                    nxt = q.get(timeout=remaining) if remaining > 0 else q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                rows += nxt[0].count
            self._commit_journal(group, rows)
            if stop:
                break
        with self._indexed:
            self._indexed.notify_all()

    def _commit_journal(self, group: list[tuple[Export, Future]], rows: int) -> None:
        size = sum(len(e.body) for e, _ in group)
        try:
            first = self.journal.append(
                [(e.signal, e.received_ns, e.count, e.body) for e, _ in group]
            )
        except Exception as exc:  # nothing was acknowledged: the exporters retry
            with self._lock:
                self.stats.pending_rows -= rows
                self.stats.pending_bytes -= size
            for _, fut in group:
                _settle(fut, exc)
            return
        with self._indexed:
            s = self.stats
            s.pending_rows -= rows
            s.pending_bytes -= size
            s.backlog_rows += rows
            s.backlog_bytes += size
            s.rows_committed += rows
            s.exports_committed += len(group)
            s.commits += 1
            s.last_commit_ns = time.time_ns()
            self._committed_seq = first + len(group) - 1
            self._indexed.notify_all()
        for export, fut in group:
            _settle(fut, export.count)

    # -- indexer ------------------------------------------------------------------------------

    def _run_indexer(self) -> None:
        """Index until closed; an unexpected error is counted and indexing resumes."""
        while True:
            try:
                self._index_loop()
                return
            except Exception as exc:
                with self._lock:
                    self.stats.index_errors += 1
                    self.stats.last_index_error = f"indexer: {exc!r}"
                time.sleep(0.5)

    def _maybe_prune(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Apply the retention window, at most every PRUNE_EVERY_S (in the indexer's thread)."""
        if not self.retention_s or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        try:
            deleted = self.store.prune(time.time_ns() - self.retention_s * 1_000_000_000, cur)
        except duckdb.Error as exc:
            with self._lock:
                self.stats.index_errors += 1
                self.stats.last_index_error = f"retention: {exc}"
            return
        with self._lock:
            self.stats.rows_pruned += deleted

    def _yield_to_acks(self) -> None:
        """Let waiting exports be journalled (and acknowledged) first; bounded, never starved."""
        deadline = time.monotonic() + ACK_PRIORITY_MAX_WAIT_S
        while self.stats.pending_rows and not self._closed and time.monotonic() < deadline:
            time.sleep(0.0005)

    def _journal_done(self) -> bool:
        return self._closed and not self._journal_thread.is_alive()

    def _index_loop(self) -> None:
        """Fetch journal chunks, decode them in the workers while the previous chunk commits."""
        cur = self.store.cursor()
        fetched = self._indexed_seq
        self._maybe_prune(cur)
        inflight: collections.deque[tuple[list[Entry], Callable[[], list]]] = collections.deque()
        while True:
            with self._indexed:
                while fetched >= self._committed_seq and not inflight and not self._closed:
                    self._indexed.wait(0.5)
                    if self.retention_s and time.monotonic() >= self._next_prune:
                        break
                    if self._workers_idle() or self._checkpoint_due():
                        break
                stop_at = self._stop_index_at
                if stop_at is not None and time.monotonic() > stop_at:
                    return
                if not inflight and fetched >= self._committed_seq and self._journal_done():
                    return
                committed = self._committed_seq
            if not inflight:
                self._maybe_prune(cur)
                if fetched >= committed and self._checkpoint_due():
                    self._checkpoint_idle()
                if self._workers_idle():
                    self._workers_last_used = None
                    _stop_decode_pool()
            if fetched < committed and len(inflight) < INDEX_PIPELINE_DEPTH:
                entries = self.journal.read(fetched, committed, INDEX_CHUNK_EXPORTS)
                if entries:
                    self._yield_to_acks()
                    inflight.append((entries, self._start_decode(entries)))
                    fetched = entries[-1].seq
                    if len(inflight) < INDEX_PIPELINE_DEPTH:
                        continue
                else:
                    fetched = committed
            if inflight:
                entries, outcomes = inflight.popleft()
                if not self._index_chunk(entries, outcomes()):
                    inflight.clear()
                    fetched = self._indexed_seq

    def _checkpoint_due(self) -> bool:
        """Nothing was indexed for IDLE_CHECKPOINT_S since the last commit: fold the rows
        DuckDB holds in memory until a checkpoint into the file (its WAL is folded on its own
        only past `checkpoint_threshold`, 16 MB: tens of MB of rows kept in memory)."""
        due = self._checkpoint_at
        return due is not None and time.monotonic() >= due

    def _checkpoint_idle(self) -> None:
        self._checkpoint_at = None
        if self.store.checkpoint():
            with self._lock:
                self.stats.idle_checkpoints += 1
        else:  # another write was running: try again later
            self._checkpoint_at = time.monotonic() + IDLE_CHECKPOINT_S

    def _workers_idle(self) -> bool:
        """This writer's decode workers have had nothing to do for `worker_idle_s`."""
        last = self._workers_last_used
        return last is not None and time.monotonic() - last >= self.worker_idle_s

    def _start_decode(self, entries: list[Entry]) -> Callable[[], list[Decoded | Exception]]:
        """Start decoding journal entries in the worker processes; returns how to collect them."""
        for _ in range(2):  # a pool just stopped for idleness is replaced once
            pool = _shared_decode_pool() if self.decode_in_worker else None
            if pool is None:
                break
            try:
                futures = [pool.submit(decode_for_index, e, self.spool_dir) for e in entries]
            except BrokenProcessPool:
                self.decode_in_worker = False
                break
            except RuntimeError:  # shut down
                continue
            else:
                self._workers_last_used = time.monotonic()

                def collect(futures=futures) -> list[Decoded | Exception]:
                    outcomes = [f.exception() or f.result() for f in futures]
                    if any(isinstance(o, BrokenProcessPool) for o in outcomes):
                        self.decode_in_worker = False
                        return decode_here(entries)
                    return outcomes

                return collect
        outcomes = decode_here(entries)
        return lambda: outcomes

    def _index_chunk(self, entries: list[Entry], outcomes: list[Decoded | Exception]) -> bool:
        """Commit one decoded chunk and move the journal past it; False if the commit failed."""
        decoded: list[Decoded] = []
        failed: list[tuple[Entry, str, bytes | None]] = []
        records = sum(e.records for e in entries)
        for entry, outcome in zip(entries, outcomes, strict=True):
            if isinstance(outcome, Exception):  # kept in ingest_failed for a fixed claude-top
                error = f"export {entry.seq}: {outcome}"
                with self._lock:
                    self.stats.index_errors += 1
                    self.stats.last_index_error = error
                try:
                    body = read_body(entry)
                except OSError:
                    body = None
                failed.append((entry, error, body))
                continue
            decoded.append(outcome)
        try:
            self._committer.commit(decoded, indexed_seq=entries[-1].seq, failed=failed)
        except Exception as exc:
            with self._lock:
                self.stats.index_errors += 1
                self.stats.last_index_error = str(exc)
            time.sleep(0.2)
            return False
        with self._indexed:
            s = self.stats
            s.rows_indexed += records
            s.backlog_rows -= records
            s.backlog_bytes -= sum(e.length for e in entries)
            s.last_index_ns = time.time_ns()
            self._indexed_seq = entries[-1].seq
            if self.store.path != MEMORY:
                self._checkpoint_at = time.monotonic() + IDLE_CHECKPOINT_S
            self._indexed.notify_all()
        self.journal.release(entries[-1].seq)
        return True

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until everything acknowledged so far is indexed (queryable)."""
        deadline = time.monotonic() + timeout
        with self._indexed:
            target = self._committed_seq
            while self._indexed_seq < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._indexed.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, index what time allows (the rest at the next start), stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + timeout
        self._queue.put(None)
        self._journal_thread.join(max(0.0, deadline - time.monotonic()))
        with self._indexed:
            self._stop_index_at = deadline
            self._indexed.notify_all()
        # the indexer stops between chunks: let the one it is committing finish
        self._index_thread.join(max(0.0, deadline - time.monotonic()) + CLOSE_GRACE_S)
        if not self._journal_thread.is_alive():
            self.journal.close()
        if self.spool_dir is not None and not self._index_thread.is_alive():
            shutil.rmtree(self.spool_dir, ignore_errors=True)
