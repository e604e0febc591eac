"""OTLP requests -> the rows the collector's ClickHouse exporter inserts, into chdb.

Follows the exporter's Go code (`exporter_logs.go`, `exporter_traces.go`,
`internal/metrics/sum_metrics.go`; the versions in `tests/clickhouse/ddl/README.md`): every
attribute value becomes `pcommon.Value.AsString()`, ids hex (empty when all zero), a log's time
its timestamp or else its observed time, a span's `Duration` end - start in nanoseconds,
`SpanKind` / `StatusCode` as `traceutil.SpanKindStr` / `StatusCodeStr`. No claude-top code is
used here: the rows are built from the protobuf messages alone.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

DDL = Path(__file__).resolve().parent / "clickhouse" / "ddl"
LAYOUTS = ("current", "older", "five_minutes")
ORDER = (
    "logs",
    "traces",
    "traces_id_ts",
    "traces_id_ts_mv",
    "metrics_sum",
    "metrics_exp_histogram",
)
DATABASE = "otel"
"""The database the vendored DDL names; `create_tables` puts them in another when asked (the
chdb engine is one per process, so each test takes a database of its own)."""
_SESSION = None
_COUNT = 0


def session():
    """The process's chdb session (chdb runs one engine per process)."""
    global _SESSION
    if _SESSION is None:
        import chdb.session

        _SESSION = chdb.session.Session()
    return _SESSION


def new_database(prefix: str = "otel") -> str:
    """A fresh database name in the process's chdb."""
    global _COUNT
    _COUNT += 1
    return f"{prefix}_{_COUNT}"


_TYPES = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
_SPAN_KIND = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
_STATUS = ("Unset", "Ok", "Error")


def go_float(x: float) -> str:
    """strconv.FormatFloat(x, 'f', -1, 64): the shortest digits, never an exponent."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    s = format(Decimal(repr(x)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _raw(v):
    """pcommon.Value.AsRaw()."""
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_raw(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _raw(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, which) if which else None


def _go_json(x) -> str:
    """encoding/json as jsoniter's standard-compatible config writes it (keys sorted, HTML
    characters escaped)."""
    text = json.dumps(x, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def as_string(v) -> str:
    """pcommon.Value.AsString()."""
    which = v.WhichOneof("value")
    if which is None:
        return ""
    if which == "string_value":
        return v.string_value
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "int_value":
        return str(v.int_value)
    if which == "double_value":
        return go_float(v.double_value)
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return _go_json(_raw(v))


def attributes(kvs) -> dict[str, str]:
    """attributesToMap: key -> AsString, in key order (internal/ordered_map.go sorts)."""
    out = {kv.key: as_string(kv.value) for kv in kvs}
    return dict(sorted(out.items()))


def _hex(b: bytes) -> str:
    return "" if not b or not any(b) else b.hex()


def _t64(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _service(resource) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return kv.value.string_value
    return ""


def log_rows(req, layout: str) -> list[dict]:
    rows = []
    for rl in req.resource_logs:
        res = attributes(rl.resource.attributes)
        service = _service(rl.resource)
        for sl in rl.scope_logs:
            for r in sl.log_records:
                row = {
                    "Timestamp": _t64(r.time_unix_nano or r.observed_time_unix_nano),
                    "TraceId": _hex(r.trace_id),
                    "SpanId": _hex(r.span_id),
                    "TraceFlags": r.flags & 0xFF,
                    "SeverityText": r.severity_text,
                    "SeverityNumber": int(r.severity_number),
                    "ServiceName": service,
                    "Body": as_string(r.body),
                    "ResourceSchemaUrl": rl.schema_url,
                    "ResourceAttributes": res,
                    "ScopeSchemaUrl": sl.schema_url,
                    "ScopeName": sl.scope.name,
                    "ScopeVersion": sl.scope.version,
                    "ScopeAttributes": attributes(sl.scope.attributes),
                    "LogAttributes": attributes(r.attributes),
                }
                if layout != "older":
                    row["EventName"] = getattr(r, "event_name", "")
                rows.append(row)
    return rows


def span_rows(req, layout: str) -> list[dict]:
    rows = []
    for rs in req.resource_spans:
        res = attributes(rs.resource.attributes)
        service = _service(rs.resource)
        for ss in rs.scope_spans:
            for s in ss.spans:
                attrs = attributes(s.attributes)
                row = {
                    "Timestamp": _t64(s.start_time_unix_nano),
                    "TraceId": _hex(s.trace_id),
                    "SpanId": _hex(s.span_id),
                    "ParentSpanId": _hex(s.parent_span_id),
                    "TraceState": s.trace_state,
                    "SpanName": s.name,
                    "SpanKind": _SPAN_KIND[s.kind] if s.kind < len(_SPAN_KIND) else "",
                    "ServiceName": service,
                    "ResourceAttributes": res,
                    "Duration": s.end_time_unix_nano - s.start_time_unix_nano,
                    "StatusCode": _STATUS[s.status.code] if s.status.code < 3 else "",
                    "StatusMessage": s.status.message,
                    "Events.Timestamp": [_t64(e.time_unix_nano) for e in s.events],
                    "Events.Name": [e.name for e in s.events],
                    "Events.Attributes": [attributes(e.attributes) for e in s.events],
                    "Links.TraceId": [_hex(ln.trace_id) for ln in s.links],
                    "Links.SpanId": [_hex(ln.span_id) for ln in s.links],
                    "Links.TraceState": [ln.trace_state for ln in s.links],
                    "Links.Attributes": [attributes(ln.attributes) for ln in s.links],
                }
                if layout == "older":  # exporter_traces.go of that version
                    if ss.scope.name:
                        attrs["otel.scope.name"] = ss.scope.name
                    if ss.scope.version:
                        attrs["otel.scope.version"] = ss.scope.version
                else:
                    row["ScopeName"] = ss.scope.name
                    row["ScopeVersion"] = ss.scope.version
                row["SpanAttributes"] = dict(sorted(attrs.items()))
                rows.append(row)
    return rows


def sum_rows(req, layout: str) -> list[dict]:
    rows = []
    for rm in req.resource_metrics:
        res = attributes(rm.resource.attributes)
        service = _service(rm.resource)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.WhichOneof("data") != "sum":
                    continue
                for p in m.sum.data_points:
                    value = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                    if layout == "older":
                        start, t = p.start_time_unix_nano // 10**9, p.time_unix_nano // 10**9
                    else:
                        start, t = _t64(p.start_time_unix_nano), _t64(p.time_unix_nano)
                    rows.append(
                        {
                            "ResourceAttributes": res,
                            "ResourceSchemaUrl": rm.schema_url,
                            "ScopeName": sm.scope.name,
                            "ScopeVersion": sm.scope.version,
                            "ScopeAttributes": attributes(sm.scope.attributes),
                            "ScopeDroppedAttrCount": sm.scope.dropped_attributes_count,
                            "ScopeSchemaUrl": sm.schema_url,
                            "ServiceName": service,
                            "MetricName": m.name,
                            "MetricDescription": m.description,
                            "MetricUnit": m.unit,
                            "Attributes": attributes(p.attributes),
                            "StartTimeUnix": start,
                            "TimeUnix": t,
                            "Value": float(value),
                            "Flags": p.flags,
                            "AggregationTemporality": int(m.sum.aggregation_temporality),
                            "IsMonotonic": m.sum.is_monotonic,
                        }
                    )
    return rows


def ddl(layout: str, name: str, database: str = DATABASE) -> str | None:
    """One vendored CREATE statement, for `database`."""
    path = DDL / layout / f"{name}.sql"
    if not path.exists():
        return None
    return path.read_text().replace(f'"{DATABASE}".', f'"{database}".')


def create_tables(session, layout: str = "current", database: str = DATABASE) -> None:
    session.query(f"CREATE DATABASE IF NOT EXISTS {database}")
    for name in ORDER:
        sql = ddl(layout, name, database)
        if sql:
            session.query(sql)


def insert(session, table: str, rows: list[dict], database: str = DATABASE) -> None:
    if rows:
        data = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
        session.query(f"INSERT INTO {database}.{table} FORMAT JSONEachRow\n{data}")


def load(
    session,
    requests: list[tuple[str, bytes]],
    layout: str = "current",
    database: str = DATABASE,
) -> None:
    """Insert (signal, protobuf bytes) requests as the exporter would."""
    logs, spans, sums = [], [], []
    for signal, body in requests:
        req = _TYPES[signal].FromString(body)
        if signal == "logs":
            logs += log_rows(req, layout)
        elif signal == "traces":
            spans += span_rows(req, layout)
        else:
            sums += sum_rows(req, layout)
    insert(session, "otel_logs", logs, database)
    insert(session, "otel_traces", spans, database)
    insert(session, "otel_metrics_sum", sums, database)
