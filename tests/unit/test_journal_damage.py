"""A corrupt journal record costs that record only: the journal resynchronises on the next whole
record (length + CRC framing), the damaged bytes stand for the seqs they cover and reach
`ingest_failed` with a reason, and every record behind them is indexed. A torn tail (a write a
crash interrupted, never acknowledged) is still cut."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_top.core.sources.otlp.decode import accept_protobuf
from claude_top.core.store import journal as journal_mod
from claude_top.core.store.database import Store
from claude_top.core.store.journal import Journal, JournalError, read_body, read_damaged
from claude_top.core.store.writer import StoreWriter

N = 60
FIELDS = {"magic": 0, "crc": 4, "length": 8, "seq": 12, "records": 28, "signal": 36}


def bodies(n: int = N, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(10, 400)) for _ in range(n)]


def journal_of(folder: Path, blobs: list[bytes], per_group: int = 7) -> list[int]:
    """Journal `blobs` (in groups, as the writer does); returns each record's offset."""
    j = Journal(folder)
    for i in range(0, len(blobs), per_group):
        j.append([("logs", 1_000 + k, 1, b) for k, b in enumerate(blobs[i : i + per_group])])
    offsets = [e.offset for e in j.read(0, j.last_seq, 10_000)]
    j.close()
    return offsets


def flip(path: Path, at: int, mask: int = 0x01) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ mask]))


def outcome(j: Journal) -> dict[int, bytes | str]:
    """seq -> its body, or why it cannot be read."""
    out: dict[int, bytes | str] = {}
    for e in j.read(0, j.last_seq, 10_000):
        try:
            out[e.seq] = read_body(e)
        except JournalError as exc:
            out[e.seq] = str(exc)
    return out


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("seq", [1, 31, N])
def test_a_damaged_header_costs_its_record_only(tmp_path, field, seq):
    """The issue's probe: one flipped byte of a record header in the last journal file lost
    every record after it (30 of 60), silently."""
    blobs = bodies()
    offsets = journal_of(tmp_path / "j", blobs)
    (segment,) = (tmp_path / "j").iterdir()
    flip(segment, offsets[seq - 1] + FIELDS[field])
    j = Journal(tmp_path / "j")
    got = outcome(j)
    assert j.last_seq == N
    assert [s for s in got if got[s] != blobs[s - 1]] == [seq]
    assert isinstance(got[seq], str) and f"journal record {seq}" in got[seq]
    assert j.append([("logs", 9, 1, b"after")]) == N + 1
    assert read_body(j.read(N, N + 1, 1)[0]) == b"after"


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_flipped_byte_costs_the_record_holding_it_only(tmp_path_factory, data):
    blobs = bodies(20, seed=data.draw(st.integers(0, 1_000)))
    folder = tmp_path_factory.mktemp("j")
    offsets = journal_of(folder, blobs, per_group=3)
    (segment,) = folder.iterdir()
    at = data.draw(st.integers(0, segment.stat().st_size - 1))
    flip(segment, at, data.draw(st.sampled_from([0x01, 0x02, 0x10, 0x80, 0xFF])))
    hit = max(i for i, o in enumerate(offsets) if o <= at) + 1
    j = Journal(folder)
    got = outcome(j)
    assert j.last_seq == 20
    assert [s for s in got if got[s] != blobs[s - 1]] == [hit]


def test_zeroed_bytes_across_records_cost_exactly_those(tmp_path):
    blobs = bodies()
    offsets = journal_of(tmp_path / "j", blobs)
    (segment,) = (tmp_path / "j").iterdir()
    start, end = offsets[9] + 20, offsets[13] + 3  # from inside record 10 to inside 14
    with open(segment, "r+b") as f:
        f.seek(start)
        f.write(bytes(end - start))
    j = Journal(tmp_path / "j")
    got = outcome(j)
    assert j.last_seq == N
    assert [s for s in got if got[s] != blobs[s - 1]] == [10, 11, 12, 13, 14]
    first, *rest = j.read(9, 14, 10)
    assert first.damage and read_damaged(first) == segment.read_bytes()[offsets[9] : offsets[14]]
    assert all(e.damage and read_damaged(e) is None for e in rest)


def test_a_missing_segment_stands_for_its_records(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "SEGMENT_BYTES", 1_000)
    blobs = bodies(30)
    journal_of(tmp_path / "j", blobs, per_group=5)
    segments = sorted((tmp_path / "j").iterdir())
    assert len(segments) >= 3
    gone = segments[1]
    first, nxt = int(gone.stem), int(segments[2].stem)
    gone.unlink()
    j = Journal(tmp_path / "j")
    got = outcome(j)
    assert j.last_seq == 30
    assert [s for s in got if got[s] != blobs[s - 1]] == list(range(first, nxt))
    assert "missing" in got[first]


def test_a_torn_tail_is_still_cut_and_its_seq_reused(tmp_path):
    blobs = bodies(5)
    journal_of(tmp_path / "j", blobs)
    (segment,) = (tmp_path / "j").iterdir()
    whole = segment.stat().st_size
    record = journal_mod._header(6, "logs", 7, 1, b"y" * 300) + b"y" * 300
    with open(segment, "ab") as f:
        f.write(record[:200])
    j = Journal(tmp_path / "j")
    assert (j.last_seq, j.torn_bytes, j.damage) == (5, 200, [])
    assert segment.stat().st_size == whole


def test_a_last_record_whose_length_is_damaged_is_not_taken_for_a_torn_write(tmp_path):
    blobs = bodies(5)
    offsets = journal_of(tmp_path / "j", blobs)
    (segment,) = (tmp_path / "j").iterdir()
    flip(segment, offsets[4] + FIELDS["length"] + 2)  # claims 64 kB more than the file holds
    size = segment.stat().st_size
    j = Journal(tmp_path / "j")
    assert j.last_seq == 5 and j.torn_bytes == 0 and segment.stat().st_size == size
    assert "journal record 5 damaged" in outcome(j)[5]


def test_the_indexer_keeps_a_damaged_record_aside_and_indexes_the_rest(tmp_path):
    """60 acknowledged exports, a flipped header byte in record 31: 59 indexed, record 31 in
    ingest_failed with the reason and its bytes, the damage reported."""
    from truth import grpc_requests

    path = tmp_path / "ct.duckdb"
    Store.open(path).close()
    (logs,) = [body for signal, body in grpc_requests("basic.grpc") if signal == "logs"]
    export = accept_protobuf("logs", logs)
    j = Journal(Path(f"{path}.journal"))
    for _ in range(N):
        j.append([("logs", export.received_ns, export.count, logs)])
    j.close()
    entries = j.read(0, N, N)
    segment = Path(entries[0].path)
    flip(segment, entries[30].offset + FIELDS["seq"])
    damaged = segment.read_bytes()[entries[30].offset : entries[31].offset]

    store = Store.open(path)
    writer = StoreWriter(store, decode_in_worker=False)
    assert writer.sync(30)
    writer.close()
    cur = store.cursor()
    assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == export.count  # deduped
    assert writer.stats.rows_indexed == (N - 1) * export.count
    sql = "SELECT seq, signal, received_ns, records, error, body FROM ingest_failed"
    failed = cur.execute(sql).fetchall()
    reason = (
        f"journal record 31 damaged: bytes {entries[30].offset}-{entries[31].offset} of "
        f"{segment} hold no whole record"
    )
    assert failed == [(31, None, None, None, f"export 31: {reason}", damaged)]
    assert reason in writer.stats.last_index_error or any(
        reason in d for d in writer.journal.damage
    )
    assert store.journal_backlog() == (0, 0)
    assert not os.listdir(f"{path}.journal")
    store.close()
