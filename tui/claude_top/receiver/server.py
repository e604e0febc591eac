"""Both OTLP listeners on the running asyncio loop, sharing one hand-off to the store writer.

A request is acknowledged only after its rows are committed. When the writer is behind, the
exporter is told to retry (gRPC UNAVAILABLE, HTTP 503 + Retry-After); nothing acknowledged is
ever dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from claude_top.core.connect import endpoint_host, env_block
from claude_top.core.decode import Export
from claude_top.core.store import StoreWriter

DEFAULT_MAX_BODY = 16 * 1024 * 1024
INLINE_DECODE_BYTES = 32 * 1024


class PortInUse(OSError):
    """A listener's port is taken."""

    def __init__(self, port: int, what: str, flag: str) -> None:
        self.port = port
        super().__init__(
            f"port {port} ({what}) is already in use: another claude-top or OTLP collector is "
            f"listening there; stop it, or pick another port with {flag}"
        )


class WriteFailed(RuntimeError):
    """The store could not commit; the exporter should retry."""


@dataclass
class ReceiverConfig:
    """Where to listen and how much to accept."""

    bind: str = "127.0.0.1"
    grpc_port: int = 4317
    http_port: int = 4318
    max_body: int = DEFAULT_MAX_BODY


class Ingest:
    """Validate off the loop when large, hand off to the writer, wait for the commit."""

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer
        self._decode_pool = ThreadPoolExecutor(1, thread_name_prefix="claude-top-decode")

    async def run(self, fn, body: bytes, *args):
        """Run a validating function, in the decode thread when the body is large."""
        if len(body) < INLINE_DECODE_BYTES:
            return fn(*args, body)
        return await asyncio.get_running_loop().run_in_executor(self._decode_pool, fn, *args, body)

    async def commit(self, export: Export) -> None:
        """Resolve once `export` is committed. Raises Backpressure or WriteFailed."""
        future = self.writer.submit(export)
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:
            raise WriteFailed(f"store write failed: {exc}") from exc

    def close(self) -> None:
        self._decode_pool.shutdown(wait=False)


class Receivers:
    """The OTLP/gRPC and OTLP/HTTP listeners of one claude-top process."""

    def __init__(self, writer: StoreWriter, config: ReceiverConfig | None = None) -> None:
        self.config = config or ReceiverConfig()
        self.ingest = Ingest(writer)
        self._grpc = None
        self._http = None
        self.grpc_port: int | None = None
        self.http_port: int | None = None

    async def start(self) -> None:
        """Start both listeners on the running loop. Raises PortInUse."""
        from claude_top.receiver.grpc_service import start_grpc
        from claude_top.receiver.http_service import start_http

        cfg = self.config
        self._grpc, self.grpc_port = await start_grpc(self.ingest, cfg)
        try:
            self._http, self.http_port = await start_http(self.ingest, cfg)
        except BaseException:
            await self._grpc.stop(0)
            self._grpc = None
            raise

    @property
    def endpoints(self) -> dict[str, str]:
        host = endpoint_host(self.config.bind)
        return {"grpc": f"{host}:{self.grpc_port}", "http": f"http://{host}:{self.http_port}"}

    def env_block(self, protocol: str = "grpc") -> dict[str, str]:
        return env_block(
            self.config.bind,
            self.grpc_port or self.config.grpc_port,
            self.http_port or self.config.http_port,
            protocol,
        )

    async def stop(self, grace: float = 1.0) -> None:
        """Stop accepting; in-flight exports finish within `grace` seconds."""
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.cleanup()
            self._http = None
        if self._grpc is not None:
            with contextlib.suppress(Exception):
                await self._grpc.stop(grace)
            self._grpc = None
        self.ingest.close()
