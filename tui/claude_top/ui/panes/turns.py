"""A session's turns (one per prompt / interaction): pane 4 and the session screen."""

from __future__ import annotations

from claude_top.core import format as fmt
from claude_top.ui.panes.table import Col, KeyedTable

PROMPT_WIDTH = 36


def _errors(row: dict):
    n = row.get("tool_errors") or 0
    return (str(n), "error") if n else "0"


def _source(row: dict):
    return "spans" if row.get("has_spans") else ("events", "warning")


COLUMNS = (
    Col("n", "#", lambda r: str(r["n"]), lambda r: r["n"], right=True),
    Col(
        "start",
        "Start",
        lambda r: fmt.age(r.get("start_ns"), r["now_ns"]),
        lambda r: r.get("start_ns"),
        right=True,
        clock=True,
    ),
    Col(
        "prompt",
        "Prompt",
        lambda r: fmt.one_line(r.get("prompt"), PROMPT_WIDTH) or "-",
        lambda r: (r.get("prompt") or "").lower(),
        descending=False,
    ),
    Col(
        "duration",
        "Dur",
        lambda r: fmt.duration_ms(r.get("duration_ms")),
        lambda r: r.get("duration_ms"),
        right=True,
    ),
    Col(
        "cost",
        "Cost",
        lambda r: fmt.cost_of(r.get("cost_usd"), r.get("cost_source")),
        lambda r: r.get("cost_usd"),
        right=True,
    ),
    Col(
        "api",
        "API",
        lambda r: fmt.count(r.get("api_requests")),
        lambda r: r.get("api_requests"),
        right=True,
    ),
    Col(
        "tools",
        "Tools",
        lambda r: r.get("tools") or "-",
        lambda r: r.get("tools") or None,
        descending=False,
    ),
    Col("errors", "Errs", _errors, lambda r: r.get("tool_errors"), right=True),
    Col("source", "Tree", _source, lambda r: bool(r.get("has_spans")), descending=False),
)


def numbered(turns: list[dict], now_ns: int) -> list[dict]:
    """Turns (oldest first, as `queries.turns` returns them) with `n` and `now_ns` added."""
    return [dict(t, n=i, now_ns=now_ns) for i, t in enumerate(turns, 1)]


class TurnsTable(KeyedTable):
    """Turns keyed by `key` (prompt id, or trace id); Enter opens the span tree."""

    def __init__(self, **kw) -> None:
        super().__init__(COLUMNS, lambda r: r["key"], "n", fixed_columns=1, **kw)
