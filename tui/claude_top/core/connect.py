"""The settings that point Claude Code at a claude-top: env vars for each OTLP protocol."""

from __future__ import annotations

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
) -> dict[str, str]:
    """Environment for Claude Code: metrics, events and beta traces, short export intervals."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
    port = grpc_port if protocol == "grpc" else http_port
    return {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_TRACES_EXPORTER": "otlp",
        "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{endpoint_host(bind)}:{port}",
        "OTEL_METRIC_EXPORT_INTERVAL": "10000",
        "OTEL_LOGS_EXPORT_INTERVAL": "1000",
        "OTEL_TRACES_EXPORT_INTERVAL": "1000",
    }


def shell_exports(env: dict[str, str]) -> str:
    """`export K=V` lines for a POSIX shell."""
    return "\n".join(f"export {k}={v}" for k, v in env.items())
