"""The transcript importer's batches: however the files are cut into commits, and wherever an
import is stopped and taken up again, the stored rows are the same."""

from __future__ import annotations

from claude_top.core.store.database import Store
from claude_top.core.store.importer import TranscriptImporter
from truth import FIXTURES, TRANSCRIPT_SETS, transcript_files

ROOTS = [FIXTURES / projects for _, projects in TRANSCRIPT_SETS.values()]
FILES = sum(len(transcript_files(projects)) for _, projects in TRANSCRIPT_SETS.values())


def _rows(store: Store) -> list[tuple]:
    with store.reading() as cur:
        return cur.execute(
            "SELECT session_id, kind, count(*), round(sum(cost_usd), 10), sum(input_tokens), "
            "sum(output_tokens) FROM events GROUP BY ALL ORDER BY ALL"
        ).fetchall()


def _imported(**kw) -> tuple[list[tuple], TranscriptImporter]:
    store = Store.open(":memory:")
    importer = TranscriptImporter(store, **kw)
    importer.run(ROOTS)
    try:
        return _rows(store), importer
    finally:
        store.close()


def test_one_commit_per_file_stores_what_one_commit_for_all_does():
    whole, one = _imported()
    per_file, many = _imported(batch_bytes=1)
    assert one.commits == 1 and many.commits >= FILES > 1
    assert per_file == whole and len(whole) > 0


def test_an_import_stopped_after_its_first_commit_is_completed_by_the_next():
    whole, _ = _imported()
    store = Store.open(":memory:")
    try:
        importer = TranscriptImporter(store, batch_bytes=1)
        importer.run(ROOTS, stop=lambda: importer.commits >= 1)
        assert importer.commits <= 2  # the batch already read is committed too
        assert _rows(store) != whole
        importer.run(ROOTS)
        assert _rows(store) == whole
    finally:
        store.close()
