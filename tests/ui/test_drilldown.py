"""Session -> turns -> span tree -> attributes, from spans and from events alone."""

from __future__ import annotations

from textual.color import Color
from uihelpers import make_app, pin_received, settle, shown

from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from claude_top.ui.panes.turns import TurnsTable
from claude_top.ui.screens.main import MainScreen
from claude_top.ui.screens.session import SessionScreen
from claude_top.ui.screens.spantree import AttributesScreen, SpanTree, SpanTreeScreen
from truth import GRPC_FIXTURES, Truth, grpc_requests


def _tree_nodes(tree: SpanTree) -> list:
    out = []

    def walk(node):
        for child in node.children:
            out.append(child)
            walk(child)

    walk(tree.root)
    return out


async def _open_session(pilot, session_id: str) -> None:
    app = pilot.app
    await settle(pilot)
    assert app.main.table("sessions").select_key(session_id)
    await pilot.press("1", "enter")
    await settle(pilot)
    assert isinstance(app.screen, SessionScreen)
    assert app.screen.session_id == session_id


async def test_errors_turn_marks_failing_bash_and_retried_request(ui_store):
    truth = Truth("errors.grpc")
    (session_id,) = truth.sessions()
    failed = [s for s in truth.spans if s["_status"] == "STATUS_CODE_ERROR"]
    assert [s["_name"] for s in failed] == ["claude_code.tool.execution"]
    retried = [s for s in truth.spans if s.get("attempt") == 2]
    assert [s["_name"] for s in retried] == ["claude_code.llm_request"]

    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_session(pilot, session_id)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SpanTreeScreen)
        assert screen.source == "spans"
        nodes = _tree_nodes(screen.query_one(SpanTree))
        by_span = {n.data.attributes.get("span_id"): n for n in nodes}
        assert len(nodes) == len(truth.spans)
        assert set(by_span) == {s["_span_id"] for s in truth.spans}

        error_colour = Color.parse(app.theme_variables["error"]).rich_color
        failing = by_span[failed[0]["_span_id"]]
        assert failing.label.plain.startswith("✗ execution")
        assert failing.label.style.color == error_colour
        assert failing.parent.data.kind == "tool"
        assert failing.parent.data.attributes["tool_name"] == "Bash"
        marked = [n for n in nodes if n.label.plain.startswith("✗")]
        assert marked == [failing]
        assert all(n.label.style.color != error_colour for n in nodes if n is not failing)

        retry = by_span[retried[0]["_span_id"]]
        assert "llm_request claude-opus-5-5 attempt 2" in retry.label.plain
        assert retry.parent.data.kind == "interaction"

        tree = screen.query_one(SpanTree)
        tree.move_cursor(failing)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AttributesScreen)
        attrs = app.screen.node.attributes
        assert attrs["span_id"] == failed[0]["_span_id"]
        assert attrs["error"] == "Shell command failed"
        assert attrs["status_code"] == 2
        for _ in range(3):
            await pilot.press("escape")
            await pilot.pause()
        assert isinstance(app.screen, MainScreen)


async def test_continued_session_shows_two_turns(ui_store):
    truth = Truth("continued.grpc")
    prompts = [e for e in truth.events if e["event.name"] == "user_prompt"]
    session_id = prompts[0]["session.id"]
    assert len({e["prompt.id"] for e in prompts}) == 2

    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_session(pilot, session_id)
        table = app.screen.query_one(TurnsTable)
        assert table.row_count == 2
        for i, e in enumerate(prompts, 1):
            key = e["prompt.id"]
            assert shown(table, key, "n") == str(i)
            assert shown(table, key, "prompt") == e["prompt"]
            assert shown(table, key, "source") == "spans"
            per_turn = [a for a in truth.api_requests(session_id) if a["prompt.id"] == key]
            assert (
                shown(table, key, "cost") == f"${sum(float(a['cost_usd']) for a in per_turn):.4f}"
            )
        summary = app.screen.query_one("#session-summary").render()
        assert "2 prompts" in str(summary)
        assert f"${truth.cost(session_id):.4f}" in str(summary)


async def test_tree_from_events_when_no_spans():
    store = Store.open(":memory:")
    for name in GRPC_FIXTURES:
        for signal, body in grpc_requests(name):
            if signal != "traces":
                write_rows(store, [decode_protobuf(signal, body)])
    pin_received(store)
    truth = Truth("basic.grpc")
    (session_id,) = truth.sessions()
    tools = [e["tool_name"] for e in truth.tool_results()]
    app = make_app(store)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await _open_session(pilot, session_id)
            table = app.screen.query_one(TurnsTable)
            (key,) = table.keys_in_order()
            assert shown(table, key, "source") == "events"
            await pilot.press("enter")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, SpanTreeScreen)
            assert screen.source == "events"
            assert "built from events" in str(screen.query_one("#tree-source").render())
            tree = screen.query_one(SpanTree)
            (root,) = tree.root.children
            assert root.data.kind == "interaction"
            kinds = [c.data.kind for c in root.children]
            assert kinds.count("llm_request") == len(truth.api_requests())
            tool_nodes = [c for c in root.children if c.data.kind == "tool"]
            assert [n.label.plain.split()[1] for n in tool_nodes] == tools
            for node in tool_nodes:
                assert [c.data.kind for c in node.children] == ["blocked_on_user", "execution"]
            assert not any(n.data.is_error for n in _tree_nodes(tree))
    finally:
        store.close()


async def test_error_colour_follows_the_theme(ui_store):
    (session_id,) = Truth("errors.grpc").sessions()
    app = make_app(ui_store)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_session(pilot, session_id)
        await pilot.press("enter")
        await settle(pilot)
        app.theme = "textual-light"
        await pilot.pause()
        (failing,) = [n for n in _tree_nodes(app.screen.query_one(SpanTree)) if n.data.is_error]
        assert failing.label.style.color == Color.parse(app.theme_variables["error"]).rich_color
        sessions_errors = app.main.table("sessions").get_cell(session_id, "errors")
        assert sessions_errors.style.color == Color.parse(app.theme_variables["error"]).rich_color
