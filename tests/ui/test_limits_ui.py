"""The limits strip, the limits view (`l`), the cost history (`h`) and the alerts, on the real
interactive capture (its telemetry and status-line samples) with the clock pinned 12 s after
the last sample; snapshots at 120x40 and 80x24. Numbers are checked against the capture."""

from __future__ import annotations

import csv
import json
import time

import pytest
from uihelpers import make_app, pin_received, settle

from claude_top.core.budgets import LimitSettings
from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.sources.statusline.store import store_samples
from claude_top.core.store.commit import write_rows
from claude_top.ui.panes.header import HeaderBar
from claude_top.ui.panes.limits import LimitsStrip
from claude_top.ui.screens.history import HistoryScreen
from claude_top.ui.screens.limits import LimitsScreen
from truth import (
    GRPC_FIXTURES,
    STATUSLINE_CAPTURE,
    api_request_records,
    grpc_requests,
    statusline_samples,
)

S = 10**9
SAMPLES = statusline_samples()
AT = SAMPLES[-1][0] + 12 * S
WIDE = (120, 40)
TERM = (80, 24)
SIZES = pytest.mark.parametrize("size", [WIDE, TERM], ids=["120x40", "80x24"])


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Local time is UTC: periods, clock times and dates in the snapshots are fixed."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def limits_store(fixture_store):
    """Every capture, and the interactive one's status-line samples as they arrived."""
    for signal, body in grpc_requests(STATUSLINE_CAPTURE):
        write_rows(fixture_store, [decode_protobuf(signal, body)])
    pin_received(fixture_store)
    store_samples(fixture_store, [(r, t) for r, t, _ in SAMPLES])
    return fixture_store


def app_at(store, **kw):
    return make_app(store, clock=lambda: AT, **kw)


def steps(*keys):
    async def run(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


# --- snapshots -----------------------------------------------------------------------------


@SIZES
def test_main_view_with_the_limits_strip(snap_compare, limits_store, size):
    assert snap_compare(app_at(limits_store), terminal_size=size, run_before=steps())


@SIZES
def test_limits_view(snap_compare, limits_store, size):
    settings = LimitSettings(budgets={"month": 2.0}, alert_at=(95.0,))
    app = app_at(limits_store, limits=settings)
    assert snap_compare(app, terminal_size=size, run_before=steps("l"))


@SIZES
def test_history_view(snap_compare, limits_store, size):
    assert snap_compare(app_at(limits_store), terminal_size=size, run_before=steps("h"))


def test_history_by_week(snap_compare, limits_store):
    assert snap_compare(app_at(limits_store), terminal_size=WIDE, run_before=steps("h", "w", "t"))


# --- what they say -------------------------------------------------------------------------


async def test_the_strip_says_what_the_last_sample_says(limits_store):
    app = app_at(limits_store)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        strip = app.main.query_one(LimitsStrip)
        assert strip.display
        text = strip.render().plain
        assert text.startswith(" 5h 61% ██████░░░░ ↻3h12m")
        assert "7d 38% ████░░░░░░ ↻2d18h" in text
        assert "ctx 1%" in text and "cache 4m" in text


async def test_no_strip_without_limits_or_samples(fixture_store):
    async with make_app(pin_received(fixture_store)).run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert pilot.app.limits_monitor.state is not None
        assert not pilot.app.main.query_one(LimitsStrip).display


async def test_the_limits_view_shows_the_exact_window_cost(limits_store):
    app = app_at(limits_store)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, LimitsScreen)
        view = app.screen.query_one("#limits-view")
        text = "\n".join(str(r) for r in view.content.renderables)
        cost = sum(float(a["cost_usd"]) for a in api_request_records())
        assert f"${cost:.4f} · 9 requests" in text
        assert "61%  official, 12s ago · resets in 3h12m (Sat 09:00)" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, LimitsScreen)


async def test_history_keys_and_export(limits_store, tmp_path):
    app = app_at(limits_store, export_dir=tmp_path)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        assert (screen.data.query.range_days, screen.data.query.period) == (30, "day")
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        assert (screen.data.query.range_days, screen.data.query.period) == (90, "month")
        assert screen.data.history.labels == ["2026-10", "2026-11", "2026-12"]
        await pilot.press("ctrl+s")
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
    (folder,) = tmp_path.iterdir()
    with open(folder / "cost_by_month_and_model.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    want: dict[tuple[str, str], float] = {}
    for name in (*GRPC_FIXTURES, STATUSLINE_CAPTURE):
        for a in api_request_records(name):
            month = time.strftime("%Y-%m", time.gmtime(a["_t"] // S))
            want[(month, a["model"])] = want.get((month, a["model"]), 0.0) + float(a["cost_usd"])
    got = {(r["period"], r["model"]): float(r["cost_usd"]) for r in rows}
    assert got == {k: round(v, 9) for k, v in want.items()}
    with open(folder / "top_projects.csv", newline="") as fh:
        projects = {r["project"]: float(r["cost_usd"]) for r in csv.DictReader(fh)}
    limits_cost = sum(float(a["cost_usd"]) for a in api_request_records())
    assert projects[SAMPLES[-1][2]["workspace"]["project_dir"]] == round(limits_cost, 9)


async def test_history_says_when_the_range_holds_no_request(limits_store):
    """A year after the capture the 30 and 90 days hold no request: both tables say so; the
    365 days hold them all, and the notes go."""
    app = make_app(limits_store, clock=lambda: AT + 200 * 86400 * S)
    async with app.run_test(size=TERM) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await settle(pilot)
        notes = [app.screen.query_one(f"#history-{n}-empty") for n in ("periods", "projects")]
        for days in (30, 90):
            assert app.screen.data.query.range_days == days
            assert [(str(n.render()), n.display) for n in notes] == [
                (f"No API requests in the last {days} days (t: range).", True)
            ] * 2
            await pilot.press("t")
            await settle(pilot)
        assert app.screen.data.query.range_days == 365
        every = [a for n in (*GRPC_FIXTURES, STATUSLINE_CAPTURE) for a in api_request_records(n)]
        assert sum(app.screen.data.history.requests) == len(every)
        assert [n.display for n in notes] == [False, False]


# --- alerts --------------------------------------------------------------------------------


def _sample(pct: float, after_s: int) -> tuple[int, str]:
    doc = json.loads(SAMPLES[-1][1])
    doc["rate_limits"]["five_hour"]["used_percentage"] = pct
    return SAMPLES[-1][0] + after_s * S, json.dumps(doc)


async def test_each_crossing_alerts_once_in_every_way(limits_store, tmp_path, monkeypatch):
    from claude_top.core import alerts

    told = tmp_path / "alerts.jsonl"
    monkeypatch.setattr(alerts, "notify_send", lambda alert: False)
    settings = LimitSettings(alert_at=(80.0, 95.0), alert_command=f"cat >> {told}; echo >> {told}")
    now = {"t": AT}
    app = make_app(limits_store, clock=lambda: now["t"], limits=settings)
    bells = []
    monkeypatch.setattr(app, "bell", lambda: bells.append(now["t"]))
    async with app.run_test(size=TERM) as pilot:
        await settle(pilot)
        header = app.main.query_one(HeaderBar)
        assert not header.has_class("-warning") and bells == []
        for pct, after_s in ((82, 20), (83, 30), (97, 40)):
            store_samples(limits_store, [_sample(pct, after_s)])
            now["t"] = SAMPLES[-1][0] + (after_s + 1) * S
            app.limits_monitor.load()
            await settle(pilot)
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
            if pct == 82:
                assert header.has_class("-warning") and "⚠ 5h 82%" in header.render().plain
                assert len(bells) == 1
            if pct == 83:
                assert len(bells) == 1  # the same crossing: no second alert
        assert header.has_class("-error") and not header.has_class("-warning")
        assert len(bells) == 2
        given = app.limits_monitor.alerts
        assert [(a.window, a.threshold, a.level) for a in given] == [
            ("five_hour", 80.0, "warning"),
            ("five_hour", 95.0, "error"),
        ]
    for _ in range(100):  # the command runs in a thread
        if told.exists() and len(told.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    sent = [json.loads(line) for line in told.read_text().splitlines() if line.strip()]
    assert [(a["used_percentage"], a["threshold"], a["resets_at"]) for a in sent] == [
        (82, 80, 1796461200),
        (97, 95, 1796461200),
    ]
    assert sent[0]["message"] == "5h limit at 82% (crossed 80%), resets in 3h12m"
    # remembered: a claude-top started again does not alert these crossings again
    again = make_app(limits_store, clock=lambda: now["t"], limits=settings)
    async with again.run_test(size=TERM) as pilot:
        await settle(pilot)
        assert again.limits_monitor.alerts == []
        assert again.main.query_one(HeaderBar).has_class("-error")


def test_terminal_notifications():
    from claude_top.core.alerts import terminal_notification

    assert terminal_notification("t", "b", {"TERM": "xterm-256color"}) is None
    assert (
        terminal_notification("t", "a; b", {"TERM_PROGRAM": "iTerm.app"}) == "\x1b]9;t: a, b\x1b\\"
    )
    assert terminal_notification("t", "b", {"KITTY_WINDOW_ID": "1"}) == "\x1b]99;;t: b\x1b\\"
    assert (
        terminal_notification("t", "b", {"TERM": "foot", "TMUX": "/tmp/x"})
        == "\x1bPtmux;\x1b\x1b]777;notify;t;t: b\x1b\x1b\\\x1b\\"
    )


async def test_a_ui_that_cannot_write_the_alerts_down_gives_each_once(limits_store, monkeypatch):
    """Reading through a source without the store (as a UI attached to an instance does), the
    crossings are remembered in the UI: loading again does not alert them again."""
    from claude_top.core import alerts
    from claude_top.core.queries.reader import LocalSource

    monkeypatch.setattr(alerts, "notify_send", lambda alert: False)
    settings = LimitSettings(alert_at=(80.0, 95.0))
    store_samples(limits_store, [_sample(97, 20)])
    now = SAMPLES[-1][0] + 21 * S
    app = make_app(None, source=LocalSource(limits_store), clock=lambda: now, limits=settings)
    assert not app.remote and app.store is None
    bells = []
    monkeypatch.setattr(app, "bell", lambda: bells.append(1))
    async with app.run_test(size=TERM) as pilot:
        for _ in range(3):
            app.limits_monitor.load()
            await settle(pilot)
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
        given = app.limits_monitor.alerts
        assert [(a.window, a.threshold) for a in given] == [("five_hour", 95.0)]
        assert bells == [1]
