"""Which coding agent sent a record, and what kind of record it is in claude-top's terms.

The agent is told from the resource and the instrumentation scope, never from the endpoint it
arrived on:

- Claude Code: scopes `com.anthropic.claude_code[.events|.tracing]`;
- Gemini CLI: scope `gemini-cli`;
- Codex CLI: scopes `codex_otel.*` (events), `codex` (metrics) and its service name (spans:
  `codex_exec`, `codex_cli_rs`, ...);
- a sender that calls itself one of those in `service.name` without its scopes is `unknown`;
- anything else is named by its `service.name` and read by the OpenTelemetry GenAI conventions
  (`invoke_agent` / `chat` / `execute_tool` spans) where it follows them.

Each agent's events and spans are mapped onto the same typed columns, in claude-top's meaning
(Claude Code's): `input_tokens` is input without cache reads, `cache_read_tokens` the cached
input, `cache_creation_tokens` cache writes where the agent reports them, `output_tokens`
everything billed as output. Claude Code's records are read by `decode` itself (the hot path);
the functions here read the others', and `decode` and the v3 -> v4 migration share them.

A record claude-top cannot read is still stored as received, with the reason in its
`not_understood` column: an agent's request or tool event whose counts are missing or not
numbers (a renamed field in a newer version), or a record from an agent no rule here knows.
"""

from __future__ import annotations

from typing import Any

from claude_top.core import pricing
from claude_top.core.names import (
    API_ERROR,
    API_REQUEST,
    CLAUDE_CODE,
    CLAUDE_PREFIX,
    CODEX,
    GEMINI_CLI,
    INTERACTION,
    LLM_REQUEST,
    TOOL_DECISION,
    TOOL_EXECUTION,
    TOOL_RESULT,
    TOOL_SPAN,
    UNKNOWN_AGENT,
    USER_PROMPT,
)
from claude_top.core.schema import COST_ESTIMATE
from claude_top.core.sources.otlp.values import count, to_bool, to_float, to_int, to_str

CLAUDE_SCOPE = "com.anthropic.claude_code"
CLAUDE_SPAN_ROLES = {
    "claude_code.interaction": "interaction",
    "claude_code.llm_request": "llm_request",
    "claude_code.tool": "tool",
    "claude_code.tool.blocked_on_user": "blocked_on_user",
    "claude_code.tool.execution": "execution",
    "claude_code.hook": "hook",
}
GEMINI_SCOPE = "gemini-cli"
CODEX_SCOPE_PREFIX = "codex_otel"
CODEX_METRICS_SCOPE = "codex"
KNOWN_AGENTS = (CLAUDE_CODE, GEMINI_CLI, CODEX)
NO_INTERACTION_SPAN = frozenset({GEMINI_CLI})
"""Agents whose turns have no root span: their span tree is rooted at the turn's prompt."""

EVENT_COLUMNS = (
    "kind",
    "session_id",
    "prompt_id",
    "model",
    "tool_name",
    "tool_use_id",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "duration_ms",
    "success",
    "decision",
    "error",
    "attempt",
    "request_id",
    "cost_source",
    "not_understood",
)
"""The typed event columns `map_event` fills for an agent other than Claude Code."""
SPAN_COLUMNS = (
    "role",
    "session_id",
    "model",
    "tool_name",
    "tool_use_id",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "success",
    "attempt",
    "not_understood",
)
"""The typed span columns `map_span` fills for an agent other than Claude Code."""


def _codex_service(service: str | None) -> bool:
    return service == CODEX or (service or "").startswith("codex_")


def agent_of(service: str | None, scope: str | None) -> str | None:
    """The agent a record came from: `claude-code`, `gemini-cli`, `codex`, `unknown` (a sender
    naming itself one of those without its scopes), else the sender's service name."""
    if scope:
        if scope == CLAUDE_SCOPE or scope.startswith(CLAUDE_SCOPE + "."):
            return CLAUDE_CODE
        if scope == GEMINI_SCOPE:
            return GEMINI_CLI
        if (
            scope.startswith(CODEX_SCOPE_PREFIX)
            or scope == CODEX_METRICS_SCOPE
            or (scope == service and _codex_service(service))
        ):
            return CODEX
    if service in (CLAUDE_CODE, GEMINI_CLI) or _codex_service(service):
        return UNKNOWN_AGENT
    return service


def event_kind(agent: str | None, name: str) -> str | None:
    """A Claude Code event's kind (`api_request`, `tool_result`, ...) from its name."""
    if agent == CLAUDE_CODE and name.startswith(CLAUDE_PREFIX):
        return name[len(CLAUDE_PREFIX) :]
    return None


def span_role(agent: str | None, name: str) -> str | None:
    """A Claude Code span's role in its turn (`interaction`, `llm_request`, `tool`, ...)."""
    if agent == CLAUDE_CODE:
        return CLAUDE_SPAN_ROLES.get(name)
    return None


# --- sessions ------------------------------------------------------------------------------


def session_of(agent: str | None, a: dict[str, Any], resource: dict[str, Any]) -> str | None:
    """The session a record of another agent belongs to: `session.id` (Gemini CLI, on the
    record or its resource), Codex's `conversation.id` (or a span's `thread_id`), the GenAI
    conventions' `gen_ai.conversation.id`."""
    for value in (
        a.get("session.id"),
        resource.get("session.id"),
        a.get("conversation.id"),
        a.get("thread_id") if agent == CODEX else None,
        a.get("gen_ai.conversation.id"),
    ):
        if value is not None and value != "":
            return to_str(value)
    return None


# --- prices --------------------------------------------------------------------------------

_prices: pricing.PriceTable | None = None


def prices() -> pricing.PriceTable:
    """The price table estimates come from (loaded once a process; a user's table that cannot
    be read is left out rather than stopping the decoder)."""
    global _prices
    if _prices is None:
        try:
            _prices = pricing.load()
        except (pricing.PriceFileError, OSError):
            _prices = pricing.parse(pricing.SHIPPED.read_text(), str(pricing.SHIPPED))
    return _prices


def _estimate(out: dict[str, Any]) -> None:
    """Price a request at list prices, marked as an estimate (left empty for a model the table
    lacks, or when its input or output count could not be read)."""
    if out.get("input_tokens") is None or out.get("output_tokens") is None:
        return
    cost = prices().estimate(
        out.get("model"),
        out.get("input_tokens"),
        out.get("output_tokens"),
        out.get("cache_read_tokens"),
        out.get("cache_creation_tokens"),
    )
    if cost is not None:
        out["cost_usd"] = cost
        out["cost_source"] = COST_ESTIMATE


# --- counts --------------------------------------------------------------------------------


class _Counts:
    """Reads an event's counts, noting each one that is missing or not a count."""

    __slots__ = ("a", "problems")

    def __init__(self, a: dict[str, Any]) -> None:
        self.a = a
        self.problems: list[str] = []

    def get(self, key: str, required: bool = True, default: int | None = 0) -> int | None:
        raw = self.a.get(key)
        if raw is None:
            if required:
                self.problems.append(f"no {key}")
                return None
            return default
        n = count(raw)
        if n is None:
            self.problems.append(f"{key}={raw!r} is not a count")
        return n

    def duration(self, key: str = "duration_ms") -> float | None:
        raw = self.a.get(key)
        ms = to_float(raw)
        if raw is not None and ms is None:
            self.problems.append(f"{key}={raw!r} is not a number")
        return ms

    def less(self, total: int | None, part: int | None, what: str) -> int | None:
        """`total - part`, or None (noted) when either is unreadable or the part is larger."""
        if total is None or part is None:
            return None
        if part > total:
            self.problems.append(f"{what} exceeds the total it is part of")
            return None
        return total - part

    def reason(self) -> str | None:
        return "; ".join(self.problems) or None


def _plus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


# --- events --------------------------------------------------------------------------------


def _gemini_event(name: str, a: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"prompt_id": to_str(a.get("prompt_id")), "model": to_str(a.get("model"))}
    if name == "gemini_cli.user_prompt":
        out["kind"] = USER_PROMPT
    elif name == "gemini_cli.api_response":
        # input_token_count counts the cached content too; thoughts are billed as output
        c = _Counts(a)
        total_in = c.get("input_token_count")
        cached = c.get("cached_content_token_count", required=False)
        out_tokens = c.get("output_token_count")
        thoughts = c.get("thoughts_token_count", required=False)
        out.update(
            kind=API_REQUEST,
            input_tokens=c.less(total_in, cached, "cached_content_token_count"),
            cache_read_tokens=cached,
            output_tokens=_plus(out_tokens, thoughts),
            duration_ms=c.duration(),
            not_understood=c.reason(),
        )
        _estimate(out)
    elif name == "gemini_cli.api_error":
        out.update(
            kind=API_ERROR,
            duration_ms=to_float(a.get("duration_ms")),
            error=to_str(a.get("error") or a.get("error.message")),
        )
    elif name == "gemini_cli.tool_call":
        c = _Counts(a)
        success = to_bool(a.get("success"))
        if success is None:
            c.problems.append(f"success={a.get('success')!r} is not a boolean")
        tool = to_str(a.get("function_name"))
        if not tool:
            c.problems.append("no function_name")
        out.update(
            kind=TOOL_RESULT,
            model=None,
            tool_name=tool,
            tool_use_id=to_str(a.get("call_id")),
            duration_ms=c.duration(),
            success=success,
            decision=to_str(a.get("decision")),
            error=to_str(a.get("error")),
            not_understood=c.reason(),
        )
    return out


def _codex_tool(a: dict[str, Any]) -> dict[str, Any]:
    return {"tool_name": to_str(a.get("tool_name")), "tool_use_id": to_str(a.get("call_id"))}


def _codex_event(name: str, a: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"model": to_str(a.get("model"))}
    error = to_str(a.get("error.message"))
    if name == "codex.user_prompt":
        out["kind"] = USER_PROMPT
    elif name == "codex.sse_event":
        # Every SSE event is logged with its kind and duration; a completed response is
        # logged once more with its token counts (`sse_event_completed`): that one is the
        # request. The count-less copy of `response.completed` is the stream event itself.
        completed = a.get("event.kind") == "response.completed"
        if error is not None:
            out.update(kind=API_ERROR, error=error)
        elif completed and ("input_token_count" in a or "output_token_count" in a):
            # input_token_count counts the cached input too; output includes reasoning
            c = _Counts(a)
            total_in = c.get("input_token_count")
            cached = c.get("cached_token_count", required=False)
            out.update(
                kind=API_REQUEST,
                input_tokens=c.less(total_in, cached, "cached_token_count"),
                cache_read_tokens=cached,
                cache_creation_tokens=c.get("cache_write_token_count", False, None),
                output_tokens=c.get("output_token_count"),
                not_understood=c.reason(),
            )
            _estimate(out)
        elif completed and any("token" in k for k in a):
            out.update(
                kind=API_REQUEST,
                not_understood="a completed response without the "
                "token counts claude-top reads (input_token_count, output_token_count)",
            )
    elif name == "codex.api_request":
        status = to_int(a.get("http.response.status_code"))
        if error is not None or (status is not None and status >= 400):
            out.update(kind=API_ERROR, error=error or f"HTTP {status}")
        out.update(duration_ms=to_float(a.get("duration_ms")), attempt=to_int(a.get("attempt")))
    elif name == "codex.tool_decision":
        out.update(kind=TOOL_DECISION, decision=to_str(a.get("decision")), **_codex_tool(a))
    elif name == "codex.tool_result":
        c = _Counts(a)
        success = to_bool(a.get("success"))
        if success is None:
            c.problems.append(f"success={a.get('success')!r} is not a boolean")
        out.update(
            kind=TOOL_RESULT,
            duration_ms=c.duration(),
            success=success,
            not_understood=c.reason(),
            **_codex_tool(a),
        )
    return out


def map_event(agent: str | None, name: str, a: dict[str, Any]) -> dict[str, Any]:
    """The typed columns (`EVENT_COLUMNS`, absent = empty) of an event from an agent other than
    Claude Code; `session_id` is left to `session_of`."""
    if agent == GEMINI_CLI:
        return _gemini_event(name, a)
    if agent == CODEX:
        return _codex_event(name, a)
    if name.startswith("gen_ai."):
        return {}  # the GenAI conventions' events repeat what their spans say
    if agent == UNKNOWN_AGENT:
        return {"not_understood": "calls itself a known agent without that agent's scopes"}
    return {"not_understood": f"no rule reads events of {agent or 'a sender without a name'}"}


TURN_KINDS = frozenset({USER_PROMPT, API_REQUEST, API_ERROR, TOOL_RESULT, TOOL_DECISION})
"""Codex's turn grouping (its trace) is given to these kinds only."""


# --- spans ---------------------------------------------------------------------------------

_GENAI_ROLES = {
    "invoke_agent": INTERACTION,
    "chat": LLM_REQUEST,
    "text_completion": LLM_REQUEST,
    "generate_content": LLM_REQUEST,
    "execute_tool": TOOL_SPAN,
}


def _genai_span(name: str, a: dict[str, Any]) -> dict[str, Any]:
    op = a.get("gen_ai.operation.name") or name.partition(" ")[0]
    role = _GENAI_ROLES.get(op) if isinstance(op, str) else None
    if role is None:
        return {}
    out: dict[str, Any] = {
        "role": role,
        "model": to_str(a.get("gen_ai.response.model") or a.get("gen_ai.request.model")),
        "tool_name": to_str(a.get("gen_ai.tool.name")),
        "tool_use_id": to_str(a.get("gen_ai.tool.call.id")),
    }
    if role == LLM_REQUEST:
        # the conventions' input_tokens include cached input (read and written)
        c = _Counts(a)
        total_in = c.get("gen_ai.usage.input_tokens")
        read = c.get("gen_ai.usage.cache_read.input_tokens", required=False)
        write = c.get("gen_ai.usage.cache_creation.input_tokens", required=False)
        out.update(
            input_tokens=c.less(total_in, _plus(read, write), "cached input"),
            cache_read_tokens=read,
            cache_creation_tokens=write,
            output_tokens=c.get("gen_ai.usage.output_tokens"),
            not_understood=c.reason(),
        )
    return out


def map_span(agent: str | None, name: str, a: dict[str, Any]) -> dict[str, Any]:
    """The typed columns (`SPAN_COLUMNS`, absent = empty) of a span from an agent other than
    Claude Code; `session_id` is left to `session_of`.

    Spans without a role are the agent's internals: the span tree folds them away.
    """
    if agent == GEMINI_CLI:
        if name == "llm_call":
            # its gen_ai.usage counts hold no cache or thought tokens: the api_response
            # event has the exact ones, and the tree shows those
            return {"role": LLM_REQUEST, "model": to_str(a.get("gen_ai.request.model"))}
        if name == "tool_call":
            return {
                "role": TOOL_SPAN,
                "tool_name": to_str(a.get("gen_ai.tool.name")),
                "tool_use_id": to_str(a.get("gen_ai.tool.call_id")),
            }
        return {}
    if agent == CODEX:
        if name == "session_task.turn":
            return {"role": INTERACTION, "model": to_str(a.get("model"))}
        if name == "try_run_sampling_request":
            return {"role": LLM_REQUEST, "model": to_str(a.get("model"))}
        if a.get("codex.tool.phase") == "dispatch" and "tool_name" in a:
            return {"role": TOOL_SPAN, **_codex_tool(a)}
        if name == "dispatch_tool_call_with_state":
            return {"role": TOOL_EXECUTION}
        return {}
    out = _genai_span(name, a)
    if out or agent in KNOWN_AGENTS:
        return out
    if agent == UNKNOWN_AGENT:
        return {"not_understood": "calls itself a known agent without that agent's scopes"}
    return {"not_understood": f"no rule reads spans of {agent or 'a sender without a name'}"}


def span_event(role: str | None, span: dict[str, Any]) -> dict[str, Any] | None:
    """For a GenAI agent (spans only): the event a model request or tool span stands for, so
    the panes count it as they count Claude Code's `api_request` and `tool_result` events;
    `span` holds its typed columns plus `ok` (status not ERROR) and `duration_ms`."""
    if role == LLM_REQUEST:
        out = {
            k: span.get(k)
            for k in (
                "model",
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_creation_tokens",
            )
        }
        out.update(
            kind=API_REQUEST if span["ok"] else API_ERROR,
            duration_ms=span["duration_ms"],
            not_understood=span.get("not_understood"),
        )
        if span["ok"]:
            _estimate(out)
        return out
    if role == TOOL_SPAN:
        return {
            "kind": TOOL_RESULT,
            "tool_name": span.get("tool_name"),
            "tool_use_id": span.get("tool_use_id"),
            "duration_ms": span["duration_ms"],
            "success": span["ok"],
        }
    return None
