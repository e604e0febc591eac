"""docs/team.md, run: each marked block is executed as written, with only what the doc says is
substituted (temporary paths for /etc, local ports for the team's hosts, no sudo); the
collector's config, which no binary here can run, is checked for its shape."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

import grpc

import clickhouse_rows as cr
from claude_top.core.connect import env_block
from claude_top.core.instance import InstanceError, read_instance
from claude_top.core.sources.otlp.signals import SIGNALS
from clickhouse_http import ClickHouseHTTP
from serving import start_serve
from truth import GRPC_FIXTURES, REPO, Truth, grpc_requests

SERVICES = {name: s.method for name, s in SIGNALS.items()}

DOC = REPO / "docs" / "team.md"
REQUESTS = [r for name in GRPC_FIXTURES for r in grpc_requests(name)]


def block(name: str) -> str:
    text = DOC.read_text()
    m = re.search(rf"<!-- block: {name} -->\n```\w+\n(.*?)```", text, re.S)
    assert m, f"no block {name} in {DOC}"
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "claude_top.cli", *args]


def run_sh(script: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def test_the_managed_settings_turn_telemetry_on_and_name_team_and_host(tmp_path):
    script = block("managed-settings").replace("sudo ", "")
    script = script.replace("/etc/claude-code", str(tmp_path / "etc"))
    done = run_sh(script)
    assert done.returncode == 0, done.stderr
    env = json.loads((tmp_path / "etc" / "managed-settings.json").read_text())["env"]
    assert env_block().items() <= env.items()  # what claude-top setup gives, same values
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    attrs = dict(kv.split("=", 1) for kv in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert attrs == {"team": "platform", "host.name": host}


def test_the_collector_config_pipes_every_signal_through_batch_to_clickhouse():
    yaml = block("collector-config")
    for signal_name in ("traces", "logs", "metrics"):
        pipeline = re.search(rf"\n    {signal_name}:\n((?:      .*\n)+)", yaml)
        assert pipeline, signal_name
        assert pipeline.group(1) == (
            "      receivers: [otlp]\n      processors: [batch]\n      exporters: [clickhouse]\n"
        )
    assert "\n  clickhouse:\n    endpoint: tcp://" in yaml
    assert "    database: otel\n" in yaml
    assert "    create_schema: true\n" in yaml
    assert yaml.count("authenticator: bearertokenauth") == 2
    assert "grpc:\n        endpoint: 0.0.0.0:4317" in yaml


def send(port: int, requests) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        for sig, body in requests:
            channel.unary_unary(SERVICES[sig])(body, timeout=30)


def test_the_laptop_relays_with_the_token_from_the_environment(tmp_path):
    """The laptop block as `claude-top serve` (the same options, no UI): the collector's place
    is taken by a claude-top that demands the team's token."""
    up_port = free_port()
    upstream, _ = start_serve(
        tmp_path / "team.duckdb", "--grpc-port", str(up_port), "--token", "team-token"
    )
    relay = None
    try:
        script = block("laptop")
        command = script.splitlines()[-1].replace(
            "claude-top --forward http://collector.example:4317",
            f"--forward http://127.0.0.1:{up_port}",
        )
        assert command.startswith("--forward ")
        exports = script.splitlines()[0].removeprefix("export ")
        key, _, value = exports.partition("=")
        env = {key: value.strip('"').replace("$TEAM_OTLP_TOKEN", "team-token")}
        os.environ[key] = env[key]
        try:
            relay, relay_port = start_serve(tmp_path / "laptop.duckdb", *command.split())
        finally:
            del os.environ[key]
        send(relay_port, REQUESTS)
        truth = Truth(*GRPC_FIXTURES)
        deadline = time.monotonic() + 60
        events = -1
        while events != len(truth.events):
            assert time.monotonic() < deadline, f"the team store has {events} events"
            time.sleep(0.3)
            instance = read_instance(str(tmp_path / "team.duckdb"))
            try:
                answer = instance.request("POST", "/export", {"out": str(tmp_path / "x")})
                events = answer["counts"]["events"]
            except InstanceError:
                events = -1
    finally:
        for proc in (relay, upstream):
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=60)


def _recent(requests, now_ns: int) -> list[tuple[str, bytes]]:
    """The captures moved in time so that their last record is an hour before `now_ns`."""
    msgs = [(sig, SIGNALS[sig].request.FromString(body)) for sig, body in requests]
    latest = 0
    for _sig, m in msgs:
        for rl in getattr(m, "resource_logs", []):
            for sl in rl.scope_logs:
                latest = max([latest, *(r.time_unix_nano for r in sl.log_records)])
    shift = now_ns - 3600 * 10**9 - latest
    for sig, m in msgs:
        if sig == "logs":
            for rl in m.resource_logs:
                for sl in rl.scope_logs:
                    for r in sl.log_records:
                        r.time_unix_nano += shift
                        r.observed_time_unix_nano += shift
        elif sig == "traces":
            for rs in m.resource_spans:
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        s.start_time_unix_nano += shift
                        s.end_time_unix_nano += shift
                        for e in s.events:
                            e.time_unix_nano += shift
        else:
            for rm in m.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        for p in metric.sum.data_points:
                            p.start_time_unix_nano += shift
                            p.time_unix_nano += shift
    return [(sig, m.SerializeToString()) for sig, m in msgs]


def test_the_leads_commands_over_the_teams_clickhouse(tmp_path):
    """team-tables, the UI (in a terminal, then q) and export --since 7d, as written, against
    the ClickHouse engine behind its HTTP interface (`clickhouse_http.py`)."""
    session, db = cr.session(), cr.new_database("doc")
    cr.create_tables(session, "five_minutes", db)
    recent = _recent(REQUESTS, time.time_ns())
    cr.load(session, recent, "five_minutes", db)
    users = {"admin": "adminpw", "lead": "leadpw"}
    with ClickHouseHTTP(users) as ch:
        env = {"CH_ADMIN_PASSWORD": "adminpw", "CH_PASSWORD": "leadpw"}
        url = f"127.0.0.1:{ch.port}/{db}"
        tables = block("team-tables").replace("clickhouse.example:8123/otel", url)
        done = run_sh(tables.replace("claude-top ", f"{sys.executable} -m claude_top.cli "), env)
        assert done.returncode == 0, done.stderr
        assert "fill claude_top_events: done" in done.stderr
        ui, export = block("lead").strip().splitlines()
        export = export.replace("clickhouse.example:8123/otel", url).replace(
            "./team-week", str(tmp_path / "team-week")
        )
        done = run_sh(export.replace("claude-top ", f"{sys.executable} -m claude_top.cli "), env)
        assert done.returncode == 0, done.stderr
        assert "claude-top's typed tables: claude_top_events, claude_top_spans" in done.stdout
        truth = Truth(*GRPC_FIXTURES)
        with open(tmp_path / "team-week" / "events.csv") as fh:
            assert sum(1 for _ in fh) - 1 == len(truth.events)
        ui = ui.replace("clickhouse.example:8123/otel", url)
        assert _run_ui_then_quit(
            ui.replace("claude-top ", f"{sys.executable} -m claude_top.cli "), env
        )


def _run_ui_then_quit(command: str, env: dict) -> bool:
    """Run the UI in a pseudo-terminal until it has drawn its panes, press q; True if it
    drew them and exited 0."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        ["bash", "-c", command],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, **env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"},
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and b"Sessions" not in seen:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        drew = b"Sessions" in seen and b"team view" in seen
        time.sleep(1.0)
        os.write(master, b"q")
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
        return drew and proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
