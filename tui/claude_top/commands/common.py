"""What every command shares: its exit codes and opening the database with a one-line error."""

from __future__ import annotations

import sys

from claude_top.core.store.database import Store, StoreError

EXIT_OK = 0
EXIT_USAGE = 2
"""Bad options, or a database or folder that cannot be used: one line on stderr says why."""


def fail(command: str, message: str) -> int:
    """Print `claude-top[ command]: message` on stderr; returns EXIT_USAGE."""
    print(f"claude-top{' ' + command if command else ''}: {message}", file=sys.stderr)
    return EXIT_USAGE


def age_option(seconds: int) -> str:
    """Seconds as an AGE option reads them: 30d, 12h, 90m, 45s."""
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % n == 0:
            return f"{seconds // n}{unit}"
    return f"{seconds}s"


def open_store(path: str, command: str = "", *, read_only: bool = False) -> Store | None:
    """The database at `path`, or None after printing why it cannot be opened."""
    try:
        return Store.open(path, read_only=read_only)
    except StoreError as exc:
        fail(command, str(exc))
        return None
