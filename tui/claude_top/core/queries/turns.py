"""One session's turns (one per prompt.id, or per interaction span that no event names), read
from the `prompt_turns` and `trace_turns` rollups."""

from __future__ import annotations

from collections import Counter

import duckdb

from claude_top.core import format as fmt
from claude_top.core.queries.filters import (
    as_datetime,
    dicts,
)
from claude_top.core.schema import COST_ESTIMATE, COST_MIXED, COST_NONE, COST_REPORTED

# --- turns ---------------------------------------------------------------------------------


def _tools_text(names: list[str] | None) -> str:
    """Tool names in order of first use with counts: "Bash\u00d72, Read"."""
    counts = Counter(names or ())
    return ", ".join(
        name if counts[name] == 1 else f"{name}\u00d7{counts[name]}" for name in counts
    )


def cost_source(requests: int, estimated: int, unpriced: int) -> str | None:
    """Where a set of requests' cost came from, as the sessions query says it: `reported`,
    `estimate`, `mixed`, or `none` (no request priced); None without requests."""
    if not requests:
        return None
    if unpriced == requests:
        return COST_NONE
    if not estimated:
        return COST_REPORTED
    return COST_ESTIMATE if estimated + unpriced == requests else COST_MIXED


def _parts_of_turns(
    by_trace: dict[str, dict], claimed: frozenset[str] | set[str] = frozenset()
) -> None:
    """Leave out the traces without an interaction span that are not turns of their own: those
    a turn's events name (`claimed`: an agent that sends each model request or tool call as a
    trace of its own, as Gemini CLI does) and those with no model request or tool at all
    (start-up)."""
    for t in [t for t, i in by_trace.items() if not i["has_interaction"]]:
        i = by_trace[t]
        if t in claimed or (not i["llm_requests"] and not i["tool_list"]):
            by_trace.pop(t)


def _claimed_traces(cur: duckdb.DuckDBPyConnection, session_id: str, traces: list[dict]) -> set:
    """The traces without an interaction span that a turn's events name."""
    rest = [i["trace_id"] for i in traces if not i["has_interaction"]]
    if not rest:
        return set()
    return {
        r[0]
        for r in cur.execute(
            "SELECT DISTINCT trace_id FROM events WHERE session_id = $s AND prompt_id IS NOT "
            "NULL AND trace_id IN (SELECT unnest($t::VARCHAR[]))",
            {"s": session_id, "t": rest},
        ).fetchall()
    }


def turns(cur: duckdb.DuckDBPyConnection, session_id: str) -> list[dict]:
    """A session's turns (one per prompt.id / interaction), oldest first.

    `key` identifies the turn for `span_tree`: the prompt id, or the trace id of an interaction
    span that no event names.
    """
    p = {"s": session_id}
    ev_rows = dicts(
        cur.execute(
            "SELECT prompt_id, start_ns, end_ns, trace_id, api_requests, cost_usd, tool_errors, "
            "tool_list, prompt, estimated_requests, estimated_cost_usd, unpriced_requests "
            "FROM prompt_turns "
            "WHERE session_id = $s",
            p,
        )
    )
    interactions = dicts(
        cur.execute(
            "SELECT trace_id, start_ns, duration_ms, has_interaction, prompt, llm_requests, "
            "tool_list, tool_errors FROM trace_turns WHERE session_id = $s",
            p,
        )
    )
    claimed = _claimed_traces(cur, session_id, interactions)
    return turns_from_rollups(ev_rows, interactions, claimed)


def turns_from_rollups(
    ev_rows: list[dict], interactions: list[dict], claimed: frozenset[str] | set[str] = frozenset()
) -> list[dict]:
    """The turns of `prompt_turns` rows (per prompt.id) and `trace_turns` rows (per trace),
    whichever store they were computed in; oldest first. `claimed`: traces a turn's events
    name, which are parts of that turn, not turns of their own."""
    by_trace = {i["trace_id"]: i for i in interactions}
    out: list[dict] = []
    for e in ev_rows:
        inter = by_trace.pop(e["trace_id"], None) if e["trace_id"] else None
        start = e["start_ns"] if inter is None else min(e["start_ns"], inter["start_ns"])
        if inter is not None and inter["has_interaction"] and inter["duration_ms"] is not None:
            duration = inter["duration_ms"]
        else:
            duration = (e["end_ns"] - e["start_ns"]) / 1e6
        out.append(
            {
                "key": e["prompt_id"],
                "prompt_id": e["prompt_id"],
                "trace_id": e["trace_id"],
                "prompt": fmt.one_line(e["prompt"] or (inter or {}).get("prompt"), 80),
                "start_ns": start,
                "start": as_datetime(start),
                "duration_ms": duration,
                "cost_usd": e["cost_usd"] or 0.0,
                "cost_source": cost_source(
                    e["api_requests"],
                    e.get("estimated_requests") or 0,
                    e.get("unpriced_requests") or 0,
                ),
                "estimated_cost_usd": e["estimated_cost_usd"],
                "unpriced_requests": e["unpriced_requests"],
                "api_requests": e["api_requests"],
                "tools": _tools_text(e["tool_list"]),
                "tool_errors": e["tool_errors"],
                "has_spans": inter is not None,
            }
        )
    _parts_of_turns(by_trace, claimed)
    for trace_id, inter in by_trace.items():
        out.append(
            {
                "key": trace_id,
                "prompt_id": None,
                "trace_id": trace_id,
                "prompt": fmt.one_line(inter["prompt"], 80),
                "start_ns": inter["start_ns"],
                "start": as_datetime(inter["start_ns"]),
                "duration_ms": inter["duration_ms"],
                "cost_usd": None,
                "cost_source": None,
                "api_requests": inter["llm_requests"],
                "tools": _tools_text(inter["tool_list"]),
                "tool_errors": inter["tool_errors"],
                "has_spans": True,
            }
        )
    out.sort(key=lambda t: (t["start_ns"] is None, t["start_ns"] or 0))
    return out
