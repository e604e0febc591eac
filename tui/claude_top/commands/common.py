"""What every command shares: its exit codes, and opening the database and its writer with a
one-line error.

Light to import (DuckDB loads only when a store is opened): `cli.py` imports it for every
command, `claude-top statusline` included, which must answer Claude Code within 300 ms.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claude_top.core.store.database import Store
    from claude_top.core.store.writer import StoreWriter

TRANSCRIPTS_ENV = "CLAUDE_TOP_TRANSCRIPTS"

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


def open_store(
    path: str, command: str = "", *, read_only: bool = False, make_folder: bool = False
) -> Store | None:
    """The database at `path`, or None after printing why it cannot be opened. Its folder is
    made only with `make_folder` (the default path): a --db in a folder that does not exist is
    more likely a typo."""
    from claude_top.core.store.database import Store, StoreError

    try:
        return Store.open(path, read_only=read_only, make_folder=make_folder)
    except StoreError as exc:
        fail(command, str(exc))
        return None


def start_writer(store: Store, command: str = "", **options) -> StoreWriter | None:
    """The store's writer (journal and indexer), or None after printing why it cannot start
    (its journal or spool folder cannot be used); the store is closed then."""
    from claude_top.core.store.database import StoreError
    from claude_top.core.store.writer import StoreWriter

    try:
        return StoreWriter(store, **options)
    except (OSError, StoreError) as exc:
        store.close()
        fail(command, str(exc))
        return None


def transcript_roots(args) -> list[Path] | None:
    """The transcript folders `claude-top` / `serve` follow (None: off): `--transcripts`,
    else `$CLAUDE_TOP_TRANSCRIPTS` (folders separated by `:`, or `off`), else Claude Code's."""
    from claude_top.core.sources.transcripts.files import default_roots

    if getattr(args, "no_transcripts", False):
        return None
    given = getattr(args, "transcripts", None)
    if given:
        return [Path(p).expanduser().absolute() for p in given]
    env = os.environ.get(TRANSCRIPTS_ENV, "").strip()
    if env.lower() in ("off", "0", "no", "false", "none"):
        return None
    if env:
        return [Path(p).expanduser().absolute() for p in env.split(os.pathsep) if p]
    return default_roots()
