"""The sessions pane over the exporter's tables (a mixin of `reader.ClickHouseReader`, which
gives `runner`, `layout`, `x`, `verified`, `_rows`, `_rolled` and `_covered`).

One query: each session's events, spans and metric points are aggregated apart (from the
per-hour rollups where they are exact, else from the typed or the exporter's rows) and joined
by session in ClickHouse, which also picks each row's figures from the three, so a row comes
back ready but for what needs Python (its resource's attributes, its times as datetimes).
"""

from __future__ import annotations

import time
from typing import Any

from claude_top.core.names import (
    API_REQUEST,
    CLAUDE_CODE,
    COST_METRIC,
    USER_PROMPT,
)
from claude_top.core.queries.clickhouse import rollups
from claude_top.core.queries.clickhouse.exprs import (
    OTHER_AGENT,
    TOKENS,
    json_map,
    lit,
    session_cond,
    unread,
    window,
)
from claude_top.core.queries.clickhouse.rows import matches, session_row
from claude_top.core.queries.filters import ACTIVE_WITHIN_S, Filter
from claude_top.core.queries.groups import (
    IDENTITY_KEYS,
    SUMMED,
    group_parts,
    group_sessions,
    group_value,
)
from claude_top.core.queries.sessions import custom_attributes

_WHOLE = ("first_seq", "all_prompts", "all_requests", "first_prompt", "terminal")
_WHOLE_TIMES = ("first_seq_ns", "prompt_ns", "terminal_ns")
_ALL_COUNTS = (
    f"countIf(kind = {lit(USER_PROMPT)}) AS all_prompts, "
    f"countIf(kind = {lit(API_REQUEST)}) AS all_requests"
)
"""A session's prompts and requests (with its first prompt, its first event's sequence and its
latest terminal: what its whole life says, for `partial`)."""
_EVENT_SUMS = (
    "api_requests",
    "unpriced",
    *TOKENS,
    "tool_calls",
    "tool_errors",
    "api_errors",
)
_GROUP_SUMS = tuple(c for c in SUMMED if c != "prompts")
"""The summed columns a session row has as they are (its prompts are worked out)."""
_NS_MAX = "9223372036854775807"
_NS_MIN = "-9223372036854775808"


def _first(cols: list[str]) -> str:
    """The first of the parts' values that is neither NULL nor empty (NULL if none is)."""
    expr = cols[-1]
    for c in reversed(cols[:-1]):
        expr = f"if(ifNull({c}, '') != '', {c}, {expr})"
    return f"nullIf({expr}, '')"


def _extreme(fn: str, cols: list[str], absent: str) -> str:
    """`least`/`greatest` of the parts' values, a part without one left out."""
    return f"nullIf({fn}({', '.join(f'ifNull({c}, {absent})' for c in cols)}), {absent})"


def _newest_first(row: dict) -> tuple:
    last = row["last_seen_ns"]
    return (last is None, -(last or 0), row["session_id"])


class SessionListQueries:
    """The sessions pane's rows, as the local store's `sessions` gives them."""

    def sessions(self, f: Filter, now_ns: int | None = None) -> list[dict]:
        now_ns = time.time_ns() if now_ns is None else now_ns
        rows = self._session_rows(f)
        resources = self._resources(rows)
        self._whole(f, rows)
        active_since = now_ns - ACTIVE_WITHIN_S * 1_000_000_000
        out = []
        for r, (resource, key) in zip(rows, resources, strict=True):
            # another agent's session is not listed as one that did nothing: its records are
            # counted as not understood instead (the overview)
            if unread(r["agent"]) is None:
                out.append(session_row(r, active_since, resource, key))
        needle = f.needle
        if needle is not None:
            out = [r for r in out if matches(r, needle)]
        for r in out:
            r.pop("_tools")
        out.sort(key=_newest_first)
        return out

    def _by_id(self) -> bool:
        """Resources travel as ids (`cityHash64` of the Map, looked up in claude-top's
        resources table), which the rollups keep; else as the Maps themselves."""
        return bool(self.layout.rollups)

    def _session_rows(self, f: Filter) -> list[dict]:
        """Per session in the window: its events', spans' and metric points' figures joined
        and combined (first and last time, counts and sums, the first agent and identity any
        part names), with what its whole life says as far as its events in the window say."""
        sql, p = self._session_query(f)
        return self._rows(f"{sql}\nSETTINGS join_use_nulls = 1", p)

    def _session_query(self, f: Filter) -> tuple[str, dict[str, Any]]:
        """The SQL of `_session_rows` (without its settings) and its parameters."""
        p: dict[str, Any] = {}
        since = window(f, p)
        where = f"session_id IS NOT NULL AND {session_cond(f, p)}"
        make = {
            "e": lambda: self._event_part(f, where, since),
            "s": lambda: self._span_part(f, where, since),
            "m": lambda: self._metric_part(where, since),
        }
        parts = {a: make[a]() for a in self._parts()}
        has = set(parts)

        def each(col: str) -> list[str]:
            return [f"{a}.`{col}`" for a in ("e", "s", "m") if a in has]

        def of(alias: str, col: str, default: str = "NULL") -> str:
            return f"{alias}.`{col}`" if alias in has else default

        cols = [
            "session_id",
            f"{_extreme('least', each('first_ns'), _NS_MAX)} AS first_seen_ns",
            f"{_extreme('greatest', each('last_ns'), _NS_MIN)} AS last_seen_ns",
            "ifNull(e.prompts, 0) AS user_prompts",
            f"ifNull({of('s', 'interactions')}, 0) AS interactions",
            f"ifNull({of('s', 'retries')}, 0) AS retries",
            "toFloat64(ifNull(e.cost_usd, 0)) AS cost_usd",
            *(f"ifNull(e.`{c}`, 0) AS `{c}`" for c in _EVENT_SUMS),
            "arrayStringConcat(arraySort(e.models), ', ') AS models",
            "e.project AS project",
            f"if(ifNull({of('m', 'cost_points')}, 0) > 0, {of('m', 'metric_cost_usd')}, NULL) "
            "AS metric_cost_usd",
            f"{_first(each('agent'))} AS agent",
            *(f"{_first(each(k))} AS `{k}`" for k in IDENTITY_KEYS),
            *(f"e.`{c}` AS `{c}`" for c in _WHOLE),
        ]
        if f.since_ns is not None:  # to tell the window's from what came before
            cols += [f"e.`{c}` AS `{c}`" for c in _WHOLE_TIMES]
        if f.needle is not None:
            cols.append("e.tools AS tools")
        if self._by_id():
            cols += [f"{a}.resource_id AS {a}_resource_id" for a in ("e", "s", "m") if a in has]
        else:
            res = each("resource")
            pick = res[-1]
            for c in reversed(res[:-1]):
                pick = f"if(notEmpty({c}), {c}, {pick})"
            cols.append(f"{pick} AS resource")
        # every session any part names, each part joined on (LEFT JOINs, not FULL ones: their
        # USING key is left empty for a row only the right side holds on some servers)
        ids = " UNION ALL ".join(f"SELECT session_id FROM ({parts[a]})" for a in sorted(has))
        joined = f"(SELECT DISTINCT session_id FROM ({ids})) AS k" + "".join(
            f"\nLEFT JOIN ({parts[a]}) AS {a} ON {a}.session_id = k.session_id"
            for a in ("e", "s", "m")
            if a in has
        )
        cols[0] = "k.session_id AS session_id"
        return f"SELECT {', '.join(cols)}\nFROM {joined}", p

    def _parts(self) -> list[str]:
        """The parts a session row joins: its events (e), spans (s) and metric points (m), as
        far as the layout has them."""
        return ["e", *(["s"] if self.x.traces else []), *(["m"] if self.x.sums else [])]

    def session_groups(self, f: Filter, key: str, now_ns: int | None = None) -> list[dict]:
        """The sessions pane grouped by `key`, as `group_sessions` makes it of the sessions'
        rows: summed in ClickHouse per what decides a session's group (its value of an
        identity key, or its resource), those parts folded into groups here."""
        if f.needle is not None:  # the text filter reads what only whole rows say
            return group_sessions(self.sessions(f, now_ns), key)
        now_ns = time.time_ns() if now_ns is None else now_ns
        active_since = now_ns - ACTIVE_WITHIN_S * 1_000_000_000
        sql, p = self._session_query(f)
        if key in IDENTITY_KEYS:
            by, pick = [f"`{key}`"], []
        elif self._by_id():
            by, pick = [f"{a}_resource_id" for a in self._parts()], []
        else:
            by, pick = ["cityHash64(resource)"], ["any(resource) AS resource"]
        prompts = "if(user_prompts > 0, user_prompts, interactions)"
        sums = ", ".join(f"sum(`{c}`) AS `{c}`" for c in _GROUP_SUMS)
        parts = self._rows(
            f"""
SELECT {", ".join([*by, *pick])}, sum({prompts}) AS prompts, {sums},
  min(first_seen_ns) AS first_seen_ns, max(last_seen_ns) AS last_seen_ns,
  groupUniqArrayArray(splitByString(', ', models)) AS models,
  countIf({prompts} > 0 OR api_requests > 0) AS working,
  max(ifNull(last_seen_ns >= {int(active_since)}, 0)) AS active
FROM ({sql})
WHERE NOT ({OTHER_AGENT})
GROUP BY {", ".join(by)}
SETTINGS join_use_nulls = 1""",
            p,
        )
        if key in IDENTITY_KEYS:
            values = [group_value(r[key]) for r in parts]
        else:
            values = [
                group_value(custom_attributes(resource, rkey).get(key))
                for resource, rkey in self._resources(parts)
            ]
        for r in parts:
            r.update(agent=CLAUDE_CODE, source="otel")
        return group_parts(zip(values, parts, strict=True), key)

    def _resource_col(self, time_col: str) -> str:
        if self._by_id():
            return f"argMax(cityHash64(resource), {time_col}) AS resource_id"
        return f"argMax(resource, {time_col}) AS resource"

    def _resource(self, time_col: str) -> dict[str, str]:
        """The rollup measures' resource id, or the Map itself where resources travel so."""
        return {} if self._by_id() else {"resource_id": self._resource_col(time_col)}

    def _ident(self, time_col: str) -> str:
        return ", ".join(
            f"argMaxIf(`{k}`, {time_col}, `{k}` IS NOT NULL) AS `{k}`" for k in IDENTITY_KEYS
        )

    def _event_part(self, f: Filter, where: str, since: bool) -> str:
        """Per session: its events' figures in the window (the tools' names only for the text
        filter)."""
        r = rollups.EVENT_SESSIONS
        omit = () if f.needle is not None else ("tools",)
        if self._rolled(r):
            return (
                f"SELECT session_id, max(agent) AS agent, {r.merged(omit)}, "
                "countIfMerge(prompts_state) AS all_prompts, "
                "countIfMerge(api_requests_state) AS all_requests "
                f"FROM ({self._covered(r, f, where)}) GROUP BY session_id"
            )
        columns = [
            "session_id",
            "cost_usd",
            *TOKENS,
            "success",
            "model",
            "tool_name",
            "project",
            "resource",
            "sequence",
            "prompt",
            "prompt_id",
            "terminal",
            *IDENTITY_KEYS,
        ]
        return f"""
SELECT session_id, max(agent) AS agent, {r.direct(omit=omit, **self._resource("time_ns"))},
  {_ALL_COUNTS}
FROM ({self.x.events(columns, where, since)})
GROUP BY session_id"""

    def _span_part(self, f: Filter, where: str, since: bool) -> str:
        """Per session: its spans' figures in the window."""
        r = rollups.SPAN_SESSIONS
        if self._rolled(r):
            return (
                f"SELECT session_id, max(agent) AS agent, {r.merged()} "
                f"FROM ({self._covered(r, f, where)}) GROUP BY session_id"
            )
        columns = ["session_id", "end_ns", "role", "attempt", "resource", *IDENTITY_KEYS]
        return f"""
SELECT session_id, max(agent) AS agent, {r.direct(**self._resource("start_ns"))}
FROM ({self.x.spans(columns, where, since)})
GROUP BY session_id"""

    def _metric_part(self, where: str, since: bool) -> str:
        """Per session: its cost metric's increments in the window."""
        columns = [
            "session_id",
            "name",
            "temporality",
            "monotonic",
            "resource",
            "agent",
            *IDENTITY_KEYS,
        ]
        return f"""
SELECT session_id, min(time_ns) AS first_ns, max(time_ns) AS last_ns,
  sumIf(increment, name = {lit(COST_METRIC)}) AS metric_cost_usd,
  countIf(name = {lit(COST_METRIC)}) AS cost_points,
  {self._resource_col("time_ns")}, max(agent) AS agent, {self._ident("time_ns")}
FROM ({self.x.metric_points(columns, where, since)})
GROUP BY session_id"""

    def _resources(self, rows: list[dict]) -> list[tuple[str | None, bytes | None]]:
        """Each row's resource attributes (JSON, None when empty) and, where they came by id,
        the key the custom attributes are cached by: the first part's that are not empty."""
        if not self._by_id():
            return [(json_map(r["resource"]) if r["resource"] else None, None) for r in rows]
        names = [
            c for c in ("e_resource_id", "s_resource_id", "m_resource_id") if rows and c in rows[0]
        ]
        ids = {int(r[c]) for r in rows for c in names if r[c] is not None}
        found = self._attributes(ids)
        out: list[tuple[str | None, bytes | None]] = []
        for r in rows:
            held = None
            for c in names:
                rid = r[c]
                if rid is not None and found.get(int(rid)) is not None:
                    held = int(rid)
                    break
            out.append((None, None) if held is None else (found[held], b"ch:%d" % held))
        return out

    def _attributes(self, ids: set[int]) -> dict[int, str | None]:
        """The attributes of the resources `ids`: from claude-top's resources table, else (a
        resource only metric points, or spans without a typed table, carry) the exporter's."""
        db = f"`{self.layout.database}`"
        found = rollups.resources(self.runner, db, ids, self.verified)
        missing = sorted(ids - found.keys())
        if missing:
            tables = [t for t in (self.x.sums, self.x.traces) if t]
            inlist = ", ".join(str(i) for i in missing)
            union = " UNION ALL ".join(
                f"SELECT cityHash64(ResourceAttributes) AS id, any(ResourceAttributes) AS "
                f"attributes FROM {t} WHERE id IN ({inlist}) GROUP BY id"
                for t in tables
            )
            if union:
                extra = self._rows(
                    f"SELECT id, any(attributes) AS attributes FROM ({union}) GROUP BY id", {}
                )
                found.update(rollups.remember(self.verified, extra))
        return found

    def _whole(self, f: Filter, rows: list[dict]) -> None:
        """Make each row with events in the window say what its session's whole life says
        (not only the window's): the first event's sequence, every prompt and request (is it
        partial?), the first prompt's text and the latest terminal. Only the rows before the
        window are read, for the sessions in it they may change: one whose first record here
        is not a process's first (sequence 0) or that has no prompt here, and, for the text
        filter, one whose first prompt may lie before."""
        if f.since_ns is None:
            return
        whole = {
            r["session_id"]: r
            for r in rows
            if r["all_prompts"] is not None
            and (f.needle is not None or r["first_seq"] != 0 or not r["all_prompts"])
        }
        if not whole:
            return
        before = self._rows(
            f"""
SELECT session_id, {rollups.EVENT_SESSIONS.direct(only=_WHOLE + _WHOLE_TIMES)}, {_ALL_COUNTS}
FROM ({
                self.x.events(
                    ["session_id", "sequence", "prompt", "prompt_id", "terminal"],
                    "session_id IN {ids:Array(String)}",
                    "before",
                )
            })
GROUP BY session_id""",
            {"ids": sorted(whole), "since": int(f.since_ns)},
        )
        for b in before:
            w = whole[b["session_id"]]
            if b["first_seq_ns"] is not None and (
                w["first_seq_ns"] is None or b["first_seq_ns"] <= w["first_seq_ns"]
            ):
                w["first_seq"], w["first_seq_ns"] = b["first_seq"], b["first_seq_ns"]
            if b["prompt_ns"] is not None and (
                w["prompt_ns"] is None or b["prompt_ns"] <= w["prompt_ns"]
            ):
                w["first_prompt"], w["prompt_ns"] = b["first_prompt"], b["prompt_ns"]
            if w["terminal_ns"] is None and b["terminal_ns"] is not None:
                w["terminal"] = b["terminal"]
            w["all_prompts"] += b["all_prompts"]
            w["all_requests"] += b["all_requests"]
