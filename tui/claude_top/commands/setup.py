"""`claude-top setup`: print, or merge into the agent's own file, what points Claude Code (or
Gemini CLI, Codex CLI) here."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
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
from claude_top.core.sources.statusline.install import (
    claude_top_command,
    install,
    parse_ours,
    statusline_command,
)


def _statusline_note(path: Path) -> str | None:
    """What the settings file's status line does now, when it chains another command."""
    try:
        line = json.loads(path.read_text(encoding="utf-8-sig")).get("statusLine") or {}
    except (OSError, ValueError, AttributeError):
        return None
    ours = parse_ours(str(line.get("command") or ""))
    if ours is None:
        return "note: the status line is not claude-top's (an unknown kind; left alone)"
    if ours["chain"]:
        chain = ours["chain"]
        return f"status line: claude-top's; your previous one still runs, shown first: {chain}"
    return None


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
    base = args.statusline_command or claude_top_command()
    if not args.write:
        print(instructions(env, path))
        if not args.no_statusline:
            block = {"type": "command", "command": statusline_command(base, args.http_port)}
            print(
                "\nPlan limits, context and cache in claude-top: the statusLine of "
                f"{path}\n(`--write` sets it, and keeps running a status line already there):\n"
                + json.dumps({"statusLine": block}, indent=2)
            )
        return 0
    transform = (
        None if args.no_statusline else partial(install, base=base, http_port=args.http_port)
    )
    try:
        result = write_settings(
            path.expanduser(), env, transform=transform, replace_intervals=args.set_intervals
        )
    except SettingsError as exc:
        print(f"claude-top setup: {exc}; left it unchanged", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"claude-top setup: cannot update {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    code = _told(result, agent)
    note = None if args.no_statusline else _statusline_note(result.path)
    if note:
        print(note)
    return code


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
    for key, (theirs, ours) in result.kept.items():
        print(
            f"kept your {key}={theirs} (claude-top suggests {ours} for a live view; "
            "--set-intervals replaces it)"
        )
    for key, value in result.overrides.items():
        print(f"note: {key}={value} in its env overrides the endpoint/protocol for that signal")
    if result.changed:
        print(f"Restart {RESTART[agent]} to pick it up (running sessions keep their old settings).")
    return 0
