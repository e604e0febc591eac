"""The cost history view's parts: a stacked bar chart of cost per period by model (plotext),
its legend, and the periods and projects tables."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widgets import Static
from textual_plotext import PlotextPlot

from claude_top.core import format as fmt
from claude_top.core.queries.history import CostHistory
from claude_top.ui.panes.charts import FRAME_ROWS, _theme_rgb
from claude_top.ui.panes.table import Col, KeyedTable, theme_style

MODEL_COLOURS = ("primary", "success", "accent", "error", "secondary", "warning")
"""Theme colours the models take in turn, the most expensive first; the rest share the last."""
MAX_MODELS = len(MODEL_COLOURS)
OTHER = "other models"
Y_LABEL_COLS = 10
NOUN = {"day": "day", "week": "week", "month": "month"}


def stacks(h: CostHistory) -> tuple[list[str], list[list[float]]]:
    """The models a chart shows (the costliest; the rest as one) and their costs per period."""
    models = h.models[: MAX_MODELS - 1] if len(h.models) > MAX_MODELS else h.models
    rest = [m for m in h.models if m not in models]
    series = [h.cost[m] for m in models]
    names = [fmt.short_model(m) for m in models]
    if rest:
        names.append(OTHER)
        series.append([sum(h.cost[m][i] for m in rest) for i in range(len(h.labels))])
    return names, series


def bucket(values: list[float], per_bar: int) -> list[float]:
    """Consecutive values summed `per_bar` at a time, from the newest back (the last bar holds
    the current period)."""
    out = []
    for end in range(len(values), 0, -per_bar):
        out.append(sum(values[max(0, end - per_bar) : end]))
    return out[::-1]


class CostHistoryChart(PlotextPlot):
    """Cost per period, stacked by model; one bar per period, or per few when they outnumber the
    columns."""

    DEFAULT_CSS = """
    CostHistoryChart { height: 1fr; min-height: 8; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.history: CostHistory | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh())

    def show(self, history: CostHistory) -> None:
        self.history = history
        self.refresh()

    def per_bar(self, width: int) -> int:
        n = len(self.history.labels) if self.history else 1
        return max(1, math.ceil(n / max(1, width - Y_LABEL_COLS - 2)))

    def render(self) -> Text:
        width, height = self.size
        plt = self.plt
        plt.clear_figure()
        h = self.history
        if h is None:
            plt.title("loading…")
        elif h.total == 0:
            plt.title(f"no API requests in the last {len(h.labels)} {NOUN[h.period]}s")
        else:
            names, series = stacks(h)
            per = self.per_bar(width)
            bars = [bucket(s, per) for s in series]
            labels = bucket_labels(h.labels, per)
            n = len(labels)
            colours = [_theme_rgb(self.app, c) for c in MODEL_COLOURS[: len(names)]]
            top = stacked_bars(plt, bars, colours, width=1 if per > 1 or n > 40 else 0.8)
            plt.ylim(0, top * 1.05)
            y_values, y_labels = y_ticks(top * 1.05, max(FRAME_ROWS + 1, height) - FRAME_ROWS)
            plt.yticks(y_values, y_labels)
            ticks = tick_positions(n, max(2, (width - Y_LABEL_COLS) // 10))
            plt.xticks(ticks, [short_label(labels[i - 1]) for i in ticks])
            every = f" ({per} {NOUN[h.period]}s a bar)" if per > 1 else ""
            plt.title(f"cost (USD) per {NOUN[h.period]}{every}")
        plt.plotsize(width, max(FRAME_ROWS + 1, height))
        plt._set_size(width, max(FRAME_ROWS + 1, height))
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        return Text.from_ansi(plt.build())


def stacked_bars(plt, series: list[list[float]], colours: list, width: float) -> float:
    """`series` stacked at x = 1..n, the first at the bottom: each layer's running total drawn
    as a bar, the highest first, leaving out the layers that are 0 there (plotext's
    `stacked_bar` draws a zero on the bottom row, showing a cost on a day that had none, and
    covers the bottom of the bar below it). Returns the tallest stack."""
    n = len(series[0]) if series else 0
    totals = [0.0] * n
    layers = []
    for values in series:
        totals = [t + v for t, v in zip(totals, values, strict=True)]
        layers.append((totals, values))
    for (heights, values), colour in reversed(list(zip(layers, colours, strict=True))):
        shown = [i for i in range(n) if values[i] > 0]
        if shown:
            plt.bar([i + 1 for i in shown], [heights[i] for i in shown], color=colour, width=width)
    plt.xlim(0.5, n + 0.5)
    return max(totals, default=0.0)


def short_label(label: str) -> str:
    """`2026-12-05` -> `12-05`, `2026-W49` -> `W49`; months stay `2026-12`."""
    _, _, rest = label.partition("-")
    return rest if len(rest) == 5 or rest.startswith("W") else label


def bucket_labels(labels: list[str], per_bar: int) -> list[str]:
    """Each bar's label: the first period it holds."""
    out = []
    for end in range(len(labels), 0, -per_bar):
        out.append(labels[max(0, end - per_bar)])
    return out[::-1]


def y_ticks(top: float, rows: int) -> tuple[list[float], list[str]]:
    """Round cost values from 0 to `top` a step apart (1, 2, 2.5 or 5 times a power of ten),
    at most one every other row of the `rows` the plot has, so each lands on a row of its own
    (plotext's own drop some, leaving an axis with uneven steps), and their labels."""
    if top <= 0:
        return [0.0], ["0"]
    most = max(2, min(6, rows // 2 + 1))
    raw = top / (most - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    values = [k * step for k in range(int(top / step + 1e-9) + 1)]
    decimals = next(d for d in range(12) if abs(round(step, d) - step) <= step * 1e-6)
    return values, [f"{v:.{decimals}f}" for v in values]


def tick_positions(n: int, most: int) -> list[int]:
    """Up to `most` evenly spaced positions among 1..n, always the last one."""
    if n <= most:
        return list(range(1, n + 1))
    step = math.ceil(n / most)
    ticks = list(range(n, 0, -step))[::-1]
    return ticks


class Legend(Static):
    """The chart's models and their colours."""

    def show(self, history: CostHistory) -> None:
        names, series = stacks(history)
        out = Text(" ")
        for i, (name, costs) in enumerate(zip(names, series, strict=True)):
            if i:
                out.append("  ")
            out.append("██ ", style=theme_style(self.app, MODEL_COLOURS[i]))
            out.append(f"{name} {fmt.cost(sum(costs))}")
        self.update(out)


PERIOD_COLUMNS = (
    Col("period", "Period", lambda r: r["period"], lambda r: r["start"]),
    Col("cost", "Cost", lambda r: fmt.cost(r["cost_usd"]), lambda r: r["cost_usd"], right=True),
    Col(
        "requests",
        "Req",
        lambda r: fmt.count(r["requests"]),
        lambda r: r["requests"],
        right=True,
    ),
    Col("tokens", "Tokens", lambda r: fmt.count(r["tokens"]), lambda r: r["tokens"], right=True),
    Col("top", "Top model", lambda r: r["top_model"], lambda r: r["top_model"], descending=False),
)


def period_rows(h: CostHistory) -> list[dict]:
    """One row per period with any request, newest first."""
    totals = h.totals
    out = []
    for i, label in enumerate(h.labels):
        if not h.requests[i]:
            continue
        top = max(h.models, key=lambda m: h.cost[m][i])
        out.append(
            {
                "period": label,
                "start": h.starts[i],
                "cost_usd": totals[i],
                "requests": h.requests[i],
                "tokens": h.tokens[i],
                "top_model": fmt.short_model(top),
            }
        )
    return out[::-1]


class PeriodsTable(KeyedTable):
    def __init__(self, **kw) -> None:
        super().__init__(PERIOD_COLUMNS, lambda r: r["period"], "period", fixed_columns=1, **kw)


PROJECT_COLUMNS = (
    Col("project", "Project", lambda r: fmt.one_line(r["project"], 48), lambda r: r["project"],
        descending=False),
    Col("cost", "Cost", lambda r: fmt.cost(r["cost_usd"]), lambda r: r["cost_usd"], right=True),
    Col("requests", "Req", lambda r: fmt.count(r["requests"]), lambda r: r["requests"],
        right=True),
    Col("sessions", "Sess", lambda r: fmt.count(r["sessions"]), lambda r: r["sessions"],
        right=True),
)  # fmt: skip


class ProjectsTable(KeyedTable):
    def __init__(self, **kw) -> None:
        super().__init__(PROJECT_COLUMNS, lambda r: r["project"], "cost", fixed_columns=1, **kw)
