"""core.export: the five CSVs and snapshot.json, checked against the fixtures' JSON."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from test_queries import (
    BASIC_SESSION,
    CONTINUED_SESSION,
    ERRORS_SESSION,
    TOKEN_KINDS,
    is_false,
    percentile,
    ratio,
    record_times,
)

from claude_top import __version__
from claude_top.core import queries as Q
from claude_top.core.export import (
    EVENTS_COLUMNS,
    FILES,
    MODELS_COLUMNS,
    SESSIONS_COLUMNS,
    SPANS_COLUMNS,
    TOOLS_COLUMNS,
    export_snapshot,
)
from truth import GRPC_FIXTURES, Truth

MINIMUM = {
    "sessions": [
        "session_id",
        "first_seen",
        "last_seen",
        "prompts",
        "api_requests",
        "cost_usd",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "tool_calls",
        "tool_errors",
        "models",
        "agent",
    ],
    "models": [
        "model",
        "api_requests",
        "cost_usd",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "cache_hit_ratio",
        "agent",
    ],
    "tools": [
        "tool_name",
        "calls",
        "errors",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "total_ms",
        "agent",
    ],
    "spans": [
        "trace_id",
        "span_id",
        "parent_span_id",
        "name",
        "session_id",
        "start_time",
        "end_time",
        "duration_ms",
        "status",
        "attributes",
        "agent",
    ],
    "events": ["session_id", "prompt_id", "name", "timestamp", "sequence", "attributes", "agent"],
}


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth(*GRPC_FIXTURES)


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def parse_iso(s: str) -> datetime:
    assert s.endswith("Z") and "T" in s, s
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def export_all(store, tmp_path: Path, **kw):
    args = {"db_path": "fixture.duckdb", "window": None, "window_s": None, "session_id": None}
    args.update(kw)
    return export_snapshot(store.cursor(), tmp_path / "out", **args)


def test_module_column_lists_match_the_spec():
    assert list(SESSIONS_COLUMNS) == MINIMUM["sessions"]
    assert list(MODELS_COLUMNS) == MINIMUM["models"]
    assert list(TOOLS_COLUMNS) == MINIMUM["tools"]
    assert list(SPANS_COLUMNS) == MINIMUM["spans"]
    assert list(EVENTS_COLUMNS) == MINIMUM["events"]
    assert FILES == ("sessions", "models", "tools", "spans", "events")


def test_export_writes_every_file_with_the_minimum_columns_first(fixture_store, tmp_path, truth):
    result = export_all(fixture_store, tmp_path)
    out = tmp_path / "out"
    assert result.directory == out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{n}.csv" for n in FILES] + ["snapshot.json"]
    )
    counts = {}
    for name in FILES:
        header, rows = read_csv(out / f"{name}.csv")
        assert header[: len(MINIMUM[name])] == MINIMUM[name], name
        assert len(set(header)) == len(header)
        counts[name] = len(rows)
    assert counts == result.counts
    assert counts == {
        "sessions": len(truth.sessions()),
        "models": 2,
        "tools": 4,
        "spans": len(truth.spans),
        "events": len(truth.events),
    }


def test_sessions_csv_equals_truth_and_the_pane(fixture_store, tmp_path, truth):
    export_all(fixture_store, tmp_path)
    _, rows = read_csv(tmp_path / "out" / "sessions.csv")
    by_id = {r["session_id"]: r for r in rows}
    assert set(by_id) == truth.sessions()
    for sid, r in by_id.items():
        api = truth.api_requests(sid)
        assert float(r["cost_usd"]) == pytest.approx(truth.cost(sid), abs=1e-9)
        assert int(r["api_requests"]) == len(api)
        for kind in TOKEN_KINDS:
            assert int(r[f"{kind}_tokens"]) == truth.tokens(kind, sid)
        results = [e for e in truth.tool_results() if e["session.id"] == sid]
        assert int(r["tool_calls"]) == len(results)
        assert int(r["tool_errors"]) == sum(is_false(e["success"]) for e in results)
        assert r["models"] == ", ".join(sorted({e["model"] for e in api}))
        assert parse_iso(r["first_seen"]) <= parse_iso(r["last_seen"])
    assert int(by_id[CONTINUED_SESSION]["prompts"]) == 2
    assert int(by_id[ERRORS_SESSION]["tool_errors"]) == 1
    # the CSV is the pane: same rows, same order, same numbers
    pane = Q.sessions(fixture_store.cursor(), Q.Filter())
    assert [r["session_id"] for r in rows] == [p["session_id"] for p in pane]
    for r, p in zip(rows, pane, strict=True):
        assert parse_iso(r["first_seen"]) == p["first_seen"]
        assert parse_iso(r["last_seen"]) == p["last_seen"]
        assert float(r["cost_usd"]) == p["cost_usd"]
        assert int(r["prompts"]) == p["prompts"]
    assert min(int(r["first_seen_ns"]) for r in rows) == min(record_times())


def test_models_and_tools_csv(fixture_store, tmp_path, truth):
    export_all(fixture_store, tmp_path)
    _, models = read_csv(tmp_path / "out" / "models.csv")
    assert [m["model"] for m in models] == ["claude-sonnet-4-5", "claude-opus-5-5"]
    for m in models:
        name = m["model"]
        assert float(m["cost_usd"]) == pytest.approx(truth.cost(model=name), abs=1e-9)
        assert int(m["api_requests"]) == sum(e["model"] == name for e in truth.api_requests())
        for kind in TOKEN_KINDS:
            assert int(m[f"{kind}_tokens"]) == truth.tokens(kind, model=name)
        assert float(m["cache_hit_ratio"]) == pytest.approx(
            ratio(
                truth.tokens("cache_read", model=name),
                truth.tokens("input", model=name),
                truth.tokens("cache_creation", model=name),
            ),
            abs=5e-5,  # written to 0.01 %
        )
    _, tools = read_csv(tmp_path / "out" / "tools.csv")
    assert {t["tool_name"]: int(t["calls"]) for t in tools} == truth.tool_calls()
    for t in tools:
        results = [e for e in truth.tool_results() if e["tool_name"] == t["tool_name"]]
        durations = [float(e["duration_ms"]) for e in results]
        assert int(t["errors"]) == sum(is_false(e["success"]) for e in results)
        for col, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
            assert float(t[col]) == pytest.approx(percentile(durations, q))
        assert float(t["max_ms"]) == max(durations)
        assert float(t["total_ms"]) == pytest.approx(sum(durations))
    pane = Q.tools(fixture_store.cursor(), Q.Filter())
    assert [t["tool_name"] for t in tools] == [p["tool_name"] for p in pane]


def test_spans_and_events_csv(fixture_store, tmp_path, truth):
    export_all(fixture_store, tmp_path)
    _, spans = read_csv(tmp_path / "out" / "spans.csv")
    assert {(s["trace_id"], s["span_id"], s["parent_span_id"]) for s in spans} == {
        (t["_trace_id"], t["_span_id"], t["_parent"]) for t in truth.spans
    }
    assert Counter(s["status"] for s in spans) == {"UNSET": len(truth.spans) - 1, "ERROR": 1}
    assert Counter(s["name"] for s in spans) == Counter(t["_name"] for t in truth.spans)
    for s in spans:
        attrs = json.loads(s["attributes"])
        assert attrs["session.id"] == s["session_id"]
        assert parse_iso(s["start_time"]) <= parse_iso(s["end_time"])
        assert float(s["duration_ms"]) >= 0
    _, events = read_csv(tmp_path / "out" / "events.csv")
    assert Counter(e["name"] for e in events) == truth.events_by_name()
    assert Counter(e["session_id"] for e in events) == Counter(
        t["session.id"] for t in truth.events
    )
    assert Counter(e["prompt_id"] for e in events if e["prompt_id"]) == Counter(
        t["prompt.id"] for t in truth.events if "prompt.id" in t
    )
    # the continued session repeats event.sequence across its two processes: both kept
    seqs = Counter(
        (e["sequence"], e["name"]) for e in events if e["session_id"] == CONTINUED_SESSION
    )
    assert seqs[("4", "claude_code.user_prompt")] == 2
    for e in events:
        attrs = json.loads(e["attributes"])
        assert "claude_code." + attrs["event.name"] == e["name"]
        assert int(e["sequence"]) == int(attrs["event.sequence"])
        parse_iso(e["timestamp"])


def test_snapshot_json(fixture_store, tmp_path):
    now = 1_795_310_999_123_456_789
    result = export_all(
        fixture_store,
        tmp_path,
        db_path="/data/claude-top.duckdb",
        window="7d",
        window_s=7 * 86400,
        now_ns=now,
    )
    snap = json.loads((tmp_path / "out" / "snapshot.json").read_text())
    assert snap == result.snapshot
    assert snap["db"] == "/data/claude-top.duckdb"
    assert snap["window"] == "7d"
    assert snap["filter"]["session_id"] is None
    assert snap["filter"]["since_ns"] == now - 7 * 86400 * 10**9
    assert snap["claude_top_version"] == __version__
    assert snap["exported_at"] == "2026-11-22T01:29:59.123456Z"
    assert snap["counts"] == {f"{n}.csv": c for n, c in result.counts.items()}
    for name, count in snap["counts"].items():
        _, rows = read_csv(tmp_path / "out" / name)
        assert len(rows) == count
    assert result.counts["events"] == 55


def test_export_window_and_session_filters(fixture_store, tmp_path, truth):
    late = export_all(
        fixture_store, tmp_path / "late", window="15m", window_s=900, now_ns=10**19 // 2
    )
    assert late.counts == dict.fromkeys(FILES, 0)
    for name in FILES:
        header, rows = read_csv(tmp_path / "late" / "out" / f"{name}.csv")
        assert header[: len(MINIMUM[name])] == MINIMUM[name]
        assert rows == []
    one = export_all(fixture_store, tmp_path / "one", session_id=ERRORS_SESSION)
    assert one.snapshot["filter"]["session_id"] == ERRORS_SESSION
    out = tmp_path / "one" / "out"
    for name in ("sessions", "spans", "events"):
        _, rows = read_csv(out / f"{name}.csv")
        assert {r["session_id"] for r in rows} == {ERRORS_SESSION}, name
    _, events = read_csv(out / "events.csv")
    assert len(events) == sum(e["session.id"] == ERRORS_SESSION for e in truth.events)
    _, tools = read_csv(out / "tools.csv")
    assert {t["tool_name"]: int(t["calls"]) for t in tools} == {"Bash": 2, "Write": 1}
    _, models = read_csv(out / "models.csv")
    assert [(m["model"], float(m["cost_usd"])) for m in models] == [
        ("claude-opus-5-5", pytest.approx(truth.cost(ERRORS_SESSION), abs=1e-9))
    ]
    # a window starting at the continued session keeps only it
    continued_start = Q.sessions(fixture_store.cursor(), Q.Filter(session_id=CONTINUED_SESSION))[0][
        "first_seen_ns"
    ]
    now = continued_start + 60 * 10**9
    part = export_all(fixture_store, tmp_path / "part", window="60s", window_s=60, now_ns=now)
    _, rows = read_csv(tmp_path / "part" / "out" / "sessions.csv")
    assert CONTINUED_SESSION in {r["session_id"] for r in rows}
    assert BASIC_SESSION not in {r["session_id"] for r in rows}
    assert part.counts["events"] == sum(
        e["session.id"] in (CONTINUED_SESSION, "8f328446-2fd7-4221-8523-3e080c14a0a7")
        for e in truth.events
    )


def test_export_paths_and_ids_with_quotes(fixture_store, tmp_path):
    from claude_top.core.export import UnknownSession

    odd = tmp_path / "it's a dir"
    with pytest.raises(UnknownSession, match="no session id starts with"):
        export_snapshot(
            fixture_store.cursor(),
            odd,
            db_path=":memory:",
            window=None,
            window_s=None,
            session_id="x'; DROP TABLE events; --",
        )
    assert not odd.exists()
    result = export_snapshot(
        fixture_store.cursor(),
        odd,
        db_path=":memory:",
        window="1s",
        window_s=1,
        session_id=None,
    )
    assert result.counts == dict.fromkeys(FILES, 0)
    assert (odd / "events.csv").exists()
    assert fixture_store.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == 55
