"""`claude-top statusline` and `claude-top status` against a real `claude-top serve` process.

The captured status-line samples go through the shim (`run_statusline`, with the clock pinned to
when each arrived during the capture: by today's clock their 5-hour window has reset) to a
`serve` that holds the capture's telemetry; `status --json` (from the running instance, then from
the file once it stopped) must say what the samples and the OTLP records say. The shim's own
process is run too: with no claude-top (the sample is spooled and taken in at the next start),
with bad input, a claude-top that never answers, and a previous status line to chain.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from receiver_harness import SERVICES

from claude_top.commands.statusline import run_statusline
from truth import STATUSLINE_CAPTURE, api_request_records, grpc_requests, statusline_samples

S = 10**9
SAMPLES = statusline_samples()
AT = SAMPLES[-1][0] // S + 12
LISTENING = re.compile(r"OTLP/gRPC on 127\.0\.0\.1:(\d+), OTLP/HTTP on http://127\.0\.0\.1:(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """Where spools and chained outputs go, for this process and the ones it starts."""
    for key, sub in (("XDG_DATA_HOME", "data"), ("XDG_RUNTIME_DIR", "run")):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(key, str(tmp_path / sub))
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("CLAUDE_TOP_TOKEN", raising=False)
    time.tzset()
    yield {**os.environ, "PYTHONUNBUFFERED": "1", "CLAUDE_TOP_DEBUG": "1"}
    monkeypatch.undo()
    time.tzset()


class Serve:
    def __init__(self, env: dict, db: Path, http_port: int = 0, *extra: str) -> None:
        self.log = db.with_suffix(".log")
        args = ["serve", "--db", str(db), "--grpc-port", "0", "--http-port", str(http_port)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "claude_top.cli", *args, *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 60
        while not (m := LISTENING.search(self.log.read_text())):
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)
        self.grpc_port, self.http_port = int(m[1]), int(m[2])

    def replay(self, name: str) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            for signal_name, body in grpc_requests(name):
                channel.unary_unary(SERVICES[signal_name])(body, timeout=10)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(30) == 0, self.log.read_text()


def cli(env: dict, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    if args[0] == "statusline" and "--budget-ms" not in args:
        # what the line says, not how fast: a loaded test machine starts Python slowly
        args = (*args, "--budget-ms", "5000")
    return subprocess.run(
        [sys.executable, "-m", "claude_top.cli", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
    )


def shim_args(port: int, **kw) -> argparse.Namespace:
    return argparse.Namespace(
        http_port=port,
        host="127.0.0.1",
        token=kw.get("token"),
        chain=kw.get("chain"),
        budget_ms=kw.get("budget_ms", 2000),
    )


class _Stdin(io.BytesIO):
    def fileno(self):  # not selectable: read whole
        raise OSError


def pipe_through_shim(port: int, received_ns: int, text: str, **kw) -> str:
    out = io.StringIO()
    code = run_statusline(
        shim_args(port, **kw), stdin=_Stdin(text.encode()), stdout=out, clock=lambda: received_ns
    )
    assert code == 0
    return out.getvalue()


def test_the_real_samples_through_the_shim_then_status_from_instance_and_file(env, tmp_path):
    db = tmp_path / "claude-top.duckdb"
    serve = Serve(env, db)
    try:
        serve.replay(STATUSLINE_CAPTURE)
        lines = [pipe_through_shim(serve.http_port, r, t) for r, t, _ in SAMPLES]
        live = cli(env, "status", "--db", str(db), "--json", "--at", str(AT))
        by_port = cli(env, "status", "--http-port", str(serve.http_port), "--json", "--at", str(AT))
    finally:
        serve.stop()
    from_file = cli(env, "status", "--db", str(db), "--json", "--at", str(AT))
    assert lines[0] == "$0.00\n"  # before the first request: no limits, no context yet
    assert lines[-1] == "5h 61% ↻3h12m · 7d 38% · $0.04 · ctx 1%\n"  # the example
    assert live.returncode == from_file.returncode == by_port.returncode == 0, live.stderr
    doc = json.loads(live.stdout)
    assert doc == json.loads(from_file.stdout) == json.loads(by_port.stdout)
    last = SAMPLES[-1][2]
    requests = api_request_records()
    for key in ("five_hour", "seven_day"):
        w, official = doc[key], last["rate_limits"][key]
        assert w["used_percentage"] == official["used_percentage"]
        assert w["resets_at"] == official["resets_at"]
        length = 5 * 3600 if key == "five_hour" else 7 * 86400
        assert w["window_start"] == official["resets_at"] - length
        assert w["source"] == "official"
        assert w["sampled_at"] == SAMPLES[-1][0] // S
        inside = [a for a in requests if w["window_start"] * S <= a["_t"] < AT * S]
        assert w["cost_usd"] == round(sum(float(a["cost_usd"]) for a in inside), 9) == 0.042714
        assert w["cost_usd"] == last["cost"]["total_cost_usd"]  # the session is the window's
        assert w["projected_percentage_at_reset"] > official["used_percentage"]
        assert w["eta_full"] is not None
    assert doc["today"]["cost_usd"] == 0.042714
    assert doc["sessions_active"] == 1
    assert doc["statusline"]["samples"] == 4


def _future(text: str, shift_s: int = 0) -> bytes:
    """A captured sample whose windows reset after today's clock (`shift_s` later still)."""
    doc = json.loads(text)
    now = int(time.time())
    doc["rate_limits"]["five_hour"]["resets_at"] = now + 3 * 3600 + 750 + shift_s
    doc["rate_limits"]["seven_day"]["resets_at"] = now + 3 * 86400 + shift_s
    return json.dumps(doc).encode()


def test_without_claude_top_the_sample_waits_in_the_spool(env, tmp_path):
    port = free_port()
    sample = _future(SAMPLES[-1][1])
    before = time.time_ns()
    done = cli(env, "statusline", "--http-port", str(port), stdin=sample)
    assert done.returncode == 0 and done.stderr == b""
    assert done.stdout.decode() == "5h 61% ↻3h12m · 7d 38% · $0.04 · ctx 1% · claude-top off\n"
    spool = Path(env["XDG_DATA_HOME"]) / "claude-top" / f"statusline-spool-{port}.jsonl"
    (item,) = [json.loads(line) for line in spool.read_text().splitlines()]
    assert item["text"] == sample.decode() and before <= item["received_ns"] <= time.time_ns()
    serve = Serve(env, tmp_path / "db.duckdb", port)
    try:
        status = cli(env, "status", "--http-port", str(port), "--json")
    finally:
        serve.stop()
    doc = json.loads(status.stdout)
    assert doc["five_hour"]["used_percentage"] == 61
    assert doc["five_hour"]["sampled_at"] == item["received_ns"] // S
    assert doc["statusline"]["samples"] == 1
    assert spool.read_text() == ""


@pytest.mark.parametrize(
    "stdin",
    [b"", b"not json", b"[]", b'{"rate_limits": {"five_hour": {"used_percentage": "x"}}}'],
)
def test_bad_input_still_prints_a_line_and_exits_0(env, tmp_path, stdin):
    serve = Serve(env, tmp_path / "db.duckdb")
    try:
        done = cli(env, "statusline", "--http-port", str(serve.http_port), stdin=stdin)
        status = cli(env, "status", "--http-port", str(serve.http_port), "--json")
    finally:
        serve.stop()
    assert done.returncode == 0 and done.stderr == b""
    assert done.stdout.decode().strip() == "claude-top"
    counts = json.loads(status.stdout)["statusline"]
    assert (counts["samples"], counts["rejected"]) == ((1, 0) if stdin.startswith(b"{") else (0, 1))
    assert counts["with_problems"] == int(stdin.startswith(b"{"))


def test_a_claude_top_that_never_answers_costs_at_most_the_budget(env):
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen()
        port = hole.getsockname()[1]
        started = time.monotonic()
        sample = _future(SAMPLES[-1][1])
        done = cli(env, "statusline", "--http-port", str(port), "--budget-ms", "300", stdin=sample)
        took = time.monotonic() - started
    assert done.returncode == 0
    assert done.stdout.decode().endswith(" · claude-top slow\n")
    assert took < 5  # the budget is 0.3 s; a loaded machine may start Python slowly
    spool = Path(env["XDG_DATA_HOME"]) / "claude-top" / f"statusline-spool-{port}.jsonl"
    assert len(spool.read_text().splitlines()) == 1


def test_a_previous_status_line_runs_first(env, tmp_path):
    serve = Serve(env, tmp_path / "db.duckdb")
    port = str(serve.http_port)
    sample = _future(SAMPLES[-1][1])
    try:
        fast = cli(env, "statusline", "--http-port", port, "--chain", "cat > /dev/null; echo PREV")
        assert fast.stdout.decode().splitlines() == ["PREV", "claude-top"]
        sees = cli(
            env,
            "statusline",
            "--http-port",
            port,
            "--chain",
            "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"session_id\"])'",
            stdin=sample,
        )
        assert sees.stdout.decode().splitlines()[0] == SAMPLES[-1][2]["session_id"]
        slow = ["statusline", "--http-port", port, "--chain", "sleep 3; echo SLOW"]
        first = cli(env, *slow, "--budget-ms", "1500", stdin=sample)
        assert first.returncode == 0 and "SLOW" not in first.stdout.decode()
        assert first.stdout.decode().startswith("5h 61% ↻3h12m · 7d 38%")
        time.sleep(3)
        second = cli(env, *slow, "--budget-ms", "1500", stdin=sample)
        assert second.stdout.decode().splitlines()[0] == "SLOW", (  # the last run's, done since
            second.stderr,
            sorted(os.listdir(Path(env["XDG_RUNTIME_DIR"]) / "claude-top")),
        )
    finally:
        serve.stop()


def _status_db(env, tmp_path, pct: float | None, age_s: int = 5) -> subprocess.CompletedProcess:
    from claude_top.core.sources.statusline.store import store_samples
    from claude_top.core.store.database import Store

    db = tmp_path / f"s{pct}-{age_s}.duckdb"
    store = Store.open(str(db))
    if pct is not None:
        doc = json.loads(SAMPLES[-1][1])
        doc["rate_limits"]["five_hour"]["used_percentage"] = pct
        store_samples(store, [(SAMPLES[-1][0], json.dumps(doc))])
    store.close()
    at = SAMPLES[-1][0] // S + age_s
    nobody = str(free_port())
    return cli(env, "status", "--db", str(db), "--http-port", nobody, "--at", str(at), "--tmux")


@pytest.mark.parametrize(
    ("pct", "age_s", "code", "line"),
    [
        (61, 5, 0, "5h 61% ↻3h12m · 7d 38% · $0.0000 today"),
        (85, 5, 10, "#[fg=yellow]5h 85% ↻3h12m#[default] · 7d 38% · $0.0000 today"),
        (100, 5, 11, "#[fg=red]5h 100% ↻3h12m#[default] · 7d 38% · $0.0000 today"),
        (61, 700, 20, "5h 61%? ↻3h01m · 7d 38%? · $0.0000 today"),
        (None, 5, 30, "$0.0000 today"),
    ],
)
def test_status_exit_codes_and_tmux_line_from_the_file(env, tmp_path, pct, age_s, code, line):
    done = _status_db(env, tmp_path, pct, age_s)
    assert done.returncode == code, done.stderr
    assert done.stdout.decode() == line + "\n"


def test_status_without_a_database_is_no_data(env, tmp_path):
    done = cli(env, "status", "--db", str(tmp_path / "none.duckdb"), "--http-port", "1")
    assert done.returncode == 30
    assert b"no claude-top database" in done.stderr


def test_the_human_summary(env, tmp_path):
    db = tmp_path / "claude-top.duckdb"
    serve = Serve(env, db)
    try:
        serve.replay(STATUSLINE_CAPTURE)
        for r, t, _ in SAMPLES:
            pipe_through_shim(serve.http_port, r, t)
    finally:
        serve.stop()
    done = cli(env, "status", "--db", str(db), "--http-port", "1", "--at", str(AT))
    text = done.stdout.decode()
    assert text.splitlines()[0] == (
        "5h 61% (official · 12s ago) · resets in 3h12m (Sat 09:00) · $0.0427 in 9 requests"
    )
    assert "full in 19m" in text.splitlines()[1]
    assert text.splitlines()[-1] == "today $0.0427 in 9 requests · 1 active session"


def test_a_token_protected_claude_top(env, tmp_path):
    serve = Serve(env, tmp_path / "db.duckdb", 0, "--token", "s3cret")
    try:
        port = str(serve.http_port)
        sample = _future(SAMPLES[-1][1])
        refused = cli(env, "statusline", "--http-port", port, stdin=sample)
        assert refused.stdout.decode().endswith(" · claude-top: token?\n")  # and not spooled
        ok = cli(env, "statusline", "--http-port", port, "--token", "s3cret", stdin=sample)
        assert ok.stdout.decode().endswith("ctx 1%\n")
        nope = cli(env, "status", "--http-port", port, "--db", str(tmp_path / "x.duckdb"))
        assert nope.returncode == 30 and b"--token" in nope.stderr
        yes = cli(env, "status", "--http-port", port, "--token", "s3cret", "--json")
        assert json.loads(yes.stdout)["statusline"]["samples"] == 1
    finally:
        serve.stop()


def test_the_shim_waits_for_no_one_past_its_budget(env):
    """A previous status line that never ends is not waited for, and its output is not lost."""
    out: list[str] = []

    def run() -> None:
        out.append(pipe_through_shim(free_port(), SAMPLES[-1][0], "{}", chain="sleep 30"))

    t = threading.Thread(target=run)
    started = time.monotonic()
    t.start()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - started < 10
    assert out == ["claude-top off\n"]


def test_a_chained_command_stuck_for_a_minute_is_stopped(env):
    from claude_top.commands.statusline import Chain

    stuck = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        first = Chain("true", b"{}")  # makes the folder; its key is the command's
        first.proc.wait(10)
        mark = first.dir / f"chain-{first.key}.1-1.pid"
        mark.write_text(str(stuck.pid))
        os.utime(mark, (time.time() - 61, time.time() - 61))
        Chain("true", b"{}").proc.wait(10)
        assert stuck.wait(10) == -signal.SIGKILL
        assert not mark.exists()
    finally:
        if stuck.poll() is None:
            stuck.kill()


def test_serve_alerts_a_crossing_once_with_the_alert_command(env, tmp_path):
    told = tmp_path / "alerts.jsonl"
    command = f"cat >> {told}; echo >> {told}"
    serve = Serve(env, tmp_path / "db.duckdb", 0, "--alert-command", command, "--no-desktop")
    try:
        doc = json.loads(_future(SAMPLES[-1][1]))
        doc["rate_limits"]["five_hour"]["used_percentage"] = 90
        sample = json.dumps(doc).encode()
        for _ in range(2):  # the same crossing, seen twice
            cli(env, "statusline", "--http-port", str(serve.http_port), stdin=sample)
        deadline = time.monotonic() + 60
        while not (told.exists() and told.read_text().strip()):
            assert time.monotonic() < deadline, serve.log.read_text()
            time.sleep(0.2)
        time.sleep(16)  # one more check: nothing new
    finally:
        serve.stop()
    (alert,) = [json.loads(line) for line in told.read_text().splitlines() if line.strip()]
    assert (alert["window"], alert["threshold"], alert["used_percentage"]) == ("five_hour", 80, 90)
    assert alert["resets_at"] == doc["rate_limits"]["five_hour"]["resets_at"]
    assert f"claude-top alert: {alert['message']}" in serve.log.read_text()
