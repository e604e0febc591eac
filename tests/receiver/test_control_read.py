"""`POST /claude-top/v1/read` on a real `serve`: every `Reader` query answers over loopback as
it does on the local store (datetimes, arrays of durations and span trees round-trip), and only
with the instance's key."""

from __future__ import annotations

import dataclasses
import signal
import time

import grpc
import pytest

from claude_top.core import wire
from claude_top.core.budgets import LimitSettings
from claude_top.core.instance import Instance, InstanceError, read_instance
from claude_top.core.queries import Filter
from claude_top.core.queries.history import CostHistory
from claude_top.core.queries.limits import Limits, Spent, Window
from claude_top.core.queries.reader import READ_METHODS, LocalSource
from claude_top.core.queries.remote import RemoteSource
from claude_top.core.sources.otlp.signals import SIGNALS
from serving import start_serve
from truth import GRPC_FIXTURES, Truth, grpc_requests

RECEIVED = ("last_received_ns",)
"""When serve received a row: the only thing that differs from the fixture store."""
NOW_NS = 1_795_310_980 * 1_000_000_000
FILTERS = [
    Filter(),
    Filter(session_id="851b8ffd-2541-408a-9c22-e285d2e26c58"),
    Filter(text="opus"),
    Filter(since_ns=NOW_NS - 60 * 1_000_000_000),
]


def _without_receipt(value):
    """`value` without receive times, its sums to 1e-9 (serve adds them up in another order)."""
    if isinstance(value, dict):
        return {k: _without_receipt(v) for k, v in value.items() if k not in RECEIVED}
    if isinstance(value, list):
        return [_without_receipt(v) for v in value]
    if isinstance(value, float):
        return round(value, 9)
    return value


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    db = tmp_path_factory.mktemp("read") / "ct.duckdb"
    serve, port = start_serve(db)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    for name in GRPC_FIXTURES:
        for sig, body in grpc_requests(name):
            channel.unary_unary(SIGNALS[sig].method)(body, timeout=10)
    channel.close()
    source = RemoteSource(read_instance(str(db)))
    for _ in range(300):
        stats = source.status()["stats"]
        if stats["backlog_rows"] == 0 and stats["rows_indexed"] == stats["rows_committed"]:
            break
        time.sleep(0.05)
    yield source
    serve.send_signal(signal.SIGTERM)
    serve.communicate(timeout=60)


def test_every_read_answers_as_the_local_store_does(serving, fixture_store):
    local = LocalSource(fixture_store)
    asked = set()
    with serving.reader() as remote, local.reader() as here:
        for f in FILTERS:
            for method in ("overview", "earliest_ns", "models", "tools"):
                assert _without_receipt(getattr(remote, method)(f)) == _without_receipt(
                    getattr(here, method)(f)
                ), (method, f)
                asked.add(method)
            got, want = remote.sessions(f, NOW_NS), here.sessions(f, NOW_NS)
            assert _without_receipt(got) == _without_receipt(want)
            assert all(r["first_seen"].tzinfo is not None for r in got)
            for tool in {t["tool_name"] for t in here.tools(f)}:
                durations = remote.tool_durations(f, tool)
                assert durations.typecode == "d"
                assert sorted(durations) == sorted(here.tool_durations(f, tool))
                calls = remote.tool_calls(f, tool)
                assert _without_receipt(calls) == _without_receipt(here.tool_calls(f, tool))
            for model in {m["model"] for m in here.models(f)}:
                got = remote.model_requests(f, model)
                assert _without_receipt(got) == _without_receipt(here.model_requests(f, model))
            asked |= {"sessions", "tool_durations", "tool_calls", "model_requests"}
        for sid in Truth(*GRPC_FIXTURES).sessions():
            turns = remote.turns(sid)
            assert turns == here.turns(sid)
            for turn in turns:
                roots, source = remote.span_tree(sid, turn["key"])
                assert (roots, source) == here.span_tree(sid, turn["key"])
                assert roots and all(dataclasses.is_dataclass(r) for r in roots)
            asked |= {"turns", "span_tree"}
        settings = LimitSettings(budgets={"day": 1.0, "5h": 0.5}, alert_at=(50.0, 90.0))
        got, want = remote.limits(settings, NOW_NS), here.limits(settings, NOW_NS)
        assert isinstance(got, Limits) and all(isinstance(w, Window) for w in got.windows)
        assert [w.name for w in got.windows] == ["budget:5h", "budget:day"]
        assert all(isinstance(w.spent, Spent) for w in got.windows)
        assert got.alert_at == (50.0, 90.0)
        assert _without_receipt(dataclasses.asdict(got)) == _without_receipt(
            dataclasses.asdict(want)
        )
        for period in ("day", "week", "month"):
            got, want = (
                remote.cost_history(period, 12, NOW_NS),
                here.cost_history(period, 12, NOW_NS),
            )
            assert isinstance(got, CostHistory) and sum(got.requests) == len(
                Truth(*GRPC_FIXTURES).api_requests()
            )
            assert _without_receipt(dataclasses.asdict(got)) == _without_receipt(
                dataclasses.asdict(want)
            )
        assert _without_receipt(remote.top_projects(0, NOW_NS, 5)) == _without_receipt(
            here.top_projects(0, NOW_NS, 5)
        )
        assert remote.group_keys(Filter()) == here.group_keys(Filter())
        for key in here.group_keys(Filter()):
            got = remote.grouped(Filter(), key, NOW_NS)
            assert _without_receipt(list(got)) == _without_receipt(
                list(here.grouped(Filter(), key, NOW_NS))
            )
        asked |= {"limits", "cost_history", "top_projects", "group_keys", "grouped"}
    assert asked == set(READ_METHODS)


def test_read_needs_the_key_and_a_known_method(serving):
    instance = serving.instance
    forged = Instance(**{**dataclasses.asdict(instance), "key": "0" * 32})
    with pytest.raises(InstanceError, match="wrong instance key"):
        forged.call("POST", "/read", wire.dumps({"method": "overview", "args": [Filter()]}))
    with pytest.raises(InstanceError, match="no such read: 'checkpoint'"):
        instance.call("POST", "/read", wire.dumps({"method": "checkpoint", "args": []}))
    with pytest.raises(InstanceError, match="bad read request"):
        instance.call("POST", "/read", b"not json")
