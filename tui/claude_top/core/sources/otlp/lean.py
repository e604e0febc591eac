"""Lean protobuf types for the indexer: the OTLP trace and log requests with attributes read as
`map<string, bytes>`.

The wire format of `repeated KeyValue attributes` is exactly that of a map whose values are the
serialized AnyValues, so the same bytes parse into either. Reading a map of bytes skips the two
Python wrapper objects upb makes per KeyValue (about 0.6 us each): the indexer's main cost.
Values are decoded by `attribute_value`, with a small cache, since most repeat (session, user,
model, provider...). A map keeps the last of duplicate keys, as the SDKs do.

Only for bodies that `decode.accept_*` already validated with the real types.
"""

from __future__ import annotations

import contextlib
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

PACKAGE = "claude_top.lean"
_F = descriptor_pb2.FieldDescriptorProto
_CACHE_MAX = 16_384
_CACHE_VALUE_BYTES = 1024
"""Longer values (a prompt, a tool's input) rarely repeat: not cached, nor held by the cache."""
_values: dict[bytes, Any] = {}


def _record(file: descriptor_pb2.FileDescriptorProto, real, attributes: int) -> str:
    """Copy message type `real` into `file` with field number `attributes` as a bytes map."""
    msg = descriptor_pb2.DescriptorProto()
    real.DESCRIPTOR.CopyToProto(msg)  # type names stay absolute: nested types resolve to `real`'s
    del msg.nested_type[:]
    del msg.enum_type[:]
    entry = msg.nested_type.add(name="AttributesEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_STRING)
    entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL, type=_F.TYPE_BYTES)
    (field,) = [f for f in msg.field if f.number == attributes]
    field.type_name = f".{PACKAGE}.{msg.name}.AttributesEntry"
    file.message_type.append(msg)
    return msg.name


def _nest(file, name: str, child: str, scope_field: str, record_field: str) -> None:
    """Request -> Resource* -> Scope* -> records, as OTLP nests them, around `child`."""
    msg = lambda n: file.message_type.add(name=n)  # noqa: E731
    scope = msg(f"Scope{name}")
    scope.field.add(name="scope", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_MESSAGE,
                    type_name=".opentelemetry.proto.common.v1.InstrumentationScope")  # fmt: skip
    scope.field.add(name=record_field, number=2, label=_F.LABEL_REPEATED, type=_F.TYPE_MESSAGE,
                    type_name=f".{PACKAGE}.{child}")  # fmt: skip
    resource = msg(f"Resource{name}")
    resource.field.add(name="resource", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_MESSAGE,
                       type_name=".opentelemetry.proto.resource.v1.Resource")  # fmt: skip
    resource.field.add(name=scope_field, number=2, label=_F.LABEL_REPEATED, type=_F.TYPE_MESSAGE,
                       type_name=f".{PACKAGE}.Scope{name}")  # fmt: skip
    request = msg(f"{name}Request")
    request.field.add(name=f"resource_{name.lower()}", number=1, label=_F.LABEL_REPEATED,
                      type=_F.TYPE_MESSAGE, type_name=f".{PACKAGE}.Resource{name}")  # fmt: skip


def _build() -> dict[str, type]:
    file = descriptor_pb2.FileDescriptorProto(
        name="claude_top/lean.proto", package=PACKAGE, syntax="proto3"
    )
    file.dependency.extend(
        [m.DESCRIPTOR.name for m in (common_pb2, resource_pb2, trace_pb2, logs_pb2)]
    )
    _nest(file, "Spans", _record(file, trace_pb2.Span, 9), "scope_spans", "spans")
    _nest(file, "Logs", _record(file, logs_pb2.LogRecord, 6), "scope_logs", "log_records")
    pool = descriptor_pool.Default()
    try:
        found = pool.FindFileByName(file.name)
    except KeyError:
        pool.Add(file)
        found = pool.FindFileByName(file.name)
    types = found.message_types_by_name
    return {
        "traces": message_factory.GetMessageClass(types["SpansRequest"]),
        "logs": message_factory.GetMessageClass(types["LogsRequest"]),
    }


REQUEST_TYPES = _build()


def attribute_value(raw: bytes, any_value) -> Any:
    """A serialized AnyValue as a Python value (`any_value` decodes the uncommon kinds)."""
    n = len(raw)
    if n > _CACHE_VALUE_BYTES:
        return any_value(AnyValue.FromString(raw))
    value = _values.get(raw, _values)
    if value is not _values:
        return value
    if n >= 2 and raw[0] == 0x0A and raw[1] == n - 2 and n < 130:  # a short string_value
        with contextlib.suppress(UnicodeDecodeError):
            value = raw[2:].decode()
    if value is _values:
        value = any_value(AnyValue.FromString(raw))
        if isinstance(value, list | dict):
            return value
    if len(_values) >= _CACHE_MAX:
        _values.clear()
    _values[raw] = value
    return value
