"""OTLP/HTTP on aiohttp: `POST /v1/traces|metrics|logs` and `POST /`, protobuf and JSON.

gzip bodies are inflated by aiohttp as they stream in and cut off at the size limit, so a
gzip bomb costs at most `max_body`; a declared length over it is refused before any of the body
is read. Slow clients are dropped: a connection must send a request's headers within
`http_idle_s` of opening or of its last response (idle keep-alive connections included), and
its body without a pause of `http_body_stall_s`, all of it within `http_body_s`. On a loopback
bind only requests addressed to this machine are served (`security.host_allowed`: a web page's
DNS rebinding cannot write telemetry). Errors carry a google.rpc.Status in the request's format.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import time

from aiohttp import web
from google.protobuf import json_format

from claude_top.core.sources.otlp.decode import DecodeFailure, accept_json, accept_protobuf
from claude_top.core.store.writer import Backpressure
from claude_top.receiver.control import Control
from claude_top.receiver.ingest import PortInUse, WriteFailed, export_response
from claude_top.receiver.rejects import RejectLog
from claude_top.receiver.security import host_allowed, is_loopback, server_tls_context

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PATHS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs", "/": None}
LINGER_S = 1.0
"""How long the rest of a refused body is read (and dropped) before the connection closes."""
_GRPC_CODE = {400: 3, 401: 16, 403: 7, 408: 4, 413: 8, 415: 3, 503: 14, 500: 13}


def _status_body(content_type: str, http_status: int, message: str) -> bytes:
    """A google.rpc.Status (code, message) encoded as protobuf or JSON."""
    code = _GRPC_CODE.get(http_status, 2)
    if content_type == PROTOBUF:
        msg = message.encode()
        return b"\x08" + bytes([code]) + b"\x12" + _varint(len(msg)) + msg
    return json.dumps({"code": code, "message": message}).encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _error(content_type: str, status: int, message: str, headers=None) -> web.Response:
    ctype = content_type if content_type in (PROTOBUF, JSON) else JSON
    return web.Response(
        status=status,
        body=_status_body(ctype, status, message),
        content_type=ctype,
        headers=headers,
    )


class _BodyError(Exception):
    """The body cannot be read whole: the status and message to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read_body(request: web.Request, config) -> bytearray:
    """The (inflated) body, at most `max_body` bytes, each part within the stall timeout and
    all of it within `http_body_s`. Raises _BodyError."""
    body = bytearray()
    deadline = time.monotonic() + config.http_body_s
    while True:
        wait = min(config.http_body_stall_s, deadline - time.monotonic())
        try:
            chunk = await asyncio.wait_for(request.content.readany(), max(wait, 0.0))
        except TimeoutError:
            raise _BodyError(
                408,
                f"the request body stopped arriving ({len(body)} bytes read): send it without "
                f"a pause of {config.http_body_stall_s:g} s, all of it within "
                f"{config.http_body_s:g} s",
            ) from None
        except Exception as exc:  # truncated chunked body, bad gzip stream, ...
            raise _BodyError(400, f"cannot read the request body: {exc}") from None
        if not chunk:
            return body
        body += chunk
        if len(body) > config.max_body:
            raise _BodyError(413, f"body larger than the {config.max_body}-byte limit")


def make_app(ingest, config, control: Control | None = None, extra_routes=()) -> web.Application:
    """The aiohttp application serving OTLP/HTTP (and the control API and any other routes,
    such as the status line's, when given) with the limits of `config` (a ReceiverConfig)."""
    max_body = config.max_body
    loopback_only = is_loopback(config.bind)

    @web.middleware
    async def addressed_here(request: web.Request, handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if loopback_only and not host_allowed(host, config.bind):
            response = _error(
                request.content_type,
                403,
                f"Host {host!r} is not this machine: claude-top listens on {config.bind} and "
                "answers only requests addressed to localhost or a loopback address (a web page "
                "could otherwise write telemetry through DNS rebinding)",
            )
            response.force_close()
            return response
        return await handler(request)

    async def handle_export(request: web.Request) -> web.Response:
        signal = _PATHS[request.path]
        ctype = request.content_type
        if not ingest.authorized(request.headers.get("Authorization")):
            return _error(
                ctype,
                401,
                "missing or wrong token: send the header Authorization: Bearer TOKEN",
                {"WWW-Authenticate": "Bearer"},
            )
        if ctype not in (PROTOBUF, JSON):
            return _error(
                JSON,
                415,
                f"unsupported content type {ctype!r}: send {PROTOBUF} or {JSON}",
            )
        declared = request.content_length
        try:
            if declared is not None and declared > max_body:
                raise _BodyError(
                    413, f"Content-Length {declared} is over the {max_body}-byte limit"
                )
            body = await _read_body(request, config)
        except _BodyError as exc:
            # the rest of the body is not read, so the connection cannot be reused: say so
            response = _error(ctype, exc.status, str(exc))
            response.force_close()
            return response
        accept = accept_protobuf if ctype == PROTOBUF else accept_json
        try:
            export = await ingest.run(accept, body, signal)
        except DecodeFailure as exc:
            return _error(ctype, 400, str(exc))
        try:
            await ingest.commit(export)
        except Backpressure as exc:
            return _error(ctype, 503, str(exc), {"Retry-After": str(Backpressure.retry_after_s)})
        except WriteFailed as exc:
            return _error(ctype, 503, str(exc), {"Retry-After": "1"})
        response = export_response(export)
        if ctype == PROTOBUF:
            return web.Response(body=response.SerializeToString(), content_type=PROTOBUF)
        doc = json_format.MessageToDict(response) if export.rejected else {}
        return web.json_response(doc)

    app = web.Application(client_max_size=max_body, middlewares=[addressed_here])
    for path in _PATHS:
        app.router.add_post(path, handle_export)
    if control is not None:
        app.add_routes(control.routes())
    app.add_routes(extra_routes)
    return app


def _rejects_logger() -> logging.Logger:
    """aiohttp's logger for requests it refuses itself (malformed HTTP): one line each on
    stderr at most, rate-limited, no traceback."""
    logger = logging.getLogger("claude_top.http")
    if not any(isinstance(h, RejectLog) for h in logger.handlers):
        logger.addHandler(RejectLog())
        logger.propagate = False
    return logger


async def start_http(
    ingest, config, control: Control | None = None, extra_routes=()
) -> tuple[web.AppRunner, int]:
    """Start the HTTP server; returns its runner and the bound port. Raises OSError."""
    tls = server_tls_context(config.tls_cert, config.tls_key) if config.tls else None
    app = make_app(ingest, config, control, extra_routes)
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=1.0,
        keepalive_timeout=config.http_idle_s,
        lingering_time=LINGER_S,
        logger=_rejects_logger(),
    )
    await runner.setup()
    site = web.TCPSite(runner, config.bind, config.http_port, ssl_context=tls)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(config.http_port, "OTLP/HTTP", "--http-port") from None
        raise
    return runner, runner.addresses[0][1]
