"""The ingest journal: acknowledged export bodies in append-only segment files beside the database.

`Journal.append` writes a group of records and fdatasyncs the file: once it returns, those
exports may be acknowledged. The indexer reads the records back in order (`Journal.read`),
decodes them into the tables and stores the last seq it indexed in the same DuckDB transaction;
`Journal.release` then deletes the segments it has wholly passed. At the next start the records
after that seq are indexed again, and a torn record at the tail (a crash mid-write, so never
acknowledged) is cut off. A second reader (the relay, `receiver.forward`) may `hold` records it
has not sent yet: segments are deleted only once both have passed them. Each reader reads with
its own cursor. Damage anywhere else costs the records it covers only
(`journal_scan`): they are read as entries with `damage` set, which the indexer keeps in
`ingest_failed` with their bytes, and the records after them are indexed.

Records are framed as `journal_record` says.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from claude_top.core.store.journal_record import (
    HEADER,
    MAGIC,
    SIGNALS,
    Entry,
    JournalError,
    header_at,
    read_body,
    read_damaged,
)
from claude_top.core.store.journal_record import encode_header as _header
from claude_top.core.store.journal_scan import Gap, scan_segment

__all__ = [
    "HEADER",
    "MAGIC",
    "SIGNALS",
    "Entry",
    "Journal",
    "JournalError",
    "_header",
    "read_body",
    "read_damaged",
]
SEGMENT_BYTES = 64 << 20
SUFFIX = ".ctj"
_IOV_MAX = 1000


def _make_folder(directory: Path) -> None:
    """The journal's folder, made private if new. Raises JournalError saying what is wrong."""
    if directory.exists() and not directory.is_dir():
        raise JournalError(
            f"{directory} is not a folder: claude-top keeps the journal of acknowledged exports "
            "there; move that file away"
        )
    old = os.umask(0o077)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.listdir(directory)
    except OSError as exc:
        raise JournalError(
            f"cannot use the journal folder {directory}: {exc.strerror or exc}"
        ) from None
    finally:
        os.umask(old)


@dataclass
class _Segment:
    first_seq: int
    path: str
    last_seq: int
    size: int
    gaps: dict[int, Gap] = field(default_factory=dict)
    """Damaged bytes, by offset: where the walk skips, standing for the seqs they cover."""


class Journal:
    """The journal of one database: segment files in `directory`, or in memory when None."""

    def __init__(
        self,
        directory: Path | None,
        indexed_seq: int = 0,
        read_only: bool = False,
        hold_seq: int | None = None,
    ) -> None:
        self.directory = directory
        self.read_only = read_only
        self.indexed_seq = indexed_seq
        self.hold_seq = hold_seq
        """Records after this seq are kept even once indexed (None: no second reader)."""
        self.last_seq = indexed_seq
        self.damage: list[str] = []
        """What was found damaged when opened, one line each."""
        self.torn_bytes = 0
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._fd: int | None = None
        self._memory: dict[int, Entry] = {}
        self._cursors: dict[str, tuple[int, int, int]] = {}
        """Each reader's position: (its segment's first seq, offset, next seq)."""
        if directory is not None and read_only:
            if directory.is_dir():
                self._recover()
        elif directory is not None:
            _make_folder(directory)
            self._recover()

    # -- opening ------------------------------------------------------------------------------

    def _segment_files(self) -> list[tuple[int, str]]:
        found = []
        for p in self.directory.iterdir():
            if p.suffix == SUFFIX and p.stem.isdigit():
                found.append((int(p.stem), str(p)))
        return sorted(found)

    def _recover(self) -> None:
        """Find every record; drop indexed segments; cut a torn tail; note the damage."""
        files = self._segment_files()
        for i, (first, path) in enumerate(files):
            last_file = i == len(files) - 1
            next_first = None if last_file else files[i + 1][0]
            scan = scan_segment(path, first, last_file, next_first)
            if scan.torn_at is not None:
                self.torn_bytes += os.path.getsize(path) - scan.torn_at
                if not self.read_only:
                    with open(path, "r+b") as f:
                        f.truncate(scan.torn_at)
                        os.fsync(f.fileno())
            if scan.last_seq < first or scan.last_seq <= self._floor():
                if not self.read_only:
                    os.unlink(path)
                continue
            for gap in scan.gaps.values():
                if gap.last_seq > self.indexed_seq or not gap.seqs:
                    self.damage.append(_damage_note(gap, path))
            self._segments.append(_Segment(first, path, scan.last_seq, scan.size, scan.gaps))
        if self._segments:
            self.last_seq = max(self.last_seq, self._segments[-1].last_seq)

    def entries(self) -> list[Entry]:
        """Every entry journalled and not yet released (the indexer's read position untouched)."""
        with self._lock:
            if self.directory is None:
                return list(self._memory.values())
            segments = list(self._segments)
        return [e for seg in segments for e in _walk(seg, 0, seg.first_seq, seg.last_seq)[0]]

    def pending(self) -> tuple[int, int]:
        """(exports, records) journalled and not yet indexed."""
        todo = [e for e in self.entries() if e.seq > self.indexed_seq]
        return len(todo), sum(e.records for e in todo)

    # -- writing ------------------------------------------------------------------------------

    def append(self, items: list[tuple[str, int, int, bytes]]) -> int:
        """Write (signal, received_ns, records, body) items durably; returns the first seq."""
        first = self.last_seq + 1
        if self.directory is None:
            with self._lock:
                for i, (signal, received_ns, records, body) in enumerate(items):
                    seq = first + i
                    self._memory[seq] = Entry(
                        seq, signal, received_ns, records, None, 0, len(body), body
                    )
                self.last_seq = first + len(items) - 1
            return first
        seg = self._active(first)
        parts: list[bytes] = []
        for i, (signal, received_ns, records, body) in enumerate(items):
            parts.append(_header(first + i, signal, received_ns, records, body))
            parts.append(body)
        start = seg.size
        try:
            written = 0
            for j in range(0, len(parts), _IOV_MAX):
                written += _writev_all(self._fd, parts[j : j + _IOV_MAX])
            os.fdatasync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise
        with self._lock:
            seg.size = start + written
            seg.last_seq = first + len(items) - 1
            self.last_seq = seg.last_seq
        return first

    def _active(self, first: int) -> _Segment:
        """The segment to append to, starting a new one past SEGMENT_BYTES."""
        if self.read_only:
            raise JournalError("the journal is open read-only")
        last = self._segments[-1] if self._segments else None
        fits = last is not None and last.size < SEGMENT_BYTES and last.last_seq == first - 1
        if self._fd is not None and fits:
            return last
        if self._fd is None and fits:
            seg = self._segments[-1]
            self._fd = os.open(seg.path, os.O_WRONLY | os.O_APPEND)
            return seg
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        path = str(self.directory / f"{first:020d}{SUFFIX}")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        seg = _Segment(first, path, first - 1, 0)
        with self._lock:
            self._segments.append(seg)
        return seg

    # -- reading and releasing ----------------------------------------------------------------

    def read(
        self,
        after_seq: int,
        upto_seq: int,
        limit: int,
        max_bytes: int | None = None,
        reader: str = "index",
    ) -> list[Entry]:
        """Up to `limit` entries with after_seq < seq <= upto_seq, in order; with `max_bytes`,
        only as many as fit in that many body bytes (always at least one). Each `reader` (one
        thread each) keeps its own position, so the next read goes on from there."""
        if self.directory is None:
            with self._lock:
                mem = self._memory
                first = after_seq + 1
                if mem and first not in mem:  # released under a reader that was behind
                    first = max(first, min(mem))
                found = [mem[s] for s in range(first, min(upto_seq, first + limit - 1) + 1)]
            return _within(found, max_bytes)
        out: list[Entry] = []
        with self._lock:
            segments = list(self._segments)
        cursor = self._cursors.get(reader)
        index = None
        if cursor is not None and cursor[2] == after_seq + 1:
            index = next((i for i, seg in enumerate(segments) if seg.first_seq == cursor[0]), None)
        if index is None:
            index, offset, seq = self._seek(segments, after_seq)
        else:
            offset, seq = cursor[1], cursor[2]
        while len(out) < limit and seq <= upto_seq and index < len(segments):
            seg = segments[index]
            if seq > seg.last_seq:
                if index + 1 < len(segments):
                    index, offset = index + 1, 0
                    continue
                break
            found, offset = _walk(seg, offset, seq, min(upto_seq, seg.last_seq), limit - len(out))
            fits = _within(found, None if max_bytes is None else max_bytes - _size(out), bool(out))
            if len(fits) < len(found):
                offset = found[len(fits)].offset
            out += fits
            seq += len(fits)
            if len(fits) < len(found):
                break
        if index < len(segments):
            self._cursors[reader] = (segments[index].first_seq, offset, seq)
        return out

    def _seek(self, segments: list[_Segment], after_seq: int) -> tuple[int, int, int]:
        """The cursor of the first record after `after_seq`."""
        index = 0
        for i, seg in enumerate(segments):
            if seg.first_seq <= after_seq + 1:
                index = i
        if not segments or segments[index].first_seq > after_seq + 1:
            return index, 0, segments[index].first_seq if segments else after_seq + 1
        seg = segments[index]
        passed, offset = _walk(seg, 0, seg.first_seq, min(after_seq, seg.last_seq))
        return index, offset, seg.first_seq + len(passed)

    def release(self, indexed_seq: int) -> None:
        """Forget what is indexed: delete segments (except the one written to) wholly passed
        (by the indexer, and by a holding reader)."""
        with self._lock:
            self.indexed_seq = max(self.indexed_seq, indexed_seq)
            self._drop_passed()

    # -- a second reader's hold (the relay) ---------------------------------------------------

    def hold(self, seq: int | None) -> None:
        """Keep the records after `seq` (None: hold nothing) and delete what neither the
        indexer nor the holder needs any more."""
        with self._lock:
            self.hold_seq = seq
            self._drop_passed()

    def _floor(self) -> int:
        """The last seq no reader needs any more."""
        hold = self.hold_seq
        return self.indexed_seq if hold is None else min(self.indexed_seq, hold)

    def _drop_passed(self) -> None:
        """Delete what every reader has passed (call with the lock held)."""
        floor = self._floor()
        if self.directory is None:
            for seq in [s for s in self._memory if s <= floor]:
                del self._memory[seq]
            return
        keep = []
        for i, seg in enumerate(self._segments):
            active = i == len(self._segments) - 1
            if not active and seg.last_seq <= floor:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(seg.path)
            else:
                keep.append(seg)
        self._segments = keep

    def close(self) -> None:
        """Stop writing; a journal wholly indexed leaves no file behind."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with self._lock:
            if self.directory is not None and not self.read_only and self._floor() >= self.last_seq:
                for seg in self._segments:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(seg.path)
                self._segments = []


def _walk(
    seg: _Segment, offset: int, seq: int, last_seq: int, limit: int | None = None
) -> tuple[list[Entry], int]:
    """The entries of `seg` from record `seq` (at `offset`) to `last_seq`, at most `limit` of
    them, and the offset after them. A gap yields an entry with `damage` for each seq it
    stands for (the offset stays on it until the last one is taken)."""
    out: list[Entry] = []
    with open(seg.path, "rb") as f:
        while seq <= last_seq and (limit is None or len(out) < limit):
            gap = seg.gaps.get(offset)
            if gap is not None:
                if seq > gap.last_seq:  # passed (or bytes that were never a record)
                    offset = gap.end
                    continue
                length = gap.end - gap.offset if seq == gap.first_seq else 0
                damage = gap.describe(seg.path)
                out.append(Entry(seq, "", 0, 0, seg.path, gap.offset, length, damage=damage))
                seq += 1
                continue
            header = header_at(f, offset)
            if header is None or header.seq != seq:
                raise JournalError(f"{seg.path}: record {seq} at byte {offset} is damaged")
            h = header
            out.append(Entry(seq, h.signal, h.received_ns, h.records, seg.path, offset, h.length))
            offset += HEADER.size + header.length
            seq += 1
    return out, offset


def _damage_note(gap: Gap, path: str) -> str:
    """One line for the damage found in a segment: what it costs."""
    if not gap.seqs:
        return (
            f"journal: bytes {gap.offset}-{gap.end} of {path} are damaged; no record lost, the "
            "records after them are indexed"
        )
    kept = "are" if gap.seqs > 1 else "is"
    return (
        f"{gap.describe(path)}; {'they' if gap.seqs > 1 else 'it'} {kept} kept in "
        "ingest_failed with the damaged bytes, the records after indexed"
    )


def _size(entries: list[Entry]) -> int:
    return sum(e.length for e in entries)


def _within(entries: list[Entry], max_bytes: int | None, some: bool = False) -> list[Entry]:
    """The first entries whose bodies fit in `max_bytes` (the first one always, unless `some`
    are taken already)."""
    if max_bytes is None:
        return entries
    total = 0
    for i, e in enumerate(entries):
        total += e.length
        if total > max_bytes and (i or some):
            return entries[:i]
    return entries


def _writev_all(fd: int, parts: list[bytes]) -> int:
    total = sum(len(p) for p in parts)
    done = os.writev(fd, parts)
    while done < total:  # a short write: finish the rest
        flat = b"".join(parts)[done:]
        done += os.write(fd, flat)
    return total
