"""`claude-top` (no subcommand): the live UI. It hosts the receivers in-process, or, when a
running `claude-top serve` holds the database (it wrote `<db>.instance.json`), attaches to it:
the panes read over loopback and the receiver keeps running after the UI closes. With
`--source clickhouse://...`, the UI reads a team's ClickHouse instead (no receivers unless
`--listen`)."""

from __future__ import annotations

import sys

from claude_top.commands.common import EXIT_USAGE, fail, start_writer, transcript_roots
from claude_top.core import heap
from claude_top.core.budgets import LimitSettings, SettingsError, settings_from_args
from claude_top.core.instance import Instance, InstanceError, read_instance
from claude_top.core.queries.remote import RemoteSource
from claude_top.core.store.database import Store, StoreError, StoreLocked
from claude_top.core.store.tail import TranscriptTail
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


def attached_app(instance: Instance, args=None) -> ClaudeTopApp:
    """The UI over the database `instance` holds, read through it (no store, no receivers)."""
    return ClaudeTopApp(
        None,
        attached=RemoteSource(instance),
        db_path=instance.db,
        export_dir=getattr(args, "export_dir", None),
    )


def run_app(
    args,
    db_path: str,
    *,
    background: Background | None = None,
    attach: bool = True,
    transcripts: bool = True,
) -> int:
    """Run the UI: attached to the claude-top that holds `db_path` (when `attach` and one runs),
    else with the receivers in-process, flushing and closing the store on exit.

    `background(receivers)` runs as a task on the app's loop once the receivers listen; it is
    cancelled (and awaited) before they stop. With `transcripts`, Claude Code's transcript
    folders (`transcript_roots`) are imported and followed in a thread.
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
    attach = attach and source is None
    if attach and (instance := read_instance(db_path)) is not None:
        return _run_attached(instance, args)
    store = writer = receivers = relay = None
    if source is None or getattr(args, "listen", False):
        heap.map_large_blocks()
        try:
            store = Store.open(db_path, make_folder=getattr(args, "db", None) is None)
        except StoreLocked as exc:
            instance = read_instance(db_path) if attach else None
            if instance is None:
                return fail("", str(exc))
            return _run_attached(instance, args)
        except StoreError as exc:
            return fail("", str(exc))
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
    tail = None
    roots = transcript_roots(args) if transcripts and receivers is not None else None
    if roots is not None:
        tail = TranscriptTail(store, roots, redact=receivers.config.redact)
        receivers.control.importer = tail.importer
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
        transcripts=tail,
    )
    try:
        app.run()
    finally:
        if tail is not None:
            tail.close()
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
        app.transcripts = None
    if app.startup_error:
        print(f"claude-top: {app.startup_error}", file=sys.stderr)
        return EXIT_USAGE
    if app.background_error:
        print(f"claude-top: background task stopped: {app.background_error}", file=sys.stderr)
    if relay is not None:
        print(f"claude-top: {relay.status().line()}", file=sys.stderr)
    if background is None and writer is not None:
        s = writer.stats
        print(
            f"claude-top: {s.exports_committed} exports ({s.rows_committed} records) received "
            f"and stored in {db_path}"
        )
    return app.return_code or 0


def _run_attached(instance: Instance, args) -> int:
    try:
        RemoteSource(instance).status()
    except InstanceError as exc:
        return fail(
            "", f"{instance.db} is held by pid {instance.pid}, which does not answer: {exc}"
        )
    app = attached_app(instance, args)
    app.run()
    if app.return_code:
        return app.return_code
    print(
        f"claude-top: detached; the claude-top serve (pid {instance.pid}) keeps receiving into "
        f"{instance.db}"
    )
    return 0
