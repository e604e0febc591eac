"""`claude-top import` end to end: transcripts and OTLP JSON lines into a file database, by the
command itself or by the claude-top running on it; what it prints; the CSV says each session's
source. Expected values come from the captures (`truth`)."""

from __future__ import annotations

import base64
import csv
import json
import signal as signals
import time
from pathlib import Path

import pytest

from claude_top.cli import main
from claude_top.core.store.database import Store
from serving import start_serve
from transcript_cases import copy_set
from truth import FIXTURES, TRANSCRIPT_SETS, TranscriptTruth, Truth, fixture_lines

ALL_PROJECTS = [FIXTURES / projects for _, projects in TRANSCRIPT_SETS.values()]


def rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def otlp_lines_file(tmp_path: Path, name: str = "basic.http-json") -> Path:
    """What the Collector's file exporter writes: one OTLP/JSON export request a line (here
    the JSON bodies an OTLP/HTTP exporter sent in the capture)."""
    path = tmp_path / "collector.jsonl"
    bodies = [base64.b64decode(d["body"]) for d in fixture_lines(name)]
    path.write_bytes(b"".join(json.dumps(json.loads(b), separators=(",", ":")).encode()
                              + b"\n" for b in bodies))  # fmt: skip
    return path


def session_csv(db: Path, out: Path) -> dict[str, dict]:
    assert main(["export", "--db", str(db), "--out", str(out)]) == 0
    return {r["session_id"]: r for r in rows(out / "sessions.csv")}


def test_import_reads_transcripts_and_says_what_it_found(tmp_path, capsys):
    db = tmp_path / "ct.duckdb"
    assert main(["import", "--db", str(db), *map(str, ALL_PROJECTS)]) == 0
    printed = capsys.readouterr().out
    truths = [TranscriptTruth(p) for p in ALL_PROJECTS]
    requests = sum(len(t.requests) for t in truths)
    files = sum(len(list(p.rglob("*.jsonl"))) for p in ALL_PROJECTS)
    sessions = {r["session"] for t in truths for r in t.requests.values()}
    assert f"files:        {files} ({files} read" in printed
    assert f"sessions:     {len(sessions)}\n" in printed
    assert f"API requests: {requests} ({requests} new); 0 also in telemetry" in printed
    assert f"{requests} from cost-state lines" in printed
    assert "lines skipped: 0" in printed
    assert main(["import", "--db", str(db), *map(str, ALL_PROJECTS)]) == 0
    again = capsys.readouterr().out
    assert f"files:        {files} (0 read" in again
    by_session = session_csv(db, tmp_path / "snap")
    for otlp, _ in TRANSCRIPT_SETS.values():
        truth = Truth(otlp)
        for sid in truth.working_sessions():
            row = by_session[sid]
            assert (row["source"], row["cost_sources"], row["estimated_cost_usd"]) == (
                "transcript",
                "transcript",
                "",
            )
            assert float(row["cost_usd"]) == pytest.approx(truth.cost(sid), abs=1e-9)
            assert int(row["api_requests"]) == len(truth.api_requests(sid))


def test_import_verbose_lists_each_skipped_line(tmp_path, capsys):
    tree = copy_set(TRANSCRIPT_SETS["basic"][1], tmp_path)
    (path,) = tree.rglob("*.jsonl")
    with open(path, "ab") as fh:
        fh.write(b'{"type":"assistant", broken\n{"type":"from-the-future"}\n')
    db = tmp_path / "ct.duckdb"
    assert main(["import", "--db", str(db), "--verbose", str(tree)]) == 0
    printed = capsys.readouterr().out
    lines = len(path.read_text().splitlines())
    assert "lines skipped: 2" in printed
    assert f"{path}:{lines - 1}: malformed JSON" in printed
    assert f"{path}:{lines}: unknown type 'from-the-future'" in printed


def test_import_of_otlp_json_lines_stores_them_as_the_receivers_do(tmp_path, capsys):
    lines = otlp_lines_file(tmp_path)
    db = tmp_path / "ct.duckdb"
    assert main(["import", "--db", str(db), str(lines)]) == 0
    printed = capsys.readouterr().out
    truth = Truth("basic.http-json")
    n = len(fixture_lines("basic.http-json"))
    assert f"OTLP files:   1 ({n} lines): {n} exports" in printed
    store = Store.open(db, read_only=True)
    cur = store.cursor()
    assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == len(truth.events)
    assert cur.execute("SELECT count(*) FROM spans").fetchone()[0] == len(truth.spans)
    (cost,) = cur.execute("SELECT sum(cost_usd) FROM events WHERE kind = 'api_request'").fetchone()
    assert cost == pytest.approx(truth.cost(), abs=1e-9)
    store.close()
    assert main(["import", "--db", str(db), str(lines)]) == 0  # again: nothing doubles
    store = Store.open(db, read_only=True)
    assert store.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == len(truth.events)
    store.close()


def test_import_while_serve_runs_is_done_by_it(tmp_path, capsys):
    """serve holds the file: the command asks it over loopback and follows its progress;
    telemetry sent before and transcripts imported after join per request."""
    db = tmp_path / "live.duckdb"
    otlp, projects = TRANSCRIPT_SETS["errors"]
    serve, _port = start_serve(db)
    try:
        import grpc

        from claude_top.core.sources.otlp.signals import SIGNALS
        from truth import grpc_requests

        with grpc.insecure_channel(f"127.0.0.1:{_port}") as channel:
            for sig, body in grpc_requests(otlp):
                channel.unary_unary(SIGNALS[sig].method)(body, timeout=10)
        lines = otlp_lines_file(tmp_path)
        assert main(["import", "--db", str(db), str(FIXTURES / projects), str(lines)]) == 0
        printed = capsys.readouterr().out
        assert f"the claude-top running on {db} (pid {serve.pid}) imports" in printed
        truth = Truth(otlp)
        n = len(truth.api_requests())
        assert f"API requests: {n} ({n} new); {n} also in telemetry, 0 from" in printed
        assert "OTLP files:   1" in printed
        by_session = session_csv(db, tmp_path / "snap")
        (sid,) = truth.working_sessions()
        assert by_session[sid]["source"] == "both"
        assert float(by_session[sid]["cost_usd"]) == pytest.approx(truth.cost(), abs=1e-9)
        assert int(by_session[sid]["api_requests"]) == n
        basic = Truth("basic.http-json")
        for other in basic.working_sessions():
            assert by_session[other]["source"] == "otel"
    finally:
        serve.send_signal(signals.SIGTERM)
        serve.communicate(timeout=60)
    assert serve.returncode == 0


def test_serve_follows_a_transcript_folder(tmp_path, capsys):
    """`serve --transcripts DIR` imports what is there at start and what is written later."""
    db = tmp_path / "live.duckdb"
    folder = tmp_path / "projects"
    folder.mkdir()
    serve, _ = start_serve(db, "--transcripts", str(folder))
    try:
        copy_set(TRANSCRIPT_SETS["continued"][1], tmp_path / "later")
        target = folder / "-home-u-continued-project"
        (tmp_path / "later" / "projects" / target.name).rename(target)
        truth = Truth(TRANSCRIPT_SETS["continued"][0])
        (sid,) = truth.working_sessions()
        deadline = time.monotonic() + 30
        while True:
            by_session = session_csv(db, tmp_path / f"snap-{time.monotonic_ns()}")
            capsys.readouterr()
            if sid in by_session and int(by_session[sid]["api_requests"]) == 6:
                break
            assert time.monotonic() < deadline, "serve never imported the new transcript"
            time.sleep(0.3)
        assert by_session[sid]["source"] == "transcript"
        assert float(by_session[sid]["cost_usd"]) == pytest.approx(truth.cost(), abs=1e-9)
    finally:
        serve.send_signal(signals.SIGTERM)
        serve.communicate(timeout=60)
    assert serve.returncode == 0
