"""One interaction under construction: its ids, virtual clock and RNG, and the events and spans
`generate`, `llm` and `tools` build into it before they go to the process."""

from __future__ import annotations

import math
import random
import uuid
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from claude_top.demo.catalog import MS, SPAN_FLAGS
from claude_top.demo.process import Process, attributes


class Turn:
    """One interaction's records on a process, in its own trace.

    `t` is the virtual clock, moved on as each call takes its time; `context` is the session's
    cached context in tokens, read and grown by every API call.
    """

    def __init__(self, proc: Process, rng: random.Random, context: int, t0: int) -> None:
        self.p = proc
        self.rng = rng
        self.context = context
        self.t = t0
        self.trace_id = self.rng.randbytes(16)
        self.root_id = self.span_id()
        self.prompt_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.events: list[tuple] = []
        self.spans: list[tuple[Span, dict]] = []

    def span_id(self) -> bytes:
        return self.rng.randbytes(8)

    def ms(self, lo: float, hi: float) -> int:
        """A uniform duration between `lo` and `hi` ms, in ns."""
        return int(self.rng.uniform(lo, hi) * MS)

    def lognormal_ms(self, median: float, sigma: float, cap: float = 600_000) -> int:
        return max(1, min(int(self.rng.lognormvariate(math.log(median), sigma)), int(cap)))

    def event(self, t: int, name: str, attrs: list, span_id: bytes | None = None, **note) -> None:
        """An event in this turn's trace (under the interaction span unless `span_id`)."""
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
        """A span in this turn's trace; `note` adds to what the ledger learns of it."""
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
                    ("gen_ai.conversation.id", self.p.session_id),
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

    def flush(self) -> None:
        """Hand the turn's events and spans to its process."""
        self.p.add_events(self.events)
        for pb, n in self.spans:
            self.p.add_span(pb, n)
