"""A scripted Gemini API on loopback, for driving the real Gemini CLI offline.

Gemini CLI (`GOOGLE_GEMINI_BASE_URL`) posts `/v1beta/models/<model>:streamGenerateContent?alt=sse`
(also `:generateContent`, `:countTokens`). The main conversation (the requests that offer the
scripted tools) follows a fixed script; which turn is due is read from the conversation itself
(the number of `functionResponse` parts sent back). Anything else (the model router's
classification, a next-speaker check) gets a short JSON answer with its own usage. Every
request is recorded with the usage it was answered with, so a test derives its expected numbers
from what this server returned.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Usage:
    """`usageMetadata` of one reply: the prompt count includes the cached part."""

    prompt: int
    candidates: int
    cached: int = 0
    thoughts: int = 0

    def wire(self) -> dict[str, int]:
        return {
            "promptTokenCount": self.prompt,
            "candidatesTokenCount": self.candidates,
            "cachedContentTokenCount": self.cached,
            "thoughtsTokenCount": self.thoughts,
            "totalTokenCount": self.prompt + self.candidates + self.thoughts,
        }


@dataclass(frozen=True)
class ToolCall:
    """A model turn asking for one function call."""

    name: str
    args: dict[str, Any]
    usage: Usage
    fails: bool = False  # the test's expectation: Gemini CLI reports the call as failed


@dataclass(frozen=True)
class FinalText:
    text: str
    usage: Usage


Step = ToolCall | FinalText


@dataclass
class Recorded:
    """One HTTP request and what this server answered."""

    path: str
    body: dict | None
    kind: str  # "main", "side", "count_tokens", "other"
    step: int | None = None
    model: str | None = None
    usage: Usage | None = None


SIDE_USAGE = Usage(prompt=321, candidates=9, cached=0, thoughts=3)
SIDE_TEXT = json.dumps({"reasoning": "simple", "complexity_score": 10, "next_speaker": "user"})


def _function_responses(body: dict) -> int:
    return sum(
        1
        for c in body.get("contents") or []
        for p in c.get("parts") or []
        if isinstance(p, dict) and "functionResponse" in p
    )


def _tool_names(body: dict) -> set[str]:
    names = set()
    for tool in body.get("tools") or []:
        for decl in tool.get("functionDeclarations") or []:
            names.add(decl.get("name"))
    return names


@dataclass
class GeminiApi:
    """The server: `script` is the main conversation."""

    script: list[Step]
    requests: list[Recorded] = field(default_factory=list)
    port: int | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def answered(self) -> list[Recorded]:
        """Requests answered with a complete response and its usage."""
        return [r for r in self.requests if r.usage is not None]

    def main_replies(self) -> list[Recorded]:
        return [r for r in self.requests if r.kind == "main"]

    def summary(self) -> str:
        return "\n".join(f"{r.path} -> {r.kind} step={r.step}" for r in self.requests)

    def _is_main(self, body: dict) -> bool:
        wanted = {s.name for s in self.script if isinstance(s, ToolCall)}
        return wanted <= _tool_names(body)

    def _candidate(self, turn: Step, model: str) -> dict:
        if isinstance(turn, FinalText):
            parts = [{"text": turn.text}]
        else:
            call_id = f"call_e2e{next(self._ids):04d}"
            parts = [{"functionCall": {"name": turn.name, "args": turn.args, "id": call_id}}]
        return {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": turn.usage.wire(),
            "modelVersion": model,
        }

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["call"].partition(":")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.requests.append(Recorded(request.path_qs, None, "other"))
            return web.json_response({"error": {"code": 400, "message": "json"}}, status=400)
        if method == "countTokens":
            self.requests.append(Recorded(request.path_qs, body, "count_tokens", model=model))
            return web.json_response({"totalTokens": 42})
        if self._is_main(body):
            step = min(_function_responses(body), len(self.script) - 1)
            turn: Step = self.script[step]
            rec = Recorded(request.path_qs, body, "main", step, model, turn.usage)
        else:
            turn = FinalText(SIDE_TEXT, SIDE_USAGE)
            rec = Recorded(request.path_qs, body, "side", None, model, SIDE_USAGE)
        self.requests.append(rec)
        reply = self._candidate(turn, model)
        if method != "streamGenerateContent":
            return web.json_response(reply)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(f"data: {json.dumps(reply)}\r\n\r\n".encode())
        await resp.write_eof()
        return resp

    async def _other(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path_qs, None, "other"))
        return web.json_response({"error": {"code": 404, "message": request.path}}, status=404)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1beta/models/{call}", self._generate)
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
        return f"http://127.0.0.1:{self.port}"
