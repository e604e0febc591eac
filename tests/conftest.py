"""Shared fixtures; the helpers themselves live in `truth.py`."""

from __future__ import annotations

import pytest

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
