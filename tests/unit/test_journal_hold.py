"""A second reader of the journal (the relay): what it holds is kept until it lets go, even
once indexed, across a reopen; its reads keep their own place beside the indexer's."""

from __future__ import annotations

import threading

from claude_top.core.store import journal as journal_mod
from claude_top.core.store.journal import Journal, read_body


def items(n: int, start: int = 0, size: int = 100) -> list[tuple[str, int, int, bytes]]:
    return [("logs", 1_000 + i, i + 1, bytes([i % 251]) * size) for i in range(start, start + n)]


def segments(path) -> list[int]:
    return sorted(int(p.stem) for p in path.iterdir() if p.suffix == ".ctj")


def test_held_records_outlive_their_indexing_and_go_when_the_hold_moves(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "SEGMENT_BYTES", 1_000)
    j = Journal(tmp_path / "j", hold_seq=0)
    for k in range(4):
        j.append(items(10, start=10 * k))  # four segments of ten: 1, 11, 21, 31
    j.release(40)  # all indexed, nothing sent
    assert segments(tmp_path / "j") == [1, 11, 21, 31]
    j.hold(15)
    assert segments(tmp_path / "j") == [11, 21, 31]
    assert [e.seq for e in j.read(15, 40, 100, reader="forward")] == list(range(16, 41))
    j.hold(None)  # nobody holds: what is indexed goes (the written-to segment stays)
    assert segments(tmp_path / "j") == [31]


def test_a_reopen_keeps_what_is_held_and_a_close_leaves_it(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "SEGMENT_BYTES", 1_000)
    j = Journal(tmp_path / "j", hold_seq=0)
    for k in range(3):
        j.append(items(10, start=10 * k))
    j.release(30)
    j.hold(12)
    j.close()  # indexed but not all sent: the files stay
    assert segments(tmp_path / "j") == [11, 21]
    again = Journal(tmp_path / "j", indexed_seq=30, hold_seq=12)
    assert again.last_seq == 30
    assert [read_body(e) for e in again.read(12, 30, 100, reader="forward")] == [
        b for *_, b in items(18, start=12)
    ]
    without = Journal(tmp_path / "j", indexed_seq=30)  # a run without the relay lets go
    assert segments(tmp_path / "j") == []
    assert without.last_seq == 30  # and the seqs go on


def test_two_readers_keep_their_own_place(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "SEGMENT_BYTES", 1_000)
    j = Journal(tmp_path / "j", hold_seq=0)
    for k in range(4):
        j.append(items(10, start=10 * k))
    got = {"index": [], "forward": []}

    def walk(reader: str) -> None:
        after = 0
        while after < 40:
            entries = j.read(after, 40, 3, reader=reader)
            got[reader] += [e.seq for e in entries]
            after = entries[-1].seq
            if reader == "index":
                j.release(after)
            else:
                j.hold(after)

    threads = [threading.Thread(target=walk, args=(r,)) for r in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert got == {"index": list(range(1, 41)), "forward": list(range(1, 41))}
    assert segments(tmp_path / "j") == [31]


def test_in_memory_hold_and_a_reader_behind_a_release():
    j = Journal(None, hold_seq=0)
    j.append(items(10))
    j.release(10)
    assert [e.seq for e in j.read(0, 10, 100, reader="forward")] == list(range(1, 11))
    j.hold(4)
    assert [e.seq for e in j.read(4, 10, 3, reader="forward")] == [5, 6, 7]
    j.hold(None)
    j.append(items(5, start=10))
    # the reader was at 7 and everything to 10 was released under it: it goes on from 11
    assert [e.seq for e in j.read(7, 15, 3, reader="forward")] == [11, 12, 13]
