"""claude-top: a live terminal monitor for Claude Code's OpenTelemetry."""

__version__ = "0.1.0"
