"""Per-hour rollups of claude-top's typed tables, read only where they are exact.

At millions of events a pane that aggregates the typed rows of a week takes seconds; the
rollups hold, per hour and session, the aggregate states of what the sessions pane and the
overview read, filled by materialized views as the typed tables are. The collector retries,
so a record can be inserted twice: the typed tables merge it away, a rollup cannot. So an hour
is read from a rollup only when its rows count each of the typed table's records once (the
rollup's row count equals the typed rows' distinct identities); any other hour, and the part
of the window before its first whole hour, are aggregated from the typed table. An hour found
exact is remembered with its row count and checked again only when that count changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from claude_top.core.names import (
    API_ERROR,
    API_REQUEST,
    INTERACTION,
    LLM_REQUEST,
    TOOL_RESULT,
    USER_PROMPT,
)
from claude_top.core.queries.clickhouse.exprs import json_map, lit
from claude_top.core.queries.clickhouse.layout import Layout
from claude_top.core.queries.groups import IDENTITY_KEYS
from claude_top.core.store.rollup import REDACTED

HOUR_NS = 3600 * 1_000_000_000
BUCKET = "toStartOfHour(Timestamp, 'UTC')"
MAX_RANGES = 64
"""Past this many unverified stretches of the window, the whole window is checked at once."""

_API = f"kind = {lit(API_REQUEST)}"
_TOOL = f"kind = {lit(TOOL_RESULT)}"
_PROMPT = f"kind = {lit(USER_PROMPT)}"
_FIRST_PROMPT = (
    f"{_PROMPT} AND prompt_id IS NOT NULL AND prompt IS NOT NULL AND prompt != {lit(REDACTED)}"
)


@dataclass(frozen=True)
class Rollup:
    """One rollup: its table, the typed table it sums, a record's identity there, and its
    measures as (column, aggregate function, its arguments over the typed columns)."""

    name: str
    typed: str
    identity: str
    measures: tuple[tuple[str, str, str], ...]
    keys: tuple[tuple[str, str], ...] = (("session_id", "session_id"), ("agent", "agent"))
    """(column, its SQL over the typed columns) the rollup is grouped by, beside the hour."""
    where: str = "TRUE"
    """Which typed rows it sums."""

    @property
    def key_names(self) -> str:
        return ", ".join(f"`{k}`" for k, _ in self.keys)

    @property
    def key_exprs(self) -> str:
        return ", ".join(f"{e} AS `{k}`" if e != k else f"`{k}`" for k, e in self.keys)

    def states(self) -> str:
        """The select list of the measures' states (`fnState(args)`) per bucket and key."""
        return ", ".join(f"{fn}State({args}) AS `{c}_state`" for c, fn, args in self.measures)

    def direct(self, only: tuple[str, ...] = (), omit: tuple[str, ...] = (), **instead) -> str:
        """The select list of the measures aggregated straight from typed rows (`fn(args)`),
        those in `only` if given, but those in `omit`; `instead` gives a measure other SQL."""
        return ", ".join(
            instead.get(c) or f"{fn}({args}) AS `{c}`"
            for c, fn, args in self.measures
            if c not in omit and (not only or c in only)
        )

    def merged(self, omit: tuple[str, ...] = ()) -> str:
        """The select list of the measures merged (`fnMerge(column)`), but those in `omit`."""
        return ", ".join(
            f"{fn}Merge(`{c}_state`) AS `{c}`" for c, fn, _ in self.measures if c not in omit
        )


def _identity(time_col: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((k, "argMaxIf", f"`{k}`, {time_col}, `{k}` IS NOT NULL") for k in IDENTITY_KEYS)


EVENT_SESSIONS = Rollup(
    "claude_top_event_sessions",
    "claude_top_events",
    "_key",
    (
        ("rows", "count", ""),
        ("first_ns", "min", "time_ns"),
        ("last_ns", "max", "time_ns"),
        ("prompts", "countIf", _PROMPT),
        ("api_requests", "countIf", _API),
        ("cost_usd", "sumIf", f"cost_usd, {_API}"),
        ("unpriced", "countIf", f"{_API} AND cost_usd IS NULL"),
        ("input_tokens", "sumIf", f"input_tokens, {_API}"),
        ("output_tokens", "sumIf", f"output_tokens, {_API}"),
        ("cache_read_tokens", "sumIf", f"cache_read_tokens, {_API}"),
        ("cache_creation_tokens", "sumIf", f"cache_creation_tokens, {_API}"),
        ("tool_calls", "countIf", _TOOL),
        ("tool_errors", "countIf", f"{_TOOL} AND success = false"),
        ("models", "groupUniqArrayIf", f"model, {_API} AND model IS NOT NULL"),
        (
            "tools",
            "groupUniqArrayIf",
            f"tool_name, kind = {lit(TOOL_RESULT)} AND tool_name IS NOT NULL",
        ),
        ("api_errors", "countIf", f"kind = {lit(API_ERROR)}"),
        ("project", "max", "project"),
        ("resource_id", "argMax", "cityHash64(resource), time_ns"),
        *_identity("time_ns"),
        ("first_seq", "argMinIf", "sequence, time_ns, sequence IS NOT NULL"),
        ("first_seq_ns", "minOrNullIf", "time_ns, sequence IS NOT NULL"),
        ("first_prompt", "argMinIf", f"prompt, time_ns, {_FIRST_PROMPT}"),
        ("prompt_ns", "minOrNullIf", f"time_ns, {_FIRST_PROMPT}"),
        ("terminal", "argMaxIf", f"terminal, time_ns, {_PROMPT} AND terminal IS NOT NULL"),
        ("terminal_ns", "maxOrNullIf", f"time_ns, {_PROMPT} AND terminal IS NOT NULL"),
    ),
)
"""What the sessions pane and the overview read of a session's events."""

SPAN_SESSIONS = Rollup(
    "claude_top_span_sessions",
    "claude_top_spans",
    "trace_id, span_id",
    (
        ("rows", "count", ""),
        ("first_ns", "min", "start_ns"),
        ("last_ns", "max", "end_ns"),
        ("interactions", "countIf", f"role = {lit(INTERACTION)}"),
        ("retries", "sumIf", f"attempt - 1, role = {lit(LLM_REQUEST)} AND attempt > 1"),
        ("resource_id", "argMax", "cityHash64(resource), start_ns"),
        *_identity("start_ns"),
    ),
)
"""What the sessions pane and the overview read of a session's spans."""

EVENT_MODELS = Rollup(
    "claude_top_event_models",
    "claude_top_events",
    "_key",
    (
        ("rows", "count", ""),
        ("cost_usd", "sum", "cost_usd"),
        ("unpriced", "countIf", "cost_usd IS NULL"),
        ("input_tokens", "sum", "input_tokens"),
        ("output_tokens", "sum", "output_tokens"),
        ("cache_read_tokens", "sum", "cache_read_tokens"),
        ("cache_creation_tokens", "sum", "cache_creation_tokens"),
    ),
    keys=(
        ("session_id", "session_id"),
        ("agent", "agent"),
        ("model", "model"),
        *((k, k) for k in IDENTITY_KEYS),
        ("resource_id", "cityHash64(resource)"),
    ),
    where=_API,
)
"""What the models pane reads of the API requests, per model, person and resource."""

EVENT_TOOLS = Rollup(
    "claude_top_event_tools",
    "claude_top_events",
    "_key",
    (
        ("rows", "count", ""),
        ("errors", "countIf", "success = false"),
        ("max_ms", "max", "duration_ms"),
        ("total_ms", "sum", "duration_ms"),
        ("timed", "countIf", "duration_ms IS NOT NULL"),
        ("durations", "groupArrayIf", "assumeNotNull(duration_ms), duration_ms IS NOT NULL"),
    ),
    keys=(("session_id", "session_id"), ("agent", "agent"), ("tool_name", "tool_name")),
    where=_TOOL,
)
"""What the tools pane and a tool's latency chart read of the tool results (every duration:
the quantiles are exact)."""

ROLLUPS = (EVENT_SESSIONS, SPAN_SESSIONS, EVENT_MODELS, EVENT_TOOLS)
RESOURCES = "claude_top_resources"
"""Each resource's attributes by id (`cityHash64` of the Map): the rollups keep the id."""


def usable(layout: Layout) -> None:
    """Mark the rollups found whole beside their typed tables in `layout.rollups`, and say
    why one is not read."""
    typed = {t.name for t in (layout.events_table, layout.spans_table) if t is not None}
    resources = layout.ours.get(RESOURCES)
    if resources is None or not (resources.has("id") and resources.has("attributes")):
        return
    for rollup in ROLLUPS:
        table = layout.ours.get(rollup.name)
        if table is None or rollup.typed not in typed:
            continue
        missing = [k for k, _ in rollup.keys if not table.has(k)]
        missing += [
            f"{m}_state"
            for m, fn, _ in rollup.measures
            if not table.columns.get(f"{m}_state", "").startswith(
                (f"AggregateFunction({fn},", f"AggregateFunction({fn})")
            )
        ]
        if not table.has("bucket"):
            missing.insert(0, "bucket")
        if missing:
            layout.notes.append(
                f"{rollup.name} lacks {', '.join(missing)} (made by another claude-top "
                "version; claude-top team-tables --rebuild makes today's): not read"
            )
        else:
            layout.rollups.add(rollup.name)


def statements(db: str, rollup: Rollup, fill: bool) -> list[tuple[str, str]]:
    """(what, SQL) to make `rollup` and its view over the typed table (which must exist);
    `fill`: also from the typed rows already there (when the typed table was made before)."""
    select = (
        f"SELECT {BUCKET} AS bucket, {rollup.key_exprs}, {rollup.states()} "
        f"FROM {db}.`{rollup.typed}` WHERE {rollup.where} GROUP BY bucket, {rollup.key_names}"
    )
    out = [
        (
            f"table {rollup.name}",
            f"CREATE TABLE IF NOT EXISTS {db}.`{rollup.name}` ENGINE = AggregatingMergeTree "
            f"PARTITION BY toDate(bucket) ORDER BY (bucket, {rollup.key_names}) "
            f"SETTINGS allow_nullable_key = 1 EMPTY AS {select}",
        ),
        (
            f"view {rollup.name}_mv",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.`{rollup.name}_mv` "
            f"TO {db}.`{rollup.name}` AS {select}",
        ),
    ]
    if fill:
        out.append((f"fill {rollup.name}", f"INSERT INTO {db}.`{rollup.name}` {select}"))
    return out


def resource_view(typed: str) -> str:
    """The view that files the resources of the typed table `typed`."""
    return f"{RESOURCES}_{typed}_mv"


def resource_statements(db: str, typed: str, fill: bool) -> list[tuple[str, str]]:
    """(what, SQL) to make the resources table and its view over the typed table `typed`;
    `fill`: also from its rows already there."""
    select = (
        f"SELECT cityHash64(resource) AS id, any(resource) AS attributes FROM {db}.`{typed}` "
        "GROUP BY id"
    )
    out = [
        (
            f"table {RESOURCES}",
            f"CREATE TABLE IF NOT EXISTS {db}.`{RESOURCES}` ENGINE = ReplacingMergeTree "
            f"ORDER BY id EMPTY AS {select}",
        ),
        (
            f"view {resource_view(typed)}",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.`{resource_view(typed)}` "
            f"TO {db}.`{RESOURCES}` AS {select}",
        ),
    ]
    if fill:
        out.append((f"fill {RESOURCES} from {typed}", f"INSERT INTO {db}.`{RESOURCES}` {select}"))
    return out


@dataclass
class Verified:
    """The hours found exact, per rollup: bucket start (s) -> the rollup's row count then; and
    the resources read (id -> attributes as JSON, None when empty), which never change."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    exact: dict[str, dict[int, int]] = field(default_factory=dict)
    resources: dict[int, str | None] = field(default_factory=dict)


def resources(runner, db: str, ids: set[int], verified: Verified) -> dict[int, str | None]:
    """The attributes (JSON, as the local store keeps them; None when empty) of the resources
    `ids` that the resources table holds (an id it does not hold is left out)."""
    with verified.lock:
        out = {i: verified.resources[i] for i in ids if i in verified.resources}
    todo = sorted(ids - out.keys())
    if todo:
        out.update(
            remember(
                verified,
                runner.query(  # ids are numbers: written in, not sent as a long parameter
                    f"SELECT id, attributes FROM {db}.`{RESOURCES}` "
                    f"WHERE id IN ({', '.join(str(int(i)) for i in todo)}) LIMIT 1 BY id",
                    {},
                ),
            )
        )
    return out


def remember(verified: Verified, found: list[dict]) -> dict[int, str | None]:
    """Keep the resources `found` (rows of id and attributes), which never change."""
    out = {int(r["id"]): (json_map(r["attributes"]) if r["attributes"] else None) for r in found}
    with verified.lock:
        if len(verified.resources) > 100_000:
            verified.resources.clear()
        verified.resources.update(out)
    return out


@dataclass(frozen=True)
class Cover:
    """How a window is read: the rollup from `edge_ns` on, but for the `stale` hours (bucket
    starts, s), which, with the part before `edge_ns`, come from the typed table."""

    since_ns: int | None
    edge_ns: int | None
    stale: tuple[int, ...]


def cover(runner, db: str, rollup: Rollup, since_ns: int | None, verified: Verified) -> Cover:
    """Which hours of the window the rollup holds exactly (checked where not known)."""
    edge_ns = None if since_ns is None else -(-since_ns // HOUR_NS) * HOUR_NS
    edge_s = None if edge_ns is None else edge_ns // 1_000_000_000
    cond = f"bucket >= {_utc(edge_s)}" if edge_s is not None else "TRUE"
    counts = {
        int(r["b"]): int(r["n"])
        for r in runner.query(
            f"SELECT toUnixTimestamp(bucket) AS b, countMerge(rows_state) AS n "
            f"FROM {db}.`{rollup.name}` WHERE {cond} GROUP BY bucket",
            {},
        )
    }
    with verified.lock:
        known = verified.exact.setdefault(rollup.name, {})
        exact = {b for b, n in counts.items() if known.get(b) == n}
    ranges = _unverified(sorted(exact), edge_s)
    stale: list[int] = []
    if ranges:
        conds = " OR ".join(
            f"(Timestamp >= {_utc(lo)}" + (f" AND Timestamp < {_utc(hi)})" if hi else ")")
            for lo, hi in ranges
        )
        found = runner.query(
            f"SELECT toUnixTimestamp({BUCKET}) AS b, uniqExact({rollup.identity}) AS n "
            f"FROM {db}.`{rollup.typed}` WHERE ({conds}) AND {rollup.where} GROUP BY b",
            {},
        )
        distinct = {int(r["b"]): int(r["n"]) for r in found}
        with verified.lock:
            for b in set(distinct) | {b for b in counts if b not in exact}:
                if distinct.get(b, 0) == counts.get(b, 0):
                    known[b] = counts.get(b, 0)
                else:
                    known.pop(b, None)
                    stale.append(b)
    return Cover(since_ns, edge_ns, tuple(sorted(stale)))


def _unverified(exact: list[int], edge_s: int | None) -> list[tuple[int, int | None]]:
    """The stretches of the window [edge, ...) not covered by the `exact` hours."""
    out: list[tuple[int, int | None]] = []
    lo = edge_s if edge_s is not None else 0
    for b in exact:
        if b > lo:
            out.append((lo, b))
        lo = max(lo, b + 3600)
    out.append((lo, None))
    if len(out) > MAX_RANGES:
        return [(edge_s if edge_s is not None else 0, None)]
    return out


def rows(db: str, rollup: Rollup, c: Cover, where: str, until_s: int | None = None) -> str:
    """SQL of (keys, states) rows covering the window exactly, filtered by `where` (on the
    keys): the rollup's exact hours, the rest aggregated from the typed table. With `until_s`
    (a whole hour), only the hours before it, each row with its `bucket`."""
    keys = rollup.key_names
    cols = ", ".join(f"`{m}_state`" for m, _, _ in rollup.measures)
    stale = [b for b in c.stale if until_s is None or b < until_s]
    conds = [where]
    if c.edge_ns is not None:
        conds.append(f"bucket >= {_utc(c.edge_ns // 1_000_000_000)}")
    if until_s is not None:
        conds.append(f"bucket < {_utc(until_s)}")
        keys = f"bucket, {keys}"
    if stale:
        conds.append(f"bucket NOT IN ({', '.join(_utc(b) for b in stale)})")
    parts = [f"SELECT {keys}, {cols} FROM {db}.`{rollup.name}` WHERE {' AND '.join(conds)}"]
    raw = []
    if c.since_ns is not None and c.edge_ns != c.since_ns:
        raw.append(
            f"(Timestamp >= fromUnixTimestamp64Nano({c.since_ns}) AND "
            f"Timestamp < fromUnixTimestamp64Nano({c.edge_ns}))"
        )
    raw += [f"(Timestamp >= {_utc(b)} AND Timestamp < {_utc(b + 3600)})" for b in stale]
    if raw:
        bucket = f"{BUCKET} AS bucket, " if until_s is not None else ""
        if until_s is not None:
            raw = [f"({' OR '.join(raw)}) AND Timestamp < {_utc(until_s)}"]
        parts.append(
            f"SELECT {bucket}{rollup.key_exprs}, {rollup.states()} FROM {db}.`{rollup.typed}` "
            f"FINAL WHERE ({' OR '.join(raw)}) AND {rollup.where} AND {where} GROUP BY {keys}"
        )
    return "\nUNION ALL\n".join(parts)


def _utc(seconds: int) -> str:
    return f"toDateTime({seconds}, 'UTC')"
