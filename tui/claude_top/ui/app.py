"""The Textual app: owns the store, writer and receivers; screens read through `app.source`.

`commands.ui.run_app` is what `claude-top` (no subcommand) runs. For tests,
`ClaudeTopApp(store)` runs on an existing store with no writer and no receivers, and `clock`
pins "now". Attached to a running `claude-top serve` (`attached`: its `RemoteSource`), there is
no store, writer or receivers here: the panes read through the instance, which also writes the
snapshots, and its counters (polled four times a second) say when to query again. `ctrl+s` /
`e` write a CSV snapshot of what the screen on top shows (its pane as shown, plus every table
for what it covers) in a thread worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.message import Message
from textual.screen import Screen

from claude_top.core import wire
from claude_top.core.budgets import LimitSettings
from claude_top.core.connect import env_block
from claude_top.core.export import (
    SnapshotScope,
    export_scope,
    export_source_snapshot,
)
from claude_top.core.instance import InstanceError
from claude_top.core.queries import WINDOWS, parse_window
from claude_top.core.queries.reader import LocalSource, Source
from claude_top.core.queries.remote import RemoteSource
from claude_top.core.store.database import Store
from claude_top.core.store.tail import TranscriptTail
from claude_top.core.store.writer import StoreWriter, WriterStats
from claude_top.ui.limits import LimitsMonitor
from claude_top.ui.panes.header import HeaderState
from claude_top.ui.panes.table import KeyedTable
from claude_top.ui.screens.main import PANE_NAMES, PANES, MainScreen

if TYPE_CHECKING:
    from claude_top.receiver.server import Receivers

Background = Callable[["Receivers | None"], Awaitable[object]]
"""A coroutine run beside the UI once the receivers listen (the demo's sender)."""

DEFAULT_WINDOW = "24h"
REMOTE_REFRESH_S = 5.0
"""How often the panes query a source that is not this process's store (a team's ClickHouse)."""
SHUTDOWN_GRACE_S = 0.5
RATE_SPAN_S = 5.0
INSTANCE_POLL_S = 0.25


class ClaudeTopApp(App):
    """claude-top's UI over one store."""

    CSS_PATH = "app.tcss"
    TITLE = "claude-top"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "q",
            "quit",
            "Quit",
            tooltip="stop the receivers, flush to the database, exit",
            id="app.quit",
        ),
        Binding("question_mark", "help", "Help", tooltip="every key", id="app.help"),
        Binding("t", "cycle_window", "Window", tooltip="15m, 1h, 24h, 7d, all", id="app.window"),
        Binding(
            "f",
            "cycle_agent",
            "Agent",
            tooltip="every agent, or only one: claude-code, codex, gemini-cli, ...",
            id="app.agent",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            tooltip="rows matching text: session id, model, tool",
            priority=True,
            id="app.filter",
        ),
        Binding(
            "p",
            "toggle_pause",
            "Pause",
            tooltip="freeze the screen; telemetry is still received and stored",
            id="app.pause",
        ),
        Binding(
            "l",
            "limits",
            "Limits",
            tooltip="plan limits and budgets: windows, burn rate, forecast, context",
            show=False,
            id="app.limits",
        ),
        Binding(
            "h",
            "history",
            "History",
            tooltip="cost per day, week or month by model; top projects",
            show=False,
            id="app.history",
        ),
        Binding(
            "ctrl+s,e",
            "export",
            "Export CSV",
            tooltip="the focused pane as shown, plus every table, in a new folder",
            show=False,
            key_display="ctrl+s / e",
            id="app.export",
        ),
    ]

    class Exported(Message):
        """A snapshot was written into `directory` (or the error that stopped it); `view` is
        what `snapshot.json` says of the pane as shown."""

        def __init__(
            self, directory: Path | None, view: dict | None = None, error: str | None = None
        ) -> None:
            super().__init__()
            self.directory = directory
            self.view = view
            self.error = error

    def __init__(
        self,
        store: Store | None,
        writer: StoreWriter | None = None,
        receivers=None,
        *,
        db_path: str | None = None,
        window: str = DEFAULT_WINDOW,
        clock: Callable[[], int] = time.time_ns,
        export_dir: str | Path | None = None,
        background: Background | None = None,
        source: Source | None = None,
        limits: LimitSettings | None = None,
        relay=None,
        attached: RemoteSource | None = None,
        transcripts: TranscriptTail | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.attached = attached
        self.transcripts = transcripts
        """Imports and follows Claude Code's transcripts (started once the receivers listen)."""
        self.source: Source = source or attached or LocalSource(store)
        self.remote = source is not None and not isinstance(source, LocalSource)
        """The panes read a team's source (ClickHouse), not this process's store nor the
        instance it is attached to."""
        self.relay = relay
        """The `receiver.forward.Forwarder` relaying upstream, if any (the header shows it)."""
        self.writer = writer
        self.receivers = receivers
        if db_path is None:
            db_path = self.source.label if self.remote or store is None else store.path
        self.db_path = db_path
        self.instance_status: dict | None = None
        """What the instance this UI is attached to said last (None: not yet, or gone)."""
        self.instance_error: str | None = None
        self._instance_task: asyncio.Task | None = None
        self.window = window
        self.clock = clock
        self.export_dir = Path(export_dir or Path.cwd()).expanduser().absolute()
        self.background = background
        self.limit_settings = limits or LimitSettings()
        self.limits_monitor = LimitsMonitor(self, self.limit_settings)
        self.background_error: str | None = None
        self._background_task: asyncio.Task | None = None
        self.paused = False
        self.filter_text = ""
        self.agent: str | None = None
        """Only this agent's records in every pane (None: every agent's)."""
        self.startup_error: str | None = None
        self.last_received_ns: int | None = None
        self._rate: deque[tuple[float, int]] = deque()
        self._index_errors_told = 0
        self._transcript_errors_told = 0
        self._import_told = False
        self._closed = False

    # --- lifecycle -----------------------------------------------------------------------

    async def on_mount(self) -> None:
        if self.receivers is not None:
            try:
                await self.receivers.start()
            except OSError as exc:
                self.startup_error = str(exc)
                self.exit(return_code=2)  # EXIT_USAGE; `startup_error` says why
                return
        if self.transcripts is not None:
            self.transcripts.start()
        if self.background is not None:
            self._background_task = asyncio.create_task(self.background(self.receivers))
            self._background_task.add_done_callback(self._background_done)
        if self.attached is not None:
            await self._poll_instance()
            self._instance_task = asyncio.create_task(self._follow_instance())
        self.main = MainScreen()
        await self.push_screen(self.main)
        self.limits_monitor.start()

    async def _poll_instance(self) -> None:
        try:
            status = await asyncio.to_thread(self.attached.status)
        except InstanceError as exc:
            if self.instance_error is None:
                self.notify(f"lost the claude-top it was attached to: {exc}", severity="error")
            self.instance_status, self.instance_error = None, str(exc)
        else:
            self.instance_status, self.instance_error = status, None

    async def _follow_instance(self) -> None:
        """Ask the instance for its counters, four times a second, off the UI thread."""
        while True:
            await asyncio.sleep(INSTANCE_POLL_S)
            await self._poll_instance()

    def _background_done(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.background_error = f"{type(exc).__name__}: {exc}"
        self.notify(f"background task stopped: {self.background_error}", severity="error")

    async def action_quit(self) -> None:
        """Stop the receivers, flush the writer, then leave (the store closes in `run_app`)."""
        await self.shutdown()
        self.exit(return_code=0)

    async def shutdown(self) -> None:
        """Cancel the background task, let snapshots finish, stop receivers, flush."""
        if self._closed:
            return
        self._closed = True
        for task in (self._background_task, self._instance_task):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task})
        exports = [w for w in self.workers if w.group == "export" and not w.is_finished]
        if exports:
            await self.workers.wait_for_complete(exports)
        if self.transcripts is not None:
            await asyncio.to_thread(self.transcripts.close)
        if self.receivers is not None:
            await self.receivers.stop(SHUTDOWN_GRACE_S)
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close, 1.0)

    # --- state the screens read ----------------------------------------------------------

    def writer_stats(self) -> WriterStats | None:
        """The counters of the writer behind the panes: this process's, or those of the
        instance this UI is attached to (as it last said)."""
        if self.writer is not None:
            return self.writer.stats
        status = self.instance_status
        if status is None:
            return None
        known = {f.name for f in dataclasses.fields(WriterStats)}
        return WriterStats(**{k: v for k, v in status["stats"].items() if k in known})

    def ingest_mark(self) -> tuple[int, int, int, int]:
        """Changes whenever an export is committed or indexed, transcripts are imported, or
        retention deleted rows (then the panes query again; nothing else changes what is
        stored)."""
        if self.remote:  # what another place holds changes without telling: look every few s
            return (int(time.monotonic() // REMOTE_REFRESH_S), 0, 0, 0)
        imported = self.transcripts.commits if self.transcripts is not None else 0
        stats = self.writer_stats()
        if stats is None:
            return (0, 0, 0, imported)
        return (stats.commits, stats.rows_indexed, stats.rows_pruned, imported)

    def env_block(self) -> dict[str, str]:
        """The variables that point Claude Code at this claude-top (or the one it is attached
        to)."""
        if self.receivers is not None:
            return self.receivers.env_block()
        if self.instance_status is not None and self.instance_status.get("env"):
            return self.instance_status["env"]
        return env_block()

    def _ingest_rate(self) -> float | None:
        stats = self.writer_stats()
        if stats is None:
            return None
        now = time.monotonic()
        rows = stats.rows_committed
        self._rate.append((now, rows))
        while len(self._rate) > 2 and now - self._rate[0][0] > RATE_SPAN_S:
            self._rate.popleft()
        t0, r0 = self._rate[0]
        return (rows - r0) / (now - t0) if now > t0 else 0.0

    def header_state(self, last_received_ns: int | None = None) -> HeaderState:
        if last_received_ns is not None:
            self.last_received_ns = last_received_ns
        last = self.last_received_ns
        stats = self.writer_stats()
        if stats is not None and stats.last_commit_ns:
            last = max(last or 0, stats.last_commit_ns)
        endpoints = None
        if self.receivers is not None and getattr(self.receivers, "grpc_port", None):
            endpoints = self.receivers.endpoints
        elif self.instance_status is not None:
            endpoints = self.instance_status.get("endpoints")
        if stats is not None and stats.index_errors > self._index_errors_told:
            self._index_errors_told = stats.index_errors
            self.notify(
                f"indexing error: {stats.last_index_error} (undecodable exports are kept in "
                "the ingest_failed table)",
                severity="error",
                timeout=10,
            )
        now = self.clock()
        return HeaderState(
            alert=self.limits_monitor.header_alert(now),
            relay=self.relay.status() if self.relay is not None else None,
            source=self.source.label if self.remote else None,
            importing=self._transcripts_state(),
            endpoints=endpoints,
            backlog=stats.backlog_rows if stats else 0,
            index_errors=stats.index_errors if stats else 0,
            db_path=self.db_path,
            rate=self._ingest_rate(),
            last_export_ns=last,
            now_ns=now,
            window=self.window,
            text=self.filter_text,
            paused=self.paused,
            attached_pid=self.attached.instance.pid if self.attached else None,
            attached_lost=self.instance_error is not None,
            agent=self.agent,
        )

    def limits_changed(self) -> None:
        """The limits were loaded again: redraw what shows them, and the headers."""
        for screen in self.screen_stack:
            for view in screen.query(".limits-view"):
                view.limits_changed()
            header = screen.query("#header")
            if header:
                header.first().update(self.header_state())

    def _transcripts_state(self) -> float | None:
        """How far the first transcript import is (None: not importing); tells once when it
        is done, and about errors."""
        tail = self.transcripts
        if tail is None:
            return None
        if tail.errors > self._transcript_errors_told:
            self._transcript_errors_told = tail.errors
            self.notify(tail.last_error, severity="error", timeout=10)
        if tail.first is not None and not self._import_told:
            self._import_told = True
            r = tail.first
            if r.sessions:
                self.notify(
                    f"{len(r.sessions)} sessions, {r.requests} API requests "
                    f"({r.transcript_only} not in telemetry) from {r.files_read} files",
                    title="Transcripts imported",
                    timeout=8,
                )
        if not tail.importing:
            return None
        return tail.progress.fraction or 0.0

    # --- actions -------------------------------------------------------------------------

    def action_limits(self) -> None:
        """Plan limits and budgets: windows, burn rate, forecast, sessions' context."""
        from claude_top.ui.screens.limits import LimitsScreen

        if not isinstance(self.screen, LimitsScreen):
            self.push_screen(LimitsScreen())

    def action_history(self) -> None:
        """Cost history: per day, week or month by model, and the top projects."""
        from claude_top.ui.screens.history import HistoryScreen

        if not isinstance(self.screen, HistoryScreen):
            self.push_screen(HistoryScreen())

    def _main_changed(self) -> None:
        main = getattr(self, "main", None)
        if main is not None:
            main.settings_changed()

    def action_cycle_window(self) -> None:
        """Next time window: 15m, 1h, 24h, 7d, all."""
        i = WINDOWS.index(self.window) if self.window in WINDOWS else -1
        self.window = WINDOWS[(i + 1) % len(WINDOWS)]
        self._main_changed()
        self.notify(f"window: {self.window}", timeout=1.5)

    def action_cycle_agent(self) -> None:
        """Every agent, then each agent seen in the window in turn, then every agent again."""
        main = getattr(self, "main", None)
        data = main.last_data if main is not None else None
        seen = list((data.overview.get("agents") if data else None) or [])
        if self.agent is not None and self.agent not in seen:
            seen = sorted([*seen, self.agent])
        choices: list[str | None] = [None, *seen]
        i = choices.index(self.agent) if self.agent in choices else 0
        self.agent = choices[(i + 1) % len(choices)]
        self._main_changed()
        self.notify(f"agent: {self.agent or 'every agent'}", timeout=1.5)

    def action_toggle_pause(self) -> None:
        """Pause or resume refreshing (ingest continues)."""
        self.paused = not self.paused
        self._main_changed()
        for screen in self.screen_stack:
            header = screen.query("#header")
            if header:
                header.first().update(self.header_state())

    def action_filter(self) -> None:
        """Filter rows by text (session id, model, tool)."""
        if not isinstance(self.screen, MainScreen):
            self.pop_screen_to_main()
        self.main.open_filter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`/` is a priority key (typed-ahead text lands in the filter); not in the palette."""
        return not (action == "filter" and isinstance(self.screen, CommandPalette))

    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self._main_changed()

    def pop_screen_to_main(self) -> None:
        while len(self.screen_stack) > 1 and not isinstance(self.screen, MainScreen):
            self.pop_screen()

    def action_help(self) -> None:
        """Show every key."""
        from claude_top.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_export(self) -> None:
        """Write a CSV snapshot of what the screen on top shows: its pane as shown, plus every
        table for what it covers (the window and filter, a session, or one of its turns, and the
        agent the panes keep)."""
        scope = dataclasses.replace(self.snapshot_scope(), agent=self.agent)
        if self.attached is not None:
            self._write_snapshot_remotely(scope, self.clock())
        else:
            self._write_snapshot(scope, self.clock())

    def snapshot_scope(self) -> SnapshotScope:
        """What Ctrl-S writes: the scope of the topmost screen that has one (a help or
        attributes screen exports what is under it)."""
        for screen in reversed(self.screen_stack):
            scope = getattr(screen, "snapshot_scope", None)
            if scope is not None:
                return scope()
        return SnapshotScope(window=self.window, text=self.filter_text or None)

    @work(thread=True, group="export", exit_on_error=False)
    def _write_snapshot(self, scope: SnapshotScope, now_ns: int) -> None:
        try:
            if self.remote:
                result = export_source_snapshot(
                    self.source,
                    self.export_dir,
                    db_path=self.db_path,
                    window=scope.window,
                    window_s=parse_window(scope.window),
                    session_id=scope.session_id,
                    text=scope.text,
                    view=scope.view,
                    now_ns=now_ns,
                    agent=scope.agent,
                )
            else:
                with self.store.reading() as cur:
                    result = export_scope(
                        cur, self.export_dir, scope, db_path=self.db_path, now_ns=now_ns
                    )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.post_message(
                self.Exported(
                    None, error=f"cannot write a snapshot under {self.export_dir}: {reason}"
                )
            )
        except Exception as exc:
            self.post_message(
                self.Exported(None, error=f"snapshot failed: {type(exc).__name__}: {exc}")
            )
        else:
            self.post_message(self.Exported(result.directory, result.snapshot.get("view")))

    @work(thread=True, group="export", exit_on_error=False)
    def _write_snapshot_remotely(self, scope: SnapshotScope, now_ns: int) -> None:
        """Ask the instance this UI is attached to (it holds the database) to write it."""
        body = {"base": str(self.export_dir), "scope": scope.to_doc(), "now_ns": now_ns}
        try:
            answer = json.loads(self.attached.instance.call("POST", "/export", wire.dumps(body)))
        except InstanceError as exc:
            self.post_message(self.Exported(None, error=f"snapshot failed: {exc}"))
        else:
            self.post_message(self.Exported(Path(answer["directory"]), answer.get("view")))

    def on_claude_top_app_exported(self, message: Exported) -> None:
        if message.error is not None or message.directory is None:
            self.notify(message.error or "snapshot failed", severity="error", timeout=10)
            return
        view = message.view
        what = f"{view['file']} ({view['rows']} rows) and " if view else ""
        self.notify(
            f"{what}every table written to {message.directory}/",
            title="CSV snapshot",
            timeout=8,
        )

    def _table(self) -> KeyedTable | None:
        focused = self.screen.focused
        if isinstance(focused, KeyedTable):
            return focused
        tables = self.screen.query(KeyedTable)
        return tables.first() if tables else None

    def action_sort(self) -> None:
        table = self._table()
        if table is not None:
            table.action_cycle_sort()

    def action_reverse(self) -> None:
        table = self._table()
        if table is not None:
            table.action_reverse_sort()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Time window: next", "15m, 1h, 24h, 7d, all  (t)", self.action_cycle_window
        )
        yield SystemCommand("Filter rows", "By session id, model or tool  (/)", self.action_filter)
        yield SystemCommand(
            "Agent: next",
            "Every agent, or only one (claude-code, codex, ...)  (f)",
            self.action_cycle_agent,
        )
        yield SystemCommand(
            "Pause / resume refresh", "Ingest continues  (p)", self.action_toggle_pause
        )
        yield SystemCommand("Help: every key", "(?)", self.action_help)
        yield SystemCommand(
            "Plan limits and budgets", "Windows, burn rate, forecast  (l)", self.action_limits
        )
        yield SystemCommand(
            "Cost history", "Per day, week, month by model; top projects  (h)", self.action_history
        )
        yield SystemCommand(
            "Sort by the next column", "In the focused table  (s)", self.action_sort
        )
        yield SystemCommand("Reverse the sort", "In the focused table  (r)", self.action_reverse)
        yield SystemCommand(
            "Export a CSV snapshot",
            "The focused pane as shown, plus every table  (ctrl+s, e)",
            self.action_export,
        )
        if isinstance(screen, MainScreen):
            for i, pane in enumerate(PANES, 1):
                yield SystemCommand(
                    f"Go to pane {i}: {PANE_NAMES[pane]}",
                    f"({i})",
                    partial(screen.action_pane, pane),
                )
            yield SystemCommand(
                "Tools and models: all sessions / selected session",
                "(a)",
                screen.action_toggle_scope,
            )
            yield SystemCommand(
                "Group sessions and models by person or team",
                "user.email, organization.id, team, workflow_id, stage, ...  (u)",
                screen.action_cycle_group,
            )
            yield SystemCommand(
                "Copy the connect settings", "Shell export lines  (c)", screen.action_copy_env
            )
