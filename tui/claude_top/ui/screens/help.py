"""`?`: every key, read from the bindings themselves so the list cannot go stale (each key once:
one a screen and its table both bind is listed where it is first met), and what every column
means, read from the columns themselves."""

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
    "Tables": [("↑ ↓ pgup pgdn", "Move")],
    "Span tree": [("↑ ↓", "Move"), ("shift+↑ ↓", "Previous / next sibling")],
}
SUBTITLE = "Esc / q / ? closes"
MORE_BELOW = "↓ more below (j, G) · "


def _sections(app) -> list[tuple[str, list[Binding]]]:
    from claude_top.ui.panes.table import KeyedTable
    from claude_top.ui.screens.detail import DetailScreen
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
        ("A tool's calls, a model's requests", list(DetailScreen.BINDINGS)),
        ("Span tree", list(SpanTreeScreen.BINDINGS) + list(SpanTree.BINDINGS)),
        ("Attributes", list(AttributesScreen.BINDINGS)),
        ("Limits", list(LimitsScreen.BINDINGS)),
        ("Cost history", list(HistoryScreen.BINDINGS)),
    ]


def help_rows(app) -> list[tuple[str, str, str]]:
    """(section, key, what it does) for every key, each listed once."""
    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for title, bindings in _sections(app):
        keys_here: set[str] = set()
        entries = [
            (app.get_key_display(b), b.description, b.tooltip)
            for b in bindings
            if isinstance(b, Binding)
        ]
        for key, description, tooltip in entries:
            if (key, description) in seen or key in keys_here:
                continue
            seen.add((key, description))
            keys_here.add(key)
            rows.append((title, key, f"{description}: {tooltip}" if tooltip else description))
        for key, what in FIXED_KEYS.get(title, []):
            rows.append((title, key, what))
    return rows


def _glossary() -> list[tuple[str, list[tuple[str, str]]]]:
    from claude_top.ui.panes import calls, models, sessions, tools, turns

    return [
        ("Sessions", [(c.label, c.help) for c in sessions.COLUMNS]),
        ("Tools", [(c.label, c.help) for c in tools.COLUMNS]),
        ("Models", [(c.label, c.help) for c in models.COLUMNS]),
        ("Turns", [(c.label, c.help) for c in turns.COLUMNS]),
        ("A tool's calls", [(c.label, c.help) for c in calls.CALL_COLUMNS]),
        ("A model's requests", [(c.label, c.help) for c in calls.REQUEST_COLUMNS]),
    ]


def help_table(app) -> Table:
    """Keys and what they do, by where they work; then what each column means."""
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", no_wrap=True)
    table.add_column()
    section = None
    for title, key, what in help_rows(app):
        if title != section:
            if section is not None:
                table.add_row("", "")
            table.add_row(Text(title, style="bold underline"), "")
            section = title
        table.add_row(Text(key, style="bold"), what)
    for title, columns in _glossary():
        table.add_row("", "")
        table.add_row(Text(f"Columns: {title}", style="bold underline"), "")
        for label, meaning in columns:
            table.add_row(Text(label, style="bold"), meaning)
    return table


class HelpScreen(ModalScreen):
    """Every key and every column; Esc, q or ? closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close"),
        Binding("j,down", "scroll_down", "Down", show=False, id="help.down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="help.up"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="help.bottom"),
        Binding("g,home", "scroll_home", "Top", show=False, id="help.top"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body", classes="pane"):
            yield Static(help_table(self.app))

    def on_mount(self) -> None:
        body = self.query_one("#help-body", VerticalScroll)
        body.border_title = "claude-top keys and columns"
        self.watch(body, "scroll_y", lambda _y: self._cue())
        self.watch(body, "virtual_size", lambda _size: self._cue())
        self.call_after_refresh(self._cue)

    def _cue(self) -> None:
        """Say "more below" while there is."""
        body = self.query_one("#help-body", VerticalScroll)
        more = round(body.scroll_y) < body.max_scroll_y
        body.border_subtitle = (MORE_BELOW if more else "") + SUBTITLE

    def _body(self) -> VerticalScroll:
        return self.query_one("#help-body", VerticalScroll)

    def action_close(self) -> None:
        self.dismiss()

    def action_scroll_down(self) -> None:
        self._body().scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self._body().scroll_up(animate=False)

    def action_scroll_end(self) -> None:
        self._body().scroll_end(animate=False)

    def action_scroll_home(self) -> None:
        self._body().scroll_home(animate=False)
