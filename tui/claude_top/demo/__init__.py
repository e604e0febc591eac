"""Live synthetic Claude Code telemetry, sent over the real OTLP/gRPC path (`claude-top demo`).

Every request is shaped like Claude Code 2.1.328's own (see the captured fixtures): one resource
per process (`service.name` claude-code), the scopes `com.anthropic.claude_code.tracing` /
`.events` / `com.anthropic.claude_code`, the span tree interaction -> llm_request / tool ->
blocked_on_user / execution, events with Claude Code's string-typed numbers, and DELTA metric
sums exported every 10 s. Several sessions run at once on three models; tools have lognormal
latencies (Bash with a slow tail), some Bash calls fail, some requests are retried after an
overloaded error, a Task tool runs a subagent, and one session is continued by a second process.

Telemetry runs on a virtual clock (`speed` times real time). Each session draws from its own
RNG seeded by `seed`, so what is generated does not depend on how the sender is paced; the
`Ledger` counts only what the receiver acknowledged, so a test can compare the store with it.

- `catalog`: the fixed data: prices, model speeds, tools and Bash commands, session profiles,
  prompts, scopes and metric descriptions.
- `process`: one Claude Code process as OTLP: its resource, event sequence, pending records,
  metric deltas, and the export requests due by a virtual time.
- `turn`, `llm`, `tools`: one interaction's records: its ids and clock, its API calls, its tool
  calls (with their inputs, and the Task tool's subagent).
- `generate`: the scripted sessions: the interaction, turn schedule, continued session, and
  the sessions of one seed.
- `ledger`: what the receiver acknowledged, by session, model, tool, turn and subagent.
- `sender`: `DemoSender`, which paces the virtual clock and sends over gRPC with retries.
- `headless`: `run_demo` (the `claude-top demo` command) and `verify`, the check that the store
  shows what the receiver acknowledged.
"""
