"""`?`: every key, read from the bindings themselves so the list cannot go stale."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

FIXED_KEYS: dict[str, list[tuple[str, str]]] = {
    "Everywhere": [("ctrl+p", "Command palette: every action by name"), ("ctrl+q", "Quit")],
    "Tables": [
        ("↑ ↓ pgup pgdn", "Move"),
        ("← →", "Scroll columns"),
        ("enter", "Open the session / the turn's span tree"),
    ],
    "Span tree": [("↑ ↓", "Move"), ("shift+↑ ↓", "Previous / next sibling")],
}


def _sections(app) -> list[tuple[str, list[Binding]]]:
    from claude_top.ui.panes.table import KeyedTable
    from claude_top.ui.screens.history import HistoryScreen
    from claude_top.ui.screens.limits import LimitsScreen
    from claude_top.ui.screens.main import FilterInput, MainScreen
    from claude_top.ui.screens.session import SessionScreen
    from claude_top.ui.screens.spantree import AttributesScreen, SpanTree, SpanTreeScreen

    return [
        ("Everywhere", list(type(app).BINDINGS)),
        ("Main view", list(MainScreen.BINDINGS) + list(FilterInput.BINDINGS)),
        ("Tables", list(KeyedTable.BINDINGS)),
        ("Session", list(SessionScreen.BINDINGS)),
        ("Span tree", list(SpanTreeScreen.BINDINGS) + list(SpanTree.BINDINGS)),
        ("Attributes", list(AttributesScreen.BINDINGS)),
        ("Limits", list(LimitsScreen.BINDINGS)),
        ("Cost history", list(HistoryScreen.BINDINGS)),
    ]


def help_table(app) -> Table:
    """Keys and what they do, by where they work."""
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", no_wrap=True)
    table.add_column()
    for title, bindings in _sections(app):
        table.add_row(Text(title, style="bold underline"), "")
        for b in bindings:
            if isinstance(b, Binding):
                what = f"{b.description}: {b.tooltip}" if b.tooltip else b.description
                table.add_row(Text(app.get_key_display(b), style="bold"), what)
        for key, what in FIXED_KEYS.get(title, []):
            table.add_row(Text(key, style="bold"), what)
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen):
    """Every key; Esc, q or ? closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close"),
        Binding("j,down", "scroll_down", "Down", show=False, id="help.down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="help.up"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body", classes="pane"):
            yield Static(help_table(self.app))

    def on_mount(self) -> None:
        body = self.query_one("#help-body")
        body.border_title = "claude-top keys"
        body.border_subtitle = "Esc / q / ? closes"

    def action_close(self) -> None:
        self.dismiss()

    def action_scroll_down(self) -> None:
        self.query_one("#help-body", VerticalScroll).scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.query_one("#help-body", VerticalScroll).scroll_up(animate=False)
