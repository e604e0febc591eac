"""Snapshots of every pane and screen at 120x40 and 80x24 (plus a 60-column split).

Deterministic: the clock is pinned, receive times are the telemetry's own, no receivers (so
no ports or rates in the header). Regenerate with `pytest tests/ui --snapshot-update`.
"""

from __future__ import annotations

import pytest
from uihelpers import AFTER_CAPTURES_NS, make_app, settle

from claude_top.core.store.database import Store
from truth import Truth

WIDE = (120, 40)
TERM = (80, 24)
NARROW = (60, 24)
ERRORS_SESSION = next(iter(Truth("errors.grpc").sessions()))
CONTINUED_SESSION = "851b8ffd-2541-408a-9c22-e285d2e26c58"


def steps(*actions):
    """A `run_before`: wait for data, then each key (or callable) followed by a settle."""

    async def run(pilot) -> None:
        await settle(pilot)
        for action in actions:
            if callable(action):
                action(pilot.app)
            else:
                await pilot.press(action)
            await settle(pilot)

    return run


def select(session_id: str):
    def do(app) -> None:
        assert app.main.table("sessions").select_key(session_id)

    return do


def select_tool(tool: str):
    def do(app) -> None:
        assert app.main.table("tools").select_key(tool)

    return do


@pytest.mark.parametrize("size", [WIDE, TERM, NARROW], ids=["120x40", "80x24", "60x24"])
def test_sessions_pane(snap_compare, ui_store, size):
    assert snap_compare(make_app(ui_store), terminal_size=size, run_before=steps())


@pytest.mark.parametrize("size", [WIDE, TERM], ids=["120x40", "80x24"])
def test_mixed_agents(snap_compare, mixed_store, size):
    """Claude Code, Gemini CLI and Codex CLI sessions in one list; Codex's cost estimated."""
    app = make_app(mixed_store, clock=lambda: AFTER_CAPTURES_NS)
    assert snap_compare(app, terminal_size=size, run_before=steps())


@pytest.mark.parametrize("size", [WIDE, TERM], ids=["120x40", "80x24"])
def test_tools_pane(snap_compare, ui_store, size):
    run = steps("2", select_tool("Glob"))
    assert snap_compare(make_app(ui_store), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", [WIDE, TERM], ids=["120x40", "80x24"])
def test_models_pane(snap_compare, ui_store, size):
    assert snap_compare(make_app(ui_store), terminal_size=size, run_before=steps("3"))


@pytest.mark.parametrize("size", [WIDE, TERM], ids=["120x40", "80x24"])
def test_turns_pane(snap_compare, ui_store, size):
    run = steps(select(CONTINUED_SESSION), "4")
    assert snap_compare(make_app(ui_store), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", [WIDE, TERM], ids=["120x40", "80x24"])
def test_session_screen(snap_compare, ui_store, size):
    run = steps(select(CONTINUED_SESSION), "1", "enter")
    assert snap_compare(make_app(ui_store), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", [WIDE, TERM], ids=["120x40", "80x24"])
def test_span_tree(snap_compare, ui_store, size):
    run = steps(select(ERRORS_SESSION), "1", "enter", "enter", "j", "j", "j", "j")
    assert snap_compare(make_app(ui_store), terminal_size=size, run_before=run)


def test_attributes_screen(snap_compare, ui_store):
    run = steps(select(ERRORS_SESSION), "1", "enter", "enter", "j", "j", "j", "j", "enter")
    assert snap_compare(make_app(ui_store), terminal_size=TERM, run_before=run)


def test_help_screen(snap_compare, ui_store):
    assert snap_compare(make_app(ui_store), terminal_size=TERM, run_before=steps("question_mark"))


def test_filter_and_pause(snap_compare, ui_store):
    run = steps("2", "slash", "b", "a", "s", "h", "enter", "p")
    assert snap_compare(make_app(ui_store), terminal_size=TERM, run_before=run)


@pytest.mark.parametrize("size", [WIDE, TERM], ids=["120x40", "80x24"])
def test_connect_view_when_nothing_arrived(snap_compare, size):
    store = Store.open(":memory:")
    try:
        assert snap_compare(make_app(store), terminal_size=size, run_before=steps())
    finally:
        store.close()


@pytest.mark.parametrize("size", [WIDE, TERM], ids=["120x40", "80x24"])
def test_sessions_sorted_by_cost(snap_compare, ui_store, size):
    assert snap_compare(make_app(ui_store), terminal_size=size, run_before=steps("1", "s", "s"))


@pytest.mark.parametrize("size", [WIDE, TERM], ids=["120x40", "80x24"])
def test_tool_calls_screen(snap_compare, ui_store, size):
    run = steps("2", select_tool("Bash"), "enter")
    assert snap_compare(make_app(ui_store), terminal_size=size, run_before=run)
