"""`h`: cost history. The exact cost of the last 30, 90 or 365 days (`t`), per day, week or
month (`d` `w` `m`), as bars stacked by model; the periods and the projects (working
directories) that cost the most. Ctrl-S writes what is shown as CSV.

Queried again when new data arrives or the settings change; "now" moving into a new period
(midnight) makes it stale.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from claude_top.core import format as fmt
from claude_top.core.format import NS_PER_S
from claude_top.core.queries import periods
from claude_top.ui.data import HISTORY_RANGES_DAYS, HistoryData, HistoryQuery, load_history
from claude_top.ui.panes.footer import KeysFooter
from claude_top.ui.panes.header import HeaderBar
from claude_top.ui.panes.history import (
    CostHistoryChart,
    Legend,
    PeriodsTable,
    ProjectsTable,
    period_rows,
)
from claude_top.ui.screens.live import LiveScreen

NAMES = {"day": "day", "week": "week", "month": "month"}


class HistoryScreen(LiveScreen):
    """Cost per period by model, and the top projects."""

    AUTO_FOCUS = "#history-periods"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="history.back"),
        Binding("d", "period('day')", "Per day", id="history.day"),
        Binding("w", "period('week')", "Per week", id="history.week"),
        Binding("m", "period('month')", "Per month", id="history.month"),
        Binding("t", "cycle_range", "Range", tooltip="30, 90 or 365 days", id="history.range"),
        Binding(
            "ctrl+s,e",
            "export",
            "Export CSV",
            tooltip="the periods by model and the projects shown",
            key_display="ctrl+s / e",
            id="history.export",
        ),
    ]

    def __init__(self, range_days: int = HISTORY_RANGES_DAYS[0], period: str = "day") -> None:
        super().__init__()
        self.range_days = range_days
        self.period = period
        self.data: HistoryData | None = None

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Vertical(id="history-chart-pane", classes="pane"):
            yield CostHistoryChart(id="history-chart")
            yield Legend(id="history-legend")
        with Horizontal(id="history-tables"):
            with Vertical(id="history-periods-pane", classes="pane"):
                yield Static("", id="history-periods-empty", classes="empty-note")
                yield PeriodsTable(id="history-periods")
            with Vertical(id="history-projects-pane", classes="pane"):
                yield Static("", id="history-projects-empty", classes="empty-note")
                yield ProjectsTable(id="history-projects")
        yield KeysFooter()

    def on_mount(self) -> None:
        self._titles()
        self.tick()
        super().on_mount()

    def tick(self) -> None:
        self.query_one(HeaderBar).update(self.app.header_state())

    # --- the loop ----------------------------------------------------------------------

    def load_inputs(self, reason: str) -> HistoryQuery:
        return HistoryQuery(self.range_days, self.period, self.app.clock())

    def load(self, inputs: HistoryQuery) -> HistoryData:
        return load_history(self.app.source, inputs)

    def stale(self, now_ns: int) -> bool:
        """A new period began (or the clock went back) since the query."""
        d = self.data
        if d is None or not d.history.starts:
            return False
        if now_ns < d.query.now_ns:
            return True
        current = d.history.starts[-1]
        return now_ns // NS_PER_S >= periods.next_start(d.query.period, current)

    def show(self, data: HistoryData, reason: str) -> None:
        self.data = data
        h = data.history
        self.query_one(CostHistoryChart).show(h)
        self.query_one(Legend).show(h)
        self.query_one(PeriodsTable).set_rows(period_rows(h))
        self.query_one(ProjectsTable).set_rows(data.projects)
        note = "" if sum(h.requests) else f"No API requests in the last {self.range_days} days"
        for name in ("periods", "projects"):
            empty = self.query_one(f"#history-{name}-empty", Static)
            empty.update(f"{note} (t: range)." if note else "")
            empty.display = bool(note)
        self._titles()

    def _titles(self) -> None:
        noun = NAMES[self.period]
        chart = self.query_one("#history-chart-pane")
        chart.border_title = f"Cost history · last {self.range_days} days · per {noun}"
        d = self.data
        if d is not None and d.history.labels:
            h = d.history
            days = max(1, (d.query.now_ns // NS_PER_S - h.starts[0]) / 86400)
            chart.border_subtitle = (
                f"{fmt.cost(h.total)} · {fmt.plural(sum(h.requests), 'request')} · "
                f"{fmt.cost(h.total / days)} a day · d/w/m: period · t: range"
            )
        self.query_one("#history-periods-pane").border_title = f"Per {noun}"
        self.query_one("#history-projects-pane").border_title = "Top projects"

    # --- actions -----------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_period(self, period: str) -> None:
        if period != self.period:
            self.period = period
            self._titles()
            self.request_load("settings")

    def action_cycle_range(self) -> None:
        ranges = HISTORY_RANGES_DAYS
        i = ranges.index(self.range_days) if self.range_days in ranges else -1
        self.range_days = ranges[(i + 1) % len(ranges)]
        self._titles()
        self.request_load("settings")
        self.notify(f"range: last {self.range_days} days", timeout=1.5)

    def action_export(self) -> None:
        if self.data is None:
            return
        self._export(self.data, Path(self.app.export_dir))

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, data: HistoryData, folder: Path) -> None:
        try:
            written = write_history_csv(data, folder)
        except OSError as exc:
            self.app.call_from_thread(
                self.notify,
                f"cannot write under {folder}: {exc.strerror or exc}",
                severity="error",
                timeout=10,
            )
            return
        self.app.call_from_thread(
            self.notify, f"written to {written}/", title="CSV snapshot", timeout=8
        )


def write_history_csv(data: HistoryData, folder: Path) -> Path:
    """`claude-top-history-<time>/`: cost by period and model, the periods and the projects, as
    shown (the range and period in the folder's README line). Returns the folder."""
    stamp = datetime.fromtimestamp(data.query.now_ns / NS_PER_S).strftime("%Y%m%d-%H%M%S")
    out = folder / f"claude-top-history-{stamp}"
    n = 2
    while out.exists():
        out = folder / f"claude-top-history-{stamp}-{n}"
        n += 1
    out.mkdir(parents=True)
    h = data.history
    with open(out / f"cost_by_{h.period}_and_model.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["period", "start", "model", "cost_usd"])
        for r in h.rows():
            w.writerow([r["period"], _iso(r["start"]), r["model"], f"{r['cost_usd']:.9f}"])
    with open(out / f"cost_by_{h.period}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["period", "start", "cost_usd", "requests", "tokens", "top_model"])
        for r in period_rows(h)[::-1]:
            w.writerow(
                [r["period"], _iso(r["start"]), f"{r['cost_usd']:.9f}", r["requests"],
                 r["tokens"], r["top_model"]]
            )  # fmt: skip
    with open(out / "top_projects.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["project", "cost_usd", "requests", "sessions", "last_at"])
        for r in data.projects:
            w.writerow(
                [r["project"], f"{r['cost_usd']:.9f}", r["requests"], r["sessions"],
                 _iso(r["last_ns"] / NS_PER_S) if r["last_ns"] else ""]
            )  # fmt: skip
    (out / "README.txt").write_text(
        f"claude-top cost history: last {data.query.range_days} days per {h.period}, as of "
        f"{_iso(data.query.now_ns / NS_PER_S)} (local time periods).\n"
    )
    return out


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s).astimezone().isoformat(timespec="seconds")
