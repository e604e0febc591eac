"""The panes' queries run by the claude-top that holds the database, asked over its control API
(loopback, with the key from its instance file): what a UI attached to `claude-top serve`
reads through. Results come back as the local queries return them (`core.wire`)."""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Iterator
from typing import Any

from claude_top.core import wire
from claude_top.core.budgets import LimitSettings
from claude_top.core.instance import Instance
from claude_top.core.queries.filters import Filter
from claude_top.core.queries.history import CostHistory
from claude_top.core.queries.limits import Limits
from claude_top.core.queries.spantree import TreeNode

STATUS_TIMEOUT_S = 5.0


class RemoteReader:
    """The `Reader` queries, each one call to the instance's `POST /read`."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    def _read(self, method: str, *args: Any) -> Any:
        body = wire.dumps({"method": method, "args": list(args)})
        return wire.loads(self.instance.call("POST", "/read", body))

    def overview(self, f: Filter) -> dict:
        return self._read("overview", f)

    def earliest_ns(self, f: Filter) -> int | None:
        return self._read("earliest_ns", f)

    def sessions(self, f: Filter, now_ns: int | None = None) -> list[dict]:
        return self._read("sessions", f, now_ns)

    def models(self, f: Filter) -> list[dict]:
        return self._read("models", f)

    def tools(self, f: Filter) -> list[dict]:
        return self._read("tools", f)

    def tool_durations(self, f: Filter, tool_name: str) -> array[float]:
        return self._read("tool_durations", f, tool_name)

    def tool_calls(self, f: Filter, tool_name: str) -> list[dict]:
        return self._read("tool_calls", f, tool_name)

    def model_requests(self, f: Filter, model: str) -> list[dict]:
        return self._read("model_requests", f, model)

    def turns(self, session_id: str) -> list[dict]:
        return self._read("turns", session_id)

    def span_tree(self, session_id: str, turn_key: str) -> tuple[list[TreeNode], str]:
        roots, source = self._read("span_tree", session_id, turn_key)
        return roots, source

    def limits(self, settings: LimitSettings, now_ns: int) -> Limits:
        return self._read("limits", settings, now_ns)

    def cost_history(self, period: str, count: int, now_ns: int) -> CostHistory:
        return self._read("cost_history", period, count, now_ns)

    def top_projects(self, since_ns: int, now_ns: int, limit: int = 10) -> list[dict]:
        return self._read("top_projects", since_ns, now_ns, limit)

    def group_keys(self, f: Filter) -> list[str]:
        return self._read("group_keys", f)

    def grouped(
        self, f: Filter, key: str, now_ns: int | None = None
    ) -> tuple[list[dict], list[dict]]:
        sessions, models = self._read("grouped", f, key, now_ns)
        return sessions, models


class RemoteSource:
    """A database held by a running claude-top (`claude-top serve`), read through it."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.label = instance.db

    @contextlib.contextmanager
    def reader(self) -> Iterator[RemoteReader]:
        yield RemoteReader(self.instance)

    def status(self) -> dict:
        """What the instance says of itself: pid, endpoints, its writer's counters."""
        return self.instance.request("GET", "/instance", timeout=STATUS_TIMEOUT_S)
