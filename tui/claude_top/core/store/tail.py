"""Keeping up with Claude Code's transcript folders while claude-top runs.

A thread imports everything new under the folders when it starts (the first launch reads the
whole history, with `progress` for the header), then follows them: file-system notifications
(watchfiles, inotify or its peers) tell which files changed and only those are read on from
their offsets, within a fraction of a second; every `rescan_s` a full rescan (cheap: stats of
unchanged files) catches anything a notification missed, and without notifications (watchfiles
missing, no watches left, a folder not there yet) the folders are rescanned every `poll_s`.
Commits go through the same `Committer` (`TranscriptImporter`); the UI queries again when
`commits` changes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from claude_top.core.pricing import PriceTable
from claude_top.core.sources.transcripts.files import SUFFIX, default_roots
from claude_top.core.store.database import Store
from claude_top.core.store.importer import Progress, Report, TranscriptImporter

POLL_S = 1.0
RESCAN_S = 60.0
STEP_MS = 50
DEBOUNCE_MS = 100


class TranscriptTail:
    """Imports the transcript folders at start, then follows them (`start`, `close`)."""

    def __init__(
        self,
        store: Store,
        roots: Iterable[str | os.PathLike] | None = None,
        *,
        redact: frozenset[str] = frozenset(),
        prices: PriceTable | None = None,
        poll_s: float = POLL_S,
        rescan_s: float = RESCAN_S,
        notify: bool = True,
    ) -> None:
        self.roots = [Path(r) for r in (default_roots() if roots is None else roots)]
        self.importer = TranscriptImporter(store, redact=redact, prices=prices)
        self.progress = Progress()
        """How far the first import is (the header shows it)."""
        self.first: Report | None = None
        self.errors = 0
        self.last_error = ""
        self.poll_s = poll_s
        self.rescan_s = rescan_s
        self.notify = notify
        self.watching = False
        """Notifications are on (else the folders are polled)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def commits(self) -> int:
        return self.importer.commits

    @property
    def importing(self) -> bool:
        """The first import is still running."""
        return self.first is None and self._thread is not None and self._thread.is_alive()

    def start(self) -> TranscriptTail:
        self._thread = threading.Thread(
            target=self._run, name="claude-top-transcripts", daemon=True
        )
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the batch being read (its facts are committed or not at all)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _scan(self, paths: Iterable[Path] | None = None, progress: Progress | None = None):
        try:
            return self.importer.run(
                self.roots if paths is None else paths, progress, stop=self._stop.is_set
            )
        except Exception as exc:  # counted and retried at the next change or rescan
            self.errors += 1
            self.last_error = f"transcripts: {type(exc).__name__}: {exc}"
            return None

    def _run(self) -> None:
        self.first = self._scan(progress=self.progress) or Report()
        while not self._stop.is_set():
            if not (self.notify and self._watch()):
                self._stop.wait(self.poll_s)
                self._scan()

    def _watch(self) -> bool:
        """Follow notifications until stopped or a missing folder appears (False: none to
        be had; poll instead)."""
        try:
            from watchfiles import watch
        except ImportError:
            return False
        existing = [r for r in self.roots if r.is_dir()]
        missing = [r for r in self.roots if not r.is_dir()]
        if not existing:
            return False
        rescan_at = time.monotonic()  # once watching: what changed before the watch began
        try:
            self.watching = True
            for changes in watch(
                *existing,
                stop_event=self._stop,
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                rust_timeout=int(self.poll_s * 1000),
                yield_on_timeout=True,
                raise_interrupt=False,
            ):
                # a changed file is read on; a folder created or moved in is read whole
                # (its files were there before the watch on it)
                paths = {Path(p) for _, p in changes}
                changed = sorted(
                    p for p in paths if (p.suffix == SUFFIX and p.is_file()) or p.is_dir()
                )
                if changed:
                    self._scan(changed)
                if time.monotonic() >= rescan_at:
                    self._scan()
                    rescan_at = time.monotonic() + self.rescan_s
                if any(r.is_dir() for r in missing):
                    self._scan()
                    return True  # watch the new folder too
        except (OSError, RuntimeError) as exc:  # no watches left, a folder gone
            self.errors += 1
            self.last_error = f"transcripts: watching stopped ({exc}); polling instead"
            self.notify = False
            return False
        finally:
            self.watching = False
        return True
