"""Pane 3: per-model requests, cost and share, tokens by kind and cache hit ratio."""

from __future__ import annotations

from claude_top.core import format as fmt
from claude_top.ui.panes.table import Col, KeyedTable


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


COLUMNS = (
    Col(
        "model",
        "Model",
        lambda r: fmt.short_model(r["model"]),
        lambda r: r["model"],
        descending=False,
        min_width=10,
        help="the model (without its claude- prefix)",
    ),
    Col(
        "requests",
        "Req",
        lambda r: fmt.count(r["api_requests"]),
        lambda r: r["api_requests"],
        right=True,
        priority=80,
        help="API requests to it",
    ),
    Col(
        "cost",
        "Cost",
        lambda r: fmt.cost_of(r["cost_usd"], r.get("cost_source")),
        lambda r: r["cost_usd"],
        right=True,
        priority=95,
        help="US dollars spent on it",
    ),
    Col(
        "share",
        "Share",
        lambda r: fmt.percent(r.get("share")),
        lambda r: r.get("share"),
        right=True,
        priority=70,
        help="its part of the cost in view",
    ),
    _tokens("input_tokens", "In", 40, "input tokens, not counting cached ones"),
    _tokens("output_tokens", "Out", 45, "output tokens"),
    _tokens("cache_read_tokens", "C.read", 30, "tokens read from the prompt cache"),
    _tokens("cache_creation_tokens", "C.write", 25, "tokens written to the prompt cache"),
    Col(
        "hit",
        "Hit",
        lambda r: fmt.percent(r.get("cache_hit_ratio")),
        lambda r: r.get("cache_hit_ratio"),
        right=True,
        priority=60,
        help="cache hit ratio: cache reads / (input + cache reads + cache writes)",
    ),
)


class ModelsTable(KeyedTable):
    """Models keyed by model name."""

    def __init__(self, **kw) -> None:
        super().__init__(COLUMNS, lambda r: r["model"], "cost", fixed_columns=1, **kw)
