"""Status-line samples: parsed from the real captures (every value as the JSON holds it), bad
input kept out field by field (or whole), stored with the time each arrived, once, and the spool
the shim leaves when no claude-top runs."""

from __future__ import annotations

import json
import os

import pytest

from claude_top.core.schema import SCHEMA_VERSION
from claude_top.core.sources.statusline.parse import (
    SampleRejected,
    parse_sample,
    redact_paths,
)
from claude_top.core.sources.statusline.spool import append_spool, read_spool_lines
from claude_top.core.sources.statusline.store import store_samples, take_spool
from claude_top.core.store.database import Store
from truth import statusline_samples

SAMPLES = statusline_samples()
NOW_NS = SAMPLES[-1][0]


def _sample(**over) -> str:
    """The last captured sample with some fields replaced (None drops a key)."""
    doc = json.loads(SAMPLES[-1][1])
    for path, value in over.items():
        node = doc
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return json.dumps(doc)


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_the_captured_samples_parse_to_what_they_say(index):
    received, text, doc = SAMPLES[index]
    s = parse_sample(text, received)
    assert s.problems == []
    assert s.raw == text
    v = s.values
    assert v["session_id"] == doc["session_id"]
    assert v["model"] == doc["model"]["id"]
    assert v["project_dir"] == doc["workspace"]["project_dir"]
    assert v["cost_usd"] == doc["cost"]["total_cost_usd"]
    assert v["context_used_pct"] == doc["context_window"]["used_percentage"]
    assert v["context_window_size"] == doc["context_window"]["context_window_size"]
    limits = doc.get("rate_limits", {})
    for name in ("five_hour", "seven_day"):
        w = limits.get(name)
        assert s.window(name) == ((w["used_percentage"], w["resets_at"]) if w else (None, None))
    usage = doc["context_window"]["current_usage"]
    want_ctx = None
    if usage:
        want_ctx = (
            usage["input_tokens"]
            + usage["cache_creation_input_tokens"]
            + usage["cache_read_input_tokens"]
        )
    assert v.get("context_tokens") == want_ctx
    cache = doc.get("prompt_cache") or {}
    assert v["cache_expires_at"] == cache.get("expires_at")
    assert v["cache_warm"] == cache.get("warm")


def test_the_captured_percentages_rise_as_the_readme_says():
    five = [parse_sample(t, r).window("five_hour")[0] for r, t, _ in SAMPLES]
    seven = [parse_sample(t, r).window("seven_day")[0] for r, t, _ in SAMPLES]
    assert five == [None, 19, 40, 61]
    assert seven == [None, 32, 35, 38]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json at all", "not JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ('"a string"', "a JSON str, not an object"),
        ("", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("{" + '"x": "' + "y" * 300_000 + '"}', "larger than a status-line sample"),
    ],
)
def test_what_is_not_a_json_object_is_rejected_whole(text, reason):
    with pytest.raises(SampleRejected, match=reason):
        parse_sample(text, NOW_NS)


@pytest.mark.parametrize(
    ("change", "dropped"),
    [
        ({"rate_limits__five_hour__resets_at": "2026-12-05T09:00:00Z"}, "not epoch seconds"),
        ({"rate_limits__five_hour__resets_at": 1796461200000}, "milliseconds"),
        ({"rate_limits__five_hour__resets_at": 1796449000}, "already passed"),
        ({"rate_limits__five_hour__used_percentage": 130}, "outside 0..100"),
        ({"rate_limits__five_hour__used_percentage": -1}, "outside 0..100"),
        ({"rate_limits__five_hour__used_percentage": "61"}, "not a number"),
        ({"rate_limits__five_hour__used_percentage": True}, "not a number"),
        ({"rate_limits__five_hour__used_percentage": None}, "no used_percentage"),
        ({"rate_limits__five_hour": "61%"}, "not an object"),
    ],
)
def test_a_bad_window_is_dropped_and_the_rest_kept(change, dropped):
    s = parse_sample(_sample(**change), NOW_NS)
    assert len(s.problems) == 1 and dropped in s.problems[0]
    assert s.problems[0].startswith("rate_limits.five_hour")
    assert s.window("five_hour") == (None, None)
    assert s.window("seven_day") == (38, 1796688000)
    assert s.values["cost_usd"] == 0.042714
    assert s.values["context_used_pct"] == 1


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"session_id": 12}, "session_id"),
        ({"cost__total_cost_usd": "0.04"}, "cost_usd"),
        ({"context_window__used_percentage": 250}, "context_used_pct"),
        ({"context_window__context_window_size": 1.5}, "context_window_size"),
        ({"prompt_cache__expires_at": "soon"}, "cache_expires_at"),
        ({"prompt_cache__warm": "yes"}, "cache_warm"),
        ({"model": ["x"]}, "model"),
    ],
)
def test_a_bad_field_is_dropped_alone(change, column):
    s = parse_sample(_sample(**change), NOW_NS)
    assert len(s.problems) == 1
    assert s.values[column] is None
    assert s.window("five_hour") == (61, 1796461200)


def test_a_sample_without_any_known_field_is_kept_empty():
    s = parse_sample("{}", NOW_NS)
    assert s.problems == []
    assert all(v is None for v in s.values.values())


def test_redacting_paths_blanks_them_in_the_columns_and_the_raw_json():
    s = redact_paths(parse_sample(SAMPLES[-1][1], NOW_NS))
    assert s.values["cwd"] == s.values["project_dir"] == s.values["transcript_path"]
    assert s.values["cwd"] == "<REDACTED>"
    assert "/home/u-limits" not in s.raw
    assert json.loads(s.raw)["rate_limits"]["five_hour"]["used_percentage"] == 61


# --- the store ---------------------------------------------------------------------------------


@pytest.fixture
def store():
    s = Store.open(":memory:")
    yield s
    s.close()


def _rows(store, sql: str = "SELECT * FROM statusline_samples ORDER BY received_ns"):
    with store.reading() as cur:
        res = cur.execute(sql)
        names = [d[0] for d in res.description]
        return [dict(zip(names, r, strict=True)) for r in res.fetchall()]


def test_samples_are_stored_with_their_arrival_time_once(store):
    items = [(r, t) for r, t, _ in SAMPLES]
    result = store_samples(store, items)
    assert (result.stored, result.duplicates, result.rejected) == (4, 0, 0)
    again = store_samples(store, items)
    assert (again.stored, again.duplicates) == (0, 4)
    rows = _rows(store)
    assert [r["received_ns"] for r in rows] == [r for r, _, _ in SAMPLES]
    assert [r["five_hour_pct"] for r in rows] == [None, 19, 40, 61]
    assert [r["five_hour_resets_at"] for r in rows] == [None, *[1796461200] * 3]
    assert [r["seven_day_pct"] for r in rows] == [None, 32, 35, 38]
    assert [r["cost_usd"] for r in rows] == [d["cost"]["total_cost_usd"] for _, _, d in SAMPLES]
    assert [json.loads(r["raw"]) for r in rows] == [d for _, _, d in SAMPLES]
    assert {r["via"] for r in rows} == {"live"}


def test_bad_samples_are_counted_and_kept_for_a_fixed_claude_top(store):
    items = [(NOW_NS, "garbage"), (NOW_NS, _sample(rate_limits__five_hour__used_percentage=200))]
    result = store_samples(store, items)
    assert (result.stored, result.rejected) == (1, 1)
    assert any("not JSON" in p for p in result.problems)
    (row,) = _rows(store)
    assert row["five_hour_pct"] is None and row["seven_day_pct"] == 38
    assert "outside 0..100" in row["problems"]
    (failed,) = _rows(store, "SELECT * FROM ingest_failed")
    assert failed["signal"] == "statusline" and failed["body"] == b"garbage"


def test_the_spool_is_taken_in_once_and_emptied(store, tmp_path):
    path = tmp_path / "spool.jsonl"
    for received, text, _ in SAMPLES:
        append_spool(path, {"received_ns": received, "text": text})
    with open(path, "ab") as fh:
        fh.write(b'{"received_ns": 5, "te')  # a torn last line
    result = take_spool(store, path, NOW_NS + 10**9)
    assert (result.stored, result.rejected) == (4, 1)
    assert path.read_bytes() == b""
    rows = _rows(store)
    assert [r["received_ns"] for r in rows] == [r for r, _, _ in SAMPLES]
    assert {r["via"] for r in rows} == {"spool"}
    assert take_spool(store, path, NOW_NS).stored == 0
    assert take_spool(store, tmp_path / "none.jsonl", NOW_NS) is None


def test_the_spool_keeps_the_newest_samples_within_its_bound(tmp_path):
    path = tmp_path / "spool.jsonl"
    for i in range(200):
        append_spool(path, {"received_ns": i, "text": "x" * 100}, max_bytes=4096)
    assert path.stat().st_size <= 4096
    items = read_spool_lines(path.read_bytes())
    times = [i["received_ns"] for i in items]
    assert times[-1] == 199 and times == list(range(times[0], 200))
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_future_or_missing_arrival_time_becomes_the_hand_over_time(store, tmp_path):
    path = tmp_path / "spool.jsonl"
    append_spool(path, {"received_ns": NOW_NS * 2, "text": SAMPLES[1][1]})
    append_spool(path, {"text": SAMPLES[2][1]})
    take_spool(store, path, NOW_NS)
    assert [r["received_ns"] for r in _rows(store)] == [NOW_NS, NOW_NS]


def test_an_older_database_gains_the_tables_when_opened(tmp_path):
    db = str(tmp_path / "old.duckdb")
    s = Store.open(db)
    with s.reading() as cur:
        cur.execute("DROP TABLE statusline_samples")
        cur.execute("DROP TABLE limit_alerts")
        cur.execute("UPDATE claude_top_meta SET value = '3' WHERE key = 'schema_version'")
    s.close()
    s = Store.open(db)
    try:
        assert store_samples(s, [(NOW_NS, SAMPLES[-1][1])]).stored == 1
        with s.reading() as cur:
            version = cur.execute(
                "SELECT value FROM claude_top_meta WHERE key = 'schema_version'"
            ).fetchone()[0]
        assert version == str(SCHEMA_VERSION)
    finally:
        s.close()


def test_retention_prunes_old_samples(store):
    store_samples(store, [(r, t) for r, t, _ in SAMPLES])
    assert store.prune(SAMPLES[2][0]) >= 2
    assert [r["received_ns"] for r in _rows(store)] == [r for r, _, _ in SAMPLES[2:]]
