"""One Claude Code process as OTLP: its resource, event sequence, records waiting for their time
and metric deltas, and the export requests due by a virtual time (metrics every 10 s)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from claude_top.demo.catalog import (
    EVENTS_SCOPE,
    LOG_FLAGS,
    METRIC_INTERVAL_NS,
    METRICS,
    METRICS_SCOPE,
    MS,
    NS,
    TRACING_SCOPE,
    VERSION,
    Profile,
)

# --- attributes ----------------------------------------------------------------------------


def _value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[_value(x) for x in v]))
    return AnyValue(string_value=str(v))


def attributes(pairs: list[tuple[str, Any]]) -> list[KeyValue]:
    """OTLP key-values; str values stay strings (Claude Code's "42" / "true" included)."""
    return [KeyValue(key=k, value=_value(v)) for k, v in pairs]


def compact_json(d: dict) -> str:
    """JSON without spaces, as Claude Code writes tool inputs and parameters."""
    return json.dumps(d, separators=(",", ":"))


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // NS)) + f".{ns % NS // MS:03d}Z"


# --- the process ---------------------------------------------------------------------------

# what a process hands the sender: (signal, export request, the ledger's notes for its records)
Export = tuple[str, Any, list[dict]]


@dataclass
class _Out:
    """A log record or span waiting for its time, and what the ledger learns when it is acked."""

    t_ns: int
    signal: str
    pb: Any
    note: dict


class Process:
    """One Claude Code process: a resource, an event.sequence, metric series, pending records."""

    def __init__(
        self, profile: Profile, user_id: str, session_id: str, number: int, start_ns: int
    ) -> None:
        self.profile = profile
        self.user_id = user_id
        self.session_id = session_id
        self.number = number
        self.start_ns = start_ns
        self.resource = Resource(
            attributes=attributes(
                [
                    ("host.arch", profile.os[2]),
                    ("os.type", profile.os[0]),
                    ("os.version", profile.os[1]),
                    ("service.name", "claude-code"),
                    ("service.version", VERSION),
                    *profile.custom,
                ]
            )
        )
        self.seq = 0
        self.interactions = 0
        self.pending: list[_Out] = []
        self.deltas: list[tuple[int, str, tuple, float, str]] = []
        self.last_export_ns = start_ns
        self.next_export_ns = start_ns + METRIC_INTERVAL_NS
        self.exit_ns: int | None = None
        self.finished = False

    def standard(self, sid: str | None = None) -> list[tuple[str, Any]]:
        """The attributes on every event, span and metric point (under `sid` when given)."""
        return [
            ("user.id", self.user_id),
            ("session.id", sid or self.session_id),
            ("anthropic.provider", "firstParty"),
            ("anthropic.custom_base_url", False),
            ("terminal.type", self.profile.terminal),
            *self.profile.custom,
        ]

    def note(self, kind: str, name: str, sid: str | None = None, **kw: Any) -> dict:
        """What the ledger learns about one record when it is acknowledged."""
        return {
            "kind": kind,
            "name": name,
            "session_id": sid or self.session_id,
            "process": self.number,
            **kw,
        }

    def add_events(self, events: list[tuple], sid: str | None = None) -> None:
        """(t, name, attrs, trace_id, span_id, note) in time order -> log records with sequence."""
        for t_ns, name, attrs, trace_id, span_id, note in sorted(events, key=lambda e: e[0]):
            t = t_ns // MS * MS  # Claude Code stamps events to the millisecond
            rec = LogRecord(
                time_unix_nano=t,
                observed_time_unix_nano=t,
                body=AnyValue(string_value=f"claude_code.{name}"),
                attributes=attributes(
                    [
                        *self.standard(sid),
                        ("event.name", name),
                        ("event.timestamp", _iso(t)),
                        ("event.sequence", self.seq),
                        *attrs,
                    ]
                ),
            )
            if trace_id:
                rec.trace_id, rec.span_id, rec.flags = trace_id, span_id, LOG_FLAGS
            self.seq += 1
            self.pending.append(_Out(t, "logs", rec, note))

    def add_span(self, span: Span, note: dict) -> None:
        self.pending.append(_Out(span.end_time_unix_nano, "traces", span, note))

    def add_delta(self, t: int, metric: str, attrs: tuple, value: float, sid: str | None = None):
        self.deltas.append((t, metric, attrs, value, sid or self.session_id))

    def take_due(self, upto: int, final: bool = False) -> list[Export]:
        """Requests for the records and metric deltas due by `upto` (all of them when `final`);
        a process that has exited and sent everything is `finished`."""
        exports: list[Export] = []
        due = [o for o in self.pending if final or o.t_ns <= upto]
        if due:
            self.pending = [o for o in self.pending if not (final or o.t_ns <= upto)]
            due.sort(key=lambda o: o.t_ns)
            logs = [o for o in due if o.signal == "logs"]
            spans = [o for o in due if o.signal == "traces"]
            if logs:
                exports.append(("logs", _logs_request(self, logs), [o.note for o in logs]))
            if spans:
                exports.append(("traces", _traces_request(self, spans), [o.note for o in spans]))
        exited = self.exit_ns is not None and self.exit_ns <= upto
        export_at = None
        if final or exited:
            export_at = max(
                self.exit_ns if self.exit_ns is not None else upto,
                self.last_export_ns + MS,
                *(d[0] for d in self.deltas if final),
            )
        elif upto >= self.next_export_ns:
            export_at = (
                self.next_export_ns
                + (upto - self.next_export_ns) // (METRIC_INTERVAL_NS) * METRIC_INTERVAL_NS
            )
        if export_at is not None:
            deltas = [d for d in self.deltas if final or d[0] <= export_at]
            self.deltas = [d for d in self.deltas if not (final or d[0] <= export_at)]
            if deltas:
                exports.append(("metrics", *_metric_request(self, export_at, deltas)))
            self.last_export_ns = export_at
            self.next_export_ns = export_at + METRIC_INTERVAL_NS
            if (final or exited) and not self.pending and not self.deltas:
                self.finished = True
        return exports


def _logs_request(proc: Process, logs: list[_Out]) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=proc.resource,
                scope_logs=[ScopeLogs(scope=EVENTS_SCOPE, log_records=[o.pb for o in logs])],
            )
        ]
    )


def _traces_request(proc: Process, spans: list[_Out]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=proc.resource,
                scope_spans=[ScopeSpans(scope=TRACING_SCOPE, spans=[o.pb for o in spans])],
            )
        ]
    )


def _metric_request(
    proc: Process, upto: int, deltas: list[tuple]
) -> tuple[ExportMetricsServiceRequest, list[dict]]:
    """One DELTA sum point per series since the last export, and the ledger's notes."""
    by_series: dict[tuple, float] = {}
    for _t, metric, attrs, value, sid in deltas:
        key = (metric, attrs, sid)
        by_series[key] = by_series.get(key, 0.0) + value
    metrics: dict[str, Metric] = {}
    notes: list[dict] = []
    for (metric, attrs, sid), value in by_series.items():
        m = metrics.get(metric)
        if m is None:
            desc, unit = METRICS[metric]
            m = metrics[metric] = Metric(
                name=metric,
                description=desc,
                unit=unit,
                sum=Sum(
                    aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA,
                    is_monotonic=True,
                ),
            )
        m.sum.data_points.append(
            NumberDataPoint(
                start_time_unix_nano=proc.last_export_ns,
                time_unix_nano=upto,
                as_double=value,
                attributes=attributes([*proc.standard(sid), *attrs]),
            )
        )
        notes.append(proc.note("metric", metric, sid, value=value))
    ordered = [metrics[name] for name in METRICS if name in metrics]
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=proc.resource,
                scope_metrics=[ScopeMetrics(scope=METRICS_SCOPE, metrics=ordered)],
            )
        ]
    )
    return req, notes
