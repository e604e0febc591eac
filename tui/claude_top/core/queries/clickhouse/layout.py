"""Which tables and columns the collector's ClickHouse exporter left in a database.

The exporter's schema changed across versions: `otel_logs` gained `EventName` and moved its
sort key from `(ServiceName, TimestampTime, Timestamp)` to `(toStartOfFiveMinutes(Timestamp),
ServiceName, Timestamp)`; `otel_traces` gained `ScopeName` (older versions put the scope in
`SpanAttributes['otel.scope.name']`) and its `Duration` went from Int64 to UInt64; the metric
tables' times are `DateTime64(9)` in most versions and `DateTime` in some; the exponential
histogram table is `otel_metrics_exp_histogram` or `otel_metrics_exponential_histogram`.
The columns are read at start (`system.columns`, as the exporter's own `DESC TABLE` check),
and the queries are built for what was found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from claude_top.core.queries.clickhouse.runner import ClickHouseError, QueryRunner

LOGS_REQUIRED = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "SeverityNumber",
    "ServiceName",
    "Body",
    "ResourceAttributes",
    "ScopeName",
    "LogAttributes",
)
TRACES_REQUIRED = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
)
SUM_REQUIRED = (
    "ResourceAttributes",
    "ServiceName",
    "MetricName",
    "Attributes",
    "StartTimeUnix",
    "TimeUnix",
    "Value",
    "AggregationTemporality",
)
MAP_COLUMNS = {
    "logs": ("LogAttributes", "ResourceAttributes"),
    "traces": ("SpanAttributes", "ResourceAttributes"),
    "sums": ("Attributes", "ResourceAttributes"),
}
EXP_HISTOGRAM_NAMES = ("exp_histogram", "exponential_histogram")
EVENTS_TABLE = "claude_top_events"
SPANS_TABLE = "claude_top_spans"
"""claude-top's typed tables beside the exporter's (`claude-top team-tables`): the
attributes the panes read as columns, filled by materialized views."""


@dataclass(frozen=True)
class Table:
    """One table found: its name, columns (name -> type) and sort key."""

    name: str
    columns: dict[str, str]
    sorting_key: str = ""

    def has(self, column: str) -> bool:
        return column in self.columns


@dataclass
class Layout:
    """What the source found; `problem` says why it cannot show anything (None: usable)."""

    database: str
    logs: Table | None = None
    traces: Table | None = None
    sums: Table | None = None
    events_table: Table | None = None
    spans_table: Table | None = None
    ours: dict[str, Table] = field(default_factory=dict)
    """Every table of claude-top's found (named `claude_top_*`)."""
    rollups: set[str] = field(default_factory=set)
    """The rollups of the typed tables found whole (set by `rollups.usable`)."""
    others: list[str] = field(default_factory=list)
    problem: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def logs_sort(self) -> str:
        """ "five_minutes" (newer exporters), "service_time" (older) or "other"."""
        key = (self.logs.sorting_key if self.logs else "").replace(" ", "")
        if key.startswith("toStartOfFiveMinutes(Timestamp)"):
            return "five_minutes"
        if key.startswith("ServiceName,TimestampTime"):
            return "service_time"
        return "other"

    @property
    def event_name_column(self) -> bool:
        return self.logs is not None and self.logs.has("EventName")

    @property
    def sums_datetime64(self) -> bool:
        return self.sums is not None and self.sums.columns.get("TimeUnix", "").startswith(
            "DateTime64"
        )

    def describe(self) -> str:
        """One line: the layout found, or what is missing."""
        if self.problem:
            return self.problem
        parts = []
        logs = self.logs
        if logs is not None:
            sort = {
                "five_minutes": "sorted by (toStartOfFiveMinutes(Timestamp), ServiceName, "
                "Timestamp)",
                "service_time": "sorted by (ServiceName, TimestampTime, Timestamp)",
            }.get(self.logs_sort, f"sorted by ({logs.sorting_key})")
            event = "with EventName" if self.event_name_column else "without EventName"
            parts.append(f"{logs.name} {event}, {sort}")
        if self.traces is not None:
            scope = "ScopeName" if self.traces.has("ScopeName") else "scope in SpanAttributes"
            parts.append(
                f"{self.traces.name} ({scope}, Duration {self.traces.columns['Duration']})"
            )
        if self.sums is not None:
            parts.append(f"{self.sums.name} (TimeUnix {self.sums.columns['TimeUnix']})")
        parts += self.others
        typed = [t.name for t in (self.events_table, self.spans_table) if t is not None]
        typed += sorted(self.rollups)
        parts.append(
            f"claude-top's typed tables: {', '.join(typed)}"
            if typed
            else "no typed tables (each pane reads the Maps; claude-top team-tables makes them)"
        )
        text = f"exporter layout in {self.database}: " + "; ".join(parts)
        if self.notes:
            text += " (" + "; ".join(self.notes) + ")"
        return text


def detect(
    runner: QueryRunner,
    logs: str = "otel_logs",
    traces: str = "otel_traces",
    metrics: str = "otel_metrics",
) -> Layout:
    """Read the exporter's tables in the runner's database. Raises ClickHouseError when the
    server cannot be asked at all."""
    db = runner.database
    wanted = [logs, traces, f"{metrics}_sum"] + [f"{metrics}_{n}" for n in EXP_HISTOGRAM_NAMES]
    wanted += [f"{metrics}_gauge", f"{metrics}_histogram", f"{metrics}_summary"]
    wanted += [EVENTS_TABLE, SPANS_TABLE]
    layout = Layout(db)
    exists = runner.query(
        "SELECT count() AS n FROM system.databases WHERE name = {db:String}", {"db": db}
    )
    if not exists or not exists[0]["n"]:
        layout.problem = f"there is no database {db!r} on this server"
        return layout
    cols = runner.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String} "
        "AND (table IN {t:Array(String)} OR startsWith(table, 'claude_top_')) "
        "ORDER BY table, position",
        {"db": db, "t": wanted},
    )
    keys = runner.query(
        "SELECT name, sorting_key FROM system.tables WHERE database = {db:String} "
        "AND (name IN {t:Array(String)} OR startsWith(name, 'claude_top_'))",
        {"db": db, "t": wanted},
    )
    found: dict[str, dict[str, str]] = {}
    for r in cols:
        found.setdefault(r["table"], {})[r["name"]] = r["type"]
    sort = {r["name"]: r["sorting_key"] for r in keys}

    def table(name: str, required: tuple[str, ...], maps: tuple[str, ...]) -> Table | None:
        if name not in found:
            return None
        columns = found[name]
        missing = [c for c in required if c not in columns]
        if missing:
            layout.notes.append(f"{name} lacks {', '.join(missing)}: not read")
            return None
        for m in maps:
            if not columns[m].startswith("Map("):
                layout.notes.append(
                    f"{name}.{m} is {columns[m]}, not a Map (the exporter's json mode is not "
                    "supported yet): not read"
                )
                return None
        return Table(name, columns, sort.get(name, ""))

    layout.logs = table(logs, LOGS_REQUIRED, MAP_COLUMNS["logs"])
    layout.traces = table(traces, TRACES_REQUIRED, MAP_COLUMNS["traces"])
    layout.sums = table(f"{metrics}_sum", SUM_REQUIRED, MAP_COLUMNS["sums"])
    for typed, attr, key in (
        (EVENTS_TABLE, "events_table", "_key"),
        (SPANS_TABLE, "spans_table", "span_id"),
    ):
        if typed in found and key in found[typed] and "Timestamp" in found[typed]:
            setattr(layout, attr, Table(typed, found[typed], sort.get(typed, "")))
    if layout.events_table is not None and not layout.events_table.has("input"):
        layout.notes.append(
            f"{EVENTS_TABLE} lacks input (made by an earlier claude-top): a tool's calls are "
            "read from the Maps, slower (claude-top team-tables --rebuild makes it again)"
        )
    for name, columns in found.items():
        if name.startswith("claude_top_"):
            layout.ours[name] = Table(name, columns, sort.get(name, ""))
    for n in EXP_HISTOGRAM_NAMES:
        if f"{metrics}_{n}" in found:
            layout.others.append(f"{metrics}_{n}")
    if layout.logs is None:
        missing = [] if logs in found else [logs]
        what = f"no table {logs}" if missing else f"{logs} cannot be read"
        layout.problem = (
            f"{what} in {db!r} (the collector's clickhouse exporter writes Claude Code's events "
            f"there; tables found: {', '.join(sorted(found)) or 'none'})"
            + (": " + "; ".join(layout.notes) if layout.notes else "")
        )
    elif layout.traces is None:
        layout.notes.append(f"no {traces}: span trees are rebuilt from events")
    return layout


def check(runner: QueryRunner, **names: str) -> Layout:
    """`detect`, with a connection failure turned into the layout's problem."""
    try:
        return detect(runner, **names)
    except ClickHouseError as exc:
        return Layout(runner.database, problem=str(exc))
