"""What every read takes and shares: the filter (window, session, text), SQL with named
parameters, time windows, and when a session counts as active."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from claude_top.core.format import NS_PER_S

WINDOWS = ("15m", "1h", "24h", "7d", "all")
ACTIVE_WITHIN_S = 60
"""A session is active while its latest record (by the record's own time, never by when it
arrived: a replay or a backlog of old telemetry does not make it live) is this recent."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_WINDOW_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_window(text: str) -> int | None:
    """A time window in seconds: "15m" -> 900, "1h", "24h", "7d", "30s"; "all" -> None."""
    if text is None:
        raise ValueError("no time window given; use e.g. 15m, 1h, 24h, 7d or all")
    if text.strip().lower() == "all":
        return None
    m = _WINDOW_RE.match(text)
    if not m:
        raise ValueError(
            f"bad time window {text!r}: use a number and a unit (s, m, h, d, w) such as "
            "15m, 1h, 24h, 7d, or 'all'"
        )
    n = int(m.group(1))
    if n <= 0:
        raise ValueError(f"bad time window {text!r}: it must be longer than zero")
    return n * _UNITS_S[m.group(2).lower()]


@dataclass(frozen=True)
class Filter:
    """What the panes show: a time window, one session, a text filter, one agent."""

    since_ns: int | None = None
    session_id: str | None = None
    text: str | None = None
    agent: str | None = None
    """`claude-code`, `gemini-cli`, `codex`, ...: only that agent's records; None: every one."""

    @classmethod
    def for_window(cls, window_s: int | None, now_ns: int | None = None, **kw: Any) -> Filter:
        """A filter for the last `window_s` seconds (None = all time)."""
        if window_s is None:
            return cls(since_ns=None, **kw)
        now_ns = time.time_ns() if now_ns is None else now_ns
        return cls(since_ns=now_ns - window_s * 1_000_000_000, **kw)

    @property
    def needle(self) -> str | None:
        """The text filter, lower-cased, or None when empty."""
        t = (self.text or "").strip().lower()
        return t or None


@dataclass(frozen=True)
class Query:
    """SQL with named parameters (`$name`), runnable by `execute` and by `COPY (...) TO`."""

    sql: str
    params: dict[str, Any]

    def fetch(self, cur: duckdb.DuckDBPyConnection) -> list[dict]:
        """Run it; one dict per row, keyed by column name."""
        return dicts(cur.execute(self.sql, self.params))


def dicts(result: duckdb.DuckDBPyConnection) -> list[dict]:
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def filter_where(f: Filter, time_col: str, params: dict[str, Any], *, session: bool = True) -> str:
    """Window, session and agent conditions; only the ones in use, so DuckDB can push them
    down."""
    conds = ["TRUE"]
    if f.since_ns is not None:
        params["since"] = f.since_ns
        conds.append(f"{time_col} >= $since")
    if session and f.session_id is not None:
        params["session"] = f.session_id
        conds.append("session_id = $session")
    if f.agent is not None:
        params["agent"] = f.agent
        conds.append("agent = $agent")
    return " AND ".join(conds)


def text_condition(f: Filter, params: dict[str, Any], *cols: str) -> str:
    needle = f.needle
    if needle is None:
        return "TRUE"
    params["text"] = needle
    return "(" + " OR ".join(f"contains(lower(coalesce({c}, '')), $text)" for c in cols) + ")"


def cache_ratio_sql(read: str, inp: str, creation: str) -> str:
    den = f"({inp} + {read} + {creation})"
    return f"CASE WHEN {den} > 0 THEN {read} / {den} END"


def as_datetime(ns: int | None) -> datetime | None:
    return None if ns is None else _EPOCH + timedelta(microseconds=ns // 1000)


def session_status(row: dict, now_ns: int) -> str:
    """A fetched session row's `status` as of `now_ns`, as `sessions_query` computes it: active
    if its latest record was made in the last ACTIVE_WITHIN_S, else idle. The UI re-derives it
    as the clock moves, without querying again."""
    seen = row.get("last_seen_ns")
    return "active" if seen is not None and seen >= now_ns - ACTIVE_WITHIN_S * NS_PER_S else "idle"
