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


def _errors(row: dict):
    n = row.get("tool_errors") or 0
    return (str(n), "error") if n else "0"


COLUMNS = (
    Col(
        "session",
        "Session",
        lambda r: fmt.short_id(r["session_id"]),
        lambda r: r["session_id"],
        descending=False,
    ),
    Col(
        "agent",
        "Agent",
        lambda r: fmt.short_agent(r.get("agent")),
        lambda r: r.get("agent") or "",
        descending=False,
    ),
    Col(
        "last",
        "Last",
        lambda r: fmt.age(r["last_seen_ns"], r["now_ns"]),
        lambda r: r["last_seen_ns"],
        right=True,
        clock=True,
    ),
    Col(
        "status",
        "Status",
        status_cell,
        lambda r: r.get("status") or "",
        descending=False,
        clock=True,
    ),
    Col("cost", "Cost", cost_cell, lambda r: r["cost_usd"], right=True),
    Col("models", "Model", _models, lambda r: _models(r).lower(), descending=False),
    Col(
        "prompts", "Prompts", lambda r: fmt.count(r["prompts"]), lambda r: r["prompts"], right=True
    ),
    Col(
        "api",
        "API",
        lambda r: fmt.count(r["api_requests"]),
        lambda r: r["api_requests"],
        right=True,
    ),
    Col(
        "in", "In", lambda r: fmt.count(r["input_tokens"]), lambda r: r["input_tokens"], right=True
    ),
    Col(
        "out",
        "Out",
        lambda r: fmt.count(r["output_tokens"]),
        lambda r: r["output_tokens"],
        right=True,
    ),
    Col(
        "cache",
        "Cache",
        lambda r: fmt.percent(r.get("cache_hit_ratio")),
        lambda r: r.get("cache_hit_ratio"),
        right=True,
    ),
    Col(
        "tools",
        "Tools",
        lambda r: fmt.count(r["tool_calls"]),
        lambda r: r["tool_calls"],
        right=True,
    ),
    Col("errors", "Errs", _errors, lambda r: r["tool_errors"], right=True),
    Col(
        "terminal",
        "Term",
        lambda r: r.get("terminal") or "-",
        lambda r: r.get("terminal") or "",
        descending=False,
    ),
    Col(
        "custom",
        "Attributes",
        _custom,
        lambda r: _custom(r) or None,
        descending=False,
        optional=True,
    ),
)


class SessionsTable(KeyedTable):
    """Sessions keyed by session id; Enter opens the session's turns."""

    def __init__(self, **kw) -> None:
        super().__init__(COLUMNS, lambda r: r["session_id"], "last", fixed_columns=1, **kw)

    def timed(self, row: dict, now_ns: int) -> dict:
        """`row` as of `now_ns`: its age and its status, active or idle."""
        return dict(row, now_ns=now_ns, status=session_status(row, now_ns))
