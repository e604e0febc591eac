"""What the receiver acknowledged, counted from the notes each record carries: by session, model,
tool, turn and subagent, with a plain-text summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from claude_top.demo.catalog import NS


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
    """What was acknowledged for one model."""

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
    """What was acknowledged for one tool: its calls, errors and execution times."""

    calls: int = 0
    errors: int = 0
    durations_ms: list[int] = field(default_factory=list)


@dataclass
class TurnTally:
    """What was acknowledged for one prompt's turn."""

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
