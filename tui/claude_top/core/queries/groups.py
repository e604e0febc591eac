"""The sessions and models panes grouped by person or team: by `user.email`,
`user.account_uuid` or `organization.id` (Claude Code's standard attributes when signed in),
or by any resource attribute a team sets with OTEL_RESOURCE_ATTRIBUTES (`team`, `workflow_id`,
`stage`), so cost is attributed per person, workflow and stage.

A grouped sessions row has the session row's columns summed over its sessions, keyed by the
group's value (`session_id` holds it, `label` says it, `sessions` counts them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb

from claude_top.core.names import API_REQUEST
from claude_top.core.queries.filters import (
    Filter,
    as_datetime,
    cache_ratio_sql,
    dicts,
    filter_where,
)

IDENTITY_KEYS = ("user.email", "user.account_uuid", "organization.id")
NONE = "(none)"
SUMMED = (
    "prompts",
    "api_requests",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "tool_calls",
    "tool_errors",
    "user_prompts",
    "api_errors",
    "retries",
)
"""A session row's columns a group's row sums."""


def value_of(row: dict, key: str) -> str:
    """A session row's value for a group key (NONE when it has none)."""
    if key in IDENTITY_KEYS:
        return group_value((row.get("identity") or {}).get(key))
    return group_value((row.get("custom") or {}).get(key))


def group_value(value: Any) -> str:
    """The group an attribute's value puts a session in (NONE when it has none)."""
    return NONE if value in (None, "") else str(value)


def group_sessions(rows: list[dict], key: str) -> list[dict]:
    """One row per value of `key`, its sessions' columns summed; latest activity first."""
    return group_parts(((value_of(r, key), _part(r)) for r in rows), key)


def _part(row: dict) -> dict:
    """A session row as the part of its group it is."""
    part = {k: row.get(k) or 0 for k in SUMMED}
    part.update(
        first_seen_ns=row.get("first_seen_ns"),
        last_seen_ns=row.get("last_seen_ns"),
        models=(row.get("models") or "").split(", "),
        working=1 if row.get("has_work") else 0,
        active=row.get("status") == "active",
        agent=row.get("agent"),
        source=row.get("source"),
    )
    return part


def group_parts(parts: Iterable[tuple[str, dict]], key: str) -> list[dict]:
    """The grouped rows from parts of groups: (value, figures over some of its sessions: the
    summed columns, `first_seen_ns`, `last_seen_ns`, `models` (names), `working` (sessions
    that did something), `active`, and the `agent` and `source` of its latest session), as a
    store that sums sessions in its own engine gives them; latest activity first."""
    groups: dict[str, dict] = {}
    for value, part in parts:
        g = groups.get(value)
        if g is None:
            g = groups[value] = dict.fromkeys(SUMMED, 0)
            g.update(first=None, last=None, best=part, best_ns=part["last_seen_ns"] or 0)
            g.update(models=set(), working=0, active=False)
        for k in SUMMED:
            g[k] += part[k]
        first, last = part["first_seen_ns"], part["last_seen_ns"]
        if first is not None and (g["first"] is None or first < g["first"]):
            g["first"] = first
        if last is not None and (g["last"] is None or last > g["last"]):
            g["last"] = last
        if (last or 0) > g["best_ns"]:
            g["best"], g["best_ns"] = part, last or 0
        g["models"].update(m for m in part["models"] if m)
        g["working"] += part["working"]
        g["active"] = g["active"] or bool(part["active"])
    out = [_group_row(value, key, g) for value, g in groups.items()]
    out.sort(key=lambda g: g["session_id"])
    out.sort(key=lambda g: -(g["last_seen_ns"] or 0))
    return out


def _group_row(value: str, key: str, g: dict) -> dict[str, Any]:
    row: dict[str, Any] = {k: g[k] for k in SUMMED}
    first, last, working = g["first"], g["last"], g["working"]
    den = row["input_tokens"] + row["cache_read_tokens"] + row["cache_creation_tokens"]
    row.update(
        session_id=value,
        label=f"{key}={value}",
        group_key=key,
        sessions=working,
        first_seen_ns=first,
        last_seen_ns=last,
        last_received_ns=last,
        first_seen=as_datetime(first),
        last_seen=as_datetime(last),
        models=", ".join(sorted(g["models"])),
        status="active" if g["active"] else "idle",
        cache_hit_ratio=row["cache_read_tokens"] / den if den > 0 else None,
        metric_cost_usd=None,
        has_work=bool(working),
        partial=False,
        terminal=None,
        agent=g["best"].get("agent"),
        source=g["best"].get("source"),
        project=None,
        first_prompt=None,
        resource_attributes=None,
        custom={"sessions": working},
        identity={},
    )
    return row


# --- the local store -------------------------------------------------------------------------


def _json(col: str, key: str) -> str:
    return f"json_extract_string({col}, '$.\"{key}\"')"


def local_identities(cur: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, dict]:
    """Per session, the latest value of each identity key its events carry."""
    if not ids:
        return {}
    cols = ", ".join(
        f"arg_max({_json('e.attributes', k)}, e.time_ns) FILTER "
        f'(WHERE {_json("e.attributes", k)} IS NOT NULL) AS "{k}"'
        for k in IDENTITY_KEYS
    )
    rows = dicts(
        cur.execute(
            f"SELECT e.session_id, {cols} FROM events e "
            "WHERE e.session_id IN (SELECT unnest($ids::VARCHAR[])) GROUP BY e.session_id",
            {"ids": ids},
        )
    )
    return {r.pop("session_id"): r for r in rows}


def local_group_keys(cur: duckdb.DuckDBPyConnection, f: Filter) -> list[str]:
    """The identity keys the window's events carry, then every custom resource attribute."""
    from claude_top.core.queries.sessions import custom_attributes

    p: dict[str, Any] = {}
    where = filter_where(f, "time_ns", p, session=False)
    counts = cur.execute(
        "SELECT "
        + ", ".join(f"count({_json('attributes', k)})" for k in IDENTITY_KEYS)
        + f" FROM events WHERE {where}",
        p,
    ).fetchone()
    keys = {
        k
        for (attrs,) in cur.execute("SELECT DISTINCT attributes FROM resources").fetchall()
        for k in custom_attributes(attrs)
    }
    return [k for k, n in zip(IDENTITY_KEYS, counts, strict=True) if n] + sorted(
        k for k in keys if k != "session.id"
    )


def local_models_by(cur: duckdb.DuckDBPyConnection, f: Filter, key: str) -> list[dict]:
    """The models pane per (group value, model) from the local store."""
    from claude_top.core.queries.filters import text_condition

    p: dict[str, Any] = {}
    where = filter_where(f, "e.time_ns", p).replace("session_id =", "e.session_id =")
    text = text_condition(f, p, "e.model", "e.session_id")
    if key in IDENTITY_KEYS:
        grp = f"coalesce({_json('e.attributes', key)}, {_json('r.attributes', key)})"
    else:
        p["gk"] = key
        grp = "json_extract_string(r.attributes, '$.\"' || $gk || '\"')"
    sql = f"""
WITH m AS (
  SELECT coalesce({grp}, '{NONE}') AS grp, coalesce(e.model, '(unknown)') AS model,
    count(*) AS api_requests, coalesce(sum(e.cost_usd), 0.0) AS cost_usd,
    coalesce(sum(e.input_tokens), 0) AS input_tokens,
    coalesce(sum(e.output_tokens), 0) AS output_tokens,
    coalesce(sum(e.cache_read_tokens), 0) AS cache_read_tokens,
    coalesce(sum(e.cache_creation_tokens), 0) AS cache_creation_tokens
  FROM events e LEFT JOIN resources r ON r.uid = e.resource_id
  WHERE e.kind = '{API_REQUEST}' AND {where} AND {text}
  GROUP BY 1, 2
)
SELECT grp, model, api_requests, cost_usd, input_tokens::BIGINT AS input_tokens,
  output_tokens::BIGINT AS output_tokens, cache_read_tokens::BIGINT AS cache_read_tokens,
  cache_creation_tokens::BIGINT AS cache_creation_tokens,
  {cache_ratio_sql("cache_read_tokens", "input_tokens", "cache_creation_tokens")}
    AS cache_hit_ratio,
  CASE WHEN sum(cost_usd) OVER () > 0 THEN cost_usd / sum(cost_usd) OVER () ELSE 0.0 END
    AS share
FROM m ORDER BY cost_usd DESC, grp, model
"""
    return dicts(cur.execute(sql, p))
