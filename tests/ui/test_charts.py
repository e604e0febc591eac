"""The charts: cost by model is proportional for any number of models, one row each; a tool's
latency histogram."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from uihelpers import make_app, pin_received, settle

from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from truth import GRPC_FIXTURES, Truth, grpc_requests

TRUTH = Truth(*GRPC_FIXTURES)
EIGHTHS = "▏▎▍▌▋▊▉"
"""Unicode's left one-eighth to seven-eighths blocks."""
MODEL_SPLITS = {
    1: [13],
    2: [10, 3],
    3: [8, 4, 1],
    5: [5, 3, 2, 2, 1],
}
"""How the fixtures' 13 API requests are shared out among 1, 2, 3 and 5 models."""


def _models_store(counts: list[int]) -> tuple[Store, dict[str, float]]:
    """The fixtures with their API requests relabelled to len(counts) models (the first
    counts[0] requests to the first, ...); returns the store and each model's cost."""
    names = [f"claude-model-{chr(ord('a') + i)}" for i in range(len(counts))]
    assigned = [name for name, n in zip(names, counts, strict=True) for _ in range(n)]
    requests = TRUTH.api_requests()
    assert len(assigned) == len(requests)
    cost = dict.fromkeys(names, 0.0)
    for name, event in zip(assigned, requests, strict=True):
        cost[name] += float(event["cost_usd"])
    store = Store.open(":memory:")
    queue = iter(assigned)
    for fixture in GRPC_FIXTURES:
        for signal, body in grpc_requests(fixture):
            if signal == "logs":
                req = ExportLogsServiceRequest.FromString(body)
                for rl in req.resource_logs:
                    for sl in rl.scope_logs:
                        for rec in sl.log_records:
                            attrs = {kv.key: kv.value for kv in rec.attributes}
                            if attrs["event.name"].string_value == "api_request":
                                attrs["model"].string_value = next(queue)
                body = req.SerializeToString()
            write_rows(store, [decode_protobuf(signal, body)])
    return pin_received(store), {n.removeprefix("claude-"): c for n, c in cost.items()}


def bar_cells(bar: str) -> float:
    """A bar's length in cells: full blocks plus the eighths of its last one."""
    return sum(1.0 if c == "█" else (EIGHTHS.index(c) + 1) / 8 for c in bar)


def drawn_bars(chart) -> dict[str, tuple[float, str]]:
    """Each model's bar (cells) and the cost printed beside it, as the chart draws them."""
    out = {}
    for line in chart.render().plain.splitlines()[1:]:
        name, _, rest = line.strip().partition(" ")
        bar = rest.rstrip().rpartition(" ")[0].strip()
        out[name] = (bar_cells(bar), rest.split()[-1])
    return out


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
@pytest.mark.parametrize("models", sorted(MODEL_SPLITS))
async def test_cost_bars_are_proportional_one_row_each(size, models):
    store, cost = _models_store(MODEL_SPLITS[models])
    app = make_app(store)
    try:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await pilot.press("3")
            await settle(pilot)
            chart = app.main.query_one("#cost-chart")
            lines = chart.render().plain.splitlines()
            assert lines[0].strip() == "cost by model (USD)"
            assert len(lines) == 1 + models  # one row per model, nothing spilled
            bars = drawn_bars(chart)
            assert list(bars) == sorted(cost, key=lambda m: (-cost[m], m))
            top = max(cost.values())
            full = bars[max(cost, key=cost.get)][0]
            assert full >= 20
            for model, (cells, printed) in bars.items():
                assert cells == pytest.approx(cost[model] / top * full, abs=1 / 8)
                assert printed == f"${cost[model]:.4f}"
    finally:
        store.close()
