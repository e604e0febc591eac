"""`claude-top serve` as a separate process on ephemeral ports, for tests that need a real one."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path

LISTENING = re.compile(r"OTLP/gRPC on 127\.0\.0\.1:(\d+)")


def start_serve(db: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    """Start serve on `db`; returns the process and its gRPC port once it listens."""
    args = ("serve", "--db", str(db), "--grpc-port", "0", "--http-port", "0", *extra)
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_top.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out = b""
    deadline = time.monotonic() + 60
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout.fileno(), selectors.EVENT_READ)
        while b"OTEL_TRACES_EXPORT_INTERVAL" not in out:
            remaining = deadline - time.monotonic()
            ready = remaining > 0 and sel.select(remaining)
            chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                proc.kill()
                _, err = proc.communicate()
                raise AssertionError(f"serve did not start: {out!r} {err!r}")
            out += chunk
    return proc, int(LISTENING.search(out.decode())[1])
