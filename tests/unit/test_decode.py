"""The OTLP decoder: typed columns from the fixtures match the truth, string-typed numbers and
booleans are coerced, event names are normalised, every AnyValue becomes JSON-safe, unknown
attributes are kept, and OTLP/JSON decodes to the same rows as protobuf."""

from __future__ import annotations

import base64
import json
import math
from collections import Counter

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from claude_top.core.schema import column_names
from claude_top.core.sources.otlp.decode import (
    REQUEST_TYPES,
    DecodeFailure,
    accept_json,
    accept_protobuf,
    decode_protobuf,
    decode_request,
    guess_protobuf_signal,
    parse_json,
    parse_protobuf,
)
from truth import GRPC_FIXTURES, Truth, fixture_lines, grpc_requests, http_requests, set_value

TRACE_ID = bytes(range(1, 17))
SPAN_ID = bytes(range(1, 9))


def strict_json(text: str):
    """json.loads that refuses NaN/Infinity tokens (not JSON) instead of accepting them."""

    def refuse(token):
        raise AssertionError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def rows(decoded, table: str) -> list[dict]:
    names = column_names(table)
    return [dict(zip(names, r, strict=True)) for r in decoded.rows[table]]


def to_any(value) -> AnyValue:
    """A Python value as an OTLP AnyValue (the sender's side)."""
    v = AnyValue()
    set_value(v, value)
    return v


def log_request(attrs: dict, body=None, resource: dict | None = None) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    for k, v in (resource or {}).items():
        rl.resource.attributes.add(key=k).value.CopyFrom(to_any(v))
    rec = rl.scope_logs.add().log_records.add(time_unix_nano=1_795_000_000_000_000_000)
    if body is not None:
        rec.body.CopyFrom(to_any(body))
    for k, v in attrs.items():
        rec.attributes.add(key=k).value.CopyFrom(to_any(v))
    return req


def span_request(attrs: dict, **span) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    s = (
        req.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=TRACE_ID, span_id=SPAN_ID, name="claude_code.llm_request", **span)
    )
    for k, v in attrs.items():
        s.attributes.add(key=k).value.CopyFrom(to_any(v))
    return req


def one_event(attrs: dict, body=None, resource=None) -> dict:
    (row,) = rows(decode_request("logs", log_request(attrs, body, resource)), "events")
    return row


# --- the fixtures, decoded --------------------------------------------------------------------


@pytest.fixture(scope="module")
def decoded_fixtures():
    out = {"spans": [], "events": [], "metric_points": []}
    for name in GRPC_FIXTURES:
        for signal, body in grpc_requests(name):
            d = decode_protobuf(signal, body)
            assert d.rejected == 0
            for table in out:
                out[table].extend(rows(d, table))
    return out


def test_fixture_api_requests_typed_columns(decoded_fixtures):
    truth = Truth(*GRPC_FIXTURES)
    got = Counter(
        (
            e["session_id"],
            e["model"],
            e["cost_usd"],
            e["input_tokens"],
            e["output_tokens"],
            e["cache_read_tokens"],
            e["cache_creation_tokens"],
            e["duration_ms"],
            e["query_source"],
        )
        for e in decoded_fixtures["events"]
        if e["name"] == "claude_code.api_request"
    )
    want = Counter(
        (
            e["session.id"],
            e["model"],
            float(e["cost_usd"]),
            int(e["input_tokens"]),
            int(e["output_tokens"]),
            int(e["cache_read_tokens"]),
            int(e["cache_creation_tokens"]),
            float(e["duration_ms"]),
            e["query_source"],
        )
        for e in truth.api_requests()
    )
    assert got == want
    assert sum(got.values()) == 13


def test_fixture_event_names_sessions_prompts_sequences(decoded_fixtures):
    truth = Truth(*GRPC_FIXTURES)
    got = Counter(
        (e["name"], e["session_id"], e["prompt_id"], e["sequence"])
        for e in decoded_fixtures["events"]
    )
    want = Counter(
        (
            "claude_code." + e["event.name"],
            e["session.id"],
            e.get("prompt.id"),
            int(e["event.sequence"]),
        )
        for e in truth.events
    )
    assert got == want


def test_fixture_events_have_distinct_uids(decoded_fixtures):
    """Events that look alike (continued: same session, same sequence) are never merged."""
    uids = [e["uid"] for e in decoded_fixtures["events"]]
    assert len(set(uids)) == len(uids) == len(Truth(*GRPC_FIXTURES).events)


def test_fixture_tool_results(decoded_fixtures):
    truth = Truth(*GRPC_FIXTURES)
    got = Counter(
        (e["tool_name"], e["success"], e["duration_ms"])
        for e in decoded_fixtures["events"]
        if e["name"] == "claude_code.tool_result"
    )
    want = Counter(
        (e["tool_name"], str(e["success"]).lower() == "true", float(e["duration_ms"]))
        for e in truth.tool_results()
    )
    assert got == want


def test_fixture_spans(decoded_fixtures):
    truth = Truth(*GRPC_FIXTURES)
    got = Counter(
        (s["trace_id"], s["span_id"], s["parent_span_id"] or "", s["name"], s["session_id"])
        for s in decoded_fixtures["spans"]
    )
    want = Counter(
        (s["_trace_id"], s["_span_id"], s["_parent"], s["_name"], s["session.id"])
        for s in truth.spans
    )
    assert got == want
    for s in decoded_fixtures["spans"]:
        assert s["duration_ms"] == (s["end_ns"] - s["start_ns"]) / 1e6
    llm = [s for s in decoded_fixtures["spans"] if s["name"] == "claude_code.llm_request"]
    want_llm = [s for s in truth.spans if s["_name"] == "claude_code.llm_request"]
    assert sorted(s["input_tokens"] for s in llm) == sorted(
        int(s["input_tokens"]) for s in want_llm
    )
    assert sorted(s["attempt"] or 1 for s in llm) == sorted(
        int(s.get("attempt", 1)) for s in want_llm
    )


def test_fixture_metric_points(decoded_fixtures):
    truth = Truth(*GRPC_FIXTURES)
    points = decoded_fixtures["metric_points"]
    assert len(points) == truth.data_points
    got = Counter((p["name"], p["type"], p["increment"]) for p in points)
    want = Counter((p["_name"], p.get("type"), p["_value"]) for p in truth.metric_points)
    assert got == want


def test_http_json_and_protobuf_fixtures_decode_like_their_protobuf():
    """OTLP/JSON (hex ids, ints as numbers) gives the same rows as the same export in protobuf."""
    for d in http_requests("basic.http-json"):
        signal = d["path"].rsplit("/", 1)[1]
        export = accept_json(signal, d["body"])
        from_json = decode_protobuf(signal, export.body, received_ns=1)
        _, request = parse_json(signal, d["body"])
        from_pb = decode_request(signal, parse_protobuf(signal, request.SerializeToString()), 1)
        assert from_json.rows == from_pb.rows
        assert from_json.count == export.count > 0


# --- coercion -----------------------------------------------------------------------------


def test_string_numbers_and_booleans_are_coerced_on_events():
    e = one_event(
        {
            "event.name": "api_request",
            "session.id": "s",
            "cost_usd": "0.0125",
            "input_tokens": "42",
            "output_tokens": "7.0",
            "cache_read_tokens": 5000,
            "cache_creation_tokens": "0",
            "duration_ms": "12.5",
            "success": "true",
            "attempt": "2",
            "event.sequence": "17",
        }
    )
    assert e["cost_usd"] == 0.0125
    assert (e["input_tokens"], e["output_tokens"], e["cache_read_tokens"]) == (42, 7, 5000)
    assert e["cache_creation_tokens"] == 0
    assert e["duration_ms"] == 12.5
    assert e["success"] is True
    assert (e["attempt"], e["sequence"]) == (2, 17)
    # the attributes keep what was sent, as sent
    attrs = strict_json(e["attributes"])
    assert attrs["input_tokens"] == "42"
    assert attrs["success"] == "true"


@pytest.mark.parametrize(
    ("sent", "want"),
    [("true", True), ("false", False), ("TRUE", True), ("False", False), (True, True),
     (False, False), ("maybe", None), ("", None)],
)  # fmt: skip
def test_boolean_coercion(sent, want):
    assert one_event({"event.name": "tool_result", "success": sent})["success"] is want


@pytest.mark.parametrize(
    ("sent", "want"),
    [("42", 42), (42, 42), ("42.0", 42), (42.0, 42), ("abc", None), ("", None),
     ("99999999999999999999999", None), (float("nan"), None), ("nan", None)],
)  # fmt: skip
def test_integer_coercion_never_fails(sent, want):
    e = one_event({"event.name": "api_request", "input_tokens": sent})
    assert e["input_tokens"] == want


@pytest.mark.parametrize(
    ("sent", "want"),
    [("0.5", 0.5), (0.5, 0.5), (3, 3.0), ("1e-3", 0.001), ("x", None), ("inf", None),
     (float("inf"), None), (True, None)],
)  # fmt: skip
def test_float_coercion_never_fails(sent, want):
    assert one_event({"event.name": "api_request", "cost_usd": sent})["cost_usd"] == want


def test_string_numbers_and_booleans_are_coerced_on_spans():
    req = span_request(
        {
            "input_tokens": "1200",
            "output_tokens": 80,
            "cache_read_tokens": "5000",
            "success": "false",
            "attempt": "2",
            "session.id": "s",
            "span.type": "llm_request",
        },
        start_time_unix_nano=1_000_000_000,
        end_time_unix_nano=1_250_000_000,
    )
    (s,) = rows(decode_request("traces", req), "spans")
    assert (s["input_tokens"], s["output_tokens"], s["cache_read_tokens"]) == (1200, 80, 5000)
    assert s["success"] is False
    assert s["attempt"] == 2
    assert s["duration_ms"] == 250.0
    assert (s["session_id"], s["span_type"]) == ("s", "llm_request")


def test_span_without_times_has_no_duration():
    (s,) = rows(decode_request("traces", span_request({})), "spans")
    assert s["start_ns"] is s["end_ns"] is s["duration_ms"] is None
    assert s["parent_span_id"] is None


# --- event names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "attrs", "want"),
    [
        ("claude_code.api_request", {"event.name": "api_request"}, "claude_code.api_request"),
        ("claude_code.api_request", {}, "claude_code.api_request"),
        (None, {"event.name": "api_request"}, "claude_code.api_request"),
        ("a free-text message", {"event.name": "tool_result"}, "claude_code.tool_result"),
        (None, {"event.name": "gen_ai.client.inference"}, "gen_ai.client.inference"),
        (None, {"event.name": "brand_new_event"}, "claude_code.brand_new_event"),
        ({"structured": "body"}, {"event.name": "user_prompt"}, "claude_code.user_prompt"),
    ],
)
def test_event_name_is_normalised(body, attrs, want):
    assert one_event(attrs, body)["name"] == want


def test_event_without_any_name_is_kept():
    e = one_event({"k": "v"}, "plain text body")
    assert e["name"]  # named something, never dropped
    assert e["body"] == "plain text body"


# --- every AnyValue type, JSON-safe -----------------------------------------------------------


def test_every_any_value_type_is_json_safe():
    attrs = {
        "s": "text",
        "i": -(2**63),
        "big": 2**63 - 1,
        "b": True,
        "d": 1.5,
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": float("-inf"),
        "bytes": b"\x00\xffbin",
        "array": [1, "two", 3.0, False, [b"\x01"], {"k": float("nan")}],
        "kvlist": {"a": {"b": {"c": [1, 2]}}, "x": b""},
        "empty_array": [],
        "empty_kvlist": {},
    }
    req = log_request(attrs)
    rec = req.resource_logs[0].scope_logs[0].log_records[0]
    rec.attributes.add(key="no_value")  # an AnyValue with nothing set
    (e,) = rows(decode_request("logs", req), "events")
    got = strict_json(e["attributes"])
    assert got["s"] == "text"
    assert (got["i"], got["big"], got["b"], got["d"]) == (-(2**63), 2**63 - 1, True, 1.5)
    assert isinstance(got["nan"], str) and got["nan"].lower() == "nan"
    assert isinstance(got["inf"], str) and "inf" in got["inf"].lower()
    assert isinstance(got["ninf"], str) and got["ninf"].startswith("-")
    assert base64.b64decode(got["bytes"]) == b"\x00\xffbin"
    assert got["array"][:4] == [1, "two", 3.0, False]
    assert base64.b64decode(got["array"][4][0]) == b"\x01"
    assert isinstance(got["array"][5]["k"], str)
    assert got["kvlist"]["a"] == {"b": {"c": [1, 2]}}
    assert got["kvlist"]["x"] == ""
    assert (got["empty_array"], got["empty_kvlist"]) == ([], {})
    assert got["no_value"] is None


def test_non_string_body_is_json_safe():
    e = one_event({"event.name": "x"}, {"nested": [1, float("nan"), b"\x02"]})
    body = strict_json(e["body"])
    assert body["nested"][0] == 1
    assert isinstance(body["nested"][1], str)


def test_span_event_and_link_attributes_are_json_safe():
    req = span_request({"weird": float("nan")})
    span = req.resource_spans[0].scope_spans[0].spans[0]
    ev = span.events.add(name="exception", time_unix_nano=2**64 - 1)
    ev.attributes.add(key="bytes").value.bytes_value = b"\x00"
    link = span.links.add(trace_id=TRACE_ID, span_id=SPAN_ID)
    link.attributes.add(key="inf").value.double_value = float("inf")
    (s,) = rows(decode_request("traces", req), "spans")
    assert isinstance(strict_json(s["attributes"])["weird"], str)
    (event,) = strict_json(s["events"])
    assert event["name"] == "exception"
    (ln,) = strict_json(s["links"])
    assert ln["trace_id"] == TRACE_ID.hex()
    assert isinstance(ln["attributes"]["inf"], str)


json_scalars = (
    st.text(max_size=20)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.booleans()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.binary(max_size=20)
)
any_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def expected_json(value):
    """What a sender's value should look like in the attributes JSON."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [expected_json(x) for x in value]
    if isinstance(value, dict):
        return {k: expected_json(x) for k, x in value.items()}
    return value


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), any_values, max_size=6))
def test_any_attributes_decode_to_json_safe_values(attrs):
    e = one_event(attrs)
    assert strict_json(e["attributes"]) == expected_json(attrs)


# --- unknown names are kept -------------------------------------------------------------------


def test_unknown_attributes_are_kept():
    e = one_event(
        {
            "event.name": "api_request",
            "session.id": "s-1",
            "model": "claude-next-9",
            "team": "platform",
            "workflow_id": 123,
            "brand.new.field": ["a", "b"],
        },
        resource={"service.name": "claude-code", "stage": "ci", "session.id": "ignored"},
    )
    attrs = strict_json(e["attributes"])
    assert attrs["team"] == "platform"
    assert attrs["workflow_id"] == 123
    assert attrs["brand.new.field"] == ["a", "b"]
    assert e["model"] == "claude-next-9"
    assert e["session_id"] == "s-1"  # the record's own session wins over the resource's
    assert e["service_name"] == "claude-code"


def test_resource_attributes_are_kept_and_supply_the_session():
    req = log_request({"event.name": "x"}, resource={"session.id": "from-resource", "stage": "ci"})
    decoded = decode_request("logs", req)
    (e,) = rows(decoded, "events")
    assert e["session_id"] == "from-resource"
    (res,) = rows(decoded, "resources")
    assert strict_json(res["attributes"]) == {"session.id": "from-resource", "stage": "ci"}
    assert res["uid"] == e["resource_id"]


def test_unknown_metric_names_and_units_are_kept():
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="x.future", unit="furlong")
    p = m.sum.data_points.add(time_unix_nano=5, as_int=3)
    p.attributes.add(key="flavour").value.string_value = "new"
    m.sum.aggregation_temporality = 1
    (row,) = rows(decode_request("metrics", req), "metric_points")
    assert (row["name"], row["unit"], row["increment"]) == ("x.future", "furlong", 3.0)
    assert strict_json(row["attributes"]) == {"flavour": "new"}


# --- parsing ------------------------------------------------------------------------------------


def test_signal_is_told_from_every_fixture_protobuf():
    for name in GRPC_FIXTURES:
        for signal, body in grpc_requests(name):
            assert guess_protobuf_signal(body) == signal
            assert accept_protobuf(None, body).signal == signal


def test_malformed_protobuf_raises_decode_failure():
    with pytest.raises(DecodeFailure, match="traces"):
        parse_protobuf("traces", b"\xff\xff\xff")
    with pytest.raises(DecodeFailure):
        guess_protobuf_signal(b"\x0a\xff\xff\xff\x0f")


def test_json_ints_as_strings_or_numbers_and_enums_as_names_or_ints():
    span = {
        "traceId": TRACE_ID.hex(),
        "spanId": SPAN_ID.hex().upper(),
        "name": "x",
        "startTimeUnixNano": "1000000000",
        "endTimeUnixNano": 1500000000,
        "status": {"code": "STATUS_CODE_ERROR"},
        "attributes": [{"key": "n", "value": {"intValue": 7}}],
    }
    as_names = {**span, "kind": "SPAN_KIND_INTERNAL"}
    as_ints = {**span, "kind": 1, "status": {"code": 2}}
    as_ints["attributes"] = [{"key": "n", "value": {"intValue": "7"}}]
    decoded = []
    for s in (as_names, as_ints):
        body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [s]}]}]}).encode()
        export = accept_json("traces", body)
        decoded.append(rows(decode_protobuf("traces", export.body, 1), "spans")[0])
    a, b = decoded
    assert a == b
    assert (a["trace_id"], a["span_id"]) == (TRACE_ID.hex(), SPAN_ID.hex())
    assert (a["kind"], a["status_code"], a["duration_ms"]) == (1, 2, 500.0)
    assert strict_json(a["attributes"]) == {"n": 7}


def test_json_signal_told_from_the_payload():
    for d in http_requests("basic.http-json"):
        signal, _ = parse_json(None, d["body"])
        assert d["path"] == f"/v1/{signal}"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}'],
)
def test_bad_json_raises_decode_failure(body):
    with pytest.raises(DecodeFailure):
        accept_json("traces", body)


def test_invalid_span_ids_are_rejected_and_counted():
    req = span_request({})
    spans = req.resource_spans[0].scope_spans[0].spans
    for tid, sid in ((TRACE_ID, b""), (bytes(16), SPAN_ID), (TRACE_ID[:8], SPAN_ID)):
        spans.add(trace_id=tid, span_id=sid, name="bad")
    decoded = decode_request("traces", req)
    assert (decoded.count, decoded.rejected) == (1, 3)
    export = accept_protobuf("traces", req.SerializeToString())
    assert (export.count, export.rejected) == (1, 3)
    assert export.rejected_reason


def test_accepted_record_counts_match_the_fixtures():
    for name in GRPC_FIXTURES:
        t = Truth(name)
        truth_by_signal = {"traces": len(t.spans), "logs": len(t.events), "metrics": t.data_points}
        got = Counter()
        for signal, body in grpc_requests(name):
            got[signal] += accept_protobuf(signal, body).count
        assert dict(got) == truth_by_signal


def test_json_mapping_of_a_fixture_round_trips():
    """The gRPC fixture's own `req` (protobuf JSON mapping) is the same export as its bytes."""
    for d in fixture_lines("errors.grpc"):
        msg = json_format.ParseDict(d["req"], REQUEST_TYPES[d["kind"]]())
        assert msg == parse_protobuf(d["kind"], base64.b64decode(d["pb"]))
