"""Command line: `claude-top` (UI + receivers), `serve` (headless receivers), `export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from claude_top import __version__

EXIT_USAGE = 2


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH",
        help="DuckDB file (default: the user data dir's claude-top.duckdb; ':memory:' for none)",
    )


def _add_listen(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grpc-port", type=int, default=4317, metavar="N", help="OTLP/gRPC port")
    p.add_argument("--http-port", type=int, default=4318, metavar="N", help="OTLP/HTTP port")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR", help="listen address")
    p.add_argument(
        "--max-body",
        type=int,
        default=16 * 1024 * 1024,
        metavar="BYTES",
        help="largest export accepted (after decompression)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claude-top",
        description="A live terminal monitor for Claude Code's OpenTelemetry.",
    )
    parser.add_argument("--version", action="version", version=f"claude-top {__version__}")
    _add_db(parser)
    _add_listen(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the OTLP receivers headless (no UI)")
    _add_db(serve)
    _add_listen(serve)

    export = sub.add_parser("export", help="write CSV snapshots of a database")
    _add_db(export)
    export.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    export.add_argument("--since", metavar="WINDOW", help="15m, 1h, 24h, 7d (default: all)")
    export.add_argument("--session", metavar="ID", help="only this session")
    return parser


def _db_path(args: argparse.Namespace) -> str:
    from claude_top.core.store import default_db_path

    return args.db or str(default_db_path())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `claude-top` command."""
    args = build_parser().parse_args(argv)
    if args.command == "export":
        return _export(args)
    if args.command == "serve":
        from claude_top.receiver.serve import run_serve

        return run_serve(args, _db_path(args))
    try:
        from claude_top.ui.app import run_app
    except ImportError:
        from claude_top.receiver.serve import run_serve

        return run_serve(args, _db_path(args))
    return run_app(args, _db_path(args))


def _export(args: argparse.Namespace) -> int:
    from claude_top.core.export import export_snapshot
    from claude_top.core.queries import parse_window
    from claude_top.core.store import Store, StoreError

    try:
        window_s = parse_window(args.since) if args.since else None
    except ValueError as exc:
        print(f"claude-top export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = _db_path(args)
    try:
        store = Store.open(path, read_only=True)
    except StoreError as exc:
        print(f"claude-top export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = export_snapshot(
            store.cursor(),
            Path(args.out),
            db_path=path,
            window=args.since,
            window_s=window_s,
            session_id=args.session,
        )
    except OSError as exc:
        print(f"claude-top export: cannot write to {args.out}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    for name, count in result.counts.items():
        print(f"{count:>8}  {result.directory / (name + '.csv')}")
    print(f"          {result.directory / 'snapshot.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
