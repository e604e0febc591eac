"""UI test fixtures: the fixture store with pinned receive times."""

from __future__ import annotations

import pytest
from uihelpers import pin_received


@pytest.fixture
def ui_store(fixture_store):
    """Every gRPC fixture, `received_ns` pinned to the telemetry's own timestamps."""
    return pin_received(fixture_store)


@pytest.fixture
def mixed_store():
    """Claude Code's gRPC fixtures, Gemini CLI's and Codex CLI's captures, receive times
    pinned."""
    from claude_top.core.sources.otlp.decode import decode_protobuf
    from claude_top.core.store.commit import write_rows
    from claude_top.core.store.database import Store
    from truth import GRPC_FIXTURES, OTHER_AGENT_CAPTURES, capture_requests, grpc_requests

    store = Store.open(":memory:")
    requests = [r for name in GRPC_FIXTURES for r in grpc_requests(name)]
    requests += [r for path in OTHER_AGENT_CAPTURES.values() for r in capture_requests(path)]
    for signal, body in requests:
        write_rows(store, [decode_protobuf(signal, body)])
    yield pin_received(store)
    store.close()
