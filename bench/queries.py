"""Pane query latency at scale: p50/p95 of every `core.queries` call the UI makes each second,
and of a whole refresh of the main view (`ui.data.load_main`: every pane's queries in turn).

Each is timed twice: with DuckDB's cached table blocks kept between runs, and with them
released after each run, as the UI runs its queries (`Store.using`: the blocks are re-read from
the file, usually from the OS page cache).

Builds (once, cached in the given file) a store with N spans and N events shaped like Claude
Code's: 200 sessions, 3 models, 12 tools, turns of interaction -> llm_request/tool ->
blocked_on_user/execution, with api_request/tool_result/user_prompt events. Rows are generated
by DuckDB SQL straight into the store's tables (decoding 2M rows through Python would only time
the generator).

    python bench/queries.py [--rows 1000000] [--db /tmp/claude-top-bench-1m.duckdb] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from claude_top.core import queries
from claude_top.core.queries.reader import LocalSource
from claude_top.core.store import rollup
from claude_top.core.store.database import Store
from claude_top.ui.data import MainQuery, load_main

SESSIONS = 200
MODELS = ["claude-sonnet-4-5", "claude-opus-5-5", "claude-haiku-4-5"]
TOOLS = ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "Task", "WebFetch", "TodoWrite",
         "MultiEdit", "NotebookEdit", "WebSearch"]  # fmt: skip
SPAN_NAMES = ["claude_code.interaction", "claude_code.llm_request", "claude_code.tool",
              "claude_code.tool.blocked_on_user", "claude_code.tool.execution"]  # fmt: skip
SPAN_ROLES = ["interaction", "llm_request", "tool", "blocked_on_user", "execution"]
EVENT_KINDS = ["user_prompt", "api_request", "tool_decision", "tool_result", "assistant_response"]
EVENT_NAMES = ["claude_code.user_prompt", "claude_code.api_request", "claude_code.tool_decision",
               "claude_code.tool_result", "claude_code.assistant_response"]  # fmt: skip


def _list(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def build(store: Store, rows: int, now_ns: int) -> None:
    """Fill spans and events with `rows` rows each, spread over the last 7 days."""
    span_ns = 7 * 86400 * 10**9 // rows
    cur = store.cursor()
    cur.execute(f"""
        INSERT INTO spans
        SELECT
          ('\\x' || lpad(to_hex(i), 48, '0'))::BLOB AS uid,
          lpad(to_hex(i // 16), 32, '0') AS trace_id,
          lpad(to_hex(i), 16, '0') AS span_id,
          CASE WHEN i % 16 = 0 THEN NULL ELSE lpad(to_hex(i - i % 16), 16, '0') END,
          CASE WHEN i % 16 = 0 THEN 'claude_code.interaction'
               ELSE {_list(SPAN_NAMES[1:])}[1 + i % 4] END AS name,
          1, {now_ns} - i * {span_ns}, {now_ns} - i * {span_ns} + (i % 997) * 1000000,
          (i % 997)::DOUBLE,
          CASE WHEN i % 53 = 0 THEN 2 ELSE 0 END, NULL,
          'session-' || (i // 16 % {SESSIONS}), NULL,
          {_list(MODELS)}[1 + i % 3], {_list(TOOLS)}[1 + i % 12], 'toolu_' || i,
          1000 + i % 500, 80, 5000, 300, i % 53 <> 0, 1 + (i % 101 = 0)::INT, NULL, NULL,
          '{{"session.id":"session-' || (i // 16 % {SESSIONS}) || '","model":"m"}}',
          NULL, NULL, NULL, 'com.anthropic.claude_code.tracing', 'claude-code', {now_ns},
          'claude-code', CASE WHEN i % 16 = 0 THEN 'interaction'
               ELSE {_list(SPAN_ROLES[1:])}[1 + i % 4] END AS role
        FROM range({rows}) t(i)
    """)  # fmt: skip
    cur.execute(f"""
        INSERT INTO events
        SELECT
          ('\\x' || lpad(to_hex(i), 32, '0'))::BLOB,
          {_list(EVENT_NAMES)}[1 + i % 5] AS name,
          'session-' || (i // 16 % {SESSIONS}), 'prompt-' || (i // 16),
          {now_ns} - i * {span_ns}, i % 16, lpad(to_hex(i // 16), 32, '0'), NULL, NULL, NULL,
          {_list(MODELS)}[1 + i % 3], {_list(TOOLS)}[1 + i % 12], 'toolu_' || i,
          CASE WHEN i % 5 = 1 THEN 0.0001 * (1 + i % 97) END,
          CASE WHEN i % 5 = 1 THEN 1000 + i % 500 END, CASE WHEN i % 5 = 1 THEN 80 END,
          CASE WHEN i % 5 = 1 THEN 5000 END, CASE WHEN i % 5 = 1 THEN 300 END,
          (i % 997)::DOUBLE, i % 53 <> 0, 'accept', NULL, NULL, 'main',
          '{{"prompt":"do the thing number ' || i || '"}}', NULL,
          'com.anthropic.claude_code.events', 'claude-code', {now_ns},
          'claude-code', {_list(EVENT_KINDS)}[1 + i % 5] AS kind,
          CASE WHEN i % 5 = 1 THEN 'req_' || i END, 'otel',
          CASE WHEN i % 5 = 1 THEN 'reported' END, NULL
        FROM range({rows}) t(i)
    """)  # fmt: skip
    rollup.build(cur)  # rows made by SQL, not the writer: compute what the writer keeps
    cur.execute("CHECKPOINT")


def timed(fn, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", default="/tmp/claude-top-bench-1m.duckdb")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    now_ns = time.time_ns()
    fresh = not os.path.exists(args.db)
    store = Store.open(args.db)
    source = LocalSource(store)
    if fresh:
        t = time.perf_counter()
        build(store, args.rows, now_ns)
        print(f"built {args.rows} spans + {args.rows} events in {time.perf_counter() - t:.1f} s")
    cur = store.cursor()
    n_spans = cur.execute("SELECT count(*) FROM spans").fetchone()[0]
    n_events = cur.execute("SELECT count(*) FROM events").fetchone()[0]
    print(f"store: {n_spans:,} spans, {n_events:,} events ({args.db})")
    last = cur.execute("SELECT max(time_ns) FROM events").fetchone()[0]
    every = queries.Filter()
    hour = queries.Filter.for_window(3600, now_ns=last)
    session = cur.execute("SELECT session_id FROM events LIMIT 1").fetchone()[0]
    prompt = cur.execute(
        "SELECT prompt_id FROM events WHERE session_id = ? LIMIT 1", [session]
    ).fetchone()[0]
    one = queries.Filter(session_id=session)
    cases = [
        ("sessions (all time)", lambda: queries.sessions(cur, every)),
        ("sessions (1h)", lambda: queries.sessions(cur, hour)),
        ("models (all time)", lambda: queries.models(cur, every)),
        ("tools (all time)", lambda: queries.tools(cur, every)),
        ("tools (one session)", lambda: queries.tools(cur, one)),
        ("tool_durations (Bash)", lambda: queries.tool_durations(cur, every, "Bash")),
        ("overview (all time)", lambda: queries.overview(cur, every)),
        ("turns (one session)", lambda: queries.turns(cur, session)),
        ("span_tree (one turn)", lambda: queries.span_tree(cur, session, prompt)),
        (
            "main refresh (24h)",
            lambda: load_main(source, MainQuery("24h", last, session_id=session)),
        ),
        (
            "main refresh (all time)",
            lambda: load_main(source, MainQuery("all", last, session_id=session)),
        ),
    ]

    def released(fn):
        def run():
            with store.using():  # as the UI runs it: cached blocks dropped when it ends
                fn()

        return run

    print(f"{'':28} {'cached blocks':>17}  {'blocks released':>17}")
    print(f"{'query':28} {'p50 ms':>8} {'p95 ms':>8}  {'p50 ms':>8} {'p95 ms':>8}")
    for name, fn in cases:
        with store.using():  # held open: nothing is released in between
            p50, p95 = timed(fn, args.repeat)
        c50, c95 = timed(released(fn), args.repeat)
        print(f"{name:28} {p50:8.1f} {p95:8.1f}  {c50:8.1f} {c95:8.1f}")
    store.close()


if __name__ == "__main__":
    main()
