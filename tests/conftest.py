"""Shared test helpers: the real Claude Code fixtures and truths computed straight from them.

Truths read the captured requests' JSON (`req`), never claude-top code, so a decoding bug
cannot hide behind the same bug in the expected values.
"""

from __future__ import annotations

import base64
import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(
    os.environ.get(
        "CLAUDE_TOP_FIXTURES", REPO.parent / "shared" / "fixtures" / "claude-code-2.1.328"
    )
)
GRPC_FIXTURES = ("basic.grpc", "errors.grpc", "continued.grpc")
HTTP_FIXTURES = ("basic.http-json", "basic.http-protobuf")


def fixture_lines(name: str) -> list[dict]:
    """The export requests of one fixture file, in arrival order."""
    with open(FIXTURES / f"{name}.jsonl") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def grpc_requests(name: str) -> list[tuple[str, bytes]]:
    """(signal, protobuf bytes) for each request of a gRPC fixture."""
    return [(d["kind"], base64.b64decode(d["pb"])) for d in fixture_lines(name)]


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


class Truth:
    """Expected values computed from a gRPC fixture's JSON requests."""

    def __init__(self, *names: str) -> None:
        self.events: list[dict] = []
        self.spans: list[dict] = []
        self.metric_points: list[dict] = []
        for name in names:
            for d in fixture_lines(name):
                req = d["req"]
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
                            a["_span_id"] = base64.b64decode(s["spanId"]).hex()
                            a["_parent"] = base64.b64decode(s.get("parentSpanId", "")).hex()
                            a["_status"] = s.get("status", {}).get("code")
                            self.spans.append(a)
                for rm in req.get("resourceMetrics", []):
                    for sm in rm.get("scopeMetrics", []):
                        for m in sm.get("metrics", []):
                            for p in m.get("sum", {}).get("dataPoints", []):
                                a = _attrs(p.get("attributes"))
                                a["_name"] = m["name"]
                                a["_value"] = p.get("asDouble", p.get("asInt"))
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


@pytest.fixture
def fixture_store():
    """An in-memory store holding every gRPC fixture, written through the real decoder."""
    from claude_top.core.decode import decode_protobuf
    from claude_top.core.store import Store

    store = Store.open(":memory:")
    for name in GRPC_FIXTURES:
        for signal, body in grpc_requests(name):
            store.write([decode_protobuf(signal, body)])
    yield store
    store.close()
