"""Property tests: OTLP exports of odd shapes (missing fields, every AnyValue type nested, huge
and unicode strings, zero and out-of-range times, every metric type, NaN and infinities, ids of
any length) go through accept -> decode -> the store without an error, every valid record is
stored once, the attribute values read back as sent, and OTLP/JSON stores the same rows."""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from claude_top.core.schema import column_names
from claude_top.core.sources.otlp.decode import accept_json, accept_protobuf, decode_export
from claude_top.core.store import rollup
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from truth import as_otlp_json, set_value

INT64_MAX = (1 << 63) - 1
# No shrinking: each step stores to DuckDB twice, so shrinking a failure with huge strings
# takes minutes; a failure is reported as generated.
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- values --------------------------------------------------------------------------------

text = st.text(max_size=12) | st.sampled_from(["", "é", "日本語", "🤖\u200d", "a\x00b", "\ufeff"])
huge = st.integers(20_000, 200_000).map(lambda n: "ü" * n)
# NaN as the one NaN JSON can carry: a payload-carrying NaN makes different protobuf bytes
# (so a different content key) than the same export sent as OTLP/JSON
floats = st.floats(allow_nan=True, allow_infinity=True).map(
    lambda x: math.nan if math.isnan(x) else x
) | st.sampled_from([-0.0, 5e-324])
ints = st.integers(-(2**63), 2**63 - 1)
scalars = text | ints | st.booleans() | floats | st.binary(max_size=12) | st.none()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=12,
)
attributes = st.dictionaries(text, values | huge, max_size=4) | st.dictionaries(
    text, values, max_size=4
)
times = st.sampled_from([0, 1, INT64_MAX, INT64_MAX + 1, 2**64 - 1]) | st.integers(0, 2**64 - 1)
ids16 = st.binary(min_size=16, max_size=16) | st.binary(max_size=20)
ids8 = st.binary(min_size=8, max_size=8) | st.binary(max_size=10)
enum = st.integers(0, 3) | st.integers(-(2**31), 2**31 - 1)


def set_attrs(kvs, attrs: dict) -> None:
    for k, x in attrs.items():
        set_value(kvs.add(key=k).value, x)


def as_stored(x):
    """How a sent value reads back from the attributes JSON."""
    if isinstance(x, bytes):
        return base64.b64encode(x).decode()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, list):
        return [as_stored(i) for i in x]
    if isinstance(x, dict):
        return {k: as_stored(i) for k, i in x.items()}
    return x


def ns(t: int) -> int | None:
    return t if 0 < t <= INT64_MAX else None


# --- the store ----------------------------------------------------------------------------

TABLES = ("spans", "events", "metric_points", "resources", "metric_series")


@pytest.fixture(scope="module")
def store():
    s = Store.open(":memory:")
    yield s
    s.close()


def store_both_ways(store: Store, signal: str, request) -> tuple[list[dict], int]:
    """Accept the request as protobuf and as OTLP/JSON, store both; the rows (as dicts) and
    the records the receiver accepted. Both ways must give the same rows."""
    out = []
    for how in ("protobuf", "json"):
        cur = store.cursor()
        for table in TABLES:
            cur.execute(f"DELETE FROM {table}")
        rollup.build(cur)
        if how == "protobuf":
            export = accept_protobuf(signal, request.SerializeToString())
        else:
            export = accept_json(signal, otlp_json(request))
        export.received_ns = 1
        write_rows(store, [decode_export(export)])
        table = {"traces": "spans", "logs": "events", "metrics": "metric_points"}[signal]
        names = column_names(table)
        got = cur.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY uid").fetchall()
        out.append(([dict(zip(names, r, strict=True)) for r in got], export))
        cur.close()
    (rows, export), (json_rows, json_export) = out
    assert (json_export.count, json_export.rejected) == (export.count, export.rejected)
    assert json_rows == rows
    return rows, export


def otlp_json(request) -> bytes:
    return json.dumps(as_otlp_json(request)).encode()


def attrs_of(row: dict, column: str = "attributes"):
    return json.loads(row[column]) if row[column] is not None else None


# --- traces --------------------------------------------------------------------------------

span_specs = st.fixed_dictionaries(
    {
        "trace_id": ids16,
        "span_id": ids8,
        "parent_span_id": st.binary(max_size=9),
        "name": text | huge,
        "kind": enum,
        "start": times,
        "end": times,
        "status": st.tuples(enum, text),
        "attributes": attributes,
        "events": st.lists(st.tuples(text, times, attributes), max_size=2),
        "links": st.lists(st.tuples(ids16, ids8, attributes), max_size=2),
    }
)


@EXAMPLES
@given(resource=attributes, specs=st.lists(span_specs, max_size=5))
def test_any_spans_are_stored_once_with_their_attributes(store, resource, specs):
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    set_attrs(rs.resource.attributes, resource)
    spans = rs.scope_spans.add().spans
    for s in specs:
        span = spans.add(
            trace_id=s["trace_id"],
            span_id=s["span_id"],
            parent_span_id=s["parent_span_id"],
            name=s["name"],
            kind=s["kind"],
            start_time_unix_nano=s["start"],
            end_time_unix_nano=s["end"],
        )
        span.status.code, span.status.message = s["status"]
        set_attrs(span.attributes, s["attributes"])
        for name, t, a in s["events"]:
            set_attrs(span.events.add(name=name, time_unix_nano=t).attributes, a)
        for tid, sid, a in s["links"]:
            set_attrs(span.links.add(trace_id=tid, span_id=sid).attributes, a)

    def valid(s):
        tid, sid = s["trace_id"], s["span_id"]
        return len(tid) == 16 and len(sid) == 8 and any(tid) and any(sid)

    rows, export = store_both_ways(store, "traces", req)
    assert export.rejected == sum(not valid(s) for s in specs)
    sent: dict[bytes, list[dict]] = {}
    for s in specs:
        if valid(s):
            sent.setdefault(s["trace_id"] + s["span_id"], []).append(s)
    assert sorted(r["uid"] for r in rows) == sorted(sent)  # a repeated id is stored once
    for r in rows:
        same_id = sent[r["uid"]]
        if len(same_id) > 1:
            assert r["name"] in {s["name"] for s in same_id}
            continue
        (s,) = same_id
        assert (r["trace_id"], r["span_id"]) == (s["trace_id"].hex(), s["span_id"].hex())
        assert r["name"] == s["name"]
        assert r["parent_span_id"] == (s["parent_span_id"].hex() or None)
        assert (r["start_ns"], r["end_ns"]) == (ns(s["start"]), ns(s["end"]))
        if r["start_ns"] is not None and r["end_ns"] is not None:
            assert r["duration_ms"] == pytest.approx((r["end_ns"] - r["start_ns"]) / 1e6)
        else:
            assert r["duration_ms"] is None
        assert attrs_of(r) == as_stored(s["attributes"])
        events = attrs_of(r, "events") or []
        assert [(e["name"], e["attributes"]) for e in events] == [
            (name, as_stored(a)) for name, _, a in s["events"]
        ]
        links = attrs_of(r, "links") or []
        assert [(ln["trace_id"], ln["attributes"]) for ln in links] == [
            (tid.hex(), as_stored(a)) for tid, _, a in s["links"]
        ]


# --- logs ----------------------------------------------------------------------------------

record_specs = st.fixed_dictionaries(
    {
        "time": times,
        "observed": times,
        "severity": enum,
        "severity_text": text,
        "body": st.none() | values | huge,
        "attributes": attributes,
        "trace_id": st.binary(max_size=17),
        "span_id": st.binary(max_size=9),
        "flags": st.integers(0, 2**32 - 1),
    }
)


@EXAMPLES
@given(resource=attributes, specs=st.lists(record_specs, max_size=5))
def test_any_log_records_are_stored_once_with_their_attributes(store, resource, specs):
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    set_attrs(rl.resource.attributes, resource)
    records = rl.scope_logs.add().log_records
    for n, s in enumerate(specs):
        rec = records.add(
            time_unix_nano=s["time"],
            observed_time_unix_nano=s["observed"],
            severity_number=s["severity"],
            severity_text=s["severity_text"],
            trace_id=s["trace_id"],
            span_id=s["span_id"],
            flags=s["flags"],
        )
        if s["body"] is not None:
            set_value(rec.body, s["body"])
        set_attrs(rec.attributes, {**s["attributes"], "_n": n})  # distinct records

    rows, export = store_both_ways(store, "logs", req)
    assert (export.count, export.rejected) == (len(specs), 0)
    assert len(rows) == len(specs)
    for r in sorted(rows, key=lambda r: attrs_of(r)["_n"]):
        s = specs[attrs_of(r)["_n"]]
        assert attrs_of(r) == as_stored({**s["attributes"], "_n": attrs_of(r)["_n"]})
        assert r["time_ns"] == (ns(s["time"]) or ns(s["observed"]) or 1)
        assert r["trace_id"] == (s["trace_id"].hex() or None)
        body = as_stored(s["body"])
        assert r["body"] == (body if isinstance(body, str) or body is None else r["body"])
        if body is not None and not isinstance(body, str):
            assert json.loads(r["body"]) == body


# --- metrics -------------------------------------------------------------------------------

point_common = {
    "attributes": attributes,
    "start": times,
    "time": times,
    "flags": st.integers(0, 1),
}
number_points = st.fixed_dictionaries(
    {**point_common, "value": st.none() | floats | ints.map(lambda i: ("int", i))}
)
histogram_points = st.fixed_dictionaries(
    {
        **point_common,
        "count": st.integers(0, 2**64 - 1),
        "sum": st.none() | floats,
        "bucket_counts": st.lists(st.integers(0, 2**64 - 1), max_size=4),
        "explicit_bounds": st.lists(floats, max_size=3),
        "min": st.none() | floats,
        "max": st.none() | floats,
    }
)
exponential_points = st.fixed_dictionaries(
    {
        **point_common,
        "count": st.integers(0, 2**64 - 1),
        "sum": st.none() | floats,
        "scale": st.integers(-(2**31), 2**31 - 1),
        "zero_count": st.integers(0, 2**64 - 1),
        "positive": st.tuples(st.integers(-(2**31), 2**31 - 1), st.lists(st.integers(0, 99))),
        "negative": st.tuples(st.integers(-10, 10), st.lists(st.integers(0, 99), max_size=3)),
    }
)
summary_points = st.fixed_dictionaries(
    {
        **point_common,
        "count": st.integers(0, 2**64 - 1),
        "sum": floats,
        "quantiles": st.lists(st.tuples(floats, floats), max_size=3),
    }
)
metric_specs = st.one_of(
    st.tuples(st.just("gauge"), st.lists(number_points, max_size=3), st.none(), st.none()),
    st.tuples(st.just("sum"), st.lists(number_points, max_size=3), enum, st.booleans()),
    st.tuples(st.just("histogram"), st.lists(histogram_points, max_size=3), enum, st.none()),
    st.tuples(
        st.just("exponential_histogram"), st.lists(exponential_points, max_size=2), enum, st.none()
    ),
    st.tuples(st.just("summary"), st.lists(summary_points, max_size=2), st.none(), st.none()),
    st.tuples(st.just(None), st.just([]), st.none(), st.none()),
)


def fill_point(p, kind: str, spec: dict, n: int) -> None:
    p.start_time_unix_nano, p.time_unix_nano, p.flags = spec["start"], spec["time"], spec["flags"]
    set_attrs(p.attributes, {**spec["attributes"], "_n": n})
    if kind in ("gauge", "sum"):
        v = spec["value"]
        if isinstance(v, tuple):
            p.as_int = v[1]
        elif v is not None:
            p.as_double = v
        return
    p.count = spec["count"]
    if spec.get("sum") is not None:
        p.sum = spec["sum"]
    if kind == "histogram":
        p.bucket_counts.extend(spec["bucket_counts"])
        p.explicit_bounds.extend(spec["explicit_bounds"])
        for field in ("min", "max"):
            if spec[field] is not None:
                setattr(p, field, spec[field])
    elif kind == "exponential_histogram":
        p.scale, p.zero_count = spec["scale"], spec["zero_count"]
        p.positive.offset, p.negative.offset = spec["positive"][0], spec["negative"][0]
        p.positive.bucket_counts.extend(spec["positive"][1])
        p.negative.bucket_counts.extend(spec["negative"][1])
    elif kind == "summary":
        for q, v in spec["quantiles"]:
            p.quantile_values.add(quantile=q, value=v)


def expected_value(kind: str, spec: dict) -> float | None:
    if kind in ("gauge", "sum"):
        v = spec["value"]
        if isinstance(v, tuple):
            return float(v[1])
        return v if v is not None and math.isfinite(v) else None
    s = spec.get("sum")
    return s if s is not None and math.isfinite(s) else None


@EXAMPLES
@given(
    resource=attributes,
    metrics=st.lists(st.tuples(text, text, metric_specs), max_size=4),
)
def test_any_metric_points_are_stored_once_with_their_values(store, resource, metrics):
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    set_attrs(rm.resource.attributes, resource)
    out = rm.scope_metrics.add().metrics
    sent: dict[int, tuple[str, str, dict]] = {}
    for name, unit, (kind, points, temporality, monotonic) in metrics:
        m = out.add(name=name, unit=unit)
        if kind is None:
            continue  # a metric without data: rejected, counted
        data = getattr(m, kind)
        data.SetInParent()
        if temporality is not None:
            data.aggregation_temporality = temporality
        if monotonic is not None:
            data.is_monotonic = monotonic
        for spec in points:
            n = len(sent)
            fill_point(data.data_points.add(), kind, spec, n)
            sent[n] = (name, kind, spec)

    rows, export = store_both_ways(store, "metrics", req)
    assert export.rejected == sum(kind is None for _, _, (kind, *_) in metrics)
    assert export.count == len(sent) == len(rows)
    for r in rows:
        a = attrs_of(r)
        name, kind, spec = sent[a["_n"]]
        assert (r["name"], r["metric_type"]) == (name, kind)
        assert a == as_stored({**spec["attributes"], "_n": a["_n"]})
        assert r["time_ns"] == (ns(spec["time"]) or 1)
        assert r["start_ns"] == ns(spec["start"])
        want = expected_value(kind, spec)
        assert r["value"] == (pytest.approx(want) if want is not None else None)
        if kind not in ("gauge", "sum"):
            assert r["count"] == (spec["count"] if spec["count"] <= INT64_MAX else None)
            json.loads(r["data"])  # the whole point, as JSON
        if kind == "sum" and r["temporality"] == "delta":
            assert r["increment"] == r["value"]
