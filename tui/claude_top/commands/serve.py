"""`claude-top serve`: the receivers headless, until SIGINT/SIGTERM; then flush and exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time

from claude_top.commands.common import EXIT_USAGE, age_option, open_store
from claude_top.core.connect import shell_exports
from claude_top.core.sources.otlp.redact import KINDS
from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.security import is_loopback
from claude_top.receiver.server import ReceiverConfig, Receivers

ERROR_CHECK_S = 1.0


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


async def _serve(store: Store, writer: StoreWriter, config: ReceiverConfig) -> int:
    receivers = Receivers(writer, config)
    try:
        await receivers.start()
    except OSError as exc:  # PortInUse, or TLS files that changed since the options were checked
        print(f"claude-top: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ep = receivers.endpoints
    print(f"claude-top serve: OTLP/gRPC on {ep['grpc']}, OTLP/HTTP on {ep['http']}", flush=True)
    print(_access(config), flush=True)
    retention = f", retention {age_option(writer.retention_s)}" if writer.retention_s else ""
    print(f"database: {store.path} ({_size(store.size_bytes())}{retention})", flush=True)
    print("point Claude Code here (shell, or the env block of ~/.claude/settings.json):")
    print(shell_exports(receivers.env_block()), flush=True)
    reported = 0
    while True:
        reported = _report_index_errors(writer, reported)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ERROR_CHECK_S)
            break
    await receivers.stop()
    _report_index_errors(writer, reported)
    return 0


def _report_index_errors(writer: StoreWriter, reported: int) -> int:
    """Tell stderr about indexing errors since the last call; returns the count told."""
    s = writer.stats
    if s.index_errors > reported:
        print(
            f"claude-top: {s.index_errors - reported} indexing error(s); latest: "
            f"{s.last_index_error} (undecodable exports are kept in the ingest_failed table)",
            file=sys.stderr,
            flush=True,
        )
    return s.index_errors


def run_serve(args, db_path: str) -> int:
    """Run the receivers until a signal; returns the process exit code."""
    store = open_store(db_path)
    if store is None:
        return EXIT_USAGE
    writer = StoreWriter(store, retention_s=args.retention)
    started = time.monotonic()
    try:
        code = asyncio.run(_serve(store, writer, _config(args)))
    finally:
        writer.close()
        store.checkpoint()
        store_size = store.size_bytes()
        store.close()
    if code == 0:
        s = writer.stats
        print(
            f"claude-top serve: stopped after {time.monotonic() - started:.0f}s; "
            f"{s.exports_committed} exports, {s.rows_committed} rows committed; "
            f"database {_size(store_size)}",
            flush=True,
        )
    return code
