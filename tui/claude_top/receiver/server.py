"""Both OTLP listeners on the running asyncio loop, sharing one hand-off to the store writer.

A request is acknowledged only after its rows are committed. When the writer is behind, the
exporter is told to retry (gRPC UNAVAILABLE, HTTP 503 + Retry-After); nothing acknowledged is
ever dropped.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from claude_top.core.budgets import LimitSettings
from claude_top.core.connect import endpoint_host, env_block
from claude_top.core.instance import Instance, new_key, remove_instance, write_instance
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.control import Control
from claude_top.receiver.grpc_service import start_grpc
from claude_top.receiver.http_service import start_http
from claude_top.receiver.ingest import Ingest
from claude_top.receiver.statusline import StatusLineService

DEFAULT_MAX_BODY = 16 * 1024 * 1024


@dataclass
class ReceiverConfig:
    """Where to listen, how much to accept, who may send and what is redacted at ingest.

    `token`: senders must send `authorization: Bearer TOKEN`. `tls_cert`/`tls_key`: PEM files
    for both listeners. `redact`: kinds of `core.redact.KINDS`.
    """

    bind: str = "127.0.0.1"
    grpc_port: int = 4317
    http_port: int = 4318
    max_body: int = DEFAULT_MAX_BODY
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    redact: frozenset[str] = frozenset()
    http_idle_s: float = 30.0
    """An HTTP connection's next request headers must arrive within this of its opening or of
    its last response (so an idle keep-alive connection is closed after it too)."""
    http_body_stall_s: float = 15.0
    """The longest pause in a request body."""
    http_body_s: float = 120.0
    """The longest a request body may take."""

    @classmethod
    def from_args(cls, args) -> ReceiverConfig:
        """The config of `claude-top` / `claude-top serve` options."""
        return cls(
            bind=args.bind,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            max_body=args.max_body,
            token=getattr(args, "token", None),
            tls_cert=getattr(args, "tls_cert", None),
            tls_key=getattr(args, "tls_key", None),
            redact=frozenset(getattr(args, "redact", None) or ()),
        )

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)


class Receivers:
    """The OTLP/gRPC and OTLP/HTTP listeners of one claude-top process."""

    def __init__(
        self,
        writer: StoreWriter,
        config: ReceiverConfig | None = None,
        limits: LimitSettings | None = None,
    ) -> None:
        self.config = config or ReceiverConfig()
        self.ingest = Ingest(writer, self.config.token, self.config.redact)
        self.control = Control(writer, new_key(), self._about, self.config.redact)
        self.statusline = StatusLineService(
            writer, self.ingest, limits, self.config.redact, self.config.max_body
        )
        self.instance: Instance | None = None
        """Written beside a database file while listening, for other claude-top commands."""
        self._grpc = None
        self._http = None
        self.grpc_port: int | None = None
        self.http_port: int | None = None

    async def start(self) -> None:
        """Start both listeners on the running loop. Raises PortInUse."""
        cfg = self.config
        self._grpc, self.grpc_port = await start_grpc(self.ingest, cfg)
        try:
            self._http, self.http_port = await start_http(
                self.ingest, cfg, self.control, self.statusline.routes()
            )
        except BaseException:
            await self._grpc.stop(0)
            self._grpc = None
            raise
        self._announce()
        await self.statusline.take_spool(self.http_port)

    def _announce(self) -> None:
        """Write the instance file beside a database file (nothing for `:memory:`)."""
        store = self.control.store
        if store.path == ":memory:":
            return
        cfg = self.config
        host = endpoint_host(cfg.bind)
        instance = Instance(
            pid=os.getpid(),
            http=f"{'https' if cfg.tls else 'http'}://{host}:{self.http_port}",
            key=self.control.key,
            db=store.path,
            tls_cert=cfg.tls_cert if cfg.tls else None,
            token=cfg.token,
        )
        try:
            write_instance(instance)
        except OSError:
            return  # other commands then say the database is in use, as before
        self.instance = instance

    def _about(self) -> dict:
        """What the control API's `/instance` tells of the listeners."""
        return {"endpoints": self.endpoints, "env": self.env_block()}

    @property
    def endpoints(self) -> dict[str, str]:
        host = endpoint_host(self.config.bind)
        scheme = "https" if self.config.tls else "http"
        return {"grpc": f"{host}:{self.grpc_port}", "http": f"{scheme}://{host}:{self.http_port}"}

    def env_block(self, protocol: str = "grpc") -> dict[str, str]:
        cfg = self.config
        return env_block(
            cfg.bind,
            self.grpc_port or cfg.grpc_port,
            self.http_port or cfg.http_port,
            protocol,
            token=cfg.token,
            tls_cert=cfg.tls_cert if cfg.tls else None,
        )

    async def stop(self, grace: float = 1.0) -> None:
        """Stop accepting; in-flight exports finish within `grace` seconds."""
        if self.instance is not None:
            remove_instance(self.instance)
            self.instance = None
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.cleanup()
            self._http = None
        if self._grpc is not None:
            with contextlib.suppress(Exception):
                await self._grpc.stop(grace)
            self._grpc = None
        self.ingest.close()
