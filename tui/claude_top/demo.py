"""Live synthetic Claude Code telemetry, sent over the real OTLP/gRPC path (`claude-top demo`).

Every request is shaped like Claude Code 2.1.328's own (see the captured fixtures): one resource
per process (`service.name` claude-code), the scopes `com.anthropic.claude_code.tracing` /
`.events` / `com.anthropic.claude_code`, the span tree interaction -> llm_request / tool ->
blocked_on_user / execution, events with Claude Code's string-typed numbers, and DELTA metric
sums exported every 10 s. Several sessions run at once on three models; tools have lognormal
latencies (Bash with a slow tail), some Bash calls fail, some requests are retried after an
overloaded error, a Task tool runs a subagent, and one session is continued by a second process.

Telemetry runs on a virtual clock (`speed` times real time). Each session draws from its own
RNG seeded by `seed`, so what is generated does not depend on how the sender is paced; the
`Ledger` counts only what the receiver acknowledged, so a test can compare the store with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

VERSION = "2.1.328"
EVENTS_SCOPE = InstrumentationScope(name="com.anthropic.claude_code.events", version=VERSION)
TRACING_SCOPE = InstrumentationScope(name="com.anthropic.claude_code.tracing", version="1.0.0")
METRICS_SCOPE = InstrumentationScope(name="com.anthropic.claude_code", version=VERSION)
SERVICES = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
_CODECS = {
    "traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}
NS = 1_000_000_000
MS = 1_000_000
METRIC_INTERVAL_NS = 10 * NS
SPAN_FLAGS = 257
LOG_FLAGS = 1
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


@dataclass(frozen=True)
class Price:
    """USD per million tokens, held as nano-dollars per token so costs add up exactly."""

    input: int
    output: int
    cache_read: int
    cache_creation: int

    def cost_nusd(self, inp: int, out: int, read: int, creation: int) -> int:
        """The cost of one request in nano-dollars (1e-9 USD)."""
        return (
            inp * self.input
            + out * self.output
            + read * self.cache_read
            + creation * self.cache_creation
        )


PRICES = {
    "claude-opus-5-5": Price(5000, 25000, 500, 6250),
    "claude-sonnet-4-5": Price(3000, 15000, 300, 3750),
    "claude-haiku-4-5": Price(1000, 5000, 100, 1250),
}
# time to first token (median ms) and output tokens per second
_SPEED = {
    "claude-opus-5-5": (1300, 45),
    "claude-sonnet-4-5": (850, 70),
    "claude-haiku-4-5": (420, 160),
}


@dataclass(frozen=True)
class ToolSpec:
    """A tool's execution latency (lognormal: median ms, sigma) and how often it fails."""

    median_ms: float
    sigma: float
    fail: float = 0.0
    asks: bool = False


TOOLS = {
    "Read": ToolSpec(12, 0.7),
    "Glob": ToolSpec(20, 0.6),
    "Grep": ToolSpec(45, 0.8),
    "Edit": ToolSpec(25, 0.5, fail=0.04, asks=True),
    "Write": ToolSpec(18, 0.5, asks=True),
    "NotebookEdit": ToolSpec(35, 0.5, asks=True),
    "TodoWrite": ToolSpec(4, 0.4),
    "BashOutput": ToolSpec(12, 0.5),
    "WebFetch": ToolSpec(1400, 0.7, fail=0.08, asks=True),
    "WebSearch": ToolSpec(2800, 0.5),
    "Bash": ToolSpec(0, 0, asks=True),  # per command, below
    "Task": ToolSpec(0, 0),  # a subagent: as long as its own requests and tools
}
_TOOL_WEIGHTS = {
    "Read": 25,
    "Bash": 20,
    "Edit": 14,
    "Grep": 10,
    "Glob": 8,
    "Write": 5,
    "TodoWrite": 5,
    "WebFetch": 3,
    "BashOutput": 2,
    "WebSearch": 2,
    "NotebookEdit": 1,
}
_SUBAGENT_TOOLS = {"Grep": 4, "Read": 5, "Glob": 3, "WebSearch": 1}


@dataclass(frozen=True)
class BashCommand:
    command: str
    description: str
    command_class: str
    median_ms: float
    sigma: float
    fail: float


BASH = (
    BashCommand("git status --short", "show changes", "other", 40, 0.4, 0.0),
    BashCommand("git diff --stat", "diff summary", "other", 60, 0.5, 0.0),
    BashCommand("ls build/", "list build output", "file_search", 15, 0.5, 0.5),
    BashCommand("rg -n TODO src", "find TODOs", "file_search", 120, 0.6, 0.05),
    BashCommand("echo $VIRTUAL_ENV", "show venv", "shell_builtin", 8, 0.3, 0.0),
    BashCommand("pytest -q tests/unit", "run unit tests", "other", 6000, 0.8, 0.25),
    BashCommand("make lint", "lint", "other", 4000, 0.6, 0.15),
    BashCommand("npm run build", "build the web app", "other", 12000, 0.6, 0.1),
    BashCommand("npm test -- --watch=false", "run web tests", "other", 20000, 0.7, 0.2),
    BashCommand("docker compose up -d db", "start the database", "other", 9000, 1.0, 0.1),
)


@dataclass(frozen=True)
class Profile:
    """Who runs a session: model, terminal, machine, and what they ask."""

    model: str
    terminal: str
    os: tuple[str, str, str]  # os.type, os.version, host.arch
    project: str
    prompts_logged: bool = True
    custom: tuple[tuple[str, str], ...] = ()


PROFILES = (
    Profile("claude-sonnet-4-5", "vscode", ("darwin", "24.6.0", "arm64"), "/Users/ana/src/shop"),
    Profile("claude-opus-5-5", "iTerm.app", ("darwin", "24.6.0", "arm64"), "/Users/ana/src/api"),
    Profile("claude-haiku-4-5", "tmux", ("linux", "6.8.0-48-generic", "amd64"), "/home/bo/infra"),
    Profile(
        "claude-sonnet-4-5",
        "xterm-256color",
        ("linux", "6.8.0-48-generic", "amd64"),
        "/home/bo/claude-top",
        prompts_logged=False,
        custom=(("team", "platform"), ("stage", "dev")),
    ),
)
PROMPTS = (
    "fix the flaky test in test_store.py",
    "add a --json flag to the export command",
    "why is the checkout page slow? profile it",
    "rename UserService to AccountService everywhere",
    "write a migration for the orders.status column",
    "update the README with the new install steps",
    "review this diff for race conditions",
    "make the CI pipeline cache node_modules",
    "add retries with jitter to the HTTP client",
    "summarise what changed since yesterday",
    "bump the dependencies and fix what breaks",
    "explain how the indexer batches commits",
)
RESPONSES = (
    "Done: the test no longer depends on wall-clock time.",
    "Added the flag and a test; all tests pass.",
    "The slow part is an N+1 query in the cart loader; fixed with one join.",
    "Renamed in 14 files; the build is green.",
    "Here is a summary of the changes.",
)
FILES = (
    "src/app/server.py",
    "src/app/store.py",
    "src/app/http_client.py",
    "tests/test_store.py",
    "tests/test_server.py",
    "README.md",
    "pyproject.toml",
    "web/src/Checkout.tsx",
    "web/package.json",
    "migrations/0042_orders_status.sql",
    "notebooks/latency.ipynb",
)
GLOBS = ("**/*.py", "src/**/*.ts*", "tests/**/test_*.py", "*.md")
GREPS = ("def export_", "TODO", "class .*Service", "retry", "status_code")
URLS = ("https://docs.python.org/3/library/asyncio.html", "https://duckdb.org/docs/sql/copy")


# --- attributes ----------------------------------------------------------------------------


def _value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[_value(x) for x in v]))
    return AnyValue(string_value=str(v))


def attributes(pairs: list[tuple[str, Any]]) -> list[KeyValue]:
    """OTLP key-values; str values stay strings (Claude Code's "42" / "true" included)."""
    return [KeyValue(key=k, value=_value(v)) for k, v in pairs]


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // NS)) + f".{ns % NS // MS:03d}Z"


def _compact(d: dict) -> str:
    return json.dumps(d, separators=(",", ":"))


# --- the ledger ----------------------------------------------------------------------------


@dataclass
class SessionTally:
    """What was acknowledged for one session id."""

    prompts: int = 0
    api_requests: int = 0
    cost_nusd: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    events: int = 0
    spans: int = 0
    metric_cost_usd: float = 0.0
    models: set[str] = field(default_factory=set)
    processes: set[int] = field(default_factory=set)

    @property
    def cost_usd(self) -> float:
        return self.cost_nusd / NS


@dataclass
class ModelTally:
    api_requests: int = 0
    cost_nusd: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0

    @property
    def cost_usd(self) -> float:
        return self.cost_nusd / NS


@dataclass
class ToolTally:
    calls: int = 0
    errors: int = 0
    durations_ms: list[int] = field(default_factory=list)


@dataclass
class TurnTally:
    session_id: str
    prompt_id: str
    trace_id: str
    api_requests: int = 0
    cost_nusd: int = 0
    tools: list[str] = field(default_factory=list)
    tool_errors: int = 0
    spans: int = 0
    has_interaction: bool = False


@dataclass
class SubagentTally:
    """A Task tool span and the subagent spans acknowledged under it."""

    session_id: str
    prompt_id: str
    trace_id: str
    tool_span_id: str
    agent_id: str
    llm_requests: int = 0
    tools: int = 0


class Ledger:
    """Totals of everything the receiver acknowledged, by session, model, tool and turn."""

    def __init__(self) -> None:
        self.sessions: dict[str, SessionTally] = {}
        self.models: dict[str, ModelTally] = {}
        self.tools: dict[str, ToolTally] = {}
        self.turns: dict[str, TurnTally] = {}
        self.subagents: dict[str, SubagentTally] = {}
        self.events: Counter[str] = Counter()
        self.spans: Counter[str] = Counter()
        self.metric_points: Counter[str] = Counter()
        self.retried_requests = 0
        self.exports = 0
        self.failed_exports = 0
        self.lost_records = 0

    def session(self, sid: str) -> SessionTally:
        return self.sessions.setdefault(sid, SessionTally())

    def _turn(self, n: dict) -> TurnTally:
        return self.turns.setdefault(
            n["prompt_id"], TurnTally(n["session_id"], n["prompt_id"], n["trace_id"])
        )

    def apply(self, n: dict) -> None:
        """Count one acknowledged record (its note, written when it was generated)."""
        s = self.session(n["session_id"])
        s.processes.add(n["process"])
        kind, name = n["kind"], n["name"]
        if kind == "metric":
            self.metric_points[name] += 1
            if name == "claude_code.cost.usage":
                s.metric_cost_usd += n["value"]
            return
        if kind == "span":
            s.spans += 1
            self.spans[name] += 1
            if "prompt_id" in n:
                t = self._turn(n)
                t.spans += 1
                t.has_interaction |= name == "claude_code.interaction"
            if n.get("retried"):
                self.retried_requests += 1
            if "task_agent" in n:
                self.subagents.setdefault(
                    n["span_id"],
                    SubagentTally(
                        n["session_id"],
                        n["prompt_id"],
                        n["trace_id"],
                        n["span_id"],
                        n["task_agent"],
                    ),
                )
            parent_task = n.get("under_task")
            if parent_task is not None and name in ("claude_code.llm_request", "claude_code.tool"):
                sub = self.subagents.setdefault(
                    parent_task,
                    SubagentTally(
                        n["session_id"], n["prompt_id"], n["trace_id"], parent_task, n["agent_id"]
                    ),
                )
                if name == "claude_code.llm_request":
                    sub.llm_requests += 1
                else:
                    sub.tools += 1
            return
        s.events += 1
        self.events[name] += 1
        if name == "claude_code.user_prompt":
            s.prompts += 1
            self._turn(n)
        elif name == "claude_code.api_request":
            model, cost = n["model"], n["cost_nusd"]
            m = self.models.setdefault(model, ModelTally())
            inp, out, read, creation = n["tokens"]
            for tally in (s, m):
                tally.api_requests += 1
                tally.cost_nusd += cost
                tally.input_tokens += inp
                tally.output_tokens += out
                tally.cache_read_tokens += read
                tally.cache_creation_tokens += creation
            s.models.add(model)
            t = self._turn(n)
            t.api_requests += 1
            t.cost_nusd += cost
        elif name == "claude_code.tool_result":
            tool = self.tools.setdefault(n["tool"], ToolTally())
            tool.calls += 1
            tool.durations_ms.append(n["duration_ms"])
            s.tool_calls += 1
            t = self._turn(n)
            t.tools.append(n["tool"])
            if not n["success"]:
                tool.errors += 1
                s.tool_errors += 1
                t.tool_errors += 1

    @property
    def cost_usd(self) -> float:
        return sum(s.cost_nusd for s in self.sessions.values()) / NS

    def summary(self) -> str:
        """A plain-text table of what was acknowledged."""
        lines = [
            f"sent and acknowledged: {len(self.sessions)} sessions, "
            f"{sum(s.prompts for s in self.sessions.values())} prompts, "
            f"{sum(self.events.values())} events, {sum(self.spans.values())} spans, "
            f"{sum(self.metric_points.values())} metric points in {self.exports} exports"
            + (
                f" ({self.failed_exports} failed, {self.lost_records} records lost)"
                if self.failed_exports
                else ""
            ),
            f"{'session':<38} {'procs':>5} {'prompts':>7} {'api':>4} {'cost':>9} "
            f"{'tools':>5} {'err':>4}  models",
        ]
        for sid, s in sorted(self.sessions.items(), key=lambda kv: -kv[1].cost_nusd):
            lines.append(
                f"{sid:<38} {len(s.processes):>5} {s.prompts:>7} {s.api_requests:>4} "
                f"${s.cost_usd:>8.4f} {s.tool_calls:>5} {s.tool_errors:>4}  "
                + ", ".join(sorted(s.models))
            )
        lines.append(f"{'model':<20} {'requests':>8} {'cost':>9}")
        for name, m in sorted(self.models.items(), key=lambda kv: -kv[1].cost_nusd):
            lines.append(f"{name:<20} {m.api_requests:>8} ${m.cost_usd:>8.4f}")
        lines.append(f"{'tool':<14} {'calls':>5} {'errors':>6} {'p50 ms':>8} {'max ms':>8}")
        for name, t in sorted(self.tools.items(), key=lambda kv: -sum(kv[1].durations_ms)):
            d = sorted(t.durations_ms)
            lines.append(f"{name:<14} {t.calls:>5} {t.errors:>6} {d[len(d) // 2]:>8} {d[-1]:>8}")
        lines.append(
            f"total ${self.cost_usd:.4f}; {self.retried_requests} retried requests; "
            f"{len(self.subagents)} subagents"
        )
        return "\n".join(lines)


# --- generation ----------------------------------------------------------------------------


@dataclass
class _Out:
    """A log record or span waiting for its time, and what the ledger learns when it is acked."""

    t_ns: int
    signal: str
    pb: Any
    note: dict


class _Process:
    """One Claude Code process: a resource, an event.sequence, metric series, pending records."""

    def __init__(self, session: _Session, number: int, start_ns: int) -> None:
        self.session = session
        self.number = number
        self.start_ns = start_ns
        p = session.profile
        self.resource = Resource(
            attributes=attributes(
                [
                    ("host.arch", p.os[2]),
                    ("os.type", p.os[0]),
                    ("os.version", p.os[1]),
                    ("service.name", "claude-code"),
                    ("service.version", VERSION),
                    *p.custom,
                ]
            )
        )
        self.seq = 0
        self.interactions = 0
        self.pending: list[_Out] = []
        self.deltas: list[tuple[int, str, tuple, float, str]] = []
        self.last_export_ns = start_ns
        self.next_export_ns = start_ns + METRIC_INTERVAL_NS
        self.exit_ns: int | None = None
        self.finished = False

    def standard(self, sid: str | None = None) -> list[tuple[str, Any]]:
        s = self.session
        return [
            ("user.id", s.user_id),
            ("session.id", sid or s.session_id),
            ("anthropic.provider", "firstParty"),
            ("anthropic.custom_base_url", False),
            ("terminal.type", s.profile.terminal),
            *s.profile.custom,
        ]

    def note(self, kind: str, name: str, sid: str | None = None, **kw: Any) -> dict:
        return {
            "kind": kind,
            "name": name,
            "session_id": sid or self.session.session_id,
            "process": self.number,
            **kw,
        }

    def add_events(self, events: list[tuple], sid: str | None = None) -> None:
        """(t, name, attrs, trace_id, span_id, note) in time order -> log records with sequence."""
        for t_ns, name, attrs, trace_id, span_id, note in sorted(events, key=lambda e: e[0]):
            t = t_ns // MS * MS  # Claude Code stamps events to the millisecond
            rec = LogRecord(
                time_unix_nano=t,
                observed_time_unix_nano=t,
                body=AnyValue(string_value=f"claude_code.{name}"),
                attributes=attributes(
                    [
                        *self.standard(sid),
                        ("event.name", name),
                        ("event.timestamp", _iso(t)),
                        ("event.sequence", self.seq),
                        *attrs,
                    ]
                ),
            )
            if trace_id:
                rec.trace_id, rec.span_id, rec.flags = trace_id, span_id, LOG_FLAGS
            self.seq += 1
            self.pending.append(_Out(t, "logs", rec, note))

    def add_span(self, span: Span, note: dict) -> None:
        self.pending.append(_Out(span.end_time_unix_nano, "traces", span, note))

    def add_delta(self, t: int, metric: str, attrs: tuple, value: float, sid: str | None = None):
        self.deltas.append((t, metric, attrs, value, sid or self.session.session_id))


class _Turn:
    """Builds one interaction's spans, events and metric deltas on a process."""

    def __init__(self, session: _Session, proc: _Process, t0: int) -> None:
        self.s = session
        self.p = proc
        self.rng = session.rng
        self.t = t0
        self.trace_id = self.rng.randbytes(16)
        self.root_id = self.span_id()
        self.prompt_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.events: list[tuple] = []
        self.spans: list[tuple[Span, dict]] = []

    # helpers
    def span_id(self) -> bytes:
        return self.rng.randbytes(8)

    def ms(self, lo: float, hi: float) -> int:
        return int(self.rng.uniform(lo, hi) * MS)

    def lognormal_ms(self, median: float, sigma: float, cap: float = 600_000) -> int:
        return max(1, min(int(self.rng.lognormvariate(math.log(median), sigma)), int(cap)))

    def event(self, t: int, name: str, attrs: list, span_id: bytes | None = None, **note) -> None:
        n = self.p.note(
            "event",
            f"claude_code.{name}",
            prompt_id=self.prompt_id,
            trace_id=self.trace_id.hex(),
            **note,
        )
        attrs = [("prompt.id", self.prompt_id), *attrs]
        self.events.append((t, name, attrs, self.trace_id, span_id or self.root_id, n))

    def span(
        self,
        name: str,
        span_id: bytes,
        parent: bytes | None,
        start: int,
        end: int,
        attrs: list,
        *,
        error: str | None = None,
        span_events: list[Span.Event] | None = None,
        **note: Any,
    ) -> None:
        s = self.s
        pb = Span(
            trace_id=self.trace_id,
            span_id=span_id,
            parent_span_id=parent or b"",
            name=name,
            kind=Span.SpanKind.SPAN_KIND_INTERNAL,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
            flags=SPAN_FLAGS,
            events=span_events or [],
            attributes=attributes(
                [
                    *self.p.standard(),
                    ("gen_ai.provider.name", "anthropic"),
                    ("span.type", name.removeprefix("claude_code.")),
                    ("gen_ai.conversation.id", s.session_id),
                    *attrs,
                ]
            ),
        )
        if error is not None:
            pb.status.CopyFrom(Status(code=Status.StatusCode.STATUS_CODE_ERROR, message=error))
        n = self.p.note(
            "span",
            name,
            prompt_id=self.prompt_id,
            trace_id=self.trace_id.hex(),
            span_id=span_id.hex(),
            **note,
        )
        self.spans.append((pb, n))

    # the turn
    def run(self, features: set[str]) -> int:
        """Generate the turn; returns its end time."""
        s, rng = self.s, self.rng
        t0 = self.t
        prompt = rng.choice(PROMPTS)
        shown = prompt if s.profile.prompts_logged else "<REDACTED>"
        prompt_attrs = [
            ("prompt_length", str(len(prompt))),
            ("prompt", shown),
        ]
        if s.profile.prompts_logged:
            prompt_attrs.append(("prompt_text", prompt))
        prompt_attrs.append(("message.uuid", str(uuid.UUID(int=rng.getrandbits(128), version=4))))
        self.event(t0, "user_prompt", prompt_attrs)
        self.t += self.ms(20, 120)
        rounds = rng.choices((0, 1, 2, 3, 4, 5), (15, 25, 25, 20, 10, 5))[0]
        if features & {"bash_failure", "subagent"}:
            rounds = max(rounds, 1)
        planned: list[list[str]] = []
        for _ in range(rounds):
            k = rng.choices((1, 2, 3), (60, 30, 10))[0]
            planned.append(rng.choices(list(_TOOL_WEIGHTS), list(_TOOL_WEIGHTS.values()), k=k))
        if (
            rounds
            and s.profile.model != "claude-haiku-4-5"
            and ("subagent" in features or rng.random() < 0.08)
        ):
            planned[0].insert(0, "Task")
        if "bash_failure" in features:
            planned[0].append("Bash!")
        for i in range(rounds + 1):
            last = i == rounds
            retry = ("retry" in features and i == 0) or rng.random() < 0.04
            self.llm_request(self.root_id, s.profile.model, last, retry)
            if last:
                break
            for tool in planned[i]:
                self.tool(tool, self.root_id)
        end = self.t + self.ms(1, 5)
        response = rng.choice(RESPONSES)
        self.event(
            self.t,
            "assistant_response",
            [
                ("response_length", len(response)),
                ("response", response),
                ("message.uuid", str(uuid.UUID(int=rng.getrandbits(128), version=4))),
                ("model", s.profile.model),
                ("query_source", "repl_main_thread"),
            ],
        )
        self.p.interactions += 1
        dur_ms = (end - t0) // MS
        self.span(
            "claude_code.interaction",
            self.root_id,
            None,
            t0,
            end,
            [
                ("gen_ai.operation.name", "invoke_agent"),
                ("user_prompt", shown),
                ("user_prompt_length", len(prompt)),
                ("interaction.sequence", self.p.interactions),
                ("parent.source", "none"),
                ("queued_sends", 0),
                ("interaction.duration_ms", dur_ms),
            ],
        )
        self.p.add_delta(end, "claude_code.active_time.total", (("type", "cli"),), dur_ms / 1000)
        self.flush()
        return end

    def flush(self) -> None:
        self.p.add_events(self.events)
        for pb, n in self.spans:
            self.p.add_span(pb, n)

    def llm_request(
        self,
        parent: bytes,
        model: str,
        final: bool,
        retry: bool,
        agent: tuple[str, str] | None = None,
        under_task: str | None = None,
    ) -> int:
        """One API call: the llm_request span, its api_request event, cost and token deltas.

        Returns the tokens it used."""
        s, rng = self.s, self.rng
        start = self.t
        span_events = [
            Span.Event(
                time_unix_nano=start + self.ms(0.1, 2),
                name="gen_ai.request.attempt",
                attributes=attributes([("attempt", 1)]),
            )
        ]
        if retry:  # an overloaded (529) reply, a backoff, then attempt 2
            self.t += self.ms(300, 1500) + self.ms(500, 2000)
            span_events.append(
                Span.Event(
                    time_unix_nano=self.t,
                    name="gen_ai.request.attempt",
                    attributes=attributes([("attempt", 2)]),
                )
            )
        ttft_median, tps = _SPEED[model]
        ttft = self.lognormal_ms(ttft_median, 0.4, 20_000)
        out_tokens = int(rng.lognormvariate(math.log(350 if final else 120), 0.6)) + 20
        call_ms = ttft + int(out_tokens * 1000 / tps)
        self.t += call_ms * MS
        end = self.t
        inp = int(rng.lognormvariate(math.log(40), 1.2)) + 3
        creation = int(rng.lognormvariate(math.log(1200), 0.8))
        read = s.context
        s.context += creation + inp + out_tokens
        if s.context > 160_000:
            s.context = 18_000 + rng.randrange(4000)  # compacted
        cost = PRICES[model].cost_nusd(inp, out_tokens, read, creation)
        cost_usd = cost / NS
        effort = [("effort", "medium")] if model == "claude-opus-5-5" else []
        agent_attrs = (
            [] if agent is None else [("agent_id", agent[0]), ("parent_agent_id", agent[1])]
        )
        source = "repl_main_thread" if agent is None else "agent:builtin:general-purpose"
        stop = "end_turn" if final else "tool_use"
        self.span(
            "claude_code.llm_request",
            self.span_id(),
            parent,
            start,
            end,
            [
                ("model", model),
                ("gen_ai.system", "anthropic"),
                ("gen_ai.request.model", model),
                ("llm_request.context", "interaction" if agent is None else "agent"),
                ("speed", "normal"),
                ("query_source_safe", source),
                ("duration_ms", (end - start) // MS),
                ("input_tokens", inp),
                ("output_tokens", out_tokens),
                ("cache_read_tokens", read),
                ("cache_creation_tokens", creation),
                ("success", True),
                ("attempt", 2 if retry else 1),
                ("ttft_ms", ttft),
                ("first_content_ms", ttft + rng.randrange(3)),
                *effort,
                *agent_attrs,
                ("stop_reason", stop),
                ("gen_ai.response.finish_reasons", [stop]),
            ],
            span_events=span_events,
            retried=retry,
            under_task=under_task,
            agent_id=None if agent is None else agent[0],
        )
        self.event(
            end,
            "api_request",
            [
                ("model", model),
                ("input_tokens", inp),
                ("output_tokens", out_tokens),
                ("cache_read_tokens", read),
                ("cache_creation_tokens", creation),
                ("cache_creation_5m_tokens", 0),
                ("cache_creation_1h_tokens", 0),
                ("cost_usd", cost_usd),
                ("cost_usd_micros", round(cost / 1000)),
                ("duration_ms", call_ms),
                ("ttft_ms", ttft),
                ("speed", "normal"),
                ("query_source", source),
                *effort,
            ],
            model=model,
            cost_nusd=cost,
            tokens=(inp, out_tokens, read, creation),
        )
        series = (("model", model), ("query_source", "main" if agent is None else "subagent"))
        series += tuple(effort)
        self.p.add_delta(end, "claude_code.cost.usage", series, cost_usd)
        for kind, n in (
            ("input", inp),
            ("output", out_tokens),
            ("cacheRead", read),
            ("cacheCreation", creation),
        ):
            self.p.add_delta(end, "claude_code.token.usage", (*series, ("type", kind)), float(n))
        self.t += self.ms(2, 30)
        return inp + out_tokens + read + creation

    def tool(
        self,
        name: str,
        parent: bytes,
        agent: tuple[str, str] | None = None,
        under_task: str | None = None,
    ) -> None:
        """A tool call: tool span, blocked_on_user and execution spans, decision/result events."""
        rng = self.rng
        force_fail = name.endswith("!")
        name = name.rstrip("!")
        spec = TOOLS[name]
        tool_use_id = "toolu_" + rng.randbytes(10).hex()
        tool_span, blocked_span, exec_span = self.span_id(), self.span_id(), self.span_id()
        start = self.t
        # permission: the config allows most; sometimes a human is asked
        if spec.asks and agent is None and rng.random() < 0.25:
            source, wait = "user_temporary", self.lognormal_ms(2500, 0.7, 120_000)
        else:
            source, wait = "config", self.lognormal_ms(8, 0.6, 200)
        blocked_end = start + wait * MS
        span_attrs: list[tuple[str, Any]] = []
        params: dict | None = None
        detail, tool_input, error_type, error, fail_p = self.tool_input(name)
        if name == "Bash":
            cmd: BashCommand = detail
            span_attrs = [
                ("full_command", cmd.command),
                ("bash_command_class", cmd.command_class),
                ("bash_argv0", cmd.command.split()[0]),
            ]
            params = {
                "bash_command": cmd.command.split()[0],
                "full_command": cmd.command,
                "description": cmd.description,
            }
            exec_ms = self.lognormal_ms(cmd.median_ms, cmd.sigma)
        elif name == "Task":
            exec_ms = 0
        else:
            if isinstance(detail, str):
                span_attrs = [("file_path", detail)]
            exec_ms = self.lognormal_ms(spec.median_ms, spec.sigma)
        failed = force_fail or rng.random() < fail_p
        tag = [] if agent is None else [("agent_id", agent[0]), ("parent_agent_id", agent[1])]
        decision = [
            ("decision", "accept"),
            ("source", source),
            ("tool_name", name),
            ("tool_use_id", tool_use_id),
            ("tool_source", "builtin"),
        ]
        if params is not None:
            decision.append(("tool_parameters", _compact(params)))
        decision.append(("permission_mode", "default"))
        self.event(blocked_end, "tool_decision", decision, blocked_span)
        if name in ("Edit", "Write", "NotebookEdit"):
            self.p.add_delta(
                blocked_end,
                "claude_code.code_edit_tool.decision",
                (
                    ("decision", "accept"),
                    ("source", source),
                    ("tool_name", name),
                    ("language", _language(str(detail))),
                ),
                1.0,
            )
        self.span(
            "claude_code.tool.blocked_on_user",
            blocked_span,
            tool_span,
            start,
            blocked_end,
            [("duration_ms", wait), ("decision", "accept"), ("source", source), *tag],
            under_task=under_task,
            agent_id=None if agent is None else agent[0],
        )
        exec_start = blocked_end + self.ms(0.2, 2)
        agent_id = ""
        if name == "Task":
            self.t = exec_start
            agent_id = "a" + rng.randbytes(8).hex()
            self.subagent(tool_span, agent_id)
            exec_end = self.t
            exec_ms = (exec_end - exec_start) // MS
        else:
            exec_end = exec_start + exec_ms * MS
        exec_attrs: list[tuple[str, Any]] = [
            ("tool_use_id", tool_use_id),
            ("gen_ai.tool.call.id", tool_use_id),
            ("duration_ms", exec_ms),
            ("success", not failed),
        ]
        if failed:
            exec_attrs += [
                ("error.type", "tool_error"),
                ("error", error),
                ("error_class", error_type),
            ]
        self.span(
            "claude_code.tool.execution",
            exec_span,
            tool_span,
            exec_start,
            exec_end,
            [*exec_attrs, *tag],
            error=error if failed else None,
            under_task=under_task,
            agent_id=None if agent is None else agent[0],
        )
        result = [
            ("tool_name", name),
            ("tool_use_id", tool_use_id),
            ("success", "false" if failed else "true"),
            ("duration_ms", str(exec_ms)),
        ]
        if failed:
            result += [("error_type", error_type), ("error", error)]
        if params is not None:
            result.append(("tool_parameters", _compact(params)))
        result += [
            ("tool_input", tool_input),
            ("tool_input_size_bytes", str(len(tool_input.encode()))),
        ]
        if not failed:
            result.append(("tool_result_size_bytes", str(self.lognormal_ms(900, 1.2, 400_000))))
        self.event(
            exec_end,
            "tool_result",
            result,
            tool=name,
            success=not failed,
            duration_ms=exec_ms,
        )
        if name in ("Edit", "Write") and not failed:
            model = self.s.profile.model
            added = rng.randrange(1, 60)
            removed = 0 if name == "Write" else rng.randrange(0, 30)
            for kind, n in (("added", added), ("removed", removed)):
                self.p.add_delta(
                    exec_end,
                    "claude_code.lines_of_code.count",
                    (("type", kind), ("model", model)),
                    float(n),
                )
        end = exec_end + self.ms(1, 8)
        self.span(
            "claude_code.tool",
            tool_span,
            parent,
            start,
            end,
            [
                ("tool_name", name),
                ("tool_name_safe", name),
                ("gen_ai.operation.name", "execute_tool"),
                ("gen_ai.tool.name", name),
                *span_attrs,
                ("tool_use_id", tool_use_id),
                ("gen_ai.tool.call.id", tool_use_id),
                ("duration_ms", (end - start) // MS),
                *tag,
            ],
            under_task=under_task,
            agent_id=None if agent is None else agent[0],
            **({"task_agent": agent_id} if name == "Task" else {}),
        )
        self.t = end + self.ms(1, 15)

    def tool_input(self, name: str) -> tuple[Any, str, str, str, float]:
        """(detail, tool_input JSON, error_type, error, failure probability) for one call."""
        rng = self.rng
        root = self.s.profile.project
        spec = TOOLS[name]
        if name == "Bash":
            cmd = rng.choice(BASH)
            ti = _compact({"command": cmd.command, "description": cmd.description})
            return cmd, ti, "ShellError", "Shell command failed", cmd.fail
        if name in ("Read", "Edit", "Write", "NotebookEdit"):
            if name == "NotebookEdit":
                path = f"{root}/notebooks/latency.ipynb"
                ti = {"notebook_path": path, "new_source": "df.describe()"}
            else:
                path = f"{root}/{rng.choice(FILES)}"
                ti = {"file_path": path}
                if name == "Edit":
                    ti |= {"old_string": "timeout=5", "new_string": "timeout=30"}
                elif name == "Write":
                    ti |= {"content": "# notes\n"}
            error = "String to replace not found in file." if name == "Edit" else "Tool failed"
            return path, _compact(ti), "ToolError", error, spec.fail
        if name == "Glob":
            return None, _compact({"pattern": rng.choice(GLOBS)}), "ToolError", "", spec.fail
        if name == "Grep":
            return None, _compact({"pattern": rng.choice(GREPS)}), "ToolError", "", spec.fail
        if name == "WebFetch":
            ti = _compact({"url": rng.choice(URLS), "prompt": "summarise the relevant section"})
            return None, ti, "ToolError", "Request failed with status code 503", spec.fail
        if name == "WebSearch":
            return None, _compact({"query": "duckdb group commit"}), "ToolError", "", spec.fail
        if name == "TodoWrite":
            ti = _compact({"todos": [{"content": "write tests", "status": "in_progress"}]})
            return None, ti, "ToolError", "", spec.fail
        if name == "BashOutput":
            return None, _compact({"bash_id": "bash_1"}), "ToolError", "", spec.fail
        ti = _compact(
            {
                "description": "search the codebase",
                "prompt": "find every caller of export_snapshot and summarise",
                "subagent_type": "general-purpose",
            }
        )
        return None, ti, "ToolError", "Agent failed", spec.fail

    def subagent(self, task_span: bytes, agent_id: str) -> None:
        """A Task tool's subagent: its own llm_request and tool spans under the Task tool span."""
        rng = self.rng
        model = "claude-haiku-4-5" if rng.random() < 0.6 else "claude-sonnet-4-5"
        agent = (agent_id, self.s.session_id)
        start = self.t
        uses = 0
        tokens = 0
        saved_context = self.s.context
        self.s.context = 9_000 + rng.randrange(3000)
        n_rounds = rng.randint(2, 4)
        for i in range(n_rounds + 1):
            last = i == n_rounds
            tokens += self.llm_request(task_span, model, last, False, agent, task_span.hex())
            if last:
                break
            k = rng.choices((1, 2), (70, 30))[0]
            for tool in rng.choices(list(_SUBAGENT_TOOLS), list(_SUBAGENT_TOOLS.values()), k=k):
                self.tool(tool, task_span, agent, task_span.hex())
                uses += 1
        self.s.context = saved_context
        self.event(
            self.t,
            "subagent_completed",
            [
                ("agent_type", "general-purpose"),
                ("agent_id", agent_id),
                ("model", model),
                ("total_tokens", tokens),
                ("total_tool_uses", uses),
                ("duration_ms", (self.t - start) // MS),
            ],
        )


def _language(path: str) -> str:
    ext = path.rsplit(".", 1)[-1] if "." in path else ""
    return {
        "py": "Python",
        "tsx": "TypeScript",
        "ts": "TypeScript",
        "md": "Markdown",
        "sql": "SQL",
        "json": "JSON",
        "toml": "TOML",
        "ipynb": "Jupyter Notebook",
    }.get(ext, "Plain text")


class _Session:
    """One Claude Code session: its profile, RNG, processes and turn schedule."""

    def __init__(self, index: int, seed: int, user_id: str, start_ns: int) -> None:
        self.index = index
        self.rng = random.Random(f"claude-top-demo:{seed}:{index}")
        self.profile = PROFILES[index % len(PROFILES)]
        self.user_id = user_id
        self.session_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.context = 14_000 + self.rng.randrange(6000)
        self.continues = index % len(PROFILES) == 2
        self.turns_left = 2 if self.continues else self.rng.randint(5, 14)
        self.turns_done = 0
        self.processes: list[_Process] = []
        self.process = self.start_process(start_ns, "fresh")
        self.next_turn_ns = start_ns + self.rng.randint(800, 4000) * MS
        self.ended_ns: int | None = None
        self.replaced = False

    def start_process(self, t: int, start_type: str) -> _Process:
        """A new process: startup events, session.count. A continuing process reports its
        startup under a fresh id before it adopts the continued session's id (as 2.1.328 does)."""
        proc = _Process(self, len(self.processes) + 1, t)
        self.processes.append(proc)
        startup_sid = self.session_id
        if start_type == "continue":
            startup_sid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        events: list[tuple] = [
            (
                t,
                "managed_settings_resolved",
                [
                    ("managed_settings.trigger", "startup"),
                    ("managed_settings.sources", []),
                    ("managed_settings.source_behavior", "first-wins"),
                    ("managed_settings.helper.state", "none"),
                    ("managed_settings.helper.applied", "none"),
                ],
                None,
                None,
                proc.note("event", "claude_code.managed_settings_resolved", startup_sid),
            )
        ]
        for i, plugin in enumerate(("cc-plugin-agents-md", "cc-plugin-privacy", "cc-plugin-lsp")):
            events.append(
                (
                    t + (35 + i) * MS,
                    "plugin_loaded",
                    [
                        ("plugin.name", plugin),
                        ("marketplace.name", "builtin"),
                        ("plugin.scope", "default-bundle"),
                        ("enabled_via", "default-enable"),
                        ("plugin_id_hash", self.rng.randbytes(8).hex()),
                        ("has_hooks", True),
                        ("has_mcp", False),
                        ("host_owned_mcp", False),
                        ("skill_path_count", 0),
                        ("command_path_count", 0),
                        ("agent_path_count", 0),
                        ("safe_mode", "false"),
                    ],
                    None,
                    None,
                    proc.note("event", "claude_code.plugin_loaded", startup_sid),
                )
            )
        proc.add_events(events, startup_sid)
        proc.add_delta(
            t + 40 * MS,
            "claude_code.session.count",
            (("start_type", start_type),),
            1.0,
            startup_sid,
        )
        return proc

    def features(self) -> set[str]:
        """What the first turns must show, so a short demo (or test) sees every shape."""
        if self.turns_done or self.index >= len(PROFILES) or len(self.processes) > 1:
            return set()
        return [{"bash_failure"}, {"subagent"}, {"retry"}, set()][self.index]

    def next_turn(self) -> int:
        """Generate the next turn at `next_turn_ns`; schedule what follows."""
        t0 = self.next_turn_ns
        end = _Turn(self, self.process, t0).run(self.features())
        self.turns_done += 1
        self.turns_left -= 1
        think = self.rng.lognormvariate(math.log(6000), 0.6)
        typing = min(think, self.rng.uniform(1500, 8000))
        think_ns = int(min(max(think, 2000), 40_000) * MS)
        if self.turns_left > 0:
            self.next_turn_ns = end + think_ns
            self.process.add_delta(
                self.next_turn_ns,
                "claude_code.active_time.total",
                (("type", "user"),),
                typing / 1000,
            )
            return end
        self.process.exit_ns = end + 400 * MS
        if self.continues and len(self.processes) == 1:
            t = self.process.exit_ns + int(self.rng.uniform(4, 12) * NS)
            self.process = self.start_process(t, "continue")
            self.turns_left = self.rng.randint(3, 8)
            self.next_turn_ns = t + self.rng.randint(1500, 5000) * MS
        else:
            self.next_turn_ns = math.inf  # type: ignore[assignment]
            self.ended_ns = self.process.exit_ns
        return end


# --- sending -------------------------------------------------------------------------------


def _metric_request(proc: _Process, upto: int, deltas: list[tuple]) -> tuple[Any, list[dict]]:
    by_series: dict[tuple, float] = {}
    for _t, metric, attrs, value, sid in deltas:
        key = (metric, attrs, sid)
        by_series[key] = by_series.get(key, 0.0) + value
    metrics: dict[str, Metric] = {}
    notes: list[dict] = []
    for (metric, attrs, sid), value in by_series.items():
        m = metrics.get(metric)
        if m is None:
            desc, unit = METRICS[metric]
            m = metrics[metric] = Metric(
                name=metric,
                description=desc,
                unit=unit,
                sum=Sum(
                    aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA,
                    is_monotonic=True,
                ),
            )
        m.sum.data_points.append(
            NumberDataPoint(
                start_time_unix_nano=proc.last_export_ns,
                time_unix_nano=upto,
                as_double=value,
                attributes=attributes([*proc.standard(sid), *attrs]),
            )
        )
        notes.append(proc.note("metric", metric, sid, value=value))
    ordered = [metrics[name] for name in METRICS if name in metrics]
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=proc.resource,
                scope_metrics=[ScopeMetrics(scope=METRICS_SCOPE, metrics=ordered)],
            )
        ]
    )
    return req, notes


METRICS = {
    "claude_code.session.count": ("Count of CLI sessions started", ""),
    "claude_code.cost.usage": ("Cost of the Claude Code session", "USD"),
    "claude_code.token.usage": ("Number of tokens used", "tokens"),
    "claude_code.lines_of_code.count": (
        "Count of lines of code modified, with the 'type' attribute indicating whether lines "
        "were added or removed and the 'model' attribute indicating which model made the change",
        "",
    ),
    "claude_code.code_edit_tool.decision": (
        "Count of code editing tool permission decisions (accept/reject) for Edit, Write, and "
        "NotebookEdit tools",
        "",
    ),
    "claude_code.active_time.total": ("Total active time in seconds", "s"),
}


@dataclass
class _Batch:
    signal: str
    request: Any
    notes: list[dict]


class DemoSender:
    """Feeds synthetic Claude Code telemetry to an OTLP/gRPC endpoint (`host:port`).

    `speed` scales the virtual clock against real time; `history_s` starts it that many virtual
    seconds in the past, so the first `step()` sends a backlog at once. `seed` (random when None)
    and `start_ns` fix what is generated. `ledger` holds what the receiver acknowledged.
    """

    def __init__(
        self,
        target: str,
        *,
        seed: int | None = None,
        speed: float = 1.0,
        sessions: int = 4,
        start_ns: int | None = None,
        history_s: float = 0.0,
        timeout: float = 10.0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if sessions < 1:
            raise ValueError("sessions must be at least 1")
        self.target = target
        self.seed = seed if seed is not None else int.from_bytes(os.urandom(4), "big")
        self.speed = speed
        self.timeout = timeout
        self.ledger = Ledger()
        now = time.time_ns() if start_ns is None else start_ns
        self.start_ns = now - int(history_s * NS)
        self.vnow = self.start_ns
        self._history_ns = int(history_s * NS)
        self._t0: float | None = None
        rng = random.Random(f"claude-top-demo:{self.seed}")
        self._user_id = rng.randbytes(32).hex()
        self._sessions: list[_Session] = []
        self._next_index = 0
        for i in range(sessions):
            self._new_session(self.start_ns + int(i * rng.uniform(0.5, 2.5) * NS))
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[str, Any] = {}
        self._stop = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.finished = False

    # generation

    def _new_session(self, t: int) -> _Session:
        s = _Session(self._next_index, self.seed, self._user_id, t)
        self._next_index += 1
        self._sessions.append(s)
        return s

    def _generate(self, upto: int) -> None:
        """Generate every turn that starts by `upto`; replace sessions that ended."""
        progress = True
        while progress:
            progress = False
            for s in list(self._sessions):
                while s.next_turn_ns <= upto:
                    s.next_turn()
                    progress = True
                if s.ended_ns is not None and not s.replaced:
                    s.replaced = True
                    self._new_session(s.ended_ns + int(s.rng.uniform(5, 20) * NS))
                    progress = True

    def _processes(self) -> list[_Process]:
        return [p for s in self._sessions for p in s.processes if not p.finished]

    def _due(self, upto: int, final: bool = False) -> list[_Batch]:
        """Requests for everything due by `upto` (everything generated when `final`)."""
        batches: list[_Batch] = []
        for proc in self._processes():
            due = [o for o in proc.pending if final or o.t_ns <= upto]
            if due:
                proc.pending = [o for o in proc.pending if not (final or o.t_ns <= upto)]
                due.sort(key=lambda o: o.t_ns)
                logs = [o for o in due if o.signal == "logs"]
                spans = [o for o in due if o.signal == "traces"]
                if logs:
                    batches.append(
                        _Batch(
                            "logs",
                            ExportLogsServiceRequest(
                                resource_logs=[
                                    ResourceLogs(
                                        resource=proc.resource,
                                        scope_logs=[
                                            ScopeLogs(
                                                scope=EVENTS_SCOPE,
                                                log_records=[o.pb for o in logs],
                                            )
                                        ],
                                    )
                                ]
                            ),
                            [o.note for o in logs],
                        )
                    )
                if spans:
                    batches.append(
                        _Batch(
                            "traces",
                            ExportTraceServiceRequest(
                                resource_spans=[
                                    ResourceSpans(
                                        resource=proc.resource,
                                        scope_spans=[
                                            ScopeSpans(
                                                scope=TRACING_SCOPE, spans=[o.pb for o in spans]
                                            )
                                        ],
                                    )
                                ]
                            ),
                            [o.note for o in spans],
                        )
                    )
            exited = proc.exit_ns is not None and proc.exit_ns <= upto
            export_at = None
            if final or exited:
                export_at = max(
                    proc.exit_ns if proc.exit_ns is not None else upto,
                    proc.last_export_ns + MS,
                    *(d[0] for d in proc.deltas if final),
                )
            elif upto >= proc.next_export_ns:
                export_at = (
                    proc.next_export_ns
                    + (upto - proc.next_export_ns) // (METRIC_INTERVAL_NS) * METRIC_INTERVAL_NS
                )
            if export_at is not None:
                deltas = [d for d in proc.deltas if final or d[0] <= export_at]
                proc.deltas = [d for d in proc.deltas if not (final or d[0] <= export_at)]
                if deltas:
                    req, notes = _metric_request(proc, export_at, deltas)
                    batches.append(_Batch("metrics", req, notes))
                proc.last_export_ns = export_at
                proc.next_export_ns = export_at + METRIC_INTERVAL_NS
                if (final or exited) and not proc.pending and not proc.deltas:
                    proc.finished = True
        return batches

    def build(self, upto: int) -> list[_Batch]:
        """Generate up to virtual time `upto` and take the requests due (no network)."""
        self.vnow = max(self.vnow, upto)
        self._generate(upto)
        return self._due(upto)

    # network

    def _call(self, signal: str):
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.target)
        call = self._calls.get(signal)
        if call is None:
            req_cls, resp_cls = _CODECS[signal]
            call = self._calls[signal] = self._channel.unary_unary(
                SERVICES[signal],
                request_serializer=req_cls.SerializeToString,
                response_deserializer=resp_cls.FromString,
            )
        return call

    async def _send(self, batch: _Batch, attempts: int = 6) -> bool:
        """One export, retried like an OTLP exporter on UNAVAILABLE; True when acknowledged."""
        delay = 0.1
        for attempt in range(attempts):
            try:
                await self._call(batch.signal)(batch.request, timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or attempt == attempts - 1 or self._stop.is_set():
                    break
                await self._pause(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.ledger.exports += 1
            for note in batch.notes:
                self.ledger.apply(note)
            return True
        self.ledger.failed_exports += 1
        self.ledger.lost_records += len(batch.notes)
        return False

    async def _pause(self, seconds: float) -> None:
        """Sleep, waking at once when `stop()` is called."""
        if self._wake is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def send(self, batches: list[_Batch]) -> int:
        """Send batches concurrently; returns how many records were acknowledged."""
        results = await asyncio.gather(*(self._send(b) for b in batches))
        return sum(len(b.notes) for b, ok in zip(batches, results, strict=True) if ok)

    # driving

    def _paced_now(self) -> int:
        if self._t0 is None:
            self._t0 = time.monotonic()
        elapsed = time.monotonic() - self._t0
        return self.start_ns + self._history_ns + int(elapsed * self.speed * NS)

    async def step(self) -> int:
        """Send what is due by the paced virtual clock; returns records acknowledged."""
        return await self.send(self.build(max(self.vnow, self._paced_now())))

    async def advance(self, seconds: float, batch_s: float = 1.0) -> int:
        """Move the virtual clock `seconds` ahead without waiting, `batch_s` per export round."""
        end = self.vnow + int(seconds * NS)
        sent = 0
        while self.vnow < end:
            sent += await self.send(self.build(min(end, self.vnow + int(batch_s * NS))))
        return sent

    async def finish(self) -> int:
        """Send everything generated and each process's last metrics, as exiting processes do."""
        self.finished = True
        return await self.send(self._due(self.vnow, final=True))

    async def run(
        self, duration: float | None = None, *, tick: float = 0.5, drain: bool = True
    ) -> Ledger:
        """Send live until `duration` real seconds pass (forever when None) or `stop()`."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stop.is_set():
            self._wake.set()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not self._stop.is_set():
                await self.step()
                wait = tick
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                await self._pause(wait)
            if drain:
                await self.finish()
        finally:
            await self.close()
        return self.ledger

    def stop(self) -> None:
        """Ask `run()` to stop (from any thread)."""
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._calls.clear()


# --- `claude-top demo` ---------------------------------------------------------------------


def verify(ledger: Ledger, cur, *, only_sessions: bool = False) -> list[str]:
    """Differences between what the receiver acknowledged and what `core.queries` shows.

    `only_sessions` checks the sender's sessions alone (for a store that held data before).
    """
    from claude_top.core.queries import Filter, models, sessions, tools

    problems: list[str] = []
    shown = {r["session_id"]: r for r in sessions(cur, Filter())}
    missing = set(ledger.sessions) - set(shown)
    if missing:
        problems.append(f"{len(missing)} sessions sent but not stored: {sorted(missing)}")
    if not only_sessions and set(shown) - set(ledger.sessions):
        problems.append(f"{len(set(shown) - set(ledger.sessions))} sessions stored but not sent")
    for sid, s in ledger.sessions.items():
        r = shown.get(sid)
        if r is None:
            continue
        got = (r["prompts"], r["api_requests"], r["tool_calls"], r["tool_errors"])
        want = (s.prompts, s.api_requests, s.tool_calls, s.tool_errors)
        if got != want or abs(r["cost_usd"] - s.cost_usd) > 1e-9:
            problems.append(
                f"session {sid}: stored {got} ${r['cost_usd']}, sent {want} ${s.cost_usd}"
            )
    if only_sessions:
        return problems
    for r in models(cur, Filter()):
        m = ledger.models.get(r["model"])
        if (
            m is None
            or r["api_requests"] != m.api_requests
            or abs(r["cost_usd"] - m.cost_usd) > 1e-9
        ):
            problems.append(f"model {r['model']}: stored {r['api_requests']} ${r['cost_usd']}")
    for r in tools(cur, Filter()):
        t = ledger.tools.get(r["tool_name"])
        if t is None or (r["calls"], r["errors"]) != (t.calls, t.errors):
            problems.append(
                f"tool {r['tool_name']}: stored {r['calls']} calls, {r['errors']} errors"
            )
    return problems


def _sender_options(args) -> dict[str, Any]:
    return {"seed": args.seed, "speed": args.speed, "sessions": args.sessions}


async def _headless(args, store, writer) -> tuple[int, DemoSender | None]:
    import signal
    import sys

    from claude_top.core.connect import endpoint_host
    from claude_top.receiver.server import PortInUse, ReceiverConfig, Receivers

    rx = Receivers(
        writer,
        ReceiverConfig(
            bind=args.bind,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            max_body=args.max_body,
        ),
    )
    try:
        await rx.start()
    except PortInUse as exc:
        print(f"claude-top demo: {exc}", file=sys.stderr)
        return 2, None
    sender = DemoSender(f"{endpoint_host(args.bind)}:{rx.grpc_port}", **_sender_options(args))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sender.stop)
    ep = rx.endpoints
    until = f"for {args.duration:g} s" if args.duration is not None else "until Ctrl-C"
    print(
        f"claude-top demo: OTLP/gRPC on {ep['grpc']}, OTLP/HTTP on {ep['http']}; sending {until} "
        f"at {args.speed:g}x (seed {sender.seed})",
        flush=True,
    )
    try:
        await sender.run(args.duration)
    finally:
        await rx.stop()
    return 0, sender


def run_demo(args, db_path: str, *, temporary: bool = False) -> int:
    """`claude-top demo`: the UI (or, with --headless, nothing) fed by a DemoSender."""
    import sys

    if args.headless:
        from claude_top.core.store.database import Store, StoreError
        from claude_top.core.store.writer import StoreWriter

        try:
            store = Store.open(db_path)
        except StoreError as exc:
            print(f"claude-top demo: {exc}", file=sys.stderr)
            return 2
        with store.reading() as cur:
            held_data = cur.execute(
                "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM spans) "
                "+ (SELECT count(*) FROM metric_points) > 0"
            ).fetchone()[0]
        writer = StoreWriter(store)
        try:
            code, sender = asyncio.run(_headless(args, store, writer))
            if sender is None:
                return code
            writer.sync(30.0)
            print(sender.ledger.summary())
            with store.reading() as cur:
                problems = verify(sender.ledger, cur, only_sessions=held_data)
        finally:
            writer.close()
            store.checkpoint()
            store.close()
        where = "a temporary database (removed)" if temporary else db_path
        if problems:
            print("stored totals differ from what was acknowledged:", *problems, sep="\n  ")
            return 1
        print(f"stored in {where}: the same sessions, costs, models and tool calls")
        return 0

    from claude_top.core.connect import endpoint_host
    from claude_top.ui.app import run_app

    host = endpoint_host(args.bind)
    senders: list[DemoSender] = []

    def feed(rx) -> Awaitable[Ledger]:
        sender = DemoSender(f"{host}:{rx.grpc_port}", history_s=90.0, **_sender_options(args))
        senders.append(sender)
        return sender.run(drain=False)

    code = run_app(args, db_path, background=feed)
    gc.collect()  # free the closed store's cursors while duckdb is still loaded
    if senders:
        ledger = senders[0].ledger
        print(
            f"claude-top demo: sent {len(ledger.sessions)} sessions, "
            f"{sum(s.prompts for s in ledger.sessions.values())} prompts, ${ledger.cost_usd:.4f}"
            + (" (temporary database removed)" if temporary else f" into {db_path}")
        )
    return code
