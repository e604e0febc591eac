"""`claude-top serve`: the receivers headless, until SIGINT/SIGTERM; then flush and exit 0 (2,
with one line, if what was acknowledged could not all be indexed for lack of disk: it stays in
the journal for the next start)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time

from claude_top.commands.common import (
    EXIT_USAGE,
    age_option,
    fail,
    open_store,
    start_writer,
    transcript_roots,
)
from claude_top.core import alerts, heap
from claude_top.core.budgets import LimitSettings, SettingsError, settings_from_args
from claude_top.core.connect import shell_exports
from claude_top.core.sources.otlp.redact import KINDS
from claude_top.core.store.database import Store
from claude_top.core.store.importer import summary_lines
from claude_top.core.store.tail import TranscriptTail
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.forward import Forwarder, open_relay
from claude_top.receiver.security import is_loopback
from claude_top.receiver.server import ReceiverConfig, Receivers

ERROR_CHECK_S = 1.0
ALERT_CHECK_S = 15.0
"""How often a headless claude-top looks for limit and budget crossings (UI: each refresh)."""


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _config(args) -> ReceiverConfig:
    return ReceiverConfig.from_args(args)


def _access(config: ReceiverConfig) -> str:
    """One line on who may send and what is kept out of the database."""
    parts = ["TLS" if config.tls else "plain text"]
    if config.token:
        parts.append("bearer token required")
    elif not is_loopback(config.bind):
        parts.append(f"WARNING: no token on {config.bind or 'every address'} (--insecure)")
    if config.redact:
        parts.append(f"redacting {', '.join(k for k in KINDS if k in config.redact)}")
    return "access: " + "; ".join(parts)


async def _serve(
    store: Store,
    writer: StoreWriter,
    config: ReceiverConfig,
    limits: LimitSettings,
    relay: Forwarder | None = None,
    roots: list | None = None,
) -> int:
    receivers = Receivers(writer, config, limits)
    try:
        await receivers.start()
    except OSError as exc:  # PortInUse, or TLS files that changed since the options were checked
        print(f"claude-top: {exc}", file=sys.stderr)
        return EXIT_USAGE
    tail = None
    if roots is not None:
        tail = TranscriptTail(store, roots, redact=config.redact)
        receivers.control.importer = tail.importer
        tail.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ep = receivers.endpoints
    print(f"claude-top serve: OTLP/gRPC on {ep['grpc']}, OTLP/HTTP on {ep['http']}", flush=True)
    print(_access(config), flush=True)
    retention = f", retention {age_option(writer.retention_s)}" if writer.retention_s else ""
    print(f"database: {store.path} ({_size(store.size_bytes())}{retention})", flush=True)
    if relay is not None:
        print(f"relay: forwarding to {relay.config.describe()}", flush=True)
    if tail is not None:
        print(f"transcripts: importing and following {', '.join(map(str, roots))}", flush=True)
    else:
        print("transcripts: off", flush=True)
    print("point Claude Code here (shell, or the env block of ~/.claude/settings.json):")
    print(shell_exports(receivers.env_block()), flush=True)
    reported = transcript_errors = 0
    first_told = False
    next_alert_check = time.monotonic()
    told: tuple | None = None
    while True:
        reported = _report_index_errors(writer, reported)
        told = _report_relay(relay, told)
        if time.monotonic() >= next_alert_check:
            next_alert_check = time.monotonic() + ALERT_CHECK_S
            await _check_alerts(store, limits)
        if tail is not None:
            if not first_told and tail.first is not None:
                first_told = True
                print("transcripts imported:", flush=True)
                print("\n".join("  " + x for x in summary_lines(tail.first.as_dict())), flush=True)
            if tail.errors > transcript_errors:
                transcript_errors = tail.errors
                print(f"claude-top: {tail.last_error}", file=sys.stderr, flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ERROR_CHECK_S)
            break
    if tail is not None:
        await asyncio.to_thread(tail.close)
    await receivers.stop()
    _report_index_errors(writer, reported)
    return 0


async def _check_alerts(store: Store, limits: LimitSettings) -> None:
    """New limit or budget crossings: a line on stdout, notify-send where a desktop session
    is reachable, and the --alert-command (each crossing once, remembered in the database)."""
    try:
        _, new = await asyncio.to_thread(alerts.check, store, limits, time.time_ns())
    except Exception as exc:  # a failed check must not stop the receivers
        print(f"claude-top: limits check failed: {exc}", file=sys.stderr, flush=True)
        return
    for alert in new:
        print(f"claude-top alert: {alert.message}", flush=True)
        if limits.desktop:
            alerts.notify_send(alert)
        if limits.alert_command:
            alerts.run_command(
                limits.alert_command,
                alert,
                on_error=lambda m: print(f"claude-top: {m}", file=sys.stderr, flush=True),
            )


def _report_relay(relay: Forwarder | None, told: tuple | None) -> tuple | None:
    """Tell stderr when the relay starts failing, recovers, rejects or gives up exports."""
    if relay is None:
        return None
    s = relay.status()
    key = (s.failing, s.rejected, s.dropped, s.failing and s.error)
    if key != told and (told is not None or s.failing or s.rejected or s.dropped):
        print(f"claude-top: {s.line()}", file=sys.stderr, flush=True)
    return key


def _report_index_errors(writer: StoreWriter, reported: int) -> int:
    """Tell stderr about indexing errors since the last call; returns the count told."""
    s = writer.stats
    if s.index_errors > reported:
        if writer.write_failure:
            then = "acknowledged exports wait in the journal until it can be written"
        else:
            then = "an export that cannot be indexed is kept in the ingest_failed table"
        print(
            f"claude-top: {s.index_errors - reported} indexing error(s); latest: "
            f"{s.last_index_error} ({then})",
            file=sys.stderr,
            flush=True,
        )
    return s.index_errors


def run_serve(args, db_path: str) -> int:
    """Run the receivers until a signal; returns the process exit code."""
    try:
        limits = settings_from_args(args)
    except SettingsError as exc:
        return fail("serve", str(exc))
    heap.map_large_blocks()
    store = open_store(db_path, "serve", make_folder=args.db is None)
    if store is None:
        return EXIT_USAGE
    relay_setup = open_relay(args, store)
    hold = relay_setup[1].seq if relay_setup else None
    writer = start_writer(store, "serve", retention_s=args.retention, journal_hold=hold)
    if writer is None:
        return EXIT_USAGE
    relay = Forwarder(writer.journal, *relay_setup) if relay_setup else None
    if relay is not None:
        relay.start()
    started = time.monotonic()
    try:
        code = asyncio.run(
            _serve(store, writer, _config(args), limits, relay, transcript_roots(args))
        )
    finally:
        if relay is not None:
            relay.close()
            print(f"claude-top serve: {relay.status().line()}", flush=True)
        writer.close()
        store.checkpoint()
        store_size = store.size_bytes()
        store.close()
    left = writer.unindexed()
    if left and writer.write_failure:
        return fail(
            "serve",
            f"stopped with {left} acknowledged exports not yet indexed, the disk refusing the "
            f"database's writes ({writer.write_failure}); they are kept in {store.journal_dir} "
            "and indexed at the next start, once there is room",
        )
    if code == 0:
        s = writer.stats
        print(
            f"claude-top serve: stopped after {time.monotonic() - started:.0f}s; "
            f"{s.exports_committed} exports, {s.rows_committed} rows committed; "
            f"database {_size(store_size)}"
            + (f"; {left} exports left in the journal, indexed at the next start" if left else ""),
            flush=True,
        )
    return code
