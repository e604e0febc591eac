"""Ingest into the store, two steps, each its own thread:

1. The journal writer appends the validated exports that arrive within a few milliseconds to
   the ingest journal (`store.journal`: segment files beside the database) in one write and
   fdatasync, then resolves every waiting future: receivers acknowledge only after that, so an
   acknowledged export survives a crash.
2. The indexer decodes journalled exports (in the decode worker processes) into `spans`,
   `events` and `metric_points` and stores the last journal seq it indexed in the same
   transaction (`store.commit`: exactly once, in arrival order, resumed at the next start
   after a crash); the journal then drops what is indexed. It runs right behind the journal:
   milliseconds at Claude Code's rates, a bounded backlog under bursts. A chunk is bounded in
   exports and in bytes; one that fails to commit is indexed again one export at a time, and
   an export that still fails alone (other than for lack of disk) is kept in `ingest_failed`
   with the reason, so nothing behind it waits.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import duckdb

from claude_top.core.schema import FAILED_DDL
from claude_top.core.sources.otlp.decode import Decoded, Export
from claude_top.core.store.commit import Committer
from claude_top.core.store.database import MEMORY, Store
from claude_top.core.store.decode_worker import (
    decode_for_index,
    decode_here,
    init_decode_worker,
)
from claude_top.core.store.journal import Entry, Journal, JournalError, read_body, read_damaged

DEFAULT_MAX_PENDING_ROWS = 200_000
DEFAULT_MAX_BACKLOG_ROWS = 2_000_000
DEFAULT_MAX_PENDING_BYTES = 256 << 20
DEFAULT_MAX_BACKLOG_BYTES = 4 << 30
GROUP_WINDOW_S = 0.003
GROUP_MAX_ROWS = 50_000
INDEX_CHUNK_EXPORTS = 16
INDEX_CHUNK_BYTES = 32 << 20
"""Journal bytes indexed in one transaction at most (an export larger than that goes alone)."""
INDEX_ATTEMPTS = 3
"""Commits of one export alone before it is kept in `ingest_failed` instead."""
RETRY_MAX_S = 5.0
INDEX_PIPELINE_DEPTH = 2
ACK_PRIORITY_MAX_WAIT_S = 0.05
CLOSE_GRACE_S = 5.0
DECODE_WORKERS = max(1, min(2, os.cpu_count() or 1))
WORKER_IDLE_S = 60.0
PRUNE_EVERY_S = 600
IDLE_CHECKPOINT_S = 30.0


def _cannot_write(exc: BaseException) -> bool:
    """A failure of the disk rather than of the data (DuckDB's I/O errors, no space left)."""
    return (
        isinstance(exc, duckdb.IOException | OSError)
        or getattr(exc, "errno", None) == errno.ENOSPC
        or "No space left" in str(exc)
    )


def _raw_body(entry: Entry) -> bytes | None:
    """An export's body as journalled (checked if possible, else as found on disk), for
    `ingest_failed`."""
    try:
        return read_body(entry)
    except JournalError:
        return read_damaged(entry)
    except OSError:
        return None


def _settle(fut: Future, outcome: int | BaseException) -> None:
    """Resolve an export's future; one its waiter cancelled (the client went away) is left."""
    with contextlib.suppress(InvalidStateError):
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


class Backpressure(RuntimeError):
    """The writer is behind; the exporter should retry later."""

    retry_after_s = 1


_decode_pool: ProcessPoolExecutor | None = None
_decode_pool_lock = threading.Lock()


def _shared_decode_pool() -> ProcessPoolExecutor | None:
    """The decode worker processes, shared by the whole program.

    Decoding is pure Python; in other processes it uses the other core instead of contending
    for the GIL that the receivers and the UI need.
    """
    global _decode_pool
    with _decode_pool_lock:
        if _decode_pool is None:
            try:
                _decode_pool = ProcessPoolExecutor(
                    DECODE_WORKERS,
                    mp_context=mp.get_context("spawn"),
                    initializer=init_decode_worker,
                    initargs=(os.getpid(),),
                )
            except (OSError, ValueError):
                return None
        return _decode_pool


def _stop_decode_pool() -> None:
    """Let the decode workers exit once what they were given is done; the next export that
    needs decoding spawns them again."""
    global _decode_pool
    with _decode_pool_lock:
        pool, _decode_pool = _decode_pool, None
    if pool is not None:
        pool.shutdown(wait=False)


def _new_spool(store: Store) -> str:
    """An empty folder for the decode workers' Parquet files: `<db>.spool` beside a database
    file (what an earlier run left there is stale: the journal holds every export), else a
    temporary one."""
    if store.path == MEMORY:
        return tempfile.mkdtemp(prefix="claude-top-spool-")
    path = store.path + ".spool"
    shutil.rmtree(path, ignore_errors=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        raise JournalError(
            f"{path} is not a folder: claude-top hands decoded rows over there; move that file away"
        ) from None
    except OSError as exc:
        raise JournalError(f"cannot make the folder {path}: {exc.strerror or exc}") from None
    return path


@dataclass
class WriterStats:
    """Counters the UI header and `serve` show."""

    exports_committed: int = 0
    rows_committed: int = 0
    commits: int = 0
    last_commit_ns: int = 0
    pending_rows: int = 0
    pending_bytes: int = 0
    rows_indexed: int = 0
    backlog_rows: int = 0
    backlog_bytes: int = 0
    last_index_ns: int = 0
    index_errors: int = 0
    last_index_error: str = ""
    rows_pruned: int = 0
    idle_checkpoints: int = 0


class StoreWriter:
    """The journal writer (group commit, then acknowledge) and the indexer behind it."""

    def __init__(
        self,
        store: Store,
        max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS,
        max_backlog_rows: int = DEFAULT_MAX_BACKLOG_ROWS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
        decode_in_worker: bool = True,
        retention_s: int | None = None,
        worker_idle_s: float = WORKER_IDLE_S,
        journal_hold: int | None = None,
    ) -> None:
        """`journal_hold`: a relay's forwarded seq; the journal keeps what follows it even once
        indexed (`receiver.forward` moves it on)."""
        self.store = store
        self.decode_in_worker = decode_in_worker
        self.worker_idle_s = worker_idle_s
        self._workers_last_used: float | None = None
        self.retention_s = retention_s
        self._next_prune = time.monotonic()
        self._checkpoint_at: float | None = None  # when an idle checkpoint is due
        self.max_pending_rows = max_pending_rows
        self.max_backlog_rows = max_backlog_rows
        self.max_pending_bytes = max_pending_bytes
        self.max_backlog_bytes = max_backlog_bytes
        self.stats = WriterStats()
        self._queue: queue.Queue[tuple[Export, Future] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._indexed = threading.Condition(self._lock)
        if not store.read_only:
            store.con.execute(FAILED_DDL)
        self._indexed_seq = store.indexed_seq()
        self.journal = Journal(store.journal_dir, self._indexed_seq, hold_seq=journal_hold)
        self._adopt_table_journal()
        self._committed_seq = self.journal.last_seq
        backlog = [e for e in self.journal.entries() if e.seq > self._indexed_seq]
        self.stats.backlog_rows = sum(e.records for e in backlog)
        self.stats.backlog_bytes = sum(e.length for e in backlog)
        for problem in self.journal.damage:
            self.stats.index_errors += 1
            self.stats.last_index_error = problem
        self._committer = Committer(store)
        self._closed = False
        self._stop_index_at: float | None = None
        self._alone_until = 0  # seq up to which exports are indexed one at a time
        self._attempts: tuple[int, int] = (0, 0)  # (seq, failed commits) of the export alone
        self.write_failure = ""
        """Why the last commit could not be written (no disk space...), until one succeeds."""
        self.spool_dir: str | None = None
        if decode_in_worker:
            # Now, not at the first export: a UI started after this (Textual) replaces
            # sys.stderr, and multiprocessing's resource tracker cannot start without its fd
            # (pools made again after an idle stop reuse the tracker started here).
            _shared_decode_pool()
            self.spool_dir = _new_spool(store)
        self._journal_thread = threading.Thread(
            target=self._run_journal, name="claude-top-journal", daemon=True
        )
        self._index_thread = threading.Thread(
            target=self._run_indexer, name="claude-top-indexer", daemon=True
        )
        self._journal_thread.start()
        self._index_thread.start()

    def _adopt_table_journal(self) -> None:
        """Move a journal kept by an earlier claude-top in the `ingest_journal` table."""
        with self.store.reading() as cur:
            found = cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'ingest_journal'"
            ).fetchone()[0]
            if not found:
                return
            rows = cur.execute(
                "SELECT signal, received_ns, records, body FROM ingest_journal ORDER BY seq"
            ).fetchall()
            if rows:
                self.journal.append(rows)
            cur.execute("DROP TABLE ingest_journal")

    # -- journal ------------------------------------------------------------------------------

    def submit(self, export: Export) -> Future:
        """Queue an export; the future resolves once it is committed. Raises Backpressure."""
        fut: Future = Future()
        rows, size = export.count, len(export.body)
        if not rows:
            fut.set_result(0)
            return fut
        with self._lock:
            if self._closed:
                raise Backpressure("claude-top is shutting down")
            s = self.stats
            if s.pending_rows and (
                s.pending_rows + rows > self.max_pending_rows
                or s.pending_bytes + size > self.max_pending_bytes
            ):
                raise Backpressure(
                    f"writer is behind ({s.pending_rows} rows, {s.pending_bytes >> 20} MB "
                    "pending); retry shortly"
                )
            if s.backlog_rows and (  # what is pending will be journalled too
                s.backlog_rows + s.pending_rows + rows > self.max_backlog_rows
                or s.backlog_bytes + s.pending_bytes + size > self.max_backlog_bytes
            ):
                raise Backpressure(
                    f"indexer is behind ({s.backlog_rows} rows, {s.backlog_bytes >> 20} MB "
                    "journalled); retry shortly"
                )
            s.pending_rows += rows
            s.pending_bytes += size
        self._queue.put((export, fut))
        return fut

    def _run_journal(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            if item is None:
                break
            group = [item]
            rows = item[0].count
            deadline = time.monotonic() + GROUP_WINDOW_S
            stop = False
            while rows < GROUP_MAX_ROWS:
                remaining = deadline - time.monotonic()
                try:
                    nxt = q.get(timeout=remaining) if remaining > 0 else q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                rows += nxt[0].count
            self._commit_journal(group, rows)
            if stop:
                break
        with self._indexed:
            self._indexed.notify_all()

    def _commit_journal(self, group: list[tuple[Export, Future]], rows: int) -> None:
        size = sum(len(e.body) for e, _ in group)
        try:
            first = self.journal.append(
                [(e.signal, e.received_ns, e.count, e.body) for e, _ in group]
            )
        except Exception as exc:  # nothing was acknowledged: the exporters retry
            with self._lock:
                self.stats.pending_rows -= rows
                self.stats.pending_bytes -= size
            for _, fut in group:
                _settle(fut, exc)
            return
        with self._indexed:
            s = self.stats
            s.pending_rows -= rows
            s.pending_bytes -= size
            s.backlog_rows += rows
            s.backlog_bytes += size
            s.rows_committed += rows
            s.exports_committed += len(group)
            s.commits += 1
            s.last_commit_ns = time.time_ns()
            self._committed_seq = first + len(group) - 1
            self._indexed.notify_all()
        for export, fut in group:
            _settle(fut, export.count)

    # -- indexer ------------------------------------------------------------------------------

    def _run_indexer(self) -> None:
        """Index until closed; an unexpected error is counted and indexing resumes."""
        while True:
            try:
                self._index_loop()
                return
            except Exception as exc:
                with self._lock:
                    self.stats.index_errors += 1
                    self.stats.last_index_error = f"indexer: {exc!r}"
                time.sleep(0.5)

    def _maybe_prune(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Apply the retention window, at most every PRUNE_EVERY_S (in the indexer's thread)."""
        if not self.retention_s or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        try:
            deleted = self.store.prune(time.time_ns() - self.retention_s * 1_000_000_000, cur)
        except duckdb.Error as exc:
            with self._lock:
                self.stats.index_errors += 1
                self.stats.last_index_error = f"retention: {exc}"
            return
        with self._lock:
            self.stats.rows_pruned += deleted

    def _yield_to_acks(self) -> None:
        """Let waiting exports be journalled (and acknowledged) first; bounded, never starved."""
        deadline = time.monotonic() + ACK_PRIORITY_MAX_WAIT_S
        while self.stats.pending_rows and not self._closed and time.monotonic() < deadline:
            time.sleep(0.0005)

    def _journal_done(self) -> bool:
        return self._closed and not self._journal_thread.is_alive()

    def _index_loop(self) -> None:
        """Fetch journal chunks, decode them in the workers while the previous chunk commits."""
        cur = self.store.cursor()
        fetched = self._indexed_seq
        self._maybe_prune(cur)
        inflight: collections.deque[tuple[list[Entry], Callable[[], list]]] = collections.deque()
        while True:
            with self._indexed:
                while fetched >= self._committed_seq and not inflight and not self._closed:
                    self._indexed.wait(0.5)
                    if self.retention_s and time.monotonic() >= self._next_prune:
                        break
                    if self._workers_idle() or self._checkpoint_due():
                        break
                stop_at = self._stop_index_at
                if stop_at is not None and time.monotonic() > stop_at:
                    return
                if not inflight and fetched >= self._committed_seq and self._journal_done():
                    return
                committed = self._committed_seq
            if not inflight:
                self._maybe_prune(cur)
                if fetched >= committed and self._checkpoint_due():
                    self._checkpoint_idle()
                if self._workers_idle():
                    self._workers_last_used = None
                    _stop_decode_pool()
            if fetched < committed and len(inflight) < INDEX_PIPELINE_DEPTH:
                limit = 1 if fetched < self._alone_until else INDEX_CHUNK_EXPORTS
                entries = self.journal.read(fetched, committed, limit, INDEX_CHUNK_BYTES)
                if entries:
                    self._yield_to_acks()
                    inflight.append((entries, self._start_decode(entries)))
                    fetched = entries[-1].seq
                    if len(inflight) < INDEX_PIPELINE_DEPTH:
                        continue
                else:
                    fetched = committed
            if inflight:
                entries, outcomes = inflight.popleft()
                if not self._index_chunk(entries, outcomes()):
                    inflight.clear()
                    fetched = self._indexed_seq

    def _checkpoint_due(self) -> bool:
        """Nothing was indexed for IDLE_CHECKPOINT_S since the last commit: fold the rows
        DuckDB holds in memory until a checkpoint into the file (its WAL is folded on its own
        only past `checkpoint_threshold`, 16 MB: tens of MB of rows kept in memory)."""
        due = self._checkpoint_at
        return due is not None and time.monotonic() >= due

    def _checkpoint_idle(self) -> None:
        self._checkpoint_at = None
        if self.store.checkpoint():
            with self._lock:
                self.stats.idle_checkpoints += 1
        else:  # another write was running: try again later
            self._checkpoint_at = time.monotonic() + IDLE_CHECKPOINT_S

    def _workers_idle(self) -> bool:
        """This writer's decode workers have had nothing to do for `worker_idle_s`."""
        last = self._workers_last_used
        return last is not None and time.monotonic() - last >= self.worker_idle_s

    def _start_decode(self, entries: list[Entry]) -> Callable[[], list[Decoded | Exception]]:
        """Start decoding journal entries in the worker processes; returns how to collect them."""
        for _ in range(2):  # a pool just stopped for idleness is replaced once
            pool = _shared_decode_pool() if self.decode_in_worker else None
            if pool is None:
                break
            try:
                futures = [pool.submit(decode_for_index, e, self.spool_dir) for e in entries]
            except BrokenProcessPool:
                self.decode_in_worker = False
                break
            except RuntimeError:  # shut down
                continue
            else:
                self._workers_last_used = time.monotonic()

                def collect(futures=futures) -> list[Decoded | Exception]:
                    outcomes = [f.exception() or f.result() for f in futures]
                    if any(isinstance(o, BrokenProcessPool) for o in outcomes):
                        self.decode_in_worker = False
                        return decode_here(entries)
                    return outcomes

                return collect
        outcomes = decode_here(entries)
        return lambda: outcomes

    def _index_chunk(self, entries: list[Entry], outcomes: list[Decoded | Exception]) -> bool:
        """Commit one decoded chunk and move the journal past it; False if the commit failed."""
        decoded: list[Decoded] = []
        failed: list[tuple[Entry, str, bytes | None]] = []
        for entry, outcome in zip(entries, outcomes, strict=True):
            if isinstance(outcome, BaseException):  # kept in ingest_failed for a fixed claude-top
                error = f"export {entry.seq}: {outcome}"
                with self._lock:
                    self.stats.index_errors += 1
                    self.stats.last_index_error = error
                failed.append((entry, error, _raw_body(entry)))
                continue
            decoded.append(outcome)
        try:
            self._committer.commit(decoded, indexed_seq=entries[-1].seq, failed=failed)
        except Exception as exc:
            return self._commit_failed(entries, exc)
        self._indexed_up_to(entries)
        return True

    def _commit_failed(self, entries: list[Entry], exc: Exception) -> bool:
        """A chunk's commit failed. A failure to write (no disk space, an I/O error) is never
        the exports' fault: retried until it clears. Otherwise the chunk is indexed again one
        export at a time, and an export that fails alone INDEX_ATTEMPTS times is kept in
        `ingest_failed` with the reason (True: the indexer has moved past it)."""
        seq = entries[-1].seq
        with self._lock:
            self.stats.index_errors += 1
            self.stats.last_index_error = f"export {seq}: {exc}" if len(entries) == 1 else str(exc)
        failures = self._attempts[1] + 1 if self._attempts[0] == seq else 1
        self._attempts = (seq, failures)
        if _cannot_write(exc):
            self.write_failure = str(exc)
            time.sleep(min(RETRY_MAX_S, 0.2 * 2 ** (failures - 1)))
            return False
        if len(entries) > 1:
            self._alone_until = max(self._alone_until, seq)
            return False
        if failures < INDEX_ATTEMPTS:
            time.sleep(0.2 * failures)
            return False
        entry = entries[0]
        reason = f"export {seq} could not be indexed: {exc}"
        for body in (_raw_body(entry), None):  # without the body if even that cannot be written
            try:
                self._committer.commit([], indexed_seq=seq, failed=[(entry, reason, body)])
            except Exception:
                continue
            self._indexed_up_to(entries)
            return True
        time.sleep(RETRY_MAX_S)
        return False

    def _indexed_up_to(self, entries: list[Entry]) -> None:
        """Count a committed chunk and let the journal drop it."""
        self.write_failure = ""
        records = sum(e.records for e in entries)
        with self._indexed:
            s = self.stats
            s.rows_indexed += records
            s.backlog_rows -= records
            s.backlog_bytes -= sum(e.length for e in entries)
            s.last_index_ns = time.time_ns()
            self._indexed_seq = entries[-1].seq
            if self.store.path != MEMORY:
                self._checkpoint_at = time.monotonic() + IDLE_CHECKPOINT_S
            self._indexed.notify_all()
        self.journal.release(entries[-1].seq)

    def unindexed(self) -> int:
        """Exports acknowledged and not yet indexed (they wait in the journal)."""
        with self._lock:
            return self._committed_seq - self._indexed_seq

    def progress(self) -> dict[str, int]:
        """The last journal seq acknowledged and the last one indexed (in the tables, or in
        `ingest_failed`)."""
        with self._lock:
            return {"journalled_seq": self._committed_seq, "indexed_seq": self._indexed_seq}

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until everything acknowledged so far is indexed (queryable)."""
        deadline = time.monotonic() + timeout
        with self._indexed:
            target = self._committed_seq
            while self._indexed_seq < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._indexed.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, index what time allows (the rest at the next start), stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + timeout
        self._queue.put(None)
        self._journal_thread.join(max(0.0, deadline - time.monotonic()))
        with self._indexed:
            self._stop_index_at = deadline
            self._indexed.notify_all()
        # the indexer stops between chunks: let the one it is committing finish
        self._index_thread.join(max(0.0, deadline - time.monotonic()) + CLOSE_GRACE_S)
        if not self._journal_thread.is_alive():
            self.journal.close()
        if self.spool_dir is not None and not self._index_thread.is_alive():
            shutil.rmtree(self.spool_dir, ignore_errors=True)
