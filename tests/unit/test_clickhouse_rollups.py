"""The per-hour rollups (`claude-top team-tables`) give the sessions pane and the overview what
the typed tables give, over windows that start mid-hour, on the hour or nowhere, when the
collector inserted rows twice, when the duplicates arrive after an hour was found exact, and
when the rollups are added beside typed tables made earlier. Real ClickHouse (chdb), rows
generated as the benchmark's: 6,000 events of 12 sessions over two days, half inserted before
the tables were made and half through their views."""

from __future__ import annotations

import math
import time

import pytest

import clickhouse_rows as cr
import clickhouse_synthetic as synthetic
from claude_top.core.queries.clickhouse import ChdbRunner, ClickHouseSource, rollups
from claude_top.core.queries.clickhouse.rollups import (
    EVENT_MODELS,
    EVENT_SESSIONS,
    EVENT_TOOLS,
    SPAN_SESSIONS,
    Verified,
)
from claude_top.core.queries.clickhouse.tables import statements
from claude_top.core.queries.filters import Filter
from claude_top.core.queries.groups import group_sessions
from clickhouse_http import ClickHouseHTTP

N = 6000
SPAN_S = 2 * 86400
START = synthetic.START_NS
NOW = START + SPAN_S * 10**9
HOUR = 3600 * 10**9
ROLLUPS = {EVENT_SESSIONS.name, SPAN_SESSIONS.name, EVENT_MODELS.name, EVENT_TOOLS.name}


def team(rollups_later: bool = False) -> tuple[ClickHouseSource, ClickHouseSource, object, str]:
    """(through the rollups, through the typed tables only, chdb session, database)."""
    session, db = cr.session(), cr.new_database("rollup")
    cr.create_tables(session, "current", db)
    synthetic.insert(session, N, db, 0, N // 2, START, SPAN_S)
    made = ClickHouseSource(ChdbRunner(session, db), "chdb")
    for what, sql in statements(made.layout):
        if not (rollups_later and what.split()[-1].removesuffix("_mv") in ROLLUPS):
            session.query(sql)
    if rollups_later:
        typed = ClickHouseSource(ChdbRunner(session, db), "chdb")
        assert typed.layout.rollups == set()
        todo = statements(typed.layout)
        assert [w for w, _ in todo if w.startswith("fill")] == [
            f"fill {EVENT_SESSIONS.name}",
            f"fill {EVENT_MODELS.name}",
            f"fill {EVENT_TOOLS.name}",
            f"fill {SPAN_SESSIONS.name}",
        ]
        for _, sql in todo:
            session.query(sql)
    collector_inserts(session, db, N // 2, N)
    rolled = ClickHouseSource(ChdbRunner(session, db), "rolled")
    plain = ClickHouseSource(ChdbRunner(session, db), "typed")
    plain.layout.rollups = set()
    assert rolled.layout.rollups == ROLLUPS
    return rolled, plain, session, db


def collector_inserts(session, db: str, lo: int, hi: int) -> None:
    """Events lo..hi inserted as a collector does: on a connection of its own, with the
    server's default settings (the views' SQL must not rely on the reader's)."""
    session.query("SET prefer_column_name_to_alias = 0")
    try:
        synthetic.insert(session, N, db, lo, hi, START, SPAN_S)
    finally:
        session.query("SET prefer_column_name_to_alias = 1")


def same(a, b) -> None:
    """Equal, but for float sums taken in another order (within 1e-12)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), (a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
    else:
        assert a == b


def windows() -> list[Filter]:
    mid_hour = START + 13 * HOUR + (17 * 60 + 3) * 10**9
    on_hour = START + 30 * HOUR - START % HOUR
    sid = "s-3"
    step = SPAN_S * 10**9 // N
    no_prompt = START + (500 * 3 + 485) * step  # s-3's last 15 events: no prompt among them
    return [
        Filter(since_ns=no_prompt),
        Filter(),
        Filter.for_window((NOW - mid_hour) // 10**9, NOW),
        Filter.for_window((NOW - on_hour) // 10**9, NOW),
        Filter.for_window(3 * SPAN_S, NOW),
        Filter.for_window(60, NOW + 3600 * 10**9),
        Filter(session_id=sid),
        Filter(agent="claude-code", since_ns=mid_hour),
        Filter(text="opus", since_ns=mid_hour),
    ]


def assert_same_panes(rolled: ClickHouseSource, plain: ClickHouseSource) -> None:
    with rolled.reader() as r, plain.reader() as p:
        for f in windows():
            rs, ps = r.sessions(f, NOW), p.sessions(f, NOW)
            same(rs, ps)
            same(r.overview(f), p.overview(f))
            same(r.models(f), p.models(f))
            for key in ("team", "user.email", "workflow_id", "absent"):
                same(r.models_by(f, key), p.models_by(f, key))
                # grouped in ClickHouse as group_sessions groups the rows (resources by id
                # through the rollups, as Maps through the typed tables)
                grouped = group_sessions(rs, key)
                assert sum(g["sessions"] for g in grouped) == sum(s["has_work"] for s in rs)
                same(r.session_groups(f, key, NOW), grouped)
                same(p.session_groups(f, key, NOW), grouped)
            tools = r.tools(f)
            same(tools, p.tools(f))
            for t in tools:
                rd, pd = r.tool_durations(f, t["tool_name"]), p.tool_durations(f, t["tool_name"])
                assert sorted(rd) == sorted(pd) and len(rd) > 0
            if rs:  # the typed tables' custom keys are the window's; every resource's here
                same(r.group_keys(f), p.group_keys(f))
        assert len(r.sessions(Filter(), NOW)) == N // 500
        teams = {m["grp"] for m in r.models_by(Filter(), "team")}
        assert teams == {"red", "blue", "green", "gold"}
        assert sum(m["api_requests"] for m in r.models(Filter())) == N * 7 // len(synthetic.KINDS)
        results = N * 6 // len(synthetic.KINDS)
        assert sum(t["calls"] for t in r.tools(Filter())) == results
        assert r.group_keys(Filter()) == [
            "user.email",
            "organization.id",
            "stage",
            "team",
            "workflow_id",
        ]


@pytest.fixture(scope="module")
def made():
    return team()


def test_the_rollups_give_what_the_typed_tables_give(made):
    rolled, plain, _, _ = made
    assert_same_panes(rolled, plain)
    exact = rolled.verified.exact[EVENT_SESSIONS.name]
    assert len(exact) == SPAN_S // 3600 + 1  # every hour holding events, each checked once
    assert sum(exact.values()) == N
    assert sum(rolled.verified.exact[SPAN_SESSIONS.name].values()) == N * 3 // 10


def test_an_hour_inserted_twice_is_read_from_the_typed_rows():
    rolled, plain, session, db = team()
    assert_same_panes(rolled, plain)
    step = SPAN_S * 10**9 // N
    lo = 2000  # a retry of events 2000..2100 (their hours were found exact above)
    collector_inserts(session, db, lo, lo + 100)
    assert_same_panes(rolled, plain)
    hours = {(START + i * step) // HOUR * 3600 for i in range(lo, lo + 100)}
    exact = rolled.verified.exact[EVENT_SESSIONS.name]
    assert hours and not hours & exact.keys()
    assert len(exact) == SPAN_S // 3600 + 1 - len(hours)
    with rolled.reader() as r, plain.reader() as p:
        assert r.overview(Filter())["events_total"] == N
        same(r.sessions(Filter(), NOW), p.sessions(Filter(), NOW))


def test_rollups_added_beside_earlier_typed_tables_are_filled_from_them():
    rolled, plain, _, _ = team(rollups_later=True)
    assert_same_panes(rolled, plain)
    assert sum(rolled.verified.exact[EVENT_SESSIONS.name].values()) == N


def test_a_rollup_of_another_version_is_named_and_not_read():
    _, plain, session, db = team()
    session.query(f"ALTER TABLE {db}.{SPAN_SESSIONS.name} DROP COLUMN retries_state")
    source = ClickHouseSource(ChdbRunner(session, db), "chdb")
    assert source.layout.rollups == ROLLUPS - {SPAN_SESSIONS.name}
    assert (
        f"{SPAN_SESSIONS.name} lacks retries_state (made by another claude-top version; "
        "claude-top team-tables --rebuild makes today's): not read"
    ) in source.describe()
    assert_same_panes(source, plain)


def test_a_session_only_metric_points_name_keeps_their_resource():
    """Its resource is in no typed table (so not in claude-top's resources table): it is read
    by id from the exporter's metric table, as the typed-only path reads the Map."""
    rolled, plain, session, db = team()
    after = NOW + HOUR
    session.query(
        f"""INSERT INTO {db}.otel_metrics_sum (ResourceAttributes, ScopeName, ServiceName,
  MetricName, Attributes, StartTimeUnix, TimeUnix, Value, AggregationTemporality, IsMonotonic)
VALUES (map('service.name', 'claude-code', 'team', 'night'), 'com.anthropic.claude_code',
  'claude-code', 'claude_code.cost.usage', map('session.id', 'metric-only'),
  fromUnixTimestamp64Nano({after}), fromUnixTimestamp64Nano({after + 10**9}), 0.25, 1, true)"""
    )
    for f in (Filter(), Filter.for_window(60, after + 30 * 10**9)):
        with rolled.reader() as r, plain.reader() as p:
            rs = [x for x in r.sessions(f, after) if x["session_id"] == "metric-only"]
            same(rs, [x for x in p.sessions(f, after) if x["session_id"] == "metric-only"])
        assert len(rs) == 1
        assert rs[0]["resource_attributes"] == '{"service.name":"claude-code","team":"night"}'
        assert rs[0]["custom"] == {"team": "night"}
        assert rs[0]["metric_cost_usd"] == 0.25
        assert rs[0]["first_seen_ns"] == rs[0]["last_seen_ns"] == after + 10**9


def test_the_team_server_over_http_gives_the_same_panes(made):
    """Through clickhouse-connect (what a lead runs): the same rows, resources asked by id."""
    rolled, _, _, db = made
    with ClickHouseHTTP({"lead": "pw"}) as ch:
        team_http = ClickHouseSource.open(f"clickhouse://lead:pw@127.0.0.1:{ch.port}/{db}")
        try:
            assert team_http.layout.rollups == ROLLUPS
            with team_http.reader() as h, rolled.reader() as r:
                for f in windows()[:3]:
                    same(h.sessions(f, NOW), r.sessions(f, NOW))
                    same(h.models_by(f, "team"), r.models_by(f, "team"))
                    for key in ("team", "user.email"):
                        same(h.session_groups(f, key, NOW), r.session_groups(f, key, NOW))
                    same(h.tools(f), r.tools(f))
            assert len(team_http.verified.resources) == N // 500 + 1  # a person each, the spans'
            held = set(team_http.verified.resources)
            ids = set(range(2**63, 2**63 + 400))  # ids as long as cityHash64's: a long query
            many = rollups.resources(team_http.runner, f"`{db}`", ids | held, Verified())
            assert many == team_http.verified.resources  # an id not held is left out
        finally:
            team_http.close()


def test_a_refresh_checks_each_rollup_once(made):
    """The panes of one refresh (one reader) share each rollup's check of the window."""
    rolled, _, _, _ = made
    asked: list[str] = []
    with rolled.reader() as r:
        query = r.runner.query

        def counting(sql, params=None):
            asked.append(sql)
            return query(sql, params)

        r.runner.query = counting
        try:
            f = windows()[1]
            r.overview(f)
            r.sessions(f, NOW)
            r.grouped(f, "team", NOW)
            r.group_keys(f)
        finally:
            r.runner.query = query
    checks = [q for q in asked if "countMerge(rows_state) AS n" in q]
    assert len(checks) == 3  # events and spans (overview), models (grouped): none twice


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_the_cost_history_from_the_rollup_is_the_typed_rows(made, tz, monkeypatch):
    """Whole hours from the models rollup, the hour holding "now" (records after it left out)
    from the typed rows: the same periods, costs, requests and tokens; in a time zone whose
    days start on the half hour, every quarter hour from the typed rows."""
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        _same_cost_history(*made[:2])
    finally:
        monkeypatch.undo()
        time.tzset()


def _same_cost_history(rolled, plain) -> None:
    mid = START + 13 * HOUR + (17 * 60 + 3) * 10**9  # records after it are not counted
    with rolled.reader() as r, plain.reader() as p:
        for now in (NOW, mid, START + 30 * HOUR - START % HOUR):
            for period, count in (("day", 30), ("week", 13), ("month", 12), ("day", 1)):
                rh, ph = r.cost_history(period, count, now), p.cost_history(period, count, now)
                assert (rh.labels, rh.starts, rh.models) == (ph.labels, ph.starts, ph.models)
                assert (rh.requests, rh.tokens) == (ph.requests, ph.tokens)
                for m in ph.models:
                    same(rh.cost[m], ph.cost[m])
            assert 0 < sum(ph.requests) < N
    with rolled.reader() as r:
        requests = N // synthetic.PER_PROMPT * synthetic.KINDS.count("api_request")
        assert sum(r.cost_history("month", 12, NOW).requests) == requests
