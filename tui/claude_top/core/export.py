"""CSV snapshots of the store: sessions, models, tools, spans, events, plus `snapshot.json`.

The session, model and tool files run the very queries the UI panes show (`core.queries`),
wrapped only to format times; every file is written by DuckDB's `COPY`, inside one read
transaction so the files agree with each other while ingest continues.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from claude_top import __version__
from claude_top.core.queries import (
    Filter,
    Query,
    filter_where,
    models_query,
    sessions_query,
    tools_query,
)
from claude_top.core.schema import SCHEMA_VERSION

FILES = ("sessions", "models", "tools", "spans", "events")

SESSIONS_COLUMNS = (
    "session_id",
    "first_seen",
    "last_seen",
    "prompts",
    "api_requests",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "tool_calls",
    "tool_errors",
    "models",
)
MODELS_COLUMNS = (
    "model",
    "api_requests",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "cache_hit_ratio",
)
TOOLS_COLUMNS = ("tool_name", "calls", "errors", "p50_ms", "p95_ms", "p99_ms", "max_ms", "total_ms")
SPANS_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "session_id",
    "start_time",
    "end_time",
    "duration_ms",
    "status",
    "attributes",
)
EVENTS_COLUMNS = ("session_id", "prompt_id", "name", "timestamp", "sequence", "attributes")


def iso_sql(ns_expr: str) -> str:
    """SQL for a BIGINT unix-nanosecond column as an ISO-8601 UTC string (microseconds)."""
    return f"strftime(make_timestamp(({ns_expr}) // 1000), '%Y-%m-%dT%H:%M:%S.%fZ')"


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + (
        f".{ns % 1_000_000_000 // 1000:06d}Z"
    )


@dataclass
class ExportResult:
    """Where the files went, rows written per file, and what `snapshot.json` says."""

    directory: Path
    counts: dict[str, int]
    snapshot: dict


def sessions_export_query(f: Filter, now_ns: int | None = None) -> Query:
    """`sessions.csv`: the sessions pane's query with ISO times."""
    q = sessions_query(f, now_ns)
    sql = f"""
SELECT session_id, {iso_sql("first_seen_ns")} AS first_seen, {iso_sql("last_seen_ns")} AS last_seen,
  prompts, api_requests, cost_usd, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, tool_calls, tool_errors, models,
  status, cache_hit_ratio, metric_cost_usd, first_seen_ns, last_seen_ns,
  resource_attributes
FROM ({q.sql}) ORDER BY last_seen_ns DESC NULLS LAST, session_id
"""
    return Query(sql, q.params)


def models_export_query(f: Filter) -> Query:
    """`models.csv`: the model pane's query."""
    q = models_query(f)
    cols = ", ".join(MODELS_COLUMNS)
    return Query(f"SELECT {cols}, share FROM ({q.sql}) ORDER BY cost_usd DESC, model", q.params)


def tools_export_query(f: Filter) -> Query:
    """`tools.csv`: the tool latency pane's query."""
    q = tools_query(f)
    cols = ", ".join(TOOLS_COLUMNS)
    return Query(
        f"SELECT {cols}, error_pct FROM ({q.sql}) ORDER BY total_ms DESC, tool_name", q.params
    )


def spans_export_query(f: Filter) -> Query:
    """`spans.csv`: every span in the window (and session), oldest first."""
    p: dict[str, Any] = {}
    where = filter_where(f, "start_ns", p)
    sql = f"""
SELECT trace_id, span_id, parent_span_id, name, session_id,
  {iso_sql("start_ns")} AS start_time, {iso_sql("end_ns")} AS end_time, duration_ms,
  CASE status_code WHEN 0 THEN 'UNSET' WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR'
    ELSE CAST(status_code AS VARCHAR) END AS status,
  attributes,
  status_message, kind, span_type, model, tool_name, tool_use_id, input_tokens, output_tokens,
  cache_read_tokens, cache_creation_tokens, success, attempt, agent_id, parent_agent_id,
  start_ns, end_ns, events, links, scope_name, service_name
FROM spans WHERE {where}
ORDER BY start_ns, trace_id, span_id
"""
    return Query(sql, p)


def events_export_query(f: Filter) -> Query:
    """`events.csv`: every log event in the window (and session), oldest first."""
    p: dict[str, Any] = {}
    where = filter_where(f, "time_ns", p)
    sql = f"""
SELECT session_id, prompt_id, name, {iso_sql("time_ns")} AS timestamp, sequence, attributes,
  time_ns, trace_id, span_id, model, tool_name, tool_use_id, cost_usd, input_tokens,
  output_tokens, cache_read_tokens, cache_creation_tokens, duration_ms, success, decision, error,
  attempt, query_source, body, severity_number, scope_name, service_name
FROM events WHERE {where}
ORDER BY time_ns, session_id, sequence
"""
    return Query(sql, p)


def _copy(cur: duckdb.DuckDBPyConnection, q: Query, path: Path) -> int:
    params = {**q.params, "out_path": str(path)}
    row = cur.execute(
        f"COPY ({q.sql}) TO $out_path (FORMAT CSV, HEADER, DELIMITER ',')", params
    ).fetchone()
    return int(row[0]) if row else 0


def snapshot_dir(base: Path, now_ns: int | None = None) -> Path:
    """A new `claude-top-export-YYYYmmdd-HHMMSS/` folder (local time) under `base`, created with
    `base`; numbered (`-2`, `-3`, ...) when that second's folder already exists."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now_ns // 1_000_000_000))
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = base / (f"claude-top-export-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            path.mkdir()
        except FileExistsError:
            n += 1
            continue
        return path


def export_snapshot(
    cur: duckdb.DuckDBPyConnection,
    out_dir: Path,
    *,
    db_path: str,
    window: str | None,
    window_s: int | None,
    session_id: str | None,
    now_ns: int | None = None,
) -> ExportResult:
    """Write the five CSVs and `snapshot.json` into `out_dir` (created if missing)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    f = Filter.for_window(window_s, now_ns, session_id=session_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    queries = {
        "sessions": sessions_export_query(f, now_ns),
        "models": models_export_query(f),
        "tools": tools_export_query(f),
        "spans": spans_export_query(f),
        "events": events_export_query(f),
    }
    counts: dict[str, int] = {}
    cur.begin()
    try:
        for name, q in queries.items():
            counts[name] = _copy(cur, q, out_dir / f"{name}.csv")
    finally:
        with contextlib.suppress(duckdb.Error):
            cur.rollback()
    snapshot = {
        "db": db_path,
        "window": window or "all",
        "window_s": window_s,
        "filter": {
            "since": _iso(f.since_ns),
            "since_ns": f.since_ns,
            "session_id": session_id,
        },
        "counts": {f"{name}.csv": n for name, n in counts.items()},
        "claude_top_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "exported_at": _iso(now_ns),
        "exported_at_ns": now_ns,
        "cost_source": "api_request events (claude_code.cost.usage metric: reconciliation only)",
    }
    (out_dir / "snapshot.json").write_text(json.dumps(snapshot, indent=2) + "\n")
    return ExportResult(directory=out_dir, counts=counts, snapshot=snapshot)
