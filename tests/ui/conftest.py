"""UI test fixtures: the fixture store with pinned receive times."""

from __future__ import annotations

import pytest
from uihelpers import pin_received


@pytest.fixture
def ui_store(fixture_store):
    """Every gRPC fixture, `received_ns` pinned to the telemetry's own timestamps."""
    return pin_received(fixture_store)
