"""What every command shares: its exit codes and opening the database with a one-line error.

Light to import (DuckDB loads only when a store is opened): `cli.py` imports it for every
command, `claude-top statusline` included, which must answer Claude Code within 300 ms.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claude_top.core.store.database import Store

EXIT_OK = 0
EXIT_USAGE = 2
"""Bad options, or a database or folder that cannot be used: one line on stderr says why."""


def fail(command: str, message: str) -> int:
    """Print `claude-top[ command]: message` on stderr; returns EXIT_USAGE."""
    print(f"claude-top{' ' + command if command else ''}: {message}", file=sys.stderr)
    return EXIT_USAGE


def open_store(path: str, command: str = "", *, read_only: bool = False) -> Store | None:
    """The database at `path`, or None after printing why it cannot be opened."""
    from claude_top.core.store.database import Store, StoreError

    try:
        return Store.open(path, read_only=read_only)
    except StoreError as exc:
        fail(command, str(exc))
        return None
