"""OTLP/gRPC: the Trace, Metrics and Logs `Export` services on grpc.aio.

Requests arrive as raw bytes so a malformed payload is answered INVALID_ARGUMENT with the
parser's message (grpc's own deserializer would answer INTERNAL).
"""

from __future__ import annotations

import errno
import socket

import grpc

from claude_top.core.sources.otlp.decode import DecodeFailure, accept_protobuf
from claude_top.core.sources.otlp.signals import SIGNALS
from claude_top.core.store.writer import Backpressure
from claude_top.receiver.ingest import PortInUse, WriteFailed, export_response
from claude_top.receiver.security import read_pem


def _export_handler(signal: str, ingest):
    async def handle_export(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if not ingest.authorized(_authorization(context)):
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or wrong token: send the metadata authorization: Bearer TOKEN",
            )
        try:
            export = await ingest.run(accept_protobuf, body, signal)
        except DecodeFailure as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            await ingest.commit(export)
        except Backpressure as exc:
            await context.send_initial_metadata((("retry-after", str(Backpressure.retry_after_s)),))
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except WriteFailed as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return export_response(export).SerializeToString()

    return grpc.unary_unary_rpc_method_handler(handle_export)


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else None
    return None


def _port_taken(bind: str, port: int) -> bool:
    """Whether something already listens on the address (port 0 is never taken)."""
    if not port:
        return False
    try:
        addresses = socket.getaddrinfo(bind or None, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


async def start_grpc(ingest, config) -> tuple[grpc.aio.Server, int]:
    """Start the gRPC server; returns it and the bound port. Raises PortInUse."""
    if _port_taken(config.bind, config.grpc_port):  # before gRPC logs a bind error of its own
        raise PortInUse(config.grpc_port, "OTLP/gRPC", "--grpc-port")
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", config.max_body),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ],
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                signal.service, {"Export": _export_handler(name, ingest)}
            )
            for name, signal in SIGNALS.items()
        ]
    )
    host = config.bind if ":" not in config.bind else f"[{config.bind}]"
    address = f"{host}:{config.grpc_port}"
    try:
        if config.tls:
            credentials = grpc.ssl_server_credentials([read_pem(config.tls_cert, config.tls_key)])
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if not port:
        raise PortInUse(config.grpc_port, "OTLP/gRPC", "--grpc-port")
    try:
        await server.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(config.grpc_port, "OTLP/gRPC", "--grpc-port") from None
        raise
    return server, port
