"""The SQL for each of claude-top's columns over the collector's exporter tables (one `Exprs`
per layout found), and the small SQL builders the ClickHouse reader shares with it.

Every attribute is a string in the exporter's Maps, so numbers go through `toFloat64OrNull` /
`toInt64OrNull` and booleans are read as `decode.to_bool` reads them. Who sent a record and its
session follow `sources.otlp.agents` (the scope and service name tell the agent; another
agent's session may be its `conversation.id`); an event's name is its body or `event.name`, as
`decode.event_name` reads it. Only Claude Code's records are mapped onto the typed columns.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from claude_top.core.names import (
    API_REQUEST,
    CLAUDE_CODE,
    CLAUDE_PREFIX,
    CODEX,
    GEMINI_CLI,
    UNKNOWN_AGENT,
)
from claude_top.core.queries.clickhouse.layout import Layout
from claude_top.core.queries.filters import Filter
from claude_top.core.queries.groups import IDENTITY_KEYS
from claude_top.core.sources.otlp.agents import (
    CLAUDE_SCOPE,
    CLAUDE_SPAN_ROLES,
    CODEX_METRICS_SCOPE,
    CODEX_SCOPE_PREFIX,
    GEMINI_SCOPE,
)

_ONE_SESSION = re.compile(r"\bsession_id = \{(\w+):String\}")
"""A condition naming one session (its rows are found through the skip indexes)."""

_KIND = {"Unspecified": 0, "Internal": 1, "Server": 2, "Client": 3, "Producer": 4, "Consumer": 5}
_STATUS = {"Unset": 0, "Ok": 1, "Error": 2}


def lit(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _int(x: str) -> str:
    """An attribute as Int64 the way `decode.to_int` reads one ("42", "42.0" -> 42)."""
    return f"coalesce(toInt64OrNull({x}), CAST(toFloat64OrNull({x}) AS Nullable(Int64)))"


def _float(x: str) -> str:
    f = f"toFloat64OrNull({x})"
    return f"if(isFinite(assumeNotNull({f})), {f}, NULL)"


def _bool(x: str) -> str:
    low = f"lower(trimBoth({x}))"
    return (
        f"multiIf({low} IN ('true', '1', 'yes'), true, {low} IN ('false', '0', 'no'), false, NULL)"
    )


def _str(x: str) -> str:
    return f"nullIf({x}, '')"


def _first(a: str, b: str) -> str:
    return f"nullIf(if({a} != '', {a}, {b}), '')"


def _agent(scope: str) -> str:
    """The agent a record came from, as `agents.agent_of` tells it from the scope and the
    service name."""
    codex_service = f"(ServiceName = {lit(CODEX)} OR startsWith(ServiceName, 'codex_'))"
    return (
        f"multiIf({scope} = {lit(CLAUDE_SCOPE)} OR startsWith({scope}, {lit(CLAUDE_SCOPE + '.')}), "
        f"{lit(CLAUDE_CODE)}, {scope} = {lit(GEMINI_SCOPE)}, {lit(GEMINI_CLI)}, "
        f"startsWith({scope}, {lit(CODEX_SCOPE_PREFIX)}) OR {scope} = {lit(CODEX_METRICS_SCOPE)} "
        f"OR ({scope} = ServiceName AND {codex_service}), {lit(CODEX)}, "
        f"ServiceName IN ({lit(CLAUDE_CODE)}, {lit(GEMINI_CLI)}) OR {codex_service}, "
        f"{lit(UNKNOWN_AGENT)}, nullIf(ServiceName, ''))"
    )


def _session(attrs: str, resource: str) -> str:
    """A record's session, as `agents.session_of` finds another agent's (Claude Code's is its
    `session.id`); `agent` is the record's agent column."""
    other = f"agent != {lit(CLAUDE_CODE)}"
    return (
        f"multiIf({attrs}['session.id'] != '', {attrs}['session.id'], "
        f"{resource}['session.id'] != '', {resource}['session.id'], "
        f"{other} AND {attrs}['conversation.id'] != '', {attrs}['conversation.id'], "
        f"agent = {lit(CODEX)} AND {attrs}['thread_id'] != '', {attrs}['thread_id'], "
        f"{other} AND {attrs}['gen_ai.conversation.id'] != '', {attrs}['gen_ai.conversation.id'], "
        "NULL)"
    )


def json_map(m: dict | None) -> str | None:
    """A Map's value as the local store keeps attributes: JSON with sorted keys."""
    if m is None:
        return None
    return orjson.dumps(dict(m), option=orjson.OPT_SORT_KEYS).decode()


QUANTILE = (
    "if(length(v) = 0, NULL, if(floor((length(v) - 1) * q) = ceil((length(v) - 1) * q), "
    "v[toUInt64(floor((length(v) - 1) * q)) + 1], "
    "v[toUInt64(floor((length(v) - 1) * q)) + 1] * (1 - ((length(v) - 1) * q "
    "- floor((length(v) - 1) * q))) + v[toUInt64(ceil((length(v) - 1) * q)) + 1] "
    "* ((length(v) - 1) * q - floor((length(v) - 1) * q))))"
)
"""A continuous quantile of the sorted array `v` interpolated as DuckDB's quantile_cont does
(lo * (1 - d) + hi * d, not lo + (hi - lo) * d), so both stores give the very same double."""


def session_cond(f: Filter, p: dict[str, Any]) -> str:
    """The filter's session and agent conditions (their values put in `p`)."""
    conds = []
    if f.session_id is not None:
        p["session"] = f.session_id
        conds.append("session_id = {session:String}")
    if f.agent is not None:
        p["agent"] = f.agent
        conds.append("agent = {agent:String}")
    return " AND ".join(conds) or "TRUE"


def window(f: Filter, p: dict[str, Any]) -> bool:
    """Whether the filter has a window (its start then put in `p` as `since`)."""
    if f.since_ns is None:
        return False
    p["since"] = int(f.since_ns)
    return True


UNREAD = (
    "the team view reads Claude Code's records only (other agents' requests, costs and tools "
    "are not taken from a collector's tables yet)"
)
"""Why a record of another agent in a team's ClickHouse adds nothing to the panes."""
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")
"""A request's token columns, in claude-top's meaning (input without the cache reads)."""
OTHER_AGENT = f"ifNull(agent, '') != {lit(CLAUDE_CODE)}"
"""A row of an agent the team view does not read."""


def unread(agent: str | None) -> str | None:
    """A record's `not_understood` in the team view."""
    return None if agent == CLAUDE_CODE else UNREAD


def contains(expr: str) -> str:
    return f"position(lower(coalesce({expr}, '')), {{text:String}}) > 0"


class Exprs:
    """The SQL for each of claude-top's columns over the tables of one layout."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        db = layout.database
        self.logs = f"`{db}`.`{layout.logs.name}`" if layout.logs else None
        self.traces = f"`{db}`.`{layout.traces.name}`" if layout.traces else None
        self.sums = f"`{db}`.`{layout.sums.name}`" if layout.sums else None
        la, ra = "LogAttributes", "ResourceAttributes"
        short = f"{la}['event.name']"  # as the local store: not OTLP's event_name (EventName)
        name = (
            "multiIf(match(Body, '^[^ ]{1,199}$') AND position(Body, '.') > 0, Body, "
            f"{short} != '', if(position({short}, '.') > 0, {short}, "
            f"concat({lit(CLAUDE_PREFIX)}, {short})), 'log')"
        )
        n = len(CLAUDE_PREFIX) + 1
        self.ev: dict[str, str] = {
            "time_ns": "toUnixTimestamp64Nano(Timestamp)",
            "session_id": _session(la, ra),
            "name": name,
            "agent": _agent("ScopeName"),
            "kind": f"if(agent = {lit(CLAUDE_CODE)} AND startsWith(name, {lit(CLAUDE_PREFIX)}), "
            f"substring(name, {n}), NULL)",
            "prompt_id": _str(f"{la}['prompt.id']"),
            "sequence": _int(f"{la}['event.sequence']"),
            "trace_id": _str("TraceId"),
            "span_id": _str("SpanId"),
            "severity_number": "nullIf(toInt32(SeverityNumber), 0)",
            "body": _str("Body"),
            "model": _first(f"{la}['model']", f"{la}['gen_ai.request.model']"),
            "tool_name": _str(f"{la}['tool_name']"),
            "tool_use_id": _str(f"{la}['tool_use_id']"),
            "cost_usd": _float(f"{la}['cost_usd']"),
            "input_tokens": _int(f"{la}['input_tokens']"),
            "output_tokens": _int(f"{la}['output_tokens']"),
            "cache_read_tokens": _int(f"{la}['cache_read_tokens']"),
            "cache_creation_tokens": _int(f"{la}['cache_creation_tokens']"),
            "duration_ms": _float(f"{la}['duration_ms']"),
            "success": _bool(f"{la}['success']"),
            "decision": _str(f"{la}['decision']"),
            "error": _str(f"{la}['error']"),
            "attempt": _int(f"{la}['attempt']"),
            "query_source": _str(f"{la}['query_source']"),
            "request_id": _str(f"{la}['request_id']"),
            "project": _str(f"{la}['project']"),
            "prompt": f"if(mapContains({la}, 'prompt'), {la}['prompt'], NULL)",
            "terminal": _str(f"{la}['terminal.type']"),
            "input": f"multiIf(mapContains({la}, 'tool_input'), {la}['tool_input'], "
            f"mapContains({la}, 'tool_parameters'), {la}['tool_parameters'], NULL)",
            "attributes": la,
            "resource": ra,
            "scope_name": _str("ScopeName"),
            "service_name": _str("ServiceName"),
        }
        for key in IDENTITY_KEYS:
            self.ev[key] = _first(f"{la}[{lit(key)}]", f"{ra}[{lit(key)}]")
        if layout.traces is not None:
            self._span_exprs(layout)
        if layout.sums is not None:
            self._metric_exprs(layout)

    def _span_exprs(self, layout: Layout) -> None:
        sa, ra = "SpanAttributes", "ResourceAttributes"
        has_scope = layout.traces.has("ScopeName")
        scope = "ScopeName" if has_scope else f"{sa}['otel.scope.name']"
        attrs = (
            sa
            if has_scope
            else (f"mapFilter((k, v) -> k NOT IN ('otel.scope.name', 'otel.scope.version'), {sa})")
        )
        roles = list(CLAUDE_SPAN_ROLES.items())
        role = (
            f"if(agent = {lit(CLAUDE_CODE)}, transform(SpanName, "
            f"[{', '.join(lit(k) for k, _ in roles)}], [{', '.join(lit(v) for _, v in roles)}], "
            "NULL), NULL)"
        )
        kind_name = "replaceRegexpOne(CAST(SpanKind AS String), '^SPAN_KIND_', '')"
        status_name = "replaceRegexpOne(CAST(StatusCode AS String), '^STATUS_CODE_', '')"
        self.sp: dict[str, str] = {
            "start_ns": "toUnixTimestamp64Nano(Timestamp)",
            "end_ns": "toUnixTimestamp64Nano(Timestamp) + toInt64(Duration)",
            "duration_ms": "toInt64(Duration) / 1e6",
            "trace_id": "TraceId",
            "span_id": "SpanId",
            "parent_span_id": _str("ParentSpanId"),
            "name": "SpanName",
            "kind": f"toInt32(transform(lower(toString({kind_name})), "
            f"[{', '.join(lit(k.lower()) for k in _KIND)}], [{', '.join(map(str, _KIND.values()))}]"
            ", 0))",
            "status_code": f"toInt32(transform(lower(toString({status_name})), "
            f"[{', '.join(lit(k.lower()) for k in _STATUS)}], "
            f"[{', '.join(map(str, _STATUS.values()))}], 0))",
            "status_message": _str("StatusMessage"),
            "session_id": _session(sa, ra),
            "span_type": _str(f"{sa}['span.type']"),
            "model": _first(f"{sa}['model']", f"{sa}['gen_ai.request.model']"),
            "tool_name": _first(f"{sa}['tool_name']", f"{sa}['gen_ai.tool.name']"),
            "tool_use_id": _first(f"{sa}['tool_use_id']", f"{sa}['gen_ai.tool.call.id']"),
            "input_tokens": _int(
                f"if({sa}['input_tokens'] != '', {sa}['input_tokens'], "
                f"{sa}['gen_ai.usage.input_tokens'])"
            ),
            "output_tokens": _int(
                f"if({sa}['output_tokens'] != '', {sa}['output_tokens'], "
                f"{sa}['gen_ai.usage.output_tokens'])"
            ),
            "cache_read_tokens": _int(f"{sa}['cache_read_tokens']"),
            "cache_creation_tokens": _int(f"{sa}['cache_creation_tokens']"),
            "success": _bool(f"{sa}['success']"),
            "attempt": _int(f"{sa}['attempt']"),
            "agent_id": _str(f"{sa}['agent_id']"),
            "parent_agent_id": _str(f"{sa}['parent_agent_id']"),
            "user_prompt": f"if(mapContains({sa}, 'user_prompt'), {sa}['user_prompt'], NULL)",
            "attributes": attrs,
            "resource": ra,
            "scope_name": _str(scope),
            "service_name": _str("ServiceName"),
            "agent": _agent(scope),
            "role": role,
        }
        if layout.traces.has("Events.Name"):
            self.sp["ev_times"] = "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)"
            self.sp["ev_names"] = "`Events.Name`"
            self.sp["ev_attrs"] = "`Events.Attributes`"
        if layout.traces.has("Links.TraceId"):
            self.sp["ln_traces"] = "`Links.TraceId`"
            self.sp["ln_spans"] = "`Links.SpanId`"
            self.sp["ln_attrs"] = "`Links.Attributes`"
        for key in IDENTITY_KEYS:
            self.sp[key] = _first(f"{sa}[{lit(key)}]", f"{ra}[{lit(key)}]")

    def _metric_exprs(self, layout: Layout) -> None:
        a, ra = "Attributes", "ResourceAttributes"
        if layout.sums_datetime64:
            t, st = "toUnixTimestamp64Nano(TimeUnix)", "toUnixTimestamp64Nano(StartTimeUnix)"
        else:
            t = "toInt64(toUnixTimestamp(TimeUnix)) * 1000000000"
            st = "toInt64(toUnixTimestamp(StartTimeUnix)) * 1000000000"
        scope = "ScopeName" if layout.sums.has("ScopeName") else "''"
        self.mp: dict[str, str] = {
            "time_ns": t,
            "start_ns": st,
            "session_id": _session(a, ra),
            "name": "MetricName",
            "value": "Value",
            "temporality": "AggregationTemporality",
            "monotonic": "IsMonotonic" if layout.sums.has("IsMonotonic") else "true",
            "resource": ra,
            "agent": _agent(scope),
            "series": f"cityHash64(MetricName, {a}, {ra}, {scope})",
        }
        for key in IDENTITY_KEYS:
            self.mp[key] = _first(f"{a}[{lit(key)}]", f"{ra}[{lit(key)}]")

    # -- the deduplicated rows of each table ---------------------------------------------------

    def log_time(self, since: bool | str) -> str:
        """The window's condition on otel_logs, with the sort key's own column so ClickHouse
        skips the parts and granules before it; `since="before"`: the rows before it."""
        if not since:
            return "TRUE"
        if since == "before":
            return "Timestamp < fromUnixTimestamp64Nano({since:Int64})"
        conds = ["Timestamp >= fromUnixTimestamp64Nano({since:Int64})"]
        if self.layout.logs_sort == "service_time" or self.layout.logs.has("TimestampTime"):
            conds.append("TimestampTime >= toDateTime(intDiv({since:Int64}, 1000000000))")
        if self.layout.logs_sort == "five_minutes":
            conds.append(
                "toStartOfFiveMinutes(Timestamp) >= "
                "toStartOfFiveMinutes(fromUnixTimestamp64Nano({since:Int64}))"
            )
        return " AND ".join(conds)

    def event_key(self) -> str:
        """An event's identity: its request_id for an api_request, else its content."""
        return (
            f"if(kind = {lit(API_REQUEST)} AND LogAttributes['request_id'] != '', "
            "cityHash64(LogAttributes['request_id']), "
            "cityHash64(Timestamp, Body, LogAttributes, ScopeName))"
        )

    def events(
        self, columns: list[str], where: str = "TRUE", since: bool = False, between: bool = False
    ) -> str:
        """Events (one row per distinct record) with `columns`, filtered by `where` (on those
        columns) and the window; from claude-top's typed table when it has them all. One
        session's rows are found through the Maps' skip indexes and counted once by identity;
        many rows, through FINAL (cheaper than LIMIT BY over millions)."""
        need = list(dict.fromkeys(["time_ns", "name", "agent", "kind", *columns]))
        names = ", ".join(f"`{c}`" for c in need)
        one = _ONE_SESSION.search(where)
        typed = self.layout.events_table
        if typed is not None and all(typed.has(c) for c in [*need, "_key"]):
            table = f"`{self.layout.database}`.`{typed.name}`"
            if one or "session_id IN {" in where:
                return f"""
  SELECT {names} FROM {table}
  WHERE {self.typed_time(since)} AND {where}
  LIMIT 1 BY _key"""
            return f"""
  SELECT {names} FROM {table} FINAL
  WHERE {self.typed_time(since)} AND {where}"""
        sel = ",\n    ".join(f"{self.ev[c]} AS `{c}`" for c in need)
        narrow = ""
        if one:  # in PREWHERE, where the Maps' skip indexes answer it
            narrow = (
                f"PREWHERE LogAttributes['session.id'] = {{{one[1]}:String}} OR "
                f"ResourceAttributes['session.id'] = {{{one[1]}:String}} "
            )
        time_cond = self.log_time(since)
        if between:  # {lo}..{hi}: a turn's time, through the sort key
            time_cond += (
                " AND Timestamp BETWEEN fromUnixTimestamp64Nano({lo:Int64}) AND "
                "fromUnixTimestamp64Nano({hi:Int64})"
            )
            if self.layout.logs_sort == "five_minutes":
                time_cond += (
                    " AND toStartOfFiveMinutes(Timestamp) BETWEEN "
                    "toStartOfFiveMinutes(fromUnixTimestamp64Nano({lo:Int64})) AND "
                    "toStartOfFiveMinutes(fromUnixTimestamp64Nano({hi:Int64}))"
                )
            if self.layout.logs.has("TimestampTime"):
                time_cond += (
                    " AND TimestampTime BETWEEN toDateTime(intDiv({lo:Int64}, 1000000000)) AND "
                    "toDateTime(intDiv({hi:Int64}, 1000000000) + 1)"
                )
        return f"""
  SELECT {names} FROM (
    SELECT {sel}, {self.event_key()} AS _key
    FROM {self.logs}
    {narrow}WHERE {time_cond}
  ) WHERE {where}
  LIMIT 1 BY _key"""

    @staticmethod
    def typed_time(since: bool | str) -> str:
        """The window on a typed table (sorted by five-minute bucket); `since="before"`: the
        rows before the window instead."""
        if not since:
            return "TRUE"
        if since == "before":
            return "Timestamp < fromUnixTimestamp64Nano({since:Int64})"
        return (
            "Timestamp >= fromUnixTimestamp64Nano({since:Int64}) AND "
            "toStartOfFiveMinutes(Timestamp) >= "
            "toStartOfFiveMinutes(fromUnixTimestamp64Nano({since:Int64}))"
        )

    def spans(self, columns: list[str], where: str = "TRUE", since: bool = False) -> str:
        """Spans (one row per trace and span id), as `events`."""
        need = list(dict.fromkeys(["start_ns", "trace_id", "span_id", "agent", *columns]))
        names = ", ".join(f"`{c}`" for c in need)
        one = _ONE_SESSION.search(where)
        few = one or "trace_id IN {" in where
        typed = self.layout.spans_table
        if typed is not None and all(typed.has(c) for c in need):
            table = f"`{self.layout.database}`.`{typed.name}`"
            if few:
                return f"""
  SELECT {names} FROM {table}
  WHERE {self.typed_time(since)} AND {where}
  LIMIT 1 BY trace_id, span_id"""
            return f"""
  SELECT {names} FROM {table} FINAL
  WHERE {self.typed_time(since)} AND {where}"""
        sel = ",\n    ".join(f"{self.sp[c]} AS `{c}`" for c in need)
        cond = "Timestamp >= fromUnixTimestamp64Nano({since:Int64})" if since else "TRUE"
        narrow = ""
        if one:
            narrow = (
                f"PREWHERE SpanAttributes['session.id'] = {{{one[1]}:String}} OR "
                f"ResourceAttributes['session.id'] = {{{one[1]}:String}} "
            )
        return f"""
  SELECT {names} FROM (
    SELECT {sel} FROM {self.traces} {narrow}WHERE {cond}
  ) WHERE {where}
  LIMIT 1 BY trace_id, span_id"""

    def metric_points(self, columns: list[str], where: str = "TRUE", since: bool = False) -> str:
        """Sum points with `increment`: the value of a delta point; for a cumulative one the
        change since the series' previous point (a new start time restarts it), as the local
        store keeps them."""
        need = list(dict.fromkeys(["time_ns", "start_ns", "series", "value", "agent", *columns]))
        need = [c for c in need if c != "increment"]
        sel = ",\n      ".join(f"{self.mp[c]} AS `{c}`" for c in need)
        cond = "time_ns >= {since:Int64}" if since else "TRUE"
        t, temporality = self.mp["time_ns"], self.mp["temporality"]
        delta_cond = f"{t} >= {{since:Int64}}" if since else "TRUE"
        return f"""
  SELECT *, NULL AS prev_value, NULL AS prev_start, NULL AS prev_time, value AS increment
  FROM (
    SELECT {sel}, {temporality} AS temporality, {self.mp["monotonic"]} AS monotonic
    FROM {self.sums} WHERE {temporality} != 2 AND {delta_cond}
    LIMIT 1 BY series, time_ns, start_ns, value
  ) WHERE {where}
  UNION ALL
  SELECT *, if(temporality = 2,
      if(prev_time IS NULL OR start_ns != prev_start, value,
         if(value - prev_value < 0 AND monotonic, value, value - prev_value)),
      value) AS increment
  FROM (
    SELECT *,
      lagInFrame(toNullable(value)) OVER w AS prev_value,
      lagInFrame(toNullable(start_ns)) OVER w AS prev_start,
      lagInFrame(toNullable(time_ns)) OVER w AS prev_time
    FROM (
      SELECT {sel}, {self.mp["temporality"]} AS temporality,
        {self.mp["monotonic"]} AS monotonic
      FROM {self.sums} WHERE {temporality} = 2
      LIMIT 1 BY series, time_ns, start_ns, value
    )
    WINDOW w AS (PARTITION BY series ORDER BY time_ns ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
  ) WHERE {cond} AND {where}"""
