"""One API call: the llm_request span with its attempts, the api_request event, and the cost
and token deltas, priced by the model and grown from the session's cached context."""

from __future__ import annotations

import math

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from claude_top.demo.catalog import MS, NS, PRICES, SPEED
from claude_top.demo.process import attributes
from claude_top.demo.turn import Turn


def llm_request(
    turn: Turn,
    parent: bytes,
    model: str,
    final: bool,
    retry: bool,
    agent: tuple[str, str] | None = None,
    under_task: str | None = None,
) -> int:
    """One API call: the llm_request span, its api_request event, cost and token deltas.

    `agent` (its id, its parent's) and `under_task` (the Task tool's span id, hex) mark a subagent's
    call. Returns the tokens it used."""
    rng = turn.rng
    start = turn.t
    span_events = [
        Span.Event(
            time_unix_nano=start + turn.ms(0.1, 2),
            name="gen_ai.request.attempt",
            attributes=attributes([("attempt", 1)]),
        )
    ]
    if retry:  # an overloaded (529) reply, a backoff, then attempt 2
        turn.t += turn.ms(300, 1500) + turn.ms(500, 2000)
        span_events.append(
            Span.Event(
                time_unix_nano=turn.t,
                name="gen_ai.request.attempt",
                attributes=attributes([("attempt", 2)]),
            )
        )
    ttft_median, tps = SPEED[model]
    ttft = turn.lognormal_ms(ttft_median, 0.4, 20_000)
    out_tokens = int(rng.lognormvariate(math.log(350 if final else 120), 0.6)) + 20
    call_ms = ttft + int(out_tokens * 1000 / tps)
    turn.t += call_ms * MS
    end = turn.t
    inp = int(rng.lognormvariate(math.log(40), 1.2)) + 3
    creation = int(rng.lognormvariate(math.log(1200), 0.8))
    read = turn.context
    turn.context += creation + inp + out_tokens
    if turn.context > 160_000:
        turn.context = 18_000 + rng.randrange(4000)  # compacted
    cost = PRICES[model].cost_nusd(inp, out_tokens, read, creation)
    cost_usd = cost / NS
    effort = [("effort", "medium")] if model == "claude-opus-5-5" else []
    agent_attrs = [] if agent is None else [("agent_id", agent[0]), ("parent_agent_id", agent[1])]
    source = "repl_main_thread" if agent is None else "agent:builtin:general-purpose"
    stop = "end_turn" if final else "tool_use"
    turn.span(
        "claude_code.llm_request",
        turn.span_id(),
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
    turn.event(
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
    turn.p.add_delta(end, "claude_code.cost.usage", series, cost_usd)
    for kind, n in (
        ("input", inp),
        ("output", out_tokens),
        ("cacheRead", read),
        ("cacheCreation", creation),
    ):
        turn.p.add_delta(end, "claude_code.token.usage", (*series, ("type", kind)), float(n))
    turn.t += turn.ms(2, 30)
    return inp + out_tokens + read + creation
