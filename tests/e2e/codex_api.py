"""A scripted OpenAI Responses API on loopback, for driving the real Codex CLI offline.

Codex CLI (a `model_providers` entry with `base_url` and `wire_api = "responses"`) posts
`/v1/responses` and reads the SSE stream: `response.created`, `response.output_item.added` /
`.done` (a `function_call` for a tool it offered, or a `message`), `response.completed` with the
usage. Which turn of the script is due is read from the conversation (the number of
`function_call_output` items sent back). Every request is recorded with the usage it was
answered with, so a test derives its expected numbers from what this server returned.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Usage:
    """`usage` of one response: input counts the cached part, output the reasoning."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def wire(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass(frozen=True)
class ToolCall:
    """A turn asking for one function call (`arguments` sent as given: a JSON text)."""

    name: str
    arguments: str
    usage: Usage
    fails: bool = False  # the test's expectation: Codex reports the call as failed


@dataclass(frozen=True)
class FinalText:
    text: str
    usage: Usage


Step = ToolCall | FinalText


@dataclass
class Recorded:
    path: str
    body: dict | None
    kind: str  # "main", "other"
    step: int | None = None
    model: str | None = None
    usage: Usage | None = None
    call_id: str | None = None


def _outputs(body: dict) -> int:
    items = body.get("input") or []
    return sum(1 for i in items if isinstance(i, dict) and i.get("type") == "function_call_output")


def _sse(data: dict) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


@dataclass
class CodexApi:
    """The server: `script` is the conversation."""

    script: list[Step]
    requests: list[Recorded] = field(default_factory=list)
    port: int | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def answered(self) -> list[Recorded]:
        return [r for r in self.requests if r.usage is not None]

    def summary(self) -> str:
        return "\n".join(f"{r.path} -> {r.kind} step={r.step}" for r in self.requests)

    def tool_replies(self) -> list[tuple[Recorded, ToolCall]]:
        return [
            (r, step) for r in self.answered() if isinstance(step := self.script[r.step], ToolCall)
        ]

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.requests.append(Recorded(request.path, None, "other"))
            return web.json_response({"error": {"message": "json"}}, status=400)
        step = min(_outputs(body), len(self.script) - 1)
        turn = self.script[step]
        rec = Recorded(request.path, body, "main", step, body.get("model"), turn.usage)
        self.requests.append(rec)
        n = next(self._ids)
        if isinstance(turn, ToolCall):
            rec.call_id = f"call_e2e{n:04d}"
            item = {
                "type": "function_call",
                "id": f"fc_e2e{n:04d}",
                "status": "completed",
                "name": turn.name,
                "arguments": turn.arguments,
                "call_id": rec.call_id,
            }
        else:
            item = {
                "type": "message",
                "id": f"msg_e2e{n:04d}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": turn.text, "annotations": []}],
            }
        response = {"id": f"resp_e2e{n:04d}", "object": "response", "model": rec.model}
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_sse({"type": "response.created", "response": response}))
        await resp.write(
            _sse({"type": "response.output_item.added", "output_index": 0, "item": item})
        )
        await resp.write(
            _sse({"type": "response.output_item.done", "output_index": 0, "item": item})
        )
        done = {**response, "status": "completed", "output": [item], "usage": turn.usage.wire()}
        await resp.write(_sse({"type": "response.completed", "response": done}))
        await resp.write_eof()
        return resp

    async def _other(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path_qs, None, "other"))
        return web.json_response({"error": {"message": request.path}}, status=404)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_route("*", "/{tail:.*}", self._other)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"
