"""`claude-top export`: CSV snapshots of a database (the same files as the UI's Ctrl-S)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from claude_top.commands.common import EXIT_USAGE, fail, open_store
from claude_top.core.export import export_snapshot
from claude_top.core.queries.filters import parse_window


def run_export(args: argparse.Namespace, db_path: str) -> int:
    """Write the snapshot files under `--out`; print each file with its row count."""
    try:
        window_s = parse_window(args.since) if args.since else None
    except ValueError as exc:
        return fail("export", str(exc))
    path = db_path
    store = open_store(path, "export", read_only=True)
    if store is None:
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
