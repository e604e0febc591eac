"""A session's turns (one per prompt / interaction): pane 4 and the session screen."""

from __future__ import annotations

from claude_top.core import format as fmt
from claude_top.ui.panes.table import Col, KeyedTable

PROMPT_CHARS = 200
"""At most this much of a prompt is kept on its line; the column shows what fits."""


def _errors(row: dict):
    n = row.get("tool_errors") or 0
    return (str(n), "error") if n else "0"


def _source(row: dict):
    return "spans" if row.get("has_spans") else ("events", "warning")


COLUMNS = (
    Col("n", "#", lambda r: str(r["n"]), lambda r: r["n"], right=True, help="the turn's number"),
    Col(
        "start",
        "Start",
        lambda r: fmt.age(r.get("start_ns"), r["now_ns"]),
        lambda r: r.get("start_ns"),
        right=True,
        clock=True,
        priority=80,
        help="how long ago the prompt was sent",
    ),
    Col(
        "prompt",
        "Prompt",
        lambda r: fmt.one_line(r.get("prompt"), PROMPT_CHARS) or "-",
        lambda r: (r.get("prompt") or "").lower(),
        descending=False,
        priority=90,
        min_width=16,
        help="what was asked (<REDACTED> without OTEL_LOG_USER_PROMPTS=1)",
    ),
    Col(
        "duration",
        "Dur",
        lambda r: fmt.duration_ms(r.get("duration_ms")),
        lambda r: r.get("duration_ms"),
        right=True,
        priority=70,
        help="from the prompt to the answer",
    ),
    Col(
        "cost",
        "Cost",
        lambda r: fmt.cost_of(r.get("cost_usd"), r.get("cost_source")),
        lambda r: r.get("cost_usd"),
        right=True,
        priority=85,
        help="US dollars this turn cost",
    ),
    Col(
        "api",
        "API",
        lambda r: fmt.count(r.get("api_requests")),
        lambda r: r.get("api_requests"),
        right=True,
        priority=60,
        help="API requests in this turn",
    ),
    Col(
        "tools",
        "Tools",
        lambda r: r.get("tools") or "-",
        lambda r: r.get("tools") or None,
        descending=False,
        priority=50,
        min_width=10,
        help="tools it called, in order of first use, \u00d7N when called N times",
    ),
    Col(
        "errors",
        "Errs",
        _errors,
        lambda r: r.get("tool_errors"),
        right=True,
        priority=55,
        help="tool calls that failed",
    ),
    Col(
        "source",
        "Tree",
        _source,
        lambda r: bool(r.get("has_spans")),
        descending=False,
        priority=40,
        help="what its span tree is built from: spans, or events when the session sent none",
    ),
)


def numbered(turns: list[dict], now_ns: int) -> list[dict]:
    """Turns (oldest first, as `queries.turns` returns them) with `n` and `now_ns` added."""
    return [dict(t, n=i, now_ns=now_ns) for i, t in enumerate(turns, 1)]


class TurnsTable(KeyedTable):
    """Turns keyed by `key` (prompt id, or trace id); Enter opens the span tree."""

    def __init__(self, **kw) -> None:
        super().__init__(COLUMNS, lambda r: r["key"], "n", fixed_columns=1, **kw)
