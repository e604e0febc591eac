"""The settings that point Claude Code at a claude-top: env vars for each OTLP protocol."""

from __future__ import annotations

import os
import shlex
from urllib.parse import quote

PROTOCOLS = ("grpc", "http/protobuf", "http/json")
_ANY_ADDRESS = {"0.0.0.0", "::", ""}


def endpoint_host(bind: str) -> str:
    """The host a local Claude Code should dial for a listener bound to `bind`."""
    if bind in _ANY_ADDRESS:
        return "127.0.0.1"
    return f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind


def env_block(
    bind: str = "127.0.0.1",
    grpc_port: int = 4317,
    http_port: int = 4318,
    protocol: str = "grpc",
    *,
    token: str | None = None,
    tls_cert: str | None = None,
) -> dict[str, str]:
    """Environment for Claude Code: metrics, events and beta traces, short export intervals.

    With a token, OTEL_EXPORTER_OTLP_HEADERS carries `authorization=Bearer%20TOKEN` (the OTel
    spec's W3C-baggage format: values percent-encoded). With TLS the endpoint is https and
    OTEL_EXPORTER_OTLP_CERTIFICATE trusts the server's certificate (needed when self-signed).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
    port = grpc_port if protocol == "grpc" else http_port
    scheme = "https" if tls_cert else "http"
    env = {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_TRACES_EXPORTER": "otlp",
        "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"{scheme}://{endpoint_host(bind)}:{port}",
        "OTEL_METRIC_EXPORT_INTERVAL": "10000",
        "OTEL_LOGS_EXPORT_INTERVAL": "1000",
        "OTEL_TRACES_EXPORT_INTERVAL": "1000",
    }
    if token:
        env["OTEL_EXPORTER_OTLP_HEADERS"] = "authorization=" + quote(f"Bearer {token}", safe="")
    if tls_cert:
        env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = os.path.abspath(tls_cert)
    return env


def shell_exports(env: dict[str, str]) -> str:
    """`export K=V` lines for a POSIX shell (values quoted only when they need it)."""
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
