"""Plan limits, budgets, burn rate and forecast (`core.queries.limits`) on the real interactive
capture: its telemetry and its status-line samples, each stored with the time it arrived.

Expected values are computed here from the capture's JSON: the `api_request` records' times and
costs, and the samples' percentages; never from claude-top's code.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from claude_top.core.budgets import LimitSettings
from claude_top.core.queries.limits import LEVEL_EXIT, fit_slope, limits
from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.sources.statusline.store import store_samples
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from truth import STATUSLINE_CAPTURE, api_request_records, grpc_requests, statusline_samples

S = 10**9
SAMPLES = statusline_samples()
LAST_NS = SAMPLES[-1][0]
NOW_NS = LAST_NS + 10 * S
RESETS_5H = 1796461200
RESETS_7D = 1796688000


REQUESTS = api_request_records()


def cost_between(lo_ns: int, hi_ns: int) -> float:
    return sum(float(a["cost_usd"]) for a in REQUESTS if lo_ns <= a["_t"] < hi_ns)


def _load(store: Store, name: str = STATUSLINE_CAPTURE) -> None:
    for signal, body in grpc_requests(name):
        write_rows(store, [decode_protobuf(signal, body)])


@pytest.fixture
def store():
    s = Store.open(":memory:")
    _load(s)
    store_samples(s, [(r, t) for r, t, _ in SAMPLES])
    yield s
    s.close()


@pytest.fixture
def utc(monkeypatch):
    """Local time is UTC (budgets and "today" follow the local calendar)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def status(store, now_ns=NOW_NS, settings=None) -> dict:
    with store.reading() as cur:
        return limits(cur, settings or LimitSettings(), now_ns).to_json(now_ns)


def test_the_capture_is_what_the_tests_assume():
    assert len(REQUESTS) == 9
    assert all(a["_t"] < LAST_NS for a in REQUESTS)
    assert round(cost_between(0, LAST_NS), 9) == 0.042714


def test_official_windows_are_the_last_sample_with_the_exact_window_cost(store, utc):
    doc = status(store)
    five = doc["five_hour"]
    assert five["source"] == "official"
    assert five["used_percentage"] == 61
    assert five["resets_at"] == RESETS_5H
    assert five["window_start"] == RESETS_5H - 5 * 3600
    assert five["sampled_at"] == LAST_NS // S
    assert five["age_s"] == 10
    assert (five["stale"], five["expired"]) == (False, False)
    in_window = [a for a in REQUESTS if (RESETS_5H - 5 * 3600) * S <= a["_t"] < NOW_NS]
    assert five["requests"] == len(in_window) == 9
    assert five["cost_usd"] == round(sum(float(a["cost_usd"]) for a in in_window), 9)
    assert five["cost_usd"] == 0.042714
    for kind in ("input", "output", "cache_read", "cache_creation"):
        assert five[f"{kind}_tokens"] == sum(int(a[f"{kind}_tokens"]) for a in in_window)
    seven = doc["seven_day"]
    assert (seven["used_percentage"], seven["resets_at"]) == (38, RESETS_7D)
    assert seven["window_start"] == RESETS_7D - 7 * 86400
    assert seven["cost_usd"] == 0.042714
    assert doc["sessions_active"] == 1
    assert doc["today"]["cost_usd"] == 0.042714
    assert doc["today"]["start"] == int(datetime(2026, 12, 5).timestamp())
    assert doc["statusline"] == {
        "samples": 4,
        "rejected": 0,
        "with_problems": 0,
        "last_at": LAST_NS // S,
    }
    assert (doc["level"], doc["exit_code"]) == ("ok", 0)


def _ols(points):
    n = len(points)
    mc = sum(c for c, _ in points) / n
    mp = sum(p for _, p in points) / n
    return sum((c - mc) * (p - mp) for c, p in points) / sum((c - mc) ** 2 for c, _ in points)


@pytest.mark.parametrize(("window", "resets"), [("five_hour", RESETS_5H), ("seven_day", RESETS_7D)])
def test_burn_rate_and_forecast_calibrated_on_the_samples(store, window, resets):
    doc = status(store)
    w = doc[window]
    # burn: the exact cost of the last 30 minutes, per hour
    burn = cost_between(NOW_NS - 1800 * S, NOW_NS) / 0.5
    assert w["burn_usd_per_hour"] == round(burn, 6)
    # calibration: each sample's percentage against the window cost when it arrived
    points = [
        (cost_between(0, r), d["rate_limits"][window]["used_percentage"])
        for r, _, d in SAMPLES
        if "rate_limits" in d
    ]
    assert [p for _, p in points] == ([19, 40, 61] if window == "five_hour" else [32, 35, 38])
    dc = points[-1][0] - points[0][0]
    dp = points[-1][1] - points[0][1]
    lo, hi = (dp - 1) / dc, (dp + 1) / dc
    k = min(hi, max(lo, _ols(points)))
    hours = (resets * S - NOW_NS) / S / 3600
    assert w["forecast"] == "ok"
    assert w["calibration_samples"] == 3
    assert w["burn_pct_per_hour"] == pytest.approx(k * burn, abs=1e-3)
    assert w["estimated_percentage_now"] == 61 if window == "five_hour" else 38
    p = points[-1][1]
    assert w["projected_percentage_at_reset"] == pytest.approx(p + k * burn * hours, abs=1e-3)
    assert w["projected_range"] == pytest.approx(
        [p + lo * burn * hours, p + hi * burn * hours], abs=1e-3
    )
    assert w["eta_full"] == int(NOW_NS / S + (100 - p) / (k * burn) * 3600)
    assert w["eta_full_range"] == [
        int(NOW_NS / S + (100 - p) / (hi * burn) * 3600),
        int(NOW_NS / S + (100 - p) / (lo * burn) * 3600),
    ]


def test_one_sample_is_not_enough_data(utc):
    s = Store.open(":memory:")
    _load(s)
    store_samples(s, [(r, t) for r, t, _ in SAMPLES[:2]])
    w = status(s)["five_hour"]
    s.close()
    assert (w["used_percentage"], w["forecast"]) == (19, "not enough data")
    assert w["projected_percentage_at_reset"] is None and w["eta_full"] is None
    assert w["cost_usd"] == 0.042714  # still exact: every request up to now


def test_no_requests_in_the_last_half_hour_holds_the_percentage(store, utc):
    later = LAST_NS + 3600 * S
    w = status(store, later)
    assert w["five_hour"]["stale"] and w["level"] == "stale"
    five = w["five_hour"]
    assert five["burn_usd_per_hour"] == 0
    assert (five["forecast"], five["projected_percentage_at_reset"]) == ("idle", 61)
    assert five["eta_full"] is None


def test_stale_after_ten_minutes_and_gone_after_the_reset(store, utc):
    fresh = status(store, LAST_NS + 600 * S)
    assert (fresh["five_hour"]["stale"], fresh["level"]) == (False, "ok")
    stale = status(store, LAST_NS + 601 * S)
    assert (stale["five_hour"]["stale"], stale["exit_code"]) == (True, 20)
    gone = status(store, RESETS_5H * S)
    five = gone["five_hour"]
    assert (five["expired"], five["used_percentage"], five["resets_at"]) == (True, None, RESETS_5H)
    assert gone["seven_day"]["used_percentage"] == 38
    assert gone["level"] == "stale"  # the 7-day one is 10 minutes old too
    later = status(store, (RESETS_7D + 1) * S)
    assert later["five_hour"]["expired"] and later["seven_day"]["expired"]
    assert later["exit_code"] == LEVEL_EXIT["stale"] == 20


@pytest.mark.parametrize(
    ("pct", "level", "code"),
    [(79, "ok", 0), (80, "near", 10), (99.5, "near", 10), (100, "reached", 11)],
)
def test_levels_and_exit_codes(store, utc, pct, level, code):
    _, text, doc = SAMPLES[-1]
    doc = json.loads(text)
    doc["rate_limits"]["five_hour"]["used_percentage"] = pct
    store_samples(store, [(LAST_NS + S, json.dumps(doc))])
    out = status(store)
    assert (out["level"], out["exit_code"]) == (level, code)
    assert LEVEL_EXIT[level] == code


def test_a_stale_window_past_a_threshold_still_counts(store, utc):
    doc = json.loads(SAMPLES[-1][1])
    doc["rate_limits"]["five_hour"]["used_percentage"] = 90
    store_samples(store, [(LAST_NS + S, json.dumps(doc))])
    out = status(store, LAST_NS + 3600 * S)
    assert out["five_hour"]["stale"] and out["level"] == "near"


def test_nothing_at_all_is_no_data(utc):
    s = Store.open(":memory:")
    out = status(s)
    s.close()
    assert out["five_hour"] is None and out["seven_day"] is None
    assert (out["level"], out["exit_code"]) == ("no_data", 30)


def test_budgets_without_official_numbers(utc):
    s = Store.open(":memory:")
    _load(s)
    settings = LimitSettings(budgets={"5h": 0.05, "day": 1.0, "week": 5.0, "month": 20.0})
    out = status(s, settings=settings)
    s.close()
    cost = cost_between(0, NOW_NS)
    first = REQUESTS[0]["_t"] // S
    five = out["five_hour"]  # the 5h budget stands in for the official window
    assert five["source"] == "budget" and five["limit_usd"] == 0.05
    assert five["window_start"] == first - first % 3600
    assert five["resets_at"] == five["window_start"] + 5 * 3600
    assert five["used_percentage"] == pytest.approx(100 * cost / 0.05)
    assert out["level"] == "near"  # 85 %
    burn = cost / 0.5
    hours = (five["resets_at"] * S - NOW_NS) / S / 3600
    assert five["projected_percentage_at_reset"] == pytest.approx(
        100 * (cost + burn * hours) / 0.05, abs=1e-3
    )
    assert five["eta_full"] == int(NOW_NS / S + (0.05 - cost) / burn * 3600)
    day = out["budgets"]["day"]
    assert day["window_start"] == int(datetime(2026, 12, 5).timestamp())
    assert day["resets_at"] == int(datetime(2026, 12, 6).timestamp())
    assert out["budgets"]["week"]["window_start"] == int(datetime(2026, 11, 30).timestamp())
    assert out["budgets"]["month"]["resets_at"] == int(datetime(2027, 1, 1).timestamp())
    assert out["seven_day"] is out["budgets"]["week"] or out["seven_day"] == out["budgets"]["week"]
    for b in out["budgets"].values():
        assert b["cost_usd"] == 0.042714


def test_a_5h_budget_block_closes_five_hours_after_its_hour():
    s = Store.open(":memory:")
    _load(s)
    first = REQUESTS[0]["_t"] // S
    after = (first - first % 3600 + 5 * 3600) * S
    out = status(s, after, LimitSettings(budgets={"5h": 1.0}))
    s.close()
    five = out["budgets"]["5h"]
    assert (five["used_percentage"], five["resets_at"], five["forecast"]) == (0, None, "idle")


def test_the_slope_stays_within_what_whole_percentages_allow():
    assert fit_slope([(1.0, 10)]) is None
    assert fit_slope([(1.0, 10), (1.0, 12)]) is None
    k, lo, hi = fit_slope([(0.0, 10), (1.0, 20), (2.0, 30)])
    assert (k, lo, hi) == (10.0, 9.5, 10.5)
    k, lo, hi = fit_slope([(0.0, 10), (1.0, 10), (1.0, 30), (2.0, 10)])
    assert (lo, hi) == (0.0, 0.5) and k == 0.0
    k, _, _ = fit_slope([(0.0, 0), (0.1, 40), (2.0, 20)])
    assert k == 9.5  # least squares says 0.79; the cheapest and dearest allow (20-1)/2 at least


def test_session_gauges_from_the_status_line(store, utc):
    (g,) = status(store)["sessions"]
    _, _, doc = SAMPLES[-1]
    assert g["session_id"] == doc["session_id"]
    assert g["context_source"] == "statusline"
    assert g["context_used_percentage"] == doc["context_window"]["used_percentage"]
    assert g["context_window_size"] == doc["context_window"]["context_window_size"]
    assert (g["cache_source"], g["cache_expires_at"]) == (
        "statusline",
        doc["prompt_cache"]["expires_at"],
    )
    assert g["cache_warm"] is True
    assert g["project"] == doc["workspace"]["project_dir"]


def test_session_gauges_estimated_without_a_status_line(utc):
    s = Store.open(":memory:")
    _load(s, "basic.grpc")
    reqs = api_request_records("basic.grpc")
    last = reqs[-1]
    out = status(s, last["_t"] + 5 * S)
    s.close()
    (g,) = out["sessions"]
    tokens = sum(int(last[f"{k}_tokens"]) for k in ("input", "cache_read", "cache_creation"))
    assert (g["context_source"], g["context_tokens"], g["context_window_size"]) == (
        "estimate",
        tokens,
        200_000,
    )
    assert g["context_used_percentage"] == round(100 * tokens / 200_000, 3)
    cached = [a for a in reqs if int(a["cache_read_tokens"]) + int(a["cache_creation_tokens"])]
    assert g["cache_expires_at"] == cached[-1]["_t"] // S + 300
    assert out["five_hour"] is None and out["level"] == "no_data"


def test_a_gateways_spend_limit_is_a_window_of_its_period(store, utc):
    doc = json.loads(SAMPLES[-1][1])
    doc["rate_limits"]["spend_limit"] = {
        "used_percentage": 42.5,
        "resets_at": int(datetime(2027, 1, 1).timestamp()),
        "used_usd": 4.25,
        "limit_usd": 10,
        "period": "monthly",
    }
    store_samples(store, [(LAST_NS + S, json.dumps(doc))])
    spend = status(store)["spend_limit"]
    assert (spend["used_percentage"], spend["limit_usd"], spend["source"]) == (42.5, 10, "official")
    assert spend["window_start"] == int(datetime(2026, 12, 1).timestamp())
    assert spend["cost_usd"] == 0.042714  # the requests since the month began
    assert spend["forecast"] == "not enough data"  # one sample
