"""Totals across sessions: cost by model, tool latency, the overview the header and pane titles
show, and the earliest row in a window."""

from __future__ import annotations

import math
from array import array
from typing import Any

import duckdb

from claude_top.core.names import API_REQUEST, TOOL_RESULT
from claude_top.core.queries.filters import (
    Filter,
    Query,
    cache_ratio_sql,
    dicts,
    filter_where,
    text_condition,
)
from claude_top.core.queries.sessions import hours_in
from claude_top.core.schema import COST_ESTIMATE, COST_MIXED, COST_NONE, COST_REPORTED
from claude_top.core.store import hourly
from claude_top.core.store.hourly import Hourly

# --- models and tools ----------------------------------------------------------------------


def hourly_in(f: Filter, p: dict[str, Any], h: Hourly, *, session: bool = True) -> str:
    """An hourly rollup's rows for a filter: the whole hours in its window from the rollup, and
    the part-hour its window starts in computed from the events (same aggregates)."""
    conds = []
    if session and f.session_id is not None:
        p["session"] = f.session_id
        conds.append("session_id = $session")
    if f.agent is not None:
        p["agent"] = f.agent
        conds.append("agent = $agent")
    if f.since_ns is None:
        return f"SELECT * FROM {h.table} WHERE " + " AND ".join(conds or ["TRUE"])
    p["since"] = f.since_ns
    p["edge"] = -(-f.since_ns // hourly.BUCKET_NS) * hourly.BUCKET_NS
    part = " AND ".join([*conds, "time_ns >= $since", "time_ns < $edge"])
    return (
        f"SELECT * FROM {h.table} WHERE "
        + " AND ".join([*conds, "hour_ns >= $edge"])
        + "\nUNION ALL\n"
        + h.select(part)
    )


def models_query(f: Filter) -> Query:
    """Per model: requests, cost and its share (how much of it is estimated, and where it came
    from: `reported`, `estimate`, `mixed`, `none`), tokens by kind, cache hit ratio, the agents
    that used it; by cost. Read from `model_hours`."""
    p: dict[str, Any] = {}
    hours = hourly_in(f, p, hourly.BY_TABLE["model_hours"])
    text = text_condition(f, p, "model", "session_id")
    sql = f"""
WITH m AS (
  SELECT model, sum(api_requests)::BIGINT AS api_requests,
    coalesce(sum(cost_usd), 0.0) AS cost_usd,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
    coalesce(sum(cache_creation_tokens), 0)::BIGINT AS cache_creation_tokens,
    sum(estimated_usd) AS estimated_cost_usd,
    string_agg(DISTINCT agent, ', ' ORDER BY agent) AS agent,
    coalesce(sum(estimated_requests), 0) AS estimated,
    coalesce(sum(unpriced_requests), 0) AS unpriced
  FROM ({hours}) h WHERE {text}
  GROUP BY 1
)
SELECT model, api_requests, cost_usd, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, agent, estimated_cost_usd, unpriced AS unpriced_requests,
  CASE WHEN unpriced = api_requests THEN '{COST_NONE}' WHEN estimated = 0 THEN '{COST_REPORTED}'
    WHEN estimated + unpriced = api_requests THEN '{COST_ESTIMATE}' ELSE '{COST_MIXED}' END
    AS cost_source,
  {cache_ratio_sql("cache_read_tokens", "input_tokens", "cache_creation_tokens")}
    AS cache_hit_ratio,
  CASE WHEN sum(cost_usd) OVER () > 0 THEN cost_usd / sum(cost_usd) OVER () ELSE 0.0 END
    AS share,
  estimated_cost_usd
FROM m ORDER BY cost_usd DESC, model
"""
    return Query(sql, p)


def models(cur: duckdb.DuckDBPyConnection, f: Filter) -> list[dict]:
    """Per-model cost split, most expensive first."""
    return models_query(f).fetch(cur)


QUANTILES = (0.5, 0.95, 0.99)
_LN_RATIO = math.log(hourly.LATENCY_RATIO)
EXACT_PERCENTILES_MAX = 20_000
"""Up to this many tool calls in view, percentiles are exact; past it (and with no session or
text filter, which the latency buckets cannot apply), they are read from `tool_latency`'s 1 %
buckets instead of sorting every call."""


def tools_query(f: Filter, *, exact: bool = True) -> Query:
    """Per tool: calls, errors, latency percentiles, max and total; by total time. Counts from
    `tool_hours`; percentiles exact from the events, or (`exact=False`) from the buckets."""
    p: dict[str, Any] = {}
    hours = hourly_in(f, p, hourly.BY_TABLE["tool_hours"])
    text = text_condition(f, p, "tool_name", "session_id")
    if exact:
        where = filter_where(f, "time_ns", p)
        quantiles = f"""
  SELECT coalesce(tool_name, '(unknown)') AS tool_name,
    quantile_cont(duration_ms, {list(QUANTILES)}) AS q
  FROM events WHERE kind = '{TOOL_RESULT}' AND {where} AND {text}
  GROUP BY 1"""
    else:
        buckets = hourly_in(f, p, hourly.BY_TABLE["tool_latency"], session=False)
        mid = f"CASE WHEN bucket = 0 THEN 0.0 ELSE exp((bucket - 0.5) * {_LN_RATIO!r}) / 10 END"
        picks = ", ".join(f"min({mid}) FILTER (WHERE cum >= {q} * total)" for q in QUANTILES)
        quantiles = f"""
  SELECT tool_name, [{picks}] AS q
  FROM (
    SELECT tool_name, bucket, sum(n) OVER (PARTITION BY tool_name ORDER BY bucket) AS cum,
      sum(n) OVER (PARTITION BY tool_name) AS total
    FROM (SELECT tool_name, bucket, sum(calls) AS n FROM ({buckets}) b GROUP BY ALL)
  ) GROUP BY 1"""
    sql = f"""
WITH t AS (
  SELECT tool_name, sum(calls)::BIGINT AS calls, sum(errors)::BIGINT AS errors,
    max(max_ms) AS max_ms, coalesce(sum(total_ms), 0.0) AS total_ms,
    string_agg(DISTINCT agent, ', ' ORDER BY agent) AS agent
  FROM ({hours}) h WHERE {text}
  GROUP BY 1
), q AS ({quantiles}
)
SELECT t.tool_name, calls, errors, least(q[1], max_ms) AS p50_ms, least(q[2], max_ms) AS p95_ms,
  least(q[3], max_ms) AS p99_ms, max_ms, total_ms, 100.0 * errors / calls AS error_pct, agent
FROM t LEFT JOIN q ON q.tool_name = t.tool_name
ORDER BY total_ms DESC, t.tool_name
"""
    return Query(sql, p)


def _bucketed(cur: duckdb.DuckDBPyConnection, f: Filter) -> bool:
    """Whether a view's latencies are read from the buckets: more than EXACT_PERCENTILES_MAX
    calls, of every session, with no text filter."""
    if f.session_id is not None or f.needle is not None:
        return False
    p: dict[str, Any] = {}
    hours = hourly_in(f, p, hourly.BY_TABLE["tool_hours"])
    (calls,) = cur.execute(f"SELECT coalesce(sum(calls), 0) FROM ({hours})", p).fetchone()
    return calls > EXACT_PERCENTILES_MAX


def tools(cur: duckdb.DuckDBPyConnection, f: Filter) -> list[dict]:
    """Tool latency table, largest total time first; error_pct is 0..100. Percentiles are
    exact unless the view holds more than EXACT_PERCENTILES_MAX calls of every session."""
    return tools_query(f, exact=not _bucketed(cur, f)).fetch(cur)


def tool_durations(cur: duckdb.DuckDBPyConnection, f: Filter, tool_name: str) -> array[float]:
    """Every duration (ms) of one tool in the filter, unordered, for the latency histogram: an
    array of doubles, a third of a list's memory (a busy tool has tens of thousands). In a view
    whose percentiles come from the buckets, each call is its bucket's middle (within 1 %)."""
    if _bucketed(cur, f):  # each bucket's middle, as often as it was hit
        p: dict[str, Any] = {"tool": tool_name}
        buckets = hourly_in(f, p, hourly.BY_TABLE["tool_latency"], session=False)
        out = array("d")
        for bucket, n in cur.execute(
            f"SELECT bucket, sum(calls) FROM ({buckets}) WHERE tool_name = $tool GROUP BY 1", p
        ).fetchall():
            out.extend(array("d", [hourly.bucket_ms(bucket)]) * int(n))
        return out
    p = {"tool": tool_name}
    where = filter_where(f, "time_ns", p)
    text = text_condition(f, p, "tool_name", "session_id")
    rows = cur.execute(
        f"SELECT duration_ms FROM events WHERE kind = '{TOOL_RESULT}' AND tool_name = $tool "
        f"AND duration_ms IS NOT NULL AND {where} AND {text}",
        p,
    ).fetchall()
    return array("d", (r[0] for r in rows))


DETAIL_ROWS = 500
"""At most this many of a tool's calls (the slowest) or a model's requests (the newest)."""


def tool_calls(
    cur: duckdb.DuckDBPyConnection, f: Filter, tool_name: str, limit: int = DETAIL_ROWS
) -> list[dict]:
    """One tool's calls in the filter, slowest first: when, in which session and turn, how
    long, whether it failed, and its input (Claude Code sends it with OTEL_LOG_TOOL_DETAILS=1)."""
    p: dict[str, Any] = {"tool": tool_name, "limit": limit}
    where = filter_where(f, "time_ns", p)
    text = text_condition(f, p, "tool_name", "session_id")
    return dicts(
        cur.execute(
            f"""
SELECT lower(hex(uid)) AS key, time_ns, session_id, prompt_id, tool_name, duration_ms, success,
  error, coalesce(json_extract_string(attributes, '$.tool_input'),
    json_extract_string(attributes, '$.tool_parameters')) AS input
FROM events WHERE kind = '{TOOL_RESULT}' AND tool_name = $tool AND {where} AND {text}
ORDER BY duration_ms DESC NULLS LAST, time_ns DESC LIMIT $limit
""",
            p,
        )
    )


def model_requests(
    cur: duckdb.DuckDBPyConnection, f: Filter, model: str, limit: int = DETAIL_ROWS
) -> list[dict]:
    """One model's API requests in the filter, newest first: when, in which session and turn,
    cost, tokens by kind, how long."""
    p: dict[str, Any] = {"model": model, "limit": limit}
    where = filter_where(f, "time_ns", p)
    text = text_condition(f, p, "model", "session_id")
    return dicts(
        cur.execute(
            f"""
SELECT lower(hex(uid)) AS key, time_ns, session_id, prompt_id, model, cost_usd, input_tokens,
  output_tokens, cache_read_tokens, cache_creation_tokens, duration_ms
FROM events
WHERE kind = '{API_REQUEST}' AND coalesce(model, '(unknown)') = $model AND {where} AND {text}
ORDER BY time_ns DESC LIMIT $limit
""",
            p,
        )
    )


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
    ph: dict[str, Any] = {}
    hours = f"{hours_in(f, ph, 'events')} UNION ALL {hours_in(f, ph, 'spans')}"
    out = dicts(
        cur.execute(
            f"""
SELECT count(DISTINCT session_id) FILTER (WHERE prompts > 0 OR api_requests > 0) AS sessions,
  coalesce(sum(cost_usd), 0.0) AS cost_usd, coalesce(sum(api_requests), 0)::BIGINT AS api_requests,
  coalesce(sum(not_understood), 0)::BIGINT AS not_understood
FROM ({hours}) h
""",
            ph,
        )
    )[0]
    pm: dict[str, Any] = {}
    models_hours = hourly_in(f, pm, hourly.BY_TABLE["model_hours"])
    (out["estimated_cost_usd"],) = cur.execute(
        f"SELECT coalesce(sum(estimated_usd), 0.0) FROM ({models_hours})", pm
    ).fetchone()
    (out["events_total"],) = cur.execute(
        f"SELECT count(*) FROM events WHERE {ev_where}", pe
    ).fetchone()
    (out["spans_total"],) = cur.execute(
        f"SELECT count(*) FROM spans WHERE {sp_where}",
        ps,
    ).fetchone()
    pa: dict[str, Any] = {}
    since = ""
    if f.since_ns is not None:
        pa["edge"] = f.since_ns - f.since_ns % hourly.BUCKET_NS
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


def session_ids_starting(cur: duckdb.DuckDBPyConnection, prefix: str, limit: int = 10) -> list[str]:
    """The session ids that start with `prefix` (at most `limit` of them), sorted."""
    (ids,) = cur.execute(
        """
SELECT coalesce(list_sort(list(DISTINCT session_id)), []) FROM (
  SELECT session_id FROM events WHERE starts_with(session_id, $p)
  UNION SELECT session_id FROM spans WHERE starts_with(session_id, $p)
  UNION SELECT session_id FROM metric_points WHERE starts_with(session_id, $p))
""",
        {"p": prefix},
    ).fetchone()
    return ids[:limit]
