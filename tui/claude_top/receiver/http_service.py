"""OTLP/HTTP on aiohttp: `POST /v1/traces|metrics|logs` and `POST /`, protobuf and JSON.

gzip bodies are inflated by aiohttp as they stream in and cut off at the size limit, so a
gzip bomb costs at most `max_body`. Errors carry a google.rpc.Status in the request's format.
"""

from __future__ import annotations

import errno
import json

from aiohttp import web
from google.protobuf import json_format

from claude_top.core.sources.otlp.decode import DecodeFailure, accept_json, accept_protobuf
from claude_top.core.store.writer import Backpressure
from claude_top.receiver.control import Control
from claude_top.receiver.ingest import PortInUse, WriteFailed, export_response
from claude_top.receiver.security import server_tls_context

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PATHS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs", "/": None}
_GRPC_CODE = {400: 3, 401: 16, 413: 8, 415: 3, 503: 14, 500: 13}


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


def make_app(
    ingest, max_body: int, control: Control | None = None, extra_routes=()
) -> web.Application:
    """The aiohttp application serving OTLP/HTTP (and the control API and any other routes,
    such as the status line's, when given)."""

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
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(ctype, 413, f"body larger than the {max_body}-byte limit")
        except Exception as exc:  # truncated chunked body, bad gzip stream, ...
            # the rest of the body cannot be read, so the connection cannot be reused: say so
            response = _error(ctype, 400, f"cannot read the request body: {exc}")
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

    app = web.Application(client_max_size=max_body)
    for path in _PATHS:
        app.router.add_post(path, handle_export)
    if control is not None:
        app.add_routes(control.routes())
    app.add_routes(extra_routes)
    return app


async def start_http(
    ingest, config, control: Control | None = None, extra_routes=()
) -> tuple[web.AppRunner, int]:
    """Start the HTTP server; returns its runner and the bound port. Raises OSError."""
    tls = server_tls_context(config.tls_cert, config.tls_key) if config.tls else None
    app = make_app(ingest, config.max_body, control, extra_routes)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
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
