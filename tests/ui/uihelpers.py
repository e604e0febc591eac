"""Helpers for the UI tests: a pinned clock, deterministic receive times, waiting for refreshes."""

from __future__ import annotations

import contextlib

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from textual.worker import WorkerCancelled

from claude_top.core.store import rollup
from claude_top.core.store.database import Store
from claude_top.ui.app import ClaudeTopApp
from truth import grpc_requests

NOW_NS = 1_795_310_980 * 1_000_000_000
"""2026-11-22 01:29:40 UTC: 27 s after the last fixture event. Sessions that sent telemetry
in the minute before (the continued one) are active, the others idle."""


AFTER_CAPTURES_NS = 1_796_452_600 * 1_000_000_000
"""2026-12-05 06:36:40 UTC: a minute after the Codex CLI capture, 11 s after Gemini CLI's,
13 days after Claude Code's."""


def pin_received(store: Store) -> Store:
    """Make `received_ns` the telemetry's own time, so the header's "last export" is fixed."""
    cur = store.cursor()
    cur.execute("UPDATE events SET received_ns = time_ns")
    cur.execute("UPDATE spans SET received_ns = coalesce(end_ns, start_ns)")
    cur.execute("UPDATE metric_points SET received_ns = time_ns")
    rollup.build(cur)  # rows changed behind the writer's back: recompute what sums them
    cur.close()
    return store


def relabelled_logs(fixture: str, session_id: str, shift_s: int) -> list[bytes]:
    """A fixture's log exports as another session (or a later run of the same), shifted in time."""
    out = []
    for signal, body in grpc_requests(fixture):
        if signal != "logs":
            continue
        req = ExportLogsServiceRequest.FromString(body)
        for rl in req.resource_logs:
            for sl in rl.scope_logs:
                for rec in sl.log_records:
                    rec.time_unix_nano += shift_s * 1_000_000_000
                    rec.observed_time_unix_nano += shift_s * 1_000_000_000
                    for kv in rec.attributes:
                        if kv.key == "session.id":
                            kv.value.string_value = session_id
        out.append(req.SerializeToString())
    return out


def make_app(store: Store, **kw) -> ClaudeTopApp:
    """The app over `store`, window "all", "now" pinned to NOW_NS."""
    kw.setdefault("window", "all")
    kw.setdefault("clock", lambda: NOW_NS)
    return ClaudeTopApp(store, **kw)


async def settle(pilot, rounds: int = 200) -> None:
    """Wait until the current screen has loaded and applied its data."""
    app = pilot.app
    for _ in range(rounds):
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()
        if not getattr(app.screen, "busy", False):
            await pilot.pause()
            return
    raise AssertionError(f"{type(app.screen).__name__} never finished loading")


def shown(table, key: str, column: str) -> str:
    """The text a DataTable cell displays."""
    return table.get_cell(key, column).plain
