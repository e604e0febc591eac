"""Pane 1: one row per session, most recent activity first."""

from __future__ import annotations

from claude_top.core import format as fmt
from claude_top.core.queries import session_status
from claude_top.ui.panes.table import Col, KeyedTable


def _models(row: dict) -> str:
    models = [m for m in (row.get("models") or "").split(", ") if m]
    return ", ".join(fmt.short_model(m) for m in models) or "-"


def _custom(row: dict) -> str:
    custom = row.get("custom") or {}
    return " ".join(f"{k}={v}" for k, v in sorted(custom.items()))


def has_work(row: dict) -> bool:
    """Whether a session has a prompt or an API request yet (else only start-up telemetry)."""
    return bool(row.get("prompts") or row.get("api_requests"))


def status_cell(row: dict) -> tuple[str, str]:
    """The status as shown: active, starting (live, nothing asked yet) or idle."""
    if row.get("status") != "active":
        return ("○ idle", "muted")
    if not has_work(row):
        return ("◌ starting", "muted")  # live, but nothing asked or spent yet
    return ("● active", "success")


def cost_cell(row: dict) -> str:
    """The cost (`~` estimated, `?` no price), or "-" while the session has made no API
    request."""
    return fmt.cost_of(row["cost_usd"], row.get("cost_source")) if row.get("api_requests") else "-"


def source_cell(row: dict):
    """Where the session is known from, when not from telemetry alone: its transcript only
    (no telemetry: no spans, no tool latency), or both."""
    source = row.get("source")
    if source == "transcript":
        return ("transcript", "warning")
    if source == "both":
        return "otel+transcript"
    return ""


def _errors(row: dict):
    n = row.get("tool_errors") or 0
    return (str(n), "error") if n else "0"


def _count(key: str, field: str, label: str, priority: int, help: str) -> Col:
    return Col(
        key,
        label,
        lambda r: fmt.count(r.get(field)),
        lambda r: r.get(field),
        right=True,
        priority=priority,
        help=help,
    )


COLUMNS = (
    Col(
        "session",
        "Session",
        lambda r: r["session_id"] if r.get("group_key") else fmt.short_id(r["session_id"]),
        lambda r: r["session_id"],
        descending=False,
        help="the session id's first 8 characters (export --session takes them)",
    ),
    Col(
        "agent",
        "Agent",
        lambda r: fmt.short_agent(r.get("agent")),
        lambda r: r.get("agent") or "",
        descending=False,
        priority=42,
        help="who ran it: claude (Claude Code), gemini (Gemini CLI), codex (Codex CLI); f filters",
    ),
    Col(
        "last",
        "Last",
        lambda r: fmt.age(r["last_seen_ns"], r["now_ns"]),
        lambda r: r["last_seen_ns"],
        right=True,
        clock=True,
        priority=90,
        help="how long ago its latest telemetry was made",
    ),
    Col(
        "status",
        "Status",
        status_cell,
        lambda r: r.get("status") or "",
        descending=False,
        clock=True,
        priority=85,
        help="active: telemetry in the last minute; starting: live, nothing asked yet",
    ),
    Col(
        "cost",
        "Cost",
        cost_cell,
        lambda r: r["cost_usd"],
        right=True,
        priority=95,
        help="US dollars from its API requests: as the agent reported it, ~ estimated, ? no price",
    ),
    Col(
        "models",
        "Model",
        _models,
        lambda r: _models(r).lower(),
        descending=False,
        priority=44,
        min_width=10,
        help="the models it asked",
    ),
    _count("prompts", "prompts", "Prompts", 50, "prompts typed (turns)"),
    _count("api", "api_requests", "API", 55, "API requests to the model"),
    _count("in", "input_tokens", "In", 30, "input tokens, not counting cached ones"),
    _count("out", "output_tokens", "Out", 32, "output tokens"),
    Col(
        "cache",
        "Cache",
        lambda r: fmt.percent(r.get("cache_hit_ratio")),
        lambda r: r.get("cache_hit_ratio"),
        right=True,
        priority=40,
        help="cache hit ratio: cache reads / (input + cache reads + cache writes)",
    ),
    _count("tools", "tool_calls", "Tools", 45, "tool calls"),
    Col(
        "errors",
        "Errs",
        _errors,
        lambda r: r["tool_errors"],
        right=True,
        priority=48,
        help="tool calls that failed",
    ),
    Col(
        "source",
        "From",
        source_cell,
        lambda r: r.get("source") or "",
        descending=False,
        optional=True,
        help="transcript: known from Claude Code's transcript files only (switch telemetry on for "
        "spans and tool latency); otel+transcript: both; blank: telemetry only",
    ),
    Col(
        "terminal",
        "Term",
        lambda r: r.get("terminal") or "-",
        lambda r: r.get("terminal") or "",
        descending=False,
        priority=20,
        min_width=6,
        help="where it runs (terminal.type)",
    ),
    Col(
        "started",
        "Started",
        lambda r: fmt.age(r.get("first_seen_ns"), r["now_ns"]),
        lambda r: r.get("first_seen_ns"),
        right=True,
        clock=True,
        priority=12,
        help="how long ago its first telemetry was made",
    ),
    _count("cache_read", "cache_read_tokens", "C.read", 10, "tokens read from the prompt cache"),
    _count(
        "cache_write", "cache_creation_tokens", "C.write", 9, "tokens written to the prompt cache"
    ),
    Col(
        "custom",
        "Attributes",
        _custom,
        lambda r: _custom(r) or None,
        descending=False,
        optional=True,
        priority=35,
        min_width=12,
        help="custom resource attributes (OTEL_RESOURCE_ATTRIBUTES)",
    ),
)


class SessionsTable(KeyedTable):
    """Sessions keyed by session id; Enter opens the session's turns."""

    def __init__(self, **kw) -> None:
        super().__init__(COLUMNS, lambda r: r["session_id"], "last", fixed_columns=1, **kw)

    def timed(self, row: dict, now_ns: int) -> dict:
        """`row` as of `now_ns`: its age and its status, active or idle."""
        return dict(row, now_ns=now_ns, status=session_status(row, now_ns))
