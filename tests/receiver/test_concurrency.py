"""Many exporters at once over both transports (group commit), gRPC compression, cumulative
metrics through the receivers, and a shutdown with exports in flight."""

from __future__ import annotations

import asyncio
import gzip
import threading

import grpc
import pytest
from receiver_harness import JSON, PROTOBUF, REQUESTS, SERVICES, running_server

from truth import Truth, grpc_requests

BASIC = dict(grpc_requests("basic.grpc"))
TRUTH = Truth("basic.grpc")


def renumbered_traces(n: int) -> bytes:
    """basic.grpc's traces export with the trace id made unique by `n` (parents kept)."""
    msg = REQUESTS["traces"]()
    msg.ParseFromString(BASIC["traces"])
    for span in msg.resource_spans[0].scope_spans[0].spans:
        span.trace_id = n.to_bytes(4, "big") + span.trace_id[4:]
    return msg.SerializeToString()


def cumulative_cost(points: list[tuple[int, int, float]]) -> bytes:
    msg = REQUESTS["metrics"]()
    metric = msg.resource_metrics.add().scope_metrics.add().metrics.add(name="cost")
    metric.sum.aggregation_temporality = 2  # CUMULATIVE
    metric.sum.is_monotonic = True
    for start, t, value in points:
        metric.sum.data_points.add(start_time_unix_nano=start, time_unix_nano=t, as_double=value)
    return msg.SerializeToString()


async def test_many_concurrent_exporters_over_both_transports():
    n = 60
    async with running_server() as server:
        calls = []
        for i in range(n):
            body = renumbered_traces(i + 1)
            if i % 3 == 0:
                calls.append(server.export("traces", body))
            elif i % 3 == 1:
                calls.append(server.post("/v1/traces", body, PROTOBUF))
            else:
                calls.append(
                    server.post("/", gzip.compress(body), PROTOBUF, {"Content-Encoding": "gzip"})
                )
        results = await asyncio.gather(*calls)
        assert all(r == b"" or r.status == 200 for r in results)
        assert server.counts()["spans"] == n * len(TRUTH.spans)
        (traces, orphans) = server.query(
            "SELECT count(DISTINCT trace_id), count(*) FILTER (WHERE parent_span_id IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM spans p WHERE p.trace_id = s.trace_id "
            "AND p.span_id = s.parent_span_id)) FROM spans s"
        )[0]
        assert (traces, orphans) == (n, 0)
        assert server.writer.stats.exports_committed == n


async def test_grpc_gzip_compressed_exports():
    async with running_server() as server:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{server.rx.grpc_port}", compression=grpc.Compression.Gzip
        ) as channel:
            for signal, body in grpc_requests("basic.grpc"):
                assert await channel.unary_unary(SERVICES[signal])(body, timeout=10) == b""
        assert server.counts() == {
            "spans": len(TRUTH.spans),
            "events": len(TRUTH.events),
            "metric_points": TRUTH.data_points,
        }


async def test_grpc_compressed_message_over_the_limit_once_inflated():
    async with running_server(max_body=64 * 1024) as server:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{server.rx.grpc_port}", compression=grpc.Compression.Gzip
        ) as channel:
            export = channel.unary_unary(SERVICES["traces"])
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await export(bytes(4 << 20), timeout=10)  # 4 MiB of zeros: ~4 KB on the wire
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert await export(BASIC["traces"], timeout=10) == b""
        assert server.counts()["spans"] == len(TRUTH.spans)


async def test_cumulative_metrics_through_the_receivers():
    s = 1_000_000_000
    t0 = 1_795_000_000 * s
    async with running_server() as server:
        # a running total exported three times, then the exporter restarts; one export is
        # delivered twice and one arrives late, over both transports
        await server.export("metrics", cumulative_cost([(t0, t0 + s, 1.0)]))
        await server.post("/v1/metrics", cumulative_cost([(t0, t0 + 3 * s, 4.0)]), PROTOBUF)
        await server.export("metrics", cumulative_cost([(t0, t0 + 3 * s, 4.0)]))
        await server.export("metrics", cumulative_cost([(t0, t0 + 2 * s, 2.5)]))  # late
        restart = t0 + 10 * s
        await server.export("metrics", cumulative_cost([(restart, restart + s, 0.5)]))
        (total,) = server.query("SELECT sum(increment) FROM metric_points WHERE name = 'cost'")[0]
        assert total == 4.5


async def test_stop_with_exports_in_flight_acknowledges_only_what_is_stored():
    async with running_server() as server:
        opened = threading.Event()
        original = server.writer._commit_journal

        def slow(*args, **kwargs):
            opened.wait(10)
            return original(*args, **kwargs)

        server.writer._commit_journal = slow
        inflight = [
            asyncio.create_task(server.export("traces", BASIC["traces"])),
            asyncio.create_task(server.post("/v1/logs", BASIC["logs"], PROTOBUF)),
        ]
        await asyncio.sleep(0.2)
        stopping = asyncio.create_task(server.rx.stop(grace=5))
        await asyncio.sleep(0.2)
        opened.set()
        await stopping
        results = await asyncio.gather(*inflight, return_exceptions=True)
        # the grace period is long enough: both finish, acknowledged, and both are stored
        assert results[0] == b"", results[0]
        assert not isinstance(results[1], BaseException), results[1]
        assert results[1].status == 200
        server.writer.close()
        assert server.counts() == {
            "spans": len(TRUTH.spans),
            "events": len(TRUTH.events),
            "metric_points": 0,
        }


@pytest.mark.parametrize("ctype", [PROTOBUF, JSON])
async def test_empty_export_is_acknowledged(ctype):
    body = b"" if ctype == PROTOBUF else b"{}"
    async with running_server() as server:
        reply = await server.post("/v1/traces", body, ctype)
        assert reply.status == 200
        assert await server.export("logs", b"") == b""
        assert server.counts() == {"spans": 0, "events": 0, "metric_points": 0}
