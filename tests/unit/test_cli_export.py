"""`claude-top export` end to end: a file database, the files it writes, and its errors."""

from __future__ import annotations

import csv
import json
import signal as signals
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import pytest

from claude_top.cli import main
from claude_top.core.sources.otlp.decode import accept_protobuf, decode_protobuf
from claude_top.core.sources.otlp.signals import SIGNALS
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from claude_top.core.store.journal import Journal
from serving import start_serve
from truth import GRPC_FIXTURES, Truth, grpc_requests


@pytest.fixture
def db_file(tmp_path):
    path = tmp_path / "claude-top.duckdb"
    store = Store.open(path)
    for name in GRPC_FIXTURES:
        for signal, body in grpc_requests(name):
            write_rows(store, [decode_protobuf(signal, body)])
    store.checkpoint()
    store.close()
    return path


def rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_export_command_writes_the_snapshot(db_file, tmp_path, capsys):
    out = tmp_path / "snap"
    assert main(["export", "--db", str(db_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    truth = Truth(*GRPC_FIXTURES)
    counts = {
        "sessions": len(truth.sessions()),
        "models": 2,
        "tools": 4,
        "spans": len(truth.spans),
        "events": len(truth.events),
    }
    for name, count in counts.items():
        assert len(rows(out / f"{name}.csv")) == count
        assert f"{count:>8}  {out / (name + '.csv')}" in printed
    snap = json.loads((out / "snapshot.json").read_text())
    assert snap["db"] == str(db_file)
    assert snap["window"] == "all"
    assert snap["counts"] == {f"{n}.csv": c for n, c in counts.items()}
    cost = {r["session_id"]: float(r["cost_usd"]) for r in rows(out / "sessions.csv")}
    for sid in truth.sessions():
        assert cost[sid] == pytest.approx(truth.cost(sid), abs=1e-9)


def test_export_command_session_filter(db_file, tmp_path):
    out = tmp_path / "one"
    sid = "a81f7f10-c25a-48a3-a14c-e3d66aa434bc"
    assert main(["export", "--db", str(db_file), "--out", str(out), "--session", sid]) == 0
    assert [r["session_id"] for r in rows(out / "sessions.csv")] == [sid]
    assert {r["tool_name"]: r["calls"] for r in rows(out / "tools.csv")} == {
        "Bash": "2",
        "Write": "1",
    }


def test_export_bad_window_is_a_usage_error(db_file, tmp_path, capsys):
    code = main(["export", "--db", str(db_file), "--out", str(tmp_path / "x"), "--since", "soon"])
    assert code == 2
    err = capsys.readouterr().err
    assert "claude-top export: bad time window 'soon'" in err
    assert not (tmp_path / "x").exists()


def test_export_missing_db(tmp_path, capsys):
    code = main(["export", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "x")])
    assert code == 2
    assert "no claude-top database at" in capsys.readouterr().err


def test_export_while_a_running_claude_top_holds_the_db(db_file, tmp_path, capsys):
    """Another process owns the file (as `claude-top serve` does): a plain message, exit 2."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from claude_top.core.store.database import Store
                store = Store.open({str(db_file)!r})
                print("ready", flush=True)
                sys.stdin.read()
                store.close()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        code = main(["export", "--db", str(db_file), "--out", str(tmp_path / "locked")])
        assert code == 2
        err = capsys.readouterr().err
        assert f"claude-top export: {db_file} is in use by another process" in err
        assert not (tmp_path / "locked").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0
    assert main(["export", "--db", str(db_file), "--out", str(tmp_path / "after")]) == 0


def test_export_after_a_crash_indexes_what_the_journal_holds(tmp_path, capsys):
    """Exports acknowledged (journalled) but not indexed when claude-top died are in the
    snapshot: the command indexes them first."""
    db = tmp_path / "crashed.duckdb"
    Store.open(db).close()
    journal = Journal(Path(f"{db}.journal"))
    requests = [r for name in GRPC_FIXTURES for r in grpc_requests(name)]
    journal.append([(sig, 1, accept_protobuf(sig, body).count, body) for sig, body in requests])
    journal.close()
    out = tmp_path / "snap"
    assert main(["export", "--db", str(db), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"indexed {len(requests)} exports" in printed
    truth = Truth(*GRPC_FIXTURES)
    assert len(rows(out / "events.csv")) == len(truth.events)
    assert len(rows(out / "spans.csv")) == len(truth.spans)
    cost = {r["session_id"]: float(r["cost_usd"]) for r in rows(out / "sessions.csv")}
    assert cost == pytest.approx({sid: truth.cost(sid) for sid in truth.sessions()}, abs=1e-9)


def test_export_while_serve_runs_is_written_by_it(tmp_path, capsys):
    """`serve` holds the file: the command asks it (over loopback, with the key from the
    instance file) and the snapshot holds every export acknowledged before."""
    db = tmp_path / "live.duckdb"
    serve, port = start_serve(db)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        for name in GRPC_FIXTURES:
            for sig, body in grpc_requests(name):
                channel.unary_unary(SIGNALS[sig].method)(body, timeout=10)
        channel.close()
        instance = json.loads(Path(f"{db}.instance.json").read_text())
        assert instance["pid"] == serve.pid
        out = tmp_path / "snap"
        assert main(["export", "--db", str(db), "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        assert f"written by the claude-top running on {db} (pid {serve.pid})" in printed
        truth = Truth(*GRPC_FIXTURES)
        assert len(rows(out / "events.csv")) == len(truth.events)
        assert len(rows(out / "spans.csv")) == len(truth.spans)
        assert len(rows(out / "sessions.csv")) == len(truth.sessions())
        forged = {**instance, "key": "0" * 32}
        Path(f"{db}.instance.json").write_text(json.dumps(forged))
        assert main(["export", "--db", str(db), "--out", str(tmp_path / "no")]) == 2
        assert "wrong instance key" in capsys.readouterr().err
        Path(f"{db}.instance.json").write_text(json.dumps(instance))
    finally:
        serve.send_signal(signals.SIGTERM)
        serve.communicate(timeout=60)
    assert serve.returncode == 0
    assert not Path(f"{db}.instance.json").exists()  # removed by the instance that wrote it


CONTINUED = "851b8ffd-2541-408a-9c22-e285d2e26c58"


def test_export_session_by_the_short_id_the_ui_shows(db_file, tmp_path, capsys):
    out = tmp_path / "short"
    assert main(["export", "--db", str(db_file), "--out", str(out), "--session", "851b8ffd"]) == 0
    assert f"session {CONTINUED}" in capsys.readouterr().out
    assert [r["session_id"] for r in rows(out / "sessions.csv")] == [CONTINUED]
    truth = Truth(*GRPC_FIXTURES)
    assert len(rows(out / "events.csv")) == sum(
        1 for e in truth.events if e.get("session.id") == CONTINUED
    )
    snap = json.loads((out / "snapshot.json").read_text())
    assert snap["filter"]["session_id"] == CONTINUED


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("cc62a7b2", "no session id starts with 'cc62a7b2'"),
        ("", "no session id given"),
    ],
)
def test_export_unknown_session_is_an_error(db_file, tmp_path, capsys, given, message):
    out = tmp_path / "none"
    assert main(["export", "--db", str(db_file), "--out", str(out), "--session", given]) == 2
    assert f"claude-top export: {message}" in capsys.readouterr().err
    assert not out.exists()


def test_export_ambiguous_session_prefix_is_an_error(tmp_path, capsys):
    """Two sessions whose ids start alike: a prefix of both names neither."""
    db = tmp_path / "two.duckdb"
    store = Store.open(db)
    for sid in ("abcd1111-0000-4000-8000-000000000000", "abcd2222-0000-4000-8000-000000000000"):
        for body in _logs_as("basic.grpc", sid):
            write_rows(store, [decode_protobuf("logs", body)])
    store.close()
    out = tmp_path / "x"
    assert main(["export", "--db", str(db), "--out", str(out), "--session", "abcd"]) == 2
    err = capsys.readouterr().err
    assert "'abcd' is the start of more than one session id" in err
    assert "abcd1111-0000-4000-8000-000000000000" in err
    assert not out.exists()
    assert main(["export", "--db", str(db), "--out", str(out), "--session", "abcd2"]) == 0


def _logs_as(fixture: str, session_id: str) -> list[bytes]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    out = []
    for signal, body in grpc_requests(fixture):
        if signal == "logs":
            req = ExportLogsServiceRequest.FromString(body)
            for rl in req.resource_logs:
                for sl in rl.scope_logs:
                    for rec in sl.log_records:
                        for kv in rec.attributes:
                            if kv.key == "session.id":
                                kv.value.string_value = session_id
            out.append(req.SerializeToString())
    return out


def test_export_files_are_private_whatever_the_umask(db_file, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = tmp_path / "snap"
        assert main(["export", "--db", str(db_file), "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "events.csv",
        "models.csv",
        "sessions.csv",
        "snapshot.json",
        "spans.csv",
        "tools.csv",
    ]
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_csv_values_are_rounded_to_what_they_mean(db_file, tmp_path):
    """Dollars to 1e-10 (every digit Claude Code reports, none of the noise), ratios to 0.01 %,
    milliseconds to the microsecond: no float noise such as 0.04597999999999999 in any file."""
    decimals_of = {
        "cost_usd": 10,
        "metric_cost_usd": 10,
        "cache_hit_ratio": 4,
        "share": 4,
        "error_pct": 2,
        **dict.fromkeys(("duration_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "total_ms"), 3),
    }
    out = tmp_path / "snap"
    assert main(["export", "--db", str(db_file), "--out", str(out)]) == 0
    truth = Truth(*GRPC_FIXTURES)
    costs = {r["session_id"]: r["cost_usd"] for r in rows(out / "sessions.csv")}
    for sid in truth.sessions():
        assert costs[sid] == repr(round(float(truth.cost(sid)), 10))
    checked = 0
    for name in ("sessions", "models", "tools", "spans", "events"):
        for row in rows(out / f"{name}.csv"):
            for column, decimals in decimals_of.items():
                value = row.get(column)
                if value:
                    assert len(value.partition(".")[2]) <= decimals, (name, column, value)
                    checked += 1
    assert checked > 100
