"""Regenerate the README screenshots: the real app, real receivers, the real fixtures over gRPC.

    python screenshots/generate.py [--fixtures DIR] [--out DIR]

Starts claude-top's app with its receivers (on 4317/4318 when free), replays the captured
Claude Code exports (`tests/fixtures/claude-code-2.1.328/*.grpc.jsonl`) to it over
OTLP/gRPC, then saves SVG screenshots: the four-pane view, the span tree of the turn with the
failing Bash, a tool's calls, the tabbed view at 80x24, the tools tab in a 60-column split, the
help, and the connect screen. "Now" is pinned to just after the captures so ages read as they
did live. Then the demo's synthetic telemetry (a fixed seed and clock: three models) sorted by
cost, at 120x40 and 200x50.

Then the plan limits: the interactive capture (`statusline/limits.grpc.jsonl`) replayed the same
way and its status-line samples handed to the receivers as `claude-top statusline` hands them
(each with the time it arrived), "now" 12 s after the last: the main view with the limits strip,
the limits view (`l`) and the cost history (`h`), at 120x40 and 80x24. Local time is UTC.

Then the same with the Gemini CLI and Codex CLI captures sent beside Claude Code's (they were
made 13 days later; "now" is pinned after them, window "all"): the mixed-agent session list
and Codex's folded span tree.

Then history from transcripts: the three transcript runs' `projects` trees imported and followed
(telemetry off for two of them), the first run's OTLP sent beside its transcript (window all,
"now" a minute after the last line): which sessions are known from transcripts only, and one of
them opened.

Then, with the `test` extra (chdb), the team view: a team's ClickHouse as the collector's
exporter fills it (`tests/clickhouse_synthetic.py`: 200,000 events of 400 sessions by 200 people
in 4 teams over two days, "now" at their end) with claude-top's typed tables and rollups, at
120x40, grouped by team (`u`), and at 80x24.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import time
import urllib.request
from pathlib import Path

import grpc

from claude_top.core.store.database import Store
from claude_top.core.store.tail import TranscriptTail
from claude_top.core.store.writer import StoreWriter
from claude_top.demo.sender import DemoSender
from claude_top.receiver.server import ReceiverConfig, Receivers
from claude_top.ui.app import ClaudeTopApp
from claude_top.ui.screens.spantree import SpanTree

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures" / "claude-code-2.1.328"
REPLAY = ("basic.grpc", "errors.grpc", "continued.grpc")
LIMITS = "statusline/limits.grpc"
OTHER_AGENTS = (
    HERE.parent / "tests" / "fixtures" / "gemini-cli-0.61.0" / "basic.grpc.jsonl",
    HERE.parent / "tests" / "fixtures" / "codex-cli-0.169.0" / "basic.grpc.jsonl",
)
AFTER_OTHER_AGENTS_NS = 1_796_452_600 * 1_000_000_000
"""2026-12-05 06:36:40 UTC: a minute after the Codex CLI capture."""
CODEX_SESSION = "01a244ea-6136-7851-97d5-6ad90ba44d72"
TEAM_NOW_NS = 1_796_500_000 * 1_000_000_000
"""The team view's "now": the end of its two days of generated telemetry."""
TRANSCRIPT_RUNS = ("basic", "errors", "continued")
"""`transcripts/<run>/projects` beside `transcripts/<run>.grpc.jsonl`."""
AFTER_TRANSCRIPTS_NS = 1_796_449_575 * 1_000_000_000
"""2026-12-05 05:46:15 UTC: a minute after the last transcript line."""
NOW_NS = 1_795_310_980 * 1_000_000_000
"""27 s after the last captured event (2026-11-22 01:29:40 UTC)."""
ERRORS_SESSION = "a81f7f10-c25a-48a3-a14c-e3d66aa434bc"
DEMO_SEED = 17
DEMO_START_NS = 1_796_400_000 * 1_000_000_000
DEMO_SECONDS = 420
"""The demo screenshots: seven minutes of the seed's sessions, "now" right after them."""
SERVICES = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}


def captured(fixtures: Path, name: str) -> list[tuple[str, bytes]]:
    """(signal, protobuf body) of each export in a gRPC capture."""
    lines = (fixtures / f"{name}.jsonl").read_text().splitlines()
    return [(d["kind"], base64.b64decode(d["pb"])) for d in map(json.loads, filter(None, lines))]


def samples(fixtures: Path) -> list[dict]:
    """The captured status-line samples as the shim hands them over, each with when it arrived
    (the capture keeps no arrival times: 299 s before its prompt cache expires; the first one
    at the first export, as `tests/truth.py` derives them)."""
    lines = (fixtures / "statusline" / "limits.statusline.jsonl").read_text().splitlines()
    first = int(json.loads((fixtures / f"{LIMITS}.jsonl").read_text().splitlines()[0])["t"]) + 1
    out = []
    for text in filter(None, lines):
        expires = (json.loads(text).get("prompt_cache") or {}).get("expires_at")
        out.append({"received_ns": ((expires - 299) if expires else first) * 10**9, "text": text})
    return out


def hand_over(http_port: int, items: list[dict]) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/claude-top/v1/statusline",
        data=json.dumps({"samples": items}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["stored"] == len(items)


async def replay(port: int, fixtures: Path, names=REPLAY, others: tuple[Path, ...] = ()) -> None:
    paths = [fixtures / f"{name}.jsonl" for name in names] + list(others)
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
    for _ in range(1200):
        if table.row_count >= want:
            return
        await pilot.pause(0.05)
    raise RuntimeError(f"the replayed sessions never showed up ({table.row_count} of {want})")


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
    store: Store, now_ns: int = NOW_NS, window: str = "24h", transcripts=None
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
        transcripts=transcripts,
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
        await wait_for_rows(pilot, 3)  # the 4th session sent start-up telemetry only
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

        await pilot.press("2")
        app.main.table("tools").select_key("Bash")
        await pilot.press("enter")
        await settle(pilot)
        save(app, "tool-calls-120x40")
        await pilot.press("escape")
        await settle(pilot)

        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        await pilot.press("1")
        await pilot.pause(0.1)
        save(app, "narrow-80x24")

        await pilot.press("question_mark")
        await pilot.pause(0.2)
        save(app, "help-80x24")
        await pilot.press("escape")

        await pilot.resize_terminal(60, 24)
        await pilot.press("2")
        await settle(pilot)
        save(app, "narrow-60x24-tools")
        await pilot.press("q")
    writer.close()
    store.close()

    store = Store.open(":memory:")
    end_ns = DEMO_START_NS + DEMO_SECONDS * 1_000_000_000
    app, writer = live_app(store, now_ns=end_ns + 2_000_000_000)
    async with app.run_test(size=(120, 40)) as pilot:
        sender = DemoSender(
            f"127.0.0.1:{app.receivers.grpc_port}", seed=DEMO_SEED, start_ns=DEMO_START_NS
        )
        await sender.advance(DEMO_SECONDS)
        await sender.close()
        working = [t for t in sender.ledger.sessions.values() if t.prompts or t.api_requests]
        await wait_for_rows(pilot, len(working))  # start-up-only sessions are folded away
        await settle(pilot)
        await pilot.press("1", "s", "s")  # last -> status -> cost
        await settle(pilot)
        save(app, "demo-by-cost-120x40")
        await pilot.resize_terminal(200, 50)
        await settle(pilot)
        save(app, "demo-by-cost-200x50")
        await pilot.press("q")
    writer.close()
    store.close()

    store = Store.open(":memory:")
    app, writer = live_app(store, window="all", now_ns=AFTER_OTHER_AGENTS_NS)
    async with app.run_test(size=(120, 40)) as pilot:
        await replay(app.receivers.grpc_port, fixtures, others=OTHER_AGENTS)
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
    roots = [fixtures / "transcripts" / run / "projects" for run in TRANSCRIPT_RUNS]
    tail = TranscriptTail(store, roots, notify=False)
    app, writer = live_app(store, AFTER_TRANSCRIPTS_NS, "all", tail)
    async with app.run_test(size=(120, 40)) as pilot:
        await replay(app.receivers.grpc_port, fixtures, ("transcripts/basic.grpc",))
        await wait_for_rows(pilot, 3)
        await settle(pilot)
        await pilot.pause(1.0)  # the OTLP indexed after the import: one row says both
        await settle(pilot)
        save(app, "transcripts-120x40")
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        save(app, "transcripts-80x24")
        await pilot.press("enter")
        await settle(pilot)
        save(app, "transcript-session-80x24")
        await pilot.press("q")
    tail.close()
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

    items = samples(fixtures)
    at = items[-1]["received_ns"] + 12 * 10**9
    store = Store.open(":memory:")
    app, writer = live_app(store, at, "all")
    async with app.run_test(size=(120, 40)) as pilot:
        await replay(app.receivers.grpc_port, fixtures, (*REPLAY, LIMITS))
        await asyncio.to_thread(hand_over, app.receivers.http_port, items)
        await wait_for_rows(pilot, 4)
        await settle(pilot)
        await pilot.pause(1.5)  # the limits load after the samples
        for size in ((120, 40), (80, 24)):
            name = f"{size[0]}x{size[1]}"
            await pilot.resize_terminal(*size)
            await settle(pilot)
            save(app, f"limits-strip-{name}")
            await pilot.press("l")
            await pilot.pause(0.5)
            save(app, f"limits-{name}")
            await pilot.press("escape")
            await pilot.press("h")
            await settle(pilot)
            save(app, f"history-{name}")
            await pilot.press("escape")
        await pilot.press("q")
    writer.close()
    store.close()
    saved += await shoot_team(out)
    return saved


async def shoot_team(out: Path) -> list[Path]:
    """The team view over chdb (skipped without the `test` extra)."""
    try:
        import chdb  # noqa: F401
    except ImportError:
        print("team view: no chdb (pip install -e '.[test]'), not shot")
        return []
    import sys

    sys.path.insert(0, str(HERE.parent / "tests"))
    import clickhouse_rows as cr
    import clickhouse_synthetic as synthetic
    from claude_top.core.queries.clickhouse import ChdbRunner, ClickHouseSource
    from claude_top.core.queries.clickhouse.tables import statements

    session, db = cr.session(), "team"
    span_s, n = 2 * 86400, 200_000
    synthetic.build(session, n, "current", db, start_ns=TEAM_NOW_NS - span_s * 10**9, span_s=span_s)
    for _, sql in statements(ClickHouseSource(ChdbRunner(session, db), db).layout):
        session.query(sql)
    source = ClickHouseSource(ChdbRunner(session, db), f"clickhouse://lead@clickhouse:8123/{db}")
    app = ClaudeTopApp(None, source=source, window="24h", clock=lambda: TEAM_NOW_NS)
    saved = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.save_screenshot(str(out / "team-120x40.svg"))
        saved.append(out / "team-120x40.svg")
        for _ in range(4):  # user.email, organization.id, stage, team
            await pilot.press("u")
            await settle(pilot)
        app.save_screenshot(str(out / "team-by-team-120x40.svg"))
        saved.append(out / "team-by-team-120x40.svg")
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        app.save_screenshot(str(out / "team-by-team-80x24.svg"))
        saved.append(out / "team-by-team-80x24.svg")
        await pilot.press("q")
    return saved


def main() -> None:
    os.environ["TZ"] = "UTC"  # the limits' and history's clock times and dates
    time.tzset()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    for path in asyncio.run(shoot(args.out, args.fixtures)):
        print(path)


if __name__ == "__main__":
    main()
