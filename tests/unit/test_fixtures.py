"""The vendored captures are whole (every file as `MANIFEST` lists it) and, where the upstream
copy is beside the checkout, the same as it."""

from __future__ import annotations

import importlib.util

import pytest

from truth import FIXTURES_ROOT

spec = importlib.util.spec_from_file_location("fixtures_sync", FIXTURES_ROOT / "sync.py")
sync = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync)


def test_the_vendored_fixtures_match_their_manifest():
    manifest = sync.read_manifest()
    assert "claude-code-2.1.328/basic.grpc.jsonl" in manifest
    assert "claude-code-2.1.328/transcripts/basic.grpc.jsonl" in manifest
    assert "gemini-cli-0.61.0/basic.grpc.jsonl" in manifest
    assert sync.differences(manifest, sync.tree(FIXTURES_ROOT)) == []


def test_a_changed_file_is_reported(tmp_path):
    (tmp_path / "a.jsonl").write_text("1\n")
    (tmp_path / "b.jsonl").write_text("2\n")
    before = sync.tree(tmp_path)
    (tmp_path / "a.jsonl").write_text("changed\n")
    (tmp_path / "b.jsonl").unlink()
    (tmp_path / "c.jsonl").write_text("3\n")
    assert sync.differences(before, sync.tree(tmp_path)) == [
        "missing  b.jsonl",
        "extra    c.jsonl",
        "changed  a.jsonl",
    ]


@pytest.mark.skipif(not sync.UPSTREAM.is_dir(), reason="no upstream copy beside this checkout")
def test_the_vendored_fixtures_are_the_upstream_ones():
    assert sync.differences(sync.tree(sync.UPSTREAM), sync.tree(FIXTURES_ROOT)) == []
