"""The store's tables: one column list per table, shared by the decoder, the writer and the DDL.

Typed columns hold what panes query; `attributes` (and for spans `events` and `links`) keep
everything as JSON so nothing a sender sent is lost. `agent` says which coding agent sent a
record, and what it is in claude-top's terms (`core.names`) whatever the agent named it: an
event's `kind` (`api_request`, `tool_result`, ...), a span's `role` in its turn (`interaction`,
`llm_request`, `tool`, `execution`, ...; `kind` there is OTLP's span kind).
Events also say where they came from (`source`: `otel`, or `transcript` for what Claude Code's
transcript files hold and telemetry does not) and where their cost came from (`cost_source`:
`reported` by the agent, `transcript` from its cost-state lines, `estimate` from the price
table). `not_understood` says why claude-top could not read a record it stored (an agent's
counts missing or not numbers, a sender no rule knows); empty for the rest. Resource
attributes are stored once in
`resources` (keyed by a digest of the resource) and referenced by `resource_id`.

The `transcript_*` tables (v4) keep what Claude Code's transcript files hold, keyed by what it
is (a request by its request id, a prompt by its prompt id, a tool call by its tool_use id),
with how far each file was read; `core.store.reconcile` derives `events` rows
(`source = 'transcript'`) from them for what telemetry lacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_VERSION = 7
APP_ID = "claude-top"
META_TABLE = "claude_top_meta"
"""Key-value facts about the database: app, schema version, creator, the journal position."""
INDEXED_SEQ_KEY = "indexed_seq"
FAILED_DDL = (
    "CREATE TABLE IF NOT EXISTS ingest_failed (seq BIGINT, signal VARCHAR, received_ns BIGINT, "
    "records BIGINT, error VARCHAR, body BLOB)"
)
"""Exports the indexer could not decode, kept with the reason for a fixed claude-top."""
RETENTION_COLUMNS = {"spans": "start_ns", "events": "time_ns", "metric_points": "time_ns"}
"""The time each table's rows are pruned by (`--retention`)."""

_SQL_TO_ARROW = {
    "BLOB": "binary",
    "VARCHAR": "string",
    "JSON": "string",
    "BIGINT": "int64",
    "INTEGER": "int32",
    "DOUBLE": "float64",
    "BOOLEAN": "bool_",
}

SPANS: tuple[tuple[str, str], ...] = (
    ("uid", "BLOB"),
    ("trace_id", "VARCHAR"),
    ("span_id", "VARCHAR"),
    ("parent_span_id", "VARCHAR"),
    ("name", "VARCHAR"),
    ("kind", "INTEGER"),
    ("start_ns", "BIGINT"),
    ("end_ns", "BIGINT"),
    ("duration_ms", "DOUBLE"),
    ("status_code", "INTEGER"),
    ("status_message", "VARCHAR"),
    ("session_id", "VARCHAR"),
    ("span_type", "VARCHAR"),
    ("model", "VARCHAR"),
    ("tool_name", "VARCHAR"),
    ("tool_use_id", "VARCHAR"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cache_read_tokens", "BIGINT"),
    ("cache_creation_tokens", "BIGINT"),
    ("success", "BOOLEAN"),
    ("attempt", "INTEGER"),
    ("agent_id", "VARCHAR"),
    ("parent_agent_id", "VARCHAR"),
    ("attributes", "JSON"),
    ("events", "JSON"),
    ("links", "JSON"),
    ("resource_id", "BLOB"),
    ("scope_name", "VARCHAR"),
    ("service_name", "VARCHAR"),
    ("received_ns", "BIGINT"),
    ("agent", "VARCHAR"),
    ("role", "VARCHAR"),
    ("not_understood", "VARCHAR"),
)

EVENTS: tuple[tuple[str, str], ...] = (
    ("uid", "BLOB"),
    ("name", "VARCHAR"),
    ("session_id", "VARCHAR"),
    ("prompt_id", "VARCHAR"),
    ("time_ns", "BIGINT"),
    ("sequence", "BIGINT"),
    ("trace_id", "VARCHAR"),
    ("span_id", "VARCHAR"),
    ("severity_number", "INTEGER"),
    ("body", "VARCHAR"),
    ("model", "VARCHAR"),
    ("tool_name", "VARCHAR"),
    ("tool_use_id", "VARCHAR"),
    ("cost_usd", "DOUBLE"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cache_read_tokens", "BIGINT"),
    ("cache_creation_tokens", "BIGINT"),
    ("duration_ms", "DOUBLE"),
    ("success", "BOOLEAN"),
    ("decision", "VARCHAR"),
    ("error", "VARCHAR"),
    ("attempt", "INTEGER"),
    ("query_source", "VARCHAR"),
    ("attributes", "JSON"),
    ("resource_id", "BLOB"),
    ("scope_name", "VARCHAR"),
    ("service_name", "VARCHAR"),
    ("received_ns", "BIGINT"),
    ("agent", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("request_id", "VARCHAR"),
    ("source", "VARCHAR"),
    ("cost_source", "VARCHAR"),
    ("project", "VARCHAR"),
    ("not_understood", "VARCHAR"),
)

METRIC_POINTS: tuple[tuple[str, str], ...] = (
    ("uid", "BLOB"),
    ("series", "BLOB"),
    ("name", "VARCHAR"),
    ("metric_type", "VARCHAR"),
    ("temporality", "VARCHAR"),
    ("monotonic", "BOOLEAN"),
    ("unit", "VARCHAR"),
    ("session_id", "VARCHAR"),
    ("model", "VARCHAR"),
    ("type", "VARCHAR"),
    ("start_ns", "BIGINT"),
    ("time_ns", "BIGINT"),
    ("value", "DOUBLE"),
    ("increment", "DOUBLE"),
    ("count", "BIGINT"),
    ("attributes", "JSON"),
    ("data", "JSON"),
    ("resource_id", "BLOB"),
    ("scope_name", "VARCHAR"),
    ("service_name", "VARCHAR"),
    ("received_ns", "BIGINT"),
    ("agent", "VARCHAR"),
)

RESOURCES: tuple[tuple[str, str], ...] = (
    ("uid", "BLOB"),
    ("service_name", "VARCHAR"),
    ("attributes", "JSON"),
    ("received_ns", "BIGINT"),
)

SOURCE_OTEL = "otel"
SOURCE_TRANSCRIPT = "transcript"
COST_REPORTED = "reported"
COST_TRANSCRIPT = "transcript"
COST_ESTIMATE = "estimate"
COST_NONE = "none"
"""A session's or model's cost source when none of its requests has a price."""
COST_MIXED = "mixed"
"""A session's or model's cost source when some of its costs are reported and some estimated."""

TRANSCRIPT_TABLES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "transcript_requests": (
        (
            ("session_id", "VARCHAR"),
            ("request_key", "VARCHAR"),
            ("request_id", "VARCHAR"),
            ("message_id", "VARCHAR"),
            ("agent_id", "VARCHAR"),
            ("is_sidechain", "BOOLEAN"),
            ("time_ns", "BIGINT"),
            ("model", "VARCHAR"),
            ("input_tokens", "BIGINT"),
            ("output_tokens", "BIGINT"),
            ("cache_read_tokens", "BIGINT"),
            ("cache_creation_tokens", "BIGINT"),
            ("prompt_id", "VARCHAR"),
            ("cwd", "VARCHAR"),
            ("version", "VARCHAR"),
            ("file", "VARCHAR"),
            ("line", "BIGINT"),
        ),
        ("session_id", "request_key"),
    ),
    "transcript_prompts": (
        (
            ("session_id", "VARCHAR"),
            ("prompt_id", "VARCHAR"),
            ("time_ns", "BIGINT"),
            ("text", "VARCHAR"),
            ("cwd", "VARCHAR"),
            ("file", "VARCHAR"),
            ("line", "BIGINT"),
        ),
        ("session_id", "prompt_id"),
    ),
    "transcript_tools": (
        (
            ("session_id", "VARCHAR"),
            ("tool_use_id", "VARCHAR"),
            ("name", "VARCHAR"),
            ("input", "VARCHAR"),
            ("use_ns", "BIGINT"),
            ("result_ns", "BIGINT"),
            ("is_error", "BOOLEAN"),
            ("prompt_id", "VARCHAR"),
            ("agent_id", "VARCHAR"),
            ("request_key", "VARCHAR"),
            ("decision", "VARCHAR"),
            ("decision_source", "VARCHAR"),
        ),
        ("session_id", "tool_use_id"),
    ),
    "transcript_costs": (
        (
            ("session_id", "VARCHAR"),
            ("file", "VARCHAR"),
            ("line", "BIGINT"),
            ("model", "VARCHAR"),
            ("cost_usd", "DOUBLE"),
            ("time_ns", "BIGINT"),
        ),
        ("session_id", "file", "line", "model"),
    ),
    "transcript_sessions": (
        (
            ("session_id", "VARCHAR"),
            ("first_ns", "BIGINT"),
            ("last_ns", "BIGINT"),
            ("cwd", "VARCHAR"),
            ("version", "VARCHAR"),
        ),
        ("session_id",),
    ),
    "transcript_files": (
        (
            ("path", "VARCHAR"),
            ("size", "BIGINT"),
            ("mtime_ns", "BIGINT"),
            ("inode", "BIGINT"),
            ("offset_bytes", "BIGINT"),
            ("lines", "BIGINT"),
            ("last_time_ns", "BIGINT"),
            ("prompt_id", "VARCHAR"),
            ("session_id", "VARCHAR"),
            ("skipped", "BIGINT"),
            ("kind", "VARCHAR"),
            ("read_ns", "BIGINT"),
        ),
        ("path",),
    ),
}
"""What transcript files hold (columns, primary key): requests (one per request id, however
many lines its content blocks took), prompts, tool calls (use and result), cost-state totals
per model, the sessions they belong to, and how far each file was read."""
TRANSCRIPT_TIME_COLUMNS = {
    "transcript_requests": "time_ns",
    "transcript_prompts": "time_ns",
    "transcript_tools": "coalesce(result_ns, use_ns)",
    "transcript_costs": "time_ns",
}
"""The time each transcript table's rows are pruned by (`--retention`)."""


def transcript_table_sql(table: str) -> str:
    """CREATE TABLE statement of a transcript table."""
    cols, key = TRANSCRIPT_TABLES[table]
    body = ", ".join(f"{name} {sql}" for name, sql in cols)
    return f"CREATE TABLE IF NOT EXISTS {table} ({body}, PRIMARY KEY ({', '.join(key)}))"


def transcript_columns(table: str) -> tuple[str, ...]:
    return tuple(name for name, _ in TRANSCRIPT_TABLES[table][0])


TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "spans": SPANS,
    "events": EVENTS,
    "metric_points": METRIC_POINTS,
    "resources": RESOURCES,
}

STATUSLINE_SAMPLES: tuple[tuple[str, str], ...] = (
    ("uid", "BLOB"),
    ("received_ns", "BIGINT"),
    ("session_id", "VARCHAR"),
    ("prompt_id", "VARCHAR"),
    ("version", "VARCHAR"),
    ("model", "VARCHAR"),
    ("model_name", "VARCHAR"),
    ("cwd", "VARCHAR"),
    ("project_dir", "VARCHAR"),
    ("transcript_path", "VARCHAR"),
    ("five_hour_pct", "DOUBLE"),
    ("five_hour_resets_at", "BIGINT"),
    ("seven_day_pct", "DOUBLE"),
    ("seven_day_resets_at", "BIGINT"),
    ("spend_pct", "DOUBLE"),
    ("spend_resets_at", "BIGINT"),
    ("spend_used_usd", "DOUBLE"),
    ("spend_limit_usd", "DOUBLE"),
    ("spend_period", "VARCHAR"),
    ("context_used_pct", "DOUBLE"),
    ("context_window_size", "BIGINT"),
    ("context_tokens", "BIGINT"),
    ("total_input_tokens", "BIGINT"),
    ("total_output_tokens", "BIGINT"),
    ("cache_warm", "BOOLEAN"),
    ("cache_ttl", "VARCHAR"),
    ("cache_expires_at", "BIGINT"),
    ("cache_hit_ratio", "DOUBLE"),
    ("cost_usd", "DOUBLE"),
    ("duration_ms", "DOUBLE"),
    ("api_duration_ms", "DOUBLE"),
    ("lines_added", "BIGINT"),
    ("lines_removed", "BIGINT"),
    ("via", "VARCHAR"),
    ("problems", "VARCHAR"),
    ("raw", "VARCHAR"),
)
"""Claude Code's status-line samples (`core.sources.statusline`), each with the time it
arrived (`received_ns`): the official plan limits (`*_pct` 0-100, `*_resets_at` epoch seconds),
the session's context window and prompt cache, its cost so far, and the raw JSON. `via`: `live`
or `spool` (waited in the shim's spool file while no claude-top ran); `problems`: the fields
that were dropped as invalid."""
LIMIT_ALERTS: tuple[tuple[str, str], ...] = (
    ("uid", "VARCHAR"),
    ("fired_ns", "BIGINT"),
    ("alert", "JSON"),
)
"""Limit and budget alerts already given (`uid`: window, its end and the threshold), so each
crossing alerts once, across restarts too."""
SIDE_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "statusline_samples": STATUSLINE_SAMPLES,
    "limit_alerts": LIMIT_ALERTS,
}
"""Tables written outside the OTLP journal, each in its own short transaction."""
SIDE_RETENTION_COLUMNS = {"statusline_samples": "received_ns"}


def column_names(table: str) -> tuple[str, ...]:
    """The column names of a table, in order."""
    return tuple(name for name, _ in TABLES[table])


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema matching a table, for the decode workers' Parquet files (imports
    pyarrow, which only the workers load)."""
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, _SQL_TO_ARROW[sql])()) for name, sql in TABLES[table]])


def create_table_sql(table: str) -> str:
    """CREATE TABLE statement; `uid` is the idempotency key (a redelivered export counts once)."""
    columns = TABLES[table] if table in TABLES else SIDE_TABLES[table]
    cols = ",\n  ".join(
        f"{name} {sql}{' PRIMARY KEY' if name == 'uid' else ''}" for name, sql in columns
    )
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  {cols}\n)"
