"""`claude-top demo`: the UI fed by a `DemoSender`, or headless: send for a while through a real
receiver, print the ledger, and `verify` that the store shows what the receiver acknowledged."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable
from typing import Any

from claude_top.demo.ledger import Ledger
from claude_top.demo.sender import DemoSender


def verify(ledger: Ledger, cur, *, only_sessions: bool = False) -> list[str]:
    """Differences between what the receiver acknowledged and what `core.queries` shows.

    `only_sessions` checks the sender's sessions alone (for a store that held data before).
    """
    from claude_top.core.queries import Filter, models, sessions, tools

    problems: list[str] = []
    shown = {r["session_id"]: r for r in sessions(cur, Filter())}
    missing = set(ledger.sessions) - set(shown)
    if missing:
        problems.append(f"{len(missing)} sessions sent but not stored: {sorted(missing)}")
    if not only_sessions and set(shown) - set(ledger.sessions):
        problems.append(f"{len(set(shown) - set(ledger.sessions))} sessions stored but not sent")
    for sid, s in ledger.sessions.items():
        r = shown.get(sid)
        if r is None:
            continue
        got = (r["prompts"], r["api_requests"], r["tool_calls"], r["tool_errors"])
        want = (s.prompts, s.api_requests, s.tool_calls, s.tool_errors)
        if got != want or abs(r["cost_usd"] - s.cost_usd) > 1e-9:
            problems.append(
                f"session {sid}: stored {got} ${r['cost_usd']}, sent {want} ${s.cost_usd}"
            )
    if only_sessions:
        return problems
    for r in models(cur, Filter()):
        m = ledger.models.get(r["model"])
        if (
            m is None
            or r["api_requests"] != m.api_requests
            or abs(r["cost_usd"] - m.cost_usd) > 1e-9
        ):
            problems.append(f"model {r['model']}: stored {r['api_requests']} ${r['cost_usd']}")
    for r in tools(cur, Filter()):
        t = ledger.tools.get(r["tool_name"])
        if t is None or (r["calls"], r["errors"]) != (t.calls, t.errors):
            problems.append(
                f"tool {r['tool_name']}: stored {r['calls']} calls, {r['errors']} errors"
            )
    return problems


def _sender_options(args) -> dict[str, Any]:
    return {"seed": args.seed, "speed": args.speed, "sessions": args.sessions}


async def _headless(args, store, writer) -> tuple[int, DemoSender | None]:
    import signal
    import sys

    from claude_top.core.connect import endpoint_host
    from claude_top.receiver.server import PortInUse, ReceiverConfig, Receivers

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
        print(f"claude-top demo: {exc}", file=sys.stderr)
        return 2, None
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
    import sys

    if args.headless:
        from claude_top.core.store.database import Store, StoreError
        from claude_top.core.store.writer import StoreWriter

        try:
            store = Store.open(db_path)
        except StoreError as exc:
            print(f"claude-top demo: {exc}", file=sys.stderr)
            return 2
        with store.reading() as cur:
            held_data = cur.execute(
                "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM spans) "
                "+ (SELECT count(*) FROM metric_points) > 0"
            ).fetchone()[0]
        writer = StoreWriter(store)
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

    from claude_top.core.connect import endpoint_host
    from claude_top.ui.app import run_app

    host = endpoint_host(args.bind)
    senders: list[DemoSender] = []

    def feed(rx) -> Awaitable[Ledger]:
        sender = DemoSender(f"{host}:{rx.grpc_port}", history_s=90.0, **_sender_options(args))
        senders.append(sender)
        return sender.run(drain=False)

    code = run_app(args, db_path, background=feed)
    gc.collect()  # free the closed store's cursors while duckdb is still loaded
    if senders:
        ledger = senders[0].ledger
        print(
            f"claude-top demo: sent {len(ledger.sessions)} sessions, "
            f"{sum(s.prompts for s in ledger.sessions.values())} prompts, ${ledger.cost_usd:.4f}"
            + (" (temporary database removed)" if temporary else f" into {db_path}")
        )
    return code
