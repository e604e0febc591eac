"""Finding the records of a journal segment when it is opened, damaged or not.

Records follow each other, each header giving the next one's offset and seq. Where that chain
breaks, the segment is searched onward for the next record that is whole (its magic, a later
seq, its body matching its CRC): the bytes between are damage, standing for the seqs the chain
skipped (`Gap`), and the records after them are kept. Only when nothing whole follows is the
break the tail, and a tail that is a prefix of a record (or zeros) is a write that a crash
interrupted, never acknowledged: the journal cuts it (`Scan.torn_at`). Any other damaged tail
stands for one record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import BinaryIO

from claude_top.core.store.journal_record import (
    HEADER,
    MAGIC,
    Header,
    body_intact,
    crc,
    header_at,
    parse_header,
)

_SEARCH_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class Gap:
    """Damaged bytes of a segment, standing for seqs first_seq..last_seq (none if first_seq >
    last_seq: bytes that were never a record)."""

    offset: int
    end: int
    first_seq: int
    last_seq: int

    @property
    def seqs(self) -> int:
        return max(0, self.last_seq - self.first_seq + 1)

    def describe(self, path: str) -> str:
        what = (
            f"journal record {self.first_seq}"
            if self.seqs == 1
            else f"journal records {self.first_seq}-{self.last_seq}"
        )
        if self.end == self.offset:
            return f"{what} missing: the segment before {path} ends before them"
        return f"{what} damaged: bytes {self.offset}-{self.end} of {path} hold no whole record"


@dataclass
class Scan:
    """What a segment holds: its last seq, the end of what is kept, its gaps, and where a torn
    write begins (None: none)."""

    last_seq: int
    size: int
    gaps: dict[int, Gap] = field(default_factory=dict)
    torn_at: int | None = None


def scan_segment(path: str, first: int, last_file: bool, next_first: int | None) -> Scan:
    """Walk the records of the segment starting at seq `first` (the next segment, if any,
    starting at `next_first`), resynchronising past damage."""
    scan = Scan(first - 1, 0)
    seq, offset, prev = first - 1, 0, None  # prev: the offset of the record before, if chained
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        scan.size = size
        while offset < size:
            header = header_at(f, offset)
            end = offset + HEADER.size + (header.length if header else 0)
            chained = header is not None and header.seq == seq + 1 and end <= size
            if chained and (end < size or not last_file or body_intact(f, offset, header)):
                seq, prev, offset = header.seq, offset, end
                continue
            start = offset
            if prev is not None and not body_intact(f, prev, header_at(f, prev)):
                start, seq = prev, seq - 1  # its length may be what led here
            bound = None if next_first is None else next_first - 1
            found = _next_whole(f, start + 1, size, seq, bound)
            if found is not None:
                scan.gaps[start] = Gap(start, found[0], seq + 1, found[1].seq - 1)
                seq, prev, offset = found[1].seq - 1, None, found[0]
                continue
            if last_file and _torn(f, start, size, seq + 1):
                scan.torn_at = scan.size = start
                break
            last = bound if bound is not None else seq + 1
            scan.gaps[start] = Gap(start, size, seq + 1, last)
            seq = last
            break
    if next_first is not None and seq < next_first - 1:
        scan.gaps[scan.size] = Gap(scan.size, scan.size, seq + 1, next_first - 1)
        seq = next_first - 1
    scan.last_seq = seq
    return scan


def _next_whole(
    f: BinaryIO, start: int, size: int, after_seq: int, max_seq: int | None
) -> tuple[int, Header] | None:
    """The first whole record at or after `start` whose seq is past `after_seq` (and at most
    `max_seq`): (offset, header)."""
    pos = start
    while pos < size:
        f.seek(pos)
        block = f.read(_SEARCH_BLOCK + len(MAGIC) - 1)
        at = block.find(MAGIC)
        while at != -1:
            offset = pos + at
            header = header_at(f, offset)
            if (
                header is not None
                and header.seq > after_seq
                and (max_seq is None or header.seq <= max_seq)
                and offset + HEADER.size + header.length <= size
                and body_intact(f, offset, header)
            ):
                return offset, header
            at = block.find(MAGIC, at + 1)
        pos += _SEARCH_BLOCK
    return None


def _torn(f: BinaryIO, start: int, size: int, expected_seq: int) -> bool:
    """Whether the tail from `start` is what a write interrupted by a crash leaves: shorter
    than a header, zeros, or the header of the next record with its body cut short (unless the
    rest of the file is that body whole, its length field being what is damaged)."""
    f.seek(start)
    tail = f.read(size - start)
    if len(tail) < HEADER.size or not tail.strip(b"\0"):
        return True
    header = parse_header(tail)
    if header is None or header.seq != expected_seq or HEADER.size + header.length <= len(tail):
        return False
    body = tail[HEADER.size :]
    rest = len(body).to_bytes(4, "little") + header.rest[4:]
    return crc(rest, body) != header.crc
