"""Read-side queries the UI panes and `export` share: sessions, models, tools, turns, span trees.

Every function takes a DuckDB cursor (one per thread) and runs set-based SQL over the store.
Cost and token figures come from `api_request` events (exact, per request); the
`claude_code.cost.usage` metric is summed only for reconciliation. The session, model and tool
tables are built by `*_query()` functions returning SQL and named parameters, so the UI's rows and
the exported CSVs come from one definition.
"""

from __future__ import annotations

import json
import re
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from claude_top.core import rollup
from claude_top.core.names import (
    API_ERROR,
    API_REQUEST,
    INTERACTION,
    LLM_REQUEST,
    STATUS_ERROR,
    TOOL_DECISION,
    TOOL_RESULT,
    TOOL_SPAN,
    USER_PROMPT,
)
from claude_top.core.store import META_TABLE

WINDOWS = ("15m", "1h", "24h", "7d", "all")
ACTIVE_WITHIN_S = 60
FRESH_WITHIN_S = 300
"""Telemetry received this soon after it was sent counts as live (exporter batching, clock
skew); older telemetry arriving now (a replay, a backlog) does not make a session active."""
STANDARD_ATTR_PREFIXES = ("service.", "os.", "host.", "telemetry.", "process.")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_WINDOW_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_window(text: str) -> int | None:
    """A time window in seconds: "15m" -> 900, "1h", "24h", "7d", "30s"; "all" -> None."""
    if text is None:
        raise ValueError("no time window given; use e.g. 15m, 1h, 24h, 7d or all")
    if text.strip().lower() == "all":
        return None
    m = _WINDOW_RE.match(text)
    if not m:
        raise ValueError(
            f"bad time window {text!r}: use a number and a unit (s, m, h, d, w) such as "
            "15m, 1h, 24h, 7d, or 'all'"
        )
    n = int(m.group(1))
    if n <= 0:
        raise ValueError(f"bad time window {text!r}: it must be longer than zero")
    return n * _UNITS_S[m.group(2).lower()]


@dataclass(frozen=True)
class Filter:
    """What the panes show: a time window, one session, a text filter."""

    since_ns: int | None = None
    session_id: str | None = None
    text: str | None = None

    @classmethod
    def for_window(cls, window_s: int | None, now_ns: int | None = None, **kw: Any) -> Filter:
        """A filter for the last `window_s` seconds (None = all time)."""
        if window_s is None:
            return cls(since_ns=None, **kw)
        now_ns = time.time_ns() if now_ns is None else now_ns
        return cls(since_ns=now_ns - window_s * 1_000_000_000, **kw)

    @property
    def needle(self) -> str | None:
        """The text filter, lower-cased, or None when empty."""
        t = (self.text or "").strip().lower()
        return t or None


@dataclass(frozen=True)
class Query:
    """SQL with named parameters (`$name`), runnable by `execute` and by `COPY (...) TO`."""

    sql: str
    params: dict[str, Any]

    def fetch(self, cur: duckdb.DuckDBPyConnection) -> list[dict]:
        """Run it; one dict per row, keyed by column name."""
        return _dicts(cur.execute(self.sql, self.params))


def _dicts(result: duckdb.DuckDBPyConnection) -> list[dict]:
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def filter_where(f: Filter, time_col: str, params: dict[str, Any], *, session: bool = True) -> str:
    """Window and session conditions; only the ones in use, so DuckDB can push them down."""
    conds = ["TRUE"]
    if f.since_ns is not None:
        params["since"] = f.since_ns
        conds.append(f"{time_col} >= $since")
    if session and f.session_id is not None:
        params["session"] = f.session_id
        conds.append("session_id = $session")
    return " AND ".join(conds)


def _text_cond(f: Filter, params: dict[str, Any], *cols: str) -> str:
    needle = f.needle
    if needle is None:
        return "TRUE"
    params["text"] = needle
    return "(" + " OR ".join(f"contains(lower(coalesce({c}, '')), $text)" for c in cols) + ")"


def _ratio(read: str, inp: str, creation: str) -> str:
    den = f"({inp} + {read} + {creation})"
    return f"CASE WHEN {den} > 0 THEN {read} / {den} END"


# --- sessions ------------------------------------------------------------------------------


def _hours_in(f: Filter, p: dict[str, Any], table: str) -> str:
    """A table's `session_hours` rows for a filter: the whole hours in its window from the
    rollup, and the part-hour its window starts in computed from the rows (same aggregates)."""
    conds = [f"src = '{table}'"]
    if f.session_id is not None:
        p["session"] = f.session_id
        conds.append("session_id = $session")
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
        "fresh_ns": FRESH_WITHIN_S * 1_000_000_000,
    }
    ev_where = filter_where(f, "time_ns", p)
    text = "TRUE"
    if f.needle is not None:
        p["text"] = f.needle
        text = (
            "(contains(lower(s.session_id), $text) OR contains(lower(s.models), $text) "
            "OR s.session_id IN (SELECT session_id FROM events "
            f"WHERE name = '{TOOL_RESULT}' AND {ev_where} "
            "AND contains(lower(coalesce(tool_name, '')), $text)))"
        )

    def hours(table: str) -> str:
        return _hours_in(f, p, table)

    sql = f"""
WITH ev AS (
  SELECT session_id, min(first_ns) AS first_ns, max(last_ns) AS last_ns,
    max(recv_ns) AS recv_ns, sum(prompts) AS prompts, sum(api_requests) AS api_requests,
    sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_creation_tokens) AS cache_creation_tokens, sum(tool_calls) AS tool_calls,
    sum(tool_errors) AS tool_errors, arg_max(resource_id, resource_ns) AS resource_id,
    array_to_string(list_sort(list_distinct(flatten(list(models)))), ', ') AS models
  FROM ({hours("events")}) r GROUP BY session_id
), sp AS (
  SELECT session_id, min(first_ns) AS first_ns, max(last_ns) AS last_ns,
    max(recv_ns) AS recv_ns, sum(prompts) AS interactions,
    arg_max(resource_id, resource_ns) AS resource_id
  FROM ({hours("spans")}) r GROUP BY session_id
), mp AS (
  SELECT session_id, min(first_ns) AS first_ns, max(last_ns) AS last_ns,
    max(recv_ns) AS recv_ns, sum(cost_usd) AS metric_cost_usd,
    arg_max(resource_id, resource_ns) AS resource_id
  FROM ({hours("metric_points")}) r GROUP BY session_id
), ids AS (
  SELECT session_id FROM ev UNION SELECT session_id FROM sp UNION SELECT session_id FROM mp
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
    coalesce(ev.resource_id, sp.resource_id, mp.resource_id) AS resource_id
  FROM ids
  LEFT JOIN ev ON ev.session_id = ids.session_id
  LEFT JOIN sp ON sp.session_id = ids.session_id
  LEFT JOIN mp ON mp.session_id = ids.session_id
)
SELECT s.session_id, s.first_seen_ns, s.last_seen_ns, s.prompts, s.api_requests, s.cost_usd,
  s.input_tokens, s.output_tokens, s.cache_read_tokens, s.cache_creation_tokens, s.tool_calls,
  s.tool_errors, s.models,
  CASE WHEN s.last_seen_ns >= $active_since OR (s.last_received_ns >= $active_since
    AND s.last_received_ns - s.last_seen_ns <= $fresh_ns) THEN 'active' ELSE 'idle' END AS status,
  {_ratio("s.cache_read_tokens", "s.input_tokens", "s.cache_creation_tokens")}
    AS cache_hit_ratio,
  s.metric_cost_usd, s.last_received_ns, s.user_prompts,
  r.attributes AS resource_attributes, s.resource_id
FROM s LEFT JOIN resources r ON r.uid = s.resource_id
WHERE {text}
ORDER BY s.last_seen_ns DESC NULLS LAST, s.session_id
"""
    return Query(sql, p)


def _dt(ns: int | None) -> datetime | None:
    return None if ns is None else _EPOCH + timedelta(microseconds=ns // 1000)


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
FROM events WHERE name = '{USER_PROMPT}' AND session_id IN (SELECT unnest($ids::VARCHAR[]))
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


def session_status(row: dict, now_ns: int) -> str:
    """A fetched session row's `status` as of `now_ns`, as `sessions_query` computes it: active
    if its telemetry was sent in the last ACTIVE_WITHIN_S, or received then and fresh (sent at
    most FRESH_WITHIN_S before), else idle. The UI re-derives it as the clock moves, without
    querying again."""
    since = now_ns - ACTIVE_WITHIN_S * 1_000_000_000
    seen, received = row.get("last_seen_ns"), row.get("last_received_ns")
    if seen is not None and seen >= since:
        return "active"
    fresh = seen is not None and received is not None
    fresh = fresh and received >= since and received - seen <= FRESH_WITHIN_S * 1_000_000_000
    return "active" if fresh else "idle"


def sessions(cur: duckdb.DuckDBPyConnection, f: Filter, now_ns: int | None = None) -> list[dict]:
    """Sessions with telemetry in the filter, by last activity (newest first)."""
    rows = sessions_query(f, now_ns).fetch(cur)
    terminals = _terminals(cur, rows)
    for r in rows:
        r["first_seen"] = _dt(r["first_seen_ns"])
        r["last_seen"] = _dt(r["last_seen_ns"])
        r["terminal"] = terminals[r["session_id"]]
        r["custom"] = custom_attributes(r["resource_attributes"], r.pop("resource_id"))
    return rows


# --- models and tools ----------------------------------------------------------------------


def models_query(f: Filter) -> Query:
    """Per model: requests, cost and its share, tokens by kind, cache hit ratio; by cost."""
    p: dict[str, Any] = {}
    where = filter_where(f, "time_ns", p)
    text = _text_cond(f, p, "model", "session_id")
    sql = f"""
WITH m AS (
  SELECT coalesce(model, '(unknown)') AS model, count(*) AS api_requests,
    coalesce(sum(cost_usd), 0.0) AS cost_usd,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
    coalesce(sum(cache_creation_tokens), 0) AS cache_creation_tokens
  FROM events WHERE name = '{API_REQUEST}' AND {where} AND {text}
  GROUP BY 1
)
SELECT model, api_requests, cost_usd, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens,
  {_ratio("cache_read_tokens", "input_tokens", "cache_creation_tokens")} AS cache_hit_ratio,
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
    text = _text_cond(f, p, "tool_name", "session_id")
    sql = f"""
WITH t AS (
  SELECT coalesce(tool_name, '(unknown)') AS tool_name, count(*) AS calls,
    count(*) FILTER (WHERE success = false) AS errors,
    quantile_cont(duration_ms, [0.5, 0.95, 0.99]) AS q,
    max(duration_ms) AS max_ms, coalesce(sum(duration_ms), 0.0) AS total_ms
  FROM events WHERE name = '{TOOL_RESULT}' AND {where} AND {text}
  GROUP BY 1
)
SELECT tool_name, calls, errors, q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms, max_ms,
  total_ms, 100.0 * errors / calls AS error_pct
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
    text = _text_cond(f, p, "tool_name", "session_id")
    rows = cur.execute(
        f"SELECT duration_ms FROM events WHERE name = '{TOOL_RESULT}' AND tool_name = $tool "
        f"AND duration_ms IS NOT NULL AND {where} AND {text}",
        p,
    ).fetchall()
    return array("d", (r[0] for r in rows))


# --- overview ------------------------------------------------------------------------------


def overview(cur: duckdb.DuckDBPyConnection, f: Filter) -> dict:
    """Header totals in the window/session (text filter ignored).

    `last_received_ns` and `received_total` (rows of every kind) ignore the filter: they are
    for the ingest rate and the age of the last export.
    """
    pe: dict[str, Any] = {}
    ps: dict[str, Any] = {}
    ev_where = filter_where(f, "time_ns", pe)
    sp_where = filter_where(f, "start_ns", ps)
    mp_where = filter_where(f, "time_ns", {})
    (sessions_n,) = cur.execute(
        f"""
SELECT count(*) FROM (
  SELECT session_id FROM events WHERE session_id IS NOT NULL AND {ev_where}
  UNION SELECT session_id FROM spans WHERE session_id IS NOT NULL AND {sp_where}
  UNION SELECT session_id FROM metric_points WHERE session_id IS NOT NULL AND {mp_where})
""",
        {**pe, **ps},
    ).fetchone()
    out = _dicts(
        cur.execute(
            f"""
SELECT coalesce(sum(cost_usd) FILTER (WHERE name = '{API_REQUEST}'), 0.0) AS cost_usd,
  count(*) FILTER (WHERE name = '{API_REQUEST}') AS api_requests, count(*) AS events_total
FROM events WHERE {ev_where}
""",
            pe,
        )
    )[0]
    (out["spans_total"],) = cur.execute(
        f"SELECT count(*) FROM spans WHERE {sp_where}",
        ps,
    ).fetchone()
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


# --- turns ---------------------------------------------------------------------------------


def _preview(text: str | None, width: int = 80) -> str:
    if not text:
        return ""
    one = " ".join(str(text).split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _tools_text(names: list[str] | None) -> str:
    """Tool names in order of first use with counts: "Bash\u00d72, Read"."""
    counts = Counter(names or ())
    return ", ".join(
        name if counts[name] == 1 else f"{name}\u00d7{counts[name]}" for name in counts
    )


def turns(cur: duckdb.DuckDBPyConnection, session_id: str) -> list[dict]:
    """A session's turns (one per prompt.id / interaction), oldest first.

    `key` identifies the turn for `span_tree`: the prompt id, or the trace id of an interaction
    span that no event names.
    """
    p = {"s": session_id}
    ev_rows = _dicts(
        cur.execute(
            "SELECT prompt_id, start_ns, end_ns, trace_id, api_requests, cost_usd, tool_errors, "
            "tool_list, prompt FROM prompt_turns WHERE session_id = $s",
            p,
        )
    )
    interactions = _dicts(
        cur.execute(
            "SELECT trace_id, start_ns, duration_ms, has_interaction, prompt, llm_requests, "
            "tool_list, tool_errors FROM trace_turns WHERE session_id = $s",
            p,
        )
    )
    by_trace = {i["trace_id"]: i for i in interactions}
    out: list[dict] = []
    for e in ev_rows:
        inter = by_trace.pop(e["trace_id"], None) if e["trace_id"] else None
        start = e["start_ns"] if inter is None else min(e["start_ns"], inter["start_ns"])
        if inter is not None and inter["has_interaction"] and inter["duration_ms"] is not None:
            duration = inter["duration_ms"]
        else:
            duration = (e["end_ns"] - e["start_ns"]) / 1e6
        out.append(
            {
                "key": e["prompt_id"],
                "prompt_id": e["prompt_id"],
                "trace_id": e["trace_id"],
                "prompt": _preview(e["prompt"] or (inter or {}).get("prompt")),
                "start_ns": start,
                "start": _dt(start),
                "duration_ms": duration,
                "cost_usd": e["cost_usd"] or 0.0,
                "api_requests": e["api_requests"],
                "tools": _tools_text(e["tool_list"]),
                "tool_errors": e["tool_errors"],
                "has_spans": inter is not None,
            }
        )
    for trace_id, inter in by_trace.items():
        out.append(
            {
                "key": trace_id,
                "prompt_id": None,
                "trace_id": trace_id,
                "prompt": _preview(inter["prompt"]),
                "start_ns": inter["start_ns"],
                "start": _dt(inter["start_ns"]),
                "duration_ms": inter["duration_ms"],
                "cost_usd": None,
                "api_requests": inter["llm_requests"],
                "tools": _tools_text(inter["tool_list"]),
                "tool_errors": inter["tool_errors"],
                "has_spans": True,
            }
        )
    out.sort(key=lambda t: (t["start_ns"] is None, t["start_ns"] or 0))
    return out


# --- span tree -----------------------------------------------------------------------------


@dataclass
class TreeNode:
    """One node of a turn's tree: a span, or an event standing in for one."""

    key: str
    name: str
    kind: str
    label: str
    duration_ms: float | None
    is_error: bool
    attributes: dict
    children: list[TreeNode] = field(default_factory=list)
    start_ns: int | None = None

    def walk(self):
        """This node and every descendant, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()


def _kind(name: str) -> str:
    short = name.removeprefix("claude_code.")
    return short.removeprefix("tool.") if short.startswith("tool.") else short


def _ms(ms: float | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f}s"
    return f"{ms / 60_000:.1f}m"


def _join(*parts: Any) -> str:
    return "  ".join(str(x) for x in parts if x not in (None, ""))


def _tokens(inp: Any, out: Any) -> str | None:
    if inp is None and out is None:
        return None
    return f"{inp if inp is not None else '?'}/{out if out is not None else '?'} tok"


def _cost(c: float | None) -> str | None:
    return None if c is None else f"${c:.4f}"


def _label(kind: str, a: dict, duration_ms: float | None, is_error: bool, cost: Any) -> str:
    dur = _ms(duration_ms)
    if kind == "interaction":
        prompt = a.get("user_prompt", a.get("prompt"))
        return _join("interaction", dur, f'"{_preview(prompt, 60)}"' if prompt else None)
    if kind == "llm_request":
        attempt = a.get("attempt")
        head = "llm_request " + str(a.get("model") or "?")
        if attempt is not None and str(attempt) not in ("", "1", "0"):
            head += f" attempt {attempt}"
        if a.get("agent_id"):
            head += f" [agent {str(a['agent_id'])[:12]}]"
        tok = _tokens(a.get("input_tokens"), a.get("output_tokens"))
        err = (
            ("error: " + str(a.get("error") or a.get("status_code") or "failed"))
            if is_error
            else None
        )
        return _join(head, dur, tok, _cost(cost), err)
    if kind == "tool":
        detail = a.get("full_command") or a.get("file_path") or a.get("mcp_server_name")
        return _join(f"tool {a.get('tool_name') or '?'}", dur, _preview(detail, 50) or None)
    if kind == "blocked_on_user":
        decision = a.get("decision")
        source = a.get("source")
        what = f" {decision} ({source})" if decision and source else f" {decision or ''}"
        return _join("blocked_on_user" + what.rstrip(), dur)
    if kind == "execution":
        state = "error: " + str(a.get("error") or "failed") if is_error else "ok"
        return _join("execution", dur, state)
    if kind == "event":
        return _join(str(a.get("event.name") or kind), dur, "error" if is_error else None)
    return _join(kind, dur, "error" if is_error else None)


def _loads(s: str | None) -> dict:
    if not s:
        return {}
    try:
        d = json.loads(s)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def _turn_traces(cur: duckdb.DuckDBPyConnection, session_id: str, key: str) -> list[str]:
    rows = cur.execute(
        "SELECT DISTINCT trace_id FROM events WHERE session_id = $s AND prompt_id = $p "
        "AND trace_id IS NOT NULL",
        {"s": session_id, "p": key},
    ).fetchall()
    return [r[0] for r in rows] or [key]


def span_tree(
    cur: duckdb.DuckDBPyConnection, session_id: str, prompt_id: str
) -> tuple[list[TreeNode], str]:
    """The tree of one turn and where it came from: "spans", or "events" when no span exists.

    `prompt_id` is a turn's `key`: a prompt id, or a trace id for a turn known only by spans.
    """
    traces = _turn_traces(cur, session_id, prompt_id)
    span_rows = _dicts(
        cur.execute(
            """
SELECT trace_id, span_id, parent_span_id, name, start_ns, end_ns, duration_ms, status_code,
  status_message, session_id, model, tool_name, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, success, attempt, agent_id, parent_agent_id, attributes
FROM spans WHERE trace_id IN (SELECT unnest($t::VARCHAR[]))
ORDER BY start_ns, span_id
""",
            {"t": traces},
        )
    )
    events = _dicts(
        cur.execute(
            """
SELECT time_ns, model, cost_usd, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, duration_ms, attributes, name, trace_id, span_id, sequence, prompt_id,
  tool_name, tool_use_id, success, decision, error, attempt, uid
FROM events WHERE session_id = $s AND (prompt_id = $p OR (prompt_id IS NULL AND
  trace_id IN (SELECT unnest($t::VARCHAR[]))))
ORDER BY time_ns, sequence
""",
            {"s": session_id, "p": prompt_id, "t": traces},
        )
    )
    if not span_rows:
        return _tree_from_events(prompt_id, events), "events"
    roots = _tree_from_spans(span_rows, [e for e in events if e["name"] == API_REQUEST])
    if not any(r.kind == "interaction" for r in roots):
        roots = [_pending_root(prompt_id, events, roots)]
    return roots, "spans"


def _pending_root(key: str, events: list[dict], children: list[TreeNode]) -> TreeNode:
    """Stands in for an interaction span not received yet (it is exported when the turn ends)."""
    prompt_ev = next((e for e in events if e["name"] == USER_PROMPT), None)
    attrs = {"prompt.id": key, **(_loads(prompt_ev["attributes"]) if prompt_ev else {})}
    attrs["note"] = "interaction span not received yet (turn in progress?)"
    starts = [c.start_ns for c in children if c.start_ns is not None]
    ends = [
        c.start_ns + int((c.duration_ms or 0) * 1e6) for c in children if c.start_ns is not None
    ]
    dur = (max(ends) - min(starts)) / 1e6 if starts else None
    prompt = attrs.get("prompt")
    return TreeNode(
        key=f"turn:{key}",
        name=INTERACTION,
        kind="interaction",
        label=_join(
            "interaction (in progress)", _ms(dur), f'"{_preview(prompt, 60)}"' if prompt else None
        ),
        duration_ms=dur,
        is_error=False,
        attributes=attrs,
        children=children,
        start_ns=min(starts) if starts else None,
    )


def _pair_costs(llm: list[dict], api: list[dict]) -> dict[str, dict]:
    """llm_request span -> its api_request event: same model and tokens, else same order."""
    out: dict[str, dict] = {}
    used: set[int] = set()
    tok = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")
    for s in llm:
        for i, e in enumerate(api):
            if i not in used and e["model"] == s["model"] and all(e[k] == s[k] for k in tok):
                out[s["span_id"]] = e
                used.add(i)
                break
    rest_s = [s for s in llm if s["span_id"] not in out]
    rest_e = [e for i, e in enumerate(api) if i not in used]
    if rest_s and len(rest_s) == len(rest_e):
        out.update({s["span_id"]: e for s, e in zip(rest_s, rest_e, strict=True)})
    return out


def _tree_from_spans(rows: list[dict], api: list[dict]) -> list[TreeNode]:
    paired = _pair_costs([r for r in rows if r["name"] == LLM_REQUEST], api)
    nodes: dict[str, TreeNode] = {}
    for r in rows:
        a = _loads(r["attributes"])
        kind = _kind(r["name"])
        is_error = r["status_code"] == STATUS_ERROR or r["success"] is False
        cost = None
        ev = paired.get(r["span_id"])
        if ev is not None:
            cost = ev["cost_usd"]
            a.setdefault("cost_usd", cost)
        info = {
            "span.name": r["name"],
            "trace_id": r["trace_id"],
            "span_id": r["span_id"],
            "parent_span_id": r["parent_span_id"],
            "status_code": r["status_code"],
            "status_message": r["status_message"],
            "start": _dt(r["start_ns"]).isoformat() if r["start_ns"] else None,
        }
        nodes[r["span_id"]] = TreeNode(
            key=f"{r['trace_id']}:{r['span_id']}",
            name=r["name"],
            kind=kind,
            label=_label(kind, a, r["duration_ms"], is_error, cost),
            duration_ms=r["duration_ms"],
            is_error=is_error,
            attributes={**info, **a},
            start_ns=r["start_ns"],
        )
    roots: list[TreeNode] = []
    for r in rows:
        node = nodes[r["span_id"]]
        parent = nodes.get(r["parent_span_id"]) if r["parent_span_id"] else None
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent.children.append(node)
    return roots


def _event_node(e: dict, kind: str, name: str, start_ns: int | None, dur: float | None) -> TreeNode:
    a = _loads(e["attributes"])
    is_error = e["success"] is False or e["name"] == API_ERROR
    return TreeNode(
        key=f"event:{e['uid'].hex()}",
        name=name,
        kind=kind,
        label=_label(kind, a, dur, is_error, e["cost_usd"]),
        duration_ms=dur,
        is_error=is_error,
        attributes={"event.name": e["name"], **a},
        start_ns=start_ns,
    )


def _minus(t: int, ms: float | None) -> int:
    return t - int(ms * 1e6) if ms is not None else t


def _tree_from_events(key: str, events: list[dict]) -> list[TreeNode]:
    """The span tree's shape rebuilt from one turn's events (traces not enabled)."""
    if not events:
        return []
    first, last = events[0]["time_ns"], events[-1]["time_ns"]
    prompt_ev = next((e for e in events if e["name"] == USER_PROMPT), None)
    root_attrs = {"prompt.id": key, **(_loads(prompt_ev["attributes"]) if prompt_ev else {})}
    root_dur = (last - first) / 1e6
    root = TreeNode(
        key=f"turn:{key}",
        name=INTERACTION,
        kind="interaction",
        label=_label("interaction", root_attrs, root_dur, False, None),
        duration_ms=root_dur,
        is_error=False,
        attributes=root_attrs,
        start_ns=first,
    )
    tools: dict[str, dict[str, dict]] = {}
    order: list[tuple[int, TreeNode | str]] = []
    for e in events:
        name = e["name"]
        if name in (TOOL_DECISION, TOOL_RESULT):
            tid = e["tool_use_id"] or f"uid:{e['uid'].hex()}"
            if tid not in tools:
                tools[tid] = {}
                order.append((e["time_ns"], tid))
            tools[tid]["decision" if name == TOOL_DECISION else "result"] = e
        elif name in (API_REQUEST, API_ERROR):
            dur = e["duration_ms"]
            start = _minus(e["time_ns"], dur)
            order.append((start, _event_node(e, "llm_request", LLM_REQUEST, start, dur)))
        elif name != USER_PROMPT:
            order.append((e["time_ns"], _event_node(e, "event", name, e["time_ns"], None)))
    for i, (t, item) in enumerate(order):
        if isinstance(item, str):
            node = _tool_from_events(item, tools[item])
            order[i] = (node.start_ns if node.start_ns is not None else t, node)
    order.sort(key=lambda x: x[0])
    root.children = [n for _, n in order if isinstance(n, TreeNode)]
    return [root]


def _tool_from_events(tool_use_id: str, pair: dict[str, dict]) -> TreeNode:
    dec, res = pair.get("decision"), pair.get("result")
    base = res or dec
    assert base is not None
    attrs = {
        **_loads(dec["attributes"] if dec else None),
        **_loads(res["attributes"] if res else None),
    }
    attrs.pop("event.name", None)
    detail = {**_loads(attrs.get("tool_input")), **_loads(attrs.get("tool_parameters"))}
    if "command" in detail:
        detail.setdefault("full_command", detail["command"])
    shown = {k: detail[k] for k in ("full_command", "file_path") if detail.get(k)}
    children: list[TreeNode] = []
    start = dec["time_ns"] if dec else _minus(res["time_ns"], res["duration_ms"])
    end = res["time_ns"] if res else dec["time_ns"]
    if dec is not None:
        children.append(
            _event_node(
                dec, "blocked_on_user", "claude_code.tool.blocked_on_user", dec["time_ns"], None
            )
        )
    if res is not None:
        exec_start = _minus(res["time_ns"], res["duration_ms"])
        children.append(
            _event_node(
                res, "execution", "claude_code.tool.execution", exec_start, res["duration_ms"]
            )
        )
    dur = (end - start) / 1e6 if res else None
    if (
        res is not None
        and res["duration_ms"] is not None
        and (dur is None or dur < res["duration_ms"])
    ):
        dur = res["duration_ms"]
    return TreeNode(
        key=f"tool:{tool_use_id}",
        name=TOOL_SPAN,
        kind="tool",
        label=_label("tool", {"tool_name": base["tool_name"], **shown}, dur, False, None),
        duration_ms=dur,
        is_error=False,
        attributes={"tool_use_id": tool_use_id, **attrs},
        children=children,
        start_ns=start,
    )
