"""Totals across sessions: cost by model, tool latency, the overview the header and pane titles
show, and the earliest row in a window."""

from __future__ import annotations

from array import array
from typing import Any

import duckdb

from claude_top.core.names import API_REQUEST, INTERACTION, TOOL_RESULT, USER_PROMPT
from claude_top.core.queries.filters import (
    Filter,
    Query,
    cache_ratio_sql,
    dicts,
    filter_where,
    text_condition,
)
from claude_top.core.schema import COST_ESTIMATE, COST_MIXED, COST_NONE, COST_REPORTED
from claude_top.core.store import rollup

# --- models and tools ----------------------------------------------------------------------


def models_query(f: Filter) -> Query:
    """Per model: requests, cost and its share, tokens by kind, cache hit ratio, the agents
    that used it and where its cost came from (`reported`, `estimate`, `mixed`, `none`);
    by cost."""
    p: dict[str, Any] = {}
    where = filter_where(f, "time_ns", p)
    text = text_condition(f, p, "model", "session_id")
    sql = f"""
WITH m AS (
  SELECT coalesce(model, '(unknown)') AS model, count(*) AS api_requests,
    coalesce(sum(cost_usd), 0.0) AS cost_usd,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
    coalesce(sum(cache_creation_tokens), 0) AS cache_creation_tokens,
    string_agg(DISTINCT agent, ', ' ORDER BY agent) AS agent,
    count(*) FILTER (WHERE cost_source = '{COST_ESTIMATE}') AS estimated,
    count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced
  FROM events WHERE kind = '{API_REQUEST}' AND {where} AND {text}
  GROUP BY 1
)
SELECT model, api_requests, cost_usd, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, agent,
  CASE WHEN unpriced = api_requests THEN '{COST_NONE}' WHEN estimated = 0 THEN '{COST_REPORTED}'
    WHEN estimated + unpriced = api_requests THEN '{COST_ESTIMATE}' ELSE '{COST_MIXED}' END
    AS cost_source,
  {cache_ratio_sql("cache_read_tokens", "input_tokens", "cache_creation_tokens")}
    AS cache_hit_ratio,
  CASE WHEN sum(cost_usd) OVER () > 0 THEN cost_usd / sum(cost_usd) OVER () ELSE 0.0 END
    AS share
FROM m ORDER BY cost_usd DESC, model
"""
    return Query(sql, p)


def models(cur: duckdb.DuckDBPyConnection, f: Filter) -> list[dict]:
    """Per-model cost split, most expensive first."""
    return models_query(f).fetch(cur)


def tools_query(f: Filter) -> Query:
    """Per tool, from tool_result events: calls, errors, latency percentiles; by total time."""
    p: dict[str, Any] = {}
    where = filter_where(f, "time_ns", p)
    text = text_condition(f, p, "tool_name", "session_id")
    sql = f"""
WITH t AS (
  SELECT coalesce(tool_name, '(unknown)') AS tool_name, count(*) AS calls,
    count(*) FILTER (WHERE success = false) AS errors,
    quantile_cont(duration_ms, [0.5, 0.95, 0.99]) AS q,
    max(duration_ms) AS max_ms, coalesce(sum(duration_ms), 0.0) AS total_ms,
    string_agg(DISTINCT agent, ', ' ORDER BY agent) AS agent
  FROM events WHERE kind = '{TOOL_RESULT}' AND {where} AND {text}
  GROUP BY 1
)
SELECT tool_name, calls, errors, q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms, max_ms,
  total_ms, 100.0 * errors / calls AS error_pct, agent
FROM t ORDER BY total_ms DESC, tool_name
"""
    return Query(sql, p)


def tools(cur: duckdb.DuckDBPyConnection, f: Filter) -> list[dict]:
    """Tool latency table, largest total time first; error_pct is 0..100."""
    return tools_query(f).fetch(cur)


def tool_durations(cur: duckdb.DuckDBPyConnection, f: Filter, tool_name: str) -> array[float]:
    """Every duration (ms) of one tool in the filter, unordered, for the latency histogram: an
    array of doubles, a third of a list's memory (a busy tool has tens of thousands)."""
    p: dict[str, Any] = {"tool": tool_name}
    where = filter_where(f, "time_ns", p)
    text = text_condition(f, p, "tool_name", "session_id")
    rows = cur.execute(
        f"SELECT duration_ms FROM events WHERE kind = '{TOOL_RESULT}' AND tool_name = $tool "
        f"AND duration_ms IS NOT NULL AND {where} AND {text}",
        p,
    ).fetchall()
    return array("d", (r[0] for r in rows))


# --- overview ------------------------------------------------------------------------------


def overview(cur: duckdb.DuckDBPyConnection, f: Filter) -> dict:
    """Header totals in the window/session (text filter ignored). `sessions` counts those with
    a prompt or an API request: start-up telemetry alone (a `--continue`'s) is not a session.
    `estimated_cost_usd` is the part of the cost estimated from the price table;
    `not_understood` counts the events and spans stored but not read (`agents`); `agents`
    lists the agents with sessions in the window's hours (whatever the agent filter).

    `last_received_ns` and `received_total` (rows of every kind) ignore the filter: they are
    for the ingest rate and the age of the last export.
    """
    pe: dict[str, Any] = {}
    ps: dict[str, Any] = {}
    ev_where = filter_where(f, "time_ns", pe)
    sp_where = filter_where(f, "start_ns", ps)
    (sessions_n,) = cur.execute(
        f"""
SELECT count(*) FROM (
  SELECT session_id FROM events WHERE session_id IS NOT NULL AND {ev_where}
    AND kind IN ('{USER_PROMPT}', '{API_REQUEST}')
  UNION SELECT session_id FROM spans WHERE session_id IS NOT NULL AND {sp_where}
    AND role = '{INTERACTION}')
""",
        {**pe, **ps},
    ).fetchone()
    out = dicts(
        cur.execute(
            f"""
SELECT coalesce(sum(cost_usd) FILTER (WHERE kind = '{API_REQUEST}'), 0.0) AS cost_usd,
  coalesce(sum(cost_usd) FILTER (WHERE kind = '{API_REQUEST}'
    AND cost_source = '{COST_ESTIMATE}'), 0.0) AS estimated_cost_usd,
  count(*) FILTER (WHERE kind = '{API_REQUEST}') AS api_requests, count(*) AS events_total,
  count(not_understood) AS not_understood
FROM events WHERE {ev_where}
""",
            pe,
        )
    )[0]
    out["spans_total"], odd = cur.execute(
        f"SELECT count(*), count(not_understood) FROM spans WHERE {sp_where}",
        ps,
    ).fetchone()
    out["not_understood"] += odd
    pa: dict[str, Any] = {}
    since = ""
    if f.since_ns is not None:
        pa["edge"] = f.since_ns - f.since_ns % rollup.BUCKET_NS
        since = "AND hour_ns >= $edge"
    (out["agents"],) = cur.execute(
        "SELECT list_sort(list(DISTINCT agent)) FROM session_hours "
        f"WHERE agent IS NOT NULL {since}",
        pa,
    ).fetchone()
    out["agents"] = out["agents"] or []
    out["last_received_ns"], out["received_total"] = cur.execute(
        """
SELECT greatest((SELECT max(received_ns) FROM events), (SELECT max(received_ns) FROM spans),
                (SELECT max(received_ns) FROM metric_points)),
  (SELECT count(*) FROM events) + (SELECT count(*) FROM spans)
    + (SELECT count(*) FROM metric_points)
"""
    ).fetchone()
    out["sessions"] = sessions_n
    return out


def earliest_ns(cur: duckdb.DuckDBPyConnection, f: Filter) -> int | None:
    """The earliest event, span start or metric point in the window (None if it is empty).

    Results over a sliding window cannot change before the window's lower edge passes it.
    """
    p: dict[str, Any] = {}
    ev_where = filter_where(f, "time_ns", p, session=False)
    sp_where = filter_where(f, "start_ns", p, session=False)
    (first,) = cur.execute(
        f"""
SELECT least((SELECT min(time_ns) FROM events WHERE {ev_where}),
  (SELECT min(start_ns) FROM spans WHERE {sp_where}),
  (SELECT min(time_ns) FROM metric_points WHERE {ev_where}))
""",
        p,
    ).fetchone()
    return first
