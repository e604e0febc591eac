"""Transcript facts joined with telemetry, per session: the `events` rows (`source =
'transcript'`) that stand in for what telemetry lacks.

For every session a commit touched that has transcript facts, the rows are derived again from
everything stored, so the result does not depend on the order things arrived in:

- one `api_request` per transcript request whose request id no telemetry `api_request` has
  (the request id is the join key; an event without one, from an older Claude Code, is matched
  by model and token counts instead);
- one `user_prompt` per prompt id, `tool_result` and `tool_decision` per tool_use id, that no
  telemetry event has;
- a request, prompt or tool call found in several sessions' transcripts (a forked or resumed
  session's copy) belongs to the session that started first (of two with the same start, the
  one that ended first: the other went on from the copy);
- a fact without a prompt id of its own belongs to the latest prompt before it.

Cost of a request telemetry lacks: Claude Code's `cost-state` lines hold each model's
cumulative cost for the session. The requests between two such lines cost their difference;
minus what telemetry reports for the requests of that stretch it has, the rest is split among
the others in proportion to their list price (`cost_source = 'transcript'`). Requests after the
last cost-state line (a session still running) are priced from the price table
(`cost_source = 'estimate'`), or left without a cost when the table lacks the model.

The rows are built in SQL from the facts (Python only splits the costs) into
`reconcile_want`; compared with the stored ones, what changed is deleted
(`reconcile_gone`) and inserted (`reconcile_new`), so a commit that adds one line to a long
session rewrites a few rows.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field

import duckdb

from claude_top.core.names import (
    API_REQUEST,
    CLAUDE_CODE,
    CLAUDE_PREFIX,
    TOOL_DECISION,
    TOOL_RESULT,
    USER_PROMPT,
)
from claude_top.core.pricing import PriceTable
from claude_top.core.schema import (
    COST_ESTIMATE,
    COST_TRANSCRIPT,
    SOURCE_OTEL,
    SOURCE_TRANSCRIPT,
    TABLES,
)

UNKEYED_MATCH_NS = 600 * 10**9
"""How far apart in time a telemetry event without the join key may be from the transcript
fact it is matched to."""
PROMPT_MATCH_NS = 10 * 10**9
RATIO = (1.0, 5.0, 0.1, 1.25)
"""Input, output, cache read and cache write prices relative to each other (the same for every
Anthropic model): how a cost is split among requests of a model the price table lacks."""
WANT, STORED, GONE, NEW = "reconcile_want", "reconcile_stored", "reconcile_gone", "reconcile_new"
_EVENT_COLUMNS = TABLES["events"]
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")


@dataclass
class Plan:
    """What the derivation changed: sessions derived, rows deleted and inserted (their uids
    are in the temporary tables `reconcile_gone` and `reconcile_new`)."""

    sessions: set[str] = field(default_factory=set)
    deleted: int = 0
    inserted: int = 0


def uid_sql(kind: str, session: str, key: str) -> str:
    """SQL for a derived row's id: the same fact always gets the same row."""
    parts = f"'transcript' || chr(0) || '{kind}' || chr(0) || {session} || chr(0) || {key}"
    return f"unhex(md5({parts}))"


def _sessions_table(cur: duckdb.DuckDBPyConnection, name: str, ids: Collection[str]) -> None:
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT unnest($1::VARCHAR[]) AS session_id",
        [sorted(ids)],
    )


def _sharing(cur: duckdb.DuckDBPyConnection) -> set[str]:
    """Other sessions whose transcripts hold a request, prompt or tool call that one of
    `reconcile_in`'s holds (a fork's copy): who owns it may have changed too."""
    out: set[str] = set()
    for table, key in _KEYED:
        rows = cur.execute(
            f"SELECT DISTINCT o.session_id FROM {table} o JOIN "
            f"(SELECT session_id, {key} FROM {table} SEMI JOIN reconcile_in USING (session_id)) m"
            f" ON o.{key} = m.{key} AND o.session_id <> m.session_id"
        ).fetchall()
        out.update(r[0] for r in rows)
    return out


_KEYED = (
    ("transcript_requests", "request_key"),
    ("transcript_prompts", "prompt_id"),
    ("transcript_tools", "tool_use_id"),
)


def _owners(cur: duckdb.DuckDBPyConnection) -> None:
    """`reconcile_owner_<table>`: for each key of the sessions in `reconcile_all` that other
    sessions hold too, the session that owns it: the one that started first (then the
    smallest id)."""
    for table, key in _KEYED:
        cur.execute(
            f"""
CREATE OR REPLACE TEMP TABLE reconcile_owner_{table} AS
SELECT t.{key} AS k,
  first(t.session_id ORDER BY s.first_ns NULLS LAST, s.last_ns NULLS LAST, t.session_id) AS owner
FROM {table} t LEFT JOIN transcript_sessions s USING (session_id)
WHERE t.{key} IN (SELECT {key} FROM {table} SEMI JOIN reconcile_all USING (session_id))
GROUP BY t.{key} HAVING count(*) > 1"""
        )


def _owned(table: str, alias: str, key: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM reconcile_owner_{table} o WHERE o.k = {alias}.{key} "
        f"AND o.owner <> {alias}.session_id)"
    )


def plan(cur: duckdb.DuckDBPyConnection, sessions: Collection[str], prices: PriceTable) -> Plan:
    """Derive the transcript rows of `sessions` (and of the sessions sharing facts with them)
    as they should be, and compare them with those stored: `reconcile_gone` holds the uids to
    delete, `reconcile_new` the rows to insert."""
    out = Plan()
    if not sessions:
        return out
    _sessions_table(cur, "reconcile_in", sessions)
    every = set(sessions) | _sharing(cur)
    if len(every) > len(sessions):
        _sessions_table(cur, "reconcile_all", every)
    else:
        cur.execute("CREATE OR REPLACE TEMP TABLE reconcile_all AS SELECT * FROM reconcile_in")
    out.sessions = every
    _owners(cur)
    _otel(cur)
    _costs(cur, prices)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {WANT} AS {_WANT_SQL}")
    mine = (
        f"(SELECT * FROM events WHERE source = '{SOURCE_TRANSCRIPT}' "
        "AND session_id IN (SELECT session_id FROM reconcile_all))"
    )
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {STORED} AS SELECT * FROM {mine}")
    if cur.execute(f"SELECT count(*) FROM {STORED}").fetchone()[0]:
        # only the sessions derived before need comparing (a first import has few)
        before = f"session_id IN (SELECT session_id FROM {STORED})"
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {GONE} AS SELECT uid FROM "
            f"(SELECT * FROM {STORED} EXCEPT SELECT * FROM {WANT} WHERE {before})"
        )
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {NEW} AS SELECT * FROM {WANT} WHERE NOT ({before}) "
            f"UNION ALL (SELECT * FROM {WANT} WHERE {before} EXCEPT SELECT * FROM {STORED})"
        )
        cur.execute(f"DROP TABLE {WANT}")
    else:  # nothing derived yet (a first import): all of it is new
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {GONE} (uid BLOB)")
        cur.execute(f"DROP TABLE IF EXISTS {NEW}")
        cur.execute(f"ALTER TABLE {WANT} RENAME TO {NEW}")
    cur.execute(f"DROP TABLE {STORED}")
    out.deleted, out.inserted = cur.execute(
        f"SELECT (SELECT count(*) FROM {GONE}), (SELECT count(*) FROM {NEW})"
    ).fetchone()
    return out


def _otel(cur: duckdb.DuckDBPyConnection) -> None:
    """`reconcile_otel`: the telemetry events of the sessions in `reconcile_all` that
    transcript facts may duplicate; `reconcile_otel_requests`: every telemetry api_request (any
    session) whose request id their transcripts hold, with its reported cost."""
    kinds = ", ".join(f"'{k}'" for k in (API_REQUEST, USER_PROMPT, TOOL_RESULT, TOOL_DECISION))
    cur.execute(
        f"""
CREATE OR REPLACE TEMP TABLE reconcile_otel AS
SELECT session_id, kind, request_id, prompt_id, tool_use_id, tool_name, time_ns, model,
  input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cost_usd
FROM events WHERE source = '{SOURCE_OTEL}' AND kind IN ({kinds})
  AND session_id IN (SELECT session_id FROM reconcile_all)"""
    )
    cur.execute(
        f"""
CREATE OR REPLACE TEMP TABLE reconcile_otel_requests AS
SELECT request_id, any_value(cost_usd) AS cost_usd FROM events
WHERE source = '{SOURCE_OTEL}' AND kind = '{API_REQUEST}' AND request_id IN (
  SELECT request_key FROM transcript_requests SEMI JOIN reconcile_all USING (session_id))
GROUP BY request_id"""
    )


# -- costs --------------------------------------------------------------------------------------


def _costs(cur: duckdb.DuckDBPyConnection, prices: PriceTable) -> None:
    """`reconcile_cost`: (session, request key, cost, cost source) of every transcript request
    to derive (owned, not in telemetry)."""
    reqs = cur.execute(
        f"""
SELECT r.session_id, r.request_key, r.file, r.line, r.time_ns, r.model,
  r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_creation_tokens,
  o.request_id IS NOT NULL, o.cost_usd, {_owned("transcript_requests", "r", "request_key")}
FROM transcript_requests r SEMI JOIN reconcile_all USING (session_id)
LEFT JOIN reconcile_otel_requests o ON o.request_id = r.request_key
ORDER BY r.session_id, r.time_ns, r.request_key"""
    ).fetchall()
    points = defaultdict(list)
    for sid, file, line, model, cost, t in cur.execute(
        "SELECT session_id, file, line, model, cost_usd, time_ns FROM transcript_costs "
        "SEMI JOIN reconcile_all USING (session_id)"
    ).fetchall():
        points[sid].append((file, line, model, cost, t))
    unkeyed = defaultdict(list)
    for sid, t, model, i, o, cr, cc, cost in cur.execute(
        f"SELECT session_id, time_ns, model, input_tokens, output_tokens, cache_read_tokens, "
        f"cache_creation_tokens, cost_usd FROM reconcile_otel "
        f"WHERE kind = '{API_REQUEST}' AND request_id IS NULL AND time_ns IS NOT NULL"
    ).fetchall():
        unkeyed[sid].append([t, model, (i, o, cr, cc), cost, False])
    rows: list[tuple] = []
    by_session: dict[str, list[tuple]] = defaultdict(list)
    for r in reqs:
        by_session[r[0]].append(r)
    for sid, rs in by_session.items():
        rows.extend(_Costs(sid, rs, points.get(sid, []), unkeyed.get(sid, []), prices).split())
    cols = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE reconcile_cost AS SELECT unnest($1::VARCHAR[]) AS session_id,"
        " unnest($2::VARCHAR[]) AS request_key, unnest($3::DOUBLE[]) AS cost_usd,"
        " unnest($4::VARCHAR[]) AS cost_source",
        [list(c) for c in cols],
    )


class _Costs:
    """One session's requests: which to derive, and what each costs."""

    def __init__(self, sid, requests, points, unkeyed, prices: PriceTable) -> None:
        self.sid = sid
        self.prices = prices
        self.unkeyed = unkeyed
        fields = ("key", "file", "line", "time", "model")
        self.requests = [
            {
                **dict(zip(fields, r[1:6], strict=True)),
                "tokens": r[6:10],
                "covered": r[10],
                "reported": r[11],
                "owned": r[12],
            }
            for r in requests
        ]
        self.points = self._points(points)
        self._price_cache: dict = {}

    @staticmethod
    def _points(raw: list[tuple]) -> list[tuple]:
        """The cost-state lines in order: (time, file, line, cumulative cost by model); the
        same line read from a copy of its file counts once."""
        by_line: dict[tuple[str, int], list] = {}
        for file, line, model, cost, t in raw:
            p = by_line.setdefault((file, line), [t if t is not None else -1, file, line, {}])
            p[3][model] = cost
        out, seen = [], set()
        for p in sorted((tuple(p) for p in by_line.values()), key=lambda p: p[:3]):
            key = (p[0], tuple(sorted(p[3].items())))
            if key not in seen:
                seen.add(key)
                out.append(p)
        return out

    def _match_unkeyed(self, r: dict) -> bool:
        """A telemetry api_request without a request id that is this request: same model and
        tokens, nearest in time (each used once)."""
        best = None
        for u in self.unkeyed:
            if u[4] or u[1] != r["model"] or u[2] != tuple(r["tokens"]):
                continue
            gap = abs(u[0] - r["time"])
            if gap <= UNKEYED_MATCH_NS and (best is None or gap < best[0]):
                best = (gap, u)
        if best is None:
            return False
        best[1][4] = True
        r["reported"] = best[1][3]
        return True

    def _estimate(self, model: str | None, tokens) -> float | None:
        return self.prices.estimate(model, *(t or 0 for t in tokens))

    def _weight(self, r: dict) -> float:
        listed = self._estimate(r["model"], r["tokens"])
        if listed is not None:
            return listed
        return sum(w * (n or 0) for w, n in zip(RATIO, r["tokens"], strict=True))

    def _span(self, r: dict, by_file: dict, times: list) -> int:
        """The index of the first cost-state line after the request (len: none): by line in
        the request's own file, by time in other files (a subagent's)."""
        best = len(self.points)
        same = by_file.get(r["file"])
        if same:
            j = bisect.bisect_right(same, (r["line"], len(self.points)))
            if j < len(same):
                best = same[j][1]
        j = bisect.bisect_left(times, (r["time"], -1, ""))
        while j < len(times) and times[j][1] < best:
            if times[j][2] != r["file"]:
                best = times[j][1]
                break
            j += 1
        return best

    def split(self) -> list[tuple]:
        """(session, request key, cost, cost source) of each request to derive."""
        for r in self.requests:
            if not r["covered"] and self.unkeyed:
                r["covered"] = self._match_unkeyed(r)
        mine = [r for r in self.requests if r["owned"]]
        by_file: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, (_, file, line, _) in enumerate(self.points):
            by_file[file].append((line, i))
        times = [(p[0], i, p[1]) for i, p in enumerate(self.points)]
        groups: dict[tuple[int, str | None], list] = defaultdict(lambda: [0.0, []])
        for r in mine:
            g = groups[(self._span(r, by_file, times), r["model"])]
            if r["covered"]:
                g[0] += r["reported"] or 0.0
            else:
                g[1].append(r)
        out = []
        for (i, model), (reported, rs) in groups.items():
            if not rs:
                continue
            now = self.points[i][3].get(model) if i < len(self.points) else None
            if now is None:  # after the last cost-state line, or a model it does not list
                for r in rs:
                    est = self._estimate(model, r["tokens"])
                    out.append(
                        (self.sid, r["key"], est, COST_ESTIMATE if est is not None else None)
                    )
                continue
            before = self.points[i - 1][3].get(model, 0.0) if i > 0 else 0.0
            spent = now - before if now >= before - 1e-12 else now  # a restart counts anew
            rest = max(0.0, spent - reported)
            weights = [self._weight(r) for r in rs]
            total = sum(weights)
            for r, w in zip(rs, weights, strict=True):
                share = rest * w / total if total > 0 else rest / len(rs)
                out.append((self.sid, r["key"], share, COST_TRANSCRIPT))
        return out


# -- the rows -----------------------------------------------------------------------------------


def _attributes(pairs: str) -> str:
    """A derived row's attributes: what its typed columns do not hold (the session, prompt,
    request and tool ids, cost and where it came from are there), unset ones left out."""
    return f"json_merge_patch('{{}}', json_object({pairs}))"


def _select(values: dict[str, str]) -> str:
    """A SELECT list in `events` column order and types: the given expressions, NULL for the
    rest."""
    return ", ".join(f"CAST({values.get(c, 'NULL')} AS {t}) AS {c}" for c, t in _EVENT_COLUMNS)


def _common(kind: str, key: str, t: str, prompt: str, project: str) -> dict[str, str]:
    name = CLAUDE_PREFIX + kind
    return {
        "uid": uid_sql(kind, "x.session_id", key),
        "name": f"'{name}'",
        "session_id": "x.session_id",
        "prompt_id": prompt,
        "time_ns": t,
        "body": f"'{name}'",
        "service_name": f"'{CLAUDE_CODE}'",
        "received_ns": t,
        "agent": f"'{CLAUDE_CODE}'",
        "kind": f"'{kind}'",
        "source": f"'{SOURCE_TRANSCRIPT}'",
        "project": project,
    }


_PROMPTS_AT = f"""
  SELECT session_id, time_ns, prompt_id FROM transcript_prompts
    SEMI JOIN reconcile_all USING (session_id) WHERE time_ns IS NOT NULL
  UNION ALL SELECT session_id, time_ns, prompt_id FROM reconcile_otel
    WHERE kind = '{USER_PROMPT}' AND prompt_id IS NOT NULL AND time_ns IS NOT NULL"""
"""Every prompt of the sessions, to find the one a fact without a prompt id belongs to."""

_REQUEST_ROWS = f"""
SELECT {
    _select(
        {
            **_common(
                API_REQUEST,
                "x.request_key",
                "x.time_ns",
                "coalesce(x.prompt_id, p.prompt_id)",
                "coalesce(x.cwd, s.cwd)",
            ),
            "model": "x.model",
            "cost_usd": "c.cost_usd",
            **{t: f"x.{t}" for t in _TOKENS},
            "attributes": _attributes(
                "'model', x.model, 'input_tokens', x.input_tokens, "
                "'output_tokens', x.output_tokens, 'cache_read_tokens', x.cache_read_tokens, "
                "'cache_creation_tokens', x.cache_creation_tokens, 'message_id', x.message_id, "
                "'agent_id', x.agent_id, 'is_sidechain', nullif(x.is_sidechain, false)"
            ),
            "request_id": "x.request_id",
            "cost_source": "c.cost_source",
        }
    )
}
FROM transcript_requests x
JOIN reconcile_cost c USING (session_id, request_key)
LEFT JOIN transcript_sessions s USING (session_id)
ASOF LEFT JOIN prompts_at p ON p.session_id = x.session_id AND x.time_ns >= p.time_ns"""

_PROMPT_ROWS = f"""
SELECT {
    _select(
        {
            **_common(
                USER_PROMPT, "x.prompt_id", "x.time_ns", "x.prompt_id", "coalesce(x.cwd, s.cwd)"
            ),
            "attributes": _attributes("'prompt', x.text, 'prompt_length', length(x.text)"),
        }
    )
}
FROM transcript_prompts x SEMI JOIN reconcile_all USING (session_id)
LEFT JOIN transcript_sessions s USING (session_id)
WHERE {_owned("transcript_prompts", "x", "prompt_id")}
  AND NOT EXISTS (SELECT 1 FROM reconcile_otel o WHERE o.kind = '{USER_PROMPT}'
    AND o.session_id = x.session_id AND (o.prompt_id = x.prompt_id
      OR (o.prompt_id IS NULL AND abs(o.time_ns - x.time_ns) <= {PROMPT_MATCH_NS})))"""

_TOOLS = f"""
  SELECT x.*, coalesce(x.prompt_id, p.prompt_id) AS prompt, s.cwd AS project
  FROM transcript_tools x SEMI JOIN reconcile_all USING (session_id)
  LEFT JOIN transcript_sessions s USING (session_id)
  ASOF LEFT JOIN prompts_at p ON p.session_id = x.session_id
    AND coalesce(x.use_ns, x.result_ns) >= p.time_ns
  WHERE {_owned("transcript_tools", "x", "tool_use_id")}
    AND NOT EXISTS (SELECT 1 FROM reconcile_otel o WHERE o.kind = '{TOOL_RESULT}'
      AND o.session_id = x.session_id AND o.tool_use_id = x.tool_use_id)"""


def _tool_attributes(extra: str) -> str:
    return _attributes(f"'tool_input', x.input, 'agent_id', x.agent_id, {extra}")


_DECISION_ROWS = f"""
SELECT {
    _select(
        {
            **_common(
                TOOL_DECISION,
                "x.tool_use_id",
                "coalesce(x.use_ns, x.result_ns)",
                "x.prompt",
                "x.project",
            ),
            "tool_name": "x.name",
            "tool_use_id": "x.tool_use_id",
            "decision": "x.decision",
            "attributes": _tool_attributes("'decision', x.decision, 'source', x.decision_source"),
        }
    )
}
FROM tools x
WHERE x.decision IS NOT NULL AND coalesce(x.use_ns, x.result_ns) IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM reconcile_otel o WHERE o.kind = '{TOOL_DECISION}'
    AND o.session_id = x.session_id AND o.tool_use_id = x.tool_use_id)"""

_RESULT_ROWS = f"""
SELECT {
    _select(
        {
            **_common(TOOL_RESULT, "x.tool_use_id", "x.result_ns", "x.prompt", "x.project"),
            "tool_name": "x.name",
            "tool_use_id": "x.tool_use_id",
            "success": "NOT coalesce(x.is_error, false)",
            "attributes": _tool_attributes("'success', NOT coalesce(x.is_error, false)"),
        }
    )
}
FROM tools x
WHERE x.result_ns IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM reconcile_otel o WHERE o.kind = '{TOOL_RESULT}'
    AND o.session_id = x.session_id AND o.tool_use_id IS NULL AND o.tool_name = x.name
    AND abs(o.time_ns - x.result_ns) <= {UNKEYED_MATCH_NS})"""

_WANT_SQL = f"""
WITH prompts_at AS ({_PROMPTS_AT}), tools AS ({_TOOLS})
{_REQUEST_ROWS}
UNION ALL {_PROMPT_ROWS}
UNION ALL {_DECISION_ROWS}
UNION ALL {_RESULT_ROWS}"""
