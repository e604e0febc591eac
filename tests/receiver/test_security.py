"""Who may send: a bearer token on both transports, loopback unless told otherwise, TLS on both
listeners, and a database only its user can read."""

from __future__ import annotations

import json
import os
import re
import selectors
import shlex
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import grpc
import pytest
from receiver_harness import JSON, PROTOBUF, SERVICES, running_server

from claude_top.core.connect import env_block, shell_exports
from claude_top.receiver.security import bearer_matches, is_loopback, listen_problem
from truth import Truth, grpc_requests, http_requests

BASIC = dict(grpc_requests("basic.grpc"))
BASIC_JSON = {d["path"]: d["body"] for d in http_requests("basic.http-json")}
TRUTH = Truth("basic.grpc")
JSON_TRUTH = Truth("basic.http-json")
TOKEN = "s3cret-Token_1.2~"
NOTHING = {"traces": 0, "metrics": 0, "logs": 0}


def bearer(token: str = TOKEN) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


# --- the token, over gRPC ------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [None, bearer("wrong"), bearer(TOKEN + "x"), (("authorization", TOKEN),)],
    ids=["none", "wrong", "longer", "no-scheme"],
)
async def test_grpc_without_the_token_is_unauthenticated_and_stores_nothing(metadata):
    async with running_server(token=TOKEN) as server:
        call = server.channel.unary_unary(SERVICES["logs"])
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(BASIC["logs"], metadata=metadata, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "Bearer" in err.value.details()
        assert server.durable_records() == NOTHING


async def test_grpc_with_the_token_is_stored():
    async with running_server(token=TOKEN) as server:
        for sig, body in grpc_requests("basic.grpc"):
            assert await server.channel.unary_unary(SERVICES[sig])(body, metadata=bearer()) == b""
        assert server.counts() == {
            "spans": len(TRUTH.spans),
            "events": len(TRUTH.events),
            "metric_points": TRUTH.data_points,
        }


# --- the token, over HTTP -----------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", ""],
    ids=["none", "wrong", "basic", "shorter", "empty"],
)
@pytest.mark.parametrize("ctype", [PROTOBUF, JSON])
async def test_http_without_the_token_is_401_and_stores_nothing(authorization, ctype):
    headers = {"Authorization": authorization} if authorization is not None else None
    body = BASIC["logs"] if ctype == PROTOBUF else BASIC_JSON["/v1/logs"]
    async with running_server(token=TOKEN) as server:
        reply = await server.post("/v1/logs", body, ctype, headers)
        assert reply.status == 401
        assert reply.headers["WWW-Authenticate"] == "Bearer"
        if ctype == JSON:
            assert json.loads(reply.body)["code"] == 16  # google.rpc UNAUTHENTICATED
        assert server.durable_records() == NOTHING


async def test_http_token_is_checked_before_anything_else_is_said():
    """An unauthenticated sender learns nothing about the content type or the body."""
    async with running_server(token=TOKEN) as server:
        reply = await server.post("/v1/logs", b"\xff\xff", "text/plain")
        assert reply.status == 401


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN} ", f"Bearer%20{TOKEN}"],
    ids=["exact", "lower-case-scheme", "extra-spaces", "not-percent-decoded"],
)
async def test_http_with_the_token_is_stored(authorization):
    async with running_server(token=TOKEN) as server:
        for path, body in BASIC_JSON.items():
            reply = await server.post(path, body, JSON, {"Authorization": authorization})
            assert reply.status == 200, reply.body
        assert server.counts() == {
            "spans": len(JSON_TRUTH.spans),
            "events": len(JSON_TRUTH.events),
            "metric_points": JSON_TRUTH.data_points,
        }


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (f"Bearer {TOKEN}", True),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer{TOKEN}", False),
        (f"Token {TOKEN}", False),
        ("Bearer ", False),
        (None, False),
        ("Bearer ü", False),
    ],
)
def test_bearer_matches(header, ok):
    assert bearer_matches(header, TOKEN) is ok


# --- loopback unless told otherwise ----------------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.20", False),
        ("10.0.0.1", False),
        ("no-such-host.invalid", False),
    ],
)
def test_is_loopback(bind, loopback):
    assert is_loopback(bind) is loopback


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (("0.0.0.0", None, False, None, None), ["--token", "--insecure", "0.0.0.0"]),
        (("::", None, False, None, None), ["--token", "--insecure"]),
        (("127.0.0.1", "", False, None, None), ["empty"]),
        (("127.0.0.1", "two words", False, None, None), ["spaces"]),
        (("127.0.0.1", None, False, "cert.pem", None), ["--tls-key", "both"]),
        (("127.0.0.1", None, False, None, "key.pem"), ["--tls-cert", "both"]),
        (("127.0.0.1", None, False, "/nonexistent/c.pem", "/nonexistent/k.pem"), ["c.pem"]),
    ],
)
def test_listen_problems(options, words):
    problem = listen_problem(*options)
    assert problem and "\n" not in problem
    for w in words:
        assert w in problem


@pytest.mark.parametrize(
    "options",
    [
        ("127.0.0.1", None, False, None, None),
        ("0.0.0.0", TOKEN, False, None, None),
        ("0.0.0.0", None, True, None, None),
        ("::1", TOKEN, False, None, None),
    ],
)
def test_listen_allowed(options):
    assert listen_problem(*options) is None


# --- the env block -------------------------------------------------------------------------


def test_env_block_carries_the_token_percent_encoded():
    token = "a+b/c=d%e"
    env = env_block("0.0.0.0", 4317, 4318, "grpc", token=token)
    header = env["OTEL_EXPORTER_OTLP_HEADERS"]
    assert header == "authorization=Bearer%20a%2Bb%2Fc%3Dd%25e"
    key, _, value = header.partition("=")  # W3C baggage: key=value, the value percent-encoded
    assert (key, unquote(value)) == ("authorization", f"Bearer {token}")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4317"
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in env_block()


@pytest.mark.parametrize(("protocol", "port"), [("grpc", 4317), ("http/protobuf", 4318)])
def test_env_block_with_tls_is_https_and_trusts_the_certificate(protocol, port):
    env = env_block("127.0.0.1", 4317, 4318, protocol, tls_cert="certs/my cert.pem")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"https://127.0.0.1:{port}"
    assert env["OTEL_EXPORTER_OTLP_CERTIFICATE"] == os.path.abspath("certs/my cert.pem")
    # a path with a space survives the shell
    line = next(x for x in shell_exports(env).splitlines() if "CERTIFICATE" in x)
    out = subprocess.run(
        ["sh", "-c", f'{line}; printf %s "$OTEL_EXPORTER_OTLP_CERTIFICATE"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == os.path.abspath("certs/my cert.pem")


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 (made with the openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_round_trip_on_both_listeners(certificate):
    cert, key = certificate
    async with running_server(tls_cert=str(cert), tls_key=str(key), token=TOKEN) as server:
        rx = server.rx
        assert rx.endpoints["http"].startswith("https://")
        env = rx.env_block()
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"https://127.0.0.1:{rx.grpc_port}"
        assert env["OTEL_EXPORTER_OTLP_CERTIFICATE"] == str(cert)

        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        async with grpc.aio.secure_channel(f"127.0.0.1:{rx.grpc_port}", credentials) as channel:
            for sig, body in grpc_requests("basic.grpc"):
                assert await channel.unary_unary(SERVICES[sig])(body, metadata=bearer()) == b""

        ctx = ssl.create_default_context(cafile=str(cert))
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": JSON}
        async with aiohttp.ClientSession() as session:
            for path, body in BASIC_JSON.items():
                url = f"https://127.0.0.1:{rx.http_port}{path}"
                async with session.post(url, data=body, headers=headers, ssl=ctx) as r:
                    assert r.status == 200, await r.text()
        assert server.counts() == {
            "spans": len(TRUTH.spans) + len(JSON_TRUTH.spans),
            "events": len(TRUTH.events) + len(JSON_TRUTH.events),
            "metric_points": TRUTH.data_points + JSON_TRUTH.data_points,
        }


async def test_tls_listeners_refuse_plain_text(certificate):
    cert, key = certificate
    async with running_server(tls_cert=str(cert), tls_key=str(key)) as server:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await server.export("logs", BASIC["logs"], timeout=3)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(aiohttp.ClientError):
            await server.post("/v1/logs", BASIC["logs"])
        assert server.durable_records() == NOTHING


# --- the command line ------------------------------------------------------------------------


def claude_top(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "claude_top.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def read_until(proc: subprocess.Popen, marker: str, timeout: float = 30.0) -> str:
    out = b""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while marker.encode() not in out:
            remaining = deadline - time.monotonic()
            chunk = os.read(fd, 65536) if remaining > 0 and sel.select(remaining) else b""
            if not chunk:
                proc.kill()
                _, err = proc.communicate()
                raise AssertionError(f"no {marker!r} from claude-top: {out!r} {err!r}")
            out += chunk
    return out.decode()


def one_line_refusal(*args: str) -> str:
    proc = claude_top(*args)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"claude-top {' '.join(args)} did not refuse") from None
    assert proc.returncode == 2, (out, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


NO_PORTS = ("--grpc-port", "0", "--http-port", "0", "--db", ":memory:")


@pytest.mark.parametrize("command", [("serve",), ()], ids=["serve", "ui"])
@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_non_loopback_bind_without_a_token_is_refused(command, bind):
    line = one_line_refusal(*command, "--bind", bind, *NO_PORTS)
    assert "--token" in line and "--insecure" in line and bind in line


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (("--tls-cert", "c.pem"), ["--tls-key"]),
        (("--tls-key", "k.pem"), ["--tls-cert"]),
        (("--token", "two words"), ["--token"]),
    ],
)
def test_bad_security_options_are_refused(options, words):
    for command in (("serve",), ()):
        line = one_line_refusal(*command, *options, *NO_PORTS)
        assert all(w in line for w in words), line


def test_certificate_that_is_not_one_is_refused(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate\n")
    line = one_line_refusal("serve", "--tls-cert", str(cert), "--tls-key", str(cert), *NO_PORTS)
    assert str(cert) in line and "PEM" in line


def test_unknown_redact_kind_is_a_usage_error():
    proc = claude_top("serve", "--redact", "prompts,secrets", *NO_PORTS)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "'secrets'" in err.decode() and "prompts, commands, paths" in err.decode()


LISTENING = re.compile(r"OTLP/gRPC on ([\d.]+):(\d+), OTLP/HTTP on http://[\d.]+:(\d+)")


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, err
    return out.decode(), err.decode()


def test_insecure_allows_any_address_with_a_warning():
    proc = claude_top("serve", "--bind", "0.0.0.0", "--insecure", *NO_PORTS)
    try:
        banner = read_until(proc, "OTEL_TRACES_EXPORT_INTERVAL")
    finally:
        stop(proc)
    assert LISTENING.search(banner)
    assert "WARNING: no token on 0.0.0.0" in banner


async def test_serve_with_a_token_on_any_address(tmp_path):
    """The options given before `serve` count too; the printed env block works as printed."""
    db = tmp_path / "ct.duckdb"
    proc = claude_top("--token", TOKEN, "serve", "--bind", "0.0.0.0", "--db", str(db),
                      "--grpc-port", "0", "--http-port", "0")  # fmt: skip
    try:
        banner = read_until(proc, "OTEL_TRACES_EXPORT_INTERVAL")
        m = LISTENING.search(banner)
        assert m and m[1] == "127.0.0.1", banner
        assert "bearer token required" in banner
        env = dict(  # as a shell reads the export lines
            shlex.split(line)[1].split("=", 1)
            for line in banner.splitlines()
            if line.startswith("export ")
        )
        key, _, value = env["OTEL_EXPORTER_OTLP_HEADERS"].partition("=")
        metadata = ((key, unquote(value)),)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{m[2]}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await channel.unary_unary(SERVICES["logs"])(BASIC["logs"], timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            call = channel.unary_unary(SERVICES["logs"])
            assert await call(BASIC["logs"], metadata=metadata, timeout=10) == b""
    finally:
        stop(proc)
    from claude_top.core.store.database import Store

    store = Store.open(db, read_only=True)
    try:
        assert store.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == len(
            TRUTH.events
        )
    finally:
        store.close()


# --- a database only its user can read ----------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_database_its_wal_and_its_folder_are_the_users_only(tmp_path):
    """Under a permissive umask, `serve` still makes the data folder 0700 and the files 0600."""
    data_home = tmp_path / "xdg"
    old = os.umask(0o022)
    try:
        proc = claude_top("serve", "--grpc-port", "0", "--http-port", "0",
                          env={"XDG_DATA_HOME": str(data_home)})  # fmt: skip
    finally:
        os.umask(old)
    folder = data_home / "claude-top"
    db = folder / "claude-top.duckdb"
    wal = Path(str(db) + ".wal")
    try:
        banner = read_until(proc, "OTEL_TRACES_EXPORT_INTERVAL")
        assert str(db) in banner
        port = LISTENING.search(banner)[2]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for sig, body in grpc_requests("basic.grpc"):
                assert await channel.unary_unary(SERVICES[sig])(body, timeout=10) == b""
        journal = Path(str(db) + ".journal")
        segments = list(journal.iterdir())
        assert segments  # the acknowledged exports, journalled
        assert {mode(p) for p in segments} == {0o600}
        assert mode(journal) == 0o700
        assert mode(db) == 0o600
    finally:
        stop(proc)
    assert mode(folder) == 0o700
    assert mode(data_home) == 0o700  # made for it, so also private
    assert mode(db) == 0o600
    assert not wal.exists() or mode(wal) == 0o600
    assert {p.name for p in folder.iterdir()} <= {db.name, wal.name, journal.name}
