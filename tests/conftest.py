"""Shared fixtures; the helpers themselves live in `truth.py`."""

from __future__ import annotations

import os

import pytest

# `claude-top` and `serve` started by tests (in process or not) leave the machine's own
# Claude Code transcripts alone; a test that wants them passes --transcripts DIR.
os.environ["CLAUDE_TOP_TRANSCRIPTS"] = "off"

from truth import GRPC_FIXTURES, grpc_requests


@pytest.fixture
def fixture_store():
    """An in-memory store holding every gRPC fixture, written through the real decoder."""
    from claude_top.core.sources.otlp.decode import decode_protobuf
    from claude_top.core.store.commit import write_rows
    from claude_top.core.store.database import Store

    store = Store.open(":memory:")
    for name in GRPC_FIXTURES:
        for signal, body in grpc_requests(name):
            write_rows(store, [decode_protobuf(signal, body)])
    yield store
    store.close()
