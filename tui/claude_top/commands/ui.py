"""`claude-top` (no subcommand): the live UI. It hosts the receivers in-process, or, when a
running `claude-top serve` holds the database (it wrote `<db>.instance.json`), attaches to it:
the panes read over loopback and the receiver keeps running after the UI closes."""

from __future__ import annotations

import sys

from claude_top.commands.common import EXIT_USAGE, fail
from claude_top.core.instance import Instance, InstanceError, read_instance
from claude_top.core.queries.remote import RemoteSource
from claude_top.core.store.database import Store, StoreError, StoreLocked
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.server import ReceiverConfig, Receivers
from claude_top.ui.app import Background, ClaudeTopApp


def _receivers(args, writer: StoreWriter) -> Receivers:
    return Receivers(writer, ReceiverConfig.from_args(args))


def attached_app(instance: Instance, args=None) -> ClaudeTopApp:
    """The UI over the database `instance` holds, read through it (no store, no receivers)."""
    return ClaudeTopApp(
        None,
        attached=RemoteSource(instance),
        db_path=instance.db,
        export_dir=getattr(args, "export_dir", None),
    )


def run_app(
    args, db_path: str, *, background: Background | None = None, attach: bool = True
) -> int:
    """Run the UI: attached to the claude-top that holds `db_path` (when `attach` and one runs),
    else with the receivers in-process, flushing and closing the store on exit.

    `background(receivers)` runs as a task on the app's loop once the receivers listen; it is
    cancelled (and awaited) before they stop.
    """
    if attach and (instance := read_instance(db_path)) is not None:
        return _run_attached(instance, args)
    try:
        store = Store.open(db_path)
    except StoreLocked as exc:
        instance = read_instance(db_path) if attach else None
        if instance is None:
            return fail("", str(exc))
        return _run_attached(instance, args)
    except StoreError as exc:
        return fail("", str(exc))
    writer = StoreWriter(store, retention_s=getattr(args, "retention", None))
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
    if background is None:
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
