"""OTLP JSON lines: what the OpenTelemetry Collector's `file` exporter writes, one
Export{Trace,Metrics,Logs}ServiceRequest as OTLP/JSON a line. Each line is validated as the
OTLP/HTTP listener validates a JSON body (`accept_json`), so it takes the normal way in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from claude_top.core.sources.otlp.decode import DecodeFailure, Export, accept_json
from claude_top.core.sources.otlp.redact import Redactor

MAX_LINE_BYTES = 256 << 20
"""A Collector batch can be large; longer lines are skipped, never held."""
_HEAD = re.compile(rb'^\s*\{\s*"resource_?(spans|logs|metrics)"', re.IGNORECASE)


def is_otlp_lines(path: str | Path) -> bool:
    """Whether a file's first line starts an OTLP/JSON export request."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return bool(_HEAD.match(head))


def read_lines(
    path: str | Path, redact: Redactor | None = None
) -> Iterator[tuple[int, int, Export | None, str]]:
    """(line number, bytes, the validated export or None, why not) for each non-blank line.
    Raises OSError if the file cannot be read."""
    with open(path, "rb") as fh:
        n = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            n += 1
            size = len(raw)
            if not raw.endswith(b"\n") and len(raw) > MAX_LINE_BYTES:
                while chunk := fh.readline(1 << 20):
                    size += len(chunk)
                    if chunk.endswith(b"\n"):
                        break
                yield n, size, None, f"line longer than {MAX_LINE_BYTES >> 20} MB"
                continue
            body = raw.strip()
            if not body:
                continue
            try:
                yield n, size, accept_json(None, body, redact), ""
            except DecodeFailure as exc:
                yield n, size, None, str(exc)
