"""One tool's calls, one model's requests and the cost history over the exporter's tables (a
mixin of `reader.ClickHouseReader`, which gives `x`, `_rows` and `_text`): the same rows as
the local store's `breakdowns.tool_calls`, `model_requests` and `history`."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from claude_top.core.format import NS_PER_S
from claude_top.core.names import API_REQUEST, TOOL_RESULT
from claude_top.core.queries import periods
from claude_top.core.queries.breakdowns import DETAIL_ROWS
from claude_top.core.queries.clickhouse import rollups
from claude_top.core.queries.clickhouse.exprs import TOKENS, lit, session_cond, window
from claude_top.core.queries.filters import Filter
from claude_top.core.queries.history import UNKNOWN_PROJECT, CostHistory

_BUCKET_S = 900
"""The cost history is summed per quarter hour, then per period: every local period's edge
(any time zone's offset, any daylight-saving change) falls on one."""


def _key(*cols: str) -> str:
    """A row's key in its table: a hash of what tells it apart (NULLs included)."""
    parts = ", ".join(f"ifNull(toString({c}), '-')" for c in cols)
    return f"toString(cityHash64({parts}))"


class DetailQueries:
    """Enter on a tool or a model, and `h`."""

    def tool_calls(self, f, tool_name: str, limit: int = DETAIL_ROWS) -> list[dict]:
        p: dict[str, Any] = {"tool": tool_name}
        since = window(f, p)
        where = (
            f"kind = {lit(TOOL_RESULT)} AND tool_name = {{tool:String}} AND "
            f"{session_cond(f, p)} AND {self._text(f, p, 'tool_name')}"
        )
        columns = ["session_id", "prompt_id", "tool_name", "tool_use_id", "duration_ms"]
        columns += ["success", "error", "input"]
        select = f"""{_key("time_ns", "session_id", "tool_use_id", "duration_ms", "input")} AS key,
  time_ns, session_id, prompt_id, tool_name, duration_ms, success, error, input"""
        order = "duration_ms DESC NULLS LAST, time_ns DESC"
        return self._top(select, columns, where, order, since, p, limit)

    def model_requests(self, f, model: str, limit: int = DETAIL_ROWS) -> list[dict]:
        p: dict[str, Any] = {"model": model}
        since = window(f, p)
        where = (
            f"kind = {lit(API_REQUEST)} AND ifNull(model, '(unknown)') = {{model:String}} AND "
            f"{session_cond(f, p)} AND {self._text(f, p, 'model')}"
        )
        columns = ["session_id", "prompt_id", "model", "cost_usd", "input_tokens"]
        columns += ["output_tokens", "cache_read_tokens", "cache_creation_tokens", "duration_ms"]
        columns += ["request_id"]
        select = f"""{_key("time_ns", "session_id", "request_id", "cost_usd")} AS key, time_ns,
  session_id, prompt_id, model, cost_usd, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, duration_ms"""
        return self._top(select, columns, where, "time_ns DESC", since, p, limit, "Timestamp DESC")

    def _top(
        self,
        select: str,
        columns: list[str],
        where: str,
        order: str,
        since: bool,
        p: dict[str, Any],
        limit: int,
        typed_order: str | None = None,
    ) -> list[dict]:
        """The first `limit` events in `order`, each record once. From the typed table when it
        has the columns: its rows in that order with a record's copies (the collector's
        retries) side by side, twice the rows asked for holding them unless most are copies;
        else (or then) through `events`, which counts each record once first. `typed_order`: the
        same order in the typed table's sort key (read in order there)."""
        typed = self.layout.events_table
        if typed is not None and all(typed.has(c) for c in [*columns, "kind", "agent", "_key"]):
            rows = self._rows(
                f"SELECT {select}, _key FROM `{self.layout.database}`.`{typed.name}` "
                f"WHERE {self.x.typed_time(since)} AND {where} "
                f"ORDER BY {typed_order or order}, _key LIMIT {2 * int(limit)}",
                p,
            )
            seen: set[int] = set()
            out = []
            for r in rows:
                k = r.pop("_key")
                if k not in seen:
                    seen.add(k)
                    out.append(r)
            if len(out) >= limit or len(rows) < 2 * limit:
                return out[:limit]
        return self._rows(
            f"""
SELECT {select}
FROM ({self.x.events(columns, where, since)})
ORDER BY {order} LIMIT {int(limit)}""",
            p,
        )

    def cost_history(self, period: str, count: int, now_ns: int) -> CostHistory:
        """The last `count` local periods up to `now_ns`, by model (every agent's requests):
        the whole hours from the models rollup where every period's edge is one, the rest
        (the hour holding `now_ns`, or every quarter hour in a time zone with a half-hour
        offset) from the requests themselves."""
        bounds = periods.last_periods(period, count, now_ns / NS_PER_S)
        out = CostHistory(period)
        out.starts = [s for s, _ in bounds]
        out.labels = [periods.label(period, s) for s in out.starts]
        lo, hi = bounds[0][0] * NS_PER_S, min(bounds[-1][1] * NS_PER_S, now_ns + 1)
        rows = []
        edges = [*out.starts, bounds[-1][1]]
        if self._rolled(rollups.EVENT_MODELS) and all(e % 3600 == 0 for e in edges):
            until_s = hi // NS_PER_S // 3600 * 3600
            if until_s * NS_PER_S > lo:
                rows += self._history_rolled(Filter(since_ns=lo), until_s)
                lo = until_s * NS_PER_S
        if lo < hi:
            rows += self._history_rows(lo, hi)
        n = len(bounds)
        out.requests, out.tokens = [0] * n, [0] * n
        for r in rows:
            i = bisect_right(out.starts, r["b"]) - 1
            out.cost.setdefault(r["model"], [0.0] * n)[i] += float(r["cost_usd"] or 0.0)
            out.requests[i] += int(r["requests"])
            out.tokens[i] += int(r["tokens"] or 0)
        out.models = sorted(out.cost, key=lambda m: (-sum(out.cost[m]), m))
        return out

    def _history_rolled(self, f: Filter, until_s: int) -> list[dict]:
        """Cost, requests and tokens per hour and model from the models rollup."""
        r = rollups.EVENT_MODELS
        rows = self._rows(
            f"""
SELECT toUnixTimestamp(bucket) AS b, ifNull(model, '(unknown)') AS m,
  countMerge(rows_state) AS n, sumMerge(cost_usd_state) AS c,
  ifNull(sumMerge(input_tokens_state), 0) + ifNull(sumMerge(output_tokens_state), 0)
    + ifNull(sumMerge(cache_read_tokens_state), 0)
    + ifNull(sumMerge(cache_creation_tokens_state), 0) AS t
FROM ({self._covered(r, f, "TRUE", until_s)})
GROUP BY b, m""",
            {},
        )
        return [
            {"b": x["b"], "model": x["m"], "cost_usd": x["c"], "requests": x["n"], "tokens": x["t"]}
            for x in rows
        ]

    def _history_rows(self, lo: int, hi: int) -> list[dict]:
        """Cost, requests and tokens per quarter hour and model from the requests in
        [lo, hi)."""
        return self._rows(
            f"""
SELECT intDiv(time_ns, {_BUCKET_S * NS_PER_S}) * {_BUCKET_S} AS b, ifNull(model, '(unknown)')
  AS model, sum(ifNull(cost_usd, 0)) AS cost_usd, count() AS requests,
  sum(ifNull(input_tokens, 0) + ifNull(output_tokens, 0) + ifNull(cache_read_tokens, 0)
    + ifNull(cache_creation_tokens, 0)) AS tokens
FROM ({
                self.x.events(
                    [
                        "model",
                        "cost_usd",
                        *TOKENS,
                    ],
                    f"kind = {lit(API_REQUEST)} AND time_ns < {{hi:Int64}}",
                    True,
                )
            })
GROUP BY b, model""",
            {"since": lo, "hi": hi},
        )

    def top_projects(self, since_ns: int, now_ns: int, limit: int = 10) -> list[dict]:
        """The projects that cost the most since `since_ns` (a request's own project: the
        collector carries no status-line samples to name a session's)."""
        return self._rows(
            f"""
SELECT p AS project, c AS cost_usd, n AS requests, k AS sessions, t AS last_ns FROM (
SELECT ifNull(project, {lit(UNKNOWN_PROJECT)}) AS p, toFloat64(ifNull(sum(cost_usd), 0)) AS c,
  count() AS n, uniqExact(session_id) AS k, max(time_ns) AS t
FROM ({
                self.x.events(
                    ["project", "cost_usd", "session_id"],
                    f"kind = {lit(API_REQUEST)} AND time_ns <= {{now:Int64}}",
                    True,
                )
            })
GROUP BY p) ORDER BY c DESC, p LIMIT {int(limit)}""",
            {"since": since_ns, "now": now_ns},
        )
