"""Hourly rollups of one kind of event: what the models and tools panes, the cost history and
the limits windows read instead of scanning every event.

- `model_hours`: per session, hour, agent and model, the requests, cost (how much of it
  estimated, how many requests unpriced) and tokens.
- `tool_hours`: per session, hour, agent and tool, the calls, failures and time spent.
- `tool_latency`: per hour, agent, tool and latency bucket (1 % wide), the calls: percentiles
  of a view too large to sort exactly are read from it.

Like `session_hours` (see `rollup`), every row equals a rebuild from the events: a commit whose
events were all new merges their sums in; any other write recomputes the hours it touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

from claude_top.core.names import API_REQUEST, TOOL_RESULT
from claude_top.core.schema import COST_ESTIMATE

BUCKET_NS = 3600 * 10**9
LATENCY_RATIO = 1.02
"""Each latency bucket spans this ratio: a percentile read from buckets is within 1 %."""
_LN_RATIO = math.log(LATENCY_RATIO)


def latency_bucket(col: str) -> str:
    """The latency bucket of a duration in ms (0 for 0.1 ms and less)."""
    return f"greatest(0, ceil(ln(greatest({col}, 0.1) * 10) / {_LN_RATIO!r}))::INTEGER"


def bucket_ms(bucket: int) -> float:
    """A bucket's middle (geometric), in ms."""
    return 0.0 if bucket <= 0 else math.exp((bucket - 0.5) * _LN_RATIO) / 10


@dataclass(frozen=True)
class Hourly:
    """One hourly rollup over the events of one kind."""

    table: str
    kind: str
    groups: tuple[tuple[str, str, str], ...]
    """(column, SQL type, expression over an event) it is grouped by, `hour_ns` included."""
    sums: tuple[tuple[str, str, str, str], ...]
    """(column, SQL type, aggregate over events, aggregate merging rollup rows)."""
    where: str = "TRUE"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.groups)

    @property
    def by_session(self) -> bool:
        return "session_id" in self.keys

    def create_sql(self) -> str:
        cols = [f"{n} {t}" for n, t, _ in self.groups] + [f"{n} {t}" for n, t, _, _ in self.sums]
        return f"CREATE TABLE IF NOT EXISTS {self.table} ({', '.join(cols)})"

    def select(self, where: str = "TRUE", join: str = "", source: str = "events") -> str:
        """Rollup rows computed from `source`'s events (of this kind) matching `where`."""
        groups = ", ".join(f"{expr} AS {name}" for name, _, expr in self.groups)
        sums = ", ".join(f"{agg} AS {name}" for name, _, agg, _ in self.sums)
        return f"""
SELECT {", ".join(self.keys)}, {", ".join(n for n, *_ in self.sums)} FROM (
  SELECT {groups}, {sums} FROM (
    SELECT *, coalesce(time_ns - time_ns % {BUCKET_NS}, -1) AS hour_ns FROM {source}
    WHERE kind = '{self.kind}' AND session_id IS NOT NULL AND ({self.where}) AND ({where})
  ) e {join}
  GROUP BY ALL
)"""

    def merge_select(self, relation: str) -> str:
        """`relation`'s rows (this rollup's columns) merged per key."""
        keys = ", ".join(self.keys)
        sums = ", ".join(f"{merge} AS {name}" for name, _, _, merge in self.sums)
        return f"SELECT {keys}, {sums} FROM ({relation}) GROUP BY {keys}"


HOURLY = (
    Hourly(
        "model_hours",
        API_REQUEST,
        groups=(
            ("session_id", "VARCHAR", "session_id"),
            ("hour_ns", "BIGINT", "hour_ns"),
            ("agent", "VARCHAR", "agent"),
            ("model", "VARCHAR", "coalesce(model, '(unknown)')"),
        ),
        sums=(
            ("api_requests", "BIGINT", "count(*)", "sum(api_requests)"),
            ("cost_usd", "DOUBLE", "sum(cost_usd)", "sum(cost_usd)"),
            (
                "estimated_usd",
                "DOUBLE",
                f"sum(cost_usd) FILTER (WHERE cost_source = '{COST_ESTIMATE}')",
                "sum(estimated_usd)",
            ),
            (
                "estimated_requests",
                "BIGINT",
                f"count(*) FILTER (WHERE cost_source = '{COST_ESTIMATE}')",
                "sum(estimated_requests)",
            ),
            (
                "unpriced_requests",
                "BIGINT",
                "count(*) FILTER (WHERE cost_usd IS NULL)",
                "sum(unpriced_requests)",
            ),
            ("input_tokens", "HUGEINT", "sum(input_tokens)", "sum(input_tokens)"),
            ("output_tokens", "HUGEINT", "sum(output_tokens)", "sum(output_tokens)"),
            ("cache_read_tokens", "HUGEINT", "sum(cache_read_tokens)", "sum(cache_read_tokens)"),
            (
                "cache_creation_tokens",
                "HUGEINT",
                "sum(cache_creation_tokens)",
                "sum(cache_creation_tokens)",
            ),
        ),
    ),
    Hourly(
        "tool_hours",
        TOOL_RESULT,
        groups=(
            ("session_id", "VARCHAR", "session_id"),
            ("hour_ns", "BIGINT", "hour_ns"),
            ("agent", "VARCHAR", "agent"),
            ("tool_name", "VARCHAR", "coalesce(tool_name, '(unknown)')"),
        ),
        sums=(
            ("calls", "BIGINT", "count(*)", "sum(calls)"),
            ("errors", "BIGINT", "count(*) FILTER (WHERE success = false)", "sum(errors)"),
            ("timed", "BIGINT", "count(duration_ms)", "sum(timed)"),
            ("total_ms", "DOUBLE", "sum(duration_ms)", "sum(total_ms)"),
            ("max_ms", "DOUBLE", "max(duration_ms)", "max(max_ms)"),
        ),
    ),
    Hourly(
        "tool_latency",
        TOOL_RESULT,
        groups=(
            ("hour_ns", "BIGINT", "hour_ns"),
            ("agent", "VARCHAR", "agent"),
            ("tool_name", "VARCHAR", "coalesce(tool_name, '(unknown)')"),
            ("bucket", "INTEGER", latency_bucket("duration_ms")),
        ),
        sums=(("calls", "BIGINT", "count(*)", "sum(calls)"),),
        where="duration_ms IS NOT NULL",
    ),
)
BY_TABLE = {h.table: h for h in HOURLY}


def _added(h: Hourly) -> str:
    return f"rollup_added_{h.table}"


def begin(cur: duckdb.DuckDBPyConnection) -> None:
    """The temporary tables a transaction's all-new events' sums are gathered in."""
    for h in HOURLY:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {_added(h)} AS SELECT * FROM {h.table} LIMIT 0")


def added_sql(source: str) -> list[str]:
    """SQL gathering the sums of `source`'s events (all newly stored)."""
    return [f"INSERT INTO {_added(h)} {h.select(source=source)}" for h in HOURLY]


def build(cur: duckdb.DuckDBPyConnection) -> None:
    """Every hourly rollup from all stored events."""
    for h in HOURLY:
        cur.execute(f"DELETE FROM {h.table}")
        cur.execute(f"INSERT INTO {h.table} {h.select()}")


def refresh(cur: duckdb.DuckDBPyConnection, touched: str, merge: bool) -> None:
    """Bring the hourly rollups up to date: merge the gathered sums (`merge`: every event the
    transaction offered was new), else recompute the hours `touched` (a relation of
    session_id, t) names from the stored events."""
    for h in HOURLY:
        if merge:
            _merge(cur, h)
        else:
            _recompute(cur, h, touched)


def _merge(cur: duckdb.DuckDBPyConnection, h: Hourly) -> None:
    added = _added(h)
    if not cur.execute(f"SELECT count(*) FROM {added}").fetchone()[0]:
        return
    on = " AND ".join(f"r.{k} IS NOT DISTINCT FROM a.{k}" for k in h.keys)
    held = f"SELECT r.* FROM {h.table} r SEMI JOIN {added} a ON {on}"
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE rollup_merged AS "
        + h.merge_select(f"{held} UNION ALL SELECT * FROM {added}")
    )
    cur.execute(f"DELETE FROM {h.table} r USING {added} a WHERE {on}")
    cur.execute(f"INSERT INTO {h.table} SELECT * FROM rollup_merged")
    cur.execute(f"DELETE FROM {added}")


def _recompute(cur: duckdb.DuckDBPyConnection, h: Hourly, touched: str) -> None:
    keys = "session_id, hour_ns" if h.by_session else "hour_ns"
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE rollup_keys AS SELECT DISTINCT {keys} FROM "
        f"(SELECT session_id, coalesce(t - t % {BUCKET_NS}, -1) AS hour_ns FROM {touched})"
    )
    lo, hi = cur.execute(
        "SELECT min(hour_ns) FILTER (WHERE hour_ns >= 0), max(hour_ns) FROM rollup_keys"
    ).fetchone()
    if hi is None:
        return
    on = " AND ".join(f"r.{k} = k.{k}" for k in keys.split(", "))
    cur.execute(f"DELETE FROM {h.table} r USING rollup_keys k WHERE {on}")
    ranges = ["time_ns IS NULL"]
    if lo is not None:
        ranges.append(f"(time_ns >= {lo} AND time_ns < {hi + BUCKET_NS})")
    cur.execute(
        f"INSERT INTO {h.table} "
        + h.select(" OR ".join(ranges), f"SEMI JOIN rollup_keys USING ({keys})")
    )
