"""The UI attached to a running `claude-top serve`: the receiver outlives the UI, so closing and
reopening the UI loses nothing; the panes read over loopback; Ctrl-S asks the instance."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

import pytest
from uihelpers import settle

from claude_top.commands.ui import attached_app
from claude_top.core.instance import read_instance
from claude_top.demo.ledger import Ledger
from claude_top.demo.sender import DemoSender
from claude_top.ui.panes.header import HeaderBar
from serving import start_serve
from truth import Truth


async def _until_shown(pilot, ledger: Ledger) -> None:
    """Wait until the sessions pane holds every session the sender saw acknowledged (those
    with a prompt or request: the pane folds start-up telemetry alone away)."""
    table = pilot.app.main.table("sessions")
    working = {sid: t for sid, t in ledger.sessions.items() if t.prompts or t.api_requests}
    for _ in range(300):
        await settle(pilot)
        rows = table.rows_by_key
        if set(rows) == set(working) and all(
            rows[sid]["api_requests"] == t.api_requests and rows[sid]["tool_calls"] == t.tool_calls
            for sid, t in working.items()
        ):
            return
        await pilot.pause(0.1)
    shown = {sid: r["api_requests"] for sid, r in table.rows_by_key.items()}
    acked = {sid: t.api_requests for sid, t in working.items()}
    raise AssertionError(f"the UI shows {shown}, the sender had acknowledged {acked}")


def _assert_shows_everything_acknowledged(app, ledger: Ledger, serve_pid: int) -> None:
    table = app.main.table("sessions")
    working = {sid: t for sid, t in ledger.sessions.items() if t.prompts or t.api_requests}
    assert set(table.rows_by_key) == set(working)
    for sid, tally in working.items():
        row = table.rows_by_key[sid]
        assert row["api_requests"] == tally.api_requests
        assert row["cost_usd"] == pytest.approx(tally.cost_usd, abs=1e-9)
        assert row["tool_calls"] == tally.tool_calls
        assert row["tool_errors"] == tally.tool_errors
    requests = sum(t.api_requests for t in ledger.sessions.values())
    subtitle = str(app.main.query_one("#sessions-pane").border_subtitle)
    folded = len(ledger.sessions) - len(working)
    said = f"{len(working)} sessions" + (f" (+{folded} without a prompt yet)" if folded else "")
    assert f"{said} · ${ledger.cost_usd:.4f} · {requests} API" in subtitle
    header = str(app.main.query_one(HeaderBar).render())
    assert f"attached to pid {serve_pid}" in header


async def _the_limits_and_history_come_from_the_instance(pilot, ledger: Ledger) -> None:
    """`l` and `h` read through the instance too (they failed: its reader lacked them)."""
    from claude_top.ui.screens.history import HistoryScreen

    app = pilot.app
    for _ in range(100):
        if app.limits_monitor.state is not None:
            break
        await pilot.pause(0.05)
    assert app.limits_monitor.error is None
    requests = sum(t.api_requests for t in ledger.sessions.values())
    today = app.limits_monitor.state.today.requests  # the demo's clock runs ahead of now
    assert 0 < today <= requests
    await pilot.press("h")
    for _ in range(100):
        await settle(pilot)
        if isinstance(app.screen, HistoryScreen) and app.screen.data is not None:
            break
    assert today <= sum(app.screen.data.history.requests) <= requests
    assert not [n.message for n in app._notifications if "failed" in n.message]
    await pilot.press("escape")
    await settle(pilot)


async def test_closing_and_reopening_the_ui_while_serve_runs_loses_nothing(tmp_path):
    db = tmp_path / "ct.duckdb"
    serve, port = start_serve(db)
    sender = DemoSender(f"127.0.0.1:{port}", seed=11, speed=60, history_s=300)
    try:
        await sender.advance(60)  # acknowledged before any UI is open
        first = sender.ledger.exports
        assert first > 20
        instance = read_instance(str(db))
        assert instance is not None and instance.pid == serve.pid
        app = attached_app(instance)
        assert app.store is None and app.writer is None and app.receivers is None
        async with app.run_test(size=(120, 40)) as pilot:
            await _until_shown(pilot, sender.ledger)
            _assert_shows_everything_acknowledged(app, sender.ledger, serve.pid)
            await _the_limits_and_history_come_from_the_instance(pilot, sender.ledger)
            await pilot.press("q")
        assert app.return_code == 0

        await sender.advance(60)  # while no UI is open: the receiver is serve's
        assert sender.ledger.exports > first
        app = attached_app(read_instance(str(db)))
        app.export_dir = tmp_path / "snaps"
        async with app.run_test(size=(80, 24)) as pilot:
            await _until_shown(pilot, sender.ledger)
            _assert_shows_everything_acknowledged(app, sender.ledger, serve.pid)
            await sender.advance(30)  # and while it is open, the panes follow
            await _until_shown(pilot, sender.ledger)
            await pilot.press("ctrl+s")
            for _ in range(200):
                await pilot.pause(0.05)
                if app.export_dir.exists() and not any(
                    w.group == "export" and not w.is_finished for w in app.workers
                ):
                    break
            (folder,) = app.export_dir.iterdir()
            notes = [n.message for n in app._notifications]
            assert any(f"written to {folder}/" in n for n in notes), notes
            await pilot.press("q")
    finally:
        await sender.close()
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    exports = sender.ledger.exports
    assert f"{exports} exports, " in out.decode()  # serve committed every acknowledged export
    with open(folder / "sessions.csv", newline="") as fh:
        assert {r["session_id"] for r in csv.DictReader(fh)} == set(sender.ledger.sessions)
    with open(folder / "focused-sessions.csv", newline="") as fh:
        working = [t for t in sender.ledger.sessions.values() if t.prompts or t.api_requests]
        assert len(list(csv.DictReader(fh))) == len(working)  # the pane as shown
    assert json.loads((folder / "snapshot.json").read_text())["db"] == str(db)


def _run_in_a_terminal(argv: list[str], until, keys: bytes) -> tuple[int, bytes]:
    """Run `claude-top argv` on a pseudo-terminal (80x24); once `until(what it wrote)` holds,
    type `keys`; returns its exit code and everything it wrote."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_top.cli", *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "xterm-256color"},
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    typed = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not typed and until(seen):
            os.write(master, keys)
            typed = True
        try:
            import select

            ready, _, _ = select.select([master], [], [], 0.2)
            chunk = os.read(master, 65536) if ready else b""
        except OSError:  # the terminal closed: the program ended
            break
        seen += chunk
        if proc.poll() is not None and not chunk:
            break
    else:
        proc.kill()
    code = proc.wait(timeout=30)
    os.close(master)
    return code, seen


def test_claude_top_attaches_to_a_running_serve_instead_of_refusing(tmp_path):
    """`claude-top --db X` while `serve` holds X runs attached (no second receiver), says so
    when it closes, and leaves serve running."""
    db = tmp_path / "held.duckdb"
    serve, _ = start_serve(db)
    try:
        code, seen = _run_in_a_terminal(
            ["--db", str(db)], lambda seen: f"attached to pid {serve.pid}".encode() in seen, b"q"
        )
        assert code == 0, seen[-2000:]
        assert f"detached; the claude-top serve (pid {serve.pid}) keeps receiving".encode() in seen
        assert serve.poll() is None
        assert read_instance(str(db)).pid == serve.pid
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=60)
    assert not Path(f"{db}.instance.json").exists()


def test_quitting_the_ui_says_how_many_exports_were_stored_and_where(tmp_path):
    """The UI hosting the receivers: an OTLP/HTTP sender's exports, then q; the last line says
    how many exports (and records) it stored, and in which database."""
    import threading
    import time
    import urllib.request

    from truth import http_requests

    db = tmp_path / "ui.duckdb"
    requests = http_requests("basic.http-protobuf")
    truth = Truth("basic.http-protobuf")
    records = len(truth.spans) + len(truth.events) + truth.data_points
    sent: list[int] = []

    def send() -> None:
        for _ in range(600):
            instance = read_instance(str(db))
            if instance is not None:
                break
            time.sleep(0.05)
        for r in requests:
            req = urllib.request.Request(instance.http + r["path"], data=r["body"], method="POST")
            req.add_header("Content-Type", r["ctype"])
            with urllib.request.urlopen(req, timeout=10) as resp:
                sent.append(resp.status)

    sender = threading.Thread(target=send)
    sender.start()
    code, seen = _run_in_a_terminal(
        ["--db", str(db), "--grpc-port", "0", "--http-port", "0"],
        lambda seen: len(sent) == len(requests) and b"Sessions" in seen,  # the panes
        b"q",
    )
    sender.join(timeout=30)
    assert sent == [200] * len(requests)
    assert code == 0, seen[-2000:]
    summary = f"claude-top: {len(requests)} exports ({records} records) received and stored in {db}"
    assert summary.encode() in seen
