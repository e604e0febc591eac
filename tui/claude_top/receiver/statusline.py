"""Status-line samples in, plan limits out, on the OTLP/HTTP listener:

- `POST /claude-top/v1/statusline`: what `claude-top statusline` hands over, `{"samples":
  [{"received_ns", "text"}, ...]}` (one envelope alone, or a bare status-line object, also do).
  Answered only once the samples are committed; `{"stored", "duplicates", "rejected",
  "problems"}`.
- `GET /claude-top/v1/status[?at=EPOCH_S]`: what `claude-top status --json` prints.

Both take the OTLP exports' access rules (the bearer token when one is set), so the shim needs
the port and the token, not the instance key. Without a token, a request must name the host as
an IP address or `localhost` (a web page that rebinds a DNS name to 127.0.0.1 cannot), and a
sample must be sent as `application/json` (a page cannot send that cross-origin without a
preflight, which is never answered).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from dataclasses import replace

from aiohttp import web

from claude_top.core.budgets import (
    LimitSettings,
    SettingsError,
    parse_budgets,
    parse_thresholds,
)
from claude_top.core.format import NS_PER_S
from claude_top.core.instance import API_PREFIX
from claude_top.core.queries.limits import limits
from claude_top.core.sources.statusline.spool import spool_path
from claude_top.core.sources.statusline.store import (
    StoreResult,
    parse_envelopes,
    store_samples,
    take_spool,
)
from claude_top.core.store.database import MEMORY
from claude_top.core.store.writer import StoreWriter

STATUSLINE_PATH = API_PREFIX + "/statusline"
STATUS_PATH = API_PREFIX + "/status"
SYNC_S = 5.0
"""How long `/status` waits for acknowledged exports to be indexed."""


def _error(status: int, message: str, headers=None) -> web.Response:
    return web.json_response({"message": message}, status=status, headers=headers)


def host_is_local_name(host: str | None) -> bool:
    """Whether a Host header names an IP address or localhost (not a DNS name)."""
    if not host:
        return False
    if host.startswith("["):
        name = host[1 : host.find("]")]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class StatusLineService:
    """Stores status-line samples and answers `/status` for one store."""

    def __init__(
        self,
        writer: StoreWriter,
        ingest,
        settings: LimitSettings | None = None,
        redact: frozenset[str] = frozenset(),
        max_body: int = 1 << 20,
        clock=time.time_ns,
    ) -> None:
        self.writer = writer
        self.store = writer.store
        self.ingest = ingest
        self.settings = settings or LimitSettings()
        self.redact_paths = "paths" in redact
        self.max_body = max_body
        self.clock = clock
        self.stored = 0
        """Samples stored since start (the UI queries again when it changes)."""
        self.rejected = 0
        self.spooled: StoreResult | None = None
        """What the spool held when last taken in."""
        self.port: int | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(STATUSLINE_PATH, self._guard(self.post_samples)),
            web.get(STATUS_PATH, self._guard(self.get_status)),
        ]

    def _guard(self, handler):
        async def guarded(request: web.Request) -> web.StreamResponse:
            if self.ingest.token is None and not host_is_local_name(request.host):
                return _error(403, "send this to 127.0.0.1 or localhost (or set a token)")
            if not self.ingest.authorized(request.headers.get("Authorization")):
                return _error(
                    401,
                    "missing or wrong token: send the header Authorization: Bearer TOKEN",
                    {"WWW-Authenticate": "Bearer"},
                )
            return await handler(request)

        return guarded

    async def take_spool(self, port: int | None = None) -> StoreResult | None:
        """Store what waited in this port's spool while no claude-top ran (at start, and after
        a sample arrives while the spool holds some: a shim that timed out spooled them)."""
        if port is not None:
            self.port = port
        if self.port is None or self.store.path == MEMORY:
            return None  # a throwaway database takes nothing in that a real one is owed
        path = spool_path(self.port)
        try:
            if path.stat().st_size == 0:
                return None
        except OSError:
            return None
        result = await asyncio.to_thread(
            take_spool, self.store, path, self.clock(), self.redact_paths
        )
        if result is not None:
            self.stored += result.stored
            self.rejected += result.rejected
            self.spooled = result
        return result

    async def post_samples(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return _error(415, "send the samples as application/json")
        if request.content_length is not None and request.content_length > self.max_body:
            return _error(413, f"body larger than the {self.max_body}-byte limit")
        try:
            body = await request.read()
        except Exception as exc:
            response = _error(400, f"cannot read the request body: {exc}")
            response.force_close()
            return response
        now = self.clock()
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("samples"), list):
            items = list(parse_envelopes(doc["samples"], now))
        elif isinstance(doc, dict) and "text" in doc:
            items = list(parse_envelopes([doc], now))
        else:  # a bare sample (curl -d @sample.json), or what is not one: counted
            items = [(now, body)]
        try:
            result = await asyncio.to_thread(
                store_samples, self.store, items, redact_paths_too=self.redact_paths
            )
        except Exception as exc:
            return _error(503, f"store write failed: {exc}", {"Retry-After": "1"})
        self.stored += result.stored
        self.rejected += result.rejected
        if result.stored:
            await self.take_spool()
        return web.json_response(
            {
                "stored": result.stored,
                "duplicates": result.duplicates,
                "rejected": result.rejected,
                "problems": result.problems[:20],
            }
        )

    async def get_status(self, request: web.Request) -> web.Response:
        """The status as of now (or `?at=` epoch seconds), with this instance's budgets and
        thresholds unless `?budget=` / `?alert_at=` give others."""
        now = self.clock()
        q = request.query
        settings = self.settings
        try:
            if "at" in q:
                now = int(float(q["at"]) * NS_PER_S)
            if "budget" in q:
                settings = replace(settings, budgets=parse_budgets(q["budget"]))
            if "alert_at" in q:
                settings = replace(settings, alert_at=parse_thresholds(q["alert_at"]))
        except (ValueError, SettingsError) as exc:
            return _error(400, f"bad status request: {exc}")

        def run() -> dict:
            self.writer.sync(SYNC_S)
            with self.store.reading() as cur:
                result = limits(cur, settings, now)
            return result.to_json(now, settings.near_pct)

        return web.json_response(await asyncio.to_thread(run))
