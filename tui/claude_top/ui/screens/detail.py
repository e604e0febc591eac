"""Enter on a tool or a model: that tool's calls, slowest first, or that model's requests, newest
first, in the main view's window and filter (and session, when the panes are narrowed to one).
Enter on a row opens its turn's span tree."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable

from claude_top.core import format as fmt
from claude_top.core.export import SnapshotScope
from claude_top.core.queries.filters import Filter, parse_window
from claude_top.ui.panes.calls import ModelRequestsTable, ToolCallsTable
from claude_top.ui.panes.footer import KeysFooter
from claude_top.ui.panes.header import HeaderBar
from claude_top.ui.panes.table import KeyedTable
from claude_top.ui.screens.live import LiveScreen

KINDS = {
    "calls": ("tool_calls", ToolCallsTable, "calls of {name}, slowest first"),
    "requests": ("model_requests", ModelRequestsTable, "requests to {name}, newest first"),
}
"""What each kind of list reads (a `Reader` method), shows it in, and is titled."""


class DetailScreen(LiveScreen):
    """One tool's calls or one model's requests, kept current while open."""

    AUTO_FOCUS = "#detail-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="detail.back"),
    ]

    def __init__(self, kind: str, subject: str, session_id: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.subject = subject
        """The tool or the model listed."""
        self.session_id = session_id

    def compose(self) -> ComposeResult:
        _, table, _ = KINDS[self.kind]
        yield HeaderBar(id="header")
        with Vertical(id="detail-pane", classes="pane"):
            yield table(id="detail-table")
        yield KeysFooter()

    def on_mount(self) -> None:
        _, _, title = KINDS[self.kind]
        pane = self.query_one("#detail-pane")
        name = fmt.short_model(self.subject) if self.kind == "requests" else self.subject
        scope = f" · session {fmt.short_id(self.session_id)}" if self.session_id else ""
        text = f' · filter "{self.app.filter_text}"' if self.app.filter_text else ""
        pane.border_title = title.format(name=name) + f" · window {self.app.window}{scope}{text}"
        pane.border_subtitle = "Enter: its turn · Esc: back"
        super().on_mount()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#detail-table", KeyedTable)

    def tick(self) -> None:
        self.query_one(HeaderBar).update(self.app.header_state())

    def retime(self, now_ns: int) -> None:
        self.table.retime(now_ns)

    def load_inputs(self, reason: str) -> tuple[Filter, int]:
        app = self.app
        now = app.clock()
        f = Filter.for_window(
            parse_window(app.window), now, session_id=self.session_id, text=app.filter_text or None
        )
        return f, now

    def load(self, inputs: tuple[Filter, int]) -> tuple[list[dict], int]:
        f, now = inputs
        method, _, _ = KINDS[self.kind]
        with self.app.source.reader() as reader:
            return getattr(reader, method)(f, self.subject), now

    def show(self, data: tuple[list[dict], int], reason: str) -> None:
        rows, now = data
        self.table.set_rows(dict(r, now_ns=now) for r in rows)
        self.query_one(
            "#detail-pane"
        ).border_subtitle = f"{fmt.plural(len(rows), 'row')} · Enter: its turn · Esc: back"

    def snapshot_scope(self) -> SnapshotScope:
        """Ctrl-S: this list as shown, and every table for the window and filter."""
        return SnapshotScope(
            self.app.window,
            text=self.app.filter_text or None,
            view=self.table.as_view(self.kind, self.session_id),
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.table.cursor_data
        if row is None or not row.get("session_id") or not row.get("prompt_id"):
            return
        from claude_top.ui.screens.spantree import SpanTreeScreen

        self.app.push_screen(SpanTreeScreen(row["session_id"], {"key": row["prompt_id"]}))

    def action_back(self) -> None:
        self.app.pop_screen()
