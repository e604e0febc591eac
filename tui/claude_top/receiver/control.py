"""The control API on the OTLP/HTTP listener: what other claude-top commands ask the running
instance for while it holds the database (`core.instance`). Every call carries the instance's
key from its private instance file; nothing here is reachable without it."""

from __future__ import annotations

import asyncio
import hmac
import json
from pathlib import Path

from aiohttp import web

from claude_top import __version__
from claude_top.core.export import export_snapshot
from claude_top.core.instance import API_PREFIX, KEY_HEADER
from claude_top.core.queries.filters import parse_window
from claude_top.core.store.writer import StoreWriter

SYNC_TIMEOUT_S = 60.0


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


class Control:
    """Answers the control API for one store."""

    def __init__(self, writer: StoreWriter, key: str) -> None:
        self.writer = writer
        self.store = writer.store
        self.key = key

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(API_PREFIX + "/instance", self._guard(self.instance)),
            web.post(API_PREFIX + "/export", self._guard(self.export)),
        ]

    def _guard(self, handler):
        async def guarded(request: web.Request) -> web.StreamResponse:
            given = request.headers.get(KEY_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.key.encode()):
                return _error(403, "missing or wrong instance key (see <db>.instance.json)")
            return await handler(request)

        return guarded

    async def instance(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"app": "claude-top", "version": __version__, "db": self.store.path}
        )

    async def export(self, request: web.Request) -> web.Response:
        """Write a CSV snapshot as `claude-top export` would: {out, since, session}."""
        try:
            doc = await request.json()
            out = Path(doc["out"])
            since = doc.get("since")
            window_s = parse_window(since) if since else None
            session = doc.get("session")
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            return _error(400, f"bad export request: {exc}")
        if not out.is_absolute():
            return _error(400, "the output folder must be an absolute path")

        def run():
            self.writer.sync(SYNC_TIMEOUT_S)  # everything acknowledged before the request
            with self.store.reading() as cur:
                return export_snapshot(
                    cur,
                    out,
                    db_path=self.store.path,
                    window=since,
                    window_s=window_s,
                    session_id=session,
                )

        try:
            result = await asyncio.to_thread(run)
        except OSError as exc:
            return _error(400, f"cannot write to {out}: {exc.strerror or exc}")
        except ValueError as exc:
            return _error(400, str(exc))
        return web.json_response(
            {
                "directory": str(result.directory),
                "counts": result.counts,
                "session_id": result.snapshot["filter"]["session_id"],
            }
        )
