"""Bringing an older claude-top database up to the current schema, in one transaction.

v1 had no rollups; v2 had no `agent`, `kind` / `role`, `request_id`, `source`, `cost_source`
and `project` columns (v3); v3 had no hourly rollups (v4); v4 had no `statusline_samples` and
`limit_alerts` tables (v5). Columns a table lacks are added and filled from what the rows
already hold (the agent from their scope and service, the kind or role from their name, the
request id and project from their attributes), tables it lacks are created; then every rollup
is built again from the rows.
"""

from __future__ import annotations

import duckdb

from claude_top.core.names import CLAUDE_CODE, CLAUDE_PREFIX
from claude_top.core.schema import (
    COST_REPORTED,
    META_TABLE,
    SCHEMA_VERSION,
    SIDE_TABLES,
    SOURCE_OTEL,
    TABLES,
    create_table_sql,
)
from claude_top.core.sources.otlp.agents import CLAUDE_SCOPE, CLAUDE_SPAN_ROLES
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
    for table, columns in TABLES.items():
        have = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                [table],
            ).fetchall()
        }
        added = [(name, sql) for name, sql in columns if name not in have]
        for name, sql in added:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql}")
        fills = [
            f"{name} = {FILLS[table][name]}" for name, _ in added if name in FILLS.get(table, {})
        ]
        if fills:
            con.execute(f"UPDATE {table} SET {', '.join(fills)}")
    for table in SIDE_TABLES:
        con.execute(create_table_sql(table))
    for table in rollup.ALL_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    for sql in rollup.create_sql():
        con.execute(sql)
    rollup.build(con)
    con.execute(
        f"UPDATE {META_TABLE} SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)]
    )
