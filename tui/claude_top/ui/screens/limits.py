"""`l`: plan limits and budgets in full, and each recent session's context window and cache.

Per window: the official percentage with its source and age (stale after 10 minutes, gone once
its reset passed), the countdown to its reset, the exact cost, tokens and requests inside it,
the burn rate over the last 30 minutes, and the forecast (percentage at the reset and time to
100 %, each with its interval) or why there is none. It shows what the app's `LimitsMonitor`
loaded (no query of its own) and moves the clock-derived parts each second.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from claude_top.core import alerts
from claude_top.core import format as fmt
from claude_top.core.format import NS_PER_S
from claude_top.core.queries.limits import NOT_ENOUGH, OK, Limits, Window
from claude_top.ui.panes.footer import KeysFooter
from claude_top.ui.panes.header import HeaderBar
from claude_top.ui.panes.limits import countdown, gauge, shown_windows
from claude_top.ui.panes.table import theme_style

HOW_TO = (
    "Official plan limits come from Claude Code's status line (Claude.ai subscribers): "
    "`claude-top setup --write` makes `claude-top statusline` the status-line command, keeping "
    "the one you had. Without them (API keys), set budgets: `claude-top --budget "
    "5h=10,day=30,week=150,month=500`, or [budgets] in ~/.config/claude-top/config.toml."
)
NOT_IN_TEAM_VIEW = (
    "Plan limits are not in the team view: they come from each person's Claude Code status "
    "line, which reaches only the claude-top on their laptop (the collector does not carry "
    "it). The team's cost per day, week or month is in the cost history (h)."
)


WIDE = 100
LABEL_COLS = 10


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}%"


def _when(epoch_s: int | None, now_s: float) -> str:
    if epoch_s is None:
        return "-"
    return countdown(epoch_s - now_s)


class LimitsView(Static):
    """The windows and sessions, redrawn when the limits are loaded again or a second passes."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.add_class("limits-view")
        self._shown: str | None = None

    def on_mount(self) -> None:
        self.set_interval(1.0, self.limits_changed)
        self.limits_changed()

    def limits_changed(self) -> None:
        state = self.app.limits_monitor.state
        now = self.app.clock()
        body = self.body(state, now)
        key = repr([getattr(r, "plain", r) for r in body.renderables])
        if key != self._shown:
            self._shown = key
            self.update(body)

    def body(self, state: Limits | None, now: int) -> Group:
        app = self.app
        if app.remote:
            return Group(Text(NOT_IN_TEAM_VIEW, style=theme_style(app, "muted")))
        if state is None:
            return Group(Text("loading…", style=theme_style(app, "muted")))
        out: list = []
        windows = shown_windows(state, now)
        for w in windows:
            out += self._window(w, now)
        if not windows:
            out.append(Text("No plan limits yet.", style=theme_style(app, "bold")))
            out.append(Text(HOW_TO, style=theme_style(app, "muted")))
            out.append(Text(""))
        t = state.today
        out.append(
            Text(
                f"Today {fmt.cost(t.cost_usd)} · {fmt.plural(t.requests, 'request')} · "
                f"{fmt.count(t.input_tokens + t.output_tokens)} tokens in and out · "
                f"{fmt.plural(state.sessions_active, 'active session')}"
            )
        )
        samples = f"Status-line samples: {fmt.count(state.samples)}"
        if state.last_sample_ns:
            samples += f", the last {fmt.age(state.last_sample_ns, now)} ago"
        if state.samples_rejected or state.samples_with_problems:
            samples += (
                f" ({state.samples_rejected} rejected, {state.samples_with_problems} with "
                "fields dropped)"
            )
        out.append(Text(samples, style=theme_style(app, "muted")))
        given = app.limits_monitor.alerts
        if given:
            out.append(Text(f"Last alert: {given[-1].message}", style=theme_style(app, "warning")))
        return Group(*out)

    def _window(self, w: Window, now: int) -> list:
        app = self.app
        now_s = now / NS_PER_S
        wide = self.size.width >= WIDE
        label = w.label
        pad = " " * (LABEL_COLS if wide else 6)
        if w.gone(now):
            return [
                Text(f"{label}: reset at {fmt_clock(w.resets_at)}; the next window is not "
                     "reported yet (it starts with the next request)",
                     style=theme_style(app, "muted")),
                Text(""),
            ]  # fmt: skip
        pct = w.used_percentage or 0.0
        level = alerts.level_of(pct, app.limits_monitor.settings.alert_at)
        head = Text()
        head.append(f"{label:<{len(pad)}}", style=theme_style(app, "bold"))
        bar = gauge(pct, 20 if wide else 10)
        head.append(f"{bar} {pct:.0f}%", style=theme_style(app, level or "accent"))
        if w.source == "official":
            src = f"  official, {countdown(w.age_s(now))} ago"
            head.append(src, style=theme_style(app, "warning" if w.stale(now) else "muted"))
            if w.stale(now):
                head.append(" (stale)", style=theme_style(app, "warning"))
        else:
            head.append(f"  of a ${w.limit_usd:g} budget", style=theme_style(app, "muted"))
        if w.resets_at is not None:
            head.append(f" · resets in {_when(w.resets_at, now_s)}")
            if wide:
                head.append(f" ({fmt_clock(w.resets_at, now_s)})")
        s = w.spent
        spent = Text(
            f"{pad}{fmt.cost(s.cost_usd)} · {fmt.plural(s.requests, 'request')} · "
            f"{fmt.count(s.input_tokens)} in · {fmt.count(s.output_tokens)} out · "
            f"{fmt.count(s.cache_read_tokens)}/{fmt.count(s.cache_creation_tokens)} cache r/w"
        )
        burn = Text(f"{pad}burn ${w.burn_usd_per_hour or 0:.2f}/h")
        if w.burn_pct_per_hour is not None:
            burn.append(f" {w.burn_pct_per_hour:.0f}%/h")
        if wide:
            burn.append(" (last 30 min)")
        burn.append(" · ")
        f = w.forecast
        if f.note == OK:
            rng = ""
            if f.projected_low is not None and f.projected_high != f.projected_low:
                rng = f" ({f.projected_low:.0f}-{_pct(f.projected_high)})"
            burn.append(f"at reset ~{_pct(f.projected_at_reset)}{rng}")
            if f.eta_full is not None:
                lo, hi = f.eta_full_low, f.eta_full_high
                span = ""
                if lo != hi and wide:
                    span = f" ({_when(lo, now_s)}-{_when(hi, now_s) if hi else 'reset'})"
                burn.append(
                    f" · full in {_when(f.eta_full, now_s)}{span}",
                    style=theme_style(app, "warning"),
                )
            else:
                burn.append(" · not full before the reset")
        elif f.note == NOT_ENOUGH:
            burn.append(
                "forecast: not enough data (two official samples apart in cost)",
                style=theme_style(app, "muted"),
            )
        else:
            burn.append(f"forecast: {f.note}", style=theme_style(app, "muted"))
        return [head, spent, burn, Text("")]

    def on_resize(self) -> None:
        self._shown = None
        self.limits_changed()


def fmt_clock(epoch_s: int | None, now_s: float | None = None) -> str:
    """`Sat 09:00` within the coming week, `Jan 01 00:00` beyond (local time)."""
    if epoch_s is None:
        return "-"
    from datetime import datetime

    near = now_s is None or epoch_s - now_s < 6 * 86400
    return datetime.fromtimestamp(epoch_s).strftime("%a %H:%M" if near else "%b %d %H:%M")


class SessionsView(Static):
    """Each recent session's context window and prompt cache."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.add_class("limits-view")
        self._shown: str | None = None

    def on_mount(self) -> None:
        self.set_interval(1.0, self.limits_changed)
        self.limits_changed()

    def limits_changed(self) -> None:
        state = self.app.limits_monitor.state
        now = self.app.clock()
        rows = self.rows(state, now)
        key = repr(rows)
        if key != self._shown:
            self._shown = key
            table = Table(box=None, padding=(0, 1), expand=False, show_edge=False)
            muted = theme_style(self.app, "muted")
            for name in ("Session", "Model", "Context", "", "Cache", "Project"):
                table.add_column(
                    name,
                    justify="right" if name == "" else "left",
                    no_wrap=True,
                    style=muted if name == "Project" else None,
                )
            for row in rows:
                table.add_row(*row)
            self.update(table if rows else Text("No session in the last hour."))

    def rows(self, state: Limits | None, now: int) -> list[tuple]:
        if state is None:
            return []
        out = []
        for g in state.sessions:
            pct = g.context_used_pct
            ctx = "-" if pct is None else gauge(pct, 12)
            estimated = "~" if g.context_source == "estimate" else ""
            shown = "-" if pct is None else f"{pct:.0f}%{estimated}"
            left = g.cache_left_s(now)
            cache = "-" if left is None else (f"warm {countdown(left)}" if left else "cold")
            if left is not None and g.cache_source == "estimate":
                cache += "~"
            out.append((fmt.short_id(g.session_id), fmt.short_model(g.model or "-"), ctx,
                        shown, cache, g.project or ""))  # fmt: skip
        return out


class LimitsScreen(Screen):
    """Plan limits, budgets and the sessions' context; Esc goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="limits.back"),
        Binding("r", "reload", "Reload", tooltip="query the limits again now", id="limits.reload"),
    ]

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with VerticalScroll(id="limits-pane", classes="pane"):
            yield LimitsView(id="limits-view")
        with VerticalScroll(id="gauges-pane", classes="pane"):
            yield SessionsView(id="sessions-view")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#limits-pane").border_title = "Plan limits and budgets"
        self.query_one("#limits-pane").border_subtitle = "~ estimated · ? stale"
        self.query_one("#gauges-pane").border_title = "Sessions: context window and prompt cache"
        self.query_one("#gauges-pane").border_subtitle = "last hour · ~ estimated from requests"
        if self.app.remote:  # a team's source holds neither limits nor context gauges
            self.query_one("#limits-pane").border_subtitle = ""
            self.query_one("#gauges-pane").display = False
        self.set_interval(0.25, self._header)
        self._header()

    def _header(self) -> None:
        self.query_one(HeaderBar).update(self.app.header_state())

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_reload(self) -> None:
        self.app.limits_monitor.load()
