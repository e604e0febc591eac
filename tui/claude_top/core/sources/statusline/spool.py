"""The spool status-line samples wait in while no claude-top runs (standard library only: the
shim writes it on its hot path).

One JSON-lines file per claude-top HTTP port, in the user data directory (beside the default
database): the shim appends an envelope (`{"received_ns", "text"}`) and fsyncs it when no
claude-top answers; the next claude-top listening on that port takes them in at start
(`store.take_spool`) and empties the file. Appends and the take hold an advisory lock (flock)
where the platform has one; the file is never removed, so an append waiting for the lock never
lands in an unlinked file.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory lock; appends are single O_APPEND writes
    fcntl = None

SPOOL_MAX_BYTES = 1 << 20
"""The spool keeps the newest samples up to this size (a few hundred)."""
SPOOL_NAME = "statusline-spool-{port}.jsonl"


def spool_dir() -> Path:
    """The user data directory (where the default database lives)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("claude-top", appauthor=False))


def spool_path(port: int, directory: Path | None = None) -> Path:
    """The spool of the claude-top listening on HTTP `port`."""
    return (directory or spool_dir()) / SPOOL_NAME.format(port=port)


@contextlib.contextmanager
def locked(fd: int) -> Iterator[None]:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)


def append_spool(path: Path, item: dict, max_bytes: int = SPOOL_MAX_BYTES) -> None:
    """Append one envelope (a JSON line) and fsync it; past `max_bytes` the oldest lines are
    dropped so the newest samples are kept. Raises OSError."""
    line = json.dumps(item, separators=(",", ":")).encode() + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        with locked(fd):
            size = os.fstat(fd).st_size
            if size + len(line) > max_bytes:
                kept = _newest(os.pread(fd, size, 0), max_bytes // 2)
                os.ftruncate(fd, 0)
                os.write(fd, kept)
            os.write(fd, line)
            os.fsync(fd)
    finally:
        os.close(fd)


def _newest(data: bytes, budget: int) -> bytes:
    """The last whole lines of `data` that fit in `budget` bytes."""
    if len(data) <= budget:
        return data
    cut = data.find(b"\n", len(data) - budget)
    return b"" if cut < 0 else data[cut + 1 :]


def read_spool_lines(data: bytes) -> list[object]:
    """The envelopes of a spool's bytes; a line that is not JSON (a torn write) is kept as its
    text, so it is counted as a rejected sample rather than lost silently."""
    out: list[object] = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"text": line.decode("utf-8", "replace")})
    return out
