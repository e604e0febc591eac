"""What runs in the decode worker processes: journalled exports -> rows, big tables as Arrow.

Kept apart from `store` so a worker imports the decoder and pyarrow, not DuckDB.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pyarrow as pa

from claude_top.core.decode import Decoded, Export, decode_export
from claude_top.core.journal import Entry, read_body
from claude_top.core.schema import arrow_schema


def to_arrow(table: str, rows: list[tuple]) -> pa.Table:
    """Row tuples (in `core.schema` order) as an Arrow table for a bulk insert."""
    schema = arrow_schema(table)
    columns = zip(*rows, strict=True)
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
        schema=schema,
    )


def decode_for_index(entry: Entry) -> Decoded:
    """Decode a journalled export, spans and events already as Arrow (runs in the decode worker)."""
    export = Export(entry.signal, read_body(entry), entry.records, received_ns=entry.received_ns)
    decoded = decode_export(export)
    for table in ("spans", "events"):
        if decoded.rows[table]:
            decoded.rows[table] = to_arrow(table, decoded.rows[table])
    return decoded


def decode_here(entries: list[Entry]) -> list[Decoded | Exception]:
    """Decode journal entries in this process; a failure is returned in its entry's place."""
    out: list[Decoded | Exception] = []
    for entry in entries:
        try:
            out.append(decode_for_index(entry))
        except Exception as exc:
            out.append(exc)
    return out


def init_decode_worker(parent_pid: int) -> None:
    """Indexing is background work: acknowledgements and the UI come first. The worker also
    exits with claude-top however that ends (a killed process cannot shut its pool down)."""
    with contextlib.suppress(OSError):
        os.nice(10)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)
