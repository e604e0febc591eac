"""The rollups the sessions and turns panes read stay exactly what the stored rows give: written
export by export (in order, reversed, redelivered, through the decode workers' Parquet), after
a prune, across hour edges, and when an older database is opened."""

from __future__ import annotations

import math
import zlib

import duckdb
import pytest

from claude_top.core import queries as Q
from claude_top.core.schema import SCHEMA_VERSION, column_names
from claude_top.core.sources.otlp.decode import Decoded, accept_protobuf, decode_protobuf
from claude_top.core.store import rollup
from claude_top.core.store.commit import _STAGE, Committer, write_rows
from claude_top.core.store.database import Store, StoreError
from claude_top.core.store.writer import StoreWriter
from truth import GRPC_FIXTURES, grpc_requests

HOUR = rollup.BUCKET_NS
SHIFTED = {
    "events": ("time_ns",),
    "spans": ("start_ns", "end_ns"),
    "metric_points": ("start_ns", "time_ns"),
}


def _norm(v):
    return round(v, 9) if isinstance(v, float) and math.isfinite(v) else v


def rollup_rows(cur: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every rollup table's rows, in one order, lists sorted (floats to 9 places)."""
    out = {}
    for table in rollup.ALL_TABLES:
        rows = cur.execute(f"SELECT * FROM {table}").fetchall()
        out[table] = sorted(
            (tuple(_norm(v) for v in r) for r in rows), key=lambda r: tuple(map(repr, r))
        )
    for r in out["session_hours"]:
        assert r[15] is None or r[15] == sorted(r[15])
    return out


def rebuilt(cur: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """The rollups recomputed from every stored row (rolled back afterwards)."""
    cur.begin()
    try:
        rollup.build(cur)
        return rollup_rows(cur)
    finally:
        cur.rollback()


def spread(d: Decoded) -> Decoded:
    """The same rows with times moved 0-3 x 40 minutes by uid: one turn's and one trace's
    rows land in different hours, children before their parents."""
    for table, cols in SHIFTED.items():
        names = column_names(table)
        idx = [names.index(c) for c in cols]
        rows = []
        for r in d.rows.get(table, []):
            r = list(r)
            shift = (zlib.crc32(r[0]) % 4) * 40 * 60 * 10**9
            for i in idx:
                r[i] = None if r[i] is None else r[i] + shift
            rows.append(tuple(r))
        d.rows[table] = rows
    return d


def exports(order: str = "in order") -> list[tuple[str, bytes]]:
    out = [req for name in GRPC_FIXTURES for req in grpc_requests(name)]
    if order == "reversed":
        out.reverse()
    if order == "each twice":
        out = [req for req in out for _ in range(2)]
    return out


@pytest.mark.parametrize("order", ["in order", "reversed", "each twice"])
def test_rollups_written_export_by_export_equal_a_rebuild(order):
    store = Store.open(":memory:")
    cur = store.cursor()
    for signal, body in exports(order):
        write_rows(store, [spread(decode_protobuf(signal, body))])
    got = rollup_rows(cur)
    assert got == rebuilt(cur)
    assert len(got["session_hours"]) == 30
    assert len(got["prompt_turns"]) == 4  # the fixtures' prompts
    assert len(got["trace_turns"]) == 4  # and their interaction traces
    hours = {r[1] for r in got["session_hours"]}
    assert len(hours) == 3  # the fixtures' one hour, spread over three
    store.close()


def test_rollups_written_through_the_decode_workers_equal_a_rebuild(tmp_path):
    store = Store.open(tmp_path / "ct.duckdb")
    writer = StoreWriter(store)
    for signal, body in exports("each twice"):
        writer.submit(accept_protobuf(signal, body)).result(10)
    assert writer.sync(60)
    writer.close()
    cur = store.cursor()
    got = rollup_rows(cur)
    assert got == rebuilt(cur)
    assert len(got["prompt_turns"]) == 4
    assert len(got["trace_turns"]) == 4
    store.close()


def test_a_prune_leaves_the_rollups_as_a_rebuild():
    store = Store.open(":memory:")
    cur = store.cursor()
    for signal, body in exports():
        write_rows(store, [spread(decode_protobuf(signal, body))])
    times = sorted(
        t
        for (t,) in cur.execute(
            "SELECT time_ns FROM events UNION ALL SELECT start_ns FROM spans"
        ).fetchall()
    )
    before = times[len(times) // 2]
    assert store.prune(before) > 0
    got = rollup_rows(cur)
    assert got == rebuilt(cur)
    assert min(r[3] for r in got["session_hours"]) >= before
    store.close()


ORACLE = """
WITH ev AS (
  SELECT session_id, min(time_ns) f, max(time_ns) l,
    count(*) FILTER (WHERE name = 'claude_code.user_prompt') up,
    count(*) FILTER (WHERE name = 'claude_code.api_request') api,
    sum(cost_usd) FILTER (WHERE name = 'claude_code.api_request') cost,
    sum(input_tokens) FILTER (WHERE name = 'claude_code.api_request') inp,
    sum(cache_read_tokens) FILTER (WHERE name = 'claude_code.api_request') cr,
    count(*) FILTER (WHERE name = 'claude_code.tool_result') tc,
    count(*) FILTER (WHERE name = 'claude_code.tool_result' AND success = false) te,
    string_agg(DISTINCT model, ', ' ORDER BY model)
      FILTER (WHERE name = 'claude_code.api_request') models
  FROM events WHERE session_id IS NOT NULL AND time_ns >= $since GROUP BY ALL
), sp AS (
  SELECT session_id, min(start_ns) f, max(coalesce(end_ns, start_ns)) l,
    count(*) FILTER (WHERE name = 'claude_code.interaction') n
  FROM spans WHERE session_id IS NOT NULL AND start_ns >= $since GROUP BY ALL
), mp AS (
  SELECT session_id, min(time_ns) f, max(time_ns) l,
    sum(increment) FILTER (WHERE name = 'claude_code.cost.usage') cost
  FROM metric_points WHERE session_id IS NOT NULL AND time_ns >= $since GROUP BY ALL
)
SELECT session_id, least(ev.f, sp.f, mp.f), greatest(ev.l, sp.l, mp.l),
  coalesce(ev.up, 0), coalesce(sp.n, 0), coalesce(ev.api, 0), coalesce(ev.cost, 0),
  coalesce(ev.inp, 0), coalesce(ev.cr, 0), coalesce(ev.tc, 0), coalesce(ev.te, 0),
  coalesce(ev.models, ''), mp.cost
FROM ev FULL JOIN sp USING (session_id) FULL JOIN mp USING (session_id)
"""


def test_windows_starting_inside_an_hour_count_each_row_once():
    """Whole hours come from the rollup and the part-hour the window starts in from the rows:
    every window start, at and beside every row's time and every hour edge, gives what a scan
    of the rows gives."""
    store = Store.open(":memory:")
    cur = store.cursor()
    for signal, body in exports():
        write_rows(store, [spread(decode_protobuf(signal, body))])
    times = [t for (t,) in cur.execute("SELECT time_ns FROM events").fetchall()]
    first = min(times) - min(times) % HOUR
    starts = {t + d for t in times for d in (-1, 0, 1)}
    starts |= {first + k * HOUR + d for k in range(4) for d in (-1, 0, 1)}
    windows_with_rows = 0
    for since in sorted(starts):
        want = {
            r[0]: tuple(_norm(v) for v in r[1:])
            for r in cur.execute(ORACLE, {"since": since}).fetchall()
        }
        got = {
            r["session_id"]: tuple(
                _norm(v)
                for v in (
                    r["first_seen_ns"],
                    r["last_seen_ns"],
                    r["user_prompts"],
                    r["prompts"] if not r["user_prompts"] else 0,
                    r["api_requests"],
                    r["cost_usd"],
                    r["input_tokens"],
                    r["cache_read_tokens"],
                    r["tool_calls"],
                    r["tool_errors"],
                    r["models"],
                    r["metric_cost_usd"],
                )
            )
            for r in Q.sessions(cur, Q.Filter(since_ns=since))
        }
        for sid, w in want.items():  # the oracle's interaction count only matters without prompts
            want[sid] = (*w[:3], w[3] if not w[2] else 0, *w[4:])
        assert got == want, since
        windows_with_rows += bool(want)
    assert windows_with_rows > 100
    store.close()


def _as_v1(path) -> dict[str, list[tuple]]:
    """Make a store at `path` look like one written by schema v1; returns its rollups."""
    store = Store.open(path)
    for signal, body in exports():
        write_rows(store, [decode_protobuf(signal, body)])
    cur = store.cursor()
    before = rollup_rows(cur)
    for table in rollup.ALL_TABLES:
        cur.execute(f"DROP TABLE {table}")
    cur.execute("UPDATE claude_top_meta SET value = '1' WHERE key = 'schema_version'")
    store.close()
    return before


def test_a_v1_database_gains_its_rollups_when_opened(tmp_path):
    path = tmp_path / "ct.duckdb"
    before = _as_v1(path)
    with pytest.raises(StoreError, match="schema v1; open it once"):
        Store.open(path, read_only=True)
    store = Store.open(path)
    cur = store.cursor()
    assert rollup_rows(cur) == before
    assert len(before["prompt_turns"]) == 4
    version = cur.execute(
        "SELECT value FROM claude_top_meta WHERE key = 'schema_version'"
    ).fetchone()[0]
    assert version == str(SCHEMA_VERSION)
    store.close()
    Store.open(path, read_only=True).close()


NEW_IN_V3 = {
    "events": ("agent", "kind", "request_id", "source", "cost_source", "project"),
    "spans": ("agent", "role"),
    "metric_points": ("agent",),
}


def test_a_v2_database_gains_agents_kinds_and_sources_when_opened(tmp_path):
    """v2 -> v3: the new columns are filled from what the rows hold, exactly as the decoder
    fills them for new rows, and the rollups are rebuilt from the rows."""
    path = tmp_path / "ct.duckdb"
    store = Store.open(path)
    for signal, body in exports():
        write_rows(store, [decode_protobuf(signal, body)])
    cur = store.cursor()
    before = rollup_rows(cur)
    decoded = {
        table: cur.execute(f"SELECT uid, {', '.join(cols)} FROM {table} ORDER BY uid").fetchall()
        for table, cols in NEW_IN_V3.items()
    }
    assert {r[2] for r in decoded["events"]} >= {"api_request", "user_prompt", "tool_result"}
    for table, cols in NEW_IN_V3.items():
        for col in cols:
            cur.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
    cur.execute("UPDATE claude_top_meta SET value = '2' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(StoreError, match="schema v2; open it once"):
        Store.open(path, read_only=True)
    store = Store.open(path)
    cur = store.cursor()
    for table, cols in NEW_IN_V3.items():
        got = cur.execute(f"SELECT uid, {', '.join(cols)} FROM {table} ORDER BY uid").fetchall()
        assert got == decoded[table], table
    assert rollup_rows(cur) == before
    store.close()


def test_a_commit_keeps_no_copy_of_its_batch():
    """Rows bound as lists are staged in a temporary table for the rollups; it is dropped once
    they have read it (a backlog's batch would otherwise stay in memory until the next one)."""
    store = Store.open(":memory:")
    committer = Committer(store)
    for signal, body in exports():
        committer.commit([decode_protobuf(signal, body)])
    temp = committer.cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary ORDER BY 1"
    ).fetchall()
    assert _STAGE not in {name for (name,) in temp}
    assert {name for (name,) in temp} >= {"rollup_touched_spans", "rollup_touched_events"}
    store.close()


def _other_agents() -> list[tuple[str, bytes]]:
    from test_agents import _genai_trace

    from truth import OTHER_AGENT_CAPTURES, capture_requests

    out = [req for path in OTHER_AGENT_CAPTURES.values() for req in capture_requests(path)]
    return [*out, ("traces", _genai_trace())]


def test_other_agents_rollups_written_export_by_export_equal_a_rebuild():
    store = Store.open(":memory:")
    cur = store.cursor()
    for signal, body in [*exports(), *_other_agents()]:
        write_rows(store, [spread(decode_protobuf(signal, body))])
    got = rollup_rows(cur)
    assert got == rebuilt(cur)
    assert len(got["prompt_turns"]) == 4 + 3  # Gemini's prompt, Codex's turn, Copilot's trace
    store.close()


def _rows(cur, table: str) -> list[tuple]:
    cols = [c for c in column_names(table) if c != "received_ns"]
    return cur.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY uid").fetchall()


def test_a_v3_database_reads_other_agents_again_when_opened(tmp_path, monkeypatch):
    """v3 -> v4: v3 named Gemini's and Codex's records by their service and read them by Claude
    Code's names (so they counted nowhere); opened by v4 they are read by the agents' rules,
    exactly as the decoder reads them now, and the rollups are rebuilt."""
    from claude_top.core.sources.otlp import decode

    requests = [*exports(), *_other_agents()]
    fresh = Store.open(":memory:")
    for signal, body in requests:
        write_rows(fresh, [decode_protobuf(signal, body)])
    want = {t: _rows(fresh.cursor(), t) for t in ("events", "spans", "metric_points")}
    fresh.close()

    real = decode.agent_of

    def v3_agent(service, scope):
        agent = real(service, scope)
        return agent if agent == "claude-code" or service == "claude-code" else service

    path = tmp_path / "ct.duckdb"
    store = Store.open(path)
    with monkeypatch.context() as m:
        m.setattr(decode, "agent_of", v3_agent)
        m.setattr(decode, "_READ_BY_RULES", frozenset())
        for signal, body in requests:
            write_rows(store, [decode_protobuf(signal, body)])
    cur = store.cursor()
    cur.execute("DELETE FROM events WHERE attributes LIKE '{\"from_span\"%'")  # v3 made none
    cur.execute("UPDATE spans SET role = NULL WHERE agent <> 'claude-code'")
    assert cur.execute("SELECT count(*) FROM events WHERE kind IS NOT NULL AND agent "
                       "IN ('gemini-cli', 'codex_exec')").fetchone() == (0,)  # fmt: skip
    for table in ("events", "spans"):
        cur.execute(f"ALTER TABLE {table} DROP COLUMN not_understood")
    cur.execute("UPDATE claude_top_meta SET value = '3' WHERE key = 'schema_version'")
    store.close()

    store = Store.open(path)
    cur = store.cursor()
    for table, rows in want.items():
        assert _rows(cur, table) == rows, table
    assert rollup_rows(cur) == rebuilt(cur)
    (sessions,) = cur.execute("SELECT count(DISTINCT session_id) FROM session_hours").fetchone()
    assert sessions == 4 + 3  # Claude Code's four, and Gemini's, Codex's, Copilot's


def test_a_v3_database_gains_the_transcript_tables_and_cost_sources_when_opened(tmp_path):
    """v3 -> v4: the transcript tables are created and session_hours gains the sums by cost
    source, rebuilt from the rows; transcripts can then be imported."""
    from claude_top.core.schema import TRANSCRIPT_TABLES
    from claude_top.core.store.importer import TranscriptImporter
    from truth import FIXTURES, TRANSCRIPT_SETS

    path = tmp_path / "ct.duckdb"
    store = Store.open(path)
    for signal, body in exports():
        write_rows(store, [decode_protobuf(signal, body)])
    cur = store.cursor()
    before = rollup_rows(cur)
    for table in TRANSCRIPT_TABLES:
        cur.execute(f"DROP TABLE {table}")
    for col in ("estimated_cost_usd", "unpriced_requests", "cost_sources"):
        cur.execute(f"ALTER TABLE session_hours DROP COLUMN {col}")
    cur.execute("UPDATE claude_top_meta SET value = '3' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(StoreError, match="schema v3; open it once"):
        Store.open(path, read_only=True)
    store = Store.open(path)
    cur = store.cursor()
    assert rollup_rows(cur) == before
    assert {r[1] for r in before["session_hours"]} and all(
        r[-1] == ["reported"] for r in before["session_hours"] if r[2] == "events" and r[7]
    )
    TranscriptImporter(store).run([FIXTURES / TRANSCRIPT_SETS["basic"][1]])
    assert rollup_rows(cur) == rebuilt(cur)
    store.close()
