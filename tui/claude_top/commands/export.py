"""`claude-top export`: CSV snapshots of a database (the same files as the UI's Ctrl-S).

While a claude-top runs on the database, the running instance writes the files (asked over
loopback, `core.instance`). Otherwise the command opens the file itself, first indexing what an
earlier run acknowledged but did not index before it stopped (a crash), so the snapshot holds
every acknowledged export.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from claude_top.commands.common import fail
from claude_top.core.export import UnknownSession, export_snapshot
from claude_top.core.instance import InstanceError, read_instance
from claude_top.core.queries.filters import parse_window
from claude_top.core.store.database import Store, StoreError, StoreLocked
from claude_top.core.store.writer import StoreWriter

INDEX_TIMEOUT_S = 600.0


def run_export(args: argparse.Namespace, db_path: str) -> int:
    """Write the snapshot files under `--out`; print each file with its row count."""
    try:
        window_s = parse_window(args.since) if args.since else None
    except ValueError as exc:
        return fail("export", str(exc))
    out = Path(args.out).expanduser().absolute()
    if getattr(args, "source", None):
        return _export_source(args, out, window_s)
    try:
        store = _open_indexed(db_path)
    except StoreLocked as exc:
        return _export_remotely(db_path, out, args, str(exc))
    except (StoreError, OSError) as exc:
        return fail("export", str(exc))
    try:
        result = export_snapshot(
            store.cursor(),
            out,
            db_path=db_path,
            window=args.since,
            window_s=window_s,
            session_id=args.session,
        )
    except UnknownSession as exc:
        return fail("export", str(exc))
    except OSError as exc:
        return fail("export", f"cannot write to {out}: {exc.strerror or exc}")
    except duckdb.Error as exc:
        return fail("export", f"cannot read {db_path}: {exc}")
    finally:
        store.close()
    _print_files(result.directory, result.counts, result.snapshot["filter"]["session_id"])
    return 0


def _open_indexed(db_path: str) -> Store:
    """The database read-only, after indexing what its journal still holds (if this process may
    write the file; else with a warning of how much is left out). Raises StoreLocked when a
    running claude-top holds it."""
    store = Store.open(db_path, read_only=True)
    exports, records = store.journal_backlog()
    if not exports:
        return store
    store.close()
    try:
        writable = Store.open(db_path)
    except StoreLocked:
        raise
    except StoreError as exc:
        _left_out(exports, records, exc)
        return Store.open(db_path, read_only=True)
    try:
        writer = StoreWriter(writable)
    except OSError as exc:  # its journal or spool folder cannot be used
        writable.close()
        _left_out(exports, records, exc)
        return Store.open(db_path, read_only=True)
    try:
        indexed = writer.sync(INDEX_TIMEOUT_S)
        writer.close()
    finally:
        writable.checkpoint()
        writable.close()
    left = "" if indexed else " (not all of them in time: the rest are left out)"
    print(f"indexed {exports} exports ({records} records) an earlier run left in the journal{left}")
    return Store.open(db_path, read_only=True)


def _left_out(exports: int, records: int, why: Exception) -> None:
    print(
        f"claude-top export: warning: {exports} acknowledged exports ({records} records) are "
        f"still in the journal and not in this snapshot: {why}"
    )


def _export_remotely(db_path: str, out: Path, args: argparse.Namespace, locked: str) -> int:
    """Ask the claude-top running on `db_path` to write the snapshot."""
    instance = read_instance(db_path)
    if instance is None:
        return fail("export", locked)
    body = {"out": str(out), "since": args.since, "session": args.session}
    try:
        answer = instance.request("POST", "/export", body)
    except InstanceError as exc:
        return fail("export", str(exc))
    print(f"written by the claude-top running on {db_path} (pid {instance.pid})")
    _print_files(Path(answer["directory"]), answer["counts"], answer.get("session_id"))
    return 0


def _export_source(args: argparse.Namespace, out: Path, window_s: int | None) -> int:
    """The same files from a team's ClickHouse (`--source clickhouse://...`)."""
    from claude_top.core.export import export_reader_snapshot
    from claude_top.core.queries.clickhouse import ClickHouseSource
    from claude_top.core.queries.reader import SourceUnavailable

    try:
        source = ClickHouseSource.open(args.source)
    except ValueError as exc:
        return fail("export", str(exc))
    try:
        with source.reader() as reader:
            result = export_reader_snapshot(
                reader,
                out,
                db_path=source.label,
                window=args.since,
                window_s=window_s,
                session_id=args.session,
            )
    except SourceUnavailable as exc:
        return fail("export", str(exc))
    except OSError as exc:
        return fail("export", f"cannot write to {out}: {exc.strerror or exc}")
    finally:
        source.close()
    print(f"from {source.describe()}")
    _print_files(result.directory, result.counts)
    return 0


def _print_files(directory: Path, counts: dict[str, int], session_id: str | None = None) -> None:
    if session_id:
        print(f"session {session_id}")
    for name, count in counts.items():
        print(f"{count:>8}  {directory / (name + '.csv')}")
    print(f"          {directory / 'snapshot.json'}")
