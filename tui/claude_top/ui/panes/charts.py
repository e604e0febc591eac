"""plotext charts (textual-plotext): a tool's latency histogram and cost by model."""

from __future__ import annotations

from array import array

from rich.text import Text
from textual.color import Color
from textual_plotext import PlotextPlot

from claude_top.core import format as fmt

FRAME_ROWS = 4
"""Rows of a plot that are not plot area: title, top and bottom frame, tick labels."""


def bin_counts(data: list[float], bins: int) -> list[int]:
    """Calls per bin, binned as plotext's `hist` bins them.

    The y axis is labelled only at 0 and the tallest bin: plotext picks among ticks that land on
    one row in an order that varies between runs.
    """
    lo, hi = min(data), max(data)
    out = [0] * bins
    for x in data:
        out[bins - 1 if x == hi else int((x - lo) / (hi - lo) * bins)] += 1
    return out


def _theme_rgb(app, name: str) -> tuple[int, int, int]:
    value = app.theme_variables.get(name) or app.theme_variables.get("foreground", "white")
    return Color.parse(value).rgb


class Chart(PlotextPlot):
    """A plot redrawn only when what it shows changes."""

    DEFAULT_CSS = """
    Chart { height: 1fr; width: 1fr; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.state: tuple | None = None
        """What is drawn: (tool, durations) or ((model, cost), ...); None before any data."""

    def on_mount(self) -> None:
        super().on_mount()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._redraw(force=True))

    def _redraw(self, force: bool = False) -> None:
        raise NotImplementedError

    def _frame(self, title: str) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.title(title)


class LatencyChart(Chart):
    """Histogram of one tool's call durations (ms)."""

    def show(self, tool: str | None, durations: array[float]) -> None:
        """Draw `tool`'s durations (kept as given, not copied); a no-op when nothing changed."""
        state = (tool, durations)
        if state == self.state:
            return
        self.state = state
        self._redraw()

    def _redraw(self, force: bool = False) -> None:
        if self.state is None:
            return
        tool, durations = self.state
        plt = self.plt
        if not tool or not durations:
            self._frame("latency: no tool calls in view")
            self.refresh()
            return
        n = len(durations)
        self._frame(f"{tool} latency, {fmt.plural(n, 'call')}")
        bins = max(1, min(20, n))
        plt.hist(list(durations), bins=bins, color=_theme_rgb(self.app, "accent"))
        plt.yticks([0, max(bin_counts(durations, bins))])
        lo, hi = min(durations), max(durations)
        ticks = [lo + (hi - lo) * k / 4 for k in range(5)] if hi > lo else [lo]
        plt.xticks(ticks, [fmt.duration_ms(t) for t in ticks])
        self.refresh()


class CostChart(Chart):
    """Horizontal bars: cost (USD) per model, the most expensive on top, one row each.

    plotext smears horizontal bars across rows unless each bar gets a whole number of rows, so
    the plot is exactly as tall as its bars (and shows the top models when they do not all fit).
    """

    def show(self, rows: list[dict]) -> None:
        """Draw cost per model from `queries.models` rows; a no-op when nothing changed."""
        state = tuple((fmt.short_model(r["model"]), round(r["cost_usd"] or 0.0, 6)) for r in rows)
        if state == self.state:
            return
        self.state = state
        self.refresh()

    def _redraw(self, force: bool = False) -> None:
        self.refresh()

    def render(self) -> Text:
        width, height = self.size
        bars = sorted(self.state or (), key=lambda b: -b[1])
        shown = bars[: max(1, height - FRAME_ROWS)]
        plt = self.plt
        if not shown:
            self._frame("cost by model: no API requests in view")
        elif len(shown) < len(bars):
            self._frame(f"cost (USD): top {len(shown)} of {len(bars)} models")
        else:
            self._frame("cost by model (USD)")
        if shown:
            plt.bar(
                [name for name, _ in reversed(shown)],
                [cost for _, cost in reversed(shown)],
                orientation="horizontal",
                color=_theme_rgb(self.app, "success"),
            )
            height = min(height, len(shown) + FRAME_ROWS)
        plt.plotsize(width, height)
        plt._set_size(width, height)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        return Text.from_ansi(plt.build())
