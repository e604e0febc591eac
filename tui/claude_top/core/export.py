"""CSV snapshots of the store: sessions, models, tools, spans, events, plus `snapshot.json`.

The session, model and tool files run the very queries the UI panes show (`core.queries`),
wrapped only to format times; every file is written by DuckDB's `COPY`, inside one read
transaction so the files agree with each other while ingest continues. A UI snapshot adds the
focused pane as shown (`PaneView`): its own query rows in screen order, in the same columns and
formatting as the CLI's file for that table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
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
    overview,
    parse_window,
    session_ids_starting,
    sessions_query,
    tools_query,
)
from claude_top.core.queries.reader import LocalSource, Source
from claude_top.core.queries.spantree import turn_traces
from claude_top.core.schema import SCHEMA_VERSION
from claude_top.core.sources.otlp.agents import prices

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
    "agent",
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
    "agent",
)
TOOLS_COLUMNS = (
    "tool_name",
    "calls",
    "errors",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "total_ms",
    "agent",
)
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
    "agent",
)
EVENTS_COLUMNS = ("session_id", "prompt_id", "name", "timestamp", "sequence", "attributes", "agent")

SESSIONS_CSV = (
    *SESSIONS_COLUMNS,
    "status",
    "cache_hit_ratio",
    "metric_cost_usd",
    "first_seen_ns",
    "last_seen_ns",
    "resource_attributes",
    "cost_source",
    "unpriced_requests",
    "not_understood",
    "source",
    "project",
    "cost_sources",
    "estimated_cost_usd",
)
"""Every column of `sessions.csv` (the minimum first). `cost_source`: `reported` (by the agent),
`estimate` (from the price table), `mixed`, or `none` (no price for its requests);
`unpriced_requests`: requests without a cost; `not_understood`: events stored but not read;
`source`: otel, transcript (Claude Code's transcript files only) or both; `cost_sources`: where
`cost_usd` came from (reported, transcript, estimate), `estimated_cost_usd` the part estimated
from the price table."""
MODELS_CSV = (*MODELS_COLUMNS, "share", "cost_source", "estimated_cost_usd", "unpriced_requests")
TOOLS_CSV = (*TOOLS_COLUMNS, "error_pct")
TURNS_CSV = (
    "n",
    "session_id",
    "prompt_id",
    "trace_id",
    "start",
    "prompt",
    "duration_ms",
    "cost_usd",
    "api_requests",
    "tools",
    "tool_errors",
    "tree",
    "start_ns",
    "estimated_cost_usd",
    "unpriced_requests",
)
"""A session's turns as the turns pane shows them (the CLI export has no turns file)."""
TREE_CSV = (
    "depth",
    "name",
    "kind",
    "label",
    "start",
    "duration_ms",
    "error",
    "key",
    "attributes",
    "start_ns",
)
"""A turn's span tree as shown: its nodes top to bottom, each with its depth."""
CALLS_CSV = (
    "tool_name",
    "duration_ms",
    "time",
    "session_id",
    "prompt_id",
    "success",
    "error",
    "input",
    "time_ns",
)
"""One tool's calls as listed (Enter on a tool)."""
REQUESTS_CSV = (
    "model",
    "time",
    "session_id",
    "prompt_id",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "duration_ms",
    "time_ns",
)
"""One model's API requests as listed (Enter on a model)."""
PANE_COLUMNS = {
    "sessions": SESSIONS_CSV,
    "models": MODELS_CSV,
    "tools": TOOLS_CSV,
    "turns": TURNS_CSV,
    "tree": TREE_CSV,
    "calls": CALLS_CSV,
    "requests": REQUESTS_CSV,
}
_ISO_FROM = {
    "first_seen": "first_seen_ns",
    "last_seen": "last_seen_ns",
    "start": "start_ns",
    "time": "time_ns",
}


DECIMALS = {
    "cost_usd": 10,
    "metric_cost_usd": 10,
    "cache_hit_ratio": 4,
    "share": 4,
    "error_pct": 2,
    "duration_ms": 3,
    "p50_ms": 3,
    "p95_ms": 3,
    "p99_ms": 3,
    "max_ms": 3,
    "total_ms": 3,
}
"""What a CSV's fractional values mean, in decimals: dollars to 1e-10 (a cost is token counts
times prices per million tokens, finer than a micro-dollar: Claude Code reports 0.0262155, and
needs no more), ratios to 0.01 %, percentages to 0.01, milliseconds to the microsecond; sums of
doubles otherwise end in noise such as 0.04597999999999999."""


def _column_sql(column: str) -> str:
    """A CSV column from its query's column of the same name, ISO-formatted or rounded."""
    if column in _ISO_FROM:
        return f"{iso_sql(_ISO_FROM[column])} AS {column}"
    if column in DECIMALS:
        return f"round({column}, {DECIMALS[column]}) AS {column}"
    return column


SPANS_CSV = (
    *SPANS_COLUMNS,
    "role",
    "not_understood",
    "status_message",
    "kind",
    "span_type",
    "model",
    "tool_name",
    "tool_use_id",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "success",
    "attempt",
    "agent_id",
    "parent_agent_id",
    "start_ns",
    "end_ns",
    "events",
    "links",
    "scope_name",
    "service_name",
)
"""Every column of `spans.csv` (the minimum first)."""
EVENTS_CSV = (
    *EVENTS_COLUMNS,
    "kind",
    "cost_source",
    "not_understood",
    "time_ns",
    "trace_id",
    "span_id",
    "model",
    "tool_name",
    "tool_use_id",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "duration_ms",
    "success",
    "decision",
    "error",
    "attempt",
    "query_source",
    "body",
    "severity_number",
    "scope_name",
    "service_name",
    "source",
    "request_id",
    "project",
)
_ROW_ISO = {
    "first_seen": "first_seen_ns",
    "last_seen": "last_seen_ns",
    "start_time": "start_ns",
    "end_time": "end_ns",
    "timestamp": "time_ns",
}


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


@dataclass(frozen=True)
class PaneView:
    """A pane as it is on screen: its query rows top to bottom, and how they are sorted."""

    pane: str
    """"sessions", "models", "tools", "turns", "tree" (a turn's span tree), "calls" (a
    tool's) or "requests" (a model's)."""
    rows: list[dict]
    sort_column: str | None = None
    sort_label: str | None = None
    descending: bool = True
    session_id: str | None = None
    """Turns and tree: whose they are. Tools and models: the session they are narrowed to, if
    any."""

    @property
    def name(self) -> str:
        return f"focused-{self.pane}"


@dataclass(frozen=True)
class SnapshotScope:
    """What a UI snapshot covers: the window and text filter, one session (or one of its turns),
    one agent, and the pane as shown. Sent as JSON when a running instance writes it
    (`core.wire`)."""

    window: str = "all"
    session_id: str | None = None
    turn_key: str | None = None
    text: str | None = None
    view: PaneView | None = None
    agent: str | None = None

    def to_doc(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_doc(cls, doc: dict) -> SnapshotScope:
        view = doc.get("view")
        return cls(**{**doc, "view": PaneView(**view) if view else None})


def sessions_export_query(f: Filter, now_ns: int | None = None) -> Query:
    """`sessions.csv`: the sessions pane's query with ISO times."""
    q = sessions_query(f, now_ns)
    cols = ", ".join(_column_sql(c) for c in SESSIONS_CSV)
    sql = f"SELECT {cols} FROM ({q.sql}) ORDER BY last_seen_ns DESC NULLS LAST, session_id"
    return Query(sql, q.params)


def models_export_query(f: Filter) -> Query:
    """`models.csv`: the model pane's query."""
    q = models_query(f)
    cols = ", ".join(_column_sql(c) for c in MODELS_CSV)
    return Query(f"SELECT {cols} FROM ({q.sql}) ORDER BY cost_usd DESC, model", q.params)


def tools_export_query(f: Filter) -> Query:
    """`tools.csv`: the tool latency pane's query."""
    q = tools_query(f)
    cols = ", ".join(_column_sql(c) for c in TOOLS_CSV)
    return Query(f"SELECT {cols} FROM ({q.sql}) ORDER BY total_ms DESC, tool_name", q.params)


def _matching_sessions(f: Filter, params: dict[str, Any]) -> str:
    """With a text filter, only the sessions it matches (those in `sessions.csv`)."""
    if f.needle is None:
        return "TRUE"
    q = sessions_query(f)
    params.update(q.params)
    return f"session_id IN (SELECT session_id FROM ({q.sql}))"


def spans_export_query(f: Filter, traces: list[str] | None = None) -> Query:
    """`spans.csv`: every span in the window (and session, and text filter, and `traces`: a
    turn's), oldest first."""
    p: dict[str, Any] = {}
    where = f"{filter_where(f, 'start_ns', p)} AND {_matching_sessions(f, p)}"
    if traces is not None:
        p["traces"] = traces
        where += " AND trace_id IN (SELECT unnest($traces::VARCHAR[]))"
    sql = f"""
SELECT trace_id, span_id, parent_span_id, name, session_id,
  {iso_sql("start_ns")} AS start_time, {iso_sql("end_ns")} AS end_time,
  {_column_sql("duration_ms")},
  CASE status_code WHEN 0 THEN 'UNSET' WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR'
    ELSE CAST(status_code AS VARCHAR) END AS status,
  attributes, agent, role, not_understood,
  status_message, kind, span_type, model, tool_name, tool_use_id, input_tokens, output_tokens,
  cache_read_tokens, cache_creation_tokens, success, attempt, agent_id, parent_agent_id,
  start_ns, end_ns, events, links, scope_name, service_name
FROM spans WHERE {where}
ORDER BY start_ns, trace_id, span_id
"""
    return Query(sql, p)


def events_export_query(
    f: Filter, turn: str | None = None, traces: list[str] | None = None
) -> Query:
    """`events.csv`: every log event in the window (and session, and text filter, and turn: its
    prompt id's events, or those of its traces that name no prompt), oldest first."""
    p: dict[str, Any] = {}
    where = f"{filter_where(f, 'time_ns', p)} AND {_matching_sessions(f, p)}"
    if turn is not None:
        p["turn"], p["traces"] = turn, traces or []
        where += (
            " AND (prompt_id = $turn OR (prompt_id IS NULL"
            " AND trace_id IN (SELECT unnest($traces::VARCHAR[]))))"
        )
    sql = f"""
SELECT session_id, prompt_id, name, {iso_sql("time_ns")} AS timestamp, sequence, attributes,
  agent, kind, cost_source, not_understood, time_ns, trace_id, span_id, model, tool_name,
  tool_use_id, {_column_sql("cost_usd")}, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, {_column_sql("duration_ms")}, success, decision, error, attempt,
  query_source, body, severity_number, scope_name, service_name, source,
  request_id, project
FROM events WHERE {where}
ORDER BY time_ns, session_id, sequence
"""
    return Query(sql, p)


class UnknownSession(ValueError):
    """A session id (or prefix) that names no session, or more than one."""


def resolve_session(cur: duckdb.DuckDBPyConnection, given: str) -> str:
    """The one session whose id starts with `given` (the UI shows the first 8 characters).
    Raises UnknownSession when none or several do."""
    prefix = given.strip()
    if not prefix:
        raise UnknownSession("no session id given")
    found = session_ids_starting(cur, prefix, limit=4)
    if not found:
        raise UnknownSession(f"no session id starts with {prefix!r}")
    if len(found) > 1 and prefix not in found:
        more = ", ..." if len(found) > 3 else ""
        raise UnknownSession(
            f"{prefix!r} is the start of more than one session id ({', '.join(found[:3])}"
            f"{more}): give more of it"
        )
    return prefix if prefix in found else found[0]


PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
"""Snapshots hold prompts, commands and paths: readable by their owner alone, whatever the umask
of the process writing them (the UI, `serve` or `claude-top export`). A folder the snapshot
creates is private from the start, so nothing in it is ever readable by others."""


def _private_file(path: Path) -> int:
    """Create (or empty) `path` readable by its owner alone; returns the open descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return fd


def _private_text(path: Path, text: str) -> None:
    with os.fdopen(_private_file(path), "w", newline="", encoding="utf-8") as fh:
        fh.write(text)


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
            path.mkdir(PRIVATE_DIR)
        except FileExistsError:
            n += 1
            continue
        return path


def _csv_field(value: Any) -> str:
    """One CSV field as DuckDB's `COPY` writes it, so a pane's file reads like the CLI's."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"))
    text = str(value)
    if text == "" or any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _pane_value(view: PaneView, row: dict, column: str) -> Any:
    if column in _ISO_FROM:
        return _iso(row.get(_ISO_FROM[column]))
    if column in DECIMALS and isinstance(row.get(column), float):
        return round(row[column], DECIMALS[column])
    if view.pane == "turns":
        if column == "session_id":
            return view.session_id
        if column == "tree":
            return "spans" if row.get("has_spans") else "events"
    return row.get(column)


def write_pane_csv(path: Path, view: PaneView) -> int:
    """The pane's rows in screen order, in its table's CSV columns; returns rows written."""
    columns = PANE_COLUMNS[view.pane]
    with os.fdopen(_private_file(path), "w", newline="", encoding="utf-8") as fh:
        fh.write(",".join(columns) + "\n")
        for row in view.rows:
            fh.write(",".join(_csv_field(_pane_value(view, row, c)) for c in columns) + "\n")
    return len(view.rows)


def export_snapshot(
    cur: duckdb.DuckDBPyConnection,
    out_dir: Path,
    *,
    db_path: str,
    window: str | None,
    window_s: int | None,
    session_id: str | None,
    text: str | None = None,
    view: PaneView | None = None,
    now_ns: int | None = None,
    turn_key: str | None = None,
    agent: str | None = None,
) -> ExportResult:
    """Write the five CSVs and `snapshot.json` into `out_dir` (created if missing), readable
    by their owner alone. `session_id` may be any unique start of one (UnknownSession if not).

    `text` is the panes' text filter: sessions, models and tools as filtered on screen, spans
    and events of the sessions it matches. `turn_key` (a turn of `session_id`): only that
    turn's spans and events. `agent` keeps one agent's records. `view` adds
    `focused-<pane>.csv`.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    if session_id is not None:
        session_id = resolve_session(cur, session_id)
    f = Filter.for_window(
        window_s, now_ns, session_id=session_id, text=text or None, agent=agent or None
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(PRIVATE_DIR, parents=True, exist_ok=True)
    if turn_key is not None and session_id is None:
        raise ValueError("a turn's snapshot needs its session")
    traces = turn_traces(cur, session_id, turn_key) if turn_key is not None else None
    queries = {
        "sessions": sessions_export_query(f, now_ns),
        "models": models_export_query(f),
        "tools": tools_export_query(f),
        "spans": spans_export_query(f, traces),
        "events": events_export_query(f, turn_key, traces),
    }
    counts: dict[str, int] = {}
    cur.begin()
    try:
        for name, q in queries.items():
            path = out_dir / f"{name}.csv"
            counts[name] = _copy(cur, q, path)
            os.chmod(path, PRIVATE_FILE)  # COPY creates the file anew, under the umask
        odd = overview(cur, f)["not_understood"]
    finally:
        with contextlib.suppress(duckdb.Error):
            cur.rollback()
    return _finish(
        out_dir, counts, f, view, db_path, window, window_s, session_id, now_ns, turn_key, odd
    )


def _finish(
    out_dir: Path,
    counts: dict[str, int],
    f: Filter,
    view: PaneView | None,
    db_path: str,
    window: str | None,
    window_s: int | None,
    session_id: str | None,
    now_ns: int,
    turn_key: str | None = None,
    not_understood: int | None = None,
) -> ExportResult:
    """Add the focused pane's file and `snapshot.json`."""
    if view is not None:
        counts[view.name] = write_pane_csv(out_dir / f"{view.name}.csv", view)
    table = prices()
    snapshot = {
        "db": db_path,
        "window": window or "all",
        "window_s": window_s,
        "filter": {
            "since": _iso(f.since_ns),
            "since_ns": f.since_ns,
            "session_id": session_id,
            "turn": turn_key,
            "text": f.text,
            "agent": f.agent,
        },
        "counts": {f"{name}.csv": n for name, n in counts.items()},
        "not_understood": not_understood,
        "claude_top_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "exported_at": _iso(now_ns),
        "exported_at_ns": now_ns,
        "cost_source": "api_request events: the cost the agent reports; for requests only "
        "Claude Code's transcripts hold, their cost-state lines (cost_source transcript); else "
        "the price table (cost_source estimate; sessions.csv estimated_cost_usd); the "
        "claude_code.cost.usage metric: reconciliation only",
        "prices": {"source": table.source, "date": table.date},
    }
    if view is not None:
        snapshot["view"] = {
            "pane": view.pane,
            "file": f"{view.name}.csv",
            "rows": counts[view.name],
            "sort": {
                "column": view.sort_column,
                "label": view.sort_label,
                "descending": view.descending,
            },
            "text_filter": f.text,
            "session_id": view.session_id,
        }
    _private_text(out_dir / "snapshot.json", json.dumps(snapshot, indent=2) + "\n")
    return ExportResult(directory=out_dir, counts=counts, snapshot=snapshot)


def export_new_snapshot(
    cur: duckdb.DuckDBPyConnection, base: Path, *, now_ns: int | None = None, **kw: Any
) -> ExportResult:
    """`export_snapshot` into a new `snapshot_dir(base)`; the folder is removed if it fails."""
    out_dir = snapshot_dir(base, now_ns)
    try:
        return export_snapshot(cur, out_dir, now_ns=now_ns, **kw)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise


# --- any other place to read from (a team's ClickHouse) ------------------------------------


def _row_value(row: dict, column: str) -> Any:
    """A CSV value as `_column_sql` makes it: ISO UTC times, fractions rounded."""
    if column in _ROW_ISO:
        return _iso(row.get(_ROW_ISO[column]))
    value = row.get(column)
    if column in DECIMALS and isinstance(value, float):
        return round(value, DECIMALS[column])
    return value


def _write_rows(path: Path, columns: tuple[str, ...], rows: list[dict]) -> int:
    """Rows as DuckDB's COPY writes them (times as ISO UTC), so both backends' files agree."""
    with os.fdopen(_private_file(path), "w", newline="", encoding="utf-8") as fh:
        fh.write(",".join(columns) + "\n")
        for row in rows:
            fields = (_row_value(row, c) for c in columns)
            fh.write(",".join(_csv_field(v) for v in fields) + "\n")
    return len(rows)


def export_reader_snapshot(
    reader: Any,
    out_dir: Path,
    *,
    db_path: str,
    window: str | None,
    window_s: int | None,
    session_id: str | None,
    text: str | None = None,
    view: PaneView | None = None,
    now_ns: int | None = None,
    agent: str | None = None,
) -> ExportResult:
    """`export_snapshot` over a reader that is not the local store: the same five files, in the
    same columns and order, from the reader's pane rows and its `export_spans` /
    `export_events` (the local store keeps DuckDB's COPY)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    f = Filter.for_window(
        window_s, now_ns, session_id=session_id, text=text or None, agent=agent or None
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(PRIVATE_DIR, parents=True, exist_ok=True)
    sessions = reader.sessions(f, now_ns)
    matching = {r["session_id"] for r in sessions} if f.needle is not None else None
    raw = Filter(f.since_ns, f.session_id)
    counts = {
        "sessions": _write_rows(out_dir / "sessions.csv", SESSIONS_CSV, sessions),
        "models": _write_rows(out_dir / "models.csv", MODELS_CSV, reader.models(f)),
        "tools": _write_rows(out_dir / "tools.csv", TOOLS_CSV, reader.tools(f)),
        "spans": _write_rows(out_dir / "spans.csv", SPANS_CSV, reader.export_spans(raw, matching)),
        "events": _write_rows(
            out_dir / "events.csv", EVENTS_CSV, reader.export_events(raw, matching)
        ),
    }
    return _finish(out_dir, counts, f, view, db_path, window, window_s, session_id, now_ns)


def export_source_snapshot(source: Source, base: Path, **kw: Any) -> ExportResult:
    """A snapshot of any source in a new `snapshot_dir(base)`: COPY for the local store, the
    reader's rows for another."""
    if isinstance(source, LocalSource):
        with source.store.reading() as cur:
            return export_new_snapshot(cur, base, **kw)
    out_dir = snapshot_dir(base, kw.get("now_ns"))
    try:
        with source.reader() as reader:
            return export_reader_snapshot(reader, out_dir, **kw)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise


def export_scope(
    cur: duckdb.DuckDBPyConnection, base: Path, scope: SnapshotScope, *, db_path: str, now_ns: int
) -> ExportResult:
    """A UI snapshot of `scope` in a new folder under `base`."""
    return export_new_snapshot(
        cur,
        base,
        db_path=db_path,
        window=scope.window,
        window_s=parse_window(scope.window),
        session_id=scope.session_id,
        text=scope.text,
        view=scope.view,
        now_ns=now_ns,
        turn_key=scope.turn_key,
        agent=scope.agent,
    )
