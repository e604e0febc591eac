"""`claude-top import [PATH ...]`: Claude Code's transcripts (folders searched recursively, or
files), and files of OTLP JSON lines (the OpenTelemetry Collector's `file` exporter), into a
database.

Default paths: `~/.claude/projects`, and `$CLAUDE_CONFIG_DIR/projects` when that is set. While a
claude-top runs on the database, the running instance does the work (asked over loopback,
`core.instance`); otherwise the command opens the database itself. A progress bar shows on a
terminal; at the end it prints what it found: files, sessions, API requests, lines skipped and
why (`--verbose`: each as file:line).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from claude_top.commands.common import EXIT_OK, fail
from claude_top.core.instance import InstanceError, read_instance
from claude_top.core.sources.otlp.lines import is_otlp_lines
from claude_top.core.sources.transcripts.files import default_roots
from claude_top.core.store.database import Store, StoreError, StoreLocked
from claude_top.core.store.importer import (
    ImportJob,
    TranscriptImporter,
    otlp_summary_lines,
    summary_lines,
)
from claude_top.core.store.writer import StoreWriter

POLL_S = 0.2
IMPORT_MEMORY_LIMIT = "80MB"
"""DuckDB's memory while the command imports, with a checkpoint after each commit: the peak
stays low (a first import writes far more than it reads back). A commit that needs more is
rolled back and done again with twice as much (`Store.raise_memory_limit`)."""
BAR = 24


def run_import(args: argparse.Namespace, db_path: str) -> int:
    """Import what the paths hold; print what was found."""
    if args.paths:
        paths = [Path(p).expanduser().absolute() for p in args.paths]
    else:
        paths = [p for p in default_roots() if p.exists()]
        if not paths:
            where = " or ".join(str(p) for p in default_roots())
            print(f"no Claude Code transcripts found (looked in {where})")
            return EXIT_OK
    otlp = [str(p) for p in paths if p.is_file() and is_otlp_lines(p)]
    transcripts = [str(p) for p in paths if str(p) not in otlp]
    print(f"importing {', '.join(str(p) for p in paths)}", flush=True)
    try:
        store = Store.open(db_path, memory_limit=IMPORT_MEMORY_LIMIT)
    except StoreLocked as exc:
        return _import_remotely(db_path, transcripts, otlp, args, str(exc))
    except StoreError as exc:
        return fail("import", str(exc))
    writer = None
    try:
        writer = StoreWriter(store, decode_in_worker=False) if otlp else None
        redact = frozenset(getattr(args, "redact", None) or ())
        importer = TranscriptImporter(store, redact=redact, checkpoint=True)
        job = ImportJob(importer, transcripts, otlp, writer, redact)
        if _terminal():
            job.start()
            while not job.done.wait(POLL_S):
                _bar(job.status()["progress"])
            _bar(job.status()["progress"], end=True)
        else:
            job.run()
    finally:
        if writer is not None:
            writer.close()
        store.checkpoint()
        store.close()
    return _report(job.status(), args.verbose)


def _import_remotely(
    db_path: str, transcripts: list[str], otlp: list[str], args: argparse.Namespace, locked: str
) -> int:
    """Ask the claude-top running on `db_path` to import, and follow it."""
    instance = read_instance(db_path)
    if instance is None:
        return fail("import", locked)
    try:
        job = instance.request("POST", "/import", {"transcripts": transcripts, "otlp": otlp})
        print(f"the claude-top running on {db_path} (pid {instance.pid}) imports", flush=True)
        while True:
            status = instance.request("GET", f"/import/{job['job']}")
            if status["done"]:
                break
            if _terminal():
                _bar(status["progress"])
            time.sleep(POLL_S)
    except InstanceError as exc:
        return fail("import", str(exc))
    if _terminal():
        _bar(status["progress"], end=True)
    return _report(status, args.verbose)


def _report(status: dict, verbose: bool) -> int:
    if status["error"]:
        return fail("import", status["error"])
    result = status["result"] or {}
    if result.get("transcripts"):
        print("\n".join(summary_lines(result["transcripts"], verbose)))
    if result.get("otlp"):
        print("\n".join(otlp_summary_lines(result["otlp"], verbose)))
    return EXIT_OK


def _terminal() -> bool:
    return sys.stderr.isatty()


def _bar(p: dict, end: bool = False) -> None:
    """One line on stderr, rewritten: share of bytes read, files, megabytes."""
    total, done = p["bytes_total"], p["bytes_done"]
    if end:
        done = total
    frac = done / total if total else (1.0 if end or p["phase"] == "done" else 0.0)
    filled = int(frac * BAR)
    what = "scanning" if p["phase"] == "scanning" else "importing"
    line = (
        f"\r{what} [{'#' * filled}{'.' * (BAR - filled)}] {frac * 100:3.0f}%  "
        f"{p['files_done']}/{p['files_total']} files  {done / 1e6:.1f}/{total / 1e6:.1f} MB"
    )
    sys.stderr.write(line + ("\n" if end else ""))
    sys.stderr.flush()
