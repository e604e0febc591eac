"""Importing transcript files: find them, read what each gained since the last read, commit
the facts (with each file's read state) in batches, and say what was found.

One `TranscriptImporter` per store keeps every file's read state in memory (loaded from
`transcript_files` once), so a rescan of an unchanged tree only lists and stats the files.
Runs are serialized (`lock`): the tail thread and an import asked over the control API
never read the same file at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import duckdb

from claude_top.core.pricing import PriceTable
from claude_top.core.schema import COST_ESTIMATE, COST_TRANSCRIPT, SOURCE_TRANSCRIPT
from claude_top.core.sources.transcripts.files import walk
from claude_top.core.sources.transcripts.parse import (
    PROBLEMS_KEPT,
    Facts,
    FileState,
    LineReader,
    Redaction,
)
from claude_top.core.store.commit import Committer
from claude_top.core.store.database import Store
from claude_top.core.store.transcripts import file_states

BATCH_BYTES = 40 << 20
BATCH_FACTS = 125_000


@dataclass
class Progress:
    """How far a run is (read by other threads: plain counters)."""

    phase: str = "idle"
    """idle, scanning, reading, done"""
    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    started: float = 0.0

    @property
    def fraction(self) -> float | None:
        if self.phase != "reading" or not self.bytes_total:
            return None
        return min(1.0, self.bytes_done / self.bytes_total)


@dataclass
class Report:
    """What a run found."""

    files: int = 0
    files_read: int = 0
    bytes: int = 0
    lines: int = 0
    sessions: set[str] = field(default_factory=set)
    requests: int = 0
    new_requests: int = 0
    prompts: int = 0
    tool_calls: int = 0
    skipped: Counter = field(default_factory=Counter)
    problems: list[tuple[str, int, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    others: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    with_telemetry: int = 0
    transcript_only: int = 0
    costs: dict[str, int] = field(default_factory=dict)
    """How the transcript-only requests got their cost: transcript, estimate, none."""

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "files_read": self.files_read,
            "bytes": self.bytes,
            "lines": self.lines,
            "sessions": len(self.sessions),
            "requests": self.requests,
            "new_requests": self.new_requests,
            "prompts": self.prompts,
            "tool_calls": self.tool_calls,
            "skipped": dict(self.skipped),
            "problems": [list(p) for p in self.problems],
            "unreadable": [list(p) for p in self.unreadable],
            "others": [list(p) for p in self.others],
            "seconds": self.seconds,
            "with_telemetry": self.with_telemetry,
            "transcript_only": self.transcript_only,
            "costs": self.costs,
        }


def summary_lines(r: dict, verbose: bool = False) -> list[str]:
    """A run's report (`Report.as_dict()`) as the import command prints it."""
    skipped = sum(r["skipped"].values())
    out = [
        f"files:        {r['files']} ({r['files_read']} read, {r['bytes'] / 1e6:.1f} MB, "
        f"{r['lines']} lines, {r['seconds']:.1f}s)",
        f"sessions:     {r['sessions']}",
        f"API requests: {r['requests']} ({r['new_requests']} new); "
        f"{r['with_telemetry']} also in telemetry, {r['transcript_only']} from transcripts only",
    ]
    costs = r.get("costs") or {}
    if r["transcript_only"]:
        out.append(
            "  their cost:  "
            + ", ".join(
                f"{costs.get(k, 0)} {label}"
                for k, label in (
                    (COST_TRANSCRIPT, "from cost-state lines"),
                    (COST_ESTIMATE, "estimated from the price table"),
                    ("none", "unpriced (model not in the price table)"),
                )
                if costs.get(k)
            )
        )
    out.append(f"prompts:      {r['prompts']}; tool calls: {r['tool_calls']}")
    out.append(f"lines skipped: {skipped}")
    for why, n in sorted(r["skipped"].items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"  {n:>8}  {why}")
    for path, why in r["unreadable"]:
        out.append(f"unreadable: {path}: {why}")
    for path, why in r.get("others", ()):
        out.append(f"not read: {path}: {why}")
    if verbose:
        for path, line, why in r["problems"]:
            out.append(f"{path}:{line}: {why}")
        if len(r["problems"]) < skipped:
            out.append(f"(the first {len(r['problems'])} skipped lines are listed)")
    elif skipped:
        out.append("(--verbose lists each skipped line as file:line)")
    return out


class TranscriptImporter:
    """Reads transcript files into one store."""

    def __init__(
        self,
        store: Store,
        *,
        redact: frozenset[str] = frozenset(),
        prices: PriceTable | None = None,
        batch_bytes: int = BATCH_BYTES,
        checkpoint: bool = False,
    ) -> None:
        self.store = store
        self.checkpoint = checkpoint
        """Fold the WAL into the file after each commit: each checkpoint then handles one
        batch (what a bulk import's memory peaks with is DuckDB checkpointing many)."""
        self.committer = Committer(store, prices)
        self.redaction = Redaction(redact)
        self.batch_bytes = batch_bytes
        self.lock = threading.Lock()
        self.commits = 0
        """Transcript commits so far (the UI queries again when this changes)."""
        self._states: dict[str, FileState] | None = None

    def states(self) -> dict[str, FileState]:
        if self._states is None:
            with self.store.reading() as cur:
                self._states = file_states(cur)
        return self._states

    def run(
        self,
        roots: Iterable[str | os.PathLike],
        progress: Progress | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> Report:
        """Import every transcript under `roots` that changed since it was last read."""
        with self.lock:
            return self._run(roots, progress or Progress(), stop)

    def _run(self, roots, progress: Progress, stop: Callable[[], bool]) -> Report:
        started = time.monotonic()
        report = Report()
        progress.phase, progress.started = "scanning", time.time()
        states = self.states()
        todo = []
        for path, st in walk(roots, lambda p, why: report.unreadable.append((p, why))):
            report.files += 1
            old = states.get(path)
            if old is None or not old.unchanged(st):
                todo.append((path, st))
        progress.files_total, progress.files_done = len(todo), 0
        progress.bytes_total = sum(
            st.st_size - (states[p].offset if p in states and states[p].same_file(st) else 0)
            for p, st in todo
        )
        progress.bytes_done = 0
        progress.phase = "reading"
        # one thread reads the next batch while this one commits the last (DuckDB lets go of
        # the GIL while it works): at most two batches held, the one committing and the next
        batches: queue.Queue = queue.Queue()
        slots = threading.Semaphore(2)
        abort = threading.Event()
        reader = threading.Thread(
            target=self._read,
            args=(
                todo,
                states,
                report,
                progress,
                batches,
                slots,
                lambda: stop() or abort.is_set(),
            ),
            name="claude-top-transcript-reader",
            daemon=True,
        )
        reader.start()
        try:
            while (batch := batches.get()) is not None:
                if isinstance(batch, BaseException):
                    raise batch
                self._commit(batch, report)
                del batch
                slots.release()
        finally:
            abort.set()
            while reader.is_alive():  # let a reader blocked on a full queue finish
                with contextlib.suppress(queue.Empty):
                    batches.get(timeout=0.05)
        self._summarize(report)
        report.seconds = time.monotonic() - started
        progress.phase = "done"
        return report

    def _read(self, todo, states, report, progress, batches, slots, stop) -> None:
        """Read the files into batches of about `batch_bytes` (in the reader thread); a batch
        is begun once one of the two `slots` is free."""
        try:
            while not slots.acquire(timeout=0.05):
                if stop():
                    batches.put(None)
                    return
            batch = _Batch(self.redaction)
            for path, st in todo:
                if stop():
                    break
                state = states.get(path) or FileState(path)
                size = st.st_size
                report.files_read += 1
                while True:
                    # a file is read whole into one batch unless it is larger than one
                    room = self.batch_bytes - batch.facts.bytes
                    left = size - min(state.offset, size)
                    budget = None if left <= self.batch_bytes else room
                    try:
                        state, at_end, replaced = batch.reader.read(path, state, budget)
                    except OSError as exc:
                        report.unreadable.append((path, exc.strerror or str(exc)))
                        break
                    batch.add(state, replaced)
                    progress.bytes_done = batch.done + batch.facts.bytes
                    if batch.full(self.batch_bytes):
                        batches.put(batch)
                        while not slots.acquire(timeout=0.05):
                            if stop():
                                batches.put(None)
                                return
                        batch = batch.next()
                    if at_end or stop():
                        break
                progress.files_done += 1
            batches.put(batch)
        except BaseException as exc:  # told to the committing thread
            batches.put(exc)
            return
        batches.put(None)

    def _commit(self, batch: _Batch, report: Report) -> None:
        facts = batch.facts
        report.lines += facts.lines
        report.bytes += facts.bytes
        report.skipped.update(facts.skipped)
        report.others.extend(facts.others)
        room = PROBLEMS_KEPT - len(report.problems)
        report.problems.extend(facts.problems[: max(0, room)])
        if not batch.states:
            return
        while True:
            try:
                written, _ = self.committer.commit_transcripts(
                    facts, list(batch.states.values()), sorted(batch.replaced)
                )
                break
            except duckdb.OutOfMemoryException:  # rolled back: again with more room
                if not self.store.raise_memory_limit():
                    raise
        if self.checkpoint:
            self.store.checkpoint()
        self.commits += 1
        report.sessions |= facts.session_ids()
        report.new_requests += written.requests
        for s in batch.states.values():
            self._states[s.path] = s

    def _summarize(self, report: Report) -> None:
        """Count the found sessions' requests, prompts and tool calls as stored now."""
        if not report.sessions:
            return
        with self.store.reading() as cur:
            cur.execute(
                "CREATE OR REPLACE TEMP TABLE import_sessions AS "
                "SELECT unnest($1::VARCHAR[]) AS session_id",
                [sorted(report.sessions)],
            )
            report.requests, report.prompts, report.tool_calls = cur.execute(
                "SELECT (SELECT count(*) FROM transcript_requests SEMI JOIN import_sessions "
                "USING (session_id)), (SELECT count(*) FROM transcript_prompts SEMI JOIN "
                "import_sessions USING (session_id)), (SELECT count(*) FROM transcript_tools "
                "SEMI JOIN import_sessions USING (session_id))"
            ).fetchone()
            rows = cur.execute(
                f"SELECT coalesce(cost_source, 'none'), count(*) FROM events "
                f"WHERE source = '{SOURCE_TRANSCRIPT}' AND kind = 'api_request' "
                "AND session_id IN (SELECT session_id FROM import_sessions) GROUP BY 1"
            ).fetchall()
            (report.with_telemetry,) = cur.execute(
                "SELECT count(*) FROM transcript_requests t SEMI JOIN import_sessions "
                "USING (session_id) WHERE t.request_key IN (SELECT request_id FROM events "
                "WHERE kind = 'api_request' AND source = 'otel' AND request_id IS NOT NULL)"
            ).fetchone()
            cur.execute("DROP TABLE import_sessions")
        report.costs = dict(rows)
        report.transcript_only = sum(report.costs.values())


class _Batch:
    """Facts read since the last commit, and the read states of the files they came from."""

    def __init__(self, redaction: Redaction, done: int = 0) -> None:
        self.facts = Facts()
        self.reader = LineReader(self.facts, redaction)
        self.redaction = redaction
        self.states: dict[str, FileState] = {}
        self.replaced: set[str] = set()
        self.done = done

    def add(self, state: FileState, replaced: bool) -> None:
        self.states[state.path] = state
        if replaced:
            self.replaced.add(state.path)

    def full(self, limit: int) -> bool:
        return self.facts.bytes >= limit or len(self.facts) >= BATCH_FACTS

    def next(self) -> _Batch:
        return _Batch(self.redaction, self.done + self.facts.bytes)


@dataclass
class OtlpReport:
    """What a run found in OTLP JSON lines files."""

    files: int = 0
    lines: int = 0
    exports: int = 0
    records: int = 0
    rejected: int = 0
    skipped: Counter = field(default_factory=Counter)
    problems: list[tuple[str, int, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "lines": self.lines,
            "exports": self.exports,
            "records": self.records,
            "rejected": self.rejected,
            "skipped": dict(self.skipped),
            "problems": [list(p) for p in self.problems],
            "unreadable": [list(p) for p in self.unreadable],
        }


def otlp_summary_lines(r: dict, verbose: bool = False) -> list[str]:
    """An OTLP lines run's report (`OtlpReport.as_dict()`) as the import command prints it."""
    skipped = sum(r["skipped"].values())
    out = [
        f"OTLP files:   {r['files']} ({r['lines']} lines): {r['exports']} exports, "
        f"{r['records']} records stored the way the receivers store them"
        + (f" ({r['rejected']} records rejected)" if r["rejected"] else ""),
        f"lines skipped: {skipped}",
    ]
    for why, n in sorted(r["skipped"].items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"  {n:>8}  {why}")
    for path, why in r["unreadable"]:
        out.append(f"unreadable: {path}: {why}")
    if verbose:
        out.extend(f"{path}:{line}: {why}" for path, line, why in r["problems"])
    return out


SYNC_TIMEOUT_S = 60.0
MAX_IN_FLIGHT = 64
"""OTLP exports handed to the writer and not yet journalled, at most."""


class ImportJob:
    """One import: transcripts under folders or files, and OTLP JSON lines files through the
    writer (validated, journalled and indexed as the receivers' exports are). Runs in its own
    thread (`start`) or the caller's (`run`); `status()` says how far it is."""

    def __init__(
        self,
        importer: TranscriptImporter,
        transcripts: list[str],
        otlp_files: list[str] = (),
        writer=None,
        redact: frozenset[str] = frozenset(),
    ) -> None:
        self.importer = importer
        self.transcripts = list(transcripts)
        self.otlp_files = list(otlp_files)
        self.writer = writer
        self.redact = frozenset(redact)
        self.progress = Progress()
        self.result: dict | None = None
        self.error: str | None = None
        self.done = threading.Event()

    def start(self) -> ImportJob:
        threading.Thread(target=self.run, name="claude-top-import", daemon=True).start()
        return self

    def run(self) -> dict | None:
        try:
            out: dict = {"transcripts": None, "otlp": None}
            if self.writer is not None:  # what was acknowledged before is joined with
                self.writer.sync(SYNC_TIMEOUT_S)
            if self.transcripts:
                out["transcripts"] = self.importer.run(self.transcripts, self.progress).as_dict()
            if self.otlp_files:
                out["otlp"] = self._otlp().as_dict()
            self.result = out
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.progress.phase = "done"
            self.done.set()
        return self.result

    def status(self) -> dict:
        p = self.progress
        return {
            "done": self.done.is_set(),
            "error": self.error,
            "result": self.result,
            "progress": {
                "phase": p.phase,
                "files_total": p.files_total,
                "files_done": p.files_done,
                "bytes_total": p.bytes_total,
                "bytes_done": p.bytes_done,
            },
        }

    def _otlp(self) -> OtlpReport:
        from claude_top.core.sources.otlp.lines import read_lines
        from claude_top.core.sources.otlp.redact import Redactor
        from claude_top.core.store.writer import Backpressure

        report = OtlpReport()
        p = self.progress
        sizes = {}
        for path in self.otlp_files:
            try:
                sizes[path] = os.path.getsize(path)
            except OSError as exc:
                report.unreadable.append((path, exc.strerror or str(exc)))
        p.phase, p.files_total, p.files_done = "reading", len(sizes), 0
        p.bytes_total, p.bytes_done = sum(sizes.values()), 0
        redactor = Redactor(self.redact) if self.redact else None
        pending: list = []
        for path in sizes:
            report.files += 1
            try:
                for n, size, export, why in read_lines(path, redactor):
                    report.lines += 1
                    p.bytes_done += size
                    if export is None:
                        report.skipped[why.split(":")[0]] += 1
                        if len(report.problems) < PROBLEMS_KEPT:
                            report.problems.append((path, n, why))
                        continue
                    report.exports += 1
                    report.records += export.count
                    report.rejected += export.rejected
                    while True:
                        try:
                            pending.append(self.writer.submit(export))
                            break
                        except Backpressure:
                            time.sleep(0.05)
                    while len(pending) > MAX_IN_FLIGHT:
                        pending.pop(0).result()
            except OSError as exc:
                report.unreadable.append((path, exc.strerror or str(exc)))
            p.files_done += 1
        for fut in pending:
            fut.result()
        self.writer.sync(600.0)
        return report
