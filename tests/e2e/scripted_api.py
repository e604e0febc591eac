"""A scripted Anthropic Messages API on loopback, for driving the real Claude Code offline.

The main conversation follows a fixed script of assistant turns. Which turn is due is read from
the conversation itself (the number of `tool_result` blocks Claude Code sent back), so retries
and side requests never move the script on. Every request is recorded with the reply it got,
so a test derives its expected numbers from what this server actually returned.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Usage:
    """Token counts one reply reports (`input_tokens` excludes the cache, as the API does)."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0

    def wire(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(frozen=True)
class ToolCall:
    """An assistant turn asking for one tool."""

    name: str
    input: dict[str, Any]
    usage: Usage
    fails: bool = False  # the test's expectation: the tool's execution reports an error


@dataclass(frozen=True)
class FinalText:
    """The assistant's closing turn."""

    text: str
    usage: Usage


Step = ToolCall | FinalText


@dataclass(frozen=True)
class RateLimits:
    """What a Claude.ai subscriber's replies say about the plan's limits: the
    `anthropic-ratelimit-unified-*` headers. The n-th answered request gets the n-th
    utilization (0-1) of each window (the last one after that)."""

    five_hour: tuple[float, ...]
    seven_day: tuple[float, ...]
    five_hour_reset: int
    seven_day_reset: int

    def headers(self, n: int) -> dict[str, str]:
        five = self.five_hour[min(n, len(self.five_hour) - 1)]
        seven = self.seven_day[min(n, len(self.seven_day) - 1)]
        p = "anthropic-ratelimit-unified-"
        return {
            f"{p}5h-utilization": str(five),
            f"{p}5h-reset": str(self.five_hour_reset),
            f"{p}5h-status": "allowed",
            f"{p}7d-utilization": str(seven),
            f"{p}7d-reset": str(self.seven_day_reset),
            f"{p}7d-status": "allowed",
            f"{p}status": "allowed",
            f"{p}representative-claim": "five_hour",
            f"{p}reset": str(self.five_hour_reset),
        }


@dataclass
class Recorded:
    """One HTTP request and what this server answered."""

    method: str
    path: str
    body: dict | None
    status: int
    kind: str  # "main", "side", "count_tokens", "overloaded", "other"
    step: int | None = None
    model: str | None = None
    usage: Usage | None = None
    tool_use_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    """The rate-limit headers the reply carried."""


SIDE_USAGE = Usage(input_tokens=21, output_tokens=4)
SIDE_TEXT = "OK"


def _tool_results(body: dict) -> int:
    n = 0
    for msg in body.get("messages") or []:
        content = msg.get("content")
        if msg.get("role") == "user" and isinstance(content, list):
            n += sum(1 for c in content if isinstance(c, dict) and c.get("type") == "tool_result")
    return n


def _tool_names(body: dict) -> set[str]:
    return {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@dataclass
class ScriptedApi:
    """The server: `script` is the main conversation; `overload_step` gets one 529 first;
    `rate_limits` (a subscriber's plan) adds its headers to every complete reply."""

    script: list[Step]
    overload_step: int | None = None
    rate_limits: RateLimits | None = None
    requests: list[Recorded] = field(default_factory=list)
    port: int | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _overloaded: bool = False

    # --- what happened -----------------------------------------------------------------------

    def answered(self) -> list[Recorded]:
        """Requests that got a complete reply with usage (each one an `api_request`)."""
        return [r for r in self.requests if r.usage is not None]

    def main_replies(self) -> list[Recorded]:
        return [r for r in self.requests if r.kind == "main"]

    def summary(self) -> str:
        return "\n".join(
            f"{r.method} {r.path} -> {r.status} {r.kind} step={r.step} model={r.model}"
            for r in self.requests
        )

    # --- HTTP ----------------------------------------------------------------------------------

    def _is_main(self, body: dict) -> bool:
        wanted = {s.name for s in self.script if isinstance(s, ToolCall)}
        return bool(body.get("messages")) and wanted <= _tool_names(body)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._record(request, None, 400, "other")
            return web.json_response(
                {"type": "error", "error": {"type": "invalid_request_error", "message": "json"}},
                status=400,
            )
        model = body.get("model")
        if not self._is_main(body):
            rec = self._record(request, body, 200, "side", model=model, usage=SIDE_USAGE)
            return await self._reply(request, body, FinalText(SIDE_TEXT, SIDE_USAGE), rec)
        step = min(_tool_results(body), len(self.script) - 1)
        if step == self.overload_step and not self._overloaded:
            self._overloaded = True
            self._record(request, body, 529, "overloaded", step=step, model=model)
            return web.json_response(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                status=529,
                headers={"retry-after-ms": "50", "x-should-retry": "true"},
            )
        turn = self.script[step]
        rec = self._record(request, body, 200, "main", step=step, model=model, usage=turn.usage)
        return await self._reply(request, body, turn, rec)

    def _record(self, request: web.Request, body, status: int, kind: str, **kw) -> Recorded:
        rec = Recorded(request.method, request.path_qs, body, status, kind, **kw)
        self.requests.append(rec)
        return rec

    def _content(self, turn: Step, rec: Recorded) -> tuple[list[dict], str]:
        if isinstance(turn, FinalText):
            return [{"type": "text", "text": turn.text}], "end_turn"
        rec.tool_use_id = f"toolu_e2e{next(self._ids):06d}"
        block = {"type": "tool_use", "id": rec.tool_use_id, "name": turn.name, "input": turn.input}
        return [block], "tool_use"

    async def _reply(
        self, request: web.Request, body: dict, turn: Step, rec: Recorded
    ) -> web.StreamResponse:
        content, stop = self._content(turn, rec)
        msg_id = f"msg_e2e{next(self._ids):06d}"
        model = body.get("model") or "claude-sonnet-4-5"
        if self.rate_limits is not None:
            answered = sum(1 for r in self.requests if r.headers)
            rec.headers = self.rate_limits.headers(answered)
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": turn.usage.wire(),
                },
                headers={"request-id": f"req_{msg_id}", **rec.headers},
            )
        resp = web.StreamResponse(
            headers={
                "content-type": "text/event-stream",
                "cache-control": "no-cache",
                "request-id": f"req_{msg_id}",
                **rec.headers,
            }
        )
        await resp.prepare(request)
        start_usage = {**turn.usage.wire(), "output_tokens": 1}
        await resp.write(
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
        )
        for i, block in enumerate(content):
            if block["type"] == "text":
                start = {"type": "text", "text": ""}
                delta = {"type": "text_delta", "text": block["text"]}
            else:
                start = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            await resp.write(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": start},
                )
            )
            await resp.write(
                _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": i, "delta": delta},
                )
            )
            await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        await resp.write(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": turn.usage.wire(),
                },
            )
        )
        await resp.write(_sse("message_stop", {"type": "message_stop"}))
        await resp.write_eof()
        return resp

    async def _count_tokens(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self._record(request, body, 200, "count_tokens")
        return web.json_response({"input_tokens": 42})

    async def _other(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = {"_raw": raw[:200].decode("latin-1")}
        self._record(request, body, 404, "other")
        return web.json_response(
            {"type": "error", "error": {"type": "not_found_error", "message": request.path}},
            status=404,
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_route("*", "/{tail:.*}", self._other)
        return app

    # --- running -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1, an ephemeral port (run it on a `loopback.LoopThread`)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
