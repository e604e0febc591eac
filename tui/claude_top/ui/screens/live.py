"""The refresh loop every data screen shares: poll for new data, one load at a time in a thread
worker, one message back, and nothing while another screen covers this one.

A `LiveScreen` checks four times a second whether what is stored changed (`app.ingest_mark()`)
or what it holds went stale (`stale`), and then loads again: `load_inputs` runs on the UI thread
(read the widgets), `load` in a worker thread (query the source), `show` on the UI thread (apply
the result as keyed diffs). A load asked for while one runs is queued, once. When the clock's
second changes, `retime` moves what is derived from the clock (ages, active/idle) without a
query. A covered screen skips all of it; it catches up when it is shown again.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.events import ScreenResume
from textual.message import Message
from textual.screen import Screen

from claude_top.core.format import NS_PER_S

POLL_S = 0.25
"""How often a screen checks for new commits (a new export shows within this + a query) and
moves ages and status on."""


class LiveScreen(Screen):
    """A screen of query results kept current; subclasses say what to load and how to show it."""

    class Loaded(Message):
        """One load's result (or the error that stopped it)."""

        def __init__(self, data: Any, reason: str, error: str | None = None) -> None:
            super().__init__()
            self.data = data
            self.reason = reason
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.loaded = False
        self._loading = False
        self._pending: str | None = None
        """Why another load is wanted once the running one finishes."""
        self._seen_mark: tuple[int, ...] | None = None
        self._shown_s: int | None = None
        """The clock second the ages and status show."""
        self._error: str | None = None

    # --- what a screen says ------------------------------------------------------------------

    def load_inputs(self, reason: str) -> Any:
        """What the next load needs from the screen (UI thread)."""
        return None

    def load(self, inputs: Any) -> Any:
        """Query the source (worker thread); the result goes to `show`."""
        raise NotImplementedError

    def show(self, data: Any, reason: str) -> None:
        """Apply a load's result (UI thread)."""
        raise NotImplementedError

    def stale(self, now_ns: int) -> bool:
        """What is shown went out of date with the clock alone (a window edge moved)."""
        return False

    def retime(self, now_ns: int) -> None:
        """Move what is derived from the clock, without a query."""

    def tick(self) -> None:
        """Four times a second, before anything else (the header)."""

    # --- the loop ----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A load is running or queued, or none has finished yet (tests wait for this)."""
        return not self.loaded or self._loading or self._pending is not None

    def on_mount(self) -> None:
        self.set_interval(POLL_S, self._tick)
        self._seen_mark = self.app.ingest_mark()
        self.request_load("start")

    def on_screen_resume(self, event: ScreenResume) -> None:
        if self.loaded and self.app.ingest_mark() != self._seen_mark:
            self._tick()

    def _tick(self) -> None:
        if not self.is_current:
            return
        self.tick()
        if self.app.paused:
            return
        mark = self.app.ingest_mark()
        now = self.app.clock()
        if mark != self._seen_mark:
            self._seen_mark = mark
            self.request_load("tick")
        elif not self._loading and self.loaded and self.stale(now):
            self.request_load("tick")
        if self.loaded and now // NS_PER_S != self._shown_s:
            self._shown_s = now // NS_PER_S
            self.retime(now)

    def request_load(self, reason: str = "tick") -> None:
        """Load now, or as soon as the running load finishes (one at a time)."""
        if self._loading:
            if self._pending is None or reason != "tick":
                self._pending = reason
            return
        self._loading = True
        self._pending = None
        self._run_load(self.load_inputs(reason), reason)

    @work(thread=True, exclusive=True, group="live-load", exit_on_error=False)
    def _run_load(self, inputs: Any, reason: str) -> None:
        try:
            data = self.load(inputs)
        except Exception as exc:
            self.post_message(self.Loaded(None, reason, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Loaded(data, reason))

    def on_live_screen_loaded(self, message: Loaded) -> None:
        message.stop()
        self._loading = False
        if message.error:
            if message.error != self._error:
                self.notify(f"query failed: {message.error}", severity="error", timeout=8)
            self._error = message.error
        else:
            self._error = None
            self._shown_s = self.app.clock() // NS_PER_S
            self.show(message.data, message.reason)
        self.loaded = True
        if self._pending is not None:
            self.request_load(self._pending)
