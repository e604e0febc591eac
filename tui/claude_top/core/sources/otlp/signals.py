"""The three OTLP signals: gRPC service, request and response types, HTTP path, and the table
their records are stored in. One table for the receivers, the decoder, the demo and the tests."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class Signal:
    """One OTLP signal as it travels: over gRPC, over HTTP, and into the store."""

    name: str
    service: str
    request: type[Message]
    response: type[Message]
    rejected_field: str
    """The `partial_success` field counting the records a receiver rejected."""
    table: str

    @property
    def method(self) -> str:
        """The gRPC method an exporter calls: `/<service>/Export`."""
        return f"/{self.service}/Export"

    @property
    def http_path(self) -> str:
        return f"/v1/{self.name}"


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal(
            "traces",
            "opentelemetry.proto.collector.trace.v1.TraceService",
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
            "rejected_spans",
            "spans",
        ),
        Signal(
            "metrics",
            "opentelemetry.proto.collector.metrics.v1.MetricsService",
            ExportMetricsServiceRequest,
            ExportMetricsServiceResponse,
            "rejected_data_points",
            "metric_points",
        ),
        Signal(
            "logs",
            "opentelemetry.proto.collector.logs.v1.LogsService",
            ExportLogsServiceRequest,
            ExportLogsServiceResponse,
            "rejected_log_records",
            "events",
        ),
    )
}
