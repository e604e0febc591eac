"""What both listeners share: the hand-off of a validated export to the store writer (`Ingest`),
the errors a listener answers with, and the OTLP response of an accepted export."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from google.protobuf.message import Message

from claude_top.core.sources.otlp.decode import Export
from claude_top.core.sources.otlp.redact import Redactor
from claude_top.core.sources.otlp.signals import SIGNALS
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.security import bearer_matches

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


def export_response(export: Export) -> Message:
    """The Export*ServiceResponse for an accepted request: empty, or with partial_success."""
    signal = SIGNALS[export.signal]
    response = signal.response()
    if export.rejected:
        partial = response.partial_success
        setattr(partial, signal.rejected_field, export.rejected)
        partial.error_message = export.rejected_reason
    return response


class Ingest:
    """Check the sender, validate (and redact) off the loop when large, hand off to the writer,
    wait for the commit."""

    def __init__(
        self,
        writer: StoreWriter,
        token: str | None = None,
        redact: frozenset[str] = frozenset(),
    ) -> None:
        self.writer = writer
        self.token = token
        self.redactor = Redactor(redact) if redact else None
        self._decode_pool = ThreadPoolExecutor(1, thread_name_prefix="claude-top-decode")

    def authorized(self, authorization: str | None) -> bool:
        """Whether a request's `authorization` value lets it in (always, without a token)."""
        return self.token is None or bearer_matches(authorization, self.token)

    async def run(self, fn, body: bytes, *args):
        """Run an accept function (`accept_protobuf`/`accept_json`) with the redaction in
        effect, in the decode thread when the body is large."""
        if self.redactor is not None:
            fn = functools.partial(fn, redact=self.redactor)
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
