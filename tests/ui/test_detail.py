"""Enter on a tool lists its calls, slowest first; Enter on a model lists its requests, newest
first; Enter on either opens that call's turn."""

from __future__ import annotations

import json

import pytest
from uihelpers import make_app, settle

from claude_top.ui.screens.detail import DetailScreen
from claude_top.ui.screens.main import MainScreen
from claude_top.ui.screens.spantree import SpanTreeScreen
from truth import GRPC_FIXTURES, Truth

TRUTH = Truth(*GRPC_FIXTURES)
SIZES = [(120, 40), (80, 24)]
IDS = ["120x40", "80x24"]


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_enter_on_a_tool_lists_its_calls_slowest_first(ui_store, size):
    calls = sorted(
        (e for e in TRUTH.tool_results() if e["tool_name"] == "Bash"),
        key=lambda e: -float(e["duration_ms"]),
    )
    app = make_app(ui_store)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("2")
        assert app.main.table("tools").select_key("Bash")
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailScreen) and (screen.kind, screen.subject) == (
            "calls",
            "Bash",
        )
        rows = screen.table.rows_in_order()
        assert [r["duration_ms"] for r in rows] == [float(e["duration_ms"]) for e in calls]
        assert [r["session_id"] for r in rows] == [e["session.id"] for e in calls]
        commands = [json.loads(e["tool_input"])["command"] for e in calls]
        keys = screen.table.keys_in_order()
        assert [screen.table.get_cell(k, "input").plain for k in keys] == commands
        failed = [e for e in calls if e["success"] == "false"]
        assert [r["error"] for r in rows if r["success"] is False] == [e["error"] for e in failed]
        assert "calls of Bash, slowest first" in str(screen.query_one("#detail-pane").border_title)
        await pilot.press("enter")  # the slowest call's turn
        await settle(pilot)
        assert isinstance(app.screen, SpanTreeScreen)
        assert app.screen.turn["key"] == calls[0]["prompt.id"]
        assert app.screen.roots
        (prompt,) = [
            e["prompt"]
            for e in TRUTH.events
            if e["event.name"] == "user_prompt" and e["prompt.id"] == calls[0]["prompt.id"]
        ]
        assert prompt in str(app.screen.query_one("#tree-title").render())
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, MainScreen)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_enter_on_a_model_lists_its_requests_newest_first(ui_store, size):
    requests = sorted(
        (e for e in TRUTH.api_requests() if e["model"] == "claude-opus-5-5"),
        key=lambda e: e["event.timestamp"],
        reverse=True,
    )
    app = make_app(ui_store)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("3")
        assert app.main.table("models").select_key("claude-opus-5-5")
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.kind == "requests"
        rows = screen.table.rows_in_order()
        assert [r["cost_usd"] for r in rows] == [float(e["cost_usd"]) for e in requests]
        assert [r["input_tokens"] for r in rows] == [e["input_tokens"] for e in requests]
        assert "requests to opus-5-5, newest first" in str(
            screen.query_one("#detail-pane").border_title
        )
