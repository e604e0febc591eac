"""The sessions pane: one row per session with telemetry in the filter, read from the
`session_hours` rollup (whole hours) and the rows of the part-hour a window starts in.

`source` says where a session is known from: `otel` (telemetry), `transcript` (Claude Code's
transcript files only) or `both`; `cost_sources` where its cost came from (`reported`,
`transcript`, `estimate`), with the estimated part in `estimated_cost_usd` and the requests no
source could price in `unpriced_requests`."""

from __future__ import annotations

import json
import time
from typing import Any

import duckdb

from claude_top.core.names import (
    TOOL_RESULT,
    USER_PROMPT,
)
from claude_top.core.queries.filters import (
    ACTIVE_WITHIN_S,
    Filter,
    Query,
    as_datetime,
    cache_ratio_sql,
    filter_where,
)
from claude_top.core.schema import (
    COST_ESTIMATE,
    COST_MIXED,
    COST_NONE,
    COST_REPORTED,
    META_TABLE,
)
from claude_top.core.store import rollup

STANDARD_ATTR_PREFIXES = ("service.", "os.", "host.", "telemetry.", "process.")


# --- sessions ------------------------------------------------------------------------------


def hours_in(f: Filter, p: dict[str, Any], table: str) -> str:
    """A table's `session_hours` rows for a filter: the whole hours in its window from the
    rollup, and the part-hour its window starts in computed from the rows (same aggregates)."""
    conds = [f"src = '{table}'"]
    if f.session_id is not None:
        p["session"] = f.session_id
        conds.append("session_id = $session")
    if f.agent is not None:
        p["agent"] = f.agent
        conds.append("agent = $agent")
    if f.since_ns is None:
        return "SELECT * FROM session_hours WHERE " + " AND ".join(conds)
    p["since"] = f.since_ns
    p["edge"] = -(-f.since_ns // rollup.BUCKET_NS) * rollup.BUCKET_NS
    t = rollup.TIME_COLUMN[table]
    return (
        "SELECT * FROM session_hours WHERE "
        + " AND ".join([*conds, "hour_ns >= $edge"])
        + "\nUNION ALL\n"
        + rollup.session_hours_select(
            table, " AND ".join([*conds[1:], f"{t} >= $since", f"{t} < $edge"])
        )
    )


def sessions_query(f: Filter, now_ns: int | None = None) -> Query:
    """One row per session with telemetry in the filter, most recent activity first.

    Column order follows `sessions.csv` (times as `*_ns`; export formats them as ISO UTC).
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    p: dict[str, Any] = {
        "active_since": now_ns - ACTIVE_WITHIN_S * 1_000_000_000,
    }
    ev_where = filter_where(f, "time_ns", p)
    text = "TRUE"
    if f.needle is not None:
        p["text"] = f.needle
        matched = (
            "s.session_id",
            "s.models",
            "s.agent",
            "s.project",
            "s.first_prompt",
            "r.attributes",
        )
        text = (
            "("
            + " OR ".join(f"contains(lower(coalesce({c}, '')), $text)" for c in matched)
            + " OR s.session_id IN (SELECT session_id FROM events "
            f"WHERE kind = '{TOOL_RESULT}' AND {ev_where} "
            "AND contains(lower(coalesce(tool_name, '')), $text)))"
        )

    def hours(table: str) -> str:
        return hours_in(f, p, table)

    sql = f"""
WITH ev AS (
  SELECT session_id, min(first_ns) AS first_ns, max(last_ns) AS last_ns,
    max(recv_ns) AS recv_ns, sum(prompts) AS prompts, sum(api_requests) AS api_requests,
    sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_creation_tokens) AS cache_creation_tokens, sum(tool_calls) AS tool_calls,
    sum(tool_errors) AS tool_errors, arg_max(resource_id, resource_ns) AS resource_id,
    array_to_string(list_sort(list_distinct(flatten(list(models)))), ', ') AS models,
    max(agent) AS agent, bool_or(from_otel) AS from_otel,
    bool_or(from_transcript) AS from_transcript, sum(api_errors) AS api_errors,
    max(project) AS project, sum(estimated_requests) AS estimated_requests,
    sum(estimated_cost_usd) AS estimated_cost_usd,
    sum(unpriced_requests) AS unpriced_requests, sum(not_understood) AS not_understood,
    list_sort(list_distinct(flatten(list(cost_sources)))) AS cost_sources
  FROM ({hours("events")}) r GROUP BY session_id
), sp AS (
  SELECT session_id, min(first_ns) AS first_ns, max(last_ns) AS last_ns,
    max(recv_ns) AS recv_ns, sum(prompts) AS interactions,
    arg_max(resource_id, resource_ns) AS resource_id, max(agent) AS agent,
    sum(retries) AS retries
  FROM ({hours("spans")}) r GROUP BY session_id
), mp AS (
  SELECT session_id, min(first_ns) AS first_ns, max(last_ns) AS last_ns,
    max(recv_ns) AS recv_ns, sum(cost_usd) AS metric_cost_usd,
    arg_max(resource_id, resource_ns) AS resource_id, max(agent) AS agent
  FROM ({hours("metric_points")}) r GROUP BY session_id
), ids AS (
  SELECT session_id FROM ev UNION SELECT session_id FROM sp UNION SELECT session_id FROM mp
), whole AS (
  SELECT session_id,
    arg_min(first_seq, first_seq_ns::HUGEINT * 4294967296 + first_seq)
      FILTER (WHERE src = 'events' AND first_seq IS NOT NULL) AS first_seq,
    sum(prompts) FILTER (WHERE src = 'events') AS prompts,
    sum(api_requests) FILTER (WHERE src = 'events') AS api_requests,
    arg_min(first_prompt, (first_prompt_ns, first_prompt)) FILTER (WHERE first_prompt IS NOT NULL)
      AS first_prompt,
    bool_or(from_otel) AS from_otel, bool_or(from_transcript) AS from_transcript
  FROM session_hours WHERE session_id IN (SELECT session_id FROM ids)
  GROUP BY session_id
), s AS (
  SELECT ids.session_id,
    least(ev.first_ns, sp.first_ns, mp.first_ns) AS first_seen_ns,
    greatest(ev.last_ns, sp.last_ns, mp.last_ns) AS last_seen_ns,
    greatest(ev.recv_ns, sp.recv_ns, mp.recv_ns) AS last_received_ns,
    CASE WHEN coalesce(ev.prompts, 0) > 0 THEN ev.prompts ELSE coalesce(sp.interactions, 0) END
      ::BIGINT AS prompts,
    coalesce(ev.prompts, 0)::BIGINT AS user_prompts,
    coalesce(ev.api_requests, 0)::BIGINT AS api_requests,
    coalesce(ev.cost_usd, 0.0) AS cost_usd,
    coalesce(ev.input_tokens, 0)::BIGINT AS input_tokens,
    coalesce(ev.output_tokens, 0)::BIGINT AS output_tokens,
    coalesce(ev.cache_read_tokens, 0)::BIGINT AS cache_read_tokens,
    coalesce(ev.cache_creation_tokens, 0)::BIGINT AS cache_creation_tokens,
    coalesce(ev.tool_calls, 0)::BIGINT AS tool_calls,
    coalesce(ev.tool_errors, 0)::BIGINT AS tool_errors,
    coalesce(ev.models, '') AS models,
    mp.metric_cost_usd,
    coalesce(ev.resource_id, sp.resource_id, mp.resource_id) AS resource_id,
    coalesce(ev.agent, sp.agent, mp.agent) AS agent,
    CASE WHEN coalesce(whole.from_transcript, false) OR ts.session_id IS NOT NULL THEN
      CASE WHEN coalesce(whole.from_otel, false) THEN 'both' ELSE 'transcript' END
    ELSE 'otel' END AS source,
    coalesce(ev.project, ts.cwd) AS project,
    ev.estimated_cost_usd,
    coalesce(array_to_string(ev.cost_sources, ','), '') AS cost_sources,
    coalesce(ev.api_errors, 0)::BIGINT AS api_errors,
    coalesce(sp.retries, 0)::BIGINT AS retries,
    CASE WHEN coalesce(ev.api_requests, 0) = 0 THEN NULL
      WHEN ev.unpriced_requests = ev.api_requests THEN '{COST_NONE}'
      WHEN ev.estimated_requests = 0 THEN '{COST_REPORTED}'
      WHEN ev.estimated_requests + ev.unpriced_requests = ev.api_requests THEN '{COST_ESTIMATE}'
      ELSE '{COST_MIXED}' END AS cost_source,
    coalesce(ev.unpriced_requests, 0)::BIGINT AS unpriced_requests,
    coalesce(ev.not_understood, 0)::BIGINT AS not_understood,
    whole.first_seq, whole.first_prompt, coalesce(whole.prompts, 0) AS all_prompts,
    coalesce(whole.api_requests, 0) AS all_requests
  FROM ids
  LEFT JOIN ev ON ev.session_id = ids.session_id
  LEFT JOIN sp ON sp.session_id = ids.session_id
  LEFT JOIN mp ON mp.session_id = ids.session_id
  LEFT JOIN whole ON whole.session_id = ids.session_id
  LEFT JOIN transcript_sessions ts ON ts.session_id = ids.session_id
)
SELECT s.session_id, s.first_seen_ns, s.last_seen_ns, s.prompts, s.api_requests, s.cost_usd,
  s.input_tokens, s.output_tokens, s.cache_read_tokens, s.cache_creation_tokens, s.tool_calls,
  s.tool_errors, s.models,
  CASE WHEN s.last_seen_ns >= $active_since THEN 'active' ELSE 'idle' END AS status,
  {cache_ratio_sql("s.cache_read_tokens", "s.input_tokens", "s.cache_creation_tokens")}
    AS cache_hit_ratio,
  s.metric_cost_usd, s.last_received_ns, s.user_prompts, s.agent, s.source, s.project,
  s.first_prompt, s.api_errors, s.retries, s.cost_source, s.unpriced_requests,
  s.not_understood, s.estimated_cost_usd, s.cost_sources,
  s.prompts > 0 OR s.api_requests > 0 AS has_work,
  s.source = 'otel' AND (s.first_seq > 0 OR (s.all_requests > 0 AND s.all_prompts = 0))
    AS partial,
  r.attributes AS resource_attributes, s.resource_id
FROM s LEFT JOIN resources r ON r.uid = s.resource_id
WHERE {text}
ORDER BY s.last_seen_ns DESC NULLS LAST, s.session_id
"""
    return Query(sql, p)


_custom_cache: dict[bytes, dict[str, Any]] = {}


def custom_attributes(resource_json: str | None, resource_id: bytes | None = None) -> dict:
    """Non-standard resource attributes: the custom OTEL_RESOURCE_ATTRIBUTES (workflow_id, ...)."""
    if resource_json is None:
        return {}
    if resource_id is not None and resource_id in _custom_cache:
        return _custom_cache[resource_id]
    try:
        attrs = json.loads(resource_json)
    except ValueError:
        attrs = {}
    out = {
        k: v
        for k, v in (attrs.items() if isinstance(attrs, dict) else ())
        if not k.startswith(STANDARD_ATTR_PREFIXES)
    }
    if resource_id is not None:
        if len(_custom_cache) > 10_000:
            _custom_cache.clear()
        _custom_cache[resource_id] = out
    return out


_terminal_cache: dict[tuple[str | None, str], tuple[int, str | None]] = {}


def _store_stamp(cur: duckdb.DuckDBPyConnection) -> str | None:
    """The store's creation stamp, so remembered values never leak from one database to another."""
    try:
        row = cur.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'created_ns'").fetchone()
    except duckdb.Error:
        return None
    return row[0] if row else None


def _terminals(cur: duckdb.DuckDBPyConnection, rows: list[dict]) -> dict[str, str | None]:
    """terminal.type per session, read from its latest user_prompt event and then remembered.

    Only sessions with user_prompt events are looked up; one whose events lacked the attribute
    is looked up again when its user_prompt count changes.
    """
    stamp = _store_stamp(cur) if rows else None
    missing = [
        r["session_id"]
        for r in rows
        if r["user_prompts"]
        and (
            (hit := _terminal_cache.get((stamp, r["session_id"]))) is None
            or (hit[1] is None and hit[0] != r["user_prompts"])
        )
    ]
    if missing:
        found = dict(
            cur.execute(
                f"""
SELECT session_id, json_extract_string(arg_max(attributes, time_ns), '$."terminal.type"')
FROM events WHERE kind = '{USER_PROMPT}' AND session_id IN (SELECT unnest($ids::VARCHAR[]))
GROUP BY session_id
""",
                {"ids": missing},
            ).fetchall()
        )
        if len(_terminal_cache) > 100_000:
            _terminal_cache.clear()
        counts = {r["session_id"]: r["user_prompts"] for r in rows}
        for sid in missing:
            _terminal_cache[(stamp, sid)] = (counts[sid], found.get(sid))
    return {
        r["session_id"]: (_terminal_cache.get((stamp, r["session_id"])) or (0, None))[1]
        for r in rows
    }


def sessions(cur: duckdb.DuckDBPyConnection, f: Filter, now_ns: int | None = None) -> list[dict]:
    """Sessions with telemetry in the filter, by last activity (newest first)."""
    rows = sessions_query(f, now_ns).fetch(cur)
    terminals = _terminals(cur, rows)
    for r in rows:
        r["first_seen"] = as_datetime(r["first_seen_ns"])
        r["last_seen"] = as_datetime(r["last_seen_ns"])
        r["terminal"] = terminals[r["session_id"]]
        r["custom"] = custom_attributes(r["resource_attributes"], r.pop("resource_id"))
    return rows
