"""Decoded rows into one DuckDB transaction: inserts (a redelivered row is ignored), cumulative
sums turned into increments, the rollups brought up to date, and what the writer stores beside
the rows (series totals, exports that failed to decode, the journal position).

Transcript facts go through here too (`commit_transcripts`), and any commit that touches a
session with transcript facts derives that session's transcript rows again in the same
transaction (`reconcile`). Commits from different threads (the indexer, a transcript import)
take turns (`Store.write_lock`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from claude_top.core.pricing import PriceTable
from claude_top.core.schema import INDEXED_SEQ_KEY, META_TABLE, TABLES, column_names
from claude_top.core.sources.otlp.decode import Decoded
from claude_top.core.sources.transcripts.parse import Facts, FileState
from claude_top.core.store import reconcile, rollup
from claude_top.core.store.database import Store, transaction
from claude_top.core.store.decode_worker import Spooled, is_cumulative_sum
from claude_top.core.store.journal import Entry
from claude_top.core.store.transcripts import Written, write_facts

_STAGE = "rollup_stage"
"""The temporary table `Committer._insert` binds a batch of row tuples into, once."""


@dataclass
class _SeriesState:
    start_ns: int | None
    time_ns: int
    value: float


class Committer:
    """Turns decoded batches into one DuckDB transaction (cumulative sums become increments)."""

    def __init__(self, store: Store, prices: PriceTable | None = None) -> None:
        self.store = store
        self._prices = prices
        self.prices_error: str | None = None
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
            with self.store.write_lock, self.store.using(), transaction(self.cur) as cur:
                rollup.begin(cur)
                self._added, self._recompute = set(), set()
                for table in TABLES:
                    if merged[table]:
                        self._insert_rows(table, merged[table])
                    if spooled[table]:
                        self._insert_spooled(table, spooled[table])
                    if table != "resources":
                        offered += len(merged[table]) + sum(f.rows for f in spooled[table])
                if merged["events"] or spooled["events"]:
                    self._reconcile(self._transcript_sessions_touched())
                rollup.refresh(cur, self._added - self._recompute)
                self._commit_state(cur, series_updates, failed, indexed_seq)
        finally:
            for files in spooled.values():
                for f in files:
                    with contextlib.suppress(OSError):
                        os.remove(f.path)
        self.series.update(series_updates)
        return offered

    @property
    def prices(self) -> PriceTable:
        if self._prices is None:
            from claude_top.core import pricing

            self._prices, self.prices_error = pricing.load_safely()
        return self._prices

    def commit_transcripts(
        self, facts: Facts, states: list[FileState], replaced: list[str] = ()
    ) -> tuple[Written, reconcile.Plan]:
        """Store transcript facts and the read states of their files in one transaction, and
        derive the transcript rows of every session they touch; returns what was new and
        what the derivation changed."""
        with self.store.write_lock, self.store.using(), transaction(self.cur) as cur:
            rollup.begin(cur)
            self._added, self._recompute = set(), set()
            written = write_facts(cur, facts, states, replaced)
            plan = self._reconcile(facts.session_ids())
            rollup.refresh(cur, self._added - self._recompute)
        return written, plan

    def _transcript_sessions_touched(self) -> set[str]:
        """Sessions this transaction added events to that have transcript facts."""
        rows = self.cur.execute(
            "SELECT DISTINCT session_id FROM rollup_touched_events "
            "SEMI JOIN transcript_sessions USING (session_id)"
        ).fetchall()
        return {r[0] for r in rows}

    def _reconcile(self, sessions: set[str]) -> reconcile.Plan:
        """Bring the sessions' transcript rows in `events` up to date (in the transaction)."""
        plan = reconcile.plan(self.cur, sessions, self.prices)
        if plan.deleted:
            self._recompute.add("events")
            gone = f"(SELECT * FROM events SEMI JOIN {reconcile.GONE} USING (uid))"
            self.cur.execute(rollup.touch_sql("events", gone))
            self.cur.execute(f"DELETE FROM events WHERE uid IN (SELECT uid FROM {reconcile.GONE})")
        if plan.inserted:
            self._insert("events", reconcile.NEW, [], plan.inserted)
        if plan.sessions:
            self.cur.execute(f"DROP TABLE IF EXISTS {reconcile.GONE}")
            self.cur.execute(f"DROP TABLE IF EXISTS {reconcile.NEW}")
        return plan

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
            known = entry.damage is None  # else the record's header may be what is damaged
            cur.execute(
                "INSERT INTO ingest_failed VALUES (?, ?, ?, ?, ?, ?)",
                [
                    entry.seq,
                    entry.signal if known else None,
                    entry.received_ns if known else None,
                    entry.records if known else None,
                    error,
                    body,
                ],
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
            for sql in rollup.added_sql(table, source):
                self.cur.execute(sql, params)
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


def write_rows(store: Store, batches: Iterable[Decoded]) -> None:
    """Write decoded batches in one transaction (synchronous; tests and loaders)."""
    Committer(store).commit(list(batches))
