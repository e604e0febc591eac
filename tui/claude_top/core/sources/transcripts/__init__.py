"""Claude Code's transcript files (`~/.claude/projects/**/*.jsonl`, subagents in
`<session>/subagents/agent-*.jsonl`): where they are (`files.py`) and what their lines hold
(`parse.py`: requests, prompts, tool calls, cost-state totals), read from where the last read
stopped. The facts are written, and reconciled with telemetry, by `core.store`."""
