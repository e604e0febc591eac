"""Pane 2: per-tool latency (p50/p95/p99/max/total) and a histogram of the selected tool."""

from __future__ import annotations

from claude_top.core import format as fmt
from claude_top.ui.panes.table import Col, KeyedTable


def _error_pct(row: dict):
    pct = row.get("error_pct") or 0.0
    text = f"{pct:.0f}%"
    return (text, "error") if row.get("errors") else text


def _ms(field: str) -> Col:
    label = {"p50_ms": "p50", "p95_ms": "p95", "p99_ms": "p99", "max_ms": "Max"}[field]
    return Col(
        field, label, lambda r: fmt.duration_ms(r.get(field)), lambda r: r.get(field), right=True
    )


COLUMNS = (
    Col(
        "tool", "Tool", lambda r: r["tool_name"], lambda r: r["tool_name"].lower(), descending=False
    ),
    Col("calls", "Calls", lambda r: fmt.count(r["calls"]), lambda r: r["calls"], right=True),
    Col("error_pct", "Err%", _error_pct, lambda r: r.get("error_pct"), right=True),
    _ms("p50_ms"),
    _ms("p95_ms"),
    _ms("p99_ms"),
    _ms("max_ms"),
    Col(
        "total_ms",
        "Total",
        lambda r: fmt.duration_ms(r.get("total_ms")),
        lambda r: r.get("total_ms"),
        right=True,
    ),
)


class ToolsTable(KeyedTable):
    """Tools keyed by name; the highlighted one is charted."""

    def __init__(self, **kw) -> None:
        super().__init__(COLUMNS, lambda r: r["tool_name"], "total_ms", fixed_columns=1, **kw)
