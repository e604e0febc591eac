"""What Enter on a tool or a model lists: that tool's calls (slowest first) or that model's API
requests (newest first)."""

from __future__ import annotations

import json

from claude_top.core import format as fmt
from claude_top.ui.panes.table import Col, KeyedTable

INPUT_FIELDS = ("command", "file_path", "notebook_path", "pattern", "url", "query", "description")
"""What says most about a call's input, by tool: the first of these it has."""


def input_text(raw: str | None) -> str:
    """A tool call's input in one line: its command, path, pattern, URL or query when it has
    one, else the JSON; "-" when Claude Code did not send it (OTEL_LOG_TOOL_DETAILS unset)."""
    if not raw:
        return "-"
    try:
        doc = json.loads(raw)
    except ValueError:
        return fmt.one_line(raw, 200)
    if isinstance(doc, dict):
        for field in INPUT_FIELDS:
            if isinstance(doc.get(field), str) and doc[field]:
                return fmt.one_line(doc[field], 200)
    return fmt.one_line(json.dumps(doc, separators=(",", ":")), 200)


def _result(row: dict):
    if row.get("success") is False:
        return ("✗ " + (row.get("error") or "failed"), "error")
    return ("ok", "success") if row.get("success") else "-"


def _when(help: str) -> Col:
    return Col(
        "when",
        "When",
        lambda r: fmt.age(r["time_ns"], r["now_ns"]),
        lambda r: r["time_ns"],
        right=True,
        clock=True,
        priority=80,
        help=help,
    )


_SESSION = Col(
    "session",
    "Session",
    lambda r: fmt.short_id(r.get("session_id") or "-"),
    lambda r: r.get("session_id") or "",
    descending=False,
    priority=70,
    help="the session it was in (Enter opens its turn)",
)

CALL_COLUMNS = (
    Col(
        "duration",
        "Dur",
        lambda r: fmt.duration_ms(r.get("duration_ms")),
        lambda r: r.get("duration_ms"),
        right=True,
        help="how long the call took",
    ),
    _when("how long ago it finished"),
    _SESSION,
    Col(
        "result",
        "Result",
        _result,
        lambda r: (r.get("success") is not False, r.get("error") or ""),
        descending=False,
        priority=75,
        min_width=8,
        help="ok, or ✗ and Claude Code's error",
    ),
    Col(
        "input",
        "Input",
        lambda r: input_text(r.get("input")),
        lambda r: input_text(r.get("input")).lower(),
        descending=False,
        priority=60,
        min_width=12,
        help="its command, path, pattern, URL or query (needs OTEL_LOG_TOOL_DETAILS=1)",
    ),
)


def _tokens(field: str, label: str, priority: int, help: str) -> Col:
    return Col(
        field,
        label,
        lambda r: fmt.count(r.get(field)),
        lambda r: r.get(field),
        right=True,
        priority=priority,
        help=help,
    )


REQUEST_COLUMNS = (
    _when("how long ago it was answered"),
    _SESSION,
    Col(
        "cost",
        "Cost",
        lambda r: fmt.cost(r.get("cost_usd")),
        lambda r: r.get("cost_usd"),
        right=True,
        priority=90,
        help="US dollars",
    ),
    _tokens("input_tokens", "In", 60, "input tokens, not counting cached ones"),
    _tokens("output_tokens", "Out", 65, "output tokens"),
    _tokens("cache_read_tokens", "C.read", 50, "tokens read from the prompt cache"),
    _tokens("cache_creation_tokens", "C.write", 45, "tokens written to the prompt cache"),
    Col(
        "duration",
        "Dur",
        lambda r: fmt.duration_ms(r.get("duration_ms")),
        lambda r: r.get("duration_ms"),
        right=True,
        priority=55,
        help="how long the request took",
    ),
)


class ToolCallsTable(KeyedTable):
    """One tool's calls, slowest first."""

    def __init__(self, **kw) -> None:
        super().__init__(CALL_COLUMNS, lambda r: r["key"], "duration", **kw)


class ModelRequestsTable(KeyedTable):
    """One model's API requests, newest first."""

    def __init__(self, **kw) -> None:
        super().__init__(REQUEST_COLUMNS, lambda r: r["key"], "when", **kw)
