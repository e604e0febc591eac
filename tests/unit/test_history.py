"""Cost history (`core.queries.history`) and the local calendar it is cut by (`periods`): cost per
day, week and month by model and the top projects, against every capture's `api_request`
records (their own times and costs), and days across a daylight-saving change."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime

import pytest

from claude_top.core.queries import periods
from claude_top.core.queries.history import cost_history, top_projects
from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.sources.statusline.store import store_samples
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from truth import (
    GRPC_FIXTURES,
    STATUSLINE_CAPTURE,
    api_request_records,
    grpc_requests,
    statusline_samples,
)

S = 10**9
CAPTURES = (*GRPC_FIXTURES, STATUSLINE_CAPTURE)
NOW_NS = int(datetime(2026, 12, 5, 12, 0).timestamp()) * S  # after every capture (UTC)


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def store(utc):
    s = Store.open(":memory:")
    for name in CAPTURES:
        for signal, body in grpc_requests(name):
            write_rows(s, [decode_protobuf(signal, body)])
    store_samples(s, [(r, t) for r, t, _ in statusline_samples()])
    yield s
    s.close()


def truth_by(period_of) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = defaultdict(float)
    for name in CAPTURES:
        for a in api_request_records(name):
            out[(period_of(a["_t"] // S), a["model"])] += float(a["cost_usd"])
    return {k: round(v, 9) for k, v in out.items()}


@pytest.mark.parametrize(
    ("period", "count", "label_of"),
    [
        ("day", 30, lambda t: datetime.fromtimestamp(t).strftime("%Y-%m-%d")),
        ("week", 12, lambda t: "{}-W{:02d}".format(*datetime.fromtimestamp(t).isocalendar()[:2])),
        ("month", 12, lambda t: datetime.fromtimestamp(t).strftime("%Y-%m")),
    ],
)
def test_cost_per_period_by_model_is_the_sum_of_the_requests(store, period, count, label_of):
    with store.reading() as cur:
        h = cost_history(cur, period, count, NOW_NS)
    assert len(h.labels) == count
    assert h.labels[-1] == label_of(NOW_NS // S)
    got = {
        (h.labels[i], model): round(costs[i], 9)
        for model, costs in h.cost.items()
        for i in range(count)
        if costs[i]
    }
    assert got == truth_by(label_of)
    assert h.models == sorted(h.models, key=lambda m: -sum(h.cost[m]))
    total = sum(float(a["cost_usd"]) for name in CAPTURES for a in api_request_records(name))
    assert round(h.total, 9) == round(total, 9)
    assert sum(h.requests) == sum(len(api_request_records(name)) for name in CAPTURES)


def test_a_range_that_ends_before_the_captures_is_empty_but_listed(store):
    with store.reading() as cur:
        h = cost_history(cur, "day", 7, int(datetime(2026, 11, 1).timestamp()) * S)
    assert len(h.labels) == 7 and h.total == 0 and h.models == []


def test_top_projects_take_the_status_lines_working_directory(store):
    with store.reading() as cur:
        rows = top_projects(cur, 0, NOW_NS)
    by_project = {r["project"]: r for r in rows}
    limits = api_request_records(STATUSLINE_CAPTURE)
    others = [a for name in GRPC_FIXTURES for a in api_request_records(name)]
    doc = statusline_samples()[-1][2]
    mine = by_project[doc["workspace"]["project_dir"]]
    assert mine["cost_usd"] == round(sum(float(a["cost_usd"]) for a in limits), 9)
    assert (mine["requests"], mine["sessions"]) == (len(limits), 1)
    unknown = by_project["(unknown)"]
    assert unknown["cost_usd"] == round(sum(float(a["cost_usd"]) for a in others), 9)
    assert unknown["requests"] == len(others)
    assert [r["cost_usd"] for r in rows] == sorted((r["cost_usd"] for r in rows), reverse=True)


def test_days_across_a_daylight_saving_change(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        noon_after = datetime(2026, 10, 26, 12).timestamp()
        days = periods.last_periods("day", 3, noon_after)
        lengths = [(end - start) / 3600 for start, end in days]
        assert [periods.label("day", s) for s, _ in days] == [
            "2026-10-24",
            "2026-10-25",
            "2026-10-26",
        ]
        assert lengths == [24, 25, 24]
        march = periods.last_periods("day", 1, datetime(2026, 3, 29, 12).timestamp())
        assert (march[0][1] - march[0][0]) / 3600 == 23
        (week,) = periods.last_periods("week", 1, noon_after)
        assert datetime.fromtimestamp(week[0]) == datetime(2026, 10, 26)
        (month,) = periods.last_periods("month", 1, noon_after)
        assert datetime.fromtimestamp(month[0]) == datetime(2026, 10, 1)
        assert datetime.fromtimestamp(month[1]) == datetime(2026, 11, 1)
    finally:
        monkeypatch.undo()
        time.tzset()
