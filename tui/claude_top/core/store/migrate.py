"""Bringing an older claude-top database up to the current schema, in one transaction.

v1 had no rollups; v2 had no `agent`, `kind` / `role`, `request_id`, `source`, `cost_source`
and `project` columns (v3); v3 had no hourly rollups (v4); v4 had no `statusline_samples` and
`limit_alerts` tables (v5); v5 read only Claude Code's records and had no `not_understood`
(v6); v6 had no `transcript_*` tables and no cost-source sums in the rollups (v7). Columns a
table lacks are added and filled from what the rows already hold (the agent from their scope
and service, the kind or role from their name, the request id and project from their
attributes), tables it lacks are created, the records of other agents are read again by the
decoder's own rules (`decode.other_event`, `other_span`); then every rollup is built again
from the rows.
"""

from __future__ import annotations

import json

import duckdb

from claude_top.core.names import CLAUDE_CODE, CLAUDE_PREFIX, STATUS_ERROR, UNKNOWN_AGENT
from claude_top.core.schema import (
    COST_REPORTED,
    META_TABLE,
    SCHEMA_VERSION,
    SIDE_TABLES,
    SOURCE_OTEL,
    TABLES,
    TRANSCRIPT_TABLES,
    column_names,
    create_table_sql,
    transcript_table_sql,
)
from claude_top.core.sources.otlp import decode
from claude_top.core.sources.otlp.agents import (
    CLAUDE_SCOPE,
    CLAUDE_SPAN_ROLES,
    KNOWN_AGENTS,
    agent_of,
)
from claude_top.core.store import rollup

_AGENT = f"""CASE WHEN scope_name = '{CLAUDE_SCOPE}' OR scope_name LIKE '{CLAUDE_SCOPE}.%'
  THEN '{CLAUDE_CODE}' WHEN service_name = '{CLAUDE_CODE}' THEN 'unknown' ELSE service_name END"""
_SPAN_ROLE = (
    "CASE name "
    + " ".join(f"WHEN '{name}' THEN '{kind}'" for name, kind in CLAUDE_SPAN_ROLES.items())
    + " END"
)
FILLS = {
    "events": {
        "agent": _AGENT,
        "kind": f"CASE WHEN ({_AGENT}) = '{CLAUDE_CODE}' AND starts_with(name, '{CLAUDE_PREFIX}')"
        f" THEN substr(name, {len(CLAUDE_PREFIX) + 1}) END",
        "request_id": "json_extract_string(attributes, '$.request_id')",
        "source": f"'{SOURCE_OTEL}'",
        "cost_source": f"CASE WHEN cost_usd IS NOT NULL THEN '{COST_REPORTED}' END",
        "project": "json_extract_string(attributes, '$.project')",
    },
    "spans": {
        "agent": _AGENT,
        "role": f"CASE WHEN ({_AGENT}) = '{CLAUDE_CODE}' THEN {_SPAN_ROLE} END",
    },
    "metric_points": {"agent": _AGENT},
}
"""How each column a later schema added is filled in for the rows already stored."""


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Add what the tables lack, fill it in, rebuild the rollups, stamp the version (call in a
    transaction)."""
    reread = False
    for table, columns in TABLES.items():
        have = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                [table],
            ).fetchall()
        }
        added = [(name, sql) for name, sql in columns if name not in have]
        reread = reread or any(name == "not_understood" for name, _ in added)
        for name, sql in added:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql}")
        fills = [
            f"{name} = {FILLS[table][name]}" for name, _ in added if name in FILLS.get(table, {})
        ]
        if fills:
            con.execute(f"UPDATE {table} SET {', '.join(fills)}")
    for table in SIDE_TABLES:
        con.execute(create_table_sql(table))
    for table in TRANSCRIPT_TABLES:
        con.execute(transcript_table_sql(table))
    if reread:
        _read_other_agents_again(con)
    for table in rollup.ALL_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    for sql in rollup.create_sql():
        con.execute(sql)
    rollup.build(con)
    con.execute(
        f"UPDATE {META_TABLE} SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)]
    )


def _read_other_agents_again(con: duckdb.DuckDBPyConnection) -> None:
    """Every record's agent by today's rules, and other agents' events and spans read again as
    the decoder reads them now (a Codex completion's turn and a span's shared session within
    the export they came in, a GenAI agent's request and tool spans as events)."""
    for table in ("events", "spans", "metric_points"):
        pairs = con.execute(f"SELECT DISTINCT service_name, scope_name FROM {table}").fetchall()
        for service, scope in pairs:
            con.execute(
                f"UPDATE {table} SET agent = $a WHERE service_name IS NOT DISTINCT FROM $s "
                "AND scope_name IS NOT DISTINCT FROM $c",
                {"a": agent_of(service, scope), "s": service, "c": scope},
            )
    resources = {
        uid: json.loads(attrs or "{}")
        for uid, attrs in con.execute("SELECT uid, attributes FROM resources").fetchall()
    }
    others = f"agent IS DISTINCT FROM '{CLAUDE_CODE}'"
    rows = con.execute(
        "SELECT uid, agent, name, attributes, resource_id, trace_id, received_ns FROM events "
        f"WHERE {others} ORDER BY received_ns, time_ns, sequence, uid"
    ).fetchall()
    turn_of: dict[str, str] = {}
    export = None
    updates = []
    for uid, agent, name, attrs, res_id, trace_id, received_ns in rows:
        if received_ns != export:
            export, turn_of = received_ns, {}
        m = decode.other_event(
            agent, name, json.loads(attrs or "{}"), resources.get(res_id, {}), trace_id, turn_of
        )
        updates.append((uid, *(m.get(c) for c in decode.OTHER_EVENT_COLUMNS)))
    _update(con, "events", decode.OTHER_EVENT_COLUMNS, updates)

    cols = column_names("spans")
    spans = con.execute(
        f"SELECT * FROM spans WHERE {others} ORDER BY received_ns, trace_id, start_ns, uid"
    ).fetchall()
    ix = {name: i for i, name in enumerate(cols)}
    typed = decode.OTHER_SPAN_COLUMNS
    new_rows: list[tuple] = []
    derived: list[dict | None] = []
    for row in spans:
        agent = row[ix["agent"]]
        m = decode.other_span(
            agent,
            row[ix["name"]],
            json.loads(row[ix["attributes"]] or "{}"),
            resources.get(row[ix["resource_id"]], {}),
        )
        values = dict(zip(cols, row, strict=True))
        values.update((c, m.get(c)) for c in typed)
        new_rows.append(tuple(values[c] for c in cols))
        genai = agent not in KNOWN_AGENTS and agent != UNKNOWN_AGENT
        ok = row[ix["status_code"]] != STATUS_ERROR
        derived.append({**values, "ok": ok} if genai and values["role"] is not None else None)
    by_export: dict[int | None, list[int]] = {}
    for i, row in enumerate(new_rows):
        by_export.setdefault(row[ix["received_ns"]], []).append(i)
    for indices in by_export.values():
        decode.share_sessions(new_rows, indices)
    _update(con, "spans", typed, [(r[ix["uid"]], *(r[ix[c]] for c in typed)) for r in new_rows])
    events = [
        ev
        for row, m in zip(new_rows, derived, strict=True)
        if m is not None and (ev := decode.span_as_event(row, m)) is not None
    ]
    if events:
        marks = ", ".join("?" for _ in column_names("events"))
        con.executemany(f"INSERT OR IGNORE INTO events VALUES ({marks})", events)


def _update(con: duckdb.DuckDBPyConnection, table: str, cols: tuple[str, ...], rows) -> None:
    """Set `cols` of `table`'s rows by uid from `rows` (uid first, then `cols`)."""
    if not rows:
        return
    types = dict(TABLES[table])
    spec = ", ".join(f"{c} {types[c]}" for c in ("uid", *cols))
    con.execute(f"CREATE OR REPLACE TEMP TABLE migrate_rows ({spec})")
    marks = ", ".join("?" for _ in range(len(cols) + 1))
    con.executemany(f"INSERT INTO migrate_rows VALUES ({marks})", rows)
    sets = ", ".join(f"{c} = m.{c}" for c in cols)
    con.execute(f"UPDATE {table} SET {sets} FROM migrate_rows m WHERE {table}.uid = m.uid")
    con.execute("DROP TABLE migrate_rows")
