"""`claude-top` (no subcommand): the receivers and the live UI in one process; with
`--source clickhouse://...`, the UI over a team's ClickHouse instead (no receivers unless
`--listen`)."""

from __future__ import annotations

import sys

from claude_top.commands.common import EXIT_USAGE, fail, open_store, start_writer
from claude_top.core import heap
from claude_top.core.budgets import LimitSettings, SettingsError, settings_from_args
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.forward import Forwarder, open_relay
from claude_top.receiver.server import ReceiverConfig, Receivers
from claude_top.ui.app import Background, ClaudeTopApp


def _receivers(args, writer: StoreWriter, limits: LimitSettings) -> Receivers:
    return Receivers(writer, ReceiverConfig.from_args(args), limits)


def _open_source(url: str):
    """The team's source, or None after saying why the URL cannot be used."""
    from claude_top.core.queries.clickhouse import ClickHouseSource

    try:
        source = ClickHouseSource.open(url)
    except ValueError as exc:
        fail("", str(exc))
        return None
    # said before the UI takes the screen, and again in its panes while it cannot be read
    print(f"claude-top: {source.describe()}", file=sys.stderr, flush=True)
    return source


def run_app(args, db_path: str, *, background: Background | None = None) -> int:
    """Open the store, run the UI with the receivers in-process, flush and close on exit.

    `background(receivers)` runs as a task on the app's loop once the receivers listen; it is
    cancelled (and awaited) before they stop.
    """
    try:
        limits = settings_from_args(args)
    except SettingsError as exc:
        return fail("", str(exc))
    source = None
    if getattr(args, "source", None):
        source = _open_source(args.source)
        if source is None:
            return EXIT_USAGE
    store = writer = receivers = relay = None
    if source is None or getattr(args, "listen", False):
        heap.map_large_blocks()
        store = open_store(db_path, make_folder=getattr(args, "db", None) is None)
        if store is None:
            return EXIT_USAGE
        relay_setup = open_relay(args, store)
        writer = start_writer(
            store,
            retention_s=getattr(args, "retention", None),
            journal_hold=relay_setup[1].seq if relay_setup else None,
        )
        if writer is None:
            return EXIT_USAGE
        if relay_setup:
            relay = Forwarder(writer.journal, *relay_setup)
            relay.start()
        receivers = _receivers(args, writer, limits)
    app = ClaudeTopApp(
        store,
        writer,
        receivers,
        db_path=db_path if source is None else None,
        export_dir=getattr(args, "export_dir", None),
        background=background,
        limits=limits,
        source=source,
        relay=relay,
    )
    try:
        app.run()
    finally:
        if relay is not None:
            relay.close()
        if writer is not None:
            writer.close(1.0)
        if store is not None:
            store.checkpoint()
            store.close()
        if source is not None:
            source.close()
        # Textual keeps the app object alive after run(); let the DuckDB objects go now,
        # or the binding reports them as leaked at interpreter exit.
        app.store = app.source = app.writer = app.receivers = app.relay = None
    if app.startup_error:
        print(f"claude-top: {app.startup_error}", file=sys.stderr)
        return EXIT_USAGE
    if app.background_error:
        print(f"claude-top: background task stopped: {app.background_error}", file=sys.stderr)
    if relay is not None:
        print(f"claude-top: {relay.status().line()}", file=sys.stderr)
    return app.return_code or 0
