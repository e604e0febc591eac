"""Loopback helpers for the end-to-end tests: a background event loop, a tripwire, a wiretap."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine
from typing import Any


class LoopThread:
    """An asyncio loop in a daemon thread; `call()` runs a coroutine there and waits for it."""

    def __init__(self, name: str = "e2e-loopback") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


async def _listen(handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class Tripwire:
    """A would-be HTTP(S) proxy that answers nothing: set as HTTPS_PROXY, it records the first
    line of every attempt to reach the outside world (`CONNECT api.anthropic.com:443 ...`)."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.port: int | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
        except (TimeoutError, OSError):
            line = b"(no request line)"
        self.attempts.append(line.decode("latin-1").strip())
        writer.close()

    async def start(self) -> None:
        self._server, self.port = await _listen(self._handle)

    async def stop(self) -> None:
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_REQUEST = re.compile(rb"(POST|GET|PUT) (\S+) HTTP/1\.[01]\r\n(.*?)\r\n\r\n", re.DOTALL)
_CTYPE = re.compile(rb"^content-type:\s*([^;\r\n]+)", re.IGNORECASE | re.MULTILINE)


class Wiretap:
    """A TCP relay in front of a local port that keeps what each client connection sent, so a
    test can tell which protocol an exporter really spoke."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.streams: list[bytearray] = []
        self.port: int | None = None

    async def _pipe(self, src, dst, keep: bytearray | None) -> None:
        try:
            while data := await src.read(65536):
                if keep is not None:
                    keep += data
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kept = bytearray()
        self.streams.append(kept)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, kept), self._pipe(up_reader, writer, None)
        )

    async def start(self) -> None:
        self._server, self.port = await _listen(self._handle)

    async def stop(self) -> None:
        self._server.close()

    def http_requests(self) -> list[tuple[str, str | None]]:
        """(path, content type) of every HTTP/1.1 request the clients sent."""
        out = []
        for stream in self.streams:
            for m in _REQUEST.finditer(bytes(stream)):
                ctype = _CTYPE.search(m.group(3))
                out.append(
                    (m.group(2).decode(), ctype.group(1).decode().strip() if ctype else None)
                )
        return out

    def http2_connections(self) -> int:
        """Connections that opened with the HTTP/2 preface (gRPC)."""
        return sum(1 for s in self.streams if bytes(s).startswith(HTTP2_PREFACE))
