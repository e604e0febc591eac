"""One session: a summary line and its turns; Enter on a turn opens the span tree.

Queried again only when new data arrives; ages and active/idle move with the clock from the
rows held.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from claude_top.core import format as fmt
from claude_top.core.export import SnapshotScope
from claude_top.core.queries import session_status
from claude_top.ui.data import load_turns
from claude_top.ui.panes.footer import KeysFooter
from claude_top.ui.panes.header import HeaderBar
from claude_top.ui.panes.sessions import cost_cell, status_cell
from claude_top.ui.panes.table import theme_style
from claude_top.ui.panes.turns import TurnsTable, numbered
from claude_top.ui.screens.live import LiveScreen


class SessionScreen(LiveScreen):
    """The turns of one session, kept current while it is open."""

    AUTO_FOCUS = "#session-turns"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="session.back"),
        Binding("enter", "open", "Span tree", id="session.open"),
    ]

    def __init__(self, session_id: str) -> None:
        super().__init__()
        self.session_id = session_id
        self.summary: dict | None = None
        self._summary_shown: Text | None = None

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield Static(id="session-summary")
        with Vertical(id="session-pane", classes="pane"):
            yield TurnsTable(id="session-turns")
        yield KeysFooter()

    def on_mount(self) -> None:
        pane = self.query_one("#session-pane")
        pane.border_title = f"Turns · session {self.session_id}"
        pane.border_subtitle = "Enter: span tree · Esc: back"
        super().on_mount()

    def tick(self) -> None:
        self.query_one(HeaderBar).update(self.app.header_state())

    def retime(self, now_ns: int) -> None:
        """Ages and active/idle as of the app clock, from the rows held: no query."""
        self._show_summary(now_ns)
        self.query_one(TurnsTable).retime(now_ns)

    def load_inputs(self, reason: str) -> int:
        return self.app.clock()

    def load(self, now_ns: int) -> tuple[dict | None, list[dict]]:
        return load_turns(self.app.source, self.session_id, now_ns)

    def show(self, data: tuple[dict | None, list[dict]], reason: str) -> None:
        now = self.app.clock()
        self.summary, turns = data
        self._show_summary(now)
        self.query_one(TurnsTable).set_rows(numbered(turns, now))
        self.query_one(HeaderBar).update(self.app.header_state())

    def _show_summary(self, now_ns: int) -> None:
        text = self._summary_text(now_ns)
        if text != self._summary_shown:
            self._summary_shown = text
            self.query_one("#session-summary", Static).update(text)

    def _summary_text(self, now_ns: int) -> Text:
        s = self.summary
        if s is None:
            return Text(f" session {self.session_id}: no telemetry")
        app = self.app
        status, colour = status_cell(dict(s, status=session_status(s, now_ns)))
        parts = [
            Text(status, style=theme_style(app, colour)),
            Text(s.get("agent") or "-"),
            Text(
                ", ".join(fmt.short_model(m) for m in (s.get("models") or "").split(", ") if m)
                or "-"
            ),
            Text(fmt.plural(s["prompts"], "prompt")),
            Text(fmt.plural(s["api_requests"], "API request")),
            Text(cost_cell(s), style=theme_style(app, "bold")),
            Text(f"tokens {fmt.count(s['input_tokens'])} in / {fmt.count(s['output_tokens'])} out"),
            Text(f"cache {fmt.percent(s.get('cache_hit_ratio'))}"),
            Text(fmt.plural(s["tool_calls"], "tool call")),
            Text(
                fmt.plural(s["tool_errors"], "error"),
                style=theme_style(app, "error" if s["tool_errors"] else None),
            ),
            Text(f"last {fmt.age(s['last_seen_ns'], now_ns)} ago"),
        ]
        if s.get("terminal"):
            parts.append(Text(f"terminal {s['terminal']}"))
        if s.get("source") == "transcript":
            parts.append(
                Text(
                    "transcript only: no spans, no tool latency (telemetry off)",
                    style=theme_style(app, "warning"),
                )
            )
        elif s.get("source") == "both":
            parts.append(Text("telemetry + transcript"))
        for k, v in sorted((s.get("custom") or {}).items()):
            parts.append(Text(f"{k}={v}"))
        return Text(" ") + Text(" · ").join(parts)

    def snapshot_scope(self) -> SnapshotScope:
        """Ctrl-S: this session's turns as shown, and every table for this session alone."""
        view = self.query_one(TurnsTable).as_view("turns", self.session_id)
        return SnapshotScope("all", session_id=self.session_id, view=view)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_open(self) -> None:
        self._open()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._open()

    def _open(self) -> None:
        from claude_top.ui.screens.spantree import SpanTreeScreen

        row = self.query_one(TurnsTable).cursor_data
        if row is not None:
            self.app.push_screen(SpanTreeScreen(self.session_id, row))
