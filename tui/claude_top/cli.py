"""Command line: `claude-top` (UI + receivers), `serve` (headless receivers), `export`, `setup`
(point Claude Code here), `demo` (the UI fed with synthetic telemetry). Only parsing here: each
command runs in `claude_top.commands`, imported when it is the one asked for."""

from __future__ import annotations

import argparse
import os
import sys

from claude_top import __version__
from claude_top.commands.common import EXIT_USAGE


def _default(value, sub: bool):
    """Subcommands repeat the top-level options; theirs must not overwrite values given before
    the subcommand name (`claude-top --db X serve`), so they only set what they are given."""
    return argparse.SUPPRESS if sub else value


def _add_db(p: argparse.ArgumentParser, sub: bool = False) -> None:
    p.add_argument(
        "--db",
        default=_default(None, sub),
        metavar="PATH",
        help="DuckDB file (default: the user data dir's claude-top.duckdb; ':memory:' for none)",
    )


def _window(text: str) -> int | None:
    from claude_top.core.queries import parse_window

    try:
        return parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_listen(p: argparse.ArgumentParser, sub: bool = False) -> None:
    p.add_argument(
        "--grpc-port", type=int, default=_default(4317, sub), metavar="N", help="OTLP/gRPC port"
    )
    p.add_argument(
        "--http-port", type=int, default=_default(4318, sub), metavar="N", help="OTLP/HTTP port"
    )
    p.add_argument(
        "--bind", default=_default("127.0.0.1", sub), metavar="ADDR", help="listen address"
    )
    p.add_argument(
        "--max-body",
        type=int,
        default=_default(16 * 1024 * 1024, sub),
        metavar="BYTES",
        help="largest export accepted (after decompression)",
    )
    p.add_argument(
        "--retention",
        type=_window,
        default=_default(None, sub),
        metavar="AGE",
        help="delete telemetry older than AGE (e.g. 30d), checked every 10 minutes; default off",
    )


def _redact_kinds(text: str) -> frozenset[str]:
    from claude_top.core.sources.otlp.redact import parse_kinds

    try:
        return parse_kinds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_security(p: argparse.ArgumentParser, sub: bool = False) -> None:
    p.add_argument(
        "--token",
        default=_default(os.environ.get("CLAUDE_TOP_TOKEN") or None, sub),
        metavar="TOKEN",
        help="senders must send `authorization: Bearer TOKEN` (default: $CLAUDE_TOP_TOKEN); "
        "required to --bind beyond loopback unless --insecure",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        default=_default(False, sub),
        help="allow a non-loopback --bind without a token",
    )
    p.add_argument(
        "--tls-cert", default=_default(None, sub), metavar="PEM", help="TLS certificate (chain)"
    )
    p.add_argument("--tls-key", default=_default(None, sub), metavar="PEM", help="TLS private key")
    p.add_argument(
        "--redact",
        type=_redact_kinds,
        default=_default(frozenset(), sub),
        metavar="KINDS",
        help="keep these out of the database: prompts, commands, paths (comma-separated)",
    )


def _add_export_dir(p: argparse.ArgumentParser, sub: bool = False) -> None:
    p.add_argument(
        "--export-dir",
        default=_default(None, sub),
        metavar="DIR",
        help="where the UI's ctrl+s / e write CSV snapshots (default: the current directory)",
    )


def _listen_problem(args: argparse.Namespace) -> str | None:
    from claude_top.receiver.security import listen_problem

    return listen_problem(args.bind, args.token, args.insecure, args.tls_cert, args.tls_key)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claude-top",
        description="A live terminal monitor for Claude Code's OpenTelemetry.",
    )
    parser.add_argument("--version", action="version", version=f"claude-top {__version__}")
    parser.add_argument("--demo", action="store_true", help="same as `claude-top demo`")
    _add_db(parser)
    _add_listen(parser)
    _add_security(parser)
    _add_export_dir(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the OTLP receivers headless (no UI)")
    _add_db(serve, sub=True)
    _add_listen(serve, sub=True)
    _add_security(serve, sub=True)

    export = sub.add_parser("export", help="write CSV snapshots of a database")
    _add_db(export, sub=True)
    export.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    export.add_argument("--since", metavar="WINDOW", help="15m, 1h, 24h, 7d (default: all)")
    export.add_argument("--session", metavar="ID", help="only this session")

    _add_setup(sub)
    _add_demo(sub)
    return parser


def _add_setup(sub) -> None:
    from claude_top.core.connect import PROTOCOLS

    p = sub.add_parser(
        "setup",
        help="print the settings that point Claude Code (or Gemini CLI, Codex CLI) here; "
        "--write merges them",
        description="Print the settings that point a coding agent at claude-top: Claude Code's "
        "environment (shell exports and the env block of ~/.claude/settings.json), Gemini CLI's "
        "telemetry block of ~/.gemini/settings.json, Codex CLI's [otel] table of "
        "~/.codex/config.toml; --write merges them into that file (backup first, diff shown).",
    )
    p.add_argument(
        "--agent",
        choices=("claude", "gemini", "codex"),
        default="claude",
        help="whose settings (default: claude)",
    )
    p.add_argument("--grpc-port", type=int, default=4317, metavar="N", help="OTLP/gRPC port")
    p.add_argument("--http-port", type=int, default=4318, metavar="N", help="OTLP/HTTP port")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR", help="listen address")
    p.add_argument("--protocol", choices=PROTOCOLS, default="grpc", help="default: grpc")
    p.add_argument(
        "--write",
        action="store_true",
        help="merge the env block into the settings file (backup first; shows the diff)",
    )
    p.add_argument(
        "--settings",
        metavar="PATH",
        help="the file to merge into (default: ~/.claude/settings.json, ~/.gemini/settings.json "
        "or $CODEX_HOME/config.toml, ~/.codex/config.toml)",
    )
    p.add_argument(
        "--log-tool-details",
        action="store_true",
        help="also set OTEL_LOG_TOOL_DETAILS=1 (commands, file paths, MCP names)",
    )
    p.add_argument(
        "--log-user-prompts",
        action="store_true",
        help="also send prompt text: OTEL_LOG_USER_PROMPTS=1 (Claude Code), logPrompts (Gemini "
        "CLI), log_user_prompt (Codex CLI)",
    )


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the UI fed with live synthetic telemetry (temporary database)",
        description="Open the UI and feed it live synthetic Claude Code telemetry over OTLP/gRPC. "
        "Uses a temporary database unless --db is given, and free ports unless given.",
    )
    _add_db(p, sub=True)
    _add_listen(p, sub=True)
    _add_export_dir(p, sub=True)
    p.add_argument("--headless", action="store_true", help="no UI: send, then print the totals")
    p.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this long (default: never)"
    )
    p.add_argument("--speed", type=float, default=1.0, metavar="X", help="virtual time per second")
    p.add_argument("--seed", type=int, metavar="N", help="the same seed sends the same telemetry")
    p.add_argument("--sessions", type=int, default=4, metavar="N", help="concurrent sessions")


def _db_path(args: argparse.Namespace) -> str:
    from claude_top.core.store.database import default_db_path

    return args.db or str(default_db_path())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `claude-top` command."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.command == "setup":
        from claude_top.commands.setup import run_setup

        return run_setup(args)
    if args.command == "demo" or (args.command is None and args.demo):
        from claude_top.commands.demo import run_demo_command

        return run_demo_command(args, argv)
    if args.command in (None, "serve"):
        os.umask(0o077)  # the database, its WAL and snapshots: readable by this user only
        if problem := _listen_problem(args):
            print(f"claude-top: {problem}", file=sys.stderr)
            return EXIT_USAGE
    if args.command == "export":
        from claude_top.commands.export import run_export

        return run_export(args, _db_path(args))
    if args.command == "serve":
        from claude_top.commands.serve import run_serve

        return run_serve(args, _db_path(args))
    from claude_top.commands.ui import run_app

    return run_app(args, _db_path(args))


if __name__ == "__main__":
    sys.exit(main())
