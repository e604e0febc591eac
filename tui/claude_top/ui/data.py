"""What one refresh of the main view asks for, and everything it gets back in one message.

`load_main` runs in a thread worker with its own reader of the source (the local store, or
another place to read from) and returns a `MainData`; the screen applies it on the UI thread.
Nothing here touches widgets.
"""

from __future__ import annotations

import dataclasses
import math
import time
from array import array
from dataclasses import dataclass, field

from claude_top.core.budgets import LimitSettings
from claude_top.core.format import NS_PER_S
from claude_top.core.queries.filters import Filter, parse_window
from claude_top.core.queries.history import CostHistory
from claude_top.core.queries.limits import Limits
from claude_top.core.queries.reader import Source, SourceUnavailable
from claude_top.core.queries.spantree import TreeNode


@dataclass(frozen=True)
class MainQuery:
    """The inputs of one refresh: window, text filter, agent, and what is selected."""

    window: str = "all"
    now_ns: int = 0
    text: str | None = None
    session_id: str | None = None
    scope_session: bool = False
    tool_name: str | None = None
    generation: int = 0
    group: str | None = None
    """Group the sessions and models panes by this key (`core.queries.groups`)."""
    agent: str | None = None

    def filter(self, session_id: str | None = None) -> Filter:
        window_s = parse_window(self.window)
        return Filter.for_window(
            window_s,
            now_ns=self.now_ns,
            session_id=session_id,
            text=self.text or None,
            agent=self.agent,
        )


EDGE_STEPS = 120
EDGE_STEP_S = (5, 60)
"""A sliding window's lower edge moves in steps of 1/EDGE_STEPS of it, within these bounds."""


def edge_step_s(window_s: int) -> int:
    """How late a row may leave a window of `window_s` seconds: 15m 7 s, 1h 30 s, 24h 60 s."""
    low, high = EDGE_STEP_S
    return min(high, max(low, window_s // EDGE_STEPS))


@dataclass
class MainData:
    """Results of one refresh of the main view."""

    query: MainQuery
    received_total: int = 0
    last_received_ns: int | None = None
    overview: dict = field(default_factory=dict)
    sessions: list[dict] = field(default_factory=list)
    tools: list[dict] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    turns: list[dict] = field(default_factory=list)
    durations: array[float] = field(default_factory=lambda: array("d"))
    first_ns: int | None = None
    """The earliest telemetry in a sliding window (None: "all", or nothing in it)."""
    elapsed_ms: float = 0.0
    error: str | None = None
    """Why the source could not be read (the panes say it instead of showing rows)."""

    def stale(self, now_ns: int) -> bool:
        """The clock at `now_ns` has moved a sliding window's lower edge past a row held here,
        or gone back before the query: query again.

        Not sooner than one edge step after the query, so a row stays on screen at most one
        step after it left the window. "all" never goes stale with the clock.
        """
        window_s = parse_window(self.query.window)
        if window_s is None:
            return False
        if now_ns < self.query.now_ns:
            return True
        if self.first_ns is None:
            return False
        step = edge_step_s(window_s) * NS_PER_S
        return now_ns >= max(self.query.now_ns + step, self.first_ns + window_s * NS_PER_S + 1)


def load_main(source: Source, q: MainQuery) -> MainData:
    """Run every query of the main view on one reader (call from a worker thread). A source
    that cannot be read gives empty data saying why."""
    started = time.perf_counter()
    try:
        return _load_main(source, q, started)
    except SourceUnavailable as exc:
        return MainData(q, error=str(exc), elapsed_ms=(time.perf_counter() - started) * 1000)


def _load_main(source: Source, q: MainQuery, started: float) -> MainData:
    with source.reader() as r:
        out = MainData(q)
        window = q.filter()
        overview = r.overview(window)  # its received_* ignore the window
        out.received_total = overview.get("received_total") or 0
        out.last_received_ns = overview.get("last_received_ns")
        if not out.received_total:
            return out
        out.overview = overview
        if window.since_ns is not None:
            out.first_ns = r.earliest_ns(window)
        scoped = q.filter(q.session_id if q.scope_session and not q.group else None)
        if q.group:
            out.sessions, out.models = r.grouped(window, q.group, now_ns=q.now_ns)
            for m in out.models:
                m["model"] = f"{m.pop('grp')} · {m['model']}"
        else:
            out.sessions = r.sessions(window, now_ns=q.now_ns)
            out.models = r.models(scoped)
        out.tools = r.tools(scoped)
        tool = q.tool_name
        if tool is None or all(t["tool_name"] != tool for t in out.tools):
            tool = out.tools[0]["tool_name"] if out.tools else None
        if tool is not None:
            out.durations = r.tool_durations(scoped, tool)
        out.query = _with_tool(q, tool)
        if q.session_id is not None and not q.group:
            out.turns = r.turns(q.session_id)
    out.elapsed_ms = (time.perf_counter() - started) * 1000
    return out


def _with_tool(q: MainQuery, tool: str | None) -> MainQuery:
    if tool == q.tool_name:
        return q
    return dataclasses.replace(q, tool_name=tool)


def load_turns(source: Source, session_id: str, now_ns: int) -> tuple[dict | None, list[dict]]:
    """A session's summary row and its turns (call from a worker thread)."""
    with source.reader() as r:
        summary = next(
            (
                s
                for s in r.sessions(Filter(session_id=session_id), now_ns)
                if s["session_id"] == session_id
            ),
            None,
        )
        return summary, r.turns(session_id)


def load_group_keys(source: Source, window: str, now_ns: int) -> list[str]:
    """What the panes can be grouped by in the window (call from a worker thread)."""
    f = Filter.for_window(parse_window(window), now_ns)
    try:
        with source.reader() as r:
            return r.group_keys(f)
    except SourceUnavailable:
        return []


def load_tree(source: Source, session_id: str, turn_key: str) -> tuple[list[TreeNode], str]:
    """A turn's span tree and its source, "spans" or "events" (call from a worker thread)."""
    with source.reader() as r:
        return r.span_tree(session_id, turn_key)


# --- limits and cost history ----------------------------------------------------------------


def load_limits(source: Source, settings: LimitSettings, now_ns: int) -> Limits:
    """Plan windows, budgets, today and the sessions' gauges (call from a worker thread)."""
    with source.reader() as r:
        return r.limits(settings, now_ns)


HISTORY_RANGES_DAYS = (30, 90, 365)
PERIOD_DAYS = {"day": 1, "week": 7, "month": 365 / 12}


@dataclass(frozen=True)
class HistoryQuery:
    """The cost history view's inputs: a range in days, cut by day, week or month."""

    range_days: int = 30
    period: str = "day"
    now_ns: int = 0

    @property
    def count(self) -> int:
        """How many periods cover the range (the current one included)."""
        return max(1, math.ceil(self.range_days / PERIOD_DAYS[self.period]))


@dataclass
class HistoryData:
    query: HistoryQuery
    history: CostHistory
    projects: list[dict] = field(default_factory=list)


def load_history(source: Source, q: HistoryQuery) -> HistoryData:
    """Cost per period by model and the top projects over the range (call from a worker)."""
    with source.reader() as r:
        history = r.cost_history(q.period, q.count, q.now_ns)
        since = history.starts[0] * NS_PER_S if history.starts else 0
        projects = r.top_projects(since, q.now_ns, 20)
    return HistoryData(q, history, projects)
