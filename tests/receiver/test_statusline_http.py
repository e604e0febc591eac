"""The status line's endpoints on the OTLP/HTTP listener: samples in (stored before the answer,
bad ones counted, the OTLP access rules), `/status` out (the same JSON as the queries), and the
spool a shim left taken in at start."""

from __future__ import annotations

import json
import socket
import time

import aiohttp
import pytest
from receiver_harness import JSON, running_server

from claude_top.core.budgets import LimitSettings
from claude_top.core.queries.limits import limits
from claude_top.core.sources.statusline.spool import append_spool, spool_path
from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
from claude_top.receiver.server import ReceiverConfig, Receivers
from truth import STATUSLINE_CAPTURE, statusline_samples

PATH = "/claude-top/v1/statusline"
STATUS = "/claude-top/v1/status"
SAMPLES = statusline_samples()
S = 10**9


def envelopes(samples=SAMPLES) -> bytes:
    return json.dumps({"samples": [{"received_ns": r, "text": t} for r, t, _ in samples]}).encode()


def stored(server) -> list[tuple]:
    return server.query(
        "SELECT received_ns, five_hour_pct, via FROM statusline_samples ORDER BY received_ns",
        settle=False,
    )


async def test_samples_are_committed_before_the_answer():
    async with running_server() as server:
        reply = await server.post(PATH, envelopes(), JSON)
        assert reply.status == 200, reply.body
        assert json.loads(reply.body) == {
            "stored": 4,
            "duplicates": 0,
            "rejected": 0,
            "problems": [],
        }
        assert stored(server) == [
            (r, d.get("rate_limits", {}).get("five_hour", {}).get("used_percentage"), "live")
            for r, _, d in SAMPLES
        ]
        again = await server.post(PATH, envelopes(), JSON)
        assert json.loads(again.body)["duplicates"] == 4
        assert server.rx.statusline.stored == 4


async def test_a_bare_sample_arrives_now():
    doc = json.loads(SAMPLES[-1][1])
    before = time.time_ns()
    doc["rate_limits"]["five_hour"]["resets_at"] = before // S + 3600
    async with running_server() as server:
        reply = await server.post(PATH, json.dumps(doc).encode(), JSON)
        assert json.loads(reply.body)["stored"] == 1
        ((received, pct, _),) = stored(server)
        assert pct == 61 and before <= received <= time.time_ns()
        # the capture's own window has passed by the clock: dropped, and said so
        late = await server.post(PATH, SAMPLES[-1][1].encode(), JSON)
        assert "already passed" in json.loads(late.body)["problems"][0]


async def test_bad_samples_are_counted_and_nothing_breaks():
    bad = json.loads(SAMPLES[-1][1])
    bad["rate_limits"]["five_hour"]["resets_at"] = "2026-12-05T09:00:00Z"
    bad["rate_limits"]["seven_day"]["used_percentage"] = 250
    items = [
        {"received_ns": SAMPLES[-1][0], "text": "not json"},
        {"received_ns": SAMPLES[-1][0], "text": json.dumps(bad)},
        {"received_ns": SAMPLES[-1][0]},
    ]
    async with running_server() as server:
        reply = await server.post(PATH, json.dumps({"samples": items}).encode(), JSON)
        assert reply.status == 200
        doc = json.loads(reply.body)
        assert (doc["stored"], doc["rejected"]) == (1, 2)
        assert len(doc["problems"]) == 4
        garbage = await server.post(PATH, b"\x00\xff not even json", JSON)
        assert json.loads(garbage.body)["rejected"] == 1
        (failed,) = server.query(
            "SELECT count(*) FROM ingest_failed WHERE signal = 'statusline'", settle=False
        )
        assert failed == (3,)
        assert server.rx.statusline.rejected == 3
        status = await server.session.get(server.url + STATUS)
        assert (await status.json())["statusline"]["rejected"] == 3


async def test_the_access_rules_of_otlp_exports():
    async with running_server(token="s3cret") as server:
        reply = await server.post(PATH, envelopes(), JSON)
        assert reply.status == 401
        assert stored(server) == []
        ok = await server.post(PATH, envelopes(), JSON, {"Authorization": "Bearer s3cret"})
        assert ok.status == 200
        async with server.session.get(server.url + STATUS) as resp:
            assert resp.status == 401
    async with running_server() as server:
        wrong_type = await server.post(PATH, envelopes(), "text/plain")
        assert wrong_type.status == 415
        rebound = await server.post(PATH, envelopes(), JSON, {"Host": "evil.example:4318"})
        assert rebound.status == 403
        local = await server.post(PATH, envelopes(), JSON, {"Host": "localhost:4318"})
        assert local.status == 200


async def test_status_is_what_the_queries_say():
    at = SAMPLES[-1][0] // S + 10
    async with running_server() as server:
        await server.replay(STATUSLINE_CAPTURE)
        server.settle()
        await server.post(PATH, envelopes(), JSON)
        async with server.session.get(server.url + STATUS, params={"at": str(at)}) as resp:
            assert resp.status == 200
            doc = await resp.json()
        with server.store.reading() as cur:
            want = limits(cur, LimitSettings(), at * S).to_json(at * S)
        assert doc == json.loads(json.dumps(want))
        assert doc["five_hour"]["used_percentage"] == 61
        assert doc["five_hour"]["cost_usd"] == 0.042714
        params = {"at": str(at), "budget": "day=0.05"}
        async with server.session.get(server.url + STATUS, params=params) as resp:
            assert (await resp.json())["budgets"]["day"]["limit_usd"] == 0.05
        async with server.session.get(server.url + STATUS, params={"budget": "x=1"}) as resp:
            assert resp.status == 400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_spool_is_taken_in_at_start_and_after_a_live_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    port = _free_port()
    spool = spool_path(port)
    for r, t, _ in SAMPLES[:2]:
        append_spool(spool, {"received_ns": r, "text": t})
    store = Store.open(str(tmp_path / "db.duckdb"))
    writer = StoreWriter(store, decode_in_worker=False)
    rx = Receivers(writer, ReceiverConfig(grpc_port=0, http_port=port))
    await rx.start()
    try:
        assert rx.statusline.spooled.stored == 2
        assert spool.read_bytes() == b""
        for r, t, _ in SAMPLES[2:3]:  # a shim that gave up meanwhile
            append_spool(spool, {"received_ns": r, "text": t})
        async with aiohttp.ClientSession() as session:
            body = envelopes(SAMPLES[3:])
            url = f"http://127.0.0.1:{port}{PATH}"
            async with session.post(url, data=body, headers={"Content-Type": JSON}) as resp:
                assert resp.status == 200
        with store.reading() as cur:
            rows = cur.execute(
                "SELECT received_ns, via FROM statusline_samples ORDER BY received_ns"
            ).fetchall()
        assert rows == [
            (SAMPLES[0][0], "spool"),
            (SAMPLES[1][0], "spool"),
            (SAMPLES[2][0], "spool"),
            (SAMPLES[3][0], "live"),
        ]
    finally:
        await rx.stop(0)
        writer.close()
        store.close()


@pytest.mark.parametrize("redact", [frozenset({"paths"})])
async def test_redacted_paths_never_reach_the_database(redact):
    async with running_server(redact=redact) as server:
        await server.post(PATH, envelopes(SAMPLES[-1:]), JSON)
        ((cwd, raw),) = server.query("SELECT cwd, raw FROM statusline_samples", settle=False)
        assert cwd == "<REDACTED>" and "/home/u-limits" not in raw
