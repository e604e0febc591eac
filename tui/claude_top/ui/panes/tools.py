"""Pane 2: per-tool latency (p50/p95/p99/max/total) and a histogram of the selected tool."""

from __future__ import annotations

from claude_top.core import format as fmt
from claude_top.ui.panes.table import Col, KeyedTable


def _error_pct(row: dict):
    pct = row.get("error_pct") or 0.0
    text = f"{pct:.0f}%"
    return (text, "error") if row.get("errors") else text


_LATENCY = {
    "p50_ms": ("p50", 60, "median duration of a call"),
    "p95_ms": ("p95", 75, "95th percentile: 1 call in 20 is slower"),
    "p99_ms": ("p99", 50, "99th percentile"),
    "max_ms": ("Max", 55, "the slowest call"),
}


def _ms(field: str) -> Col:
    label, priority, help = _LATENCY[field]
    return Col(
        field,
        label,
        lambda r: fmt.duration_ms(r.get(field)),
        lambda r: r.get(field),
        right=True,
        priority=priority,
        help=help,
    )


COLUMNS = (
    Col(
        "tool",
        "Tool",
        lambda r: r["tool_name"],
        lambda r: r["tool_name"].lower(),
        descending=False,
        min_width=10,
        help="the tool's name (MCP tools as Claude Code names them)",
    ),
    Col(
        "calls",
        "Calls",
        lambda r: fmt.count(r["calls"]),
        lambda r: r["calls"],
        right=True,
        priority=80,
        help="calls that finished (tool_result events)",
    ),
    Col(
        "error_pct",
        "Err%",
        _error_pct,
        lambda r: r.get("error_pct"),
        right=True,
        priority=70,
        help="share of its calls that failed",
    ),
    _ms("p50_ms"),
    _ms("p95_ms"),
    _ms("p99_ms"),
    _ms("max_ms"),
    Col(
        "total_ms",
        "Total",
        lambda r: fmt.duration_ms(r.get("total_ms") if r.get("max_ms") is not None else None),
        lambda r: r.get("total_ms"),
        right=True,
        priority=90,
        help="the time its calls took together (calls known from a transcript only are not timed)",
    ),
)


class ToolsTable(KeyedTable):
    """Tools keyed by name; the highlighted one is charted."""

    def __init__(self, **kw) -> None:
        super().__init__(COLUMNS, lambda r: r["tool_name"], "total_ms", fixed_columns=1, **kw)
