"""The Claude Code telemetry names the store's rollups and the queries key on."""

API_REQUEST = "claude_code.api_request"
API_ERROR = "claude_code.api_error"
TOOL_RESULT = "claude_code.tool_result"
TOOL_DECISION = "claude_code.tool_decision"
USER_PROMPT = "claude_code.user_prompt"
INTERACTION = "claude_code.interaction"
LLM_REQUEST = "claude_code.llm_request"
TOOL_SPAN = "claude_code.tool"
TOOL_EXECUTION = "claude_code.tool.execution"
COST_METRIC = "claude_code.cost.usage"
STATUS_ERROR = 2
