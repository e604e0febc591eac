"""Regenerate the README screenshots: the real app, real receivers, the real fixtures over gRPC.

    python screenshots/generate.py [--fixtures DIR] [--out DIR]

Starts claude-top's app with its receivers (on 4317/4318 when free), replays the captured
Claude Code exports (`tests/fixtures/claude-code-2.1.328/*.grpc.jsonl`) to it over
OTLP/gRPC, then saves SVG screenshots: the four-pane view, the span tree of the turn with the
failing Bash, the tabbed view at 80x24, the tools tab in a 60-column split, and the connect
screen. "Now" is pinned to just after the captures so ages read as they did live.

Then the same with the Gemini CLI and Codex CLI captures sent beside Claude Code's (they were
made 13 days later; "now" is pinned after them, window "all"): the mixed-agent session list
and Codex's folded span tree.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
from pathlib import Path

import grpc

from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.server import ReceiverConfig, Receivers
from claude_top.ui.app import ClaudeTopApp
from claude_top.ui.screens.spantree import SpanTree

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures" / "claude-code-2.1.328"
REPLAY = ("basic.grpc", "errors.grpc", "continued.grpc")
OTHER_AGENTS = (
    HERE.parent / "tests" / "fixtures" / "gemini-cli-0.61.0" / "basic.grpc.jsonl",
    HERE.parent / "tests" / "fixtures" / "codex-cli-0.169.0" / "basic.grpc.jsonl",
)
AFTER_OTHER_AGENTS_NS = 1_796_452_600 * 1_000_000_000
"""2026-12-05 06:36:40 UTC: a minute after the Codex CLI capture."""
CODEX_SESSION = "01a244ea-6136-7851-97d5-6ad90ba44d72"
NOW_NS = 1_795_310_980 * 1_000_000_000
"""27 s after the last captured event (2026-11-22 01:29:40 UTC)."""
ERRORS_SESSION = "a81f7f10-c25a-48a3-a14c-e3d66aa434bc"
SERVICES = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}


def captured(fixtures: Path, name: str) -> list[tuple[str, bytes]]:
    """(signal, protobuf body) of each export in a gRPC capture."""
    lines = (fixtures / f"{name}.jsonl").read_text().splitlines()
    return [(d["kind"], base64.b64decode(d["pb"])) for d in map(json.loads, filter(None, lines))]


async def replay(port: int, fixtures: Path, others: tuple[Path, ...] = ()) -> None:
    paths = [fixtures / f"{name}.jsonl" for name in REPLAY] + list(others)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        for path in paths:
            for signal, body in captured(path.parent, path.name.removesuffix(".jsonl")):
                await channel.unary_unary(SERVICES[signal])(body, timeout=10)


async def settle(pilot) -> None:
    """Until the screen has loaded and applied its data."""
    for _ in range(400):
        await pilot.pause(0.02)
        if not getattr(pilot.app.screen, "busy", False):
            await pilot.pause(0.1)
            return
    raise RuntimeError(f"{type(pilot.app.screen).__name__} did not finish loading")


async def wait_for_rows(pilot, want: int) -> None:
    table = pilot.app.main.table("sessions")
    for _ in range(400):
        if table.row_count >= want:
            return
        await pilot.pause(0.05)
    raise RuntimeError("the replayed sessions never showed up")


def free(port: int) -> int:
    """`port` if nothing listens on it (the screenshots then show the defaults), else 0."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def walk(node):
    """Every node under a Tree node, depth first."""
    for child in node.children:
        yield child
        yield from walk(child)


def live_app(
    store: Store, window: str = "24h", now_ns: int = NOW_NS
) -> tuple[ClaudeTopApp, StoreWriter]:
    writer = StoreWriter(store)
    receivers = Receivers(writer, ReceiverConfig(grpc_port=free(4317), http_port=free(4318)))
    app = ClaudeTopApp(
        store,
        writer,
        receivers,
        db_path="~/.local/share/claude-top/claude-top.duckdb",
        window=window,
        clock=lambda: now_ns,
    )
    return app, writer


async def shoot(out: Path, fixtures: Path) -> list[Path]:
    saved: list[Path] = []

    def save(app: ClaudeTopApp, name: str) -> None:
        path = out / f"{name}.svg"
        app.save_screenshot(str(path))
        saved.append(path)

    store = Store.open(":memory:")
    app, writer = live_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await replay(app.receivers.grpc_port, fixtures)
        await wait_for_rows(pilot, 3)  # the fourth session sent start-up telemetry only
        await settle(pilot)
        app.main.table("sessions").select_key(ERRORS_SESSION)
        await settle(pilot)
        save(app, "main-120x40")

        await pilot.press("1", "enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        tree = app.screen.query_one(SpanTree)
        failing = next(n for n in walk(tree.root) if n.data is not None and n.data.is_error)
        tree.move_cursor(failing)
        await pilot.pause(0.1)
        save(app, "span-tree-120x40")
        await pilot.press("escape", "escape")
        await settle(pilot)

        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        await pilot.press("1")
        await pilot.pause(0.1)
        save(app, "narrow-80x24")

        await pilot.resize_terminal(60, 24)
        await pilot.press("2")
        await settle(pilot)
        save(app, "narrow-60x24-tools")
        await pilot.press("q")
    writer.close()
    store.close()

    store = Store.open(":memory:")
    app, writer = live_app(store, window="all", now_ns=AFTER_OTHER_AGENTS_NS)
    async with app.run_test(size=(120, 40)) as pilot:
        await replay(app.receivers.grpc_port, fixtures, OTHER_AGENTS)
        await wait_for_rows(pilot, 5)
        await settle(pilot)
        app.main.table("sessions").select_key(CODEX_SESSION)
        await settle(pilot)
        save(app, "mixed-agents-120x40")
        await pilot.press("4", "enter")
        await settle(pilot)
        save(app, "span-tree-codex-120x40")
        await pilot.press("q")
    writer.close()
    store.close()

    store = Store.open(":memory:")
    app, writer = live_app(store)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        save(app, "connect-100x30")
        await pilot.press("q")
    writer.close()
    store.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    for path in asyncio.run(shoot(args.out, args.fixtures)):
        print(path)


if __name__ == "__main__":
    main()
