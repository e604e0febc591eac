"""`claude-top setup`: print, or merge into the agent's own file, what points Claude Code (or
Gemini CLI, Codex CLI) here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from claude_top.commands.common import EXIT_USAGE
from claude_top.core.setup import (
    SettingsError,
    WriteResult,
    codex_instructions,
    codex_otel,
    default_path,
    gemini_instructions,
    gemini_telemetry,
    instructions,
    merge_codex,
    merge_gemini,
    settings_env,
    write_merged,
    write_settings,
)

RESTART = {"claude": "claude", "gemini": "gemini", "codex": "codex"}


def _other_agent(args: argparse.Namespace, path: Path) -> tuple[str, object]:
    """(what to print, how to merge) for Gemini CLI or Codex CLI."""
    where = (args.bind, args.grpc_port, args.http_port, args.protocol)
    if args.agent == "gemini":
        telemetry = gemini_telemetry(*where, log_prompts=args.log_user_prompts)
        return gemini_instructions(telemetry, path), lambda text, at: merge_gemini(
            text, telemetry, at
        )
    otel = codex_otel(*where, log_user_prompt=args.log_user_prompts)
    return codex_instructions(otel, path), lambda text, at: merge_codex(text, otel, at)


def run_setup(args: argparse.Namespace) -> int:
    """Print the settings; with `--write`, merge them (backup and diff) and say what changed."""
    agent = getattr(args, "agent", "claude")
    path = Path(args.settings) if args.settings else default_path(agent)
    if agent != "claude":
        if args.log_tool_details:
            print("claude-top setup: --log-tool-details is Claude Code's only", file=sys.stderr)
            return EXIT_USAGE
        text, merge = _other_agent(args, path)
        if not args.write:
            print(text)
            return 0
        try:
            result = write_merged(path.expanduser(), merge)
        except SettingsError as exc:
            print(f"claude-top setup: {exc}; left it unchanged", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:
            print(f"claude-top setup: cannot update {path}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        code = _told(result, agent)
        if agent == "gemini" and result.changed:
            _gemini_notes(path.expanduser())
        return code
    env = settings_env(
        args.bind,
        args.grpc_port,
        args.http_port,
        args.protocol,
        tool_details=args.log_tool_details,
        user_prompts=args.log_user_prompts,
    )
    if not args.write:
        print(instructions(env, path))
        return 0
    try:
        result = write_settings(path.expanduser(), env)
    except SettingsError as exc:
        print(f"claude-top setup: {exc}; left it unchanged", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"claude-top setup: cannot update {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _told(result, agent)


def _gemini_notes(path: Path) -> None:
    """Warn about what in Gemini CLI's telemetry block would keep its OTLP export off."""
    try:
        block = json.loads(path.read_text(encoding="utf-8-sig")).get("telemetry", {})
    except (OSError, ValueError, AttributeError):
        return
    if block.get("outfile"):
        print(f"note: telemetry.outfile={block['outfile']} makes Gemini CLI write telemetry to "
              "that file instead of sending it: remove it to send it here")  # fmt: skip


def _told(result: WriteResult, agent: str) -> int:
    """Say what `--write` did: nothing, or the diff and where the backup is."""
    if not result.changed:
        print(f"{result.path} already has these settings; nothing changed.")
    else:
        print(result.diff, end="")
        if result.created:
            print(f"created {result.path}")
        else:
            print(f"updated {result.path} (backup: {result.backup})")
    for key, value in result.overrides.items():
        print(f"note: {key}={value} in its env overrides the endpoint/protocol for that signal")
    if result.changed:
        print(f"Restart {RESTART[agent]} to pick it up (running sessions keep their old settings).")
    return 0
