"""The lean request types read the same bytes as the real ones: same records, same attributes."""

from __future__ import annotations

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from claude_top.core.sources.otlp import lean
from claude_top.core.sources.otlp.decode import (
    any_value,
    attributes_dict,
    map_attributes,
    parse_protobuf,
)
from truth import grpc_requests, set_value

FIXTURES = ("basic.grpc", "errors.grpc", "continued.grpc")
PATHS = {"traces": ("resource_spans", "scope_spans", "spans"),
         "logs": ("resource_logs", "scope_logs", "log_records")}  # fmt: skip


def records(request, signal: str) -> list:
    r, s, rec = PATHS[signal]
    return [x for res in getattr(request, r) for sc in getattr(res, s) for x in getattr(sc, rec)]


@pytest.mark.parametrize("signal", ["traces", "logs"])
def test_every_fixture_record_reads_the_same_attributes(signal):
    seen = 0
    for name in FIXTURES:
        for sig, body in grpc_requests(name):
            if sig != signal:
                continue
            real = records(parse_protobuf(signal, body), signal)
            thin = records(lean.REQUEST_TYPES[signal].FromString(body), signal)
            assert len(thin) == len(real)
            for a, b in zip(real, thin, strict=True):
                assert map_attributes(b.attributes) == attributes_dict(a.attributes)
                seen += len(a.attributes)
    assert seen > 100


def raw(x) -> bytes:
    v = AnyValue()
    set_value(v, x)
    return v.SerializeToString()


@pytest.mark.parametrize(
    "value",
    ["", "claude-sonnet-4-5", "é" * 63, "x" * 127, "x" * 128, "日本語" * 100, 0, -1, 2**63 - 1,
     True, False, 1.5, float("inf"), b"\x00\xff", [1, "a", [True]], {"k": {"n": None}}, None],
)  # fmt: skip
def test_attribute_values_match_the_full_decoder(value):
    b = raw(value)
    expected = any_value(AnyValue.FromString(b))
    assert lean.attribute_value(b, any_value) == expected
    assert lean.attribute_value(b, any_value) == expected  # cached or not, the same


def test_containers_are_not_shared_between_records():
    b = raw([1, 2])
    first = lean.attribute_value(b, any_value)
    first.append(3)
    assert lean.attribute_value(b, any_value) == [1, 2]


def test_duplicate_keys_keep_the_last_as_the_real_decoder_does():
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    for i, key in enumerate(["a", "b", "a"]):
        set_value(span.attributes.add(key=key).value, i)
    thin = lean.REQUEST_TYPES["traces"]()
    thin.resource_spans.add().scope_spans.add().spans.add().ParseFromString(
        span.SerializeToString()
    )
    (got,) = records(thin, "traces")
    assert map_attributes(got.attributes) == attributes_dict(span.attributes) == {"a": 2, "b": 1}


def test_long_values_are_decoded_but_not_kept_by_the_cache():
    """The value cache holds short, repeating values; a prompt or a huge tool input is decoded
    each time, and the cache never holds its bytes (it lived as long as the decode worker)."""
    lean._values.clear()
    short, long = raw("claude-sonnet"), raw("x" * 5_000)
    assert lean.attribute_value(short, any_value) == "claude-sonnet"
    assert lean.attribute_value(long, any_value) == "x" * 5_000
    assert list(lean._values) == [short]
