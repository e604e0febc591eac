"""Transcript facts into the `transcript_*` tables (inside a commit's transaction).

A fact is stored once by its natural key, whatever the line, file or read it came from: a
request by (session, request id), where another line of the same response can only raise a
token count it lacked (never add it again); a prompt by its prompt id (the first line wins);
a tool call by its tool_use id, its use and its result filling in the same row from
different lines; a cost-state total by (session, file, line, model). Each file's read state
is written in the same transaction as the facts it read, so a crash never loses or doubles a
line.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from claude_top.core.schema import TRANSCRIPT_TABLES, transcript_columns
from claude_top.core.sources.transcripts.parse import TOOL_COLUMNS, Facts, FileState

_FILE_COLUMNS = transcript_columns("transcript_files")
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")
_UPDATE = {
    "transcript_requests": ", ".join(f"{c} = greatest(t.{c}, s.{c})" for c in _TOKENS)
    + ", time_ns = least(t.time_ns, s.time_ns)",
    "transcript_tools": ", ".join(
        f"{c} = coalesce(s.{c}, t.{c})"
        for c in TOOL_COLUMNS
        if c not in ("session_id", "tool_use_id", "prompt_id")
    )
    + ", prompt_id = coalesce(t.prompt_id, s.prompt_id)",
    "transcript_sessions": "first_ns = least(t.first_ns, s.first_ns), "
    "last_ns = greatest(t.last_ns, s.last_ns), cwd = coalesce(s.cwd, t.cwd), "
    "version = coalesce(s.version, t.version)",
    "transcript_files": ", ".join(f'"{c}" = s."{c}"' for c in _FILE_COLUMNS if c != "path"),
}
"""How a fact already stored takes in the same fact read again (prompts and cost-state lines
keep the first)."""
_STAGE = "transcript_stage"


@dataclass
class Written:
    """What one write stored that was not stored before."""

    requests: int = 0
    prompts: int = 0
    tools: int = 0


def _upsert(cur: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> int:
    """Rows (no key twice): the new ones inserted, the stored ones updated (`_UPDATE`); each
    column passed as a typed list, unnested. Returns how many were new."""
    if not rows:
        return 0
    cols, key = TRANSCRIPT_TABLES[table]
    names = ", ".join(f'"{n}"' for n, _ in cols)
    lists = ", ".join(f'unnest(${i}::{sql}[]) AS "{n}"' for i, (n, sql) in enumerate(cols, 1))
    params = [list(values) for values in zip(*rows, strict=True)]
    on = " AND ".join(f't."{k}" = s."{k}"' for k in key)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGE} AS SELECT {lists}", params)
    (new,) = cur.execute(
        f"INSERT INTO {table} ({names}) SELECT s.* FROM {_STAGE} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {on})"
    ).fetchone()
    if new < len(rows) and table in _UPDATE:
        cur.execute(f"UPDATE {table} t SET {_UPDATE[table]} FROM {_STAGE} s WHERE {on}")
    cur.execute(f"DROP TABLE {_STAGE}")  # (a failed transaction takes it with it)
    return new


def write_facts(
    cur: duckdb.DuckDBPyConnection,
    facts: Facts,
    states: Iterable[FileState],
    replaced: Iterable[str],
) -> Written:
    """Store `facts` and the read states of the files they came from; `replaced` files (another
    file at the same path now) first lose the cost-state lines read from them."""
    replaced = list(replaced)
    if replaced:
        cur.execute(
            "DELETE FROM transcript_costs WHERE file IN (SELECT unnest($1::VARCHAR[]))", [replaced]
        )
    out = Written(
        requests=_upsert(cur, "transcript_requests", [tuple(r) for r in facts.requests.values()]),
        prompts=_upsert(cur, "transcript_prompts", list(facts.prompts.values())),
        tools=_upsert(
            cur,
            "transcript_tools",
            [
                (sid, tid, *(t.get(c) for c in TOOL_COLUMNS[2:]))
                for (sid, tid), t in facts.tools.items()
            ],
        ),
    )
    _upsert(cur, "transcript_costs", list(facts.costs.values()))
    _upsert(
        cur,
        "transcript_sessions",
        [(sid, *facts.sessions.get(sid, (None,) * 4)) for sid in sorted(facts.session_ids())],
    )
    now = time.time_ns()
    _upsert(
        cur,
        "transcript_files",
        [(*_state_values(s), now) for s in {s.path: s for s in states}.values()],
    )
    return out


def _state_values(s: FileState) -> tuple:
    return (
        s.path, s.size, s.mtime_ns, s.inode, s.offset, s.lines, s.last_time_ns, s.prompt_id,
        s.session_id, s.skipped, s.kind,
    )  # fmt: skip


def file_states(cur: duckdb.DuckDBPyConnection) -> dict[str, FileState]:
    """Every file's read state, by path."""
    names = ", ".join(f'"{c}"' for c in _FILE_COLUMNS)
    rows = cur.execute(f"SELECT {names} FROM transcript_files")
    return {r[0]: FileState(*r[:11]) for r in rows.fetchall()}
