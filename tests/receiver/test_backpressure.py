"""When the writer is behind or a commit fails, exporters are told to retry (gRPC UNAVAILABLE,
HTTP 503 + Retry-After); nothing acknowledged is lost and nothing rejected is stored."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading

import duckdb
import grpc
import pytest
from receiver_harness import PROTOBUF, running_server

from claude_top.core.store.database import Store
from truth import Truth, grpc_requests

BASIC = dict(grpc_requests("basic.grpc"))
TRUTH = Truth("basic.grpc")
SPANS, EVENTS = len(TRUTH.spans), len(TRUTH.events)  # 10 spans, 13 events
NOTHING = {"spans": 0, "events": 0, "metric_points": 0}


class Gate:
    """Holds a writer method until opened; `entered` is set when a call is waiting."""

    def __init__(self, owner, name: str) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self._owner, self._name = owner, name
        original = getattr(owner, name)

        def gated(*args, **kwargs):
            self.entered.set()
            self.opened.wait(10)
            return original(*args, **kwargs)

        setattr(owner, name, gated)

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10), "the gated call never came"

    def open(self) -> None:
        self.opened.set()


class FailingCommits:
    """A cursor whose commit() raises while `failures` lasts (the transaction is rolled back)."""

    def __init__(self, cursor, failures: int) -> None:
        self._cursor = cursor
        self.failures = failures
        self.raised = 0

    def commit(self):
        if self.failures:
            self.failures -= 1
            self.raised += 1
            raise duckdb.IOException("injected failure: could not write to disk")
        return self._cursor.commit()

    def __getattr__(self, name):
        return getattr(self._cursor, name)


@contextlib.asynccontextmanager
async def journal_blocked(server):
    """The journal writer (whose commit acknowledgements wait on) is held while inside."""
    gate = Gate(server.writer, "_commit_journal")
    try:
        yield gate
    finally:
        gate.open()


async def test_grpc_unavailable_when_the_writer_is_behind():
    async with running_server(writer_options={"max_pending_rows": SPANS + 2}) as server:
        async with journal_blocked(server) as gate:
            first = asyncio.create_task(server.export("traces", BASIC["traces"]))
            await gate.wait_entered()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await server.export("logs", BASIC["logs"])
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "behind" in err.value.details()
            metadata = dict(err.value.initial_metadata() or ()) | dict(
                err.value.trailing_metadata() or ()
            )
            assert metadata.get("retry-after") == "1"
            assert not first.done()  # not acknowledged before its commit
            gate.open()
            assert await first == b""
        assert server.counts() == {**NOTHING, "spans": SPANS}
        # and it keeps serving once the writer has caught up
        assert await server.export("logs", BASIC["logs"]) == b""
        assert server.counts() == {**NOTHING, "spans": SPANS, "events": EVENTS}


async def test_http_503_with_retry_after_when_the_writer_is_behind():
    async with running_server(writer_options={"max_pending_rows": SPANS + 2}) as server:
        async with journal_blocked(server) as gate:
            first = asyncio.create_task(server.post("/v1/traces", BASIC["traces"], PROTOBUF))
            await gate.wait_entered()
            reply = await server.post("/v1/logs", BASIC["logs"], PROTOBUF)
            assert reply.status == 503
            assert reply.headers["Retry-After"] == "1"
            assert not first.done()
            gate.open()
            assert (await first).status == 200
        assert server.counts() == {**NOTHING, "spans": SPANS}
        assert (await server.post("/v1/logs", BASIC["logs"], PROTOBUF)).status == 200
        assert server.counts() == {**NOTHING, "spans": SPANS, "events": EVENTS}


async def test_retry_after_backpressure_is_stored_once():
    """The exporter's retry of the rejected export lands, and counts once."""
    async with running_server(writer_options={"max_pending_rows": SPANS + 2}) as server:
        async with journal_blocked(server) as gate:
            first = asyncio.create_task(server.export("logs", BASIC["logs"]))
            await gate.wait_entered()
            with pytest.raises(grpc.aio.AioRpcError):
                await server.export("logs", BASIC["logs"])
            gate.open()
            await first
        assert await server.export("logs", BASIC["logs"]) == b""
        assert server.counts() == {**NOTHING, "events": EVENTS}


async def test_unavailable_when_the_indexer_is_behind():
    """Acknowledged exports wait in the journal; past the backlog limit, exporters retry."""
    options = {"max_backlog_rows": SPANS + 2}
    async with running_server(writer_options=options) as server:
        gate = Gate(server.writer._committer, "commit")
        try:
            assert await server.export("traces", BASIC["traces"]) == b""  # journalled, acked
            await gate.wait_entered()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await server.export("logs", BASIC["logs"])
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            reply = await server.post("/v1/logs", BASIC["logs"], PROTOBUF)
            assert (reply.status, reply.headers["Retry-After"]) == (503, "1")
            assert server.durable_records() == {"traces": SPANS, "logs": 0, "metrics": 0}
        finally:
            gate.open()
        assert server.counts() == {**NOTHING, "spans": SPANS}
        assert server.journal_records() == 0


class FailingSyncs:
    """os.fdatasync failing while `failures` lasts: the disk refuses the journal's write."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.raised = 0
        self._sync = os.fdatasync

    def __call__(self, fd: int) -> None:
        if self.failures:
            self.failures -= 1
            self.raised += 1
            raise OSError(errno.ENOSPC, "injected failure: could not write to disk")
        self._sync(fd)


async def test_journal_commit_failure_is_not_acknowledged(tmp_path, monkeypatch):
    store = Store.open(tmp_path / "ct.duckdb")
    async with running_server(store) as server:
        failing = FailingSyncs(failures=2)
        monkeypatch.setattr(os, "fdatasync", failing)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await server.export("traces", BASIC["traces"])
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "could not write" in err.value.details()
        reply = await server.post("/v1/logs", BASIC["logs"], PROTOBUF)
        assert reply.status == 503
        assert "Retry-After" in reply.headers
        assert failing.raised == 2
        # rolled back: nothing half-written, nothing journalled
        assert server.durable_records() == {"traces": 0, "logs": 0, "metrics": 0}
        assert server.counts() == NOTHING
        segments = list((tmp_path / "ct.duckdb.journal").iterdir())
        assert [p.stat().st_size for p in segments] == [0]
        # the failure clears: the server keeps serving and the retries land once
        assert await server.export("traces", BASIC["traces"]) == b""
        assert (await server.post("/v1/logs", BASIC["logs"], PROTOBUF)).status == 200
        assert server.counts() == {**NOTHING, "spans": SPANS, "events": EVENTS}


async def test_indexer_commit_failure_loses_nothing_acknowledged():
    """A failed indexing transaction is rolled back and retried: every record once."""
    async with running_server() as server:
        committer = server.writer._committer
        failing = FailingCommits(committer.cur, failures=2)
        committer.cur = failing
        for signal, body in grpc_requests("basic.grpc"):
            assert await server.export(signal, body) == b""
        assert server.counts() == {
            "spans": SPANS,
            "events": EVENTS,
            "metric_points": TRUTH.data_points,
        }
        assert failing.raised == 2
        assert server.writer.stats.index_errors == 2
        assert server.journal_records() == 0
        (cost,) = server.query(
            "SELECT sum(increment) FROM metric_points WHERE name = 'claude_code.cost.usage'"
        )[0]
        assert cost == pytest.approx(TRUTH.cost(), abs=1e-9)


async def test_the_pending_bound_counts_bytes_too():
    """Few records in big exports: the memory waiting for the journal is bounded in bytes."""
    options = {"max_pending_bytes": len(BASIC["traces"]) + len(BASIC["logs"]) - 1}
    async with running_server(writer_options=options) as server:
        async with journal_blocked(server) as gate:
            first = asyncio.create_task(server.export("traces", BASIC["traces"]))
            await gate.wait_entered()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await server.export("logs", BASIC["logs"])
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "MB pending" in err.value.details()
            gate.open()
            assert await first == b""
        assert server.writer.stats.pending_bytes == 0
        assert await server.export("logs", BASIC["logs"]) == b""
        assert server.counts() == {**NOTHING, "spans": SPANS, "events": EVENTS}
        assert server.writer.stats.backlog_bytes == 0


async def test_the_backlog_bound_counts_bytes_too():
    options = {"max_backlog_bytes": len(BASIC["traces"]) + len(BASIC["logs"]) - 1}
    async with running_server(writer_options=options) as server:
        gate = Gate(server.writer._committer, "commit")
        try:
            assert await server.export("traces", BASIC["traces"]) == b""
            await gate.wait_entered()
            assert server.writer.stats.backlog_bytes == len(BASIC["traces"])
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await server.export("logs", BASIC["logs"])
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "MB journalled" in err.value.details()
        finally:
            gate.open()
        assert server.counts() == {**NOTHING, "spans": SPANS}
        assert server.writer.stats.backlog_bytes == 0
        assert await server.export("logs", BASIC["logs"]) == b""
        assert server.counts() == {**NOTHING, "spans": SPANS, "events": EVENTS}
