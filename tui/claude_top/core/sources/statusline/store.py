"""Status-line samples into the store: each call one short DuckDB transaction, and a caller
that acknowledges a sample does so only after that commit. A sample that cannot be parsed is
kept in `ingest_failed` (signal `statusline`) with the reason, as an undecodable export is.
`take_spool` stores what waited in the shim's spool (`spool.py`) while no claude-top ran.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from claude_top.core.schema import STATUSLINE_SAMPLES
from claude_top.core.sources.statusline.parse import (
    VIA_LIVE,
    VIA_SPOOL,
    Sample,
    SampleRejected,
    parse_sample,
    redact_paths,
)
from claude_top.core.sources.statusline.spool import locked, read_spool_lines
from claude_top.core.store.database import Store, transaction

_ROWS_PER_INSERT = 200
SIGNAL = "statusline"
"""The `ingest_failed.signal` of a sample that could not be parsed."""


@dataclass
class StoreResult:
    """What one call stored: rows new to the table, samples rejected whole, field problems."""

    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)


def envelope(text: str, received_ns: int) -> dict:
    """What the shim sends (and spools) for one sample: the text as received, and when."""
    return {"received_ns": received_ns, "text": text}


def parse_envelopes(items: Iterable[object], now_ns: int) -> Iterator[tuple[int, str | bytes]]:
    """(received_ns, text) of each envelope; a missing or future time becomes `now_ns` (a
    sample cannot arrive later than it is handed over)."""
    for item in items:
        if not isinstance(item, dict):
            yield now_ns, json.dumps(item)
            continue
        t = item.get("received_ns")
        if isinstance(t, bool) or not isinstance(t, int) or not 0 < t <= now_ns:
            t = now_ns
        text = item.get("text")
        yield t, text if isinstance(text, str) else json.dumps(text)


def store_samples(
    store: Store,
    items: Iterable[tuple[int, str | bytes]],
    *,
    via: str = VIA_LIVE,
    redact_paths_too: bool = False,
) -> StoreResult:
    """Parse and store samples ((received_ns, text) each) in one transaction; a sample that
    is not a JSON object goes to `ingest_failed`. Returns once committed."""
    result = StoreResult()
    rows: list[tuple] = []
    failed: list[tuple] = []
    for received_ns, text in items:
        try:
            sample: Sample = parse_sample(text, received_ns)
        except SampleRejected as exc:
            body = text.encode("utf-8", "replace") if isinstance(text, str) else bytes(text)
            failed.append((None, SIGNAL, received_ns, 1, f"status-line sample: {exc}", body))
            result.rejected += 1
            result.problems.append(str(exc))
            continue
        if redact_paths_too:
            sample = redact_paths(sample)
        rows.append(sample.row(via))
        result.problems += sample.problems
    if not rows and not failed:
        return result
    offered = len(rows)
    rows = list({row[0]: row for row in rows}.values())  # the same sample twice: once
    names = ", ".join(name for name, _ in STATUSLINE_SAMPLES)
    marks = "(" + ", ".join("?" for _ in STATUSLINE_SAMPLES) + ")"
    with store.reading() as cur, transaction(cur):
        for i in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[i : i + _ROWS_PER_INSERT]
            result.stored += len(
                cur.execute(
                    f"INSERT OR IGNORE INTO statusline_samples ({names}) VALUES "
                    + ", ".join(marks for _ in chunk)
                    + " RETURNING uid",
                    [v for row in chunk for v in row],
                ).fetchall()
            )
        if failed:
            cur.executemany("INSERT INTO ingest_failed VALUES (?, ?, ?, ?, ?, ?)", failed)
    result.duplicates = offered - result.stored
    return result


def take_spool(store: Store, path: Path, now_ns: int, redact_paths_too: bool = False):
    """Store every sample waiting in the spool at `path`, then empty it (only after the commit:
    a crash in between stores them again at the next start, once, by their uid). Returns the
    StoreResult, or None when there was no spool."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        with locked(fd):
            items = read_spool_lines(os.pread(fd, os.fstat(fd).st_size, 0))
            result = store_samples(
                store,
                parse_envelopes(items, now_ns),
                via=VIA_SPOOL,
                redact_paths_too=redact_paths_too,
            )
            os.ftruncate(fd, 0)
            os.fsync(fd)
    finally:
        os.close(fd)
    return result
