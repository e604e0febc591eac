"""Memory of the UI while the keyboard walks its tables: the render caches stay bounded.

Runs the real `ClaudeTopApp` headless (`App.run_test`, Pilot) over a copy of the 1M-span /
1M-event database of bench/queries.py, window "all", and walks the cursor: each round goes down
199 rows and back up on the focused table (a session's turns), then 30 down and up on the next
pane. After each round it prints the process's anonymous memory, the size of every table's
render caches (cells, rows, row renderables, lines), the Python objects alive, the bytes glibc
malloc has in use and DuckDB's eviction-queue nodes.

    python bench/table_walk.py [--rounds 3] [--db /tmp/claude-top-bench-1m.duckdb] [--size 120x40]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import eviction_nodes, malloc_in_use_mb, rollup_mb

CACHES = ("_cell_render_cache", "_row_render_cache", "_row_renderable_cache", "_line_cache")


async def walk(db: str, rounds: int, cols: int, rows: int) -> None:
    from claude_top.core.store.database import Store
    from claude_top.ui.app import ClaudeTopApp
    from claude_top.ui.panes.table import KeyedTable

    store = Store.open(db)
    app = ClaudeTopApp(store, window="all")
    try:
        async with app.run_test(size=(cols, rows)) as pilot:
            await pilot.pause(3)
            anon0 = rollup_mb()[0]

            def report(label: str) -> None:
                gc.collect()
                tables = " ".join(
                    f"{t.id} {'/'.join(str(len(getattr(t, c))) for c in CACHES)}"
                    for t in app.screen.query(KeyedTable)
                )
                cur = store.cursor()
                nodes = eviction_nodes(cur)
                cur.close()
                in_use = malloc_in_use_mb()
                malloc = "" if in_use is None else f", malloc {in_use:.1f} MB"
                print(f"{label:9} anon {rollup_mb()[0] - anon0:+5.1f} MB; caches {tables}; "
                      f"{len(gc.get_objects()):,} objects{malloc}; eviction nodes {nodes}",
                      flush=True)  # fmt: skip

            report("start")
            for n in range(1, rounds + 1):
                for key in "j" * 199 + "k" * 199:
                    await pilot.press(key)
                await pilot.press("tab")
                for key in "j" * 30 + "k" * 30:
                    await pilot.press(key)
                await pilot.press("shift+tab")
                report(f"round {n}")
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db", default="/tmp/claude-top-bench-1m.duckdb", help="1M-row bench DB")
    ap.add_argument("--size", default="120x40", help="terminal size, COLSxROWS")
    args = ap.parse_args()
    if not os.path.exists(args.db):
        raise SystemExit(f"no {args.db}: build it with `python bench/queries.py --db {args.db}`")
    cols, rows = (int(x) for x in args.size.split("x"))
    print(f"machine              {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print("caches: cells/rows/row renderables/lines of each table; anon: since the start")
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "1m.duckdb")
        shutil.copy(args.db, db)
        asyncio.run(walk(db, args.rounds, cols, rows))


if __name__ == "__main__":
    main()
