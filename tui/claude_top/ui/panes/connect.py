"""Shown instead of empty tables until the first export arrives: how to connect Claude Code
(and where Gemini CLI's and Codex CLI's settings come from)."""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from claude_top.core.connect import shell_exports


def settings_json(env: dict[str, str]) -> str:
    """The `env` block for ~/.claude/settings.json."""
    return json.dumps({"env": env}, indent=2)


class ConnectPane(VerticalScroll):
    """The env block that points Claude Code at this claude-top (`c` copies it)."""

    can_focus = True

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.env: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static("Waiting for telemetry", id="connect-title")
        yield Static(
            "Nothing has arrived yet. Start Claude Code with these variables set "
            "(press c to copy them):",
            id="connect-lead",
        )
        yield Static("", id="connect-shell", classes="code", markup=False)
        yield Static("or put this in ~/.claude/settings.json:", classes="connect-note")
        yield Static("", id="connect-json", classes="code", markup=False)
        yield Static(
            "Optional: OTEL_LOG_USER_PROMPTS=1 shows prompt text, OTEL_LOG_TOOL_DETAILS=1 "
            "shows commands and file paths. OTEL_RESOURCE_ATTRIBUTES=workflow_id=x,stage=y "
            "adds columns.",
            classes="connect-note",
        )
        yield Static(
            "Gemini CLI or Codex CLI: `claude-top setup --agent gemini` (or codex) prints their "
            "settings, and with --write puts them in ~/.gemini/settings.json or "
            "~/.codex/config.toml.",
            classes="connect-note",
        )

    def show_env(self, env: dict[str, str]) -> None:
        if env == self.env:
            return
        self.env = env
        self.query_one("#connect-shell", Static).update(shell_exports(env))
        self.query_one("#connect-json", Static).update(settings_json(env))

    def show_source(self, source, error: str | None) -> None:
        """A team's source instead of the settings: what it is, and why nothing shows."""
        describe = getattr(source, "describe", None)
        title = f"Team view: {source.label}"
        if error:
            lead = f"Cannot read it: {error}"
        else:
            found = describe() if describe else source.label
            lead = f"No Claude Code telemetry there yet. {found}"
        self.query_one("#connect-title", Static).update(Text(title))
        self.query_one("#connect-lead", Static).update(Text(lead))
        for node in self.query(".code, .connect-note"):
            node.display = False

    @property
    def shell_text(self) -> str:
        return shell_exports(self.env)
