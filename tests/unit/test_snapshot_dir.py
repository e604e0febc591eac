"""`snapshot_dir`: the timestamped folder a UI snapshot is written into."""

from __future__ import annotations

import time

from claude_top.core.export import export_snapshot, snapshot_dir
from claude_top.core.store.database import Store

NOW_NS = 1_800_000_000 * 1_000_000_000


def test_a_new_folder_per_snapshot(tmp_path):
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(NOW_NS // 1_000_000_000))
    base = tmp_path / "exports" / "claude-top"
    first = snapshot_dir(base, NOW_NS)
    second = snapshot_dir(base, NOW_NS + 500_000_000)
    third = snapshot_dir(base, NOW_NS)
    assert first == base / f"claude-top-export-{stamp}"
    assert second == base / f"claude-top-export-{stamp}-2"
    assert third == base / f"claude-top-export-{stamp}-3"
    assert all(p.is_dir() and not any(p.iterdir()) for p in (first, second, third))


def test_export_snapshot_writes_into_it(tmp_path):
    store = Store.open(":memory:")
    try:
        out = snapshot_dir(tmp_path, NOW_NS)
        result = export_snapshot(
            store.cursor(), out, db_path=":memory:", window=None, window_s=None, session_id=None
        )
    finally:
        store.close()
    assert result.directory == out
    assert sorted(p.name for p in out.iterdir()) == [
        "events.csv",
        "models.csv",
        "sessions.csv",
        "snapshot.json",
        "spans.csv",
        "tools.csv",
    ]
