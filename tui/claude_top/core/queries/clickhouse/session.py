"""One session over the exporter's tables: its turns and a turn's span tree (a mixin of
`reader.ClickHouseReader`, which gives `x`, `layout` and `_rows`)."""

from __future__ import annotations

from claude_top.core.names import (
    API_REQUEST,
    INTERACTION,
    LLM_REQUEST,
    TOOL_EXECUTION,
    TOOL_RESULT,
    TOOL_SPAN,
    USER_PROMPT,
)
from claude_top.core.queries.clickhouse.exprs import TOKENS, json_map, lit
from claude_top.core.queries.spantree import TreeNode, build_tree
from claude_top.core.queries.turns import turns_from_rollups

MARGIN_NS = 60 * 1_000_000_000
"""A turn's events are looked for this far around its records' and spans' times."""


class SessionQueries:
    """The drill-down's queries: a few rows each, found through the skip indexes."""

    def turns(self, session_id: str) -> list[dict]:
        x, p = self.x, {"s": session_id}
        api = f"kind = {lit(API_REQUEST)}"
        prompt_rows = self._rows(
            f"""
SELECT prompt_id, min(time_ns) AS start_ns, max(time_ns) AS end_ns,
  argMinIf(trace_id, time_ns, trace_id IS NOT NULL) AS trace_id,
  countIf({api}) AS api_requests, sumIf(cost_usd, {api}) AS cost_usd,
  countIf({api} AND cost_usd IS NULL) AS unpriced_requests,
  countIf(kind = {lit(TOOL_RESULT)} AND success = false) AS tool_errors,
  arrayMap(t -> t.3, arraySort(groupArrayIf((time_ns, ifNull(sequence, 0), ifNull(tool_name, '?')),
    kind = {lit(TOOL_RESULT)}))) AS tool_list,
  argMinIf(prompt, time_ns, kind = {lit(USER_PROMPT)}) AS prompt
FROM ({
                x.events(
                    [
                        "session_id",
                        "prompt_id",
                        "trace_id",
                        "cost_usd",
                        "success",
                        "sequence",
                        "tool_name",
                        "prompt",
                    ],
                    "session_id = {s:String} AND prompt_id IS NOT NULL",
                )
            })
GROUP BY prompt_id""",
            p,
        )
        trace_rows: list[dict] = []
        if x.traces:
            spans = x.spans(
                [
                    "session_id",
                    "parent_span_id",
                    "role",
                    "end_ns",
                    "status_code",
                    "success",
                    "tool_name",
                    "duration_ms",
                    "user_prompt",
                ],
                "session_id = {s:String}",
            )
            trace_rows = self._rows(
                f"""
SELECT trace_id, min(start_ns) AS first_ns, max(end_ns) AS last_ns,
  countIf(role = {lit(LLM_REQUEST)}) AS llm_requests,
  arrayMap(t -> t.2, arraySort(groupArrayIf((start_ns, ifNull(tool_name, '?')),
    role = {lit(TOOL_SPAN)}))) AS tool_list,
  countIf(role = {lit(TOOL_SPAN)} AND failed) AS tool_errors,
  argMinIf(start_ns, start_ns, role = {lit(INTERACTION)}) AS i_start,
  argMinIf(duration_ms, start_ns, role = {lit(INTERACTION)}) AS i_duration,
  argMinIf(user_prompt, start_ns, role = {lit(INTERACTION)}) AS i_prompt,
  countIf(role = {lit(INTERACTION)}) > 0 AS has_interaction
FROM (
  SELECT s.*, (s.trace_id, s.span_id) IN (
    SELECT trace_id, parent_span_id FROM ({spans})
    WHERE role = {lit(TOOL_EXECUTION)} AND (status_code = 2 OR success = false)) AS failed
  FROM ({spans}) AS s
)
GROUP BY trace_id""",
                p,
            )
        interactions = [
            {
                "trace_id": t["trace_id"],
                "start_ns": t["i_start"] if t["has_interaction"] else t["first_ns"],
                "duration_ms": t["i_duration"]
                if t["has_interaction"]
                else (t["last_ns"] - t["first_ns"]) / 1e6,
                "has_interaction": bool(t["has_interaction"]),
                "prompt": t["i_prompt"] if t["has_interaction"] else None,
                "llm_requests": int(t["llm_requests"]),
                "tool_list": t["tool_list"] or None,
                "tool_errors": int(t["tool_errors"]),
            }
            for t in trace_rows
        ]
        prompts = [
            {
                **r,
                "api_requests": int(r["api_requests"]),
                "tool_errors": int(r["tool_errors"]),
                "cost_usd": r["cost_usd"] if int(r["api_requests"]) else None,
                "estimated_cost_usd": None,
                "unpriced_requests": int(r["unpriced_requests"]),
                "tool_list": r["tool_list"] or None,
            }
            for r in prompt_rows
        ]
        return turns_from_rollups(prompts, interactions)

    def span_tree(self, session_id: str, turn_key: str) -> tuple[list[TreeNode], str]:
        x, p = self.x, {"s": session_id, "k": turn_key}
        turn = x.events(
            ["session_id", "prompt_id", "trace_id"],
            "session_id = {s:String} AND prompt_id = {k:String} AND trace_id IS NOT NULL",
        )
        found = self._rows(
            f"SELECT groupUniqArray(trace_id) AS t, min(time_ns) AS lo, max(time_ns) AS hi "
            f"FROM ({turn})",
            p,
        )[0]
        traces = sorted(found["t"]) or [turn_key]
        p["t"] = traces
        lo, hi = (found["lo"], found["hi"]) if found["t"] else (None, None)
        span_rows: list[dict] = []
        if x.traces:
            span_rows = self._rows(
                f"""
SELECT * FROM ({
                    x.spans(
                        [
                            "parent_span_id",
                            "name",
                            "role",
                            "end_ns",
                            "duration_ms",
                            "status_code",
                            "status_message",
                            "session_id",
                            "model",
                            "tool_name",
                            *TOKENS,
                            "success",
                            "attempt",
                            "agent_id",
                            "parent_agent_id",
                            "attributes",
                        ],
                        "trace_id IN {t:Array(String)}",
                    )
                })
ORDER BY start_ns, span_id""",
                p,
            )
            for r in span_rows:
                r["attributes"] = json_map(r["attributes"])
                lo = r["start_ns"] if lo is None else min(lo, r["start_ns"])
                hi = r["end_ns"] if hi is None else max(hi, r["end_ns"])
        when = "TRUE"
        if lo is not None:  # the turn's time: the sort key finds its rows, not the Maps
            p["lo"], p["hi"] = lo - MARGIN_NS, hi + MARGIN_NS
            when = "time_ns BETWEEN {lo:Int64} AND {hi:Int64}"
        events = self._rows(
            f"""
SELECT *, toString(cityHash64(time_ns, name, ifNull(sequence, -1), ifNull(request_id, ''),
  ifNull(tool_use_id, ''))) AS uid_text
FROM ({
                x.events(
                    [
                        "session_id",
                        "model",
                        "cost_usd",
                        *TOKENS,
                        "duration_ms",
                        "attributes",
                        "trace_id",
                        "span_id",
                        "sequence",
                        "prompt_id",
                        "tool_name",
                        "tool_use_id",
                        "success",
                        "decision",
                        "error",
                        "attempt",
                        "request_id",
                    ],
                    "session_id = {s:String} AND (prompt_id = {k:String} OR (prompt_id IS NULL AND "
                    "trace_id IN {t:Array(String)}))",
                    between=when != "TRUE",
                )
            })
ORDER BY time_ns, sequence""",
            p,
        )
        for e in events:
            e["attributes"] = json_map(e["attributes"])
            e["uid"] = int(e.pop("uid_text")).to_bytes(8, "big")
            e["source"] = "otel"
        return build_tree(turn_key, span_rows, events)
