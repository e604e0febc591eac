"""The read side every pane and the CSV export share: sessions, models, tools, turns, span
trees, over one place to read from (`queries.reader`).

Cost and token figures come from `api_request` events (exact, per request); the
`claude_code.cost.usage` metric is summed only for reconciliation. The session, model and tool
tables are built by `*_query()` functions returning SQL and named parameters, so the UI's rows
and the exported CSVs come from one definition.
"""

from claude_top.core.queries.breakdowns import (
    earliest_ns,
    model_requests,
    models,
    models_query,
    overview,
    session_ids_starting,
    tool_calls,
    tool_durations,
    tools,
    tools_query,
)
from claude_top.core.queries.filters import (
    ACTIVE_WITHIN_S,
    WINDOWS,
    Filter,
    Query,
    filter_where,
    parse_window,
    session_status,
)
from claude_top.core.queries.sessions import custom_attributes, sessions, sessions_query
from claude_top.core.queries.spantree import TreeNode, span_tree
from claude_top.core.queries.turns import turns

__all__ = [
    "ACTIVE_WITHIN_S",
    "WINDOWS",
    "Filter",
    "Query",
    "TreeNode",
    "custom_attributes",
    "earliest_ns",
    "filter_where",
    "model_requests",
    "models",
    "models_query",
    "overview",
    "parse_window",
    "session_ids_starting",
    "session_status",
    "sessions",
    "sessions_query",
    "span_tree",
    "tool_calls",
    "tool_durations",
    "tools",
    "tools_query",
    "turns",
]
