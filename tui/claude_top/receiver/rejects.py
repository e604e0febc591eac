"""One short line on stderr for a request the HTTP server refuses on its own (malformed HTTP,
headers too large): never a traceback, and at most one line every EVERY_S seconds, which says
how many more were refused since the last one."""

from __future__ import annotations

import logging
import sys
import time

EVERY_S = 10.0


class RejectLog(logging.Handler):
    """A logging handler printing rate-limited one-line notices."""

    def __init__(self, every_s: float = EVERY_S, stream=None) -> None:
        super().__init__(logging.WARNING)
        self.every_s = every_s
        self.stream = stream
        self.last = -float("inf")
        self.unsaid = 0

    def emit(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            self.unsaid += 1
            return
        more = f" ({self.unsaid} more since the last notice)" if self.unsaid else ""
        self.last, self.unsaid = now, 0
        if str(record.msg).startswith("Error handling request") and record.args:
            message = f"refused a malformed HTTP request from {record.args[0]}"
        else:
            try:
                message = f"HTTP server: {record.getMessage()}"
            except (TypeError, ValueError):
                message = f"HTTP server: {record.msg}"
        reason = record.exc_info[1] if record.exc_info and record.exc_info[1] else None
        detail = f": {_one_line(reason)}" if reason is not None else ""
        stream = self.stream or sys.stderr
        print(f"claude-top: {message}{detail}{more}", file=stream, flush=True)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("…" if len(text) > 200 else "")
