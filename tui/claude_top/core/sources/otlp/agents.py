"""Which coding agent sent a record, and what kind of record it is in claude-top's terms.

The agent is told from the resource and the instrumentation scope, never from the endpoint it
arrived on: Claude Code's scopes are `com.anthropic.claude_code[.events|.tracing]`, so a sender
that only calls itself `claude-code` in `service.name` is not taken for it.
"""

from __future__ import annotations

from claude_top.core.names import CLAUDE_CODE, CLAUDE_PREFIX

CLAUDE_SCOPE = "com.anthropic.claude_code"
CLAUDE_SPAN_ROLES = {
    "claude_code.interaction": "interaction",
    "claude_code.llm_request": "llm_request",
    "claude_code.tool": "tool",
    "claude_code.tool.blocked_on_user": "blocked_on_user",
    "claude_code.tool.execution": "execution",
    "claude_code.hook": "hook",
}


def agent_of(service: str | None, scope: str | None) -> str | None:
    """The agent a record came from: `claude-code`, or the sender's service name."""
    if scope and (scope == CLAUDE_SCOPE or scope.startswith(CLAUDE_SCOPE + ".")):
        return CLAUDE_CODE
    if service == CLAUDE_CODE:
        return "unknown"  # says it is Claude Code, without Claude Code's scopes
    return service


def event_kind(agent: str | None, name: str) -> str | None:
    """An event's kind (`api_request`, `tool_result`, ...) from its agent and name."""
    if agent == CLAUDE_CODE and name.startswith(CLAUDE_PREFIX):
        return name[len(CLAUDE_PREFIX) :]
    return None


def span_role(agent: str | None, name: str) -> str | None:
    """A span's role in its turn (`interaction`, `llm_request`, `tool`, `execution`, ...)."""
    if agent == CLAUDE_CODE:
        return CLAUDE_SPAN_ROLES.get(name)
    return None
