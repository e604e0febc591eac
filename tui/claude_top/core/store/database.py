"""The DuckDB database: opening it (schema stamp, clear errors), one cursor per thread, and
dropping what DuckDB caches once the work in flight ends.

Readers use their own cursors (`Store.reading()`), one per thread. DuckDB keeps every table block
a query or commit read cached up to its memory limit; `Store.using()` marks DuckDB work, and
when the last work in flight ends the cached blocks are dropped (`Store.release_cache`), so a
monitor left open holds megabytes, not the tables it last scanned (the file's pages stay in the
OS page cache, so the next scan still reads from memory).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import platformdirs

from claude_top import __version__
from claude_top.core.schema import (
    APP_ID,
    FAILED_DDL,
    INDEXED_SEQ_KEY,
    META_TABLE,
    RETENTION_COLUMNS,
    SCHEMA_VERSION,
    SIDE_RETENTION_COLUMNS,
    SIDE_TABLES,
    TABLES,
    TRANSCRIPT_TABLES,
    TRANSCRIPT_TIME_COLUMNS,
    create_table_sql,
    transcript_table_sql,
)
from claude_top.core.store import rollup
from claude_top.core.store.journal import Journal
from claude_top.core.store.migrate import migrate

MEMORY = ":memory:"
DEFAULT_THREADS = 2
DEFAULT_MEMORY_LIMIT = "1GB"
CACHE_KEEP_BYTES = 4 << 20
DRAIN_QUEUE_NODES = 16_384


_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 1 << 10,
          "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}  # fmt: skip


def _bytes(text: str) -> int:
    """`128MB`, `122.0 MiB`, `1GB` as bytes."""
    t = text.strip().upper().replace(" ", "")
    digits = t.rstrip("KMGTIB")
    return int(float(digits) * _UNITS.get(t[len(digits) :] or "B", 1))


class StoreError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


class StoreLocked(StoreError):
    """Another process (a running claude-top) holds the database file."""


def _check_folder(path: Path, make: bool) -> None:
    """The database's folder exists (or is made, with `make`); raises StoreError otherwise."""
    folder = path.parent
    if make:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or exc
            raise StoreError(f"cannot make the folder {folder} for {path}: {reason}") from None
        return
    if not folder.exists():
        raise StoreError(f"no folder {folder} for {path}: create it first, or check --db")
    if not folder.is_dir():
        raise StoreError(f"{folder} is not a folder, so {path} cannot be made there; check --db")
    if path.is_dir():
        raise StoreError(f"{path} is a folder: --db names the database file, e.g. {path}/ct.duckdb")


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
        self.write_lock = threading.RLock()
        """Held by each write transaction (commits, prunes): one at a time, never a
        conflict between the indexer and a transcript import."""

    @classmethod
    def open(
        cls,
        path: str | os.PathLike = MEMORY,
        *,
        read_only: bool = False,
        threads: int = DEFAULT_THREADS,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        make_folder: bool = False,
    ) -> Store:
        """Open (creating if needed) a claude-top database, checking its schema stamp and that
        the file is whole. Its folder is made only with `make_folder` (the default path's);
        raises StoreError saying what is wrong with the path otherwise."""
        path = str(path)
        config = {"threads": threads, "memory_limit": memory_limit}
        is_file = path != MEMORY
        if is_file and read_only and not Path(path).exists():
            raise StoreError(f"no claude-top database at {path}")
        old_umask = os.umask(0o077)  # a new file and any folder made for it: this user only
        try:
            if is_file and not read_only:
                _check_folder(Path(path), make_folder)
            con = duckdb.connect(path, read_only=read_only, config=config)
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                raise StoreLocked(
                    f"{path} is in use by another process (a running claude-top that did not "
                    "say how to reach it); stop it first"
                ) from None
            raise StoreError(f"cannot open {path}: {msg}") from None
        except OSError as exc:
            raise StoreError(f"cannot open {path}: {exc.strerror or exc}") from None
        except duckdb.Error as exc:
            raise StoreError(f"cannot open {path}: not a DuckDB database ({exc})") from None
        finally:
            os.umask(old_umask)
        # DuckDB's allocator then hands back what a large commit or a checkpoint used within
        # seconds, instead of keeping it (some 80 MB after a burst of large exports)
        with contextlib.suppress(duckdb.Error):
            con.execute("SET allocator_background_threads = true")
        store = cls(con, path, read_only, memory_limit)
        try:
            store._check_whole()
            store._check_or_create_schema()
        except StoreError:
            con.close()
            raise
        except duckdb.Error as exc:
            con.close()
            raise StoreError(f"cannot read {path}: {exc}") from None
        return store

    def _check_whole(self) -> None:
        """A file shorter than the blocks its header lists was cut short (a copy that did not
        finish, a damaged disk): refused now, not at the first query that reads past its end."""
        if self.path == MEMORY:
            return
        block_size, blocks = self.con.execute(
            "SELECT block_size, total_blocks FROM pragma_database_size()"
        ).fetchone()
        size = os.path.getsize(self.path)
        if size < block_size * blocks:
            raise StoreError(
                f"{self.path} is damaged: the file has {size:,} bytes, its blocks need at least "
                f"{block_size * blocks:,} (cut short?); restore it from a copy, or choose "
                "another --db"
            )

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
        if version < 1:
            raise StoreError(
                f"{self.path} has an older schema (v{version}) that this claude-top cannot "
                "migrate; choose another --db"
            )
        if version < SCHEMA_VERSION and self.read_only:
            raise StoreError(
                f"{self.path} has schema v{version}; open it once with `claude-top --db "
                f"{self.path}` (not read-only) so it is brought up to v{SCHEMA_VERSION}"
            )
        if version < SCHEMA_VERSION:
            with transaction(self.con) as con:
                migrate(con)

    def _create_schema(self) -> None:
        with transaction(self.con) as con:
            for table in (*TABLES, *SIDE_TABLES):
                con.execute(create_table_sql(table))
            for table in TRANSCRIPT_TABLES:
                con.execute(transcript_table_sql(table))
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
            return self._release(cur)
        except duckdb.Error:  # invalidated by a fatal error (a full disk): nothing to release
            return 0
        finally:
            cur.close()

    def _release(self, cur: duckdb.DuckDBPyConnection) -> int:
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

    def raise_memory_limit(self) -> bool:
        """Double DuckDB's memory limit, up to DEFAULT_MEMORY_LIMIT (for work a lowered limit
        turned out too small for); False if it is there already."""
        cur = self.con.cursor()
        try:
            (now,) = cur.execute("SELECT current_setting('memory_limit')").fetchone()
            current, top = _bytes(now), _bytes(DEFAULT_MEMORY_LIMIT)
            if current >= top:
                return False
            self.memory_limit = f"{min(top, current * 2)}B"
            cur.execute(f"SET memory_limit = '{self.memory_limit}'")
            return True
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
        """Delete telemetry older than `before_ns` (retention), and the transcript facts as
        old (or a later derivation would bring their rows back), and recompute the rollups
        that summed it; returns the telemetry rows deleted."""
        deleted = 0
        with self.write_lock, self.using(), transaction(cur or self.cursor()) as tx:
            rollup.begin(tx)
            for table, time_col in RETENTION_COLUMNS.items():
                rollup.touch_before(tx, table, before_ns)
                deleted += tx.execute(
                    f"DELETE FROM {table} WHERE {time_col} < ?", [before_ns]
                ).fetchone()[0]
            for table, time_col in SIDE_RETENTION_COLUMNS.items():
                deleted += tx.execute(
                    f"DELETE FROM {table} WHERE {time_col} < ?", [before_ns]
                ).fetchone()[0]
            for table, time_col in TRANSCRIPT_TIME_COLUMNS.items():
                tx.execute(f"DELETE FROM {table} WHERE {time_col} < ?", [before_ns])
            rollup.refresh(tx)
        return deleted

    def checkpoint(self) -> bool:
        """Fold the WAL into the file now; False if skipped (another write is running, there
        is no file) or if it failed (no space left: the WAL stays, and is folded at the next
        start)."""
        if self.read_only or self.path == MEMORY:
            return False
        with self.using():
            try:
                cur = self.con.cursor()
            except duckdb.Error:
                return False
            try:
                cur.execute("CHECKPOINT")
            except duckdb.Error:  # another write is running, or the disk is full
                return False
            finally:
                cur.close()
        return True

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.close()
