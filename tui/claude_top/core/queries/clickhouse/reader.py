"""The panes' queries over the exporter's tables, run in ClickHouse (aggregates come back, not
rows): the same `Reader` methods and row shapes as the local store's.

Each column's SQL over the exporter's Maps is in `exprs`. The collector retries, so rows
repeat: events are counted once by content (an `api_request` once by its `request_id`), spans
once by trace and span id, metric points once by series and time.
"""

from __future__ import annotations

from array import array
from typing import Any

from claude_top.core.names import (
    API_REQUEST,
    INTERACTION,
    TOOL_RESULT,
    USER_PROMPT,
)
from claude_top.core.queries.clickhouse import rollups
from claude_top.core.queries.clickhouse.details import DetailQueries
from claude_top.core.queries.clickhouse.export_rows import ExportQueries
from claude_top.core.queries.clickhouse.exprs import (
    OTHER_AGENT,
    QUANTILE,
    TOKENS,
    Exprs,
    contains,
    json_map,
    lit,
    session_cond,
    window,
)
from claude_top.core.queries.clickhouse.layout import Layout
from claude_top.core.queries.clickhouse.rows import model_rows
from claude_top.core.queries.clickhouse.runner import QueryRunner
from claude_top.core.queries.clickhouse.session import SessionQueries
from claude_top.core.queries.clickhouse.sessions import SessionListQueries
from claude_top.core.queries.filters import Filter
from claude_top.core.queries.groups import IDENTITY_KEYS, NONE
from claude_top.core.queries.sessions import custom_attributes


class ClickHouseReader(SessionListQueries, SessionQueries, DetailQueries, ExportQueries):
    """`core.queries.reader.Reader` over the exporter's tables; every aggregate runs in
    ClickHouse. The sessions pane is in `sessions`, one session's turns and span trees in
    `session`, a tool's calls, a model's requests and the cost history in `details`, the CSV
    export's rows in `export_rows`."""

    def __init__(
        self, runner: QueryRunner, layout: Layout, verified: rollups.Verified | None = None
    ) -> None:
        self.runner = runner
        self.layout = layout
        self.x = Exprs(layout)
        self.verified = verified if verified is not None else rollups.Verified()
        self._covers: dict[tuple[str, int | None], rollups.Cover] = {}
        """Each rollup's cover of a window, checked once a reader (one refresh of the panes)."""

    def _rolled(self, rollup: rollups.Rollup) -> bool:
        return rollup.name in self.layout.rollups

    def _covered(
        self, rollup: rollups.Rollup, f: Filter, where: str, until_s: int | None = None
    ) -> str:
        """SQL of the rollup's (keys, states) rows covering the window exactly (with
        `until_s`, the whole hours before it, by hour)."""
        db = f"`{self.layout.database}`"
        key = (rollup.name, f.since_ns)
        c = self._covers.get(key)
        if c is None:
            c = self._covers[key] = rollups.cover(
                self.runner, db, rollup, f.since_ns, self.verified
            )
        return rollups.rows(db, rollup, c, where, until_s)

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict]:
        return self.runner.query(sql, params)

    # -- overview ------------------------------------------------------------------------------

    def overview(self, f: Filter) -> dict:
        x, p = self.x, {}
        since = window(f, p)
        sess = session_cond(f, p)
        if self._rolled(rollups.EVENT_SESSIONS):
            ev = self._overview_rolled(f, sess, p)
        else:
            ev = self._overview_events(x, sess, since, p)
        agents = ev["agents"]
        if f.agent is not None:  # every agent, as the local store lists them
            q = {}
            since_all = window(f, q)
            agents = self._rows(
                f"""
SELECT groupUniqArrayIf(agent, agent IS NOT NULL) AS agents
FROM ({x.events(["session_id"], "session_id IS NOT NULL", since_all)})""",
                q,
            )[0]["agents"]
        out = {
            "agents": sorted(agents),
            "not_understood": int(ev["unread"] or 0),
            "estimated_cost_usd": 0.0,
            "cost_usd": float(ev["cost_usd"] or 0.0),
            "api_requests": int(ev["api_requests"]),
            "events_total": int(ev["events_total"]),
            "spans_total": 0,
        }
        ids = set(ev["ids"])
        if x.traces and self._rolled(rollups.SPAN_SESSIONS):
            sp = self._rows(
                f"""
SELECT sum(rows) AS n, groupUniqArrayIf(session_id, session_id IS NOT NULL AND interactions > 0)
  AS ids, sumIf(rows, {OTHER_AGENT}) AS unread
FROM (SELECT session_id, agent, countMerge(rows_state) AS rows,
    countIfMerge(interactions_state) AS interactions
  FROM ({self._covered(rollups.SPAN_SESSIONS, f, sess)}) GROUP BY session_id, agent)""",
                p,
            )[0]
            out["spans_total"] = int(sp["n"])
            out["not_understood"] += int(sp["unread"] or 0)
            ids |= set(sp["ids"])
        elif x.traces:
            sp = self._rows(
                f"""
SELECT count() AS n, groupUniqArrayIf(session_id, role = {lit(INTERACTION)}
    AND session_id IS NOT NULL) AS ids, countIf({OTHER_AGENT}) AS unread
FROM ({x.spans(["session_id", "role"], sess, since)})""",
                p,
            )[0]
            out["spans_total"] = int(sp["n"])
            out["not_understood"] += int(sp["unread"] or 0)
            ids |= set(sp["ids"])
        out["sessions"] = len(ids)
        out["last_received_ns"], out["received_total"] = self._received()
        return out

    def _overview_events(self, x: Exprs, sess: str, since: bool, p: dict[str, Any]) -> dict:
        """The overview's event figures from the events themselves."""
        return self._rows(
            f"""
SELECT countIf(kind = {lit(API_REQUEST)}) AS api_requests,
  sumIf(cost_usd, kind = {lit(API_REQUEST)}) AS cost_usd, count() AS events_total,
  uniqExactIf(session_id, kind IN ({lit(USER_PROMPT)}, {lit(API_REQUEST)})
    AND session_id IS NOT NULL) AS working,
  groupUniqArrayIf(session_id, kind IN ({lit(USER_PROMPT)}, {lit(API_REQUEST)})
    AND session_id IS NOT NULL) AS ids,
  groupUniqArrayIf(agent, agent IS NOT NULL AND session_id IS NOT NULL) AS agents,
  countIf({OTHER_AGENT}) AS unread
FROM ({x.events(["session_id", "cost_usd"], sess, since)})""",
            p,
        )[0]

    def _overview_rolled(self, f: Filter, sess: str, p: dict[str, Any]) -> dict:
        """The overview's event figures from the per-session rollup."""
        r = rollups.EVENT_SESSIONS
        return self._rows(
            f"""
SELECT sum(api_requests) AS api_requests, sum(cost_usd) AS cost_usd, sum(rows) AS events_total,
  groupUniqArrayIf(session_id, session_id IS NOT NULL AND (prompts > 0 OR api_requests > 0))
    AS ids,
  groupUniqArrayIf(agent, agent IS NOT NULL AND session_id IS NOT NULL) AS agents,
  sumIf(rows, {OTHER_AGENT}) AS unread
FROM (SELECT session_id, agent, countMerge(rows_state) AS rows,
    countIfMerge(api_requests_state) AS api_requests, sumIfMerge(cost_usd_state) AS cost_usd,
    countIfMerge(prompts_state) AS prompts
  FROM ({self._covered(r, f, sess)}) GROUP BY session_id, agent)""",
            p,
        )[0]

    def _received(self) -> tuple[int | None, int]:
        """The latest record's time and the rows in every table (no window): the header's
        "last export" and whether anything is there at all."""
        parts = [f"SELECT max(Timestamp) AS t, count() AS n FROM {self.x.logs}"]
        if self.x.traces:
            parts.append(f"SELECT max(Timestamp) AS t, count() AS n FROM {self.x.traces}")
        if self.x.sums:
            parts.append(f"SELECT max(TimeUnix) AS t, count() AS n FROM {self.x.sums}")
        rows = self._rows(
            "SELECT toUnixTimestamp64Nano(max(t)) AS t, sum(n) AS n FROM ("
            + " UNION ALL ".join(f"SELECT toDateTime64(t, 9) AS t, n FROM ({q})" for q in parts)
            + ")",
            {},
        )
        n = int(rows[0]["n"] or 0)
        return (rows[0]["t"] if n else None), n

    def earliest_ns(self, f: Filter) -> int | None:
        x, p = self.x, {}
        since = window(f, p)
        parts = [f"SELECT min(time_ns) AS t FROM ({x.events([], 'TRUE', since)})"]
        if x.traces:
            parts.append(f"SELECT min(start_ns) AS t FROM ({x.spans([], 'TRUE', since)})")
        if x.sums:
            parts.append(f"SELECT min(time_ns) AS t FROM ({x.metric_points([], 'TRUE', since)})")
        rows = self._rows(
            "SELECT min(t) AS t FROM (" + " UNION ALL ".join(parts) + ") WHERE t > 0", p
        )
        return rows[0]["t"] if rows and rows[0]["t"] else None

    # -- models and tools ----------------------------------------------------------------------

    def models(self, f: Filter) -> list[dict]:
        x, p = self.x, {}
        since = window(f, p)
        if self._rolled(rollups.EVENT_MODELS):
            where = f"{session_cond(f, p)} AND {self._text(f, p, 'model')}"
            return model_rows(
                self._rows(
                    f"""
SELECT ifNull(model, '(unknown)') AS model, {_MODEL_SUMS}
FROM (SELECT model, agent, {rollups.EVENT_MODELS.merged()}
  FROM ({self._covered(rollups.EVENT_MODELS, f, where)}) GROUP BY model, agent)
GROUP BY model""",
                    p,
                )
            )
        where = (
            f"kind = {lit(API_REQUEST)} AND {session_cond(f, p)} AND {self._text(f, p, 'model')}"
        )
        rows = self._rows(
            f"""
SELECT ifNull(model, '(unknown)') AS model, count() AS api_requests,
  ifNull(sum(cost_usd), 0.0) AS cost_usd, ifNull(sum(input_tokens), 0) AS input_tokens,
  ifNull(sum(output_tokens), 0) AS output_tokens,
  ifNull(sum(cache_read_tokens), 0) AS cache_read_tokens,
  ifNull(sum(cache_creation_tokens), 0) AS cache_creation_tokens, {_MODEL_EXTRA}
FROM ({
                x.events(
                    [
                        "session_id",
                        "model",
                        "cost_usd",
                        *TOKENS,
                    ],
                    where,
                    since,
                )
            })
GROUP BY model""",
            p,
        )
        return model_rows(rows)

    def _text(self, f: Filter, p: dict[str, Any], col: str) -> str:
        if f.needle is None:
            return "TRUE"
        p["text"] = f.needle
        return f"({contains(col)} OR {contains('session_id')})"

    def tools(self, f: Filter) -> list[dict]:
        x, p = self.x, {}
        since = window(f, p)
        where = (
            f"kind = {lit(TOOL_RESULT)} AND {session_cond(f, p)} "
            f"AND {self._text(f, p, 'tool_name')}"
        )
        if self._rolled(rollups.EVENT_TOOLS):
            where = f"{session_cond(f, p)} AND {self._text(f, p, 'tool_name')}"
            per_tool = f"""
  SELECT ifNull(tool_name, '(unknown)') AS tool_name, sum(rows) AS calls,
    sum(errors) AS errors, max(max_ms) AS max_ms, ifNull(sum(total_ms), 0.0) AS total_ms,
    sum(timed) AS timed, arrayStringConcat(arraySort(groupUniqArray(agent)), ', ') AS agent,
    arraySort(arrayFlatten(groupArray(durations))) AS v
  FROM (SELECT tool_name, agent, {rollups.EVENT_TOOLS.merged()}
    FROM ({self._covered(rollups.EVENT_TOOLS, f, where)}) GROUP BY tool_name, agent)
  GROUP BY tool_name"""
        else:
            per_tool = f"""
  SELECT ifNull(tool_name, '(unknown)') AS tool_name, count() AS calls,
    countIf(success = false) AS errors, max(duration_ms) AS max_ms,
    ifNull(sum(duration_ms), 0.0) AS total_ms, countIf(duration_ms IS NOT NULL) AS timed,
    arrayStringConcat(arraySort(groupUniqArray(agent)), ', ') AS agent,
    arraySort(groupArrayIf(assumeNotNull(duration_ms), duration_ms IS NOT NULL)) AS v
  FROM ({x.events(["session_id", "tool_name", "success", "duration_ms"], where, since)})
  GROUP BY tool_name"""
        rows = self._rows(
            f"""
SELECT tool_name, calls, errors, max_ms, total_ms, timed, agent,
  arrayMap(q -> {QUANTILE}, [0.5, 0.95, 0.99]) AS q
FROM ({per_tool})""",
            p,
        )
        out = []
        for r in rows:
            q = r["q"] if r["timed"] else [None, None, None]
            out.append(
                {
                    "tool_name": r["tool_name"],
                    "calls": int(r["calls"]),
                    "errors": int(r["errors"]),
                    "p50_ms": q[0],
                    "p95_ms": q[1],
                    "p99_ms": q[2],
                    "max_ms": r["max_ms"],
                    "total_ms": float(r["total_ms"]),
                    "error_pct": 100.0 * int(r["errors"]) / int(r["calls"]),
                    "agent": r["agent"] or None,
                }
            )
        out.sort(key=lambda t: t["tool_name"])
        out.sort(key=lambda t: -t["total_ms"])
        return out

    def tool_durations(self, f: Filter, tool_name: str) -> array[float]:
        x, p = self.x, {"tool": tool_name}
        since = window(f, p)
        where = (
            f"kind = {lit(TOOL_RESULT)} AND tool_name = {{tool:String}} AND duration_ms IS NOT "
            f"NULL AND {session_cond(f, p)} AND {self._text(f, p, 'tool_name')}"
        )
        if self._rolled(rollups.EVENT_TOOLS):
            where = (
                f"tool_name = {{tool:String}} AND {session_cond(f, p)} "
                f"AND {self._text(f, p, 'tool_name')}"
            )
            sql = (
                "SELECT arrayFlatten(groupArray(durations)) AS v FROM (SELECT "
                f"{rollups.EVENT_TOOLS.merged()} FROM "
                f"({self._covered(rollups.EVENT_TOOLS, f, where)}) GROUP BY session_id, agent)"
            )
        else:  # one array, not a row per call: a week holds millions
            sql = (
                "SELECT groupArray(assumeNotNull(duration_ms)) AS v FROM ("
                + x.events(["session_id", "tool_name", "duration_ms"], where, since)
                + ")"
            )
        rows = self._rows(sql, p)
        return array("d", rows[0]["v"] if rows else ())

    # -- grouping by person and team -----------------------------------------------------------

    def group_keys(self, f: Filter) -> list[str]:
        """What the panes can be grouped by: who (user.email, user.account_uuid,
        organization.id) and every custom resource attribute found in the window."""
        x, p = self.x, {}
        since = window(f, p)
        if self._rolled(rollups.EVENT_SESSIONS):
            ident = ", ".join(f"argMaxIfMerge(`{k}_state`) AS `{k}`" for k in IDENTITY_KEYS)
            rows = self._rows(
                f"""
SELECT {", ".join(f"countIf(`{k}` IS NOT NULL) AS `{k}`" for k in IDENTITY_KEYS)},
  (SELECT groupUniqArrayArray(mapKeys(attributes))
   FROM `{self.layout.database}`.`{rollups.RESOURCES}`) AS keys
FROM (SELECT session_id, {ident}
  FROM ({self._covered(rollups.EVENT_SESSIONS, f, "TRUE")}) GROUP BY session_id)""",
                p,
            )
        else:
            rows = self._rows(
                f"""
SELECT groupUniqArrayArray(mapKeys(resource)) AS keys,
  {", ".join(f"countIf(`{k}` IS NOT NULL) AS `{k}`" for k in IDENTITY_KEYS)}
FROM ({x.events(["resource", *IDENTITY_KEYS], "TRUE", since)})""",
                p,
            )
        r = rows[0] if rows else {}
        custom = sorted(
            k for k in custom_attributes(json_map(dict.fromkeys(r.get("keys") or [], "")))
        )
        return [k for k in IDENTITY_KEYS if r.get(k)] + [k for k in custom if k != "session.id"]

    def grouped(
        self, f: Filter, key: str, now_ns: int | None = None
    ) -> tuple[list[dict], list[dict]]:
        return self.session_groups(f, key, now_ns), self.models_by(f, key)

    def models_by(self, f: Filter, key: str) -> list[dict]:
        """The models pane grouped by `key` (an identity or resource attribute): one row per
        (value, model)."""
        x, p = self.x, {"gk": key}
        since = window(f, p)
        if self._rolled(rollups.EVENT_MODELS):
            return self._models_by_rolled(f, key, p)
        where = (
            f"kind = {lit(API_REQUEST)} AND {session_cond(f, p)} AND {self._text(f, p, 'model')}"
        )
        group = f"`{key}`" if key in IDENTITY_KEYS else "nullIf(resource[{gk:String}], '')"
        rows = self._rows(
            f"""
SELECT ifNull({group}, {lit(NONE)}) AS grp, ifNull(model, '(unknown)') AS model,
  count() AS api_requests, ifNull(sum(cost_usd), 0.0) AS cost_usd,
  ifNull(sum(input_tokens), 0) AS input_tokens, ifNull(sum(output_tokens), 0) AS output_tokens,
  ifNull(sum(cache_read_tokens), 0) AS cache_read_tokens,
  ifNull(sum(cache_creation_tokens), 0) AS cache_creation_tokens, {_MODEL_EXTRA}
FROM ({
                x.events(
                    [
                        "session_id",
                        "model",
                        "cost_usd",
                        *TOKENS,
                        "resource",
                        *IDENTITY_KEYS,
                    ],
                    where,
                    since,
                )
            })
GROUP BY grp, model""",
            p,
        )
        return model_rows(rows)

    def _models_by_rolled(self, f: Filter, key: str, p: dict[str, Any]) -> list[dict]:
        where = f"{session_cond(f, p)} AND {self._text(f, p, 'model')}"
        by = f"`{key}`" if key in IDENTITY_KEYS else "resource_id"
        join, group = "", "g"
        if key not in IDENTITY_KEYS:
            join = (
                f"LEFT JOIN (SELECT id, nullIf(attributes[{{gk:String}}], '') AS v "
                f"FROM `{self.layout.database}`.`{rollups.RESOURCES}` FINAL) AS r ON r.id = t.g"
            )
            group = "r.v"
        return model_rows(
            self._rows(
                f"""
SELECT ifNull({group}, {lit(NONE)}) AS grp, ifNull(model, '(unknown)') AS model, {_MODEL_SUMS}
FROM (SELECT {by} AS g, model, agent, {rollups.EVENT_MODELS.merged()}
  FROM ({self._covered(rollups.EVENT_MODELS, f, where)}) GROUP BY g, model, agent) AS t
{join}
GROUP BY grp, model""",
                p,
            )
        )


_MODEL_SUMS = """sum(rows) AS api_requests, ifNull(sum(cost_usd), 0.0) AS cost_usd,
  ifNull(sum(input_tokens), 0) AS input_tokens, ifNull(sum(output_tokens), 0) AS output_tokens,
  ifNull(sum(cache_read_tokens), 0) AS cache_read_tokens,
  ifNull(sum(cache_creation_tokens), 0) AS cache_creation_tokens,
  arrayStringConcat(arraySort(groupUniqArray(agent)), ', ') AS agent, sum(unpriced) AS unpriced"""
"""The models pane's columns over rows of `rollups.EVENT_MODELS` merged (per model and agent)."""
_MODEL_EXTRA = (
    "arrayStringConcat(arraySort(groupUniqArray(agent)), ', ') AS agent, "
    "countIf(cost_usd IS NULL) AS unpriced"
)
"""The models pane's agents and unpriced requests, beside its sums."""
