"""Cost history: exact cost per local day, week or month by model, and the projects that cost
the most, from the `api_request` rows of every agent (OTel, and transcript where there was none).

A request's project is its own (`events.project`, as transcripts record the working directory),
else the working directory its session's status-line samples named, else "(unknown)".
Periods are local calendar ones (`periods`), their edges computed in Python and each request
matched to the last edge at or before it (an ASOF join: one pass over the sorted rows), so a day
across a daylight-saving change has its true length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from claude_top.core.format import NS_PER_S
from claude_top.core.names import API_REQUEST
from claude_top.core.queries import periods
from claude_top.core.queries.filters import dicts

RANGES_DAYS = (30, 90, 365)
UNKNOWN_PROJECT = "(unknown)"
_SESSION_PROJECT = """
SELECT session_id, arg_max(project_dir, received_ns) AS project_dir FROM statusline_samples
WHERE project_dir IS NOT NULL AND session_id IS NOT NULL GROUP BY session_id"""


@dataclass
class CostHistory:
    """Cost per period and model, oldest period first; every period is listed, spent or not."""

    period: str  # "day", "week" or "month"
    labels: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    """Each period's start, epoch seconds."""
    models: list[str] = field(default_factory=list)
    """Most expensive over the whole range first."""
    cost: dict[str, list[float]] = field(default_factory=dict)
    """Per model, one cost per period (aligned with `labels`)."""
    requests: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    """Input, output and cache tokens per period."""

    @property
    def totals(self) -> list[float]:
        return [sum(c[i] for c in self.cost.values()) for i in range(len(self.labels))]

    @property
    def total(self) -> float:
        return sum(self.totals)

    def rows(self) -> list[dict]:
        """One row per period and model with a cost (the CSV export's rows)."""
        return [
            {
                "period": self.labels[i],
                "start": self.starts[i],
                "model": model,
                "cost_usd": self.cost[model][i],
            }
            for i in range(len(self.labels))
            for model in self.models
            if self.cost[model][i]
        ]


def cost_history(
    cur: duckdb.DuckDBPyConnection, period: str, count: int, now_ns: int
) -> CostHistory:
    """The last `count` local periods ("day", "week", "month") up to `now_ns`, by model."""
    bounds = periods.last_periods(period, count, now_ns / NS_PER_S)
    out = CostHistory(period)
    out.starts = [s for s, _ in bounds]
    out.labels = [periods.label(period, s) for s in out.starts]
    rows = dicts(
        cur.execute(
            f"""
WITH b AS (
  SELECT unnest($starts::BIGINT[]) * {NS_PER_S} AS lo, unnest($ends::BIGINT[]) * {NS_PER_S} AS hi,
    unnest(range(len($starts::BIGINT[]))) AS i
), e AS (
  SELECT time_ns, coalesce(model, '(unknown)') AS model, cost_usd,
    coalesce(input_tokens, 0) + coalesce(output_tokens, 0) + coalesce(cache_read_tokens, 0)
      + coalesce(cache_creation_tokens, 0) AS tokens
  FROM events WHERE kind = '{API_REQUEST}' AND time_ns >= $lo AND time_ns < $hi
)
SELECT b.i, e.model, coalesce(sum(e.cost_usd::DECIMAL(18, 9)), 0)::DOUBLE AS cost_usd,
  count(*) AS requests, sum(e.tokens) AS tokens
FROM e ASOF JOIN b ON e.time_ns >= b.lo
WHERE e.time_ns < b.hi
GROUP BY ALL
""",
            {
                "starts": out.starts,
                "ends": [e for _, e in bounds],
                "lo": bounds[0][0] * NS_PER_S,
                "hi": min(bounds[-1][1] * NS_PER_S, now_ns + 1),
            },
        )
    )
    n = len(bounds)
    out.requests, out.tokens = [0] * n, [0] * n
    for r in rows:
        out.cost.setdefault(r["model"], [0.0] * n)[r["i"]] += r["cost_usd"]
        out.requests[r["i"]] += r["requests"]
        out.tokens[r["i"]] += int(r["tokens"] or 0)
    out.models = sorted(out.cost, key=lambda m: (-sum(out.cost[m]), m))
    return out


def top_projects(
    cur: duckdb.DuckDBPyConnection, since_ns: int, now_ns: int, limit: int = 10
) -> list[dict]:
    """The projects that cost the most since `since_ns`: cost, requests, sessions, last use."""
    return dicts(
        cur.execute(
            f"""
WITH sp AS ({_SESSION_PROJECT})
SELECT coalesce(e.project, sp.project_dir, '{UNKNOWN_PROJECT}') AS project,
  coalesce(sum(e.cost_usd::DECIMAL(18, 9)), 0)::DOUBLE AS cost_usd, count(*) AS requests,
  count(DISTINCT e.session_id) AS sessions, max(e.time_ns) AS last_ns
FROM events e LEFT JOIN sp ON e.session_id = sp.session_id
WHERE e.kind = '{API_REQUEST}' AND e.time_ns >= $since AND e.time_ns <= $now
GROUP BY 1 ORDER BY cost_usd DESC, project LIMIT {int(limit)}
""",
            {"since": since_ns, "now": now_ns},
        )
    )
