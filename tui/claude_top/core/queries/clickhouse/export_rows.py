"""The rows of the CSV export's spans.csv and events.csv over the exporter's tables (a mixin
of `reader.ClickHouseReader`, which gives `x`, `layout` and `_rows`)."""

from __future__ import annotations

from typing import Any

import orjson

from claude_top.core.queries.clickhouse.exprs import TOKENS, json_map, session_cond, unread, window
from claude_top.core.queries.filters import Filter
from claude_top.core.schema import COST_REPORTED, SOURCE_OTEL


class ExportQueries:
    """Raw rows, shaped as the local store exports them."""

    def export_spans(self, f: Filter, sessions: set[str] | None) -> list[dict]:
        """`spans.csv`'s rows (same columns and order as the local store's), oldest first."""
        if not self.x.traces:
            return []
        p: dict[str, Any] = {}
        since = window(f, p)
        where = session_cond(f, p)
        if sessions is not None:
            p["ids"] = sorted(sessions)
            where += " AND session_id IN {ids:Array(String)}"
        cols = [
            "parent_span_id",
            "name",
            "session_id",
            "end_ns",
            "duration_ms",
            "status_code",
            "attributes",
            "role",
            "status_message",
            "kind",
            "span_type",
            "model",
            "tool_name",
            "tool_use_id",
            *TOKENS,
            "success",
            "attempt",
            "agent_id",
            "parent_agent_id",
            "scope_name",
            "service_name",
        ]
        cols += [
            c
            for c in ("ev_times", "ev_names", "ev_attrs", "ln_traces", "ln_spans", "ln_attrs")
            if c in self.x.sp
        ]
        rows = self._rows(
            f"SELECT * FROM ({self.x.spans(cols, where, since)}) "
            "ORDER BY start_ns, trace_id, span_id",
            p,
        )
        out = []
        for r in rows:
            events = None
            if r.get("ev_names"):
                events = orjson.dumps(
                    [
                        {"name": n, "time_ns": t, "attributes": dict(a)}
                        for t, n, a in zip(r["ev_times"], r["ev_names"], r["ev_attrs"], strict=True)
                    ],
                    option=orjson.OPT_SORT_KEYS,
                ).decode()
            links = None
            if r.get("ln_traces"):
                links = orjson.dumps(
                    [
                        {"trace_id": t, "span_id": s, "attributes": dict(a)}
                        for t, s, a in zip(
                            r["ln_traces"], r["ln_spans"], r["ln_attrs"], strict=True
                        )
                    ],
                    option=orjson.OPT_SORT_KEYS,
                ).decode()
            status = {0: "UNSET", 1: "OK", 2: "ERROR"}.get(r["status_code"], str(r["status_code"]))
            out.append(
                {
                    "trace_id": r["trace_id"],
                    "span_id": r["span_id"],
                    "parent_span_id": r["parent_span_id"],
                    "name": r["name"],
                    "session_id": r["session_id"],
                    "start_ns": r["start_ns"],
                    "end_ns": r["end_ns"],
                    "duration_ms": r["duration_ms"],
                    "status": status,
                    "attributes": json_map(r["attributes"]),
                    "agent": r["agent"],
                    "role": r["role"],
                    "not_understood": unread(r["agent"]),
                    **{
                        k: r[k]
                        for k in (
                            "status_message",
                            "kind",
                            "span_type",
                            "model",
                            "tool_name",
                            "tool_use_id",
                            *TOKENS,
                            "success",
                            "attempt",
                            "agent_id",
                            "parent_agent_id",
                        )
                    },
                    "events": events,
                    "links": links,
                    "scope_name": r["scope_name"],
                    "service_name": r["service_name"],
                }
            )
        return out

    def export_events(self, f: Filter, sessions: set[str] | None) -> list[dict]:
        """`events.csv`'s rows, oldest first."""
        p: dict[str, Any] = {}
        since = window(f, p)
        where = session_cond(f, p)
        if sessions is not None:
            p["ids"] = sorted(sessions)
            where += " AND session_id IN {ids:Array(String)}"
        cols = [
            "session_id",
            "prompt_id",
            "sequence",
            "attributes",
            "trace_id",
            "span_id",
            "model",
            "tool_name",
            "tool_use_id",
            "cost_usd",
            *TOKENS,
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
            "request_id",
            "project",
        ]
        rows = self._rows(
            f"SELECT * FROM ({self.x.events(cols, where, since)}) "
            "ORDER BY time_ns, session_id, sequence",
            p,
        )
        for r in rows:
            r["attributes"] = json_map(r["attributes"])
            r["cost_source"] = COST_REPORTED if r["cost_usd"] is not None else None
            r["not_understood"] = unread(r["agent"])
            r["source"] = SOURCE_OTEL
        return rows
