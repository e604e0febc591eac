"""The control API on the OTLP/HTTP listener: what other claude-top commands ask the running
instance for while it holds the database (`core.instance`). Every call carries the instance's
key from its private instance file; nothing here is reachable without it.

- `GET /instance`: what it is, where it listens, its writer's counters (an attached UI polls it
  to know when to query again).
- `POST /read`: one `Reader` query, in `core.wire` JSON (an attached UI's panes).
- `POST /export`: a CSV snapshot, as `claude-top export` or an attached UI's Ctrl-S asks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from claude_top import __version__
from claude_top.core import wire
from claude_top.core.export import SnapshotScope, export_scope, export_snapshot
from claude_top.core.instance import API_PREFIX, KEY_HEADER
from claude_top.core.queries.filters import parse_window
from claude_top.core.queries.reader import READ_METHODS, LocalSource
from claude_top.core.store.importer import ImportJob, TranscriptImporter
from claude_top.core.store.writer import StoreWriter

SYNC_TIMEOUT_S = 60.0


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


class Control:
    """Answers the control API for one store. `about()` adds what the listeners know (their
    endpoints, the env block that points Claude Code at them)."""

    def __init__(
        self,
        writer: StoreWriter,
        key: str,
        about: Callable[[], dict] | None = None,
        redact: frozenset[str] = frozenset(),
    ) -> None:
        self.writer = writer
        self.store = writer.store
        self.key = key
        self.about = about or dict
        self.source = LocalSource(self.store)
        self.redact = redact
        self.importer: TranscriptImporter | None = None
        """The instance's transcript importer (its tail's), shared so runs take turns."""
        self.jobs: dict[str, ImportJob] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(API_PREFIX + "/instance", self._guard(self.instance)),
            web.get(API_PREFIX + "/writer", self._guard(self.writer_progress)),
            web.post(API_PREFIX + "/read", self._guard(self.read)),
            web.post(API_PREFIX + "/export", self._guard(self.export)),
            web.post(API_PREFIX + "/import", self._guard(self.start_import)),
            web.get(API_PREFIX + "/import/{job}", self._guard(self.import_status)),
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
            {
                "app": "claude-top",
                "version": __version__,
                "db": self.store.path,
                "pid": os.getpid(),
                "stats": dataclasses.asdict(self.writer.stats),
                **self.about(),
            }
        )

    async def writer_progress(self, request: web.Request) -> web.Response:
        """The writer's counters, and how far the journal and the indexer have got."""
        doc = dataclasses.asdict(self.writer.stats)
        doc.update(self.writer.progress())
        return web.json_response(doc)

    async def read(self, request: web.Request) -> web.Response:
        """Run one `Reader` method: {method, args} -> its result."""
        try:
            doc = wire.loads(await request.read())
            method, args = doc["method"], doc["args"]
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, f"bad read request: {exc}")
        if method not in READ_METHODS or not isinstance(args, list):
            return _error(400, f"no such read: {method!r}")

        def run():
            with self.source.reader() as reader:
                return getattr(reader, method)(*args)

        try:
            result = await asyncio.to_thread(run)
        except TypeError as exc:
            return _error(400, f"bad read request: {exc}")
        return web.Response(body=wire.dumps(result), content_type=wire.CONTENT_TYPE)

    async def export(self, request: web.Request) -> web.Response:
        """Write a CSV snapshot: {out, since, session} as `claude-top export` would, or {base,
        scope, now_ns} as an attached UI's Ctrl-S (a new folder under `base`)."""
        try:
            doc = wire.loads(await request.read())
            if "scope" in doc:
                out = Path(doc["base"])
                scope = SnapshotScope.from_doc(doc["scope"])
                now_ns = int(doc.get("now_ns") or time.time_ns())
                parse_window(scope.window)
            else:
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
                if "scope" in doc:
                    return export_scope(cur, out, scope, db_path=self.store.path, now_ns=now_ns)
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
                "view": result.snapshot.get("view"),
            }
        )

    async def start_import(self, request: web.Request) -> web.Response:
        """Start an import as `claude-top import` would: {transcripts: [path], otlp: [file]}
        (absolute paths, read by this process); answers {job} to poll."""
        try:
            doc = await request.json()
            transcripts = [str(p) for p in doc.get("transcripts") or []]
            otlp = [str(p) for p in doc.get("otlp") or []]
        except (ValueError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            return _error(400, f"bad import request: {exc}")
        if not all(Path(p).is_absolute() for p in transcripts + otlp):
            return _error(400, "import paths must be absolute")
        if self.importer is None:
            self.importer = TranscriptImporter(self.store, redact=self.redact)
        job_id = secrets.token_hex(8)
        self.jobs[job_id] = ImportJob(
            self.importer, transcripts, otlp, self.writer, self.redact
        ).start()
        return web.json_response({"job": job_id})

    async def import_status(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job"])
        if job is None:
            return _error(404, "no such import")
        status = job.status()
        if status["done"]:
            self.jobs.pop(request.match_info["job"], None)
        return web.json_response(status)
