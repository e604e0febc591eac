"""Claude Code's status-line samples (the official plan limits, context window and prompt cache
it hands its `statusLine` command): validated here (pure functions), stored through
`core.store` with the time each arrived, spooled by the shim while no claude-top runs."""
