"""The panes' rows shaped in Python from what ClickHouse aggregated: a session's row from its
events', spans' and metric points' figures, the models pane's shares, the text filter."""

from __future__ import annotations

from claude_top.core.queries.filters import as_datetime
from claude_top.core.queries.groups import IDENTITY_KEYS
from claude_top.core.queries.sessions import custom_attributes
from claude_top.core.schema import COST_NONE, COST_REPORTED

_NONE: dict = {}


def session_row(
    sid: str, e: dict | None, s: dict | None, m: dict | None, w: dict | None, active_since: int
) -> dict:
    """One sessions-pane row from a session's events, spans and metric points in the window
    (`e`, `s`, `m`) and what its whole life says (`w`)."""
    parts = [r for r in (e, s, m) if r]
    e, s, w = e or _NONE, s or _NONE, w or _NONE
    firsts = [r["first_ns"] for r in parts if r["first_ns"] is not None]
    last = max((r["last_ns"] for r in parts if r["last_ns"] is not None), default=None)
    user_prompts = int(e.get("prompts") or 0)
    prompts = user_prompts if user_prompts > 0 else int(s.get("interactions") or 0)
    api = int(e.get("api_requests") or 0)
    unpriced = int(e.get("unpriced") or 0)
    inp = int(e.get("input_tokens") or 0)
    cache_read = int(e.get("cache_read_tokens") or 0)
    cache_creation = int(e.get("cache_creation_tokens") or 0)
    den = inp + cache_read + cache_creation
    held = next((r for r in parts if r["resource"]), _NONE)
    resource = held.get("resource")
    identity = {}
    for k in IDENTITY_KEYS:
        identity[k] = next((r[k] for r in parts if r.get(k)), None)
    all_prompts = int(w.get("all_prompts") or 0)
    all_requests = int(w.get("all_requests") or 0)
    first_seq = w.get("first_seq")
    first_ns = min(firsts) if firsts else None
    return {
        "session_id": sid,
        "first_seen_ns": first_ns,
        "last_seen_ns": last,
        "prompts": prompts,
        "api_requests": api,
        "cost_usd": float(e.get("cost_usd") or 0.0),
        "input_tokens": inp,
        "output_tokens": int(e.get("output_tokens") or 0),
        "cache_read_tokens": cache_read,
        "cache_creation_tokens": cache_creation,
        "tool_calls": int(e.get("tool_calls") or 0),
        "tool_errors": int(e.get("tool_errors") or 0),
        "models": ", ".join(sorted(e["models"])) if e else "",
        "status": "active" if last is not None and last >= active_since else "idle",
        "cache_hit_ratio": cache_read / den if den > 0 else None,
        "metric_cost_usd": (float(m["metric_cost_usd"]) if m and int(m["cost_points"]) else None),
        "last_received_ns": last,
        "user_prompts": user_prompts,
        "agent": next((r["agent"] for r in parts if r["agent"]), None),
        "source": "otel",
        "project": e.get("project"),
        "first_prompt": w.get("first_prompt"),
        "api_errors": int(e.get("api_errors") or 0),
        "retries": int(s.get("retries") or 0),
        "cost_source": _cost_source(api, unpriced),
        "unpriced_requests": unpriced,
        "estimated_cost_usd": None,
        "cost_sources": COST_REPORTED if api > unpriced else "",
        "not_understood": 0,
        "has_work": prompts > 0 or api > 0,
        "partial": bool(
            (first_seq is not None and first_seq > 0) or (all_requests > 0 and all_prompts == 0)
        ),
        "resource_attributes": resource,
        "first_seen": as_datetime(first_ns),
        "last_seen": as_datetime(last),
        "terminal": w.get("terminal") if user_prompts else None,
        "identity": identity,
        "_tools": e.get("tools") or [],
        "custom": custom_attributes(resource, held.get("resource_key")),
    }


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
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_creation_tokens",
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
