"""OTLP/JSON -> protobuf messages, about 8x faster than protobuf's pure-Python `json_format`.

Follows the OTLP/JSON encoding: trace and span ids are hex (case-insensitive), other bytes
base64; enums are numbers or names; 64-bit integers are strings or numbers; doubles may be
"NaN", "Infinity", "-Infinity"; keys are lowerCamelCase or the proto field names; unknown keys
are ignored and null means the default. Every value is read as
`json_format.ParseDict(..., ignore_unknown_fields=True)` reads it (the tests compare the two),
except that a message must be a JSON object (json_format takes a string as an empty message).

The converter writes the protobuf encoding of the document, field by field, and the C parser
reads it back as the message. The field tables come from the message descriptors, so fields
added to opentelemetry-proto are read too.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

MAX_DEPTH = 100  # messages nested in one another: json_format's limit, and the protobuf parser's
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_ID_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})
Encode = Callable[[Any, int], bytes]


class OtlpJsonError(ValueError):
    """The document is not the OTLP/JSON of the message; str() says where and why."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.where: list[str] = []  # innermost first

    def __str__(self) -> str:
        path = "".join(reversed(self.where)).lstrip(".")
        if len(path) > 160:
            path = f"{path[:60]}...{path[-90:]}"
        return f"{path}: {self.problem}" if path else self.problem


class _Inexact(Exception):
    """orjson read an integer beyond 64 bits as a float, rounded."""


class _UnknownEnumName(Exception):
    """An enum name this proto does not know: the field is left unset, as json_format does."""


class _ExactFloat(float):
    """A float json.loads read (orjson's floats are known to be finite and not rounded ints)."""


def loads(body: bytes, exact: bool = False) -> Any:
    """Parse JSON with orjson, or with json.loads what orjson refuses (NaN, a byte order mark,
    UTF-16, lone surrogates) and, with `exact`, integers beyond 64 bits. Raises ValueError."""
    if not exact:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body, parse_float=_ExactFloat, parse_constant=_ExactFloat)
    except RecursionError:
        raise ValueError("arrays or objects nested too deeply") from None


def to_message(doc: Any, message_type: type[Message], body: bytes) -> tuple[Message, bytes]:
    """Build `message_type` from `doc`, the OTLP/JSON document `loads(body)` gave; returns it
    with the protobuf bytes it was parsed from (fields in the JSON's order, zeros kept).

    Raises OtlpJsonError.
    """
    root = _ROOTS.get(message_type)
    if root is None:
        with _BUILDING:  # the tables are complete once the outermost _message() returns
            root = _ROOTS[message_type] = _message(message_type.DESCRIPTOR)
    try:
        wire = root.encode(doc, 1)
    except _Inexact:
        wire = root.encode(loads(body, exact=True), 1)
    try:
        return message_type.FromString(wire), wire
    except DecodeError as exc:
        raise OtlpJsonError(str(exc)) from None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return "an array" if isinstance(value, list) else "an object"


# --- the wire format -----------------------------------------------------------------------

_VARINTS = [bytes([n]) if n < 128 else bytes([n & 0x7F | 0x80, n >> 7]) for n in range(1 << 11)]
"""The varints of the small numbers most lengths and counts are (a table of 16384 took 0.7 MB)."""


def _varint(n: int) -> bytes:
    """Base-128 varint of a non-negative int below 2**64."""
    if n < 2048:
        return _VARINTS[n]
    if n < 16384:
        return bytes((n & 0x7F | 0x80, n >> 7))
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _length(data: bytes) -> bytes:
    n = len(data)
    return _VARINTS[n] if n < 2048 else _varint(n)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_pack_double = struct.Struct("<d").pack
_pack_float = struct.Struct("<f").pack


# --- scalars: value -> (wire type, payload) ------------------------------------------------


def _to_int(value: Any) -> int:
    if isinstance(value, str):
        if " " not in value:
            try:
                return int(value)
            except ValueError:
                try:
                    f = float(value)
                except ValueError:
                    f = 0.5
                if f.is_integer():
                    return int(f)
        raise OtlpJsonError(f"not an integer: {value[:40]!r}")
    if isinstance(value, float):
        if type(value) is float and abs(value) >= 2**63:
            raise _Inexact
        if value.is_integer():
            return int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise OtlpJsonError(f"expected an integer, not {_describe(value)}")


def _integer(field: FieldDescriptor) -> tuple[int, Callable[[Any], bytes]]:
    t = FieldDescriptor
    bits = 64 if field.type in (t.TYPE_INT64, t.TYPE_UINT64, t.TYPE_SINT64, t.TYPE_FIXED64,
                                t.TYPE_SFIXED64) else 32  # fmt: skip
    signed = field.type not in (t.TYPE_UINT32, t.TYPE_UINT64, t.TYPE_FIXED32, t.TYPE_FIXED64)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    kind = f"an int{bits}" if signed else f"a uint{bits}"

    def checked(value: Any) -> int:
        n = value if type(value) is int else _to_int(value)
        if lo <= n <= hi:
            return n
        raise OtlpJsonError(f"{n} is out of range for {kind}")

    if field.type in (t.TYPE_FIXED64, t.TYPE_SFIXED64, t.TYPE_FIXED32, t.TYPE_SFIXED32):
        size = bits // 8
        return (_I64 if bits == 64 else _I32), lambda v: checked(v).to_bytes(
            size, "little", signed=signed
        )
    if field.type in (t.TYPE_SINT32, t.TYPE_SINT64):
        return _VARINT, lambda v: _varint(_zigzag(checked(v)))
    return _VARINT, lambda v: _varint(checked(v) & 0xFFFFFFFFFFFFFFFF)


def _zigzag(n: int) -> int:
    return n << 1 if n >= 0 else (-n << 1) - 1


def _to_double(value: Any) -> float:
    if type(value) is float:
        return value
    if isinstance(value, str):
        if value != "nan":
            try:
                return float(value)
            except ValueError:
                pass
        raise OtlpJsonError(f"not a number: {value[:40]!r}")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise OtlpJsonError(f'{value} must be quoted: "NaN", "Infinity" or "-Infinity"')
        return float(value)
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise OtlpJsonError(f"{value} is too large for a double") from None
    raise OtlpJsonError(f"expected a number, not {_describe(value)}")


def _double(value: Any) -> bytes:
    return _pack_double(value if type(value) is float else _to_double(value))


def _float(value: Any) -> bytes:
    try:
        return _pack_float(_to_double(value))
    except OverflowError:
        raise OtlpJsonError(f"{value} is too large for a float") from None


def _bool(value: Any) -> bytes:
    if type(value) is bool:
        return b"\x01" if value else b"\x00"
    raise OtlpJsonError(f"expected true or false, not {_describe(value)}")


def _string(value: Any) -> bytes:
    if type(value) is str:
        try:
            data = value.encode()
        except UnicodeEncodeError:
            raise OtlpJsonError(f"not valid Unicode (a lone surrogate): {value[:40]!r}") from None
        return _length(data) + data
    raise OtlpJsonError(f"expected a string, not {_describe(value)}")


def _base64(value: Any) -> bytes:
    if type(value) is str:
        try:
            encoded = value.encode()
            data = base64.urlsafe_b64decode(encoded + b"=" * (4 - len(encoded) % 4))
        except ValueError:
            raise OtlpJsonError(f"not base64: {value[:40]!r}") from None
        return _length(data) + data
    raise OtlpJsonError(f"expected a base64 string, not {_describe(value)}")


def _hex(value: Any) -> bytes:
    if type(value) is str:
        try:
            data = bytes.fromhex(value)
        except ValueError:
            raise OtlpJsonError(f"not a hex string: {value[:40]!r}") from None
        return _length(data) + data
    raise OtlpJsonError(f"expected a hex string, not {_describe(value)}")


def _enum(enum: EnumDescriptor) -> Callable[[Any], bytes]:
    by_name = {v.name: v.number for v in enum.values}
    numbers = frozenset(by_name.values())

    def encode(value: Any) -> bytes:
        if type(value) is int and value in numbers:
            number = value
        elif isinstance(value, list | dict):
            raise OtlpJsonError(f"expected a {enum.name} name or number, not {_describe(value)}")
        else:
            number = by_name.get(value)
            if number is None:
                try:
                    number = int(value)
                except ValueError:
                    raise _UnknownEnumName from None
                except (TypeError, OverflowError):
                    raise OtlpJsonError(f"not a {enum.name}: {value}") from None
                if enum.is_closed and number not in numbers:
                    raise OtlpJsonError(f"not a {enum.name}: {number}")
                if not -(1 << 31) <= number < 1 << 31:
                    raise OtlpJsonError(f"{number} is out of range for an enum")
        return _varint(number & 0xFFFFFFFFFFFFFFFF)

    return encode


def _scalar(field: FieldDescriptor) -> tuple[int, Callable[[Any], bytes]]:
    """The wire type and payload encoder of a scalar field."""
    t = FieldDescriptor
    if field.enum_type is not None:
        return _VARINT, _enum(field.enum_type)
    if field.type == t.TYPE_DOUBLE:
        return _I64, _double
    if field.type == t.TYPE_FLOAT:
        return _I32, _float
    if field.type == t.TYPE_BOOL:
        return _VARINT, _bool
    if field.type == t.TYPE_STRING:
        return _LEN, _string
    if field.type == t.TYPE_BYTES:
        return _LEN, _hex if field.name in _ID_FIELDS else _base64
    return _integer(field)


# --- fields: (value, depth) -> the field's bytes, tag included ------------------------------


def _index_of(items: list, item: Any) -> int:
    return next(i for i, x in enumerate(items) if x is item)


def _each(encode: Encode, items: Any, depth: int) -> list[bytes]:
    """Every element of an array encoded; unknown enum names left out, as json_format does."""
    if type(items) is not list:
        raise OtlpJsonError(f"expected an array, not {_describe(items)}")
    out = []
    append = out.append
    for i, x in enumerate(items):
        try:
            append(encode(x, depth))
        except OtlpJsonError as exc:
            exc.where.append(f"[{i}]")
            raise
        except _UnknownEnumName:
            pass
    return out


def _scalar_field(field: FieldDescriptor) -> Encode:
    wire_type, payload = _scalar(field)
    if not field.is_repeated:
        tag = _tag(field.number, wire_type)
        return lambda value, depth: tag + payload(value)
    tag = _tag(field.number, _LEN)
    if wire_type == _LEN:  # strings and bytes: one field per element

        def element(value: Any, depth: int) -> bytes:
            return tag + payload(value)

        return lambda items, depth: b"".join(_each(element, items, depth))

    def packed(items: Any, depth: int) -> bytes:
        data = b"".join(_each(lambda value, _: payload(value), items, depth))
        return tag + _length(data) + data if data else b""

    return packed


def _message_field(tag: bytes, message: _Message, repeated: bool) -> Encode:
    body = message.encode

    def one(value: Any, depth: int) -> bytes:
        data = body(value, depth)
        return tag + _length(data) + data

    if repeated:
        return lambda items, depth: b"".join(_each(one, items, depth))
    return one


# --- messages ------------------------------------------------------------------------------


class _Message:
    """Encodes a JSON object as the protobuf body of one message type."""

    __slots__ = ("fields", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        # JSON name or proto name -> (proto name, encoder, oneof name or None)
        self.fields: dict[str, tuple[str, Encode, str | None]] = {}

    def encode(self, obj: Any, depth: int) -> bytes:
        if type(obj) is not dict:
            raise OtlpJsonError(f"expected an object ({self.name}), not {_describe(obj)}")
        if depth > MAX_DEPTH:
            raise OtlpJsonError(f"messages nested more than {MAX_DEPTH} deep")
        out: dict[str, bytes] = {}
        oneofs: set[str] | None = None
        fields = self.fields
        depth += 1
        for key, value in obj.items():
            field = fields.get(key)
            if field is None:
                continue
            name, encode, oneof = field
            if value is None:
                out.pop(name, None)
                continue
            if oneof is not None:
                if oneofs is None:
                    oneofs = {oneof}
                elif oneof in oneofs:
                    raise OtlpJsonError(f"more than one field of the oneof {oneof!r} at {key!r}")
                else:
                    oneofs.add(oneof)
            try:
                out[name] = encode(value, depth)
            except OtlpJsonError as exc:
                exc.where.append(f".{key}")
                raise
            except _UnknownEnumName:
                continue
        return b"".join(out.values())


_MESSAGES: dict[str, _Message] = {}
_ROOTS: dict[type[Message], _Message] = {}
_BUILDING = threading.Lock()


def _message(descriptor: Descriptor) -> _Message:
    """The encoder of a message type, built from its descriptor on first use."""
    found = _MESSAGES.get(descriptor.full_name)
    if found is not None:
        return found
    message = _MESSAGES[descriptor.full_name] = _Message(descriptor.name)
    for field in descriptor.fields:
        if field.message_type is None:
            encode = _scalar_field(field)
        else:
            fast = _FAST.get((field.message_type.full_name, field.is_repeated))
            if fast is not None:
                encode = fast(_tag(field.number, _LEN))
            else:
                message_type = _message(field.message_type)
                encode = _message_field(_tag(field.number, _LEN), message_type, field.is_repeated)
        oneof = field.containing_oneof.name if field.containing_oneof is not None else None
        message.fields[field.json_name] = message.fields[field.name] = (field.name, encode, oneof)
    return message


# --- attributes, the bulk of every export, without the generic machinery --------------------


def _any_value_body(obj: Any, depth: int) -> bytes:
    if type(obj) is dict and len(obj) == 1 and depth <= MAX_DEPTH:
        ((key, x),) = obj.items()
        t = type(x)
        if t is str:
            if key == "stringValue":
                try:
                    data = x.encode()
                except UnicodeEncodeError:
                    return _ANY_VALUE.encode(obj, depth)
                return b"\x0a" + _length(data) + data
            if key == "intValue" and " " not in x:
                try:
                    n = int(x)
                except ValueError:
                    n = _INT64_MAX + 1
                if _INT64_MIN <= n <= _INT64_MAX:
                    return b"\x18" + _varint(n & 0xFFFFFFFFFFFFFFFF)
        elif t is int:
            if key == "intValue" and _INT64_MIN <= x <= _INT64_MAX:
                return b"\x18" + _varint(x & 0xFFFFFFFFFFFFFFFF)
        elif t is bool:
            if key == "boolValue":
                return b"\x10\x01" if x else b"\x10\x00"
        elif t is float and key == "doubleValue":
            return b"\x21" + _pack_double(x)
    return _ANY_VALUE.encode(obj, depth)


def _any_value(tag: bytes) -> Encode:
    def encode(value: Any, depth: int) -> bytes:
        data = _any_value_body(value, depth)
        return tag + _length(data) + data

    return encode


def _key_values(tag: bytes) -> Encode:
    keys: dict[str, bytes] = {}  # attribute name -> its KeyValue.key field, for short ASCII names

    def encode(items: Any, depth: int) -> bytes:
        if type(items) is not list or depth >= MAX_DEPTH:
            return _message_field(tag, _KEY_VALUE, repeated=True)(items, depth)
        parts = []
        append = parts.append
        for kv in items:
            if type(kv) is dict and len(kv) == 2:
                key = kv.get("key")
                value = kv.get("value")
                if type(key) is str and type(value) is dict:
                    k = keys.get(key)
                    if k is None and len(key) < 100 and key.isascii():
                        if len(keys) > 1024:
                            keys.clear()
                        k = keys[key] = b"\x0a%c%b" % (len(key), key.encode())
                    if k is not None:
                        s = value.get("stringValue")
                        if (
                            type(s) is str
                            and len(value) == 1
                            and s.isascii()
                            and len(k) + len(s) < 124
                        ):
                            append(b"%b%c%b\x12%c\x0a%c%b" % (
                                tag, len(k) + len(s) + 4, k, len(s) + 2, len(s), s.encode()
                            ))  # fmt: skip
                            continue
                        try:
                            v = _any_value_body(value, depth + 1)
                        except OtlpJsonError as exc:
                            exc.where.append(f"[{_index_of(items, kv)}].value")
                            raise
                        if len(k) + len(v) < 124:  # each length fits one byte
                            append(b"%b%c%b\x12%c%b" % (tag, len(k) + len(v) + 2, k, len(v), v))
                        else:
                            body = b"%b\x12%b%b" % (k, _length(v), v)
                            append(tag + _length(body) + body)
                        continue
            try:
                body = _KEY_VALUE.encode(kv, depth)
            except OtlpJsonError as exc:
                exc.where.append(f"[{_index_of(items, kv)}]")
                raise
            append(tag + _length(body) + body)
        return b"".join(parts)

    return encode


_FAST: dict[tuple[str, bool], Callable[[bytes], Encode]] = {
    (AnyValue.DESCRIPTOR.full_name, False): _any_value,
    (KeyValue.DESCRIPTOR.full_name, True): _key_values,
}
_ANY_VALUE = _message(AnyValue.DESCRIPTOR)
_KEY_VALUE = _message(KeyValue.DESCRIPTOR)
