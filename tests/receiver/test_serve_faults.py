"""`claude-top serve` at its edges, as a real process: options and paths it cannot use, a damaged
database, a disk that fills up, Ctrl-C. Each ends in one clear line and exit code 2 (a clean
stop: exit 0 and no traceback), and what was acknowledged is still there.

Permission failures do not reproduce by chmod as root: a read-only folder is a read-only tmpfs
(skipped where this process may not mount one), and the full disk a small tmpfs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from receiver_harness import SERVICES

from claude_top.core.sources.otlp.decode import accept_protobuf
from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
from serving import start_serve
from truth import Truth, grpc_requests

TRUTH = Truth("basic.grpc")


def claude_top(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run claude-top to its end (a start that fails)."""
    return subprocess.run(
        [sys.executable, "-m", "claude_top.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def refused(*args: str) -> str:
    """`serve ARGS` exits 2 with one line on stderr (and nothing else); returns the line."""
    try:
        done = claude_top("serve", "--grpc-port", "0", "--http-port", "0", *args, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"serve {' '.join(args)} started instead of refusing") from None
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def fill(db: Path, requests: list[tuple[str, bytes]]) -> None:
    """Index `requests` into the database at `db`, as an earlier run would have."""
    store = Store.open(db)
    writer = StoreWriter(store, decode_in_worker=False)
    for signal_, body in requests:
        writer.submit(accept_protobuf(signal_, body)).result(10)
    assert writer.sync(10)
    writer.close()
    store.checkpoint()
    store.close()


def counts(db: Path) -> tuple[int, int, int]:
    store = Store.open(db, read_only=True)
    try:
        return (
            store.cursor()
            .execute(
                "SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM events), "
                "(SELECT count(*) FROM metric_points)"
            )
            .fetchone()
        )
    finally:
        store.close()


BASIC_COUNTS = (len(TRUTH.spans), len(TRUTH.events), TRUTH.data_points)


# --- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--grpc-port", "70000"), ("--grpc-port", "-1"), ("--http-port", "70000")],
)
def test_a_port_out_of_range_is_refused(flag, value):
    line = refused("--db", ":memory:", flag, value)
    assert line == f"claude-top: {flag} {value} is not a port: give 0-65535 (0: any free port)"


def test_a_max_body_gRPC_cannot_take_is_refused():
    line = refused("--db", ":memory:", "--max-body", str(1 << 31))
    assert "--max-body 2147483648" in line


# --- paths -----------------------------------------------------------------------------------


def test_a_db_in_a_folder_that_does_not_exist_is_refused_not_made(tmp_path):
    db = tmp_path / "no" / "such" / "ct.duckdb"
    assert refused("--db", str(db)) == (
        f"claude-top serve: no folder {db.parent} for {db}: create it first, or check --db"
    )
    assert not (tmp_path / "no").exists()


def test_a_db_under_a_file_is_refused(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    line = refused("--db", str(notes / "ct.duckdb"))
    assert f"{notes} is not a folder" in line
    assert notes.read_text() == "mine\n"


def test_a_db_that_is_a_folder_is_refused(tmp_path):
    assert "is a folder: --db names the database file" in refused("--db", str(tmp_path))


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs at a folder of tmp_path: `mount(name, options)` (skips the test
    where this process may not mount); each is unmounted after the test."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_db_in_a_read_only_folder_is_refused(tmpfs):
    folder = tmpfs("ro", "ro,size=1m")
    line = refused("--db", str(folder / "ct.duckdb"))
    assert f"cannot open {folder / 'ct.duckdb'}" in line and "Read-only file system" in line


def test_a_journal_path_that_is_a_file_is_refused_and_the_database_kept(tmp_path):
    db = tmp_path / "ct.duckdb"
    fill(db, grpc_requests("basic.grpc"))
    Path(f"{db}.journal").rmdir()  # empty: all indexed
    Path(f"{db}.journal").write_text("not a journal\n")
    line = refused("--db", str(db))
    assert line == (
        f"claude-top serve: {db}.journal is not a folder: claude-top keeps the journal of "
        "acknowledged exports there; move that file away"
    )
    assert Path(f"{db}.journal").read_text() == "not a journal\n"
    assert counts(db) == BASIC_COUNTS


def test_a_spool_path_that_is_a_file_is_refused(tmp_path):
    db = tmp_path / "ct.duckdb"
    Path(f"{db}.spool").write_text("x")
    assert f"{db}.spool is not a folder" in refused("--db", str(db))


def test_a_database_cut_short_is_refused_by_serve_and_export(tmp_path):
    """Refused when opened (it used to open, then fail at the first query reading past its
    end: `export` ended in a traceback), and left as it is."""
    db = tmp_path / "ct.duckdb"
    fill(db, grpc_requests("basic.grpc") * 3)
    whole = db.stat().st_size
    os.truncate(db, whole // 2)
    line = refused("--db", str(db))
    assert line.startswith(f"claude-top serve: {db} is damaged: the file has {whole // 2:,} bytes")
    done = claude_top("export", "--db", str(db), "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done
    assert done.stderr.strip().splitlines() == [line.replace("serve:", "export:")]
    assert db.stat().st_size == whole // 2


def test_a_stop_while_the_disk_is_full_is_one_line_and_loses_nothing(tmpfs):
    """The disk fills while serve runs: exports it cannot journal are refused (the exporters
    retry), the ones it acknowledged wait in the journal when the database cannot be written,
    and the stop says so in one line, exit 2. With room again, the next start indexes them."""
    folder = tmpfs("full", "size=3m")
    db = folder / "ct.duckdb"
    serve, port = start_serve(db)
    acked = 0
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            export = channel.unary_unary(SERVICES["traces"])
            for n in range(60):
                try:
                    export(big_span_export(n), timeout=10)
                    acked += 1
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
        time.sleep(2)  # the indexer meets the full disk
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=60)
    assert 0 < acked < 60
    assert serve.returncode == 2, err
    assert "Traceback" not in err.decode()
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("claude-top serve: stopped with ")
    assert "No space left on device" in last and "indexed at the next start" in last

    subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True)
    serve, _ = start_serve(db)
    serve.send_signal(signal.SIGTERM)
    _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    assert counts(db)[0] == acked
    store = Store.open(db, read_only=True)
    assert store.journal_backlog() == (0, 0)
    store.close()


def big_span_export(n: int) -> bytes:
    """One span whose attribute makes the export about 200 kB."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    span = (
        req.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=(n + 1).to_bytes(16, "big"), span_id=(n + 1).to_bytes(8, "big"), name="big"
        )
    )
    span.attributes.add(key="tool_input").value.string_value = os.urandom(100_000).hex()
    return req.SerializeToString()


# --- Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_stops_serve_and_its_workers_without_a_traceback(tmp_path):
    """Ctrl-C reaches the whole process group: serve and its decode workers (running, with
    indexing done). Malformed HTTP before it prints one line, not a traceback each."""
    db = tmp_path / "ct.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_top.cli", "serve", "--db", str(db),
         "--grpc-port", "0", "--http-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )  # fmt: skip
    try:
        banner = b""
        while b"OTEL_TRACES_EXPORT_INTERVAL" not in banner:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            banner += line
        grpc_port = int(banner.split(b"OTLP/gRPC on 127.0.0.1:")[1].split(b",")[0])
        http_port = int(banner.split(b"http://127.0.0.1:")[1].split(b"\n")[0])
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            for signal_, body in grpc_requests("basic.grpc"):
                assert channel.unary_unary(SERVICES[signal_])(body, timeout=10) == b""
        for bad in (b"POST /v1/traces HTTP/1.1\r\nBad Header\r\n\r\n",
                    b"POST / HTTP/9.9\r\n\r\n") * 10:  # fmt: skip
            with socket.create_connection(("127.0.0.1", http_port), timeout=10) as s:
                s.sendall(bad)
                s.recv(4096)
        time.sleep(2)  # indexed: the decode workers wait for more
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    err = err.decode()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("claude-top: refused a malformed HTTP request from 127.0.0.1")
    assert b"stopped after" in out
    assert counts(db) == BASIC_COUNTS


# --- a damaged journal -----------------------------------------------------------------------


def test_a_damaged_journal_header_costs_one_export_and_is_reported(tmp_path):
    """60 exports acknowledged by a claude-top that then died, one byte of record 31's header
    flipped: serve indexes the 59 others, keeps 31 in ingest_failed and says so."""
    from claude_top.core.store.journal import Journal

    db = tmp_path / "ct.duckdb"
    Store.open(db).close()
    spans = []
    journal = Journal(Path(f"{db}.journal"))
    for n in range(60):
        body = big_span_export(n)
        spans.append(body)
        journal.append([("traces", 1_800_000_000_000_000_000, 1, body)])
    journal.close()
    entries = journal.read(0, 60, 60)
    with open(entries[30].path, "r+b") as f:
        f.seek(entries[30].offset + 1)  # the magic
        f.write(b"X")

    serve, _ = start_serve(db)
    serve.send_signal(signal.SIGTERM)
    _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    err = err.decode()
    assert "Traceback" not in err
    assert "journal record 31 damaged" in err and "kept in ingest_failed" in err, err
    assert counts(db)[0] == 59
    store = Store.open(db, read_only=True)
    try:
        sql = "SELECT seq, octet_length(body) FROM ingest_failed"
        failed = store.cursor().execute(sql).fetchall()
    finally:
        store.close()
    assert failed == [(31, entries[31].offset - entries[30].offset)]
