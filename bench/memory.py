"""Where the UI process's memory goes, attributed inside one process (Linux, glibc).

1. Imports, one library at a time in the order claude-top loads them: the RSS each adds, split
   into anonymous memory (private) and pages of mapped files (shared libraries' code and data,
   shared with other processes and reclaimable by the kernel).
2. The store opened on a copy of the 1M-span / 1M-event database of bench/queries.py, then the
   main view's refresh (`ui.data.load_main`, window "all", on a worker thread as the UI runs it
   each second) repeated `--refreshes` times back to back. At points along the way: RSS,
   DuckDB's own accounting (`duckdb_memory()`: mostly the table blocks the refresh reads, kept
   in its buffer pool while under `memory_limit`), the nodes in DuckDB's buffer eviction queues
   (`duckdb_eviction_queues()`: one per unpinned buffer, purged only once a queue holds about
   32k) and the bytes glibc malloc has in use (DuckDB's own objects, such as those nodes, and
   Python's larger ones).

    python bench/memory.py [--db /tmp/claude-top-bench-1m.duckdb] [--refreshes 1500]
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

IMPORTS = [
    "duckdb",
    "grpc",
    "aiohttp.web",
    "textual.app",
    "textual_plotext",
    "claude_top.ui.app",
    "claude_top.receiver.server",
]


def rollup_mb() -> tuple[float, float]:
    """(anonymous, mapped files) MB of this process, from /proc/self/smaps_rollup."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split()[:2]
        fields[key.rstrip(":")] = int(value)
    anon = fields.get("Anonymous", 0)
    return anon / 1024, (fields.get("Rss", 0) - anon) / 1024


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def malloc_in_use_mb() -> float | None:
    """Bytes glibc malloc has handed out and not had back (all arenas), or None."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Mallinfo2
    info = fn()
    return (info.uordblks + info.hblkhd) / 2**20


def duckdb_mb(cur) -> str:
    rows = cur.execute(
        "SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0 "
        "ORDER BY memory_usage_bytes DESC"
    ).fetchall()
    return ", ".join(f"{tag} {b / 2**20:.1f}" for tag, b in rows) or "nothing"


def eviction_nodes(cur) -> str:
    try:
        sizes = [r[0] for r in cur.execute(
            "SELECT approximate_size FROM duckdb_eviction_queues() ORDER BY queue_index"
        ).fetchall()]  # fmt: skip
    except Exception:  # older DuckDB: no such function
        return "n/a"
    return f"{sum(sizes):,} ({' '.join(str(s) for s in sizes)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", default="/tmp/claude-top-bench-1m.duckdb", help="1M-row bench DB")
    ap.add_argument("--refreshes", type=int, default=1500)
    args = ap.parse_args()
    if not os.path.exists(args.db):
        raise SystemExit(f"no {args.db}: build it with `python bench/queries.py --db {args.db}`")
    print(f"machine              {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    anon0, file0 = rollup_mb()
    print(f"{'import':28} {'anon MB':>8} {'files MB':>9}")
    print(f"{'(python itself)':28} {anon0:8.1f} {file0:9.1f}")
    for name in IMPORTS:
        importlib.import_module(name)
        anon, files = rollup_mb()
        print(f"{'+ ' + name:28} {anon - anon0:+8.1f} {files - file0:+9.1f}")
        anon0, file0 = anon, files

    from claude_top.core.queries.reader import LocalSource
    from claude_top.core.store.database import Store
    from claude_top.ui.data import MainQuery, load_main

    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "1m.duckdb")
        shutil.copy(args.db, db)
        store = Store.open(db)
        source = LocalSource(store)
        cur = store.cursor()
        limit, threads = cur.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        ).fetchone()
        print(f"\nstore opened: DuckDB {sys.modules['duckdb'].__version__}, memory_limit {limit}, "
              f"threads {threads}")  # fmt: skip
        last = cur.execute("SELECT max(time_ns) FROM events").fetchone()[0]
        session = cur.execute("SELECT session_id FROM events LIMIT 1").fetchone()[0]
        query = MainQuery("all", last, session_id=session)
        malloc0 = malloc_in_use_mb()

        def report(label: str) -> None:
            anon, files = rollup_mb()
            in_use = malloc_in_use_mb()
            grown = "" if in_use is None else f", malloc in use {in_use - malloc0:+.0f} MB"
            print(f"{label:16} RSS {anon + files:5.0f} MB (anon {anon:4.0f}, files {files:3.0f})"
                  f"{grown}; DuckDB MB: {duckdb_mb(cur)}; eviction queue nodes "
                  f"{eviction_nodes(cur)}", flush=True)  # fmt: skip

        report("opened")
        step = max(1, args.refreshes // 5)
        checkpoints = {1, 10, *range(step, args.refreshes + 1, step)}
        elapsed: list[float] = []
        with ThreadPoolExecutor() as pool:
            for i in range(1, args.refreshes + 1):
                t = time.perf_counter()
                pool.submit(load_main, source, query).result()
                elapsed.append((time.perf_counter() - t) * 1000)
                if i in checkpoints:
                    report(f"{i} refreshes")
        print(f"refresh p50 {statistics.median(elapsed):.0f} ms")
        cur.close()
        store.close()


if __name__ == "__main__":
    main()
