"""A team's ClickHouse, as the OpenTelemetry Collector's clickhouse exporter fills it: the same
panes and CSV export as the local store, read-only, every aggregate run in ClickHouse.

`ClickHouseSource.open(url)` never raises for a server it cannot use: it says why
(`problem`), and its readers raise `SourceUnavailable` with that message, so the UI starts with
empty panes saying what failed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from claude_top.core.queries.clickhouse.layout import Layout, check
from claude_top.core.queries.clickhouse.reader import IDENTITY_KEYS, ClickHouseReader
from claude_top.core.queries.clickhouse.rollups import Verified, usable
from claude_top.core.queries.clickhouse.runner import (
    ChdbRunner,
    ClickHouseError,
    ClickHouseURL,
    HttpRunner,
    QueryRunner,
)
from claude_top.core.queries.reader import SourceUnavailable

RECHECK_S = 15.0
"""How often a source that could not be used looks at the server again."""

__all__ = [
    "IDENTITY_KEYS",
    "ChdbRunner",
    "ClickHouseError",
    "ClickHouseReader",
    "ClickHouseSource",
    "ClickHouseURL",
    "HttpRunner",
    "Layout",
]


class ClickHouseSource:
    """A `core.queries.reader.Source` over one ClickHouse database."""

    read_only = True

    def __init__(self, runner: QueryRunner, label: str, tables: dict[str, str] | None = None):
        self.runner = runner
        self.label = label
        self.tables = tables or {}
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self.verified = Verified()
        self.layout: Layout = self._check()

    @classmethod
    def open(cls, url: str) -> ClickHouseSource:
        """The source of a `clickhouse://` URL. Raises ValueError for a malformed URL only."""
        parsed = ClickHouseURL.parse(url)
        return cls(HttpRunner(parsed), parsed.label(), dict(parsed.tables))

    def _check(self) -> Layout:
        self._checked_at = time.monotonic()
        layout = check(self.runner, **self.tables)
        if not layout.problem:
            usable(layout)
        return layout

    @property
    def problem(self) -> str | None:
        return self.layout.problem

    def describe(self) -> str:
        return f"{self.label}: {self.layout.describe()}"

    @contextlib.contextmanager
    def reader(self) -> Iterator[ClickHouseReader]:
        with self._lock:
            if self.layout.problem and time.monotonic() - self._checked_at >= RECHECK_S:
                self.layout = self._check()
            layout = self.layout
        if layout.problem:
            raise SourceUnavailable(f"{self.label}: {layout.problem}")
        yield ClickHouseReader(self.runner, layout, self.verified)

    def close(self) -> None:
        self.runner.close()
