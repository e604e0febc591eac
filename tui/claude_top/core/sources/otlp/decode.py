"""Decode OTLP export requests (protobuf bytes or OTLP/JSON) into column-oriented rows.

The rows follow `core.schema`. Everything the sender sent is kept as JSON beside the typed
columns; string-typed numbers and booleans (Claude Code sends `"42"`, `"true"`) are coerced.
Unknown names are kept, never fatal. A text value longer than MAX_VALUE_BYTES is stored cut
to that size with its original size beside it (`bounded`), so one huge value cannot make a row
that the store cannot index.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from claude_top.core.names import (
    CLAUDE_CODE,
    CODEX,
    GEMINI_CLI,
    STATUS_ERROR,
    UNKNOWN_AGENT,
)
from claude_top.core.schema import COST_REPORTED, SOURCE_OTEL, column_names
from claude_top.core.sources.otlp import lean, otlp_json
from claude_top.core.sources.otlp.agents import (
    KNOWN_AGENTS,
    TURN_KINDS,
    agent_of,
    event_kind,
    map_event,
    map_span,
    session_of,
    span_event,
    span_role,
)
from claude_top.core.sources.otlp.redact import Redactor
from claude_top.core.sources.otlp.signals import SIGNALS
from claude_top.core.sources.otlp.values import to_bool, to_float, to_int, to_str

REQUEST_TYPES: dict[str, type[Message]] = {name: s.request for name, s in SIGNALS.items()}
_JSON_ROOT_KEYS = {
    "resourceSpans": "traces",
    "resource_spans": "traces",
    "resourceMetrics": "metrics",
    "resource_metrics": "metrics",
    "resourceLogs": "logs",
    "resource_logs": "logs",
}
_INT64_MAX = (1 << 63) - 1
_TEMPORALITY = {0: "unspecified", 1: "delta", 2: "cumulative"}
EVENT_PREFIX = "claude_code."
_ZERO16 = bytes(16)
_ZERO8 = bytes(8)
MAX_VALUE_BYTES = 1 << 20
"""The longest text value (UTF-8 bytes; bytes values as their base64 text) stored whole."""
TRUNCATED_FROM = ".truncated_from"
"""An attribute cut to MAX_VALUE_BYTES has a sibling `<key>.truncated_from`: its size in bytes."""


class DecodeFailure(ValueError):
    """The payload is not a valid OTLP export of the expected signal."""


@dataclass
class Decoded:
    """Rows decoded from one export request, ready for the store writer.

    `rows[table]` holds one tuple per row in `core.schema` column order.
    """

    signal: str
    rows: dict[str, list[tuple]] = field(
        default_factory=lambda: {"spans": [], "events": [], "metric_points": [], "resources": []}
    )
    rejected: int = 0
    rejected_reason: str = ""

    @property
    def count(self) -> int:
        """Rows of telemetry (resources not counted)."""
        r = self.rows
        return len(r["spans"]) + len(r["events"]) + len(r["metric_points"])

    def column(self, table: str, name: str) -> list:
        i = column_names(table).index(name)
        return [row[i] for row in self.rows[table]]


# --- parsing -------------------------------------------------------------------------------


def parse_protobuf(signal: str, body: bytes) -> Message:
    """Parse an Export*ServiceRequest; raise DecodeFailure on malformed bytes."""
    request = REQUEST_TYPES[signal]()
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise DecodeFailure(f"malformed OTLP {signal} protobuf: {exc}") from None
    return request


def guess_protobuf_signal(body: bytes) -> str:
    """Tell which signal a protobuf body carries (for `POST /`): the type it parses as cleanly."""
    best: tuple[int, str] | None = None
    for signal, cls in REQUEST_TYPES.items():
        msg = cls()
        try:
            msg.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError):
            continue
        size = msg.ByteSize()
        msg.DiscardUnknownFields()
        unknown = size - msg.ByteSize()
        if best is None or unknown < best[0]:
            best = (unknown, signal)
    if best is None:
        raise DecodeFailure("body is not an OTLP traces, metrics or logs protobuf")
    return best[1]


def _first_record_unknown(signal: str, request: Message) -> bool:
    """Whether the request's first record has fields its type does not know (as the records
    of another signal's export would): the cue to check which signal the body carries."""
    for resource in getattr(request, _RECORD_PATH[signal][0]):
        for scope in getattr(resource, _RECORD_PATH[signal][1]):
            for record in getattr(scope, _RECORD_PATH[signal][2]):
                return len(UnknownFieldSet(record)) > 0
    return False


_RECORD_PATH = {
    "traces": ("resource_spans", "scope_spans", "spans"),
    "logs": ("resource_logs", "scope_logs", "log_records"),
    "metrics": ("resource_metrics", "scope_metrics", "metrics"),
}


def parse_json(signal: str | None, body: bytes) -> tuple[str, Message]:
    """Parse an OTLP/JSON body (hex ids, enums as ints or names, ints as strings or numbers)."""
    signal, request, _ = _parse_json(signal, body)
    return signal, request


def _parse_json(signal: str | None, body: bytes) -> tuple[str, Message, bytes]:
    try:
        doc = otlp_json.loads(body)
    except ValueError as exc:  # orjson's and json's errors, UnicodeDecodeError
        raise DecodeFailure(f"malformed OTLP JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeFailure("malformed OTLP JSON: the top level must be an object")
    found = {_JSON_ROOT_KEYS[k] for k in doc if k in _JSON_ROOT_KEYS}
    if signal is None:
        if len(found) != 1:
            raise DecodeFailure(
                "cannot tell the signal: expected one of resourceSpans, resourceMetrics, "
                "resourceLogs"
            )
        signal = found.pop()
    elif found - {signal}:  # acknowledging it would drop it: the parser ignores unknown keys
        other = ", ".join(sorted(found - {signal}))
        raise DecodeFailure(f"the body carries {other}, not {signal}: send it to /v1/{other}")
    try:
        request, wire = otlp_json.to_message(doc, REQUEST_TYPES[signal], body)
    except otlp_json.OtlpJsonError as exc:
        raise DecodeFailure(f"malformed OTLP JSON {signal}: {exc}") from None
    return signal, request, wire


# --- accepting an export (validate and count; full decoding happens in the indexer) -------


@dataclass
class Export:
    """One validated export request, as the ingest journal keeps it until it is indexed."""

    signal: str
    body: bytes
    count: int
    rejected: int = 0
    rejected_reason: str = ""
    received_ns: int = field(default_factory=time.time_ns)


def inspect(signal: str, request: Message, body: bytes) -> Export:
    """Count the records of a parsed request and the ones the decoder will reject."""
    count = rejected = 0
    reason = ""
    if signal == "traces":
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    tid, sid = span.trace_id, span.span_id
                    if len(tid) != 16 or len(sid) != 8 or tid == _ZERO16 or sid == _ZERO8:
                        rejected += 1
                        reason = "span with an invalid trace_id or span_id"
                    else:
                        count += 1
    elif signal == "logs":
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                count += len(sl.log_records)
    else:
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is None:
                        rejected += 1
                        reason = f"metric {metric.name!r} has no data"
                    else:
                        count += len(getattr(metric, kind).data_points)
    return Export(signal, body, count, rejected, reason)


def accept_protobuf(signal: str | None, body: bytes, redact: Redactor | None = None) -> Export:
    """Validate protobuf bytes (telling the signal when `signal` is None) into an Export.

    With `redact`, the Export holds the request re-serialized without the redacted values.
    """
    told = signal
    signal = signal or guess_protobuf_signal(body)
    request = parse_protobuf(signal, body)
    if told and _first_record_unknown(signal, request):
        other = guess_protobuf_signal(body)
        if other != signal:  # it would parse as junk records: say where it belongs
            raise DecodeFailure(
                f"the body is an OTLP {other} export, not {signal}: send it to the {other} endpoint"
            )
    if redact is not None and redact.request(signal, request):
        body = request.SerializeToString()
    return inspect(signal, request, body)


def accept_json(signal: str | None, body: bytes, redact: Redactor | None = None) -> Export:
    """Validate an OTLP/JSON body into an Export holding the equivalent protobuf bytes."""
    signal, request, wire = _parse_json(signal, body)
    if redact is not None and redact.request(signal, request):
        wire = request.SerializeToString()
    return inspect(signal, request, wire)


def decode_export(export: Export) -> Decoded:
    """Fully decode a journalled export into rows."""
    return decode_protobuf(export.signal, export.body, export.received_ns)


# --- values --------------------------------------------------------------------------------


def _finite(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def any_value(v) -> Any:
    """AnyValue -> a JSON-safe Python value (bytes as base64, non-finite doubles as strings)."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "bool_value":
        return v.bool_value
    if which == "double_value":
        return _finite(v.double_value)
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def attributes_dict(kvs) -> dict[str, Any]:
    """Repeated KeyValue -> dict (later duplicates win, as in the SDKs)."""
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        which = v.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = v.string_value
        elif which == "int_value":
            out[kv.key] = v.int_value
        elif which == "bool_value":
            out[kv.key] = v.bool_value
        else:
            out[kv.key] = any_value(v)
    return out


def map_attributes(attributes) -> dict[str, Any]:
    """The attributes of a `core.lean` record (a map of serialized AnyValues) -> dict."""
    return {k: lean.attribute_value(v, any_value) for k, v in attributes.items()}


def _cut(text: str, limit: int) -> tuple[str, int]:
    """`text` cut to at most `limit` UTF-8 bytes (on a character boundary), and its size in
    bytes (0 when it fits whole)."""
    if len(text) <= limit // 4:
        return text, 0
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text, 0
    return raw[:limit].decode("utf-8", "ignore"), len(raw)


def clip(text: str | None, limit: int | None) -> str | None:
    """A text column cut to `limit` bytes, ending in a marker with its original size."""
    if text is None or limit is None:
        return text
    cut, size = _cut(text, limit)
    return f"{cut}…[truncated from {size} bytes]" if size else text


def bounded(attrs: dict[str, Any], limit: int | None) -> dict[str, Any]:
    """Attributes with every text value over `limit` bytes cut, `<key>.truncated_from` beside
    it (in nested key-value lists too; a string inside an array ends in a marker instead)."""
    if limit is None:
        return attrs
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, str):
            value, size = _cut(value, limit)
            if size:
                out[key + TRUNCATED_FROM] = size
        elif isinstance(value, dict):
            value = bounded(value, limit)
        elif isinstance(value, list):
            value = [_bounded_item(v, limit) for v in value]
        out[key] = value
    return out


def _bounded_item(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, dict):
        return bounded(value, limit)
    if isinstance(value, list):
        return [_bounded_item(v, limit) for v in value]
    return value


def value_limit(size: int) -> int | None:
    """MAX_VALUE_BYTES if a request of `size` bytes may hold a longer value, else None."""
    return MAX_VALUE_BYTES if size > MAX_VALUE_BYTES else None


def _ns(x: int) -> int | None:
    """A fixed64 nanosecond time as a BIGINT; 0 (unset) and out-of-range become None."""
    if not x:
        return None
    return x if x <= _INT64_MAX else None


def _dumps(d: Any) -> str:
    """JSON text, keys sorted: the same attributes read the same whatever order they came in."""
    return orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode()


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(len(p).to_bytes(4, "little"))
        h.update(p)
    return h.digest()


def _first(a: Any, b: Any) -> Any:
    return a if a is not None and a != "" else b


class _Resource:
    """What every record of one Resource* shares: its id, attributes and service name."""

    __slots__ = ("attrs", "service", "uid")

    def __init__(self, resource, out: Decoded, now: int, limit: int | None) -> None:
        self.attrs = bounded(attributes_dict(resource.attributes), limit)
        self.uid = _digest(b"resource", resource.SerializeToString(deterministic=True))
        self.service = to_str(self.attrs.get("service.name"))
        out.rows["resources"].append((self.uid, self.service, _dumps(self.attrs), now))

    def session(self, a: dict[str, Any]) -> str | None:
        return to_str(_first(a.get("session.id"), self.attrs.get("session.id")))


# --- spans ---------------------------------------------------------------------------------


def _span_events(span, limit: int | None) -> str | None:
    if not span.events:
        return None
    return _dumps(
        [
            {
                "name": clip(e.name, limit),
                "time_ns": e.time_unix_nano,
                "attributes": bounded(attributes_dict(e.attributes), limit),
            }
            for e in span.events
        ]
    )


def _span_links(span, limit: int | None) -> str | None:
    if not span.links:
        return None
    return _dumps(
        [
            {
                "trace_id": ln.trace_id.hex(),
                "span_id": ln.span_id.hex(),
                "attributes": bounded(attributes_dict(ln.attributes), limit),
            }
            for ln in span.links
        ]
    )


def decode_traces(
    request: Message, received_ns: int | None = None, limit: int | None = None
) -> Decoded:
    """A trace request -> span rows. Spans with invalid ids are rejected and counted. With
    `limit`, longer text values are cut (`bounded`, `clip`).

    Claude Code's spans are read here; other agents' through `agents.map_span` (a span of theirs
    without a session takes the one its trace's other spans in this export carry), and a GenAI
    agent's model requests and tool calls also become the events the panes count.
    """
    request = _lean(request)
    out = Decoded("traces")
    rows = out.rows["spans"]
    append = rows.append
    now = received_ns or time.time_ns()
    others: list[tuple[int, dict[str, Any] | None]] = []
    for rs in request.resource_spans:
        res = _Resource(rs.resource, out, now, limit)
        for ss in rs.scope_spans:
            scope_name = clip(ss.scope.name, limit) or None
            agent = agent_of(res.service, scope_name)
            claude = agent == CLAUDE_CODE
            genai = not claude and agent not in KNOWN_AGENTS and agent != UNKNOWN_AGENT
            for span in ss.spans:
                tid, sid = span.trace_id, span.span_id
                if len(tid) != 16 or len(sid) != 8 or tid == _ZERO16 or sid == _ZERO8:
                    out.rejected += 1
                    out.rejected_reason = "span with an invalid trace_id or span_id"
                    continue
                a = map_attributes(span.attributes)
                if limit is not None:
                    a = bounded(a, limit)
                start, end = _ns(span.start_time_unix_nano), _ns(span.end_time_unix_nano)
                duration = (end - start) / 1e6 if start is not None and end is not None else None
                status = span.status
                head = (
                    tid + sid,
                    tid.hex(),
                    sid.hex(),
                    span.parent_span_id.hex() or None,
                    clip(span.name, limit),
                    span.kind,
                    start,
                    end,
                    duration,
                    status.code,
                    clip(status.message, limit) or None,
                )
                tail = (
                    _dumps(a),
                    _span_events(span, limit),
                    _span_links(span, limit),
                    res.uid,
                    scope_name,
                    res.service,
                    now,
                    agent,
                )
                if claude:
                    get = a.get
                    append(
                        (
                            *head,
                            res.session(a),
                            to_str(get("span.type")),
                            to_str(_first(get("model"), get("gen_ai.request.model"))),
                            to_str(_first(get("tool_name"), get("gen_ai.tool.name"))),
                            to_str(_first(get("tool_use_id"), get("gen_ai.tool.call.id"))),
                            to_int(_first(get("input_tokens"), get("gen_ai.usage.input_tokens"))),
                            to_int(_first(get("output_tokens"), get("gen_ai.usage.output_tokens"))),
                            to_int(get("cache_read_tokens")),
                            to_int(get("cache_creation_tokens")),
                            to_bool(get("success")),
                            to_int(get("attempt")),
                            to_str(get("agent_id")),
                            to_str(get("parent_agent_id")),
                            *tail,
                            span_role(agent, span.name),
                            None,
                        )
                    )
                    continue
                m = other_span(agent, span.name, a, res.attrs)
                m.update(zip(_SPAN_IDS, (*head, *tail), strict=True))
                derived = None
                if genai and m.get("role") is not None:
                    derived = {**m, "ok": status.code != STATUS_ERROR}
                others.append((len(rows), derived))
                append(tuple(m.get(c) for c in _SPAN_COLS))
    if others:
        share_sessions(rows, [i for i, _ in others])
        for i, derived in others:
            if derived is not None and (ev := span_as_event(rows[i], derived)) is not None:
                out.rows["events"].append(ev)
    return out


_SPAN = {name: i for i, name in enumerate(column_names("spans"))}
_SPAN_COLS = column_names("spans")
_EVENT_COLS = column_names("events")
_SPAN_IDS = (*_SPAN_COLS[: _SPAN["session_id"]], *_SPAN_COLS[_SPAN["attributes"] : _SPAN["role"]])
OTHER_SPAN_COLUMNS = (
    *_SPAN_COLS[_SPAN["session_id"] : _SPAN["attributes"]],
    "role",
    "not_understood",
)
"""The typed span columns `other_span` fills."""
_READ_BY_RULES = frozenset({GEMINI_CLI, CODEX})


def other_span(
    agent: str | None, name: str, a: dict[str, Any], resource: dict[str, Any]
) -> dict[str, Any]:
    """The typed columns (session_id .. parent_agent_id, role, not_understood) of a span from an
    agent other than Claude Code: Gemini's and Codex's by their rules, any other sender's read
    by Claude Code's names, a GenAI model request's tokens in claude-top's meaning."""
    m = map_span(agent, name, a)
    m["session_id"] = session_of(agent, a, resource)
    if agent in _READ_BY_RULES:
        return m
    get = a.get
    typed = {
        "span_type": to_str(get("span.type")),
        "model": to_str(_first(get("model"), get("gen_ai.request.model"))),
        "tool_name": to_str(_first(get("tool_name"), get("gen_ai.tool.name"))),
        "tool_use_id": to_str(_first(get("tool_use_id"), get("gen_ai.tool.call.id"))),
        "input_tokens": to_int(_first(get("input_tokens"), get("gen_ai.usage.input_tokens"))),
        "output_tokens": to_int(_first(get("output_tokens"), get("gen_ai.usage.output_tokens"))),
        "cache_read_tokens": to_int(get("cache_read_tokens")),
        "cache_creation_tokens": to_int(get("cache_creation_tokens")),
        "success": to_bool(get("success")),
        "attempt": to_int(get("attempt")),
        "agent_id": to_str(get("agent_id")),
        "parent_agent_id": to_str(get("parent_agent_id")),
    }
    return {**typed, **m} if m.get("role") is not None else {**m, **typed}


def share_sessions(rows: list[tuple], indices: list[int]) -> None:
    """Spans (of other agents) without a session take the one their trace's spans carry."""
    sess, trace = _SPAN["session_id"], _SPAN["trace_id"]
    known = {rows[i][trace]: rows[i][sess] for i in indices if rows[i][sess] is not None}
    if not known:
        return
    for i in indices:
        row = rows[i]
        if row[sess] is None and row[trace] in known:
            rows[i] = (*row[:sess], known[row[trace]], *row[sess + 1 :])


def span_as_event(span: tuple, m: dict[str, Any]) -> tuple | None:
    """The event row a GenAI agent's model request or tool span (`span`, a spans row; `m` its
    typed columns, role, `ok` and `duration_ms`) stands for (`agents.span_event`), or None."""
    ev = span_event(m["role"], m)
    if ev is None:
        return None
    g = _SPAN
    values = {
        **ev,
        "uid": _digest(b"span-event", span[g["uid"]]),
        "name": span[g["name"]],
        "session_id": span[g["session_id"]],
        "prompt_id": span[g["trace_id"]],
        "time_ns": span[g["end_ns"]] or span[g["start_ns"]] or span[g["received_ns"]],
        "trace_id": span[g["trace_id"]],
        "span_id": span[g["span_id"]],
        "attributes": _dumps({"from_span": span[g["name"]]}),
        "resource_id": span[g["resource_id"]],
        "scope_name": span[g["scope_name"]],
        "service_name": span[g["service_name"]],
        "received_ns": span[g["received_ns"]],
        "agent": span[g["agent"]],
        "source": SOURCE_OTEL,
    }
    return tuple(values.get(c) for c in _EVENT_COLS)


# --- log events ----------------------------------------------------------------------------


def event_name(body: Any, attrs: dict[str, Any]) -> str:
    """Normalised event name: `claude_code.api_request` whether from the body or `event.name`."""
    short = attrs.get("event.name")
    if isinstance(body, str) and body and " " not in body and "." in body and len(body) < 200:
        return body
    if isinstance(short, str) and short:
        return short if "." in short else EVENT_PREFIX + short
    return "log"


_EVENT = {name: i for i, name in enumerate(column_names("events"))}
OTHER_EVENT_COLUMNS = (
    "session_id",
    "prompt_id",
    *column_names("events")[_EVENT["model"] : _EVENT["attributes"]],
    "kind",
    "request_id",
    "cost_source",
    "project",
    "not_understood",
)
"""The typed event columns `other_event` fills."""
_EVENT_IDS = (
    "uid",
    "name",
    "time_ns",
    "sequence",
    "trace_id",
    "span_id",
    "severity_number",
    "body",
    "attributes",
    "resource_id",
    "scope_name",
    "service_name",
    "received_ns",
    "agent",
)


def other_event(
    agent: str | None,
    name: str,
    a: dict[str, Any],
    resource: dict[str, Any],
    trace_id: str | None,
    turn_of: dict[str, str],
) -> dict[str, Any]:
    """The typed columns (`OTHER_EVENT_COLUMNS`) of an event from an agent other than Claude
    Code: Gemini's and Codex's by their rules, any other sender's read by Claude Code's names
    (with no kind) and marked not understood.

    Codex groups a turn's events by their trace; a completed response, logged without one,
    takes the trace its conversation's previous record carried (`turn_of`, kept by the caller
    across one export's records in order): the request it completes.
    """
    session = session_of(agent, a, resource)
    if agent not in _READ_BY_RULES:
        get = a.get
        cost = to_float(get("cost_usd"))
        return {
            "session_id": session,
            "prompt_id": to_str(get("prompt.id")),
            "model": to_str(_first(get("model"), get("gen_ai.request.model"))),
            "tool_name": to_str(get("tool_name")),
            "tool_use_id": to_str(get("tool_use_id")),
            "cost_usd": cost,
            "input_tokens": to_int(get("input_tokens")),
            "output_tokens": to_int(get("output_tokens")),
            "cache_read_tokens": to_int(get("cache_read_tokens")),
            "cache_creation_tokens": to_int(get("cache_creation_tokens")),
            "duration_ms": to_float(get("duration_ms")),
            "success": to_bool(get("success")),
            "decision": to_str(get("decision")),
            "error": to_str(get("error")),
            "attempt": to_int(get("attempt")),
            "query_source": to_str(get("query_source")),
            "request_id": to_str(get("request_id")),
            "cost_source": COST_REPORTED if cost is not None else None,
            "project": to_str(get("project")),
            "not_understood": map_event(agent, name, a).get("not_understood"),
        }
    m = map_event(agent, name, a)
    m["session_id"] = session
    if agent == CODEX and session is not None:
        if trace_id is not None:
            turn_of[session] = trace_id
        if m.get("kind") in TURN_KINDS:
            m["prompt_id"] = trace_id or turn_of.get(session)
    return m


def decode_logs(
    request: Message, received_ns: int | None = None, limit: int | None = None
) -> Decoded:
    """A logs request -> event rows; the uid is a digest of the record's content. With
    `limit`, longer text values are cut (`bounded`, `clip`).

    Claude Code's events are read here; other agents' by `other_event`.
    """
    request = _lean(request)
    out = Decoded("logs")
    append = out.rows["events"].append
    now = received_ns or time.time_ns()
    turn_of: dict[str, str] = {}
    for rl in request.resource_logs:
        res = _Resource(rl.resource, out, now, limit)
        for sl in rl.scope_logs:
            scope_name = clip(sl.scope.name, limit) or None
            scope_digest = sl.scope.SerializeToString(deterministic=True)
            agent = agent_of(res.service, scope_name)
            claude = agent == CLAUDE_CODE
            for rec in sl.log_records:
                a = map_attributes(rec.attributes)
                body = any_value(rec.body) if rec.HasField("body") else None
                if limit is not None:
                    a = bounded(a, limit)
                    body = _bounded_item(body, limit)
                get = a.get
                name = event_name(body, a)
                uid = _digest(
                    b"log", res.uid, scope_digest, rec.SerializeToString(deterministic=True)
                )
                time_ns = _ns(rec.time_unix_nano) or _ns(rec.observed_time_unix_nano) or now
                trace_id = rec.trace_id.hex() or None
                ids = (
                    time_ns,
                    to_int(get("event.sequence")),
                    trace_id,
                    rec.span_id.hex() or None,
                    rec.severity_number or None,
                    to_str(body),
                )
                where = (_dumps(a), res.uid, scope_name, res.service, now, agent)
                if not claude:
                    m = other_event(agent, name, a, res.attrs, trace_id, turn_of)
                    m.update(zip(_EVENT_IDS, (uid, name, *ids, *where), strict=True))
                    m["source"] = SOURCE_OTEL
                    append(tuple(m.get(c) for c in _EVENT_COLS))
                    continue
                cost = to_float(get("cost_usd"))
                append(
                    (
                        uid,
                        name,
                        res.session(a),
                        to_str(get("prompt.id")),
                        *ids,
                        to_str(_first(get("model"), get("gen_ai.request.model"))),
                        to_str(get("tool_name")),
                        to_str(get("tool_use_id")),
                        cost,
                        to_int(get("input_tokens")),
                        to_int(get("output_tokens")),
                        to_int(get("cache_read_tokens")),
                        to_int(get("cache_creation_tokens")),
                        to_float(get("duration_ms")),
                        to_bool(get("success")),
                        to_str(get("decision")),
                        to_str(get("error")),
                        to_int(get("attempt")),
                        to_str(get("query_source")),
                        *where,
                        event_kind(agent, name),
                        to_str(get("request_id")),
                        SOURCE_OTEL,
                        COST_REPORTED if cost is not None else None,
                        to_str(get("project")),
                        None,
                    )
                )
    return out


# --- metrics -------------------------------------------------------------------------------


def _point_value(p) -> float | None:
    which = p.WhichOneof("value")
    if which == "as_double":
        return p.as_double if math.isfinite(p.as_double) else None
    if which == "as_int":
        return float(p.as_int)
    return None


def decode_metrics(
    request: Message, received_ns: int | None = None, limit: int | None = None
) -> Decoded:
    """ExportMetricsServiceRequest -> one row per data point (with `limit`, longer text values
    are cut: `bounded`, `clip`).

    Sums carry `increment`: the value itself for DELTA; for CUMULATIVE it is left None here and
    filled by the store writer, which keeps each series' last running total.
    """
    out = Decoded("metrics")
    append = out.rows["metric_points"].append
    now = received_ns or time.time_ns()
    for rm in request.resource_metrics:
        res = _Resource(rm.resource, out, now, limit)
        for sm in rm.scope_metrics:
            scope_name = clip(sm.scope.name, limit) or None
            scope_digest = sm.scope.SerializeToString(deterministic=True)
            agent = agent_of(res.service, scope_name)
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    out.rejected += 1
                    out.rejected_reason = f"metric {metric.name!r} has no data"
                    continue
                data = getattr(metric, kind)
                temporality = _TEMPORALITY.get(getattr(data, "aggregation_temporality", 0))
                monotonic = data.is_monotonic if kind == "sum" else None
                name = clip(metric.name, limit)
                name_b = metric.name.encode()
                for p in data.data_points:
                    a = bounded(attributes_dict(p.attributes), limit)
                    attrs_json = _dumps(a)
                    count: int | None = None
                    extra: str | None = None
                    if kind in ("sum", "gauge"):
                        value = _point_value(p)
                    else:
                        count = p.count if p.count <= _INT64_MAX else None
                        has_sum = kind == "summary" or p.HasField("sum")
                        value = p.sum if has_sum and math.isfinite(p.sum) else None
                        point = json_format.MessageToDict(p, preserving_proto_field_name=True)
                        point.pop("attributes", None)
                        extra = json.dumps(point, ensure_ascii=False)
                    append(
                        (
                            _digest(
                                b"metric",
                                res.uid,
                                scope_digest,
                                name_b,
                                kind.encode(),
                                p.SerializeToString(deterministic=True),
                            ),
                            _digest(res.uid, scope_digest, name_b, attrs_json.encode()),
                            name,
                            kind,
                            temporality,
                            monotonic,
                            clip(metric.unit, limit) or None,
                            res.session(a),
                            to_str(a.get("model")),
                            to_str(a.get("type")),
                            _ns(p.start_time_unix_nano),
                            _ns(p.time_unix_nano) or now,
                            value,
                            value if kind == "sum" and temporality == "delta" else None,
                            count,
                            attrs_json,
                            extra,
                            res.uid,
                            scope_name,
                            res.service,
                            now,
                            agent,
                        )
                    )
    return out


DECODERS = {"traces": decode_traces, "metrics": decode_metrics, "logs": decode_logs}


def decode_request(signal: str, request: Message, received_ns: int | None = None) -> Decoded:
    """Decode a parsed Export*ServiceRequest of the given signal."""
    return DECODERS[signal](request, received_ns, value_limit(request.ByteSize()))


def decode_protobuf(signal: str, body: bytes, received_ns: int | None = None) -> Decoded:
    """Parse and decode protobuf bytes of the given signal (validated: see `accept_protobuf`)."""
    cls = lean.REQUEST_TYPES.get(signal)
    if cls is None:
        request = parse_protobuf(signal, body)
        return DECODERS[signal](request, received_ns, value_limit(len(body)))
    request = cls()
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise DecodeFailure(f"malformed OTLP {signal} protobuf: {exc}") from None
    return DECODERS[signal](request, received_ns, value_limit(len(body)))


def _lean(request: Message) -> Message:
    """A trace or logs request as its `core.lean` type (the one the decoders read)."""
    signal = "traces" if isinstance(request, SIGNALS["traces"].request) else "logs"
    if isinstance(request, SIGNALS["traces"].request | SIGNALS["logs"].request):
        return lean.REQUEST_TYPES[signal].FromString(request.SerializeToString())
    return request
