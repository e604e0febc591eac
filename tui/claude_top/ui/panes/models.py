"""Pane 3: per-model requests, cost and share, tokens by kind and cache hit ratio."""

from __future__ import annotations

from claude_top.core import format as fmt
from claude_top.ui.panes.table import Col, KeyedTable


def _tokens(field: str, label: str) -> Col:
    return Col(field, label, lambda r: fmt.count(r.get(field)), lambda r: r.get(field), right=True)


COLUMNS = (
    Col(
        "model",
        "Model",
        lambda r: fmt.short_model(r["model"]),
        lambda r: r["model"],
        descending=False,
    ),
    Col(
        "requests",
        "Req",
        lambda r: fmt.count(r["api_requests"]),
        lambda r: r["api_requests"],
        right=True,
    ),
    Col(
        "cost",
        "Cost",
        lambda r: fmt.cost_of(r["cost_usd"], r.get("cost_source")),
        lambda r: r["cost_usd"],
        right=True,
    ),
    Col(
        "share",
        "Share",
        lambda r: fmt.percent(r.get("share")),
        lambda r: r.get("share"),
        right=True,
    ),
    _tokens("input_tokens", "In"),
    _tokens("output_tokens", "Out"),
    _tokens("cache_read_tokens", "C.read"),
    _tokens("cache_creation_tokens", "C.write"),
    Col(
        "hit",
        "Hit",
        lambda r: fmt.percent(r.get("cache_hit_ratio")),
        lambda r: r.get("cache_hit_ratio"),
        right=True,
    ),
)


class ModelsTable(KeyedTable):
    """Models keyed by model name."""

    def __init__(self, **kw) -> None:
        super().__init__(COLUMNS, lambda r: r["model"], "cost", fixed_columns=1, **kw)
