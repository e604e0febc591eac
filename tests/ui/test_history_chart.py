"""The cost history chart's y axis: round values, evenly spaced, each on a row of its own."""

from __future__ import annotations

import itertools
import re

import plotext as plt
import pytest

from claude_top.ui.panes.charts import FRAME_ROWS
from claude_top.ui.panes.history import stacked_bars, y_ticks


@pytest.mark.parametrize(
    ("top", "height", "labels"),
    [
        (0.82 * 1.05, 10, ["0.0", "0.5"]),
        (0.82 * 1.05, 14, ["0.0", "0.2", "0.4", "0.6", "0.8"]),
        (37.3 * 1.05, 20, ["0", "10", "20", "30"]),
        (0.0061 * 1.05, 10, ["0.0000", "0.0025", "0.0050"]),
        (1234.0, 30, ["0", "250", "500", "750", "1000"]),
    ],
)
def test_every_label_is_drawn_on_its_own_row_evenly_spaced(top, height, labels):
    values, got = y_ticks(top, height - FRAME_ROWS)
    assert got == labels
    assert [float(v) for v in got] == pytest.approx(values)
    plt.clear_figure()
    plt.bar([1, 2, 3], [top / 3, top / 2, top / 1.05])
    plt.ylim(0, top)
    plt.yticks(values, got)
    plt.plotsize(40, height)
    plt.title("t")
    text = re.sub(r"\x1b\[[0-9;]*m", "", plt.build())
    rows = [
        (i, m.group(1))
        for i, line in enumerate(text.splitlines())
        if (m := re.match(r"^\s*(\S+)┤", line))
    ]
    assert [label for _, label in rows] == labels[::-1]  # none dropped, top first
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(rows)]
    assert min(gaps) >= 2 and max(gaps) - min(gaps) <= 1  # a blank row between, even steps


def test_an_empty_chart_has_one_tick():
    assert y_ticks(0.0, 6) == ([0.0], ["0"])


def test_a_day_without_cost_has_no_bar_and_every_bar_stands_on_the_axis():
    """Costs of the limits capture's two days (11-22: $0.0678 + $0.0371, 12-05: $0.0427) on a
    ten-day chart whose first day, like most, had none."""
    days = 10
    sonnet4, sonnet5, opus = [0.0] * days, [0.0] * days, [0.0] * days
    sonnet4[5], opus[5], sonnet5[9] = 0.0678, 0.0371, 0.0427
    plt.clear_figure()
    top = stacked_bars(plt, [sonnet4, sonnet5, opus], ["blue", "green", "orange"], 0.8)
    assert top == pytest.approx(0.0678 + 0.0371)  # the tallest stack, 11-22
    plt.ylim(0, 0.1049 * 1.05)
    plt.plotsize(60, 12)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", plt.build()).splitlines()
    bottom = [line for line in lines if "┤" in line][-1]  # the row of 0
    plot = bottom[bottom.index("┤") + 1 : -1]
    runs = [m.start() + len(m.group()) / 2 for m in re.finditer("█+", plot)]
    assert [int(c / (len(plot) / days)) for c in runs] == [5, 9]  # only the two days, from 0
