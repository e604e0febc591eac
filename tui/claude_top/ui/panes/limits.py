"""The limits strip: one line under the header with each plan window or budget (percentage,
gauge, countdown to reset, forecast) and the latest session's context window and prompt cache.

It shows only when there is something to show: an official window (a status-line sample) or a
budget. It reads `app.limits_monitor.state` (no query of its own) and re-derives what moves with
the clock (countdowns, ages, staleness) each second; parts are dropped, least useful first, to
fit the width.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from claude_top.core import alerts
from claude_top.core.format import NS_PER_S
from claude_top.core.queries.limits import OK, Limits, SessionGauge, Window
from claude_top.ui.panes.table import theme_style

SEP = " │ "
GAUGE_CELLS = 10
FULL, EMPTY = "█", "░"


def countdown(seconds: float | None) -> str:
    """`3h12m`, `2d15h`, `19m`, `42s` ("-" when unknown)."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m" if s >= 60 else f"{s}s"


def gauge(pct: float, cells: int = GAUGE_CELLS) -> str:
    filled = max(0, min(cells, round(pct / 100 * cells)))
    return FULL * filled + EMPTY * (cells - filled)


def window_label(w: Window) -> str:
    return f"{w.label} budget" if w.source == "budget" else w.label


def shown_windows(state: Limits, now_ns: int) -> list[Window]:
    """Official windows, then the budgets an official window does not already cover."""
    covered = {"5h"} if any(w.name == "five_hour" for w in state.official) else set()
    out = [w for w in state.official if w.name != "spend_limit" or not w.gone(now_ns)]
    return out + [w for w in state.budgets if w.label not in covered]


def latest_gauge(state: Limits) -> SessionGauge | None:
    return state.sessions[0] if state.sessions else None


class LimitsStrip(Widget):
    """One line of plan limits and budgets across the main view."""

    DEFAULT_CSS = """
    LimitsStrip { height: 1; display: none; background: $boost; }
    LimitsStrip.-shown { display: block; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.add_class("limits-view")
        self._shown: tuple | None = None

    def on_mount(self) -> None:
        self.set_interval(1.0, self.limits_changed)
        self.limits_changed()

    def limits_changed(self) -> None:
        """Redraw if the line changed (new limits, or the clock moved a countdown)."""
        state = self.app.limits_monitor.state
        visible = state is not None and (bool(state.windows) or state.samples > 0)
        self.set_class(visible, "-shown")
        parts = tuple((t.plain, str(t.style)) for _, _, t in self.parts()) if visible else ()
        if parts != self._shown:
            self._shown = parts
            self.refresh()

    def parts(self) -> list[tuple[int, int, Text]]:
        """(priority, group, text) in display order: a window's parts are one group; the
        lowest priority goes first when narrow."""
        app = self.app
        monitor = app.limits_monitor
        state: Limits | None = monitor.state
        if state is None:
            return []
        now = app.clock()
        out: list[tuple[int, int, Text]] = []
        windows = shown_windows(state, now)
        for i, w in enumerate(windows):
            out += [(p, i, t) for p, t in self._window_parts(w, now, 90 - 10 * i)]
        g = latest_gauge(state)
        group = len(windows)
        if g is not None and (g.context_source == "statusline" or state.windows):
            if g.context_used_pct is not None:
                colour = "warning" if g.context_used_pct >= 80 else None
                ctx = Text(f"ctx {g.context_used_pct:.0f}%", style=theme_style(app, colour))
                out.append((62, group, ctx))
            left = g.cache_left_s(now)
            if left is not None:
                text = f"cache {countdown(left)}" if left > 0 else "cache cold"
                muted = theme_style(app, "muted" if not left else None)
                out.append((35, group, Text(text, style=muted)))
        if not state.windows:
            out.append((30, group + 1, Text("no plan limits yet", style=theme_style(app, "muted"))))
        out.append((5, group + 2, Text("l limits · h history", style=theme_style(app, "muted"))))
        return out

    def _window_parts(self, w: Window, now: int, priority: int) -> list[tuple[int, Text]]:
        app = self.app
        label = window_label(w)
        if w.gone(now):
            return [(priority - 30, Text(f"{label} reset", style=theme_style(app, "muted")))]
        pct = w.used_percentage or 0.0
        level = alerts.level_of(pct, app.limits_monitor.settings.alert_at)
        colour = level  # the theme's "warning" or "error" colour
        stale = w.stale(now)
        head = Text(f"{label} {pct:.0f}%{'?' if stale else ''}", style=theme_style(app, colour))
        head.stylize("bold", 0, len(label))
        out = [(priority, head)]
        out.append((priority - 50, Text(gauge(pct), style=theme_style(app, colour or "accent"))))
        if w.resets_at is not None:
            out.append((priority - 5, Text(f"↻{countdown(w.resets_at - now / NS_PER_S)}")))
        if stale:
            age = countdown(w.age_s(now))
            out.append((priority - 8, Text(f"stale {age}", style=theme_style(app, "warning"))))
            return out
        f = w.forecast
        if f.note == OK and f.eta_full is not None:
            eta = countdown(f.eta_full - now / NS_PER_S)
            out.append((priority - 20, Text(f"full in {eta}", style=theme_style(app, "warning"))))
        elif f.note == OK and f.projected_at_reset is not None:
            out.append((priority - 25, Text(f"~{f.projected_at_reset:.0f}% at reset")))
        return out

    def render(self) -> Text:
        parts = self.parts()
        chosen: set[int] = set()
        width = self.size.width - 1

        def line(indices) -> Text:
            groups: dict[int, list[Text]] = {}
            for i in sorted(indices):
                groups.setdefault(parts[i][1], []).append(parts[i][2])
            return Text(SEP).join(Text(" ").join(g) for g in groups.values())

        for i in sorted(range(len(parts)), key=lambda i: -parts[i][0]):
            if line(chosen | {i}).cell_len <= width:
                chosen.add(i)
        out = Text(" ") + line(chosen)
        out.no_wrap = True
        out.overflow = "ellipsis"
        return out
