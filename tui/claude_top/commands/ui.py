"""`claude-top` (no subcommand): the receivers and the live UI in one process."""

from __future__ import annotations

import sys

from claude_top.commands.common import EXIT_USAGE, open_store, start_writer
from claude_top.core import heap
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.server import ReceiverConfig, Receivers
from claude_top.ui.app import Background, ClaudeTopApp


def _receivers(args, writer: StoreWriter) -> Receivers:
    return Receivers(writer, ReceiverConfig.from_args(args))


def run_app(args, db_path: str, *, background: Background | None = None) -> int:
    """Open the store, run the UI with the receivers in-process, flush and close on exit.

    `background(receivers)` runs as a task on the app's loop once the receivers listen; it is
    cancelled (and awaited) before they stop.
    """
    heap.map_large_blocks()
    store = open_store(db_path, make_folder=getattr(args, "db", None) is None)
    if store is None:
        return EXIT_USAGE
    writer = start_writer(store, retention_s=getattr(args, "retention", None))
    if writer is None:
        return EXIT_USAGE
    app = ClaudeTopApp(
        store,
        writer,
        _receivers(args, writer),
        db_path=db_path,
        export_dir=getattr(args, "export_dir", None),
        background=background,
    )
    try:
        app.run()
    finally:
        writer.close(1.0)
        store.checkpoint()
        store.close()
        # Textual keeps the app object alive after run(); let the DuckDB objects go now,
        # or the binding reports them as leaked at interpreter exit.
        app.store = app.source = app.writer = app.receivers = None
    if app.startup_error:
        print(f"claude-top: {app.startup_error}", file=sys.stderr)
        return EXIT_USAGE
    if app.background_error:
        print(f"claude-top: background task stopped: {app.background_error}", file=sys.stderr)
    return app.return_code or 0
