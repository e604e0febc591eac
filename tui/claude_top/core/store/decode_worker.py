"""What runs in the decode worker processes: journalled exports -> rows, the bulk of them
written to Parquet files in the writer's spool folder for DuckDB to read.

Kept apart from `store` so a worker imports the decoder and pyarrow, not DuckDB; and pyarrow is
imported only here, in the workers, so the UI process never loads it (about 20 MB).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass

from claude_top.core.schema import arrow_schema, column_names
from claude_top.core.sources.otlp.decode import Decoded, Export, decode_export
from claude_top.core.store.journal import Entry, read_body

SPOOLED_TABLES = ("spans", "events", "metric_points")
_METRIC_TYPE = column_names("metric_points").index("metric_type")
_TEMPORALITY = column_names("metric_points").index("temporality")


@dataclass(frozen=True)
class Spooled:
    """A table's rows of one export, written by a decode worker to a Parquet file."""

    path: str
    rows: int

    def __len__(self) -> int:
        return self.rows


def write_parquet(table: str, rows: list[tuple], path: str) -> None:
    """Row tuples (in `core.schema` order) as an uncompressed Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(table)
    columns = zip(*rows, strict=True)
    arrow = pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
        schema=schema,
    )
    part = f"{path}.{os.getpid()}.part"  # a stale worker's late write never shows half a file
    pq.write_table(arrow, part, compression="none")
    os.replace(part, path)


def is_cumulative_sum(row: tuple) -> bool:
    """A metric_points row whose increment the writer derives from its series' last total."""
    return row[_METRIC_TYPE] == "sum" and row[_TEMPORALITY] == "cumulative"


def decode_for_index(entry: Entry, spool_dir: str | None = None) -> Decoded:
    """Decode a journalled export (runs in the decode worker). With `spool_dir`, spans, events
    and metric points are written there as Parquet (`Spooled`), except cumulative sums, which
    the writer turns into increments from its series state; a spool that cannot be written
    leaves the rows as tuples."""
    export = Export(entry.signal, read_body(entry), entry.records, received_ns=entry.received_ns)
    decoded = decode_export(export)
    if spool_dir is None:
        return decoded
    for table in SPOOLED_TABLES:
        rows = decoded.rows[table]
        if not rows or (table == "metric_points" and any(map(is_cumulative_sum, rows))):
            continue
        path = os.path.join(spool_dir, f"{entry.seq}-{table}.parquet")
        try:
            write_parquet(table, rows, path)
        except OSError:
            continue
        decoded.rows[table] = Spooled(path, len(rows))
    return decoded


def decode_here(entries: list[Entry]) -> list[Decoded | Exception]:
    """Decode journal entries in this process, rows as tuples; a failure is returned in its
    entry's place."""
    out: list[Decoded | Exception] = []
    for entry in entries:
        try:
            out.append(decode_for_index(entry))
        except Exception as exc:
            out.append(exc)
    return out


def init_decode_worker(parent_pid: int) -> None:
    """Indexing is background work: acknowledgements and the UI come first. The worker also
    exits with claude-top however that ends (a killed process cannot shut its pool down), and
    leaves Ctrl-C (sent to the whole process group) to claude-top, which stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(10)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)
