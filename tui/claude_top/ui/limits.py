"""The app's view of the plan limits and budgets, and its alerts.

`LimitsMonitor` keeps `state` (a `core.queries.limits.Limits`) current for every screen: it
loads in a thread worker when something it sums may have changed (an export committed or
indexed, a status-line sample stored) and every RELOAD_S (the burn window's edge, the budgets'
periods), never while paused. What moves with the clock (ages, countdowns) is derived from
`state` by who shows it. Each load also finds the new threshold crossings (`core.alerts`, each
once, remembered in the database) and tells the user: a toast, the terminal bell, a desktop
notification (notify-send, else the terminal's own), and the `--alert-command`. The header takes
the warning or error colour while a window stays at or past a threshold (`header_alert`).
"""

from __future__ import annotations

import time
from functools import partial

from claude_top.core import alerts as core_alerts
from claude_top.core.budgets import LimitSettings
from claude_top.core.format import NS_PER_S
from claude_top.core.queries.limits import Limits
from claude_top.ui.data import load_limits

RELOAD_S = 30
TICK_S = 1.0


class LimitsMonitor:
    """Loads the limits for the app, and alerts."""

    def __init__(self, app, settings: LimitSettings) -> None:
        self.app = app
        self.settings = settings
        self.state: Limits | None = None
        self.generation = 0
        """Moves on with each load applied (views redraw when it changes)."""
        self.alerts: list[core_alerts.Alert] = []
        """Every alert given since start, newest last."""
        self.error: str | None = None
        self._given: set[str] = set()
        """The alert keys given here: what a UI without the database (attached to an
        instance) or with it read-only cannot write down, so each is given once."""
        self._loading = False
        self._mark: tuple | None = None
        self._loaded_at = 0.0

    def start(self) -> None:
        self.app.set_interval(TICK_S, self.tick)
        self.tick()

    def mark(self) -> tuple:
        """Changes whenever what the limits sum may have: exports, samples, a prune."""
        receivers = getattr(self.app, "receivers", None)
        statusline = getattr(receivers, "statusline", None)
        return (*self.app.ingest_mark(), getattr(statusline, "stored", 0))

    def tick(self) -> None:
        if self._loading or self.app.paused or self.app.remote:  # a team's source has none
            return
        mark = self.mark()
        due = (
            self.state is None
            or mark != self._mark
            or time.monotonic() - self._loaded_at >= RELOAD_S
            or self._a_reset_passed()
        )
        if due:
            self._mark = mark
            self.load()

    def _a_reset_passed(self) -> bool:
        now = self.app.clock()
        return any(
            w.resets_at is not None and not w.expired and w.resets_at * NS_PER_S <= now
            for w in self.state.windows
        )

    def load(self) -> None:
        """Query again now, in a thread worker (one at a time)."""
        if self._loading:
            return
        self._loading = True
        self._loaded_at = time.monotonic()
        self.app.run_worker(
            partial(self._load, self.app.clock()),
            thread=True,
            group="limits",
            exit_on_error=False,
        )

    def _load(self, now_ns: int) -> None:
        try:
            state = load_limits(self.app.source, self.settings, now_ns)
            store = self.app.store
            fired = set(self._given)
            if store is not None:
                with store.reading() as cur:
                    fired |= core_alerts.fired_keys(cur)
            new = core_alerts.crossings(state, self.settings.alert_at, fired)
            for a in new:  # and the lower thresholds it jumped past
                base = a.key.rsplit(":", 1)[0]
                self._given |= {f"{base}:{t:g}" for t in self.settings.alert_at if t <= a.threshold}
            if new and store is not None and not store.read_only:
                core_alerts.remember(store, new, self.settings.alert_at)
        except Exception as exc:
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._apply, state, new)

    def _failed(self, error: str) -> None:
        self._loading = False
        if error != self.error:
            self.app.notify(f"limits query failed: {error}", severity="error", timeout=8)
        self.error = error

    def _apply(self, state: Limits, new: list[core_alerts.Alert]) -> None:
        self._loading = False
        self.error = None
        self.state = state
        self.generation += 1
        for alert in new:
            self._tell(alert)
        self.app.limits_changed()

    # --- telling the user ------------------------------------------------------------------

    def _tell(self, alert: core_alerts.Alert) -> None:
        self.alerts.append(alert)
        severity = "error" if alert.level == "error" else "warning"
        self.app.notify(alert.message, title="claude-top limit", severity=severity, timeout=15)
        s = self.settings
        if s.bell:
            self.app.bell()
        if s.desktop and not core_alerts.notify_send(alert):
            seq = core_alerts.terminal_notification("claude-top", alert.message)
            if seq is not None:
                self._write_to_terminal(seq)
        if s.alert_command:
            core_alerts.run_command(
                s.alert_command,
                alert,
                on_error=lambda message: self.app.call_from_thread(
                    self.app.notify, message, severity="error", timeout=10
                ),
            )

    def _write_to_terminal(self, seq: str) -> None:
        """Past Textual's renderer, straight to the terminal (its driver), where there is one."""
        driver = getattr(self.app, "_driver", None)
        write = getattr(driver, "write", None)
        if write is None:
            return
        try:
            write(seq)
            flush = getattr(driver, "flush", None)
            if flush is not None:
                flush()
        except Exception:  # a headless or test driver
            pass

    def header_alert(self, now_ns: int) -> tuple[str, str] | None:
        """(text, "warning" or "error") while a live window is at or past a threshold: the
        one most used."""
        if self.state is None:
            return None
        worst = None
        for w in self.state.windows:
            if w.used_percentage is None or w.gone(now_ns):
                continue
            level = core_alerts.level_of(w.used_percentage, self.settings.alert_at)
            if level and (worst is None or w.used_percentage > worst[0].used_percentage):
                worst = (w, level)
        if worst is None:
            return None
        w, level = worst
        name = f"{w.label} budget" if w.source == "budget" else w.label
        return f"⚠ {name} {w.used_percentage:.0f}%", level
