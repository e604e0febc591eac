"""UI latency: export acknowledged -> row on screen, and key press -> repaint under ingest.

Runs the real `ClaudeTopApp` headless (`App.run_test`, the Pilot harness) with a real Store,
StoreWriter and Receivers on free ports. Exports come from separate sender processes over
OTLP/gRPC, as Claude Code's would.

1. Event -> visible: a sender sends one export (the basic fixture's spans, fresh ids, a new
   session id, timestamps of now) at a time; the figure is the time from its acknowledgement to
   the first frame the compositor renders with that session's row in it (the frame's text is
   searched for the session's id). A random 0-250 ms gap between samples keeps them out of step
   with the screen's 0.25 s poll.
2. Key press -> repaint: `j`/`k` go to the app's driver exactly as Pilot sends them (without
   Pilot's wait-for-idle); the figure is the time from the key event to the first frame rendered
   after the table's cursor moved. Measured with no traffic, then while a background sender
   holds a steady ingest rate (default 10k spans/s in exports of 512 spans).

    python bench/ui_latency.py [--samples 100] [--keys 100] [--rate 10000] [--size 120x40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import TRACE_METHOD, fixture_requests

PROBE_PREFIX = "p"


# --- senders (separate processes) -------------------------------------------------------------


def _fresh_trace(template, session_id: str | None, rng: random.Random, now_ns: int) -> bytes:
    """The template's spans with fresh ids, ending at `now_ns`, in `session_id` if given."""
    spans = template.resource_spans[0].scope_spans[0].spans
    shift = now_ns - max(s.end_time_unix_nano for s in spans)
    trace_id = rng.randbytes(16)
    ids = {s.span_id: rng.randbytes(8) for s in spans}
    for s in spans:
        s.trace_id = trace_id
        s.span_id = ids[s.span_id]
        if s.parent_span_id in ids:
            s.parent_span_id = ids[s.parent_span_id]
        s.start_time_unix_nano += shift
        s.end_time_unix_nano += shift
        if session_id is not None:
            for kv in s.attributes:
                if kv.key == "session.id":
                    kv.value.string_value = session_id
    return template.SerializeToString()


def run_probe_sender(port: int) -> None:
    """Read session ids from stdin; send one export for each; print `id ack_monotonic`."""
    import grpc

    template = fixture_requests("traces", ("basic.grpc.jsonl",))[0]
    rng = random.Random(11)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(TRACE_METHOD)
        for line in sys.stdin:
            session_id = line.strip()
            body = _fresh_trace(template, session_id, rng, time.time_ns())
            while True:
                try:
                    export(body, timeout=30)
                    break
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    time.sleep(0.05)
            print(session_id, time.monotonic(), flush=True)


async def _load(port: int, rate: float, batch: int, sessions: int) -> None:
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    fixture = fixture_requests("traces", ("basic.grpc.jsonl",))[0]
    spans = list(fixture.resource_spans[0].scope_spans[0].spans)
    template = ExportTraceServiceRequest()
    rs = template.resource_spans.add()
    rs.resource.CopyFrom(fixture.resource_spans[0].resource)
    ss = rs.scope_spans.add()
    ss.scope.CopyFrom(fixture.resource_spans[0].scope_spans[0].scope)
    for i in range(batch):
        ss.spans.add().CopyFrom(spans[i % len(spans)])
    rng = random.Random(5)
    session_ids = [f"load-{i:03d}-{rng.getrandbits(48):012x}" for i in range(sessions)]
    for i, s in enumerate(ss.spans):
        for kv in s.attributes:
            if kv.key == "session.id":
                kv.value.string_value = session_ids[i % sessions]
    interval = batch / rate
    in_flight = asyncio.Semaphore(8)
    sent = retries = 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closes our stdin to stop us
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(TRACE_METHOD)

        async def send(body: bytes) -> None:
            nonlocal sent, retries
            try:
                while True:
                    try:
                        await export(body, timeout=30)
                        sent += batch
                        return
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.UNAVAILABLE:
                            raise
                        retries += 1
                        await asyncio.sleep(0.05)
            finally:
                in_flight.release()

        started = time.monotonic()
        tasks = set()
        n = 0
        while not stop.is_set():
            await in_flight.acquire()
            body = _fresh_trace(template, None, rng, time.time_ns())
            task = asyncio.create_task(send(body))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            delay = started + n * interval - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.monotonic() - started
    print(f"{sent} {elapsed} {retries}", flush=True)


def run_load_sender(port: int, rate: float, batch: int) -> None:
    """Send spans at `rate` per second (fresh ids, 8 sessions) until stdin closes."""
    asyncio.run(_load(port, rate, batch, 8))


# --- the app under test -----------------------------------------------------------------------


def pct(samples: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of `samples`."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


class Probe:
    """Frame hook: records when the compositor renders and what a waiter is looking for."""

    def __init__(self, app) -> None:
        self.app = app
        self.frames = 0
        self.waiter = None
        original = app._display

        def display(screen, update) -> None:
            original(screen, update)
            if update is None:
                return
            now = time.monotonic()
            self.frames += 1
            if self.waiter is not None:
                self.waiter(now, update)

        app._display = display

    def text(self, update) -> str:
        return update.render_segments(self.app.console)


async def measure_visible(app, probe: Probe, port: int, samples: int, warmup: int = 3):
    """Ack -> row painted, for `samples` new sessions sent one at a time."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sender", "probe", "--port", str(port),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    rng = random.Random(3)
    visible: list[float] = []
    indexed: list[float] = []
    timeouts = 0
    table = app.main.table("sessions")
    try:
        for i in range(warmup + samples):
            session_id = f"{PROBE_PREFIX}{i:07d}-{rng.getrandbits(64):016x}"
            short = session_id[:8]
            painted: list[float] = []
            done = asyncio.Event()

            def waiter(now, update, session_id=session_id, short=short, painted=painted, done=done):
                if session_id in table.rows_by_key and short in probe.text(update):
                    painted.append(now)
                    probe.waiter = None
                    done.set()

            # Watch from the top, as someone waiting for new sessions does: with the cursor on
            # a lower row the view scrolls with it and new sessions arrive above the view.
            if table.row_count:
                table.move_cursor(row=0, animate=False)
                table.scroll_home(animate=False, immediate=True)
            probe.waiter = waiter
            proc.stdin.write(f"{session_id}\n".encode())
            await proc.stdin.drain()
            acked = float((await proc.stdout.readline()).split()[1])
            await asyncio.to_thread(app.writer.sync)
            synced = time.monotonic()
            try:
                await asyncio.wait_for(done.wait(), 10)
            except TimeoutError:
                timeouts += 1
                probe.waiter = None
                continue
            if i >= warmup:
                visible.append((painted[0] - acked) * 1000)
                indexed.append((synced - acked) * 1000)
            await asyncio.sleep(rng.uniform(0, 0.25))
    finally:
        proc.stdin.close()
        await proc.wait()
    return visible, indexed, timeouts


async def measure_keys(app, probe: Probe, presses: int) -> tuple[list[float], list[float]]:
    """Key event -> the table's cursor action ran, and -> the first frame rendered after it,
    `presses` times."""
    from textual import events

    table = app.main.table("sessions")
    app.main.set_focus(table)
    rng = random.Random(9)
    handled: list[float] = []
    painted: list[float] = []
    state: dict[str, float] = {}
    for name in ("action_cursor_down", "action_cursor_up"):
        action = getattr(table, name)

        def timed(action=action) -> None:
            action()
            state.setdefault("handled", time.monotonic())

        setattr(table, name, timed)
    try:
        for _ in range(presses):
            await asyncio.sleep(rng.uniform(0.05, 0.15))
            row = table.cursor_row
            down = (row < min(table.row_count - 1, 6) and rng.random() < 0.6) or row == 0
            state.clear()
            done = asyncio.Event()

            def waiter(now, update, done=done):
                if "handled" in state:
                    state["paint"] = now
                    probe.waiter = None
                    done.set()

            probe.waiter = waiter
            key = "j" if down else "k"
            event = events.Key(key, key)
            event.set_sender(app)
            sent = time.monotonic()
            app._driver.send_message(event)
            try:
                await asyncio.wait_for(done.wait(), 10)
            except TimeoutError:
                probe.waiter = None
                continue
            handled.append((state["handled"] - sent) * 1000)
            painted.append((state["paint"] - sent) * 1000)
    finally:
        for name in ("action_cursor_down", "action_cursor_up"):
            delattr(table, name)
    return handled, painted


def keys_line(handled: list[float], painted: list[float]) -> None:
    print(f"  repainted  p50 {pct(painted, .5):6.1f} ms   p95 {pct(painted, .95):6.1f} ms   "
          f"max {max(painted):6.1f} ms")  # fmt: skip
    print(f"  handled    p50 {pct(handled, .5):6.1f} ms   p95 {pct(handled, .95):6.1f} ms   "
          f"max {max(handled):6.1f} ms   (key event -> cursor action ran)")  # fmt: skip


async def bench(args) -> None:
    from claude_top.core.store.database import Store
    from claude_top.core.store.writer import StoreWriter
    from claude_top.receiver.server import ReceiverConfig, Receivers
    from claude_top.ui import data as ui_data
    from claude_top.ui.app import ClaudeTopApp
    from claude_top.ui.screens import main as main_screen

    refresh_ms: list[float] = []
    original_load = ui_data.load_main

    def timed_load(source, q):
        out = original_load(source, q)
        refresh_ms.append(out.elapsed_ms)
        return out

    main_screen.load_main = timed_load

    tmp = tempfile.TemporaryDirectory()
    store = Store.open(os.path.join(tmp.name, "ui.duckdb"))
    writer = StoreWriter(store)
    receivers = Receivers(writer, ReceiverConfig(grpc_port=0, http_port=0))
    app = ClaudeTopApp(store, writer, receivers)
    probe = Probe(app)
    width, height = (int(x) for x in args.size.split("x"))
    load_out = None
    async with app.run_test(size=(width, height)) as pilot:
        while getattr(app, "main", None) is None or not receivers.grpc_port:
            await pilot.pause(0.05)
        port = receivers.grpc_port

        visible, indexed, timeouts = await measure_visible(app, probe, port, args.samples)
        print(f"event -> visible     {len(visible)} new sessions, one export each over gRPC "
              f"({timeouts} not shown within 10 s)")  # fmt: skip
        print(f"  ack -> row painted  p50 {pct(visible, .5):5.0f} ms   p95 {pct(visible, .95):5.0f}"
              f" ms   p99 {pct(visible, .99):5.0f} ms   max {max(visible):5.0f} ms")  # fmt: skip
        print(f"  ack -> indexed      p50 {pct(indexed, .5):5.0f} ms   p95 {pct(indexed, .95):5.0f}"
              f" ms   p99 {pct(indexed, .99):5.0f} ms   (queryable; the rest is poll + query"
              " + paint)")  # fmt: skip

        refresh_ms.clear()
        idle_handled, idle_keys = await measure_keys(app, probe, args.keys)
        idle_refresh = list(refresh_ms)
        print(f"key -> repaint, idle {len(idle_keys)} presses of j/k on the sessions table")
        keys_line(idle_handled, idle_keys)
        if idle_refresh:
            print(f"  refresh queries: {len(idle_refresh)}, p50 {pct(idle_refresh, 0.5):.0f} ms")

        loader = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--sender", "load", "--port", str(port),
            "--rate", str(args.rate), "--batch", str(args.batch),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(args.settle)
        rows0, t0 = writer.stats.rows_committed, time.monotonic()
        indexed0 = writer.stats.rows_indexed
        refresh_ms.clear()
        backlog_max = 0

        async def watch_backlog() -> None:
            nonlocal backlog_max
            while True:
                backlog_max = max(backlog_max, writer.stats.backlog_rows)
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch_backlog())
        load_handled, load_keys = await measure_keys(app, probe, args.keys)
        watcher.cancel()
        elapsed = time.monotonic() - t0
        rate = (writer.stats.rows_committed - rows0) / elapsed
        indexed = (writer.stats.rows_indexed - indexed0) / elapsed
        load_refresh = list(refresh_ms)
        loader.stdin.close()
        load_out = (await loader.stdout.read()).decode().split()
        await loader.wait()
        print(f"key -> repaint, ingesting {len(load_keys)} presses while a sender targets "
              f"{args.rate:,.0f} spans/s")  # fmt: skip
        keys_line(load_handled, load_keys)
        print(f"  ingest during the presses: {rate:,.0f} spans/s acked, {indexed:,.0f} spans/s "
              f"indexed, backlog max {backlog_max:,} rows")  # fmt: skip
        if load_refresh:
            print(
                f"  refresh queries: {len(load_refresh)} in {elapsed:.1f} s, p50 "
                f"{pct(load_refresh, 0.5):.0f} ms, p95 {pct(load_refresh, 0.95):.0f} ms"
            )
        if load_out:
            sent, secs, retries = int(load_out[0]), float(load_out[1]), int(load_out[2])
            print(f"  sender: {sent / secs:,.0f} spans/s acked over {secs:.1f} s, "
                  f"{retries} retries")  # fmt: skip
        await pilot.press("q")
    writer.close()
    store.close()
    app.store = app.writer = app.receivers = None  # as run_app does: no DuckDB objects at exit
    tmp.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--samples", type=int, default=100, help="new sessions to time")
    ap.add_argument("--keys", type=int, default=100, help="key presses to time (each phase)")
    ap.add_argument("--rate", type=float, default=10_000, help="background spans/s")
    ap.add_argument("--batch", type=int, default=512, help="spans per background export")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds of load before timing")
    ap.add_argument("--size", default="120x40", help="terminal size, COLSxROWS")
    ap.add_argument("--sender", choices=("probe", "load"), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sender == "probe":
        run_probe_sender(args.port)
    elif args.sender == "load":
        run_load_sender(args.port, args.rate, args.batch)
    else:
        load = os.getloadavg()[0]
        print(f"machine              {os.cpu_count()} CPUs, load average {load:.2f} before the run")
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
