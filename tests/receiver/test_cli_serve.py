"""`claude-top serve` as a real process: it says where it listens and prints the env block,
stores what it acknowledges, exits 0 on SIGTERM/SIGINT, and refuses a taken port or a foreign
--db with a one-line error and exit 2."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from receiver_harness import SERVICES

from claude_top.core.sources.otlp.decode import accept_protobuf
from claude_top.core.store.database import Store
from claude_top.core.store.journal import HEADER, Journal
from claude_top.core.store.writer import StoreWriter
from truth import Truth, grpc_requests, http_requests

LISTENING = re.compile(r"OTLP/gRPC on 127\.0\.0\.1:(\d+), OTLP/HTTP on http://127\.0\.0\.1:(\d+)")
ENV_LAST = "OTEL_TRACES_EXPORT_INTERVAL"


class Serve:
    """A `claude-top` process; its output goes to files, which no child process can hold open."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.out_path, self.err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "claude_top.cli", *args],
                stdout=out,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def read_until(self, marker: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while marker not in self.stdout:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"no {marker!r}: {self.stdout!r} {self.stderr!r}")
            time.sleep(0.05)
        return self.stdout

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            message = f"claude-top did not exit: {self.stdout!r} {self.stderr!r}"
            raise AssertionError(message) from None

    def stop(self, sig=signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.wait(30)

    def children(self) -> list[int]:
        """Processes this one started (decode workers, multiprocessing's resource tracker)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return pids

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def env_block(text: str) -> dict[str, str]:
    return dict(re.findall(r"^export (\w+)=(\S+)$", text, re.M))


def counts(path: Path) -> dict[str, int]:
    store = Store.open(path, read_only=True)
    try:
        cur = store.cursor()
        return {
            t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("spans", "events", "metric_points")
        }
    finally:
        store.close()


async def send_fixtures(grpc_port: int, http_port: int) -> None:
    import aiohttp
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        for sig, body in grpc_requests("basic.grpc"):
            assert await channel.unary_unary(SERVICES[sig])(body, timeout=10) == b""
    async with aiohttp.ClientSession() as session:
        for d in http_requests("basic.http-json"):
            url = f"http://127.0.0.1:{http_port}{d['path']}"
            async with session.post(url, data=d["body"], headers={"Content-Type": d["ctype"]}) as r:
                assert r.status == 200, await r.text()


def expected() -> dict[str, int]:
    t = Truth("basic.grpc", "basic.http-json")
    return {"spans": len(t.spans), "events": len(t.events), "metric_points": t.data_points}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_prints_endpoints_and_env_stores_and_exits_0(tmp_path, sig):
    db = tmp_path / "ct.duckdb"
    serve = Serve(tmp_path, "serve", "--db", str(db), "--grpc-port", "0", "--http-port", "0")
    try:
        banner = serve.read_until(ENV_LAST)
        m = LISTENING.search(banner)
        assert m, banner
        grpc_port, http_port = int(m[1]), int(m[2])
        assert grpc_port and http_port and grpc_port != http_port
        assert str(db) in banner
        env = env_block(banner)
        assert env["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1"
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://127.0.0.1:{grpc_port}"
        for exporter in ("OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER", "OTEL_TRACES_EXPORTER"):
            assert env[exporter] == "otlp"
        assert env["CLAUDE_CODE_ENHANCED_TELEMETRY_BETA"] == "1"
        await send_fixtures(grpc_port, http_port)
        assert serve.stop(sig) == 0, serve.stderr
    finally:
        serve.kill()
    assert "stopped" in serve.stdout
    assert "Traceback" not in serve.stderr, serve.stderr
    assert counts(db) == expected()


async def test_acknowledged_data_survives_sigkill(tmp_path):
    """Killed without a chance to flush: what was acknowledged is in the file (or its journal),
    and no helper process of the killed claude-top is left running."""
    db = tmp_path / "ct.duckdb"
    serve = Serve(tmp_path, "serve", "--db", str(db), "--grpc-port", "0", "--http-port", "0")
    try:
        m = LISTENING.search(serve.read_until(ENV_LAST))
        await send_fixtures(int(m[1]), int(m[2]))
        helpers = serve.children()
    finally:
        serve.kill()
    try:
        deadline = time.monotonic() + 10
        while (alive := [p for p in helpers if Path(f"/proc/{p}").exists()]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert alive == [], "helper processes outlived the killed claude-top"
    finally:
        for pid in helpers:  # the test started them (through claude-top): end them by id
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    store = Store.open(db)
    try:
        writer = StoreWriter(store, decode_in_worker=False)
        assert writer.sync(10)
        writer.close()
    finally:
        store.close()
    assert counts(db) == expected()


def listening_socket() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


@pytest.mark.parametrize("which", ["--grpc-port", "--http-port"])
def test_port_in_use_is_a_one_line_error(tmp_path, which):
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        ports = {"--grpc-port": "0", "--http-port": "0", which: str(port)}
        args = [a for flag, value in ports.items() for a in (flag, value)]
        serve = Serve(tmp_path, "serve", "--db", ":memory:", *args)
        assert serve.wait() == 2
    lines = serve.stderr.strip().splitlines()
    assert len(lines) == 1, serve.stderr
    assert str(port) in lines[0]
    assert which in lines[0]
    assert "in use" in lines[0]


def test_db_that_is_not_duckdb_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n" * 200)
    serve = Serve(tmp_path, "serve", "--db", str(path), "--grpc-port", "0", "--http-port", "0")
    assert serve.wait() == 2
    lines = serve.stderr.strip().splitlines()
    assert len(lines) == 1, serve.stderr
    assert str(path) in lines[0]
    assert "DuckDB" in lines[0]
    assert path.read_text() == "my notes\n" * 200


def test_db_of_another_application_is_refused(tmp_path):
    path = tmp_path / "app.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE orders (id INTEGER)")
    con.close()
    serve = Serve(tmp_path, "serve", "--db", str(path), "--grpc-port", "0", "--http-port", "0")
    assert serve.wait() == 2
    err = serve.stderr
    assert len(err.strip().splitlines()) == 1, err
    assert "did not create" in err and "orders" in err and "--db" in err


def test_console_script_serve_help():
    script = Path(sys.executable).with_name("claude-top")
    if not script.exists():
        pytest.skip("the claude-top console script is not installed next to this python")
    out = subprocess.run(
        [str(script), "serve", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for flag in ("--db", "--grpc-port", "--http-port", "--bind"):
        assert flag in out


def test_an_export_that_cannot_be_indexed_is_reported(tmp_path):
    """A journalled export damaged on disk: serve says so on stderr, indexes the rest, and the
    export waits in ingest_failed."""
    db = tmp_path / "ct.duckdb"
    Store.open(db).close()
    exports = [accept_protobuf(signal, body) for signal, body in grpc_requests("basic.grpc")]
    journal = Journal(Path(f"{db}.journal"))  # acknowledged by a claude-top that then died
    journal.append([(e.signal, e.received_ns, e.count, e.body) for e in exports])
    journal.close()
    logs = next(e for e in journal.read(0, journal.last_seq, 10) if e.signal == "logs")
    with open(logs.path, "r+b") as f:  # a flipped bit in the logs export
        f.seek(logs.offset + HEADER.size + 2)
        byte = f.read(1)[0]
        f.seek(logs.offset + HEADER.size + 2)
        f.write(bytes([byte ^ 0x01]))

    serve = Serve(tmp_path, "serve", "--db", str(db), "--grpc-port", "0", "--http-port", "0")
    serve.read_until(ENV_LAST)
    deadline = time.monotonic() + 20
    while "indexing error" not in serve.stderr and time.monotonic() < deadline:
        time.sleep(0.1)
    assert serve.stop() == 0
    told = f"1 indexing error(s); latest: export {logs.seq}: journal record {logs.seq} fails"
    assert told in serve.stderr
    truth = Truth("basic.grpc")
    assert counts(db) == {
        "spans": len(truth.spans),
        "events": 0,
        "metric_points": truth.data_points,
    }
    store = Store.open(db, read_only=True)
    failed = store.cursor().execute("SELECT seq, signal, records FROM ingest_failed").fetchall()
    store.close()
    assert failed == [(logs.seq, "logs", len(truth.events))]
