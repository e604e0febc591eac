"""Charts: a tool's latency histogram (plotext, via textual-plotext) and cost by model."""

from __future__ import annotations

from array import array

from rich.cells import cell_len
from rich.text import Text
from textual.color import Color
from textual.widget import Widget
from textual_plotext import PlotextPlot

from claude_top.core import format as fmt
from claude_top.ui.panes.table import theme_style

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
    """Histogram of one tool's call durations (ms); a sentence instead when there is nothing
    to bin (no calls, or calls that all took the same time: one bin would fill the plot)."""

    def show(self, tool: str | None, durations: array[float], calls: int | None = None) -> None:
        """Draw `tool`'s durations (kept as given, not copied); a no-op when nothing changed.
        `calls`: how many calls it made, when some have no duration (known from transcripts)."""
        state = (tool, durations, calls)
        if state == self.state:
            return
        self.state = state
        self._redraw()

    def _redraw(self, force: bool = False) -> None:
        if self.state is None:
            return
        tool, durations, calls = self.state
        plt = self.plt
        if self.note() is not None:
            self.refresh()
            return
        n = len(durations)
        self._frame(f"{tool} latency, {_timed(n, calls)}")
        bins = max(1, min(20, n))
        plt.hist(list(durations), bins=bins, color=_theme_rgb(self.app, "accent"))
        plt.yticks([0, max(bin_counts(durations, bins))])
        lo, hi = min(durations), max(durations)
        ticks = [lo + (hi - lo) * k / 4 for k in range(5)] if hi > lo else [lo]
        plt.xticks(ticks, [fmt.duration_ms(t) for t in ticks])
        self.refresh()

    def note(self) -> Text | None:
        """What is shown instead of a histogram, if anything."""
        if self.state is None:
            return None
        tool, durations, calls = self.state
        muted = theme_style(self.app, "muted")
        if not tool:
            return Text("latency: no tool calls in view", style=muted, justify="center")
        if not durations:
            said = "no durations recorded\n(transcripts carry none: switch telemetry on)"
            return Text(f"{tool} latency\n\n", justify="center") + Text(said, style=muted)
        lo, hi = min(durations), max(durations)
        if lo != hi:
            return None
        took = fmt.duration_ms(lo)
        n = len(durations)
        if calls is not None and calls > n:
            said = f"{_timed(n, calls)}: {'it' if n == 1 else 'each'} took {took}"
        elif n == 1:
            said = f"its one call took {took}"
        else:
            said = f"each of its {n} calls took {took}"
        return Text(f"{tool} latency\n\n", justify="center") + Text(said, style=muted)

    def render(self):
        note = self.note()
        return note if note is not None else super().render()


def _timed(n: int, calls: int | None) -> str:
    """`5 calls`, or `1 of 5 calls timed` when the others have no duration (a transcript's)."""
    if calls is not None and calls > n:
        return f"{n} of {fmt.plural(calls, 'call')} timed"
    return fmt.plural(n, "call")


class CostChart(Widget):
    """Horizontal bars: cost per model, the most expensive on top, one row each, each bar as
    long as its share of the largest (to an eighth of a cell), its cost beside it.

    Drawn here rather than by plotext, which smears bars across rows (with three models the
    second was drawn as long as the first).
    """

    DEFAULT_CSS = """
    CostChart { height: 1fr; width: 1fr; padding: 0 1; background: $surface; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.state: tuple[tuple[str, float], ...] | None = None
        """What is drawn: ((model, cost), ...); None before any data."""

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh())

    def show(self, rows: list[dict]) -> None:
        """Draw cost per model from `queries.models` rows; a no-op when nothing changed."""
        state = tuple((fmt.short_model(r["model"]), round(r["cost_usd"] or 0.0, 6)) for r in rows)
        if state == self.state:
            return
        self.state = state
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size
        bars = sorted(self.state or (), key=lambda b: -b[1])
        shown = bars[: max(1, height - 1)]
        muted = theme_style(self.app, "muted")
        if not shown:
            return Text("cost by model: no API requests in view", style=muted, no_wrap=True)
        title = "cost by model (USD)"
        if len(shown) < len(bars):
            title = f"cost (USD): top {len(shown)} of {len(bars)} models"
        out = Text(title, style=muted, no_wrap=True, overflow="ellipsis")
        name_w = max(cell_len(name) for name, _ in shown)
        costs = [fmt.cost(cost) for _, cost in shown]
        cost_w = max(len(c) for c in costs)
        cells = max(1, width - name_w - cost_w - 2)
        top = shown[0][1]
        colour = theme_style(self.app, "success")
        for (name, cost), label in zip(shown, costs, strict=True):
            eighths = round(cost / top * cells * 8) if top > 0 else 0
            bar = bar_text(eighths)
            out.append("\n" + name.rjust(name_w) + " ")
            out.append(bar, style=colour)
            out.append(" " * (cells - cell_len(bar)) + " " + label.rjust(cost_w))
        return out


def bar_text(eighths: int) -> str:
    """A bar `eighths`/8 cells long: full blocks, then one partial block."""
    full, part = divmod(max(0, eighths), 8)
    return "█" * full + (PARTIAL_BLOCKS[part - 1] if part else "")


PARTIAL_BLOCKS = "▏▎▍▌▋▊▉"
"""One to seven eighths of a cell, left-aligned."""
