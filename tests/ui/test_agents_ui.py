"""Claude Code, Gemini CLI and Codex CLI side by side in the panes: the Agent column, the agent
key (`f`), estimated costs marked as such, and the "not understood" tally."""

from __future__ import annotations

from uihelpers import AFTER_CAPTURES_NS, make_app, pin_received, settle, shown

from claude_top.core import format as fmt
from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from truth import (
    OTHER_AGENT_CAPTURES,
    agent_sessions,
    stranger_logs,
)

SESSIONS = {
    sid: agent
    for agent, path in OTHER_AGENT_CAPTURES.items()
    for sid in agent_sessions(agent, path)
}


def mixed_app(store: Store):
    return make_app(store, clock=lambda: AFTER_CAPTURES_NS)


async def test_every_session_names_its_agent_and_marks_estimated_costs(mixed_store):
    app = mixed_app(mixed_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.main.table("sessions")
        agents = {k: shown(table, k, "agent") for k in table.keys_in_order()}
        assert {agents[sid] for sid in SESSIONS} == {"gemini", "codex"}
        assert {a for sid, a in agents.items() if sid not in SESSIONS} == {"claude"}
        for sid, agent in SESSIONS.items():
            want = agent_sessions(agent, OTHER_AGENT_CAPTURES[agent])[sid]
            assert shown(table, sid, "api") == fmt.count(want["api_requests"])
            assert shown(table, sid, "in") == fmt.count(want["input_tokens"])
            assert shown(table, sid, "tools") == fmt.count(want["tool_calls"])
            assert shown(table, sid, "errors") == fmt.count(want["tool_errors"])
            cost = shown(table, sid, "cost")
            # Codex's costs are estimates from the price table; gemini-3.x has no price there
            assert cost.startswith("~$") if agent == "codex" else cost == "?"
        subtitle = str(app.main.query_one("#sessions-pane").border_subtitle)
        assert "estimated)" in subtitle and "not understood" not in subtitle


async def test_the_agent_key_keeps_one_agent_in_every_pane(mixed_store):
    app = mixed_app(mixed_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        sessions = app.main.table("sessions")
        seen = []
        for _ in range(4):
            await pilot.press("f")
            await settle(pilot)
            keys = sessions.keys_in_order()
            seen.append((app.agent, len(keys)))
            if app.agent == "codex":
                (codex,) = [s for s, a in SESSIONS.items() if a == "codex"]
                assert keys == [codex]
                assert app.main.table("tools").keys_in_order() == ["exec_command"]
                assert app.main.table("models").keys_in_order() == ["gpt-5-codex"]
                header = app.main.query_one("#header")
                assert "agent codex" in "".join(t.plain for _, t in header.parts())
        assert seen == [("claude-code", 3), ("codex", 1), ("gemini-cli", 1), (None, 5)]


async def test_records_not_understood_are_counted_on_screen(mixed_store):
    write_rows(mixed_store, [decode_protobuf("logs", stranger_logs("some-agent", "x", 3))])
    pin_received(mixed_store)
    app = mixed_app(mixed_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        subtitle = str(app.main.query_one("#sessions-pane").border_subtitle)
        assert "3 records not understood" in subtitle
