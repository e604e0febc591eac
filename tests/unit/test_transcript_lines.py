"""Reading transcript files line by line: bad input is skipped and counted (never fatal, never
losing or doubling what is stored), a file is read on from where it was left, and the costs
of requests telemetry lacks come from the cost-state lines (estimates only past the last)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_rollup import rebuilt, rollup_rows

from claude_top.core import format as fmt
from claude_top.core import pricing
from claude_top.core.queries import Filter, models, sessions, turns
from claude_top.core.schema import column_names
from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.sources.transcripts import parse
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from claude_top.core.store.importer import TranscriptImporter
from truth import FIXTURES, TRANSCRIPT_SETS, Truth, grpc_requests, transcript_files

SHIPPED = pricing.parse(pricing.SHIPPED.read_text(), "shipped")
BASIC = transcript_files(TRANSCRIPT_SETS["basic"][1])[0]
BASIC_SESSION = BASIC.stem
BASIC_COST = Truth(TRANSCRIPT_SETS["basic"][0]).cost()


def real_lines(path: Path = BASIC) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def session(store: Store, sid: str = BASIC_SESSION) -> dict:
    rows = {r["session_id"]: r for r in sessions(store.cursor(), Filter())}
    return rows[sid]


def check_rollups(store: Store) -> None:
    cur = store.cursor()
    assert rollup_rows(cur) == rebuilt(cur)


@pytest.fixture
def store():
    s = Store.open(":memory:")
    yield s
    s.close()


def test_bad_lines_are_skipped_and_counted_and_the_good_ones_kept(tmp_path, store, monkeypatch):
    monkeypatch.setattr(parse, "MAX_LINE_BYTES", 96 << 10)  # above every real line
    lines = real_lines()
    user = json.loads(lines[2])
    bad = [
        b'{"type":"assistant","message": {oops\n',  # malformed
        b"\xff\xfe\x00garbage\n",  # neither UTF-8 nor JSON
        b'{"type":"brand-new-kind","sessionId":"x"}\n',  # a newer Claude Code's line
        b'{"parentUuid":null,"type":"user","pad":"'
        + b"x" * (200 << 10)
        + b'"}\n',  # over the limit
        b"[1, 2, 3]\n",  # JSON, not an object
        b"\n",  # blank: nothing to count
    ]
    # a lone surrogate (JavaScript writes one when it cuts a string mid-character) and a stray
    # non-UTF-8 byte inside a string: still the prompt they are
    odd = dict(user, promptId="p-odd", uuid="u-odd")
    odd["message"] = {"role": "user", "content": "surrogate \ud83d and more"}
    odd_line = json.dumps(odd).encode() + b"\n"
    latin = dict(user, promptId="p-latin", uuid="u-latin")
    latin["message"] = {"role": "user", "content": "caf\u00e9"}
    latin_line = json.dumps(latin, ensure_ascii=False).encode().replace("é".encode(), b"\xe9")
    path = tmp_path / "projects" / "p" / f"{BASIC_SESSION}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(lines[:3] + bad + [odd_line, latin_line + b"\n"] + lines[3:]))
    report = TranscriptImporter(store, prices=SHIPPED).run([tmp_path])
    assert report.skipped == {
        "malformed JSON": 1,
        "not UTF-8 and not JSON": 1,
        "unknown type 'brand-new-kind'": 1,
        "line longer than 96 kB": 1,
        "not a JSON object": 1,
    }
    assert sorted(line for _, line, _ in report.problems) == [4, 5, 6, 7, 8]
    row = session(store)
    assert (row["api_requests"], round(row["cost_usd"], 9)) == (3, round(BASIC_COST, 9))
    texts = dict(
        store.cursor()
        .execute("SELECT prompt_id, text FROM transcript_prompts ORDER BY prompt_id")
        .fetchall()
    )
    assert texts["p-latin"] == "caf\ufffd"
    assert texts["p-odd"].startswith("surrogate ")
    check_rollups(store)


def test_a_line_being_written_is_read_once_complete_and_a_grown_file_from_its_offset(
    tmp_path, store
):
    lines = real_lines()
    path = tmp_path / f"{BASIC_SESSION}.jsonl"
    cut = lines.index(next(x for x in lines if b'"type":"assistant"' in x))
    path.write_bytes(b"".join(lines[:cut]) + lines[cut][:100])  # an assistant line, cut
    importer = TranscriptImporter(store, prices=SHIPPED)
    importer.run([path])
    assert store.cursor().execute("SELECT count(*) FROM transcript_requests").fetchone() == (0,)
    offset = importer.states()[str(path)].offset
    assert offset == sum(map(len, lines[:cut]))
    with open(path, "ab") as fh:
        fh.write(lines[cut][100:])
    report = importer.run([path])
    assert report.skipped == {}
    assert store.cursor().execute("SELECT count(*) FROM transcript_requests").fetchone() == (1,)
    with open(path, "ab") as fh:
        fh.write(b"".join(lines[cut + 1 :]))
    report = importer.run([path])
    assert report.bytes == sum(map(len, lines[cut + 1 :]))  # only what it gained
    assert session(store)["api_requests"] == 3
    assert importer.run([path]).files_read == 0  # unchanged: not opened
    check_rollups(store)


def test_an_unfinished_line_followed_by_whole_ones_loses_only_itself(tmp_path, store):
    """Claude Code killed mid-write, then run again: the next line starts right after the
    remains of the unfinished one."""
    lines = real_lines()
    cut = lines.index(next(x for x in lines if b'"type":"assistant"' in x))
    path = tmp_path / f"{BASIC_SESSION}.jsonl"
    path.write_bytes(b"".join(lines[:cut]) + lines[cut][:200] + b"".join(lines[cut:]))
    report = TranscriptImporter(store, prices=SHIPPED).run([path])
    assert report.skipped == {"unfinished line (followed by a whole one)": 1}
    assert session(store)["api_requests"] == 3


def test_unreadable_files_and_folders_are_reported_and_the_rest_imported(
    tmp_path, store, monkeypatch
):
    good = tmp_path / "projects" / "good"
    good.mkdir(parents=True)
    (good / BASIC.name).write_bytes(BASIC.read_bytes())
    locked = tmp_path / "projects" / "locked"
    locked.mkdir()
    (locked / "x.jsonl").write_bytes(BASIC.read_bytes())
    secret = good / "secret.jsonl"
    secret.write_bytes(BASIC.read_bytes())
    real_open, real_scandir = open, os.scandir

    def refusing_open(path, *a, **kw):  # as chmod 0 would, even for root
        if str(path) == str(secret):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)

    def refusing_scandir(path):
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(parse, "open", refusing_open, raising=False)
    monkeypatch.setattr(os, "scandir", refusing_scandir)
    report = TranscriptImporter(store, prices=SHIPPED).run([tmp_path / "projects"])
    assert sorted((Path(p).name, why) for p, why in report.unreadable) == [
        ("locked", "Permission denied"),
        ("secret.jsonl", "Permission denied"),
    ]
    assert session(store)["api_requests"] == 3


def test_a_replaced_file_is_read_again_from_its_start(tmp_path, store):
    lines = real_lines()
    path = tmp_path / f"{BASIC_SESSION}.jsonl"
    path.write_bytes(b"".join(lines))
    importer = TranscriptImporter(store, prices=SHIPPED)
    importer.run([path])
    path.unlink()
    path.write_bytes(b"".join(lines))  # another inode: another file at the same path
    importer.run([path])
    row = session(store)
    assert (row["api_requests"], round(row["cost_usd"], 9)) == (3, round(BASIC_COST, 9))
    costs = store.cursor().execute("SELECT count(*) FROM transcript_costs").fetchone()
    assert costs == (1,)


def test_a_live_session_is_estimated_until_its_cost_state_line_is_written(tmp_path, store):
    """Past the last cost-state line the price table prices a request (marked as an
    estimate), or nothing does; once Claude Code writes the line, its cost replaces them."""
    lines = real_lines()
    assert b'"type":"cost-state"' in lines[-1]
    path = tmp_path / f"{BASIC_SESSION}.jsonl"
    path.write_bytes(b"".join(lines[:-1]))
    importer = TranscriptImporter(store, prices=SHIPPED)  # no claude-opus-5-5 in it
    importer.run([path])
    row = session(store)
    assert (row["api_requests"], row["cost_usd"], row["unpriced_requests"]) == (3, 0.0, 3)
    assert row["cost_sources"] == ""

    store2 = Store.open(":memory:")
    prices = pricing.parse(
        '[models."claude-opus-5"]\ninput = 4.0\noutput = 20.0\ncache_write = 5.0\n'
        "cache_read = 0.4\n",
        "test",
    )
    importer2 = TranscriptImporter(store2, prices=prices)
    importer2.run([path])
    row = session(store2)
    expected = sum(
        prices.estimate("claude-opus-5-5", r[0], r[1], r[2], r[3])
        for r in store2.cursor()
        .execute(
            "SELECT input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens "
            "FROM transcript_requests"
        )
        .fetchall()
    )
    assert row["cost_sources"] == "estimate"
    assert row["estimated_cost_usd"] == pytest.approx(expected)
    assert row["cost_usd"] == pytest.approx(expected)
    (by_model,) = models(store2.cursor(), Filter())
    assert by_model["estimated_cost_usd"] == pytest.approx(expected)
    (turn,) = turns(store2.cursor(), BASIC_SESSION)
    assert turn["estimated_cost_usd"] == pytest.approx(expected)
    assert turn["cost_source"] == "estimate"
    assert fmt.cost_of(turn["cost_usd"], turn["cost_source"]).startswith("~$")
    with open(path, "ab") as fh:
        fh.write(lines[-1])
    importer2.run([path])
    row = session(store2)
    assert row["cost_sources"] == "transcript"
    assert round(row["cost_usd"], 9) == round(BASIC_COST, 9)
    assert row["estimated_cost_usd"] is None
    check_rollups(store2)
    store2.close()


def test_telemetry_for_part_of_a_session_keeps_its_costs_and_the_rest_shares_the_remainder(
    store,
):
    """The continued run with the api_request events of two of its six requests: those keep
    their reported cost; the other four share what the cost-state lines add beyond them, so
    the session still costs exactly what the whole telemetry says."""
    otlp, projects = TRANSCRIPT_SETS["continued"]
    truth = Truth(otlp)
    reqs = truth.api_requests()
    kept = {reqs[1]["request_id"], reqs[4]["request_id"]}
    for signal, body in grpc_requests(otlp):
        d = decode_protobuf(signal, body)
        kinds = d.column("events", "kind") if d.rows["events"] else []
        rids = d.column("events", "request_id") if d.rows["events"] else []
        d.rows["events"] = [
            r
            for r, k, rid in zip(d.rows["events"], kinds, rids, strict=True)
            if k != "api_request" or rid in kept
        ]
        write_rows(store, [d])
    TranscriptImporter(store, prices=SHIPPED).run([FIXTURES / projects])
    rows = (
        store.cursor()
        .execute(
            "SELECT request_id, source, cost_source, cost_usd FROM events "
            "WHERE kind = 'api_request' ORDER BY time_ns"
        )
        .fetchall()
    )
    reported = {e["request_id"]: float(e["cost_usd"]) for e in reqs}
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (e["request_id"], *(("otel", "reported") if e["request_id"] in kept else
                            ("transcript", "transcript")))
        for e in reqs
    ]  # fmt: skip
    for rid, _, source, cost in rows:
        if source == "reported":
            assert cost == reported[rid]
    first_run, second_run = rows[:3], rows[3:]  # one cost-state line after each run
    for run, truth_run in ((first_run, reqs[:3]), (second_run, reqs[3:])):
        assert round(sum(r[3] for r in run), 9) == round(
            sum(float(e["cost_usd"]) for e in truth_run), 9
        )
    row = session(store, truth.api_requests()[0]["session.id"])
    assert round(row["cost_usd"], 9) == round(truth.cost(), 9)
    assert row["cost_sources"] == "reported,transcript"
    assert row["source"] == "both"
    check_rollups(store)


def test_redacted_prompts_commands_and_paths_stay_out_of_the_database(store):
    projects = TRANSCRIPT_SETS["errors"][1]
    TranscriptImporter(
        store, prices=SHIPPED, redact=frozenset({"prompts", "commands", "paths"})
    ).run([FIXTURES / projects])
    cur = store.cursor()
    text = " ".join(
        str(v)
        for table in ("events", "transcript_prompts", "transcript_tools", "transcript_requests")
        for row in cur.execute(f"SELECT * FROM {table}").fetchall()
        for v in row
    )
    assert "list a dir" not in text and "nonexistent-dir" not in text
    assert "/home/u-errors" not in text
    assert "<REDACTED>" in text


def _fork(lines: list[bytes], session: str) -> list[bytes]:
    """The transcript as a forked (or, in older Claude Codes, resumed) session holds it: the
    same lines under another session id."""
    return [x.replace(BASIC_SESSION.encode(), session.encode()) for x in lines]


@pytest.mark.parametrize("first", ["original", "fork"])
def test_a_forked_sessions_copy_of_the_history_counts_once(tmp_path, store, first):
    """The copied requests stay with the session that started first, whichever file is read
    first; what the fork added is its own."""
    fork = "0f0f0f0f-aaaa-4bbb-8ccc-dddddddddddd"
    lines = real_lines()
    last_answer = max(i for i, x in enumerate(lines) if b'"type":"assistant"' in x)
    extra = json.loads(lines[last_answer])
    extra["requestId"] = "req_forkonly000000000000000"[:28]
    extra["message"]["id"] = "msg_forkonly00000000000"[:24]
    extra["timestamp"] = "2026-12-05T06:00:00.000Z"
    original = tmp_path / "a" / f"{BASIC_SESSION}.jsonl"
    copy = tmp_path / "b" / f"{fork}.jsonl"
    original.parent.mkdir()
    copy.parent.mkdir()
    original.write_bytes(b"".join(lines))
    copy.write_bytes(b"".join(_fork(lines, fork)) + _fork([json.dumps(extra).encode()], fork)[0])
    importer = TranscriptImporter(store, prices=SHIPPED)
    for path in (original, copy) if first == "original" else (copy, original):
        importer.run([path])
    assert session(store)["api_requests"] == 3
    assert round(session(store)["cost_usd"], 9) == round(BASIC_COST, 9)
    forked = session(store, fork)
    assert forked["api_requests"] == 1
    assert forked["tool_calls"] == 0 and forked["prompts"] == 0
    check_rollups(store)


def test_telemetry_without_request_ids_is_matched_by_model_and_tokens(store):
    """An older Claude Code sent api_request events without `request_id`: the transcript's
    requests are matched to them by model and token counts, never counted twice."""
    otlp, projects = TRANSCRIPT_SETS["basic"]
    truth = Truth(otlp)
    TranscriptImporter(store, prices=SHIPPED).run([FIXTURES / projects])
    for signal, body in grpc_requests(otlp):
        d = decode_protobuf(signal, body)
        at = column_names("events").index("request_id")
        d.rows["events"] = [(*r[:at], None, *r[at + 1 :]) for r in d.rows["events"]]
        write_rows(store, [d])
    row = session(store)
    assert row["api_requests"] == len(truth.api_requests())
    assert round(row["cost_usd"], 9) == round(truth.cost(), 9)
    assert row["cost_sources"] == "reported"
    check_rollups(store)


def test_a_commit_that_needs_more_memory_is_done_again_with_more(tmp_path):
    """`claude-top import` runs DuckDB under a low memory limit; a batch that does not fit is
    rolled back and committed again with the limit doubled, never lost or doubled."""
    store = Store.open(tmp_path / "ct.duckdb", memory_limit="8MB")
    otlp, projects = TRANSCRIPT_SETS["continued"]
    TranscriptImporter(store, prices=SHIPPED).run([FIXTURES / projects])
    assert store.memory_limit != "8MB"
    row = session(store, Truth(otlp).api_requests()[0]["session.id"])
    assert (row["api_requests"], round(row["cost_usd"], 9)) == (6, round(Truth(otlp).cost(), 9))
    check_rollups(store)
    store.close()
