"""The DuckDB store: opening (schema stamp, clear errors) and the group-commit writer.

One process owns the file. The writer thread gathers the exports that arrive within a few
milliseconds into one transaction, commits, then resolves every waiting future: receivers
acknowledge only after that. Readers use their own cursors (`Store.cursor()`), one per thread.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import duckdb
import platformdirs
import pyarrow as pa

from claude_top import __version__
from claude_top.core.decode import Decoded
from claude_top.core.schema import (
    APP_ID,
    SCHEMA_VERSION,
    TABLES,
    arrow_schema,
    column_names,
    create_table_sql,
)

MEMORY = ":memory:"
META_TABLE = "claude_top_meta"
DEFAULT_THREADS = 2
DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_MAX_PENDING_ROWS = 100_000
GROUP_WINDOW_S = 0.003
GROUP_MAX_ROWS = 50_000


class StoreError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


class StoreLocked(StoreError):
    """Another process (a running claude-top) holds the database file."""


class Backpressure(RuntimeError):
    """The writer is behind; the exporter should retry later."""

    retry_after_s = 1


def default_db_path() -> Path:
    """The database file in the platform's user data directory."""
    return Path(platformdirs.user_data_dir("claude-top", appauthor=False)) / "claude-top.duckdb"


class Store:
    """An open claude-top database."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, read_only: bool) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only

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
        if is_file:
            if read_only and not Path(path).exists():
                raise StoreError(f"no claude-top database at {path}")
            if not read_only:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        old_umask = os.umask(0o077)
        try:
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
        store = cls(con, path, read_only)
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
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has an older schema (v{version}) that this claude-top cannot "
                "migrate; choose another --db"
            )

    def _create_schema(self) -> None:
        con = self.con
        con.begin()
        for table in TABLES:
            con.execute(create_table_sql(table))
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
        con.commit()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for one thread."""
        return self.con.cursor()

    def write(self, batches: Iterable[Decoded]) -> None:
        """Write decoded batches in one transaction (synchronous; tests and loaders)."""
        _Committer(self).commit(list(batches))

    def checkpoint(self) -> None:
        if not self.read_only and self.path != MEMORY:
            self.con.execute("CHECKPOINT")

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.close()


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
        self.series: dict[bytes, _SeriesState] = {
            s: _SeriesState(start, t, v)
            for s, start, t, v in self.cur.execute(
                "SELECT series, start_ns, time_ns, value FROM metric_series"
            ).fetchall()
        }

    def commit(self, batches: list[Decoded]) -> int:
        """Write the batches in one transaction; returns the telemetry rows offered."""
        merged: dict[str, list[tuple]] = {table: [] for table in TABLES}
        for b in batches:
            for table, rows in b.rows.items():
                merged[table].extend(rows)
        merged["resources"] = list({r[0]: r for r in merged["resources"]}.values())
        metric_rows, series_updates = self._cumulative_to_increments(merged["metric_points"])
        merged["metric_points"] = metric_rows
        cur = self.cur
        cur.begin()
        try:
            for table, rows in merged.items():
                if rows:
                    self._insert(table, rows)
            if series_updates:
                cur.executemany(
                    "INSERT OR REPLACE INTO metric_series VALUES (?, ?, ?, ?)",
                    [(k, s.start_ns, s.time_ns, s.value) for k, s in series_updates.items()],
                )
            cur.commit()
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cur.rollback()
            raise
        finally:
            with contextlib.suppress(duckdb.Error):
                self.cur.unregister("_incoming")
        self.series.update(series_updates)
        return sum(len(merged[t]) for t in TABLES if t != "resources")

    def _insert(self, table: str, rows: list[tuple]) -> None:
        schema = arrow_schema(table)
        columns = zip(*rows, strict=True)
        arrow = pa.Table.from_arrays(
            [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
            schema=schema,
        )
        names = ", ".join(schema.names)
        self.cur.register("_incoming", arrow)
        self.cur.execute(f"INSERT OR IGNORE INTO {table} ({names}) SELECT {names} FROM _incoming")
        self.cur.unregister("_incoming")

    def _cumulative_to_increments(
        self, rows: list[tuple]
    ) -> tuple[list[tuple], dict[bytes, _SeriesState]]:
        """Fill `increment` for cumulative sums from each series' previous running total.

        A new start time (or a drop in a monotonic total) restarts the series; an older or
        repeated point adds nothing. Returns the rows and the new series states, which are
        applied only after the commit succeeds.
        """
        if not any(r[_M_TYPE] == "sum" and r[_M_TEMPORALITY] == "cumulative" for r in rows):
            return rows, {}
        out: list[tuple] = []
        cumulative: list[list] = []
        for r in rows:
            if r[_M_TYPE] == "sum" and r[_M_TEMPORALITY] == "cumulative":
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
_M_UID, _M_SERIES, _M_TYPE, _M_TEMPORALITY, _M_MONOTONIC = (
    _MC.index(c) for c in ("uid", "series", "metric_type", "temporality", "monotonic")
)
_M_START, _M_TIME, _M_VALUE, _M_INCREMENT = (
    _MC.index(c) for c in ("start_ns", "time_ns", "value", "increment")
)


@dataclass
class WriterStats:
    """Counters the UI header and `serve` show."""

    rows_committed: int = 0
    exports_committed: int = 0
    commits: int = 0
    last_commit_ns: int = 0
    pending_rows: int = 0


class StoreWriter:
    """The single writer thread: group commit, then resolve every waiting future."""

    def __init__(self, store: Store, max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS) -> None:
        self.store = store
        self.max_pending_rows = max_pending_rows
        self.stats = WriterStats()
        self._queue: queue.Queue[tuple[Decoded, Future] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._committer = _Committer(store)
        self._thread = threading.Thread(target=self._run, name="claude-top-writer", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, batch: Decoded) -> Future:
        """Queue a batch; the future resolves once it is committed. Raises Backpressure."""
        fut: Future = Future()
        rows = batch.count
        if not rows:
            fut.set_result(0)
            return fut
        with self._lock:
            if self._closed:
                raise Backpressure("claude-top is shutting down")
            if self.stats.pending_rows and self.stats.pending_rows + rows > self.max_pending_rows:
                raise Backpressure(
                    f"writer is behind ({self.stats.pending_rows} rows pending); retry shortly"
                )
            self.stats.pending_rows += rows
        self._queue.put((batch, fut))
        return fut

    def _run(self) -> None:
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
            self._commit_group(group, rows)
            if stop:
                break

    def _commit_group(self, group: list[tuple[Decoded, Future]], rows: int) -> None:
        try:
            self._committer.commit([b for b, _ in group])
        except Exception as exc:  # the exporters are told to retry; nothing was acknowledged
            for _, fut in group:
                fut.set_exception(exc)
        else:
            now = time.time_ns()
            with self._lock:
                self.stats.rows_committed += rows
                self.stats.exports_committed += len(group)
                self.stats.commits += 1
                self.stats.last_commit_ns = now
            for batch, fut in group:
                fut.set_result(batch.count)
        finally:
            with self._lock:
                self.stats.pending_rows -= rows

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
