"""The real Claude Code fixtures and truths computed straight from them (`from truth import ...`).

Truths read the captured requests' JSON (`req`), never claude-top code, so a decoding bug
cannot hide behind the same bug in the expected values.
"""

from __future__ import annotations

import base64
import json
import os
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES_ROOT = REPO / "tests" / "fixtures"
"""The real captures, vendored from the upstream copy (`python tests/fixtures/sync.py` compares)."""
FIXTURES = Path(os.environ.get("CLAUDE_TOP_FIXTURES", FIXTURES_ROOT / "claude-code-2.1.328"))
GRPC_FIXTURES = ("basic.grpc", "errors.grpc", "continued.grpc")
HTTP_FIXTURES = ("basic.http-json", "basic.http-protobuf")
GEMINI_CAPTURE = FIXTURES_ROOT / "gemini-cli-0.61.0" / "basic.grpc.jsonl"
CODEX_CAPTURE = FIXTURES_ROOT / "codex-cli-0.169.0" / "basic.grpc.jsonl"
OTHER_AGENT_CAPTURES = {"gemini-cli": GEMINI_CAPTURE, "codex": CODEX_CAPTURE}
"""Another agent's real capture, by the agent claude-top should name it."""


def fixture_lines(name: str) -> list[dict]:
    """The export requests of one fixture file, in arrival order."""
    with open(FIXTURES / f"{name}.jsonl") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def grpc_requests(name: str) -> list[tuple[str, bytes]]:
    """(signal, protobuf bytes) for each request of a gRPC fixture."""
    return [(d["kind"], base64.b64decode(d["pb"])) for d in fixture_lines(name)]


def http_requests(name: str) -> list[dict]:
    """Each request of an HTTP fixture: path, ctype, enc and the raw body (bytes)."""
    return [{**d, "body": base64.b64decode(d["body"])} for d in fixture_lines(name)]


_PATH_SIGNAL = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids_to_b64(node) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _ID_KEYS and isinstance(v, str):
                node[k] = base64.b64encode(bytes.fromhex(v)).decode()
            else:
                _hex_ids_to_b64(v)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_b64(item)


def request_docs(name: str) -> list[tuple[str, dict]]:
    """(signal, request in protobuf's JSON mapping, as a gRPC fixture's `req`) for any fixture.

    HTTP bodies are read with the opentelemetry-proto classes only, never claude-top code.
    """
    if name.endswith(".grpc"):
        return [(d["kind"], d["req"]) for d in fixture_lines(name)]
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    types = {
        "traces": ExportTraceServiceRequest,
        "metrics": ExportMetricsServiceRequest,
        "logs": ExportLogsServiceRequest,
    }
    out = []
    for d in http_requests(name):
        assert d["enc"] is None, "compressed fixture bodies are not handled here"
        signal = _PATH_SIGNAL[d["path"]]
        msg = types[signal]()
        if d["ctype"] == "application/json":
            doc = json.loads(d["body"])
            _hex_ids_to_b64(doc)
            json_format.ParseDict(doc, msg)
        else:
            msg.ParseFromString(d["body"])
        out.append((signal, json_format.MessageToDict(msg)))
    return out


def _value(v: dict):
    if not v:
        return None
    ((kind, x),) = v.items()
    if kind == "arrayValue":
        return [_value(i) for i in x.get("values", [])]
    if kind == "kvlistValue":
        return {i["key"]: _value(i["value"]) for i in x.get("values", [])}
    if kind == "intValue":
        return int(x)
    return x


def _attrs(items) -> dict:
    return {i["key"]: _value(i.get("value", {})) for i in items or []}


_METRIC_KINDS = ("sum", "gauge", "histogram", "exponentialHistogram", "summary")


class Truth:
    """Expected values computed from fixtures' JSON requests (gRPC `req` or HTTP bodies)."""

    def __init__(self, *names: str) -> None:
        self.events: list[dict] = []
        self.spans: list[dict] = []
        self.metric_points: list[dict] = []
        self.data_points = 0  # every metric data point, whatever its type
        for name in names:
            for _signal, req in request_docs(name):
                for rl in req.get("resourceLogs", []):
                    for sl in rl.get("scopeLogs", []):
                        for r in sl.get("logRecords", []):
                            a = _attrs(r.get("attributes"))
                            a["_body"] = r.get("body", {}).get("stringValue")
                            self.events.append(a)
                for rs in req.get("resourceSpans", []):
                    for ss in rs.get("scopeSpans", []):
                        for s in ss.get("spans", []):
                            a = _attrs(s.get("attributes"))
                            a["_name"] = s["name"]
                            a["_trace_id"] = base64.b64decode(s["traceId"]).hex()
                            a["_span_id"] = base64.b64decode(s["spanId"]).hex()
                            a["_parent"] = base64.b64decode(s.get("parentSpanId", "")).hex()
                            a["_status"] = s.get("status", {}).get("code")
                            self.spans.append(a)
                for rm in req.get("resourceMetrics", []):
                    for sm in rm.get("scopeMetrics", []):
                        for m in sm.get("metrics", []):
                            for kind in _METRIC_KINDS:
                                self.data_points += len(m.get(kind, {}).get("dataPoints", []))
                            for p in m.get("sum", {}).get("dataPoints", []):
                                a = _attrs(p.get("attributes"))
                                a["_name"] = m["name"]
                                a["_value"] = (
                                    float(p["asDouble"]) if "asDouble" in p else int(p["asInt"])
                                )
                                self.metric_points.append(a)

    def api_requests(self, session: str | None = None) -> list[dict]:
        return [
            e
            for e in self.events
            if e.get("event.name") == "api_request"
            and (session is None or e["session.id"] == session)
        ]

    def cost(self, session: str | None = None, model: str | None = None) -> float:
        return sum(
            float(e["cost_usd"])
            for e in self.api_requests(session)
            if model is None or e["model"] == model
        )

    def tokens(self, kind: str, session: str | None = None, model: str | None = None) -> int:
        return sum(
            int(e[f"{kind}_tokens"])
            for e in self.api_requests(session)
            if model is None or e["model"] == model
        )

    def tool_results(self) -> list[dict]:
        return [e for e in self.events if e.get("event.name") == "tool_result"]

    def tool_calls(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for e in self.tool_results():
            out[e["tool_name"]] += 1
        return dict(out)

    def events_by_name(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for e in self.events:
            out["claude_code." + e["event.name"]] += 1
        return dict(out)

    def metric_sum(self, name: str, **match) -> float:
        return sum(
            p["_value"]
            for p in self.metric_points
            if p["_name"] == name and all(p.get(k) == v for k, v in match.items())
        )

    def sessions(self) -> set[str]:
        return {e["session.id"] for e in self.events if "session.id" in e}

    def working_sessions(self) -> set[str]:
        """Sessions with a prompt or an API request: the panes fold the rest away (start-up
        telemetry alone, as a `--continue` sends under a fresh session id)."""
        return {
            e["session.id"]
            for e in self.events
            if e.get("event.name") in ("user_prompt", "api_request")
        }


def set_value(v, x) -> None:
    """A Python value as an AnyValue; None leaves it empty (no value set)."""
    if isinstance(x, bool):
        v.bool_value = x
    elif isinstance(x, int):
        v.int_value = x
    elif isinstance(x, float):
        v.double_value = x
    elif isinstance(x, str):
        v.string_value = x
    elif isinstance(x, bytes):
        v.bytes_value = x
    elif isinstance(x, list):
        v.array_value.SetInParent()
        for item in x:
            set_value(v.array_value.values.add(), item)
    elif isinstance(x, dict):
        v.kvlist_value.SetInParent()
        for k, item in x.items():
            set_value(v.kvlist_value.values.add(key=k).value, item)


def as_otlp_json(msg, camel: bool = True, enum_names: bool = True) -> dict:
    """A protobuf message as OTLP/JSON: protobuf's JSON mapping with trace and span ids in hex."""
    from google.protobuf import json_format

    doc = json_format.MessageToDict(
        msg, preserving_proto_field_name=not camel, use_integers_for_enums=not enum_names
    )
    ids = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}

    def hexify(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ids and isinstance(v, str):
                    node[k] = base64.b64decode(v).hex()
                else:
                    hexify(v)
        elif isinstance(node, list):
            for v in node:
                hexify(v)

    hexify(doc)
    return doc


# --- status-line samples -----------------------------------------------------------------------

STATUSLINE_CAPTURE = "statusline/limits.grpc"
"""The telemetry of the interactive run whose status-line samples are `statusline_samples()`."""


def api_request_records(name: str = STATUSLINE_CAPTURE) -> list[dict]:
    """Every api_request log record of a capture, oldest first: its attributes, and its own
    time in ns as `_t`."""
    out = []
    for signal, req in request_docs(name):
        if signal != "logs":
            continue
        for rl in req["resourceLogs"]:
            for sl in rl["scopeLogs"]:
                for r in sl["logRecords"]:
                    a = _attrs(r.get("attributes"))
                    if a.get("event.name") == "api_request":
                        out.append({**a, "_t": int(r["timeUnixNano"])})
    return sorted(out, key=lambda a: a["_t"])


def statusline_samples() -> list[tuple[int, str, dict]]:
    """(arrival ns, text, parsed) of each captured status-line sample, in order.

    The capture keeps the samples, not when they arrived; each after the first says when its
    prompt cache expires (`prompt_cache.expires_at`: 5 minutes after the prompt's last request,
    to the second), so it arrived about then minus 299 s: after that request, before the next
    prompt's. The first came before any request, at the first export's time.
    """
    path = FIXTURES / "statusline" / "limits.statusline.jsonl"
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    first = int(fixture_lines(STATUSLINE_CAPTURE)[0]["t"]) + 1
    out = []
    for text in lines:
        doc = json.loads(text)
        expires = (doc.get("prompt_cache") or {}).get("expires_at")
        arrived = expires - 299 if expires else first
        out.append((arrived * 10**9, text, doc))
    return out


# --- other agents: truths from their captures, by the formulas ---------------------


def capture_requests(path: Path) -> list[tuple[str, bytes]]:
    """(signal, protobuf bytes) for each request of a gRPC capture file anywhere."""
    with open(path) as fh:
        docs = [json.loads(line) for line in fh if line.strip()]
    return [(d["kind"], base64.b64decode(d["pb"])) for d in docs]


def capture_records(path: Path) -> list[dict]:
    """Every log record of a gRPC capture: its attributes, plus `_resource`, `_scope`,
    `_trace` (hex) and `_body`, read from the captured JSON."""
    out = []
    with open(path) as fh:
        for line in fh:
            req = json.loads(line)["req"]
            for rl in req.get("resourceLogs", []):
                resource = _attrs(rl.get("resource", {}).get("attributes"))
                for sl in rl.get("scopeLogs", []):
                    for r in sl.get("logRecords", []):
                        a = _attrs(r.get("attributes"))
                        a["_resource"] = resource
                        a["_scope"] = sl.get("scope", {}).get("name")
                        a["_trace"] = base64.b64decode(r.get("traceId", "")).hex()
                        a["_body"] = r.get("body", {}).get("stringValue")
                        out.append(a)
    return out


def capture_spans(path: Path) -> list[dict]:
    """Every span of a gRPC capture: attributes plus `_name`, `_span_id`, `_parent`."""
    out = []
    with open(path) as fh:
        for line in fh:
            req = json.loads(line)["req"]
            for rs in req.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        a = _attrs(s.get("attributes"))
                        a["_name"] = s["name"]
                        a["_span_id"] = base64.b64decode(s["spanId"]).hex()
                        a["_parent"] = base64.b64decode(s.get("parentSpanId", "")).hex()
                        a["_trace"] = base64.b64decode(s["traceId"]).hex()
                        out.append(a)
    return out


def _n(value) -> int:
    return int(value) if value is not None else 0


def agent_sessions(agent: str, path: Path) -> dict[str, dict]:
    """Per session of another agent's capture, what claude-top should count, computed from the
    JSON by the issue's formulas: API requests = completed responses; input = input without
    cache reads; cache_read = the cached count; cache_creation = cache writes where reported;
    output = everything billed as output; tool calls and failures as the agent reported them.

    Gemini CLI: `gemini_cli.api_response` (input_token_count - cached_content_token_count,
    output_token_count + thoughts_token_count), `gemini_cli.tool_call` (function_name,
    success), session `session.id`. Codex: the `codex.sse_event` of kind `response.completed`
    that carries the counts (input_token_count - cached_token_count, cache_write_token_count,
    output_token_count), `codex.tool_result` (tool_name, success "true"/"false"), session
    `conversation.id`.
    """
    out: dict[str, dict] = {}

    def session(sid: str) -> dict:
        return out.setdefault(
            sid,
            {
                "agent": agent,
                "api_requests": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_read_tokens": 0,
                "cache_creation_tokens": 0,
                "tool_calls": 0,
                "tool_errors": 0,
                "models": set(),
                "tools": defaultdict(list),
                "prompts": 0,
            },
        )

    for r in capture_records(path):
        name = r.get("event.name")
        if agent == "gemini-cli":
            sid = r.get("session.id") or r["_resource"].get("session.id")
            if name == "gemini_cli.api_response":
                s = session(sid)
                s["api_requests"] += 1
                s["input_tokens"] += int(r["input_token_count"]) - int(
                    r["cached_content_token_count"]
                )
                s["cache_read_tokens"] += int(r["cached_content_token_count"])
                s["output_tokens"] += int(r["output_token_count"]) + int(r["thoughts_token_count"])
                s["models"].add(r["model"])
            elif name == "gemini_cli.tool_call":
                s = session(sid)
                s["tool_calls"] += 1
                s["tool_errors"] += r["success"] is False
                s["tools"][r["function_name"]].append(float(r["duration_ms"]))
            elif name == "gemini_cli.user_prompt":
                session(sid)["prompts"] += 1
        else:
            sid = r.get("conversation.id")
            if (
                name == "codex.sse_event"
                and r.get("event.kind") == "response.completed"
                and "input_token_count" in r
            ):
                s = session(sid)
                s["api_requests"] += 1
                s["input_tokens"] += int(r["input_token_count"]) - _n(r.get("cached_token_count"))
                s["cache_read_tokens"] += _n(r.get("cached_token_count"))
                s["cache_creation_tokens"] += _n(r.get("cache_write_token_count"))
                s["output_tokens"] += int(r["output_token_count"])
                s["models"].add(r["model"])
            elif name == "codex.tool_result":
                s = session(sid)
                s["tool_calls"] += 1
                s["tool_errors"] += r["success"] == "false"
                s["tools"][r["tool_name"]].append(float(r["duration_ms"]))
            elif name == "codex.user_prompt":
                session(sid)["prompts"] += 1
    return out


def stranger_logs(service: str, scope: str, n: int) -> bytes:
    """A logs export of `n` Claude-Code-like api_request events from a sender no rule knows
    (or one posing as a known agent): protobuf bytes."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    records = [
        {
            "timeUnixNano": str(1_796_452_400_000_000_000 + i),
            "attributes": [
                {"key": "event.name", "value": {"stringValue": "api_request"}},
                {"key": "session.id", "value": {"stringValue": f"{service}-s"}},
                {"key": "input_tokens", "value": {"stringValue": "10"}},
                {"key": "cost_usd", "value": {"stringValue": "0.5"}},
            ],
        }
        for i in range(n)
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    scope_logs = [{"scope": {"name": scope}, "logRecords": records}]
    doc = {"resourceLogs": [{"resource": resource, "scopeLogs": scope_logs}]}
    return json_format.ParseDict(doc, ExportLogsServiceRequest()).SerializeToString()


# --- transcripts ---------------------------------------------------------------------------

TRANSCRIPT_SETS = {
    "basic": ("transcripts/basic.grpc", "transcripts/basic/projects"),
    "errors": ("transcripts/errors.grpc", "transcripts/errors/projects"),
    "continued": ("transcripts/continued.grpc", "transcripts/continued/projects"),
    "limits": ("statusline/limits.grpc", "statusline/limits/projects"),
}
"""Each run's OTLP capture beside its `~/.claude/projects` tree (the fixtures' README)."""


def transcript_files(folder: str | Path) -> list[Path]:
    """Every transcript under a projects folder (relative to FIXTURES, or absolute)."""
    return sorted(Path(FIXTURES, folder).rglob("*.jsonl"))


class TranscriptTruth:
    """What transcript files hold, read as JSON here (never by claude-top code): each API
    request once (by requestId, however many lines its content blocks took), its tokens and
    subagent, each tool result, and each session's last cost-state total."""

    def __init__(self, folder: str | Path) -> None:
        self.requests: dict[str, dict] = {}
        self.tool_results: dict[str, bool] = {}
        self.cost_state: dict[str, float] = {}
        self.prompts: dict[str, str] = {}
        for path in transcript_files(folder):
            agent = path.stem.removeprefix("agent-") if path.parent.name == "subagents" else None
            for line in path.read_text().splitlines():
                d = json.loads(line)
                if d.get("type") == "assistant" and d["message"].get("model") != "<synthetic>":
                    u = d["message"]["usage"]
                    self.requests.setdefault(
                        d["requestId"],
                        {
                            "session": d["sessionId"],
                            "model": d["message"]["model"],
                            "input": u["input_tokens"],
                            "output": u["output_tokens"],
                            "cache_read": u["cache_read_input_tokens"],
                            "cache_creation": u["cache_creation_input_tokens"],
                            "agent_id": d.get("agentId") or agent,
                        },
                    )
                elif d.get("type") == "user" and isinstance(d["message"]["content"], list):
                    for b in d["message"]["content"]:
                        if b.get("type") == "tool_result":
                            self.tool_results[b["tool_use_id"]] = b.get("is_error") is True
                elif d.get("type") == "user" and not d.get("isSidechain"):
                    self.prompts[d["promptId"]] = d["message"]["content"]
                elif d.get("type") == "cost-state":
                    self.cost_state[d["sessionId"]] = d["totalCostUSD"]

    def tokens(self, kind: str, session: str | None = None) -> int:
        return sum(
            r[kind] for r in self.requests.values() if session is None or r["session"] == session
        )
