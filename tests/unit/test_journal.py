"""The ingest journal's segment files: order, rotation, release, torn tails, damage, failures."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from claude_top.core.sources.otlp.decode import accept_protobuf
from claude_top.core.store import journal as journal_mod
from claude_top.core.store.database import Store
from claude_top.core.store.journal import HEADER, Journal, JournalError, read_body, read_damaged
from claude_top.core.store.writer import StoreWriter
from truth import Truth, grpc_requests


def items(n: int, start: int = 0, size: int = 100) -> list[tuple[str, int, int, bytes]]:
    return [("traces", 1_000 + i, i + 1, bytes([i % 251]) * size) for i in range(start, start + n)]


def bodies(j: Journal, after: int = 0) -> list[bytes]:
    return [read_body(e) for e in j.read(after, j.last_seq, 10_000)]


def test_records_come_back_in_order_across_segments(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "SEGMENT_BYTES", 1_000)
    j = Journal(tmp_path / "j")
    assert j.append(items(10)) == 1
    assert j.append(items(15, start=10)) == 11
    assert len(list((tmp_path / "j").iterdir())) == 2  # the second group opened a new segment
    entries = j.read(0, j.last_seq, 100)
    assert [e.seq for e in entries] == list(range(1, 26))
    assert [(e.received_ns, e.records) for e in entries[:2]] == [(1_000, 1), (1_001, 2)]
    assert bodies(j) == [body for *_, body in items(25)]
    assert [e.seq for e in j.read(3, 7, 100)] == [4, 5, 6, 7]  # a read from anywhere
    assert [e.seq for e in j.read(7, 25, 2)] == [8, 9]


@pytest.mark.parametrize("on_disk", [True, False], ids=["segments", "memory"])
def test_a_read_is_bounded_in_bytes_and_a_larger_record_comes_alone(tmp_path, on_disk):
    j = Journal(tmp_path / "j" if on_disk else None)
    j.append(items(3) + items(1, start=3, size=1_000) + items(2, start=4))
    assert [e.seq for e in j.read(0, 6, 100, max_bytes=250)] == [1, 2]
    assert [e.seq for e in j.read(2, 6, 100, max_bytes=250)] == [3]
    assert [e.seq for e in j.read(3, 6, 100, max_bytes=250)] == [4]  # over the bound: alone
    assert [e.seq for e in j.read(4, 6, 100, max_bytes=250)] == [5, 6]
    assert [e.seq for e in j.read(0, 6, 100)] == [1, 2, 3, 4, 5, 6]


def test_release_drops_wholly_indexed_segments_and_a_reopen_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "SEGMENT_BYTES", 1_000)
    j = Journal(tmp_path / "j")
    for k in range(4):
        j.append(items(10, start=10 * k))  # four segments of ten
    j.release(15)
    assert sorted(p.name for p in (tmp_path / "j").iterdir()) == [
        f"{s:020d}.ctj" for s in (11, 21, 31)
    ]
    assert j.pending() == (25, sum(range(16, 41)))
    j.close()

    again = Journal(tmp_path / "j", indexed_seq=15)
    assert again.last_seq == 40
    assert [e.seq for e in again.read(15, 40, 100)] == list(range(16, 41))
    assert again.append(items(1)) == 41  # appends after what is there


def test_a_torn_tail_is_cut_and_the_seq_continues(tmp_path):
    j = Journal(tmp_path / "j")
    j.append(items(3))
    j.close()
    (segment,) = (tmp_path / "j").iterdir()
    whole = segment.stat().st_size
    partial = HEADER.pack(journal_mod.MAGIC, 0, 100, 4, 0, 1, 0) + b"x" * 10
    with open(segment, "ab") as f:
        f.write(partial)  # a crash in the middle of the fourth record: never acknowledged

    j = Journal(tmp_path / "j")
    assert j.last_seq == 3
    assert segment.stat().st_size == whole
    assert j.append(items(1, start=3)) == 4
    assert bodies(j) == [body for *_, body in items(4)]


def _flip(segment: Path, at: int) -> None:
    raw = bytearray(segment.read_bytes())
    raw[at] ^= 0x01
    segment.write_bytes(bytes(raw))


def test_a_whole_last_record_failing_its_checksum_is_damage_kept_not_cut(tmp_path):
    """A torn write leaves a prefix of its record; a last record of its full length that fails
    its checksum may have been acknowledged: its bytes are kept, its seq is not reused."""
    j = Journal(tmp_path / "j")
    j.append(items(3))
    j.close()
    (segment,) = (tmp_path / "j").iterdir()
    last = j.read(0, 3, 10)[2]
    _flip(segment, last.offset + HEADER.size + 5)
    size = segment.stat().st_size
    for read_only in (True, False):
        again = Journal(tmp_path / "j", read_only=read_only)
        assert again.last_seq == 3 and segment.stat().st_size == size
        (third,) = again.read(2, 3, 10)
        where = f"bytes {last.offset}-{size} of {segment}"
        assert third.damage == f"journal record 3 damaged: {where} hold no whole record"
        with pytest.raises(JournalError, match="journal record 3 damaged"):
            read_body(third)
        damaged = bytearray(segment.read_bytes()[last.offset :])
        assert read_damaged(third) == bytes(damaged)
    assert again.append(items(1, start=3)) == 4
    assert [read_body(e) for e in again.read(3, 4, 10)] == [items(1, start=3)[0][3]]


def test_a_damaged_record_before_intact_ones_is_kept_and_refused_by_its_reader(tmp_path):
    j = Journal(tmp_path / "j")
    j.append(items(3))
    j.close()
    (segment,) = (tmp_path / "j").iterdir()
    second = j.read(0, 3, 10)[1]
    _flip(segment, second.offset + HEADER.size + 5)
    again = Journal(tmp_path / "j")
    assert again.last_seq == 3
    assert again.damage == []  # the indexer meets it: see test_an_export_that_cannot_be_decoded
    entries = again.read(0, 3, 10)
    assert read_body(entries[0]) == items(1)[0][3]
    with pytest.raises(JournalError, match="record 2 fails its checksum"):
        read_body(entries[1])
    assert read_body(entries[2]) == items(1, start=2)[0][3]


def test_a_failed_sync_leaves_nothing_behind(tmp_path, monkeypatch):
    j = Journal(tmp_path / "j")
    j.append(items(2))
    size = next((tmp_path / "j").iterdir()).stat().st_size

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdatasync", full_disk)
    with pytest.raises(OSError):
        j.append(items(2, start=2))
    monkeypatch.undo()
    assert next((tmp_path / "j").iterdir()).stat().st_size == size
    assert j.last_seq == 2
    assert j.append(items(1, start=7)) == 3
    assert bodies(j) == [body for *_, body in items(2) + items(1, start=7)]


def test_in_memory_journal():
    j = Journal(None)
    assert j.append(items(3)) == 1
    assert bodies(j) == [body for *_, body in items(3)]
    j.release(2)
    assert [e.seq for e in j.entries()] == [3]
    assert j.pending() == (1, 3)


def _fill(path: Path, writer_options: dict | None = None) -> StoreWriter:
    store = Store.open(path)
    writer = StoreWriter(store, decode_in_worker=False, **(writer_options or {}))
    for signal, body in grpc_requests("basic.grpc"):
        writer.submit(accept_protobuf(signal, body)).result(10)
    assert writer.sync(10)
    return writer


def _counts(store: Store) -> tuple[int, int, int]:
    return (
        store.cursor()
        .execute(
            "SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM events), "
            "(SELECT count(*) FROM metric_points)"
        )
        .fetchone()
    )


def test_indexed_before_a_crash_is_not_indexed_again(tmp_path):
    """The indexed seq commits with the rows: segments a crash left behind are not re-read."""
    truth = Truth("basic.grpc")
    path = tmp_path / "ct.duckdb"
    writer = _fill(path)
    left = tmp_path / "left"
    shutil.copytree(str(path) + ".journal", left)  # as a crash before the release would leave
    writer.close()
    writer.store.close()
    shutil.rmtree(str(path) + ".journal")
    shutil.copytree(left, str(path) + ".journal")
    assert any(Path(str(path) + ".journal").iterdir())

    store = Store.open(path)
    writer = StoreWriter(store, decode_in_worker=False)
    assert writer.stats.backlog_rows == 0
    assert writer.sync(5)
    writer.close()
    assert _counts(store) == (len(truth.spans), len(truth.events), truth.data_points)
    assert not any(Path(str(path) + ".journal").iterdir())
    store.close()


def test_an_export_that_cannot_be_decoded_is_kept_aside(tmp_path):
    """A journalled record damaged on disk: counted, kept in ingest_failed with its bytes as
    found, the rest indexed."""
    path = tmp_path / "ct.duckdb"
    Store.open(path).close()
    exports = [accept_protobuf(signal, body) for signal, body in grpc_requests("basic.grpc")]
    j = Journal(Path(f"{path}.journal"))  # acknowledged, then the process died
    j.append([(e.signal, e.received_ns, e.count, e.body) for e in exports])
    j.close()
    second = j.read(0, j.last_seq, 10)[1]
    _flip(Path(second.path), second.offset + HEADER.size + 3)

    store = Store.open(path)
    writer = StoreWriter(store, decode_in_worker=False)
    assert writer.sync(10)
    writer.close()
    assert writer.stats.index_errors == 1
    assert "record 2 fails its checksum" in writer.stats.last_index_error
    failed = store.cursor().execute("SELECT seq, signal, records, body FROM ingest_failed")
    damaged = bytearray(exports[1].body)
    damaged[3] ^= 0x01
    assert failed.fetchall() == [(2, second.signal, second.records, bytes(damaged))]
    assert writer.stats.rows_indexed == sum(e.count for e in exports)
    assert sum(_counts(store)) == sum(e.count for i, e in enumerate(exports) if i != 1)
    assert store.journal_backlog() == (0, 0)
    store.close()


def test_a_journal_kept_in_the_table_by_an_earlier_version_is_adopted(tmp_path):
    truth = Truth("basic.grpc")
    path = tmp_path / "ct.duckdb"
    store = Store.open(path)
    cur = store.cursor()
    cur.execute(
        "CREATE TABLE ingest_journal "
        "(seq BIGINT, signal VARCHAR, received_ns BIGINT, records BIGINT, body BLOB)"
    )
    for seq, (signal, body) in enumerate(grpc_requests("basic.grpc"), 1):
        export = accept_protobuf(signal, body)
        cur.execute(
            "INSERT INTO ingest_journal VALUES (?, ?, ?, ?, ?)",
            [seq, signal, export.received_ns, export.count, body],
        )
    writer = StoreWriter(store, decode_in_worker=False)
    assert writer.sync(10)
    writer.close()
    assert _counts(store) == (len(truth.spans), len(truth.events), truth.data_points)
    tables = {
        r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    assert "ingest_journal" not in tables
    store.close()


def test_the_database_size_counts_the_journal(tmp_path):
    path = tmp_path / "ct.duckdb"
    writer = _fill(path)
    files = [path, Path(f"{path}.wal"), *Path(f"{path}.journal").iterdir()]
    segments = sum(p.stat().st_size for p in Path(f"{path}.journal").iterdir())
    assert segments == sum(len(body) + HEADER.size for _, body in grpc_requests("basic.grpc"))
    assert writer.store.size_bytes() == sum(p.stat().st_size for p in files if p.exists())
    writer.close()
    writer.store.close()


def test_reading_on_after_a_release_at_a_segment_boundary(tmp_path, monkeypatch):
    """The indexer's read position survives the segments before it being deleted."""
    monkeypatch.setattr(journal_mod, "SEGMENT_BYTES", 1_000)
    j = Journal(tmp_path / "j")
    for k in range(3):
        j.append(items(10, start=10 * k))
    assert [e.seq for e in j.read(0, 30, 10)] == list(range(1, 11))  # all of the first segment
    j.release(10)
    assert [e.seq for e in j.read(10, 30, 5)] == list(range(11, 16))
    j.release(15)
    assert [e.seq for e in j.read(15, 30, 100)] == list(range(16, 31))
    assert [read_body(e) for e in j.read(15, 30, 100)] == [b for *_, b in items(15, start=15)]


class JournalModel(RuleBasedStateMachine):
    """Appends, reads in chunks, releases and reopenings in any order agree with a plain list."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="journal-model-"))
        self.journal = Journal(self.dir)
        self.bodies: list[bytes] = []  # seq - 1 -> body
        self.indexed = 0  # what the indexer committed (the DuckDB side of the model)
        self.read_to = 0  # where the indexer has read to

    @rule(sizes=st.lists(st.integers(0, 300), min_size=1, max_size=6))
    def append(self, sizes):
        group = [("logs", 7, 1, bytes([len(self.bodies) % 256]) * n) for n in sizes]
        first = self.journal.append(group)
        assert first == len(self.bodies) + 1
        self.bodies += [body for *_, body in group]

    @rule(limit=st.integers(1, 8))
    def read(self, limit):
        entries = self.journal.read(self.read_to, len(self.bodies), limit)
        expected = list(range(self.read_to + 1, min(len(self.bodies), self.read_to + limit) + 1))
        assert [e.seq for e in entries] == expected
        assert [read_body(e) for e in entries] == [self.bodies[s - 1] for s in expected]
        self.read_to += len(entries)

    @rule()
    def index_what_was_read(self):
        self.indexed = self.read_to
        self.journal.release(self.indexed)

    @rule()
    def restart(self):
        """A crash: the indexer resumes from what it committed."""
        self.journal.close()
        self.journal = Journal(self.dir, self.indexed)
        self.read_to = self.indexed
        assert self.journal.last_seq == max(len(self.bodies), self.indexed)
        todo = len(self.bodies) - self.indexed
        assert self.journal.pending() == (todo, todo)

    @rule(cut=st.integers(1, HEADER.size + 50))
    def crash_mid_append(self, cut):
        """The process dies inside a write: a prefix of the next record is on disk, unacked."""
        segments = sorted(self.dir.iterdir())
        if not segments:
            return
        seq = len(self.bodies) + 1
        body = b"z" * 50
        record = journal_mod._header(seq, "logs", 7, 1, body) + body
        with open(segments[-1], "ab") as f:
            f.write(record[: min(cut, len(record) - 1)])
        self.restart()

    @invariant()
    def pending_is_what_is_not_indexed(self):
        entries = [e for e in self.journal.entries() if e.seq > self.indexed]
        assert [e.seq for e in entries] == list(range(self.indexed + 1, len(self.bodies) + 1))

    def teardown(self):
        self.journal.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def small_segments(monkeypatch):
    monkeypatch.setattr(journal_mod, "SEGMENT_BYTES", 600)


def test_journal_model(small_segments):
    run_state_machine_as_test(
        JournalModel, settings=settings(max_examples=60, stateful_step_count=40, deadline=None)
    )
