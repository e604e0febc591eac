"""Plan limits and budgets: how much of each window is used, what it cost, how fast it goes and
where it will be at the reset.

Official windows come from Claude Code's status-line samples (`statusline_samples`): the latest
sample's `used_percentage` and `resets_at` for the 5-hour and 7-day windows (and a gateway's
spend limit). A window is `[resets_at - 5h, resets_at)` (`- 7d`); it is stale 10 minutes after
its sample arrived and gone once `resets_at` has passed. Its cost and tokens are exact: the sum
of the Claude Code `api_request` rows (OTel, or transcript where there was none) inside it.

Budgets (`core.budgets`) are the same for users without official numbers: their percentage is
the exact cost against the budget.

Burn rate: the exact cost of the last 30 minutes (or since the window began, if later) per hour.
Forecast: how the official percentage moved against exact cost within the window calibrates a
slope k (% per dollar; a least-squares fit of the samples, kept inside the range the whole-number
percentages allow between the cheapest and the dearest sample, which is also the interval). Then
now ~ p_last + k * (cost since the last sample), and at the reset ~ now + k * burn * hours left;
the time to 100 % follows. With fewer than two samples apart in cost the forecast says "not enough
data"; with no requests in the last 30 minutes the percentage holds ("idle"). A budget's k is
exact (100 / budget).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from claude_top.core.budgets import BUDGET_PERIODS, FULL_PCT, NEAR_PCT, LimitSettings
from claude_top.core.format import NS_PER_S
from claude_top.core.names import API_REQUEST, CLAUDE_CODE
from claude_top.core.queries import periods
from claude_top.core.queries.filters import ACTIVE_WITHIN_S, dicts

STALE_AFTER_S = 600
BURN_SPAN_S = 1800
BLOCK_S = 5 * 3600
BLOCK_LOOKBACK_S = 48 * 3600
"""A 5-hour budget block is found from the requests of the last two days."""
DEFAULT_CONTEXT_WINDOW = 200_000
CACHE_TTL_S = 300
OFFICIAL = {
    # name: (label, sample column prefix, window length in s; None: from the spend period)
    "five_hour": ("5h", "five_hour", 5 * 3600),
    "seven_day": ("7d", "seven_day", 7 * 86400),
    "spend_limit": ("spend", "spend", None),
}
SPEND_PERIOD = {"daily": "day", "weekly": "week", "monthly": "month"}
LOOKBACK_NS = 32 * 86400 * NS_PER_S
"""Samples older than this hold no window that is still open (a monthly spend limit at most)."""

NOT_ENOUGH = "not enough data"
IDLE = "idle"
OK = "ok"

LEVEL_EXIT = {"ok": 0, "near": 10, "reached": 11, "stale": 20, "no_data": 30}
"""`claude-top status` exit codes, as Claude-Code-Usage-Monitor uses them."""


@dataclass
class Spent:
    """What the requests in a time range cost (exact sums of `api_request` rows)."""

    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    requests: int = 0


@dataclass
class Forecast:
    """Where a window's percentage is headed at the current pace (None where unknown)."""

    note: str = NOT_ENOUGH
    percentage_now: float | None = None
    """The last official percentage moved on by the cost since that sample."""
    pct_per_usd: float | None = None
    projected_at_reset: float | None = None
    projected_low: float | None = None
    projected_high: float | None = None
    eta_full: int | None = None
    """When it reaches 100 % (epoch s), if before the reset."""
    eta_full_low: int | None = None
    eta_full_high: int | None = None
    samples: int = 0
    """The official samples the calibration used."""


@dataclass
class Window:
    """One official window or budget as of `now`."""

    name: str
    label: str
    source: str  # "official" or "budget"
    used_percentage: float | None
    resets_at: int | None
    window_start: int | None
    spent: Spent = field(default_factory=Spent)
    sampled_at_ns: int | None = None
    limit_usd: float | None = None
    burn_usd_per_hour: float | None = None
    burn_pct_per_hour: float | None = None
    forecast: Forecast = field(default_factory=Forecast)
    expired: bool = False

    def age_s(self, now_ns: int) -> int | None:
        if self.sampled_at_ns is None:
            return None
        return max(0, (now_ns - self.sampled_at_ns) // NS_PER_S)

    def stale(self, now_ns: int) -> bool:
        age = self.age_s(now_ns)
        return age is not None and age > STALE_AFTER_S

    def gone(self, now_ns: int) -> bool:
        """Its reset has passed (by the clock at `now_ns`, which moves after the query)."""
        return self.expired or (self.resets_at is not None and self.resets_at * NS_PER_S <= now_ns)

    def to_json(self, now_ns: int) -> dict:
        """The `claude-top status --json` object of this window."""
        f = self.forecast
        return {
            "used_percentage": _num(self.used_percentage),
            "resets_at": self.resets_at,
            "window_start": self.window_start,
            "cost_usd": _money(self.spent.cost_usd),
            "input_tokens": self.spent.input_tokens,
            "output_tokens": self.spent.output_tokens,
            "cache_read_tokens": self.spent.cache_read_tokens,
            "cache_creation_tokens": self.spent.cache_creation_tokens,
            "requests": self.spent.requests,
            "source": self.source,
            "limit_usd": self.limit_usd,
            "sampled_at": None if self.sampled_at_ns is None else self.sampled_at_ns // NS_PER_S,
            "age_s": self.age_s(now_ns),
            "stale": self.stale(now_ns),
            "expired": self.gone(now_ns),
            "burn_usd_per_hour": _round(self.burn_usd_per_hour, 6),
            "burn_pct_per_hour": _round(self.burn_pct_per_hour, 3),
            "forecast": f.note,
            "estimated_percentage_now": _round(f.percentage_now, 3),
            "projected_percentage_at_reset": _round(f.projected_at_reset, 3),
            "projected_range": _range(f.projected_low, f.projected_high, 3),
            "eta_full": f.eta_full,
            "eta_full_range": (
                None
                if f.eta_full_low is None and f.eta_full_high is None
                else [f.eta_full_low, f.eta_full_high]
            ),
            "calibration_samples": f.samples,
        }


@dataclass
class SessionGauge:
    """One session's context window and prompt cache."""

    session_id: str
    model: str | None
    context_used_pct: float | None
    context_tokens: int | None
    context_window_size: int | None
    context_source: str  # "statusline" or "estimate"
    cache_expires_at: int | None
    cache_source: str | None  # "statusline", "estimate" or None
    last_seen_ns: int
    project: str | None = None

    def cache_left_s(self, now_ns: int) -> int | None:
        """Seconds until the prompt cache goes cold (0 when it is), None when unknown."""
        if self.cache_expires_at is None:
            return None
        return max(0, self.cache_expires_at - now_ns // NS_PER_S)


@dataclass
class Limits:
    """Everything the limits strip, the limits view and `claude-top status` show."""

    now_ns: int
    windows: list[Window] = field(default_factory=list)
    today: Spent = field(default_factory=Spent)
    today_start: int = 0
    sessions_active: int = 0
    sessions: list[SessionGauge] = field(default_factory=list)
    samples: int = 0
    samples_rejected: int = 0
    samples_with_problems: int = 0
    last_sample_ns: int | None = None
    alert_at: tuple[float, ...] = ()

    def window(self, name: str) -> Window | None:
        return next((w for w in self.windows if w.name == name), None)

    @property
    def official(self) -> list[Window]:
        return [w for w in self.windows if w.source == "official"]

    @property
    def budgets(self) -> list[Window]:
        return [w for w in self.windows if w.source == "budget"]

    def level(self, now_ns: int | None = None, near_pct: float = NEAR_PCT) -> str:
        """reached (a window at 100 % or more), near (at `near_pct` or more), stale (official
        numbers over 10 minutes old, or a window reset and the next not reported yet), no_data
        (no official window and no budget) or ok. Within a window the official percentage only
        rises, so a stale value at or past a threshold still counts."""
        now_ns = self.now_ns if now_ns is None else now_ns
        live = [w for w in self.windows if not w.gone(now_ns) and w.used_percentage is not None]
        top = max((w.used_percentage for w in live), default=None)
        if top is not None and top >= FULL_PCT:
            return "reached"
        if top is not None and top >= near_pct:
            return "near"
        official = self.official
        if any(w.stale(now_ns) for w in live) or (
            official and not any(w in live for w in official)
        ):
            return "stale"
        if not self.windows:
            return "no_data"
        return "ok"

    def to_json(self, now_ns: int | None = None, near_pct: float = NEAR_PCT) -> dict:
        """`claude-top status --json` (and the control API's `/status`)."""
        now_ns = self.now_ns if now_ns is None else now_ns
        out: dict[str, Any] = {"now": now_ns // NS_PER_S}
        for name in ("five_hour", "seven_day"):
            w = self.window(name) or self.window(f"budget:{_BUDGET_FOR[name]}")
            out[name] = None if w is None else w.to_json(now_ns)
        spend = self.window("spend_limit")
        if spend is not None:
            out["spend_limit"] = spend.to_json(now_ns)
        out["budgets"] = {w.label: w.to_json(now_ns) for w in self.budgets}
        out["today"] = {
            "start": self.today_start,
            **{k: _money(v) if k == "cost_usd" else v for k, v in asdict(self.today).items()},
        }
        out["sessions_active"] = self.sessions_active
        out["sessions"] = [
            {
                "session_id": s.session_id,
                "model": s.model,
                "project": s.project,
                "context_used_percentage": _round(s.context_used_pct, 3),
                "context_tokens": s.context_tokens,
                "context_window_size": s.context_window_size,
                "context_source": s.context_source,
                "cache_expires_at": s.cache_expires_at,
                "cache_source": s.cache_source,
                "cache_warm": None if s.cache_expires_at is None else s.cache_left_s(now_ns) > 0,
            }
            for s in self.sessions
        ]
        out["statusline"] = {
            "samples": self.samples,
            "rejected": self.samples_rejected,
            "with_problems": self.samples_with_problems,
            "last_at": None if self.last_sample_ns is None else self.last_sample_ns // NS_PER_S,
        }
        level = self.level(now_ns, near_pct)
        out["level"] = level
        out["exit_code"] = LEVEL_EXIT[level]
        return out


_BUDGET_FOR = {"five_hour": "5h", "seven_day": "week"}


def _num(x: float | None) -> float | int | None:
    if x is None:
        return None
    return int(x) if float(x).is_integer() else x


def _round(x: float | None, digits: int) -> float | int | None:
    return None if x is None else _num(round(x, digits))


def _range(lo: float | None, hi: float | None, digits: int) -> list | None:
    if lo is None and hi is None:
        return None
    return [_round(lo, digits), _round(hi, digits)]


def _money(x: float) -> float:
    """Dollars to the nano-dollar: the exact decimal sum, as a JSON number."""
    return round(float(x), 9)


# --- the sums ----------------------------------------------------------------------------------


_SPENT_SQL = f"""
SELECT coalesce(sum(cost_usd::DECIMAL(18, 9)), 0)::DOUBLE, coalesce(sum(input_tokens), 0),
  coalesce(sum(output_tokens), 0), coalesce(sum(cache_read_tokens), 0),
  coalesce(sum(cache_creation_tokens), 0), count(*)
FROM events WHERE kind = '{API_REQUEST}' AND time_ns >= $start AND time_ns < $end"""


def spent(
    cur: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int, agent: str | None = None
) -> Spent:
    """The exact cost and tokens of the requests in [start_ns, end_ns) (one agent's, or all).
    Costs are summed as decimals (to the nano-dollar), so the total is the same whatever order
    the rows are read in."""
    sql, p = _SPENT_SQL, {"start": start_ns, "end": end_ns}
    if agent is not None:
        sql += " AND agent = $agent"
        p["agent"] = agent
    row = cur.execute(sql, p).fetchone()
    return Spent(float(row[0]), *(int(x) for x in row[1:]))


def _burn(cur, start_ns: int, now_ns: int, agent: str | None) -> float:
    """Dollars per hour over the last BURN_SPAN_S (or since `start_ns`, if later)."""
    since = max(start_ns, now_ns - BURN_SPAN_S * NS_PER_S)
    span_h = (now_ns - since) / NS_PER_S / 3600
    if span_h <= 0:
        return 0.0
    return spent(cur, since, now_ns, agent).cost_usd / span_h


# --- official windows --------------------------------------------------------------------------


def _latest_samples(cur, now_ns: int) -> dict[str, dict]:
    """Per official window, its latest sample at or before `now_ns`: pct, resets_at, when."""
    cols = []
    for name, (_, prefix, _) in OFFICIAL.items():
        has = f"{prefix}_pct IS NOT NULL AND {prefix}_resets_at IS NOT NULL"
        cols.append(f"max(received_ns) FILTER (WHERE {has}) AS {name}_at")
        for c in ("pct", "resets_at"):
            cols.append(f"arg_max({prefix}_{c}, received_ns) FILTER (WHERE {has}) AS {name}_{c}")
    spend = "FILTER (WHERE spend_pct IS NOT NULL) AS spend"
    cols.append(f"arg_max(spend_period, received_ns) {spend}_period")
    cols.append(f"arg_max(spend_limit_usd, received_ns) {spend}_limit_usd")
    row = dicts(
        cur.execute(
            f"SELECT {', '.join(cols)} FROM statusline_samples "
            "WHERE received_ns <= $now AND received_ns > $since",
            {"now": now_ns, "since": now_ns - LOOKBACK_NS},
        )
    )[0]
    out = {}
    for name in OFFICIAL:
        if row[f"{name}_at"] is not None:
            out[name] = {
                "at": row[f"{name}_at"],
                "pct": row[f"{name}_pct"],
                "resets_at": row[f"{name}_resets_at"],
            }
    if "spend_limit" in out:
        out["spend_limit"]["period"] = row["spend_period"]
        out["spend_limit"]["limit_usd"] = row["spend_limit_usd"]
    return out


def _calibration(
    cur, prefix: str, resets_at: int, start_ns: int, now_ns: int, agent: str | None
) -> list[tuple[float, float, int]]:
    """(exact window cost when the sample arrived, its percentage, arrival) for the window's
    samples, distinct (cost, percentage) pairs, oldest first."""
    agent_cond = "AND agent = $agent" if agent else ""
    p: dict[str, Any] = {"resets": resets_at, "start": start_ns, "now": now_ns}
    if agent:
        p["agent"] = agent
    rows = cur.execute(
        f"""
WITH r AS (
  SELECT time_ns, sum(cost_usd::DECIMAL(18, 9)) OVER (ORDER BY time_ns
    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)::DOUBLE AS cum
  FROM events WHERE kind = '{API_REQUEST}' AND time_ns >= $start AND time_ns < $now
    AND cost_usd IS NOT NULL {agent_cond}
), s AS (
  SELECT received_ns, {prefix}_pct AS pct FROM statusline_samples
  WHERE {prefix}_resets_at = $resets AND {prefix}_pct IS NOT NULL
    AND received_ns >= $start AND received_ns <= $now
), j AS (
  SELECT s.received_ns, s.pct, coalesce(r.cum, 0.0) AS cum
  FROM s ASOF LEFT JOIN r ON s.received_ns > r.time_ns
)
SELECT cum, pct, min(received_ns) AS first_ns FROM j GROUP BY cum, pct ORDER BY first_ns
""",
        p,
    ).fetchall()
    return [(float(c), float(pct), int(at)) for c, pct, at in rows]


def fit_slope(points: list[tuple[float, float]]) -> tuple[float, float, float] | None:
    """(k, k_low, k_high): percent per dollar from (cost, percentage) points, or None when the
    points do not span any cost.

    k is the least-squares slope, kept inside [k_low, k_high]: the slopes the cheapest and the
    dearest point allow when each whole-number percentage may be off by up to one."""
    if len(points) < 2:
        return None
    (c0, p0) = min(points)
    (c1, p1) = max(points)
    dc = c1 - c0
    if dc <= 1e-12:
        return None
    lo = max(0.0, (p1 - p0 - 1) / dc)
    hi = (p1 - p0 + 1) / dc
    if hi <= 0:
        return None
    n = len(points)
    mc = sum(c for c, _ in points) / n
    mp = sum(p for _, p in points) / n
    sxx = sum((c - mc) ** 2 for c, _ in points)
    k = sum((c - mc) * (p - mp) for c, p in points) / sxx
    return min(hi, max(lo, k)), lo, hi


def forecast(
    p_last: float,
    cost_since_last: float,
    burn_usd_h: float,
    now_ns: int,
    resets_at: int,
    slope: tuple[float, float, float] | None,
    samples: int = 0,
) -> Forecast:
    """The forecast of a window from its last percentage, the cost since, the pace and the
    calibrated slope (see the module's docstring)."""
    if slope is None:
        return Forecast(NOT_ENOUGH, samples=samples)
    k, k_lo, k_hi = slope
    hours_left = max(0.0, (resets_at * NS_PER_S - now_ns) / NS_PER_S / 3600)
    out = Forecast(OK if burn_usd_h > 0 else IDLE, samples=samples, pct_per_usd=k)

    def at(kk: float, usd: float) -> float:
        return p_last + kk * usd

    out.percentage_now = at(k, cost_since_last)
    ahead = cost_since_last + burn_usd_h * hours_left
    out.projected_at_reset = at(k, ahead)
    out.projected_low, out.projected_high = at(k_lo, ahead), at(k_hi, ahead)

    now_s = now_ns / NS_PER_S

    def eta(kk: float) -> int | None:
        pct_now = at(kk, cost_since_last)
        if pct_now >= FULL_PCT:
            return int(now_s)
        rate = kk * burn_usd_h
        if rate <= 0:
            return None
        t = now_s + (FULL_PCT - pct_now) / rate * 3600
        return int(t) if t < resets_at else None

    out.eta_full = eta(k)
    out.eta_full_low, out.eta_full_high = eta(k_hi), eta(k_lo)
    return out


def _window_start(name: str, resets_at: int, info: dict) -> int | None:
    length = OFFICIAL[name][2]
    if length is not None:
        return resets_at - length
    period = SPEND_PERIOD.get(info.get("period") or "")
    if period is None:
        return None
    return periods.period_start(period, resets_at - 1)


def official_windows(cur, now_ns: int, agent: str | None = CLAUDE_CODE) -> list[Window]:
    """The official windows as of `now_ns` (a window whose reset has passed is returned with
    `expired` set and no percentage: the one after it has not been reported yet)."""
    out = []
    for name, info in _latest_samples(cur, now_ns).items():
        label, prefix, _ = OFFICIAL[name]
        resets_at = int(info["resets_at"])
        start = _window_start(name, resets_at, info)
        w = Window(
            name,
            label,
            "official",
            float(info["pct"]),
            resets_at,
            start,
            sampled_at_ns=int(info["at"]),
            limit_usd=info.get("limit_usd"),
        )
        if resets_at * NS_PER_S <= now_ns:
            w.expired = True
            w.used_percentage = None
            w.forecast = Forecast(note="window reset")
            out.append(w)
            continue
        start_ns = (start if start is not None else info["at"] // NS_PER_S) * NS_PER_S
        w.spent = spent(cur, start_ns, now_ns, agent)
        w.burn_usd_per_hour = _burn(cur, start_ns, now_ns, agent)
        points = _calibration(cur, prefix, resets_at, start_ns, now_ns, agent)
        slope = fit_slope([(c, p) for c, p, _ in points])
        last_cost = points[-1][0] if points else w.spent.cost_usd
        w.forecast = forecast(
            w.used_percentage,
            max(0.0, w.spent.cost_usd - last_cost),
            w.burn_usd_per_hour,
            now_ns,
            resets_at,
            slope,
            len(points),
        )
        if slope is not None:
            w.burn_pct_per_hour = slope[0] * w.burn_usd_per_hour
        out.append(w)
    order = list(OFFICIAL)
    return sorted(out, key=lambda w: order.index(w.name))


# --- budgets -----------------------------------------------------------------------------------


def block_bounds(times_s: list[int], now_s: int) -> tuple[int, int] | None:
    """The 5-hour block holding `now_s`, from request times (epoch s, oldest first): a block
    starts at the hour of the first request after the previous block ended and lasts 5 hours.
    None when no block is open."""
    start = end = None
    for t in times_s:
        if end is None or t >= end:
            start = t - t % 3600
            end = start + BLOCK_S
    if start is None or not start <= now_s < end:
        return None
    return start, end


def budget_windows(cur, settings: LimitSettings, now_ns: int) -> list[Window]:
    """Each configured budget as a window: exact cost against the budget, burn and forecast."""
    out = []
    now_s = now_ns // NS_PER_S
    for period in BUDGET_PERIODS:
        limit = settings.budgets.get(period)
        if limit is None:
            continue
        if period == "5h":
            times = [
                r[0]
                for r in cur.execute(
                    f"SELECT DISTINCT time_ns // {60 * NS_PER_S} * 60 AS t FROM events "
                    f"WHERE kind = '{API_REQUEST}' AND time_ns >= $since AND time_ns < $now "
                    "ORDER BY t",
                    {"since": now_ns - BLOCK_LOOKBACK_S * NS_PER_S, "now": now_ns},
                ).fetchall()
            ]
            bounds = block_bounds(times, now_s)
        else:
            start = periods.period_start(period, now_s)
            bounds = (start, periods.next_start(period, start))
        w = Window(f"budget:{period}", period, "budget", 0.0, None, None, limit_usd=limit)
        if bounds is None:  # no 5-hour block open: nothing spent in one
            w.forecast = Forecast(IDLE, percentage_now=0.0, projected_at_reset=0.0)
            out.append(w)
            continue
        start, end = bounds
        w.window_start, w.resets_at = start, end
        w.spent = spent(cur, start * NS_PER_S, now_ns)
        w.used_percentage = 100.0 * w.spent.cost_usd / limit
        w.burn_usd_per_hour = _burn(cur, start * NS_PER_S, now_ns, None)
        w.burn_pct_per_hour = 100.0 * w.burn_usd_per_hour / limit
        k = 100.0 / limit
        w.forecast = forecast(w.used_percentage, 0.0, w.burn_usd_per_hour, now_ns, end, (k, k, k))
        out.append(w)
    return out


# --- sessions ----------------------------------------------------------------------------------


def session_gauges(cur, now_ns: int, within_s: int = 3600) -> list[SessionGauge]:
    """Context window and prompt cache of each session seen in the last `within_s` (a status
    line sample, else an estimate from its last request: input and cache tokens against the
    model's window, the cache warm for 5 minutes after a request that used it)."""
    since = now_ns - within_s * NS_PER_S
    p = {"since": since, "now": now_ns}
    samples = {
        r["session_id"]: r
        for r in dicts(
            cur.execute(
                """
SELECT session_id, max(received_ns) AS seen,
  arg_max(model, received_ns) AS model, arg_max(project_dir, received_ns) AS project,
  arg_max(context_used_pct, received_ns) AS ctx_pct,
  arg_max(context_tokens, received_ns) AS ctx_tokens,
  arg_max(context_window_size, received_ns) AS ctx_size,
  arg_max(cache_expires_at, received_ns) AS cache_expires_at,
  arg_max(cache_warm IS NOT NULL, received_ns) AS cache_seen
FROM statusline_samples
WHERE received_ns >= $since AND received_ns <= $now AND session_id IS NOT NULL
GROUP BY session_id""",
                p,
            )
        )
    }
    sizes = dict(
        cur.execute(
            "SELECT model, arg_max(context_window_size, received_ns) FROM statusline_samples "
            "WHERE model IS NOT NULL AND context_window_size IS NOT NULL GROUP BY model"
        ).fetchall()
    )
    requests = {
        r["session_id"]: r
        for r in dicts(
            cur.execute(
                f"""
SELECT session_id, max(time_ns) AS seen, arg_max(model, time_ns) AS model,
  arg_max(coalesce(input_tokens, 0) + coalesce(cache_read_tokens, 0)
          + coalesce(cache_creation_tokens, 0), time_ns) AS ctx_tokens,
  max(time_ns) FILTER (WHERE coalesce(cache_read_tokens, 0)
                             + coalesce(cache_creation_tokens, 0) > 0) AS cached_at
FROM events WHERE kind = '{API_REQUEST}' AND time_ns >= $since AND time_ns <= $now
  AND session_id IS NOT NULL
GROUP BY session_id""",
                p,
            )
        )
    }
    out = []
    for sid in samples.keys() | requests.keys():
        s, r = samples.get(sid), requests.get(sid)
        seen = max(x["seen"] for x in (s, r) if x)
        model = (s or {}).get("model") or (r or {}).get("model")
        if s and s["ctx_pct"] is not None:
            ctx = ("statusline", s["ctx_pct"], s["ctx_tokens"], s["ctx_size"])
        elif r:
            size = sizes.get(model) or (1_000_000 if "[1m]" in (model or "") else None)
            size = size or DEFAULT_CONTEXT_WINDOW
            ctx = ("estimate", 100.0 * r["ctx_tokens"] / size, r["ctx_tokens"], size)
        else:
            ctx = ("statusline", None, None, s["ctx_size"])
        if s and s["cache_seen"]:
            cache = (s["cache_expires_at"], "statusline")
        elif r and r["cached_at"] is not None:
            cache = (r["cached_at"] // NS_PER_S + CACHE_TTL_S, "estimate")
        else:
            cache = (None, None)
        out.append(
            SessionGauge(
                sid, model, ctx[1], ctx[2], ctx[3], ctx[0], cache[0], cache[1], seen,
                (s or {}).get("project"),
            )
        )  # fmt: skip
    return sorted(out, key=lambda g: -g.last_seen_ns)


def sessions_active(cur, now_ns: int) -> int:
    """Sessions with a record (by its own time) or a status-line sample in the last minute."""
    since = now_ns - ACTIVE_WITHIN_S * NS_PER_S
    return cur.execute(
        """
SELECT count(DISTINCT session_id) FROM (
  SELECT session_id FROM events WHERE time_ns >= $since AND time_ns <= $now
  UNION ALL SELECT session_id FROM spans WHERE start_ns >= $since AND start_ns <= $now
  UNION ALL SELECT session_id FROM statusline_samples
    WHERE received_ns >= $since AND received_ns <= $now)
WHERE session_id IS NOT NULL""",
        {"since": since, "now": now_ns},
    ).fetchone()[0]


# --- everything --------------------------------------------------------------------------------


def limits(
    cur: duckdb.DuckDBPyConnection,
    settings: LimitSettings | None = None,
    now_ns: int | None = None,
) -> Limits:
    """Official windows, budgets, today, sessions: what the limits views show, as of `now_ns`."""
    settings = settings or LimitSettings()
    now_ns = time.time_ns() if now_ns is None else now_ns
    out = Limits(now_ns, alert_at=settings.alert_at)
    out.windows = official_windows(cur, now_ns) + budget_windows(cur, settings, now_ns)
    out.today_start = periods.period_start("day", now_ns / NS_PER_S)
    out.today = spent(cur, out.today_start * NS_PER_S, now_ns)
    out.sessions_active = sessions_active(cur, now_ns)
    out.sessions = session_gauges(cur, now_ns)
    n, problems, last = cur.execute(
        "SELECT count(*), count(problems), max(received_ns) FROM statusline_samples "
        "WHERE received_ns <= $now",
        {"now": now_ns},
    ).fetchone()
    out.samples, out.samples_with_problems, out.last_sample_ns = n, problems, last
    out.samples_rejected = cur.execute(
        "SELECT count(*) FROM ingest_failed WHERE signal = 'statusline'"
    ).fetchone()[0]
    return out
