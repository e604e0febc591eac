"""`claude-top setup`: print, or merge into settings.json, what points Claude Code here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from claude_top.commands.common import EXIT_USAGE
from claude_top.core.setup import (
    DEFAULT_SETTINGS,
    SettingsError,
    instructions,
    settings_env,
    write_settings,
)


def run_setup(args: argparse.Namespace) -> int:
    """Print the settings; with `--write`, merge them (backup and diff) and say what changed."""
    env = settings_env(
        args.bind,
        args.grpc_port,
        args.http_port,
        args.protocol,
        tool_details=args.log_tool_details,
        user_prompts=args.log_user_prompts,
    )
    path = Path(args.settings) if args.settings else DEFAULT_SETTINGS
    if not args.write:
        print(instructions(env, path))
        return 0
    try:
        result = write_settings(path.expanduser(), env, replace_intervals=args.set_intervals)
    except SettingsError as exc:
        print(f"claude-top setup: {exc}; left it unchanged", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"claude-top setup: cannot update {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
        print("Restart claude to pick it up (running sessions keep their old settings).")
    return 0
