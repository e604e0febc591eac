"""The main view: sessions, tool latency, model cost and the selected session's turns.

Four panes from 120x36; below that, one pane at a time behind a tab bar. The panes query again
only when their results can change: new data, other settings or selection, or a sliding window's
edge passing a row. One thread worker at a time runs every query on one reader of the source and
posts one message, which the screen applies as keyed diffs (the loop is `live.LiveScreen`'s).
Ages and active/idle move with the clock from the rows held, without a query.
"""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static, Tab, Tabs

from claude_top.core import format as fmt
from claude_top.core.export import SnapshotScope
from claude_top.ui.clipboard import copy_text
from claude_top.ui.data import MainData, MainQuery, load_group_keys, load_main
from claude_top.ui.panes.charts import CostChart, LatencyChart
from claude_top.ui.panes.connect import ConnectPane
from claude_top.ui.panes.footer import KeysFooter
from claude_top.ui.panes.header import HeaderBar
from claude_top.ui.panes.limits import LimitsStrip
from claude_top.ui.panes.models import ModelsTable
from claude_top.ui.panes.sessions import SessionsTable
from claude_top.ui.panes.table import OPEN_TIP, KeyedTable
from claude_top.ui.panes.tools import ToolsTable
from claude_top.ui.panes.turns import TurnsTable, numbered
from claude_top.ui.screens.live import LiveScreen

PANES = ("sessions", "tools", "models", "turns")
PANE_NAMES = {"sessions": "Sessions", "tools": "Tools", "models": "Models", "turns": "Turns"}
SETTINGS_FILE = "claude-top-settings.sh"
"""Where `c` writes the connect settings when it cannot copy them (in `--export-dir`)."""
WIDE_MIN = (120, 36)
"""Four panes at once from this size (columns, rows); one pane at a time below it."""


def _totals(data: MainData) -> str:
    """The sessions pane's subtitle: sessions, cost and API requests in view. With a text
    filter, the sums of the sessions it matches (the rows shown). Sessions without a prompt or
    request yet (start-up telemetry) are folded away, and counted apart."""
    window = f"window {data.query.window}"
    working = [r for r in data.sessions if r.get("has_work", True)]
    if data.query.text:
        cost = sum(r["cost_usd"] or 0.0 for r in working)
        api = sum(r["api_requests"] or 0 for r in working)
        what = fmt.plural(len(working), "matching session")
    else:
        ov = data.overview
        cost, api = ov.get("cost_usd"), ov.get("api_requests") or 0
        what = fmt.plural(ov.get("sessions") or 0, "session")
    folded = len(data.sessions) - len(working)
    what += f" (+{folded} without a prompt yet)" if folded else ""
    odd = data.overview.get("not_understood") or 0
    what += f" · {fmt.count(odd)} records not understood" if odd else ""
    estimated = 0.0 if data.query.text else data.overview.get("estimated_cost_usd") or 0.0
    spent = fmt.cost(cost)
    spent += f" ({fmt.ESTIMATE_MARK}{fmt.cost(estimated)} estimated)" if estimated else ""
    return f"{what} · {spent} · {fmt.plural(api, 'API request')} · {window}"


class FilterInput(Input):
    """The `/` text filter; Enter keeps it, Esc clears it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear_filter", "Clear filter", id="filter.clear"),
    ]

    def action_clear_filter(self) -> None:
        self.value = ""
        self.screen.close_filter()


class MainScreen(LiveScreen):
    """Sessions, tools, models and turns; queried again when new data arrives."""

    AUTO_FOCUS = "#sessions"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", tooltip=OPEN_TIP, show=True, id="main.open"),
        Binding("tab", "next_pane", "Next pane", show=False, id="main.next_pane"),
        Binding("shift+tab", "previous_pane", "Previous pane", show=False, id="main.prev_pane"),
        Binding("1", "pane('sessions')", "Sessions pane", show=False, id="main.pane_sessions"),
        Binding("2", "pane('tools')", "Tools pane", show=False, id="main.pane_tools"),
        Binding("3", "pane('models')", "Models pane", show=False, id="main.pane_models"),
        Binding("4", "pane('turns')", "Turns pane", show=False, id="main.pane_turns"),
        Binding(
            "a",
            "toggle_scope",
            "Tools/models: all or selected session",
            show=False,
            id="main.scope",
        ),
        Binding(
            "u",
            "cycle_group",
            "Group by person/team",
            show=False,
            tooltip="sessions and models by user.email, organization.id or a resource "
            "attribute (team, workflow_id, stage), or not grouped",
            id="main.group",
        ),
        Binding("c", "copy_env", "Copy settings", id="main.copy_env"),
        Binding("escape", "clear_filter", "Clear filter", id="main.clear_filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.active_pane = "sessions"
        self.scope_session = False
        self.wide = True
        self.empty: bool | None = None
        self.last_data: MainData | None = None
        self.group: str | None = None
        """The key the sessions and models panes are grouped by (None: not grouped)."""

    # --- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield LimitsStrip(id="limits-strip")
        yield Tabs(
            *(Tab(f"{i} {PANE_NAMES[p]}", id=f"tab-{p}") for i, p in enumerate(PANES, 1)),
            id="pane-tabs",
        )
        yield ConnectPane(id="connect")
        with Container(id="panes"):
            with Vertical(id="sessions-pane", classes="pane"):
                yield SessionsTable(id="sessions")
                yield Static("", id="sessions-empty", classes="empty-note")
            with (
                Vertical(id="tools-pane", classes="pane"),
                Container(classes="pane-body"),
            ):
                yield ToolsTable(id="tools")
                yield LatencyChart(id="latency-chart")
            with (
                Vertical(id="models-pane", classes="pane"),
                Container(classes="pane-body"),
            ):
                yield ModelsTable(id="models")
                yield CostChart(id="cost-chart")
            with Vertical(id="turns-pane", classes="pane"):
                yield TurnsTable(id="turns")
                yield Static("", id="turns-empty", classes="empty-note")
        yield FilterInput(
            placeholder="filter: session id, model or tool; Enter keeps, Esc clears", id="filter"
        )
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#pane-tabs", Tabs).can_focus = False
        self._layout_for(self.app.size.width, self.app.size.height)
        self._titles()
        self.update_header()
        super().on_mount()

    def on_resize(self, event: Resize) -> None:
        self._layout_for(event.size.width, event.size.height)

    def _layout_for(self, width: int, height: int) -> None:
        wide = width >= WIDE_MIN[0] and height >= WIDE_MIN[1]
        self.wide = wide
        self.set_class(wide, "-wide")
        self.set_class(not wide, "-tabbed")
        self._show_active()

    def _show_active(self) -> None:
        for p in PANES:
            self.query_one(f"#{p}-pane").set_class(p == self.active_pane, "-active")
        tabs = self.query_one("#pane-tabs", Tabs)
        if tabs.active != f"tab-{self.active_pane}":
            tabs.active = f"tab-{self.active_pane}"

    def table(self, pane: str) -> KeyedTable:
        return self.query_one(f"#{pane}", KeyedTable)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Until data arrives only the connect keys apply; after, the pane keys."""
        if action == "copy_env":
            return bool(self.empty) and not getattr(self.app, "remote", False)
        if action == "clear_filter":
            return bool(self.app.filter_text)
        if action in ("open", "next_pane", "previous_pane", "pane", "toggle_scope", "cycle_group"):
            return not self.empty
        return True

    # --- panes and focus -----------------------------------------------------------------

    def action_pane(self, pane: str) -> None:
        """Show (tabbed) and focus pane `pane`."""
        if self.empty:
            return
        self.active_pane = pane
        self._show_active()
        self.set_focus(self.table(pane))

    def action_next_pane(self) -> None:
        self.action_pane(PANES[(PANES.index(self.active_pane) + 1) % len(PANES)])

    def action_previous_pane(self) -> None:
        self.action_pane(PANES[(PANES.index(self.active_pane) - 1) % len(PANES)])

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        pane = (event.tab.id or "").removeprefix("tab-")
        if pane in PANES and pane != self.active_pane:
            self.action_pane(pane)

    def on_descendant_focus(self, event) -> None:
        node: Widget | None = event.widget
        while node is not None and node is not self:
            if node.id and node.id.endswith("-pane") and node.id[:-5] in PANES:
                if self.active_pane != node.id[:-5]:
                    self.active_pane = node.id[:-5]
                    self._show_active()
                return
            node = node.parent

    def action_open(self) -> None:
        """Enter: open the session, the turn's span tree, the tool's calls or the model's
        requests."""
        focused = self.focused
        if isinstance(focused, KeyedTable):
            self._open(focused)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if isinstance(event.data_table, KeyedTable):
            self._open(event.data_table)

    def _open(self, table: KeyedTable) -> None:
        from claude_top.ui.screens.detail import DetailScreen
        from claude_top.ui.screens.session import SessionScreen
        from claude_top.ui.screens.spantree import SpanTreeScreen

        row = table.cursor_data
        if row is None:
            return
        if table.id == "sessions" and self.group:
            self.notify(f"grouped by {self.group}: press u until ungrouped to open a session")
            return
        selected = self.table("sessions").cursor_key
        scoped = selected if self.scope_session else None
        if table.id == "sessions":
            self.app.push_screen(SessionScreen(row["session_id"]))
        elif table.id == "turns":
            if selected:
                self.app.push_screen(SpanTreeScreen(selected, row))
        elif table.id == "tools":
            self.app.push_screen(DetailScreen("calls", row["tool_name"], scoped))
        elif table.id == "models":
            self.app.push_screen(DetailScreen("requests", row["model"], scoped))

    def action_toggle_scope(self) -> None:
        """Tools and models: every session in view, or only the selected one."""
        self.scope_session = not self.scope_session
        self._titles()
        self.request_load("settings")

    def action_cycle_group(self) -> None:
        """Sessions and models grouped by the next key found in the window, then ungrouped."""
        self._cycle_group(self.app.window, self.app.clock())

    @work(thread=True, exclusive=True, group="group-keys", exit_on_error=False)
    def _cycle_group(self, window: str, now_ns: int) -> None:
        keys = load_group_keys(self.app.source, window, now_ns)
        self.app.call_from_thread(self._next_group, keys)

    def _next_group(self, keys: list[str]) -> None:
        if not keys and self.group is None:
            self.notify(
                "nothing to group by: no user.email, organization.id or custom resource "
                "attribute (OTEL_RESOURCE_ATTRIBUTES) in this window",
                timeout=5,
            )
            return
        order = [None, *keys]
        i = order.index(self.group) if self.group in order else 0
        self.group = order[(i + 1) % len(order)]
        self.notify(f"grouped by {self.group}" if self.group else "not grouped", timeout=2)
        self._titles()
        self.request_load("settings")

    def action_copy_env(self) -> None:
        """Copy the connect settings (shell export lines), and say where they went."""
        pane = self.query_one(ConnectPane)
        if not pane.env:
            pane.show_env(self.app.env_block())
        where = copy_text(self.app, pane.shell_text + "\n", self.app.export_dir / SETTINGS_FILE)
        self.notify(f"connect settings {where}", timeout=8)

    # --- filter --------------------------------------------------------------------------

    def action_clear_filter(self) -> None:
        """Esc: drop the text filter (after Enter kept it)."""
        box = self.query_one(FilterInput)
        box.value = ""
        self.app.set_filter("")
        self.close_filter()

    def open_filter(self) -> None:
        self.add_class("-filtering")
        self.set_focus(self.query_one(FilterInput))

    def close_filter(self) -> None:
        box = self.query_one(FilterInput)
        if not box.value:
            self.remove_class("-filtering")
        if not self.empty:
            self.set_focus(self.table(self.active_pane))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.app.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.close_filter()

    def snapshot_scope(self) -> SnapshotScope:
        """Ctrl-S: the focused pane (or the one shown) as shown, and every table for the window
        and filter."""
        app = self.app
        scope = SnapshotScope(window=app.window, text=app.filter_text or None)
        if self.empty:
            return scope
        table = self.focused
        if not isinstance(table, KeyedTable) or table.id not in PANES:
            table = self.table(self.active_pane)
        session_id = None
        if table.id == "turns" or (self.scope_session and table.id != "sessions"):
            session_id = self.table("sessions").cursor_key
        return SnapshotScope(
            scope.window, text=scope.text, view=table.as_view(table.id, session_id)
        )

    # --- refresh -------------------------------------------------------------------------

    def settings_changed(self) -> None:
        """Window, filter or pause changed: redraw the header and query again."""
        self.update_header()
        self.refresh_bindings()
        self._titles()
        self.request_load("settings")

    def tick(self) -> None:
        self.update_header()

    def stale(self, now_ns: int) -> bool:
        return self.last_data is not None and self.last_data.stale(now_ns)

    def retime(self, now_ns: int) -> None:
        """Ages and active/idle as of the app clock, from the rows held: no query."""
        if self.empty is False:
            self.table("sessions").retime(now_ns)
            self.table("turns").retime(now_ns)

    def load_inputs(self, reason: str) -> MainQuery:
        app = self.app
        return MainQuery(
            window=app.window,
            now_ns=app.clock(),
            text=app.filter_text or None,
            session_id=self.table("sessions").cursor_key,
            scope_session=self.scope_session,
            tool_name=self.table("tools").cursor_key,
            group=self.group,
            agent=app.agent,
        )

    def load(self, inputs: MainQuery) -> MainData:
        return load_main(self.app.source, inputs)

    def show(self, data: MainData, reason: str) -> None:
        self.apply(data, reason)

    def apply(self, data: MainData, reason: str = "tick") -> None:
        """Show one refresh's results: keyed diffs, cursors stay on their rows."""
        self.last_data = data
        self._set_empty(data.received_total == 0)
        self.update_header()
        if self.empty:
            if getattr(self.app, "remote", False):
                self.query_one(ConnectPane).show_source(self.app.source, data.error)
            return
        q = data.query
        frozen = self.app.paused and reason == "selection"
        sessions = self.table("sessions")
        tools = self.table("tools")
        now = self.app.clock()
        if not frozen:
            working = (r for r in data.sessions if r.get("has_work", True))
            sessions.set_rows(sessions.timed(r, now) for r in working)
            tools.set_rows(data.tools)
            self.table("models").set_rows(data.models)
            self.query_one(CostChart).show(data.models)
        calls = next((t["calls"] for t in data.tools if t["tool_name"] == q.tool_name), None)
        self.query_one(LatencyChart).show(q.tool_name, data.durations, calls)
        selected = sessions.cursor_key
        if q.session_id == selected:
            self.table("turns").set_rows(numbered(data.turns, now))
        elif selected is None:
            self.table("turns").set_rows([])
        else:
            self.request_load("selection")
        if tools.cursor_key is not None and tools.cursor_key != q.tool_name:
            self.request_load("selection")
        self._notes(data)
        self._titles()

    def on_keyed_table_cursor_key_changed(self, event: KeyedTable.CursorKeyChanged) -> None:
        if event.table.id in ("sessions", "tools"):
            self._titles()
            self.request_load("selection")

    def _set_empty(self, empty: bool) -> None:
        if empty == self.empty:
            return
        self.empty = empty
        self.set_class(empty, "-empty")
        self.refresh_bindings()
        if empty:
            if not getattr(self.app, "remote", False):
                self.query_one(ConnectPane).show_env(self.app.env_block())
            self.set_focus(self.query_one(ConnectPane))
        else:
            self.set_focus(self.table(self.active_pane))

    def _notes(self, data: MainData) -> None:
        window = data.query.window
        note = ""
        if not any(r.get("has_work", True) for r in data.sessions):
            note = "No sessions match the filter." if data.query.text else ""
            if not note and data.query.agent:
                note = f"No {data.query.agent} sessions in the last {window} (f: every agent)."
            note = note or f"No sessions in the last {window} (t changes the window)."
        empty = self.query_one("#sessions-empty", Static)
        empty.update(note)
        empty.display = bool(note)
        turns_note = self.query_one("#turns-empty", Static)
        if data.query.group:  # a row is a group of sessions, not one whose turns to list
            turns_note.update(
                f"Grouped by {data.query.group}: u until ungrouped shows a session's turns."
            )
            turns_note.display = True
            return
        turns_note.update("" if data.turns else "No turns (prompts) in this session yet.")
        turns_note.display = not data.turns and data.query.session_id is not None

    def _titles(self) -> None:
        selected = self.table("sessions").cursor_key
        text = self.app.filter_text
        if self.scope_session and selected:
            scope = f"session {fmt.short_id(selected)}"
        elif text:
            scope = f'filter "{text}"'
        else:
            scope = "all sessions"
        data = self.last_data
        by = f" · by {self.group}" if self.group else ""
        self.query_one("#sessions-pane").border_title = (
            f'1 Sessions{by} · filter "{text}"' if text else f"1 Sessions{by}"
        )
        if data is not None and data.overview:
            self.query_one("#sessions-pane").border_subtitle = _totals(data)
        self.query_one("#tools-pane").border_title = f"2 Tools · {scope}"
        tool = self.table("tools").cursor_key
        self.query_one("#tools-pane").border_subtitle = f"chart: {tool}" if tool else ""
        self.query_one("#models-pane").border_title = (
            f"3 Models{by}" if self.group else f"3 Models · {scope}"
        )
        one = selected if not self.group else None
        self.query_one("#turns-pane").border_title = (
            f"4 Turns · session {fmt.short_id(one)}" if one else "4 Turns"
        )
        self.query_one("#turns-pane").border_subtitle = "Enter: span tree" if one else ""

    def update_header(self) -> None:
        data = self.last_data
        self.query_one(HeaderBar).update(
            self.app.header_state(data.last_received_ns if data else None)
        )
