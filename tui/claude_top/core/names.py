"""What claude-top calls each kind of record, whatever agent sent it (the `kind` columns the
rollups and queries key on), and the names Claude Code gives them."""

API_REQUEST = "api_request"
"""A completed model request: tokens, and cost where the agent reports one."""
API_ERROR = "api_error"
TOOL_RESULT = "tool_result"
TOOL_DECISION = "tool_decision"
USER_PROMPT = "user_prompt"

INTERACTION = "interaction"
"""Span kinds: one user turn, a model request in it, a tool call and the tool's execution."""
LLM_REQUEST = "llm_request"
TOOL_SPAN = "tool"
TOOL_EXECUTION = "execution"
BLOCKED_ON_USER = "blocked_on_user"

CLAUDE_CODE = "claude-code"
GEMINI_CLI = "gemini-cli"
CODEX = "codex"
UNKNOWN_AGENT = "unknown"
"""A sender that calls itself one of the agents above without that agent's scopes."""
CLAUDE_PREFIX = "claude_code."
COST_METRIC = "claude_code.cost.usage"
STATUS_ERROR = 2
