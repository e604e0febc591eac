"""The OTLP/JSON converter (`core.otlp_json`, behind `decode.parse_json`) against protobuf's
`json_format`, which parse_json used before: random requests of every field of every message of
the three signals, the same requests with their JSON reshaped (ints as numbers or strings, enums
as names or numbers, proto field names, upper-case hex, nulls, unknown keys, values of the wrong
type), every captured JSON export, and malformed bodies. Where json_format accepts a body the
converter must build the same message; where it refuses one the converter must raise
DecodeFailure."""

from __future__ import annotations

import base64
import json
import math
import re

import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from claude_top.core.sources.otlp import otlp_json
from claude_top.core.sources.otlp.decode import (
    REQUEST_TYPES,
    DecodeFailure,
    accept_json,
    parse_json,
)
from truth import GRPC_FIXTURES, as_otlp_json, fixture_lines, http_requests

SIGNALS = tuple(REQUEST_TYPES)
# No shrinking: json_format takes minutes over a large failing example; it is reported as drawn.
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROOTS = {
    "traces": ("resourceSpans", "resource_spans"),
    "metrics": ("resourceMetrics", "resource_metrics"),
    "logs": ("resourceLogs", "resource_logs"),
}
ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


# --- the reference: parse_json as it was, on json_format ----------------------------------


def reference(signal: str, body: bytes):
    """json.loads, ids hex -> base64, json_format.ParseDict. A string at an id key that is not
    hex becomes a list, which json_format refuses where the key is a field and ignores where
    it is unknown."""
    doc = json.loads(body)
    if not isinstance(doc, dict):
        raise ValueError("the top level must be an object")
    if any(k in doc for other in ROOTS.keys() - {signal} for k in ROOTS[other]):
        raise ValueError("the body carries another signal")

    def rewrite(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ID_KEYS and isinstance(v, str):
                    try:
                        node[k] = base64.b64encode(bytes.fromhex(v)).decode()
                    except ValueError:
                        node[k] = []
                else:
                    rewrite(v)
        elif isinstance(node, list):
            for v in node:
                rewrite(v)

    rewrite(doc)
    return json_format.ParseDict(doc, REQUEST_TYPES[signal](), ignore_unknown_fields=True)


def same(a, b) -> bool:
    """Messages equal, NaN included."""
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


def agree(signal: str, body: bytes) -> str:
    """Convert `body` both ways and check they agree; returns "accepted" or the error."""
    try:
        want = reference(signal, body)
    except Exception as exc:  # json_format's ParseError, and what it lets escape
        want = exc
    try:
        _, got = parse_json(signal, body)
    except DecodeFailure as exc:
        if not isinstance(want, Exception):
            # json_format takes a string or an empty list as an empty message; we do not
            assert "expected an object" in str(exc), (str(exc), body[:300])
        return str(exc)
    assert not isinstance(want, Exception), (f"json_format refused it: {want!r}", body[:300])
    assert same(got, want), (got, want)
    return "accepted"


# --- random messages: every field of every message type ------------------------------------

T = FieldDescriptor
floats = st.floats().map(lambda x: math.nan if math.isnan(x) else x) | st.sampled_from(
    [0.0, -0.0, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, 2.0**63, 1e19]
)
text = st.text(max_size=10) | st.sampled_from(["", "é", "日本語", "🤖\u200d", "a\x00b", "\ufeff"])
INTEGERS = {
    (T.TYPE_INT32, T.TYPE_SINT32, T.TYPE_SFIXED32): st.integers(-(2**31), 2**31 - 1),
    (T.TYPE_UINT32, T.TYPE_FIXED32): st.integers(0, 2**32 - 1),
    (T.TYPE_INT64, T.TYPE_SINT64, T.TYPE_SFIXED64): st.integers(-(2**63), 2**63 - 1),
    (T.TYPE_UINT64, T.TYPE_FIXED64): st.integers(0, 2**64 - 1),
}
SCALARS = {t: s for types, s in INTEGERS.items() for t in types} | {
    T.TYPE_DOUBLE: floats,
    T.TYPE_BOOL: st.booleans(),
    T.TYPE_STRING: text,
    T.TYPE_BYTES: st.binary(max_size=20) | st.binary(min_size=8, max_size=8),
}


def scalar(field: FieldDescriptor):
    if field.enum_type is not None:
        known = [v.number for v in field.enum_type.values]
        return st.sampled_from(known) | st.integers(-(2**31), 2**31 - 1)
    return SCALARS[field.type]


@st.composite
def messages(draw, descriptor: Descriptor, budget: int):
    """A message with about three in four of its fields set, in random order (so a later
    member of a oneof replaces an earlier one); sub-messages while `budget` lasts."""
    msg = message_factory.GetMessageClass(descriptor)()
    for field in draw(st.permutations(list(descriptor.fields))):
        if not draw(st.sampled_from([False, True, True, True])):
            continue
        if field.message_type is not None:
            if budget <= 0:
                continue
            sub = messages(field.message_type, budget - 1)
            if field.is_repeated:
                for item in draw(st.lists(sub, min_size=1, max_size=2)):
                    getattr(msg, field.name).add().CopyFrom(item)
            else:
                getattr(msg, field.name).SetInParent()
                getattr(msg, field.name).MergeFrom(draw(sub))
        elif field.is_repeated:
            getattr(msg, field.name).extend(draw(st.lists(scalar(field), max_size=3)))
        else:
            setattr(msg, field.name, draw(scalar(field)))
    return msg


def requests(signal: str):
    return messages(REQUEST_TYPES[signal].DESCRIPTOR, budget=9)


@EXAMPLES
@given(data=st.data(), signal=st.sampled_from(SIGNALS))
def test_any_request_converts_to_itself_and_to_what_json_format_gives(data, signal):
    msg = data.draw(requests(signal))
    body = json.dumps(
        as_otlp_json(msg, camel=data.draw(st.booleans()), enum_names=data.draw(st.booleans()))
    ).encode()
    _, got = parse_json(signal, body)
    assert same(got, msg)
    assert same(got, reference(signal, body))
    assert same(REQUEST_TYPES[signal].FromString(accept_json(signal, body).body), msg)


# --- the same JSON, reshaped ---------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=5,
)
INTEGER_TYPES = {t for types in INTEGERS for t in types}


def snake(key: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), key)


def respell(value, field: FieldDescriptor, data):
    """Another spelling OTLP/JSON allows for a scalar as MessageToDict writes it."""
    if field.enum_type is not None or field.type in INTEGER_TYPES:
        if isinstance(value, str) and not re.fullmatch(r"-?\d+", value):
            return value  # an enum name
        n = int(value)
        exact = [float(n), f"{n}.0", f"{n}e0"] if abs(n) < 2**53 else []  # read as floats
        return data.draw(st.sampled_from([n, str(n), *exact]))
    if field.type == T.TYPE_DOUBLE and isinstance(value, float):
        return data.draw(st.sampled_from([value, repr(value), str(value)]))
    if field.type == T.TYPE_BYTES:
        if field.name in ("trace_id", "span_id", "parent_span_id"):
            return data.draw(st.sampled_from([value, value.upper()]))
        raw = base64.b64decode(value)
        return data.draw(
            st.sampled_from([value, base64.urlsafe_b64encode(raw).decode().rstrip("=")])
        )
    return value


def reshape(node: dict, descriptor: Descriptor, data, wrong_types: bool) -> dict:
    """Respell every field of a MessageToDict object: proto field names, nulls (a later null
    clears the field), unknown keys and other spellings of the values; with `wrong_types`,
    sometimes a value of any JSON type."""
    fields = {f.json_name: f for f in descriptor.fields}
    out = {}
    for key, value in node.items():
        field = fields[key]
        if wrong_types and data.draw(st.integers(0, 14)) == 0:
            value = data.draw(json_values)
        elif field.message_type is not None:
            sub = field.message_type
            if field.is_repeated:
                value = [reshape(v, sub, data, wrong_types) for v in value]
            else:
                value = reshape(value, sub, data, wrong_types)
        elif field.is_repeated:
            value = [respell(v, field, data) for v in value]
        else:
            value = respell(value, field, data)
        how = data.draw(st.sampled_from(["keep", "snake", "null-alias", "unknown", "null"]))
        out[field.name if how == "snake" else key] = value
        if how == "null-alias" and field.name != key:
            out[field.name] = None
        elif how == "unknown":
            out[data.draw(st.sampled_from(["x", "_unknown", "TraceId"]))] = data.draw(json_values)
        elif how == "null":
            out[key] = None
    return out


@EXAMPLES
@given(data=st.data(), signal=st.sampled_from(SIGNALS), wrong_types=st.booleans())
def test_reshaped_json_reads_as_json_format_reads_it(data, signal, wrong_types):
    msg = data.draw(requests(signal))
    doc = as_otlp_json(msg, enum_names=data.draw(st.booleans()))
    doc = reshape(doc, REQUEST_TYPES[signal].DESCRIPTOR, data, wrong_types)
    body = json.dumps(doc).encode()
    outcome = agree(signal, body)
    if not wrong_types:
        assert outcome == "accepted"


@pytest.mark.parametrize(
    "n", [0, 127, 128, 2047, 2048, 2049, 16383, 16384, 2**21, 2**32 - 1, 2**63, 2**64 - 1]
)
def test_varints_are_protobufs_own_at_every_width(n):
    from google.protobuf.internal.encoder import _VarintBytes

    assert otlp_json._varint(n) == _VarintBytes(n)


# --- captured exports ------------------------------------------------------------------------


def test_every_http_json_fixture_converts_as_json_format_does():
    bodies = [d for d in http_requests("basic.http-json") if d["ctype"] == "application/json"]
    assert len(bodies) == 3
    for d in bodies:
        signal = d["path"].rsplit("/", 1)[1]
        _, got = parse_json(signal, d["body"])
        assert same(got, reference(signal, d["body"]))
        assert got.ByteSize() > 1000


@pytest.mark.parametrize("name", GRPC_FIXTURES)
def test_grpc_fixtures_as_otlp_json_convert_to_their_protobuf(name):
    """Each gRPC capture's `req` (protobuf's JSON mapping) with hex ids converts to its bytes."""
    for d in fixture_lines(name):
        pb = REQUEST_TYPES[d["kind"]].FromString(base64.b64decode(d["pb"]))
        body = json.dumps(as_otlp_json(pb)).encode()
        _, got = parse_json(d["kind"], body)
        assert same(got, pb)


# --- what json_format does and OTLP/JSON allows, case by case --------------------------------


def span(**fields) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [fields]}]}]}).encode()


RAW_SPAN = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{%s}]}]}]}'


def metric(**fields) -> bytes:
    doc = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", **fields}]}]}]}
    return json.dumps(doc).encode()


def point(**fields) -> bytes:
    return metric(gauge={"dataPoints": [fields]})


def attribute(value) -> bytes:
    return span(attributes=[{"key": "k", "value": value}])


def log_body(value) -> bytes:
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": value}]}]}]}
    return json.dumps(doc).encode()


def nested_body(levels: int) -> bytes:
    v: dict = {"stringValue": "x"}
    for _ in range(levels):
        v = {"arrayValue": {"values": [v]}}
    return log_body(v)


ACCEPTED = {
    "hex-upper": ("traces", span(traceId="0A" * 16, spanId="Ab" * 8)),
    "snake-case": ("traces", span(trace_id="01" * 16, start_time_unix_nano="5")),
    "alias-later-wins": ("traces", span(startTimeUnixNano="5", start_time_unix_nano=7)),
    "alias-later-null-clears": ("traces", span(startTimeUnixNano="5", start_time_unix_nano=None)),
    "null-message": ("traces", span(status=None)),
    "empty-message": ("traces", span(status={})),
    "enum-name": ("traces", span(kind="SPAN_KIND_SERVER")),
    "enum-unknown-name-ignored": ("traces", span(kind="SPAN_KIND_NONSENSE")),
    "enum-unknown-number": ("traces", span(kind=77)),
    "enum-negative": ("traces", span(kind=-3)),
    "enum-numeric-string": ("traces", span(kind="2")),
    "enum-float": ("traces", span(kind=2.0)),
    "int-exponent": ("traces", span(startTimeUnixNano="1e3")),
    "int-float": ("traces", span(startTimeUnixNano=1000.0)),
    "int-plus": ("traces", span(startTimeUnixNano="+5")),
    "int-big-float": ("traces", span(startTimeUnixNano=1.5e19)),
    "uint64-max": ("traces", span(startTimeUnixNano=2**64 - 1)),
    "int64-min": ("traces", attribute({"intValue": -(2**63)})),
    "double-strings": ("metrics", point(asDouble="-Infinity")),
    "double-nan": ("metrics", point(asDouble="NaN")),
    "double-numeric-string": ("metrics", point(asDouble="1.5")),
    "double-int": ("metrics", point(asDouble=3)),
    "double-huge-int": ("metrics", point(asDouble=10**30)),
    "as-int-string": ("metrics", point(asInt="-7")),
    "bytes-base64": ("traces", attribute({"bytesValue": base64.b64encode(b"\xff\xfe").decode()})),
    "bytes-urlsafe": ("traces", attribute({"bytesValue": "__7-"})),
    "bytes-unpadded": ("traces", attribute({"bytesValue": "AQI"})),
    "empty-any-value": ("traces", attribute({})),
    "empty-string-value": ("traces", attribute({"stringValue": ""})),
    "string-value-null": ("traces", attribute({"stringValue": "a", "intValue": None})),
    "kvlist": ("logs", log_body({"kvlistValue": {"values": [{"key": "a", "value": {}}]}})),
    "empty-array": ("logs", log_body({"arrayValue": {}})),
    "unicode": ("logs", log_body({"stringValue": "日本語 🤖 \u0000"})),
    "unknown-keys": ("traces", span(x=1, traceId="01" * 16, nested={"traceId": "zz"})),
    "nested-100-deep": ("logs", nested_body(47)),
    "exemplars": (
        "metrics",
        point(asInt=1, exemplars=[{"traceId": "ab" * 16, "spanId": "cd" * 8, "asDouble": 1}]),
    ),
}


@pytest.mark.parametrize(("signal", "body"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_as_json_format_accepts_it(signal, body):
    assert agree(signal, body) == "accepted"


def test_json_loads_fallback_bodies():
    """What orjson refuses but json.loads (and so parse_json before) took: a byte order mark,
    UTF-16, integers beyond 64 bits (read exactly, not rounded into range)."""
    body = span(name="x", startTimeUnixNano="5")
    assert agree("traces", b"\xef\xbb\xbf" + body) == "accepted"
    assert agree("traces", body.decode().encode("utf-16")) == "accepted"
    rounded = b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":%s}}]}]}]}'
    assert "out of range" in agree("logs", rounded % b"-9223372036854775809")
    assert "out of range" in agree("traces", span(startTimeUnixNano=2**64))


# --- malformed bodies ---------------------------------------------------------------------

TRUNCATED = http_requests("basic.http-json")[0]["body"][:-7]
REFUSED = {
    # name: (signal, body, words the error names)
    "truncated": ("traces", TRUNCATED, "malformed OTLP JSON"),
    "not-json": ("logs", b"not json", "malformed OTLP JSON"),
    "not-utf8": ("logs", b'{"resourceLogs": "\xff"}', "malformed OTLP JSON"),
    "array": ("logs", b"[1, 2]", "object"),
    "string": ("logs", b'"resourceLogs"', "object"),
    "bare-nan": ("metrics", point(asDouble=math.nan), "asDouble"),
    "bare-infinity": ("metrics", b'{"resourceMetrics": Infinity}', "resourceMetrics"),
    "nested-too-deep-json": ("logs", b"[" * 5000 + b"]" * 5000, "deep"),
    "nested-101-deep": ("logs", nested_body(48), "deep"),
    "wrong-signal": ("traces", log_body({}), "logs"),
    "two-signals": (None, b'{"resourceLogs": [], "resourceSpans": []}', "signal"),
    "bad-hex": ("traces", span(traceId="not-hex-zz"), "spans[0].traceId"),
    "odd-hex": ("traces", span(spanId="abc"), "spanId"),
    "number-id": ("traces", span(spanId=12), "spanId"),
    "bad-base64": ("traces", attribute({"bytesValue": "a"}), "attributes[0].value.bytesValue"),
    "int-word": ("traces", span(startTimeUnixNano="soon"), "startTimeUnixNano"),
    "int-space": ("traces", span(startTimeUnixNano=" 5"), "startTimeUnixNano"),
    "int-fraction": ("traces", span(startTimeUnixNano=1.5), "startTimeUnixNano"),
    "int-negative-uint": ("traces", span(startTimeUnixNano=-1), "out of range"),
    "int-bool": ("traces", span(droppedAttributesCount=True), "droppedAttributesCount"),
    "uint32-overflow": ("traces", span(droppedAttributesCount=2**32), "out of range"),
    "int64-overflow": ("traces", attribute({"intValue": str(2**63)}), "intValue"),
    "double-word": ("metrics", point(asDouble="lots"), "asDouble"),
    "double-lowercase-nan": ("metrics", point(asDouble="nan"), "asDouble"),
    "bool-string": ("metrics", metric(sum={"isMonotonic": "true"}), "isMonotonic"),
    "string-number": ("traces", span(name=5), "spans[0].name"),
    "enum-object": ("traces", span(kind={}), "kind"),
    "enum-out-of-range": ("traces", span(kind=2**31), "kind"),
    "enum-infinity": ("traces", RAW_SPAN % b'"kind": 1e999', "kind"),
    "two-oneof-members": ("traces", attribute({"stringValue": "a", "intValue": 1}), "oneof"),
    "two-metric-kinds": ("metrics", metric(gauge={}, sum={}), "oneof"),
    "array-for-object": ("traces", span(status=[1]), "status"),
    "number-for-object": ("traces", b'{"resourceSpans":[{"resource":5}]}', "resource"),
    "object-for-array": ("traces", b'{"resourceSpans":{}}', "resourceSpans"),
    "null-in-array": ("traces", b'{"resourceSpans":[null]}', "resourceSpans[0]"),
    "null-bucket": (
        "metrics",
        metric(histogram={"dataPoints": [{"bucketCounts": [1, None]}]}),
        "bucketCounts[1]",
    ),
    "lone-surrogate": ("traces", RAW_SPAN % b'"name": "\\ud800"', "name"),
    "lone-surrogate-attribute": ("logs", log_body({"stringValue": "\ud800"}), "stringValue"),
}


@pytest.mark.parametrize(("signal", "body", "words"), REFUSED.values(), ids=REFUSED.keys())
def test_malformed_bodies_raise_decode_failure_naming_the_problem(signal, body, words):
    with pytest.raises(DecodeFailure) as caught:
        accept_json(signal, body)
    assert words in str(caught.value)
    if signal is not None:
        assert agree(signal, body) != "accepted"  # json_format refused it too, or crashed


def test_error_paths_stay_short():
    with pytest.raises(DecodeFailure) as caught:
        parse_json("logs", nested_body(200))
    assert len(str(caught.value)) < 300
    assert "deep" in str(caught.value)


def test_the_converter_reads_proto_field_names_of_fields_added_to_opentelemetry_proto():
    """The tables come from the descriptors: LogRecord.event_name, KeyValue strindex fields."""
    body = json.dumps(
        {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"eventName": "e", "event_name": "f"}]}]}]}
    ).encode()
    _, got = parse_json("logs", body)
    assert got.resource_logs[0].scope_logs[0].log_records[0].event_name == "f"
    assert otlp_json.MAX_DEPTH == 100
