"""The demo's check: what the receiver acknowledged (the sender's `Ledger`) against what the
queries show. `claude-top demo --headless` runs it; so do the tests."""

from __future__ import annotations

from claude_top.core.queries.breakdowns import models, tools
from claude_top.core.queries.filters import Filter
from claude_top.core.queries.sessions import sessions
from claude_top.demo.ledger import Ledger


def verify(ledger: Ledger, cur, *, only_sessions: bool = False) -> list[str]:
    """Differences between what the receiver acknowledged and what `core.queries` shows.

    `only_sessions` checks the sender's sessions alone (for a store that held data before).
    """
    problems: list[str] = []
    shown = {r["session_id"]: r for r in sessions(cur, Filter())}
    missing = set(ledger.sessions) - set(shown)
    if missing:
        problems.append(f"{len(missing)} sessions sent but not stored: {sorted(missing)}")
    if not only_sessions and set(shown) - set(ledger.sessions):
        problems.append(f"{len(set(shown) - set(ledger.sessions))} sessions stored but not sent")
    for sid, s in ledger.sessions.items():
        r = shown.get(sid)
        if r is None:
            continue
        got = (r["prompts"], r["api_requests"], r["tool_calls"], r["tool_errors"])
        want = (s.prompts, s.api_requests, s.tool_calls, s.tool_errors)
        if got != want or abs(r["cost_usd"] - s.cost_usd) > 1e-9:
            problems.append(
                f"session {sid}: stored {got} ${r['cost_usd']}, sent {want} ${s.cost_usd}"
            )
    if only_sessions:
        return problems
    for r in models(cur, Filter()):
        m = ledger.models.get(r["model"])
        if (
            m is None
            or r["api_requests"] != m.api_requests
            or abs(r["cost_usd"] - m.cost_usd) > 1e-9
        ):
            problems.append(f"model {r['model']}: stored {r['api_requests']} ${r['cost_usd']}")
    for r in tools(cur, Filter()):
        t = ledger.tools.get(r["tool_name"])
        if t is None or (r["calls"], r["errors"]) != (t.calls, t.errors):
            problems.append(
                f"tool {r['tool_name']}: stored {r['calls']} calls, {r['errors']} errors"
            )
    return problems
