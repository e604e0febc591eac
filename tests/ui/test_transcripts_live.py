"""A session with telemetry off, known from its transcript alone, shows live: lines appended
to the file while the app runs reach the sessions pane and the session's turns."""

from __future__ import annotations

import json
import threading

from uihelpers import settle, shown

from claude_top.core.queries.filters import as_datetime
from claude_top.core.sources.transcripts.parse import parse_time
from claude_top.core.store.database import Store
from claude_top.core.store.tail import TranscriptTail
from claude_top.ui.app import ClaudeTopApp
from claude_top.ui.panes.charts import LatencyChart
from truth import TRANSCRIPT_SETS, Truth, transcript_files

BASIC = transcript_files(TRANSCRIPT_SETS["basic"][1])[0]
SESSION = BASIC.stem


async def _wait_for(pilot, condition, what: str) -> None:
    for _ in range(300):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never saw {what}")


async def test_a_transcript_only_session_shows_live_as_its_file_grows(tmp_path):
    lines = BASIC.read_bytes().splitlines(keepends=True)
    docs = [json.loads(x) for x in lines]
    first_answer = next(i for i, d in enumerate(docs) if d.get("type") == "assistant")
    last_time = max(parse_time(d.get("timestamp")) or 0 for d in docs)
    folder = tmp_path / "projects" / BASIC.parent.name
    folder.mkdir(parents=True)
    path = folder / BASIC.name
    path.write_bytes(b"".join(lines[: first_answer + 1]))
    store = Store.open(":memory:")
    tail = TranscriptTail(store, [tmp_path / "projects"], poll_s=0.2)
    app = ClaudeTopApp(store, window="all", clock=lambda: last_time + 5 * 10**9, transcripts=tail)
    truth = Truth(TRANSCRIPT_SETS["basic"][0])
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await _wait_for(pilot, lambda: getattr(app, "main", None) is not None, "the app")
            await _wait_for(
                pilot,
                lambda: SESSION in app.main.table("sessions").rows_by_key,
                "the session from the first lines",
            )
            await settle(pilot)
            table = app.main.table("sessions")
            assert shown(table, SESSION, "api") == "1"
            assert shown(table, SESSION, "cost") == "?"  # no cost-state line, no list price
            assert shown(table, SESSION, "source") == "transcript"

            with open(path, "ab") as fh:  # Claude Code goes on writing
                fh.write(b"".join(lines[first_answer + 1 :]))
            await _wait_for(
                pilot, lambda: shown(table, SESSION, "api") == "3", "the appended requests"
            )
            await settle(pilot)
            assert shown(table, SESSION, "cost") == f"${truth.cost():.4f}"
            assert shown(table, SESSION, "tools") == str(len(truth.tool_results()))
            assert shown(table, SESSION, "status") == "● active"
            tools = app.main.table("tools")  # a transcript holds no tool durations
            assert sorted(tools.rows_by_key) == sorted(truth.tool_calls())
            for tool in tools.rows_by_key:
                assert shown(tools, tool, "p50_ms") == shown(tools, tool, "total_ms") == "-"
            assert "no durations recorded" in str(app.main.query_one(LatencyChart).note())

            assert table.select_key(SESSION)
            await pilot.press("enter")
            await settle(pilot)
            summary = str(app.screen.query_one("#session-summary").render())
            assert "transcript only: no spans, no tool latency (telemetry off)" in summary
            turns = app.screen.query_one("#session-turns")
            assert len(turns.rows_by_key) == 1
            await pilot.press("enter")
            await _wait_for(pilot, lambda: getattr(app.screen, "source", None), "the tree")
            assert app.screen.source == "transcript"
            note = str(app.screen.query_one("#tree-source").render())
            assert "built from Claude Code's transcript: telemetry was off" in note
            assert as_datetime(last_time).year == 2026
    finally:
        tail.close()
        store.close()


async def test_the_first_import_runs_behind_a_responsive_ui_and_shows_its_progress(
    tmp_path, monkeypatch
):
    """A large history's first import happens in the background: the header says how far it
    is and the keys keep working until it is done (its commit is held here until then)."""
    from claude_top.core.store.importer import TranscriptImporter
    from claude_top.ui.panes.header import HeaderBar

    folder = tmp_path / "projects" / BASIC.parent.name
    folder.mkdir(parents=True)
    (folder / BASIC.name).write_bytes(BASIC.read_bytes())
    release = threading.Event()
    held = threading.Event()
    commit = TranscriptImporter._commit

    def slow_commit(self, batch, report):
        held.set()
        release.wait(30)
        return commit(self, batch, report)

    monkeypatch.setattr(TranscriptImporter, "_commit", slow_commit)
    store = Store.open(":memory:")
    tail = TranscriptTail(store, [tmp_path / "projects"], poll_s=0.2)
    app = ClaudeTopApp(store, window="24h", transcripts=tail)
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await _wait_for(pilot, held.is_set, "the import's first commit")
            header = app.screen.query_one(HeaderBar)
            await _wait_for(
                pilot,
                lambda: "importing transcripts 100%" in header.render().plain,
                "the import's progress in the header",
            )
            await pilot.press("t")  # the UI answers while the import waits
            await pilot.pause()
            assert app.window == "7d"
            release.set()
            await _wait_for(
                pilot,
                lambda: "importing transcripts" not in header.render().plain,
                "the end of the import",
            )
            assert tail.first is not None and len(tail.first.sessions) == 1
    finally:
        release.set()
        tail.close()
        store.close()
