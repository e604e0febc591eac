"""The panes' rows shaped in Python from what ClickHouse aggregated: a session's row from its
events', spans' and metric points' figures, the models pane's shares, the text filter."""

from __future__ import annotations

from claude_top.core.queries.clickhouse.exprs import TOKENS
from claude_top.core.queries.filters import as_datetime
from claude_top.core.queries.groups import IDENTITY_KEYS
from claude_top.core.queries.sessions import custom_attributes
from claude_top.core.schema import COST_NONE, COST_REPORTED


def session_row(
    r: dict, active_since: int, resource: str | None, resource_key: bytes | None
) -> dict:
    """`r`, a session's figures in the window combined in ClickHouse from its events, spans
    and metric points (`sessions.SessionListQueries`: counts and sums as numbers, never NULL)
    with what its whole life says, made a sessions-pane row (in place) with its resource's
    attributes."""
    last = r["last_seen_ns"]
    user_prompts, api, unpriced = r["user_prompts"], r["api_requests"], r["unpriced"]
    prompts = user_prompts if user_prompts > 0 else r["interactions"]
    cache_read = r["cache_read_tokens"]
    den = r["input_tokens"] + cache_read + r["cache_creation_tokens"]
    first_seq = r["first_seq"]
    r.update(
        prompts=prompts,
        status="active" if last is not None and last >= active_since else "idle",
        cache_hit_ratio=cache_read / den if den > 0 else None,
        last_received_ns=last,
        source="otel",
        cost_source=_cost_source(api, unpriced),
        unpriced_requests=unpriced,
        estimated_cost_usd=None,
        cost_sources=COST_REPORTED if api > unpriced else "",
        not_understood=0,
        has_work=prompts > 0 or api > 0,
        partial=bool(
            (first_seq is not None and first_seq > 0)
            or (r["all_requests"] and not r["all_prompts"])
        ),
        resource_attributes=resource,
        first_seen=as_datetime(r["first_seen_ns"]),
        last_seen=as_datetime(last),
        terminal=r["terminal"] if user_prompts else None,
        identity={k: r.pop(k) for k in IDENTITY_KEYS},
        _tools=r.pop("tools", None) or [],
        custom=custom_attributes(resource, resource_key),
    )
    for k in _COMBINED_ONLY:
        r.pop(k, None)
    return r


_COMBINED_ONLY = (
    "interactions",
    "unpriced",
    "first_seq",
    "first_seq_ns",
    "all_prompts",
    "all_requests",
    "prompt_ns",
    "terminal_ns",
    "e_resource_id",
    "s_resource_id",
    "m_resource_id",
    "resource",
)
"""Columns of the combined query that are not the row's own."""


def _cost_source(requests: int, unpriced: int) -> str | None:
    """Where a row's cost came from, as the local store says it (a collector's costs are all
    reported: nothing is estimated)."""
    if requests == 0:
        return None
    return COST_NONE if unpriced == requests else COST_REPORTED


def model_rows(rows: list[dict]) -> list[dict]:
    total = sum(float(r["cost_usd"]) for r in rows)
    out = []
    for r in rows:
        row = {k: r[k] for k in r}
        for k in (
            "api_requests",
            *TOKENS,
        ):
            row[k] = int(r[k])
        row["cost_usd"] = float(r["cost_usd"])
        den = row["input_tokens"] + row["cache_read_tokens"] + row["cache_creation_tokens"]
        row["cache_hit_ratio"] = row["cache_read_tokens"] / den if den > 0 else None
        row["share"] = row["cost_usd"] / total if total > 0 else 0.0
        row["estimated_cost_usd"] = None  # every cost a collector stores was reported
        row["cost_source"] = _cost_source(row["api_requests"], int(r["unpriced"]))
        row["unpriced_requests"] = int(row.pop("unpriced"))
        out.append(row)
    out.sort(key=lambda m: (m.get("grp") or "", m["model"]))
    out.sort(key=lambda m: -m["cost_usd"])
    return out


def matches(row: dict, needle: str) -> bool:
    """The sessions pane's text filter, as the local query applies it."""
    fields = (
        row["session_id"],
        row["models"],
        row["agent"],
        row["project"],
        row["first_prompt"],
        row["resource_attributes"],
    )
    if any(needle in (v or "").lower() for v in fields):
        return True
    return any(needle in (t or "").lower() for t in row["_tools"])
