"""One session: a summary line and its turns; Enter on a turn opens the span tree."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from claude_top.ui import format as fmt
from claude_top.ui.data import load_turns
from claude_top.ui.panes.footer import KeysFooter
from claude_top.ui.panes.header import HeaderBar
from claude_top.ui.panes.table import theme_style
from claude_top.ui.panes.turns import TurnsTable, numbered

REFRESH_S = 1.0


class SessionScreen(Screen):
    """The turns of one session, refreshed while it is open."""

    AUTO_FOCUS = "#session-turns"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="session.back"),
        Binding("enter", "open", "Span tree", id="session.open"),
    ]

    class Loaded(Message):
        def __init__(self, summary: dict | None, turns: list[dict], now_ns: int, error=None):
            super().__init__()
            self.summary = summary
            self.turns = turns
            self.now_ns = now_ns
            self.error = error

    def __init__(self, session_id: str) -> None:
        super().__init__()
        self.session_id = session_id
        self.summary: dict | None = None
        self._loading = False
        self._loaded = False
        self._last = 0.0

    @property
    def busy(self) -> bool:
        """Still loading (tests wait for this to clear)."""
        return not self._loaded or self._loading

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
        self.set_interval(0.25, self._tick)
        self._refresh()

    def _tick(self) -> None:
        self.query_one(HeaderBar).update(self.app.header_state())
        if not self.app.paused and time.monotonic() - self._last >= REFRESH_S:
            self._refresh()

    def _refresh(self) -> None:
        if self._loading:
            return
        self._loading = True
        self._last = time.monotonic()
        self._load(self.app.clock())

    @work(thread=True, exclusive=True, group="session-refresh", exit_on_error=False)
    def _load(self, now_ns: int) -> None:
        try:
            summary, turns = load_turns(self.app.store, self.session_id, now_ns)
        except Exception as exc:
            self.post_message(self.Loaded(None, [], now_ns, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Loaded(summary, turns, now_ns))

    def on_session_screen_loaded(self, message: Loaded) -> None:
        self._loading = False
        self._loaded = True
        if message.error:
            self.notify(f"query failed: {message.error}", severity="error")
            return
        self.summary = message.summary
        self.query_one("#session-summary", Static).update(self._summary_text(message.now_ns))
        self.query_one(TurnsTable).set_rows(numbered(message.turns, message.now_ns))
        self.query_one(HeaderBar).update(self.app.header_state())

    def _summary_text(self, now_ns: int) -> Text:
        s = self.summary
        if s is None:
            return Text(f" session {self.session_id}: no telemetry")
        app = self.app
        active = s.get("status") == "active"
        parts = [
            Text(
                "● active" if active else "○ idle",
                style=theme_style(app, "success" if active else "muted"),
            ),
            Text(
                ", ".join(fmt.short_model(m) for m in (s.get("models") or "").split(", ") if m)
                or "-"
            ),
            Text(fmt.plural(s["prompts"], "prompt")),
            Text(fmt.plural(s["api_requests"], "API request")),
            Text(fmt.cost(s["cost_usd"]), style=theme_style(app, "bold")),
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
        for k, v in sorted((s.get("custom") or {}).items()):
            parts.append(Text(f"{k}={v}"))
        return Text(" ") + Text(" · ").join(parts)

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
