"""Command line: `claude-top` (UI + receivers, or attached to a running `serve`), `serve`
(headless receivers), `service` (`serve` in the background at login), `export`, `import`
(transcripts and OTLP JSON lines), `setup` (point Claude Code here), `demo` (the UI fed with
synthetic telemetry), `statusline` (Claude Code's status-line command), `status` (plan limits,
one shot), `team-tables` (a team's ClickHouse). Only parsing here: each command runs in
`claude_top.commands`, imported when it is the one asked for."""

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


def _add_forward(p: argparse.ArgumentParser, sub: bool = False) -> None:
    g = p.add_argument_group(
        "relay to the team's collector",
        "every acknowledged export is also delivered upstream, from the journal (at least "
        "once, in order; retried while the upstream is away)",
    )
    g.add_argument(
        "--forward",
        default=_default(None, sub),
        metavar="URL",
        help="the upstream OTLP endpoint: http://collector:4317 (plain) or https://... (TLS)",
    )
    g.add_argument(
        "--forward-protocol",
        choices=("grpc", "http/protobuf"),
        default=_default("grpc", sub),
        help="default: grpc",
    )
    g.add_argument(
        "--forward-header",
        action="append",
        default=_default(None, sub),
        metavar="K=V",
        help="a header for every export (repeat for more; e.g. authorization=Bearer T); "
        "$CLAUDE_TOP_FORWARD_HEADERS takes them as OTEL_EXPORTER_OTLP_HEADERS does",
    )
    g.add_argument(
        "--forward-ca", default=_default(None, sub), metavar="PEM", help="CA file for https"
    )
    g.add_argument(
        "--forward-client-cert",
        default=_default(None, sub),
        metavar="PEM",
        help="client certificate (mTLS)",
    )
    g.add_argument(
        "--forward-client-key", default=_default(None, sub), metavar="PEM", help="its key"
    )
    g.add_argument(
        "--forward-compression",
        choices=("none", "gzip"),
        default=_default("none", sub),
        help="default: none",
    )


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        default=None,
        metavar="URL",
        help="read the panes from elsewhere: clickhouse://[user[:password]@]host[:8123]/database "
        "(the tables the OpenTelemetry Collector's clickhouse exporter writes; read-only; "
        "no receivers unless --listen)",
    )
    p.add_argument(
        "--listen",
        action="store_true",
        help="with --source: also run the receivers into the local database",
    )


def _add_transcripts(p: argparse.ArgumentParser, sub: bool = False) -> None:
    p.add_argument(
        "--transcripts",
        action="append",
        default=_default(None, sub),
        metavar="DIR",
        help="import and follow Claude Code's transcripts here (repeatable; default: "
        "~/.claude/projects and $CLAUDE_CONFIG_DIR/projects, or $CLAUDE_TOP_TRANSCRIPTS: "
        "folders separated by ':', or 'off')",
    )
    p.add_argument(
        "--no-transcripts",
        action="store_true",
        default=_default(False, sub),
        help="do not read Claude Code's transcripts (telemetry only)",
    )


def _add_export_dir(p: argparse.ArgumentParser, sub: bool = False) -> None:
    p.add_argument(
        "--export-dir",
        default=_default(None, sub),
        metavar="DIR",
        help="where the UI's ctrl+s / e write CSV snapshots (default: the current directory)",
    )


def _add_limits(p: argparse.ArgumentParser, sub: bool = False, alerts: bool = True) -> None:
    """Budgets and limit alerts (the config file's `[budgets]` and `[alerts]` under them)."""
    p.add_argument(
        "--budget",
        default=_default(None, sub),
        metavar="SPEC",
        help="budgets in dollars where no official plan limits come (API keys): "
        "5h=10,day=30,week=150,month=500",
    )
    p.add_argument(
        "--config",
        default=_default(None, sub),
        metavar="TOML",
        help="budgets and alerts file (default: ~/.config/claude-top/config.toml)",
    )
    p.add_argument(
        "--alert-at",
        default=_default(None, sub),
        metavar="PCTS",
        help="alert when a window or budget crosses these percentages (default: 80,95)",
    )
    if not alerts:
        return
    p.add_argument(
        "--alert-command",
        default=_default(None, sub),
        metavar="CMD",
        help="run CMD (in a shell) with each alert as JSON on stdin",
    )
    p.add_argument(
        "--no-bell", action="store_true", default=_default(False, sub), help="no bell on alerts"
    )
    p.add_argument(
        "--no-desktop",
        action="store_true",
        default=_default(False, sub),
        help="no desktop notification on alerts",
    )


def _forward_problem(args: argparse.Namespace) -> str | None:
    from claude_top.receiver.forward import ForwardConfig

    try:
        config = ForwardConfig.from_args(args)
    except ValueError as exc:
        return str(exc)
    if config and getattr(args, "source", None) and not getattr(args, "listen", False):
        return "--forward relays what this claude-top receives: with --source, add --listen"
    return None


MAX_BODY_LIMIT = (1 << 31) - 1
"""The largest --max-body gRPC can take (its message limit is a 32-bit int)."""


def _number_problem(args: argparse.Namespace) -> str | None:
    """Why a port or --max-body given cannot be used (argparse only checks they are ints)."""
    for flag in ("--grpc-port", "--http-port"):
        port = getattr(args, flag[2:].replace("-", "_"), None)
        if port is not None and not 0 <= port <= 65535:
            return f"{flag} {port} is not a port: give 0-65535 (0: any free port)"
    max_body = getattr(args, "max_body", None)
    if max_body is not None and not 1 <= max_body <= MAX_BODY_LIMIT:
        return f"--max-body {max_body} is not a size claude-top can accept: give 1-{MAX_BODY_LIMIT}"
    return None


def _listen_problem(args: argparse.Namespace) -> str | None:
    from claude_top.receiver.security import listen_problem

    return _number_problem(args) or listen_problem(
        args.bind, args.token, args.insecure, args.tls_cert, args.tls_key
    )


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
    _add_forward(parser)
    _add_transcripts(parser)
    _add_export_dir(parser)
    _add_limits(parser)
    _add_source(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the OTLP receivers headless (no UI)")
    _add_db(serve, sub=True)
    _add_listen(serve, sub=True)
    _add_security(serve, sub=True)
    _add_limits(serve, sub=True)
    _add_forward(serve, sub=True)
    _add_transcripts(serve, sub=True)

    export = sub.add_parser("export", help="write CSV snapshots of a database")
    _add_db(export, sub=True)
    export.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    export.add_argument("--since", metavar="WINDOW", help="15m, 1h, 24h, 7d (default: all)")
    export.add_argument("--session", metavar="ID", help="only this session")
    export.add_argument(
        "--source",
        metavar="URL",
        help="export from a team's ClickHouse (clickhouse://[user[:password]@]host[:8123]/db) "
        "instead of a database file",
    )

    imp = sub.add_parser(
        "import",
        help="import Claude Code's transcripts (and OTLP JSON lines files)",
        description="Import Claude Code's transcripts: *.jsonl under the folders given (searched "
        "recursively, subagents included) or the files given; default ~/.claude/projects and "
        "$CLAUDE_CONFIG_DIR/projects. A file of OTLP JSON lines (the OpenTelemetry Collector's "
        "file exporter) is stored as the receivers store an export. While a claude-top runs on "
        "the database, it does the import.",
    )
    _add_db(imp, sub=True)
    imp.add_argument("paths", nargs="*", metavar="PATH", help="folders or files")
    imp.add_argument(
        "-v", "--verbose", action="store_true", help="list each skipped line as file:line"
    )
    imp.add_argument(
        "--redact",
        type=_redact_kinds,
        default=frozenset(),
        metavar="KINDS",
        help="keep these out of the database: prompts, commands, paths (comma-separated)",
    )
    _add_setup(sub)
    _add_demo(sub)
    _add_statusline(sub)
    _add_status(sub)
    team = sub.add_parser(
        "team-tables",
        help="make claude-top's typed tables beside the collector's in a team's ClickHouse",
        description="Create claude_top_events and claude_top_spans (the attributes the panes "
        "read, as columns) with materialized views that fill them as the collector inserts, and "
        "fill them once from what is already there. Needs a user allowed to CREATE; --print "
        "gives the SQL instead.",
    )
    team.add_argument("--source", required=True, metavar="URL", help="clickhouse://...")
    team.add_argument("--print", action="store_true", help="print the SQL, run nothing")
    team.add_argument(
        "--rebuild",
        action="store_true",
        help="drop claude-top's own tables and views first and make them again from the "
        "exporter's (after an upgrade that changed them; the exporter's are never touched)",
    )
    _add_service(sub)
    return parser


STATUSLINE_HELP = (
    "Read the status-line sample Claude Code pipes in, hand it to the running claude-top over "
    "loopback (or spool it for the next one) and print one short line. Never fails, and takes "
    "under 300 ms. `claude-top setup --write` installs it."
)


def _add_statusline(sub) -> None:
    p = sub.add_parser(
        "statusline",
        help="Claude Code's statusLine command: hand its sample to claude-top, print a line",
        description=STATUSLINE_HELP,
    )
    _statusline_options(p)


def _statusline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--http-port", type=int, metavar="N", help="claude-top's OTLP/HTTP port (default 4318)"
    )
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="its address")
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="its bearer token (default: $CLAUDE_TOP_TOKEN, else its instance file's)",
    )
    p.add_argument(
        "--chain",
        metavar="CMD",
        help="the previous status-line command: run with the same input, its output first",
    )
    p.add_argument(
        "--budget-ms", type=int, metavar="MS", help="time allowed from start to the line (280)"
    )


def _add_status(sub) -> None:
    p = sub.add_parser(
        "status",
        help="plan limits, budgets and today's cost, once (for scripts, tmux, CI)",
        description="Ask the running claude-top (its OTLP/HTTP port) for the plan limits, "
        "budgets and today's cost; when none runs, read the database. Exit codes: 0 ok, 10 near "
        "a limit, 11 limit reached, 20 indeterminate (stale), 30 no data.",
    )
    _add_db(p, sub=True)
    p.add_argument(
        "--http-port",
        type=int,
        metavar="N",
        help="the running claude-top's OTLP/HTTP port (default: its instance file's, else 4318)",
    )
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="its address")
    p.add_argument("--token", metavar="TOKEN", help="its bearer token (default: $CLAUDE_TOP_TOKEN)")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="everything, as JSON")
    form.add_argument("--tmux", action="store_true", help="one short line for status-right")
    p.add_argument("--at", type=float, metavar="EPOCH", help="as of this time (default: now)")
    _add_limits(p, sub=True, alerts=False)


def _add_service(sub) -> None:
    p = sub.add_parser(
        "service",
        help="run `serve` in the background at login (systemd user unit / launchd agent)",
        description="Install (or remove) a systemd user unit, or a launchd agent on macOS, that "
        "runs `claude-top serve` at login, so telemetry is received while no UI is open; "
        "`claude-top` then attaches to it.",
    )
    p.add_argument("action", choices=("install", "uninstall"))
    _add_db(p, sub=True)
    p.add_argument(
        "--grpc-port", type=int, default=_default(4317, True), metavar="N", help="OTLP/gRPC port"
    )
    p.add_argument(
        "--http-port", type=int, default=_default(4318, True), metavar="N", help="OTLP/HTTP port"
    )
    p.add_argument(
        "--retention",
        type=_window,
        default=_default(None, True),
        metavar="AGE",
        help="delete telemetry older than AGE (e.g. 30d)",
    )
    p.add_argument(
        "--now", action="store_true", help="also start it (install) or stop it (uninstall)"
    )
    p.add_argument(
        "--manager", choices=("systemd", "launchd"), help="default: launchd on macOS, else systemd"
    )


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
        "--no-statusline",
        action="store_true",
        help="leave the statusLine alone (by default --write makes `claude-top statusline` "
        "the status line, running any previous one first)",
    )
    p.add_argument(
        "--statusline-command",
        metavar="CMD",
        help="how Claude Code starts claude-top (default: the claude-top on PATH)",
    )
    p.add_argument(
        "--set-intervals",
        action="store_true",
        help="with --write: also replace export intervals the file already sets (kept otherwise)",
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
    if argv[:1] == ["statusline"]:  # Claude Code waits on it: parse only its own options
        from claude_top.commands.statusline import run_statusline

        p = argparse.ArgumentParser(prog="claude-top statusline", description=STATUSLINE_HELP)
        _statusline_options(p)
        return run_statusline(p.parse_args(argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return _run(args, argv)
    except KeyboardInterrupt:  # Ctrl-C before a command handles it (while opening the database)
        return 130


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    checked = ("setup", "demo", "status", "service")
    if (problem := _number_problem(args)) and args.command in checked:
        print(f"claude-top: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "statusline":
        from claude_top.commands.statusline import run_statusline

        return run_statusline(args)
    if args.command == "status":
        from claude_top.commands.status import run_status

        return run_status(args, _db_path(args))
    if args.command == "setup":
        from claude_top.commands.setup import run_setup

        return run_setup(args)
    os.umask(0o077)  # the database, its WAL and snapshots: readable by this user only
    if args.command == "demo" or (args.command is None and args.demo):
        from claude_top.commands.demo import run_demo_command

        return run_demo_command(args, argv)
    if args.command in (None, "serve") and (
        problem := _listen_problem(args) or _forward_problem(args)
    ):
        print(f"claude-top: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "team-tables":
        from claude_top.commands.team import run_team_tables

        return run_team_tables(args)
    if args.command == "export":
        from claude_top.commands.export import run_export

        return run_export(args, _db_path(args))
    if args.command == "import":
        from claude_top.commands.imports import run_import

        return run_import(args, _db_path(args))
    if args.command == "serve":
        from claude_top.commands.serve import run_serve

        return run_serve(args, _db_path(args))
    if args.command == "service":
        from claude_top.commands.service import run_service

        return run_service(args, _db_path(args))
    from claude_top.commands.ui import run_app

    return run_app(args, _db_path(args))


if __name__ == "__main__":
    sys.exit(main())
