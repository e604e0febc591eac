"""The seam between the panes and the place they read from.

A pane asks a `Source` for a `Reader` (one consistent view for one refresh) and calls the same
methods whatever is behind it: the local DuckDB store (`LocalSource`, the SQL in this package)
or another adapter with the same methods (a team's ClickHouse). The UI never sees a cursor.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Iterator
from typing import Protocol

import duckdb

from claude_top.core.budgets import LimitSettings
from claude_top.core.queries.breakdowns import (
    earliest_ns,
    model_requests,
    models,
    overview,
    tool_calls,
    tool_durations,
    tools,
)
from claude_top.core.queries.filters import Filter
from claude_top.core.queries.groups import (
    group_sessions,
    local_group_keys,
    local_identities,
    local_models_by,
)
from claude_top.core.queries.history import CostHistory, cost_history, top_projects
from claude_top.core.queries.limits import Limits, limits
from claude_top.core.queries.sessions import sessions
from claude_top.core.queries.spantree import TreeNode, span_tree
from claude_top.core.queries.turns import turns
from claude_top.core.store.database import Store


class SourceUnavailable(RuntimeError):
    """The place to read from cannot answer (unreachable, refused, not the tables expected):
    the message says what failed; the panes show it instead of rows."""


class Reader(Protocol):
    """The queries one refresh runs, on one consistent view of the data."""

    def overview(self, f: Filter) -> dict: ...

    def earliest_ns(self, f: Filter) -> int | None: ...

    def sessions(self, f: Filter, now_ns: int | None = None) -> list[dict]: ...

    def models(self, f: Filter) -> list[dict]: ...

    def tools(self, f: Filter) -> list[dict]: ...

    def tool_durations(self, f: Filter, tool_name: str) -> array[float]: ...

    def tool_calls(self, f: Filter, tool_name: str) -> list[dict]: ...

    def model_requests(self, f: Filter, model: str) -> list[dict]: ...

    def turns(self, session_id: str) -> list[dict]: ...

    def span_tree(self, session_id: str, turn_key: str) -> tuple[list[TreeNode], str]: ...

    def limits(self, settings: LimitSettings, now_ns: int) -> Limits: ...

    def cost_history(self, period: str, count: int, now_ns: int) -> CostHistory: ...

    def top_projects(self, since_ns: int, now_ns: int, limit: int = 10) -> list[dict]: ...
    def group_keys(self, f: Filter) -> list[str]: ...

    """What the sessions and models panes can be grouped by (`queries.groups`)."""

    def grouped(
        self, f: Filter, key: str, now_ns: int | None = None
    ) -> tuple[list[dict], list[dict]]: ...

    """The sessions and models panes grouped by `key`."""


READ_METHODS = (
    "overview",
    "earliest_ns",
    "sessions",
    "models",
    "tools",
    "tool_durations",
    "tool_calls",
    "model_requests",
    "turns",
    "span_tree",
    "limits",
    "cost_history",
    "top_projects",
    "group_keys",
    "grouped",
)
"""The `Reader` methods, by name: what the control API's `POST /read` may run."""


class Source(Protocol):
    """A place to read from: hands out readers, and says what it is (for the header)."""

    label: str

    def reader(self) -> contextlib.AbstractContextManager[Reader]: ...

    """Raises SourceUnavailable when it cannot be read (the UI starts all the same)."""


class LocalReader:
    """The queries over one DuckDB cursor of the local store."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur

    def overview(self, f: Filter) -> dict:
        return overview(self.cur, f)

    def earliest_ns(self, f: Filter) -> int | None:
        return earliest_ns(self.cur, f)

    def sessions(self, f: Filter, now_ns: int | None = None) -> list[dict]:
        return sessions(self.cur, f, now_ns)

    def models(self, f: Filter) -> list[dict]:
        return models(self.cur, f)

    def tools(self, f: Filter) -> list[dict]:
        return tools(self.cur, f)

    def tool_durations(self, f: Filter, tool_name: str) -> array[float]:
        return tool_durations(self.cur, f, tool_name)

    def tool_calls(self, f: Filter, tool_name: str) -> list[dict]:
        return tool_calls(self.cur, f, tool_name)

    def model_requests(self, f: Filter, model: str) -> list[dict]:
        return model_requests(self.cur, f, model)

    def turns(self, session_id: str) -> list[dict]:
        return turns(self.cur, session_id)

    def span_tree(self, session_id: str, turn_key: str) -> tuple[list[TreeNode], str]:
        return span_tree(self.cur, session_id, turn_key)

    def limits(self, settings: LimitSettings, now_ns: int) -> Limits:
        return limits(self.cur, settings, now_ns)

    def cost_history(self, period: str, count: int, now_ns: int) -> CostHistory:
        return cost_history(self.cur, period, count, now_ns)

    def top_projects(self, since_ns: int, now_ns: int, limit: int = 10) -> list[dict]:
        return top_projects(self.cur, since_ns, now_ns, limit)

    def group_keys(self, f: Filter) -> list[str]:
        return local_group_keys(self.cur, f)

    def grouped(
        self, f: Filter, key: str, now_ns: int | None = None
    ) -> tuple[list[dict], list[dict]]:
        rows = sessions(self.cur, f, now_ns)
        who = local_identities(self.cur, [r["session_id"] for r in rows])
        for r in rows:
            r["identity"] = who.get(r["session_id"], {})
        return group_sessions(rows, key), local_models_by(self.cur, f, key)


class LocalSource:
    """The local claude-top database: each reader is a fresh cursor, its work marked as in
    flight (`Store.reading`) so DuckDB's cached blocks are dropped when it ends."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.label = store.path

    @contextlib.contextmanager
    def reader(self) -> Iterator[LocalReader]:
        with self.store.reading() as cur:
            yield LocalReader(cur)
