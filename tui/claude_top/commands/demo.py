"""`claude-top demo`: the UI fed by a `DemoSender` over the real OTLP/gRPC path, or headless:
send for a while through a real receiver, print the ledger, and `verify` that the store shows
what the receiver acknowledged."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import signal
import tempfile
from collections.abc import Awaitable
from typing import Any

from claude_top.commands.common import EXIT_USAGE, fail, open_store, start_writer
from claude_top.core.connect import endpoint_host
from claude_top.demo.ledger import Ledger
from claude_top.demo.sender import DemoSender
from claude_top.demo.verify import verify
from claude_top.receiver.ingest import PortInUse
from claude_top.receiver.server import ReceiverConfig, Receivers


def run_demo_command(args: argparse.Namespace, argv: list[str]) -> int:
    """`claude-top demo` / `claude-top --demo`: fill in the demo's defaults, then `run_demo` in a
    temporary database unless `--db` is given."""
    os.umask(0o077)
    defaults = {"headless": False, "duration": None, "speed": 1.0, "seed": None, "sessions": 4}
    for name, value in defaults.items():  # `claude-top --demo` has only the top-level options
        if not hasattr(args, name):
            setattr(args, name, value)
    for flag, attr in (("--grpc", "grpc_port"), ("--http", "http_port")):
        if not any(a.startswith(flag) for a in argv):
            setattr(args, attr, 0)  # free ports: never another claude-top's
    # the demo's own sender speaks plain gRPC without a token
    args.token = args.tls_cert = args.tls_key = None
    tmp = None
    if args.db is None:
        tmp = tempfile.mkdtemp(prefix="claude-top-demo-")
        args.db = os.path.join(tmp, "demo.duckdb")
    try:
        return run_demo(args, args.db, temporary=tmp is not None)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _sender_options(args) -> dict[str, Any]:
    return {"seed": args.seed, "speed": args.speed, "sessions": args.sessions}


async def _headless(args, store, writer) -> tuple[int, DemoSender | None]:
    rx = Receivers(
        writer,
        ReceiverConfig(
            bind=args.bind,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            max_body=args.max_body,
        ),
    )
    try:
        await rx.start()
    except PortInUse as exc:
        return fail("demo", str(exc)), None
    sender = DemoSender(f"{endpoint_host(args.bind)}:{rx.grpc_port}", **_sender_options(args))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sender.stop)
    ep = rx.endpoints
    until = f"for {args.duration:g} s" if args.duration is not None else "until Ctrl-C"
    print(
        f"claude-top demo: OTLP/gRPC on {ep['grpc']}, OTLP/HTTP on {ep['http']}; sending {until} "
        f"at {args.speed:g}x (seed {sender.seed})",
        flush=True,
    )
    try:
        await sender.run(args.duration)
    finally:
        await rx.stop()
    return 0, sender


def run_demo(args, db_path: str, *, temporary: bool = False) -> int:
    """`claude-top demo`: the UI (or, with --headless, nothing) fed by a DemoSender."""
    if args.headless:
        store = open_store(db_path, "demo")
        if store is None:
            return EXIT_USAGE
        with store.reading() as cur:
            held_data = cur.execute(
                "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM spans) "
                "+ (SELECT count(*) FROM metric_points) > 0"
            ).fetchone()[0]
        writer = start_writer(store, "demo")
        if writer is None:
            return EXIT_USAGE
        try:
            code, sender = asyncio.run(_headless(args, store, writer))
            if sender is None:
                return code
            writer.sync(30.0)
            print(sender.ledger.summary())
            with store.reading() as cur:
                problems = verify(sender.ledger, cur, only_sessions=held_data)
        finally:
            writer.close()
            store.checkpoint()
            store.close()
        where = "a temporary database (removed)" if temporary else db_path
        if problems:
            print("stored totals differ from what was acknowledged:", *problems, sep="\n  ")
            return 1
        print(f"stored in {where}: the same sessions, costs, models and tool calls")
        return 0

    from claude_top.commands.ui import run_app

    host = endpoint_host(args.bind)
    senders: list[DemoSender] = []

    def feed(rx) -> Awaitable[Ledger]:
        sender = DemoSender(f"{host}:{rx.grpc_port}", history_s=90.0, **_sender_options(args))
        senders.append(sender)
        return sender.run(drain=False)

    code = run_app(args, db_path, background=feed, attach=False, transcripts=False)
    gc.collect()  # free the closed store's cursors while duckdb is still loaded
    if senders:
        ledger = senders[0].ledger
        print(
            f"claude-top demo: sent {len(ledger.sessions)} sessions, "
            f"{sum(s.prompts for s in ledger.sessions.values())} prompts, ${ledger.cost_usd:.4f}"
            + (" (temporary database removed)" if temporary else f" into {db_path}")
        )
    return code
