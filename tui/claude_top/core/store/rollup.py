"""Rollups: what the sessions and turns panes show, kept beside the rows so those panes read a
few hundred rows instead of scanning every span and event.

- `session_hours`: per session, hour (by the row's own time) and source table, the sums,
  counts, extremes and latest resource the sessions table needs. A window reads the whole
  hours inside it from here and the part-hour at its start from the rows.
- `prompt_turns` (events, per session and prompt.id) and `trace_turns` (spans, per session
  and trace): one session's turns, as `queries.turns` shows them.

Every value is recomputed from the stored rows, never added up from what a batch offered, so
a redelivered export, rows inserted twice, a tool span whose children came first, or a prune
leave the rollups exactly what a scan of the rows would give. The writer records the keys a
transaction touched (`touch_sql`) and `refresh` recomputes those keys in the same
transaction; each recompute reads only rows from the touched keys' earliest time on (plus
rows without a time), which DuckDB's per-row-group min/max lets it skip to.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from claude_top.core.names import (
    API_ERROR,
    API_REQUEST,
    COST_METRIC,
    INTERACTION,
    LLM_REQUEST,
    STATUS_ERROR,
    TOOL_EXECUTION,
    TOOL_RESULT,
    TOOL_SPAN,
    USER_PROMPT,
)
from claude_top.core.schema import COST_ESTIMATE, SOURCE_OTEL, SOURCE_TRANSCRIPT
from claude_top.core.store import hourly

BUCKET_NS = 3600 * 10**9
NO_TIME_BUCKET = -1
"""The bucket of rows without a time: outside every window, inside "all time"."""
TIME_COLUMN = {"events": "time_ns", "spans": "start_ns", "metric_points": "time_ns"}
TURN_KEY = {"events": "prompt_id", "spans": "trace_id"}
"""The column each table's touched rows are keyed by, besides session_id and time."""

SESSION_HOURS_COLUMNS = (
    ("session_id", "VARCHAR"),
    ("hour_ns", "BIGINT"),
    ("src", "VARCHAR"),
    ("first_ns", "BIGINT"),
    ("last_ns", "BIGINT"),
    ("recv_ns", "BIGINT"),
    ("prompts", "BIGINT"),
    ("api_requests", "BIGINT"),
    ("cost_usd", "DOUBLE"),
    ("input_tokens", "HUGEINT"),
    ("output_tokens", "HUGEINT"),
    ("cache_read_tokens", "HUGEINT"),
    ("cache_creation_tokens", "HUGEINT"),
    ("tool_calls", "BIGINT"),
    ("tool_errors", "BIGINT"),
    ("models", "VARCHAR[]"),
    ("resource_id", "BLOB"),
    ("resource_ns", "BIGINT"),
    ("agent", "VARCHAR"),
    ("from_otel", "BOOLEAN"),
    ("from_transcript", "BOOLEAN"),
    ("first_seq", "BIGINT"),
    ("first_seq_ns", "BIGINT"),
    ("api_errors", "BIGINT"),
    ("retries", "BIGINT"),
    ("project", "VARCHAR"),
    ("first_prompt", "VARCHAR"),
    ("first_prompt_ns", "BIGINT"),
    ("estimated_requests", "BIGINT"),
    ("unpriced_requests", "BIGINT"),
    ("not_understood", "BIGINT"),
    ("estimated_cost_usd", "DOUBLE"),
    ("cost_sources", "VARCHAR[]"),
)
PROMPT_TURNS_COLUMNS = (
    ("session_id", "VARCHAR"),
    ("prompt_id", "VARCHAR"),
    ("start_ns", "BIGINT"),
    ("end_ns", "BIGINT"),
    ("trace_id", "VARCHAR"),
    ("api_requests", "BIGINT"),
    ("cost_usd", "DOUBLE"),
    ("tool_errors", "BIGINT"),
    ("tool_list", "VARCHAR[]"),
    ("prompt", "VARCHAR"),
    ("estimated_requests", "BIGINT"),
    ("estimated_cost_usd", "DOUBLE"),
    ("unpriced_requests", "BIGINT"),
)
TRACE_TURNS_COLUMNS = (
    ("session_id", "VARCHAR"),
    ("trace_id", "VARCHAR"),
    ("first_ns", "BIGINT"),
    ("start_ns", "BIGINT"),
    ("duration_ms", "DOUBLE"),
    ("has_interaction", "BOOLEAN"),
    ("prompt", "VARCHAR"),
    ("llm_requests", "BIGINT"),
    ("tool_list", "VARCHAR[]"),
    ("tool_errors", "BIGINT"),
)
ROLLUP_TABLES = {
    "session_hours": SESSION_HOURS_COLUMNS,
    "prompt_turns": PROMPT_TURNS_COLUMNS,
    "trace_turns": TRACE_TURNS_COLUMNS,
}


def create_sql() -> list[str]:
    """CREATE TABLE statements for the rollups (the hourly ones included)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {table} ("
        + ", ".join(f"{name} {sql}" for name, sql in cols)
        + ")"
        for table, cols in ROLLUP_TABLES.items()
    ] + [h.create_sql() for h in hourly.HOURLY]


ALL_TABLES = (*ROLLUP_TABLES, *hourly.BY_TABLE)
"""Every rollup table: dropped and built again when the schema changes."""


def bucket(col: str) -> str:
    """The hour a time falls in (times are never negative), or NO_TIME_BUCKET."""
    return f"coalesce({col} - {col} % {BUCKET_NS}, {NO_TIME_BUCKET})"


_API = f"kind = '{API_REQUEST}'"
_SEQUENCED = f"source = '{SOURCE_OTEL}' AND sequence IS NOT NULL AND time_ns IS NOT NULL"
_SEQ_ORDER = "({t}::HUGEINT * 4294967296 + {s})"
"""The order records are told first by: their time, then their event.sequence (a tie). Prompts
at the same time are told by their text, so an incremental rollup and a rebuild pick the same."""
REDACTED = "<REDACTED>"
"""What Claude Code sends for a prompt's text unless OTEL_LOG_USER_PROMPTS=1."""
_PROMPT_TEXT = (
    f"kind = '{USER_PROMPT}' AND json_extract_string(attributes, '$.prompt') IS NOT NULL "
    f"AND json_extract_string(attributes, '$.prompt') <> '{REDACTED}'"
)
_HOURS_AGGREGATES = {
    "events": f"""
  min(time_ns), max(time_ns), max(received_ns),
  count(*) FILTER (WHERE kind = '{USER_PROMPT}'),
  count(*) FILTER (WHERE {_API}),
  sum(cost_usd) FILTER (WHERE {_API}),
  sum(input_tokens) FILTER (WHERE {_API}),
  sum(output_tokens) FILTER (WHERE {_API}),
  sum(cache_read_tokens) FILTER (WHERE {_API}),
  sum(cache_creation_tokens) FILTER (WHERE {_API}),
  count(*) FILTER (WHERE kind = '{TOOL_RESULT}'),
  count(*) FILTER (WHERE kind = '{TOOL_RESULT}' AND success = false),
  list_sort(list(DISTINCT model) FILTER (WHERE {_API} AND model IS NOT NULL)),
  arg_max(resource_id, time_ns), max(time_ns) FILTER (WHERE resource_id IS NOT NULL),
  max(agent), bool_or(source = '{SOURCE_OTEL}'), bool_or(source = '{SOURCE_TRANSCRIPT}'),
  arg_min(sequence, {_SEQ_ORDER.format(t="time_ns", s="sequence")}) FILTER (WHERE {_SEQUENCED}),
  min(time_ns) FILTER (WHERE {_SEQUENCED}),
  count(*) FILTER (WHERE kind = '{API_ERROR}'), 0, max(project),
  arg_min(json_extract_string(attributes, '$.prompt'),
    (time_ns, json_extract_string(attributes, '$.prompt'))) FILTER (WHERE {_PROMPT_TEXT}),
  min(time_ns) FILTER (WHERE {_PROMPT_TEXT}),
  count(*) FILTER (WHERE {_API} AND cost_source = '{COST_ESTIMATE}'),
  count(*) FILTER (WHERE {_API} AND cost_usd IS NULL),
  count(not_understood),
  sum(cost_usd) FILTER (WHERE {_API} AND cost_source = '{COST_ESTIMATE}'),
  list_sort(list(DISTINCT cost_source) FILTER (WHERE {_API} AND cost_source IS NOT NULL))""",
    "spans": f"""
  min(start_ns), max(coalesce(end_ns, start_ns)), max(received_ns),
  count(*) FILTER (WHERE role = '{INTERACTION}'),
  0, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL,
  arg_max(resource_id, start_ns), max(start_ns) FILTER (WHERE resource_id IS NOT NULL),
  max(agent), true, false, NULL, NULL, 0,
  coalesce(sum(attempt - 1) FILTER (WHERE role = '{LLM_REQUEST}' AND attempt > 1), 0), NULL,
  NULL, NULL, 0, 0, count(not_understood), 0, NULL""",
    "metric_points": f"""
  min(time_ns), max(time_ns), max(received_ns), 0, 0,
  sum(increment) FILTER (WHERE name = '{COST_METRIC}'),
  NULL, NULL, NULL, NULL, 0, 0, NULL,
  arg_max(resource_id, time_ns), max(time_ns) FILTER (WHERE resource_id IS NOT NULL),
  max(agent), true, false, NULL, NULL, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, NULL""",
}


def session_hours_select(
    table: str, where: str = "TRUE", join: str = "", source: str | None = None
) -> str:
    """`session_hours` rows computed from a table's rows matching `where` (`join` may narrow
    them further, e.g. a SEMI JOIN on touched keys); `source` replaces the table (a relation
    with its columns: the rows a commit inserts)."""
    t = TIME_COLUMN[table]
    return f"""
SELECT session_id, hour_ns, '{table}', {_HOURS_AGGREGATES[table]}
FROM (SELECT *, {bucket(t)} AS hour_ns FROM {source or table}
      WHERE session_id IS NOT NULL AND ({where})) x {join}
GROUP BY session_id, hour_ns"""


_HOURS_MERGE = f"""
SELECT session_id, hour_ns, src, min(first_ns), max(last_ns), max(recv_ns), sum(prompts),
  sum(api_requests), sum(cost_usd), sum(input_tokens), sum(output_tokens),
  sum(cache_read_tokens), sum(cache_creation_tokens), sum(tool_calls), sum(tool_errors),
  list_sort(list_distinct(flatten(list(models) FILTER (WHERE models IS NOT NULL)))),
  arg_max(resource_id, resource_ns), max(resource_ns), max(agent), bool_or(from_otel),
  bool_or(from_transcript),
  arg_min(first_seq, {_SEQ_ORDER.format(t="first_seq_ns", s="first_seq")})
    FILTER (WHERE first_seq IS NOT NULL),
  min(first_seq_ns), sum(api_errors), sum(retries), max(project),
  arg_min(first_prompt, (first_prompt_ns, first_prompt)) FILTER (WHERE first_prompt IS NOT NULL),
  min(first_prompt_ns), sum(estimated_requests), sum(unpriced_requests), sum(not_understood),
  sum(estimated_cost_usd),
  list_sort(list_distinct(flatten(list(cost_sources) FILTER (WHERE cost_sources IS NOT NULL))))
FROM (SELECT h.* FROM session_hours h SEMI JOIN rollup_added USING (src, session_id, hour_ns)
      UNION ALL SELECT * FROM rollup_added)
GROUP BY session_id, hour_ns, src"""


def prompt_turns_select(where: str = "TRUE", join: str = "") -> str:
    """`prompt_turns` rows: per session and prompt.id, from the events matching `where`."""
    return f"""
SELECT session_id, prompt_id, min(time_ns), max(time_ns),
  arg_min(trace_id, time_ns) FILTER (WHERE trace_id IS NOT NULL),
  count(*) FILTER (WHERE {_API}),
  sum(cost_usd) FILTER (WHERE {_API}),
  count(*) FILTER (WHERE kind = '{TOOL_RESULT}' AND success = false),
  list(coalesce(tool_name, '?') ORDER BY time_ns, sequence) FILTER (WHERE kind = '{TOOL_RESULT}'),
  arg_min(json_extract_string(attributes, '$.prompt'),
    (time_ns, json_extract_string(attributes, '$.prompt'))) FILTER (WHERE kind = '{USER_PROMPT}'),
  count(*) FILTER (WHERE {_API} AND cost_source = '{COST_ESTIMATE}'),
  sum(cost_usd) FILTER (WHERE {_API} AND cost_source = '{COST_ESTIMATE}'),
  count(*) FILTER (WHERE {_API} AND cost_usd IS NULL)
FROM (SELECT * FROM events WHERE session_id IS NOT NULL AND prompt_id IS NOT NULL
      AND ({where})) x {join}
GROUP BY session_id, prompt_id"""


def trace_turns_select(where: str = "TRUE", join: str = "") -> str:
    """`trace_turns` rows: per session and trace, from the spans matching `where`. A tool
    span counts as failed when an execution span under it failed."""
    return f"""
WITH sp AS MATERIALIZED (
  SELECT session_id, trace_id, span_id, parent_span_id, role, start_ns, end_ns, duration_ms,
    status_code, success, tool_name,
    CASE WHEN role = '{INTERACTION}' THEN attributes END AS attributes
  FROM (SELECT * FROM spans WHERE session_id IS NOT NULL AND ({where})) x {join}
), execs AS (
  SELECT session_id, trace_id, parent_span_id,
    bool_or(status_code = {STATUS_ERROR} OR success = false) AS err
  FROM sp WHERE role = '{TOOL_EXECUTION}' GROUP BY ALL
), per_trace AS (
  SELECT sp.session_id, sp.trace_id, min(sp.start_ns) AS first_ns,
    max(coalesce(sp.end_ns, sp.start_ns)) AS last_ns,
    count(*) FILTER (WHERE sp.role = '{LLM_REQUEST}') AS llm_requests,
    list(coalesce(sp.tool_name, '?') ORDER BY sp.start_ns)
      FILTER (WHERE sp.role = '{TOOL_SPAN}') AS tool_list,
    count(*) FILTER (WHERE sp.role = '{TOOL_SPAN}' AND coalesce(x.err, false)) AS tool_errors
  FROM sp LEFT JOIN execs x ON x.session_id = sp.session_id AND x.trace_id = sp.trace_id
    AND x.parent_span_id = sp.span_id
  GROUP BY sp.session_id, sp.trace_id
)
SELECT t.session_id, t.trace_id, t.first_ns, coalesce(i.start_ns, t.first_ns),
  coalesce(i.duration_ms, (t.last_ns - t.first_ns) / 1e6),
  i.span_id IS NOT NULL,
  json_extract_string(i.attributes, '$.user_prompt'),
  t.llm_requests, t.tool_list, t.tool_errors
FROM per_trace t LEFT JOIN sp i
  ON i.session_id = t.session_id AND i.trace_id = t.trace_id AND i.role = '{INTERACTION}'"""


def build(cur: duckdb.DuckDBPyConnection) -> None:
    """Compute every rollup from all stored rows (a new rollup table, or a rebuilt one)."""
    for table in ROLLUP_TABLES:
        cur.execute(f"DELETE FROM {table}")
    for table in TIME_COLUMN:
        cur.execute(f"INSERT INTO session_hours {session_hours_select(table)}")
    cur.execute(f"INSERT INTO prompt_turns {prompt_turns_select()}")
    cur.execute(f"INSERT INTO trace_turns {trace_turns_select()}")
    hourly.build(cur)


def _touched(table: str) -> str:
    return f"rollup_touched_{table}"


def begin(cur: duckdb.DuckDBPyConnection) -> None:
    """Start recording touched keys on this cursor (temporary tables, this connection's own)."""
    for table in TIME_COLUMN:
        key = TURN_KEY.get(table)
        key_col = f"{key} VARCHAR, " if key else ""
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {_touched(table)} "
            f"(session_id VARCHAR, {key_col}t BIGINT)"
        )
    cols = ", ".join(f"{name} {sql}" for name, sql in SESSION_HOURS_COLUMNS)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE rollup_added ({cols})")
    hourly.begin(cur)


def touch_sql(table: str, source: str) -> str | None:
    """SQL recording the keys of `source`'s rows (a relation with `table`'s columns) as
    touched; None for a table no rollup reads."""
    if table not in TIME_COLUMN:
        return None
    key = TURN_KEY.get(table)
    cols = f"session_id, {key + ', ' if key else ''}{TIME_COLUMN[table]}"
    return f"INSERT INTO {_touched(table)} SELECT {cols} FROM {source} WHERE session_id IS NOT NULL"


def added_sql(table: str, source: str) -> list[str]:
    """SQL adding `source`'s rows (all of them newly stored) to this transaction's sums
    (`session_hours`, and the hourly rollups of events), merged into the rollups by `refresh`
    without re-reading the table; none for a table no rollup reads."""
    if table not in TIME_COLUMN:
        return []
    out = [f"INSERT INTO rollup_added {session_hours_select(table, source=source)}"]
    return out + (hourly.added_sql(source) if table == "events" else [])


def _since(col: str, lo: int | None) -> str:
    """Rows from `lo` on, and rows without a time (a recompute must see them too)."""
    return "TRUE" if lo is None else f"({col} >= {int(lo)} OR {col} IS NULL)"


def refresh(cur: duckdb.DuckDBPyConnection, added: Iterable[str] = ()) -> None:
    """Bring the rollups up to date with the keys this transaction touched (`begin` forgets
    them).

    `session_hours` of the `added` tables (every row the transaction offered them was newly
    stored, so `added_sql` summed exactly the new rows) merge those sums in; every other
    touched rollup row is recomputed from the stored rows.
    """
    added = sorted(set(added) & set(TIME_COLUMN))
    hourly.refresh(cur, _touched("events"), merge="events" in added)
    if added:
        cur.execute(
            "DELETE FROM rollup_added WHERE src NOT IN (SELECT unnest($1::VARCHAR[]))", [added]
        )
        cur.execute("CREATE OR REPLACE TEMP TABLE rollup_merged AS " + _HOURS_MERGE)
        cur.execute(
            "DELETE FROM session_hours USING rollup_added a WHERE session_hours.src = a.src "
            "AND session_hours.session_id = a.session_id AND session_hours.hour_ns = a.hour_ns"
        )
        cur.execute("INSERT INTO session_hours SELECT * FROM rollup_merged")
    for table, t in TIME_COLUMN.items():
        if table in added:
            continue
        touched = _touched(table)
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE rollup_hours AS "
            f"SELECT DISTINCT session_id, {bucket('t')} AS hour_ns FROM {touched}"
        )
        lo, hi, untimed = cur.execute(
            f"SELECT min(hour_ns) FILTER (WHERE hour_ns <> {NO_TIME_BUCKET}), max(hour_ns), "
            f"bool_or(hour_ns = {NO_TIME_BUCKET}) FROM rollup_hours"
        ).fetchone()
        if hi is None:
            continue
        cur.execute(
            "DELETE FROM session_hours USING rollup_hours h WHERE session_hours.src = $1 "
            "AND session_hours.session_id = h.session_id AND session_hours.hour_ns = h.hour_ns",
            [table],
        )
        ranges = [] if lo is None else [f"({t} >= {lo} AND {t} < {hi + BUCKET_NS})"]
        ranges += [f"{t} IS NULL"] if untimed else []
        cur.execute(
            "INSERT INTO session_hours "
            + session_hours_select(
                table, " OR ".join(ranges), "SEMI JOIN rollup_hours h USING (session_id, hour_ns)"
            )
        )
    for table, rollup, first, select in (
        ("events", "prompt_turns", "start_ns", prompt_turns_select),
        ("spans", "trace_turns", "first_ns", trace_turns_select),
    ):
        key, t = TURN_KEY[table], TIME_COLUMN[table]
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE rollup_turns AS SELECT session_id, {key}, "
            f"min(t) AS t FROM {_touched(table)} WHERE {key} IS NOT NULL GROUP BY ALL"
        )
        found, lo = cur.execute(
            f"SELECT (SELECT count(*) FROM rollup_turns), least((SELECT min(t) FROM rollup_turns),"
            f" (SELECT min(r.{first}) FROM {rollup} r SEMI JOIN rollup_turns USING "
            f"(session_id, {key})))"
        ).fetchone()
        if not found:
            continue
        cur.execute(
            f"DELETE FROM {rollup} USING rollup_turns k WHERE {rollup}.session_id = k.session_id "
            f"AND {rollup}.{key} = k.{key}"
        )
        cur.execute(
            f"INSERT INTO {rollup} "
            + select(_since(t, lo), f"SEMI JOIN rollup_turns USING (session_id, {key})")
        )


def touch_before(cur: duckdb.DuckDBPyConnection, table: str, before_ns: int) -> None:
    """Record as touched the keys of a table's rows older than `before_ns` (before a prune
    deletes them, so `refresh` recomputes what is left)."""
    sql = touch_sql(table, f"(SELECT * FROM {table} WHERE {TIME_COLUMN[table]} < {int(before_ns)})")
    if sql:
        cur.execute(sql)
