"""One journal record: a 40-byte header (magic, CRC-32 of the rest, body length, seq, received
time, record count, signal) and the export's protobuf body; and the `Entry` that says where a
record is. The decode workers read bodies with `read_body` (no DuckDB here)."""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

SIGNALS = ("traces", "logs", "metrics")
MAGIC = b"CTJ1"
HEADER = struct.Struct("<4sIIqqqB3x")


class JournalError(OSError):
    """A journal record cannot be read back as written."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One journalled export: where its record is (or, in memory, its body).

    With `damage`, its record could not be found whole: `offset` and `length` are then those of
    the damaged bytes standing for it (length 0 when another entry carries them).
    """

    seq: int
    signal: str
    received_ns: int
    records: int
    path: str | None
    offset: int
    length: int
    body: bytes | None = None
    damage: str | None = None


@dataclass(frozen=True, slots=True)
class Header:
    crc: int
    length: int
    seq: int
    received_ns: int
    records: int
    signal: str
    rest: bytes
    """The header's bytes after the CRC: what the CRC covers with the body."""


def crc(header_rest: bytes, body: bytes) -> int:
    return zlib.crc32(body, zlib.crc32(header_rest))


def encode_header(seq: int, signal: str, received_ns: int, records: int, body: bytes) -> bytes:
    rest = HEADER.pack(MAGIC, 0, len(body), seq, received_ns, records, SIGNALS.index(signal))[8:]
    return MAGIC + crc(rest, body).to_bytes(4, "little") + rest


def parse_header(raw: bytes) -> Header | None:
    """The header at the start of `raw`, or None if it is not one."""
    if len(raw) < HEADER.size:
        return None
    magic, check, length, seq, received_ns, records, sig = HEADER.unpack_from(raw)
    if magic != MAGIC or sig >= len(SIGNALS) or length < 0 or records < 0 or seq < 1:
        return None
    return Header(check, length, seq, received_ns, records, SIGNALS[sig], raw[8 : HEADER.size])


def header_at(f: BinaryIO, offset: int) -> Header | None:
    f.seek(offset)
    return parse_header(f.read(HEADER.size))


def body_intact(f: BinaryIO, offset: int, header: Header) -> bool:
    """Whether the record at `offset` has its whole body and it matches the CRC."""
    f.seek(offset + HEADER.size)
    body = f.read(header.length)
    return len(body) == header.length and crc(header.rest, body) == header.crc


def read_body(entry: Entry) -> bytes:
    """The body of a journalled export, checked against its CRC."""
    if entry.body is not None:
        return entry.body
    if entry.damage:
        raise JournalError(entry.damage)
    fd = os.open(entry.path, os.O_RDONLY)
    try:
        raw = os.pread(fd, HEADER.size + entry.length, entry.offset)
    finally:
        os.close(fd)
    header = parse_header(raw)
    body = raw[HEADER.size :]
    if header is None or header.seq != entry.seq or len(body) != entry.length:
        raise JournalError(f"journal record {entry.seq} is damaged ({entry.path}@{entry.offset})")
    if crc(header.rest, body) != header.crc:
        raise JournalError(f"journal record {entry.seq} fails its checksum ({entry.path})")
    return body


def read_damaged(entry: Entry) -> bytes | None:
    """The bytes journalled for an export, unchecked: its body as found, or for a record that
    could not be found whole, the damaged bytes standing for it."""
    if entry.body is not None:
        return entry.body
    if entry.damage and not entry.length:
        return None
    start = entry.offset if entry.damage else entry.offset + HEADER.size
    try:
        fd = os.open(entry.path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.pread(fd, entry.length, start)
    except OSError:
        return None
    finally:
        os.close(fd)
