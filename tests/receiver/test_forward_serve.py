"""The relay from outside: real `claude-top serve --forward` and upstream `claude-top serve`
processes. The captures are replayed into the relay over OTLP/gRPC while its upstream is down
for the first half (and, in one run, the relay is killed with SIGKILL meanwhile and started
again); after the upstream comes up both stores hold exactly the truth. Deliveries are counted
by the upstream (every acknowledged export, duplicates included): exactly once in the normal
path, at least once across the crash."""

from __future__ import annotations

import re
import signal
import socket
import time
from pathlib import Path

import grpc
import pytest
from receiver_harness import SERVICES

from claude_top.core.instance import InstanceError, read_instance
from claude_top.core.store.database import Store
from serving import start_serve
from truth import GRPC_FIXTURES, Truth, grpc_requests

REQUESTS = [r for name in GRPC_FIXTURES for r in grpc_requests(name)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send(port: int, requests) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        for sig, body in requests:
            channel.unary_unary(SERVICES[sig])(body, timeout=30)


def stored_events(db: Path, out: Path) -> int:
    """Events in a running instance's store (asked over its control API)."""
    instance = read_instance(str(db))
    if instance is None:
        return -1
    try:
        answer = instance.request("POST", "/export", {"out": str(out)})
    except InstanceError:
        return -1
    return answer["counts"]["events"]


def stop(proc) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode(), err.decode()


def totals(db: Path) -> dict:
    store = Store.open(str(db), read_only=True)
    try:
        with store.reading() as cur:
            events, cost = cur.execute("SELECT count(*), sum(cost_usd) FROM events").fetchone()
            (spans,) = cur.execute("SELECT count(*) FROM spans").fetchone()
            (points,) = cur.execute("SELECT count(*) FROM metric_points").fetchone()
            (dup,) = cur.execute(
                "SELECT count(*) - count(DISTINCT (session_id, sequence, time_ns, name)) "
                "FROM events"
            ).fetchone()
    finally:
        store.close()
    return {
        "events": events,
        "cost": round(cost, 9),
        "spans": spans,
        "points": points,
        "duplicates": dup,
    }


@pytest.mark.parametrize("crash", [False, True], ids=["restart-free", "relay-killed"])
def test_serve_forward_through_an_outage_ends_with_the_truth_in_both_stores(tmp_path, crash):
    up_port = free_port()
    relay_db, up_db = tmp_path / "relay.duckdb", tmp_path / "team.duckdb"
    forward = ("--forward", f"http://127.0.0.1:{up_port}")
    relay, relay_port = start_serve(relay_db, *forward)
    upstream = None
    half = len(REQUESTS) // 2
    try:
        send(relay_port, REQUESTS[:half])  # acknowledged while the upstream is down
        if crash:
            relay.send_signal(signal.SIGKILL)
            relay.communicate(timeout=30)
            relay, relay_port = start_serve(relay_db, *forward)
        upstream, _ = start_serve(up_db, "--grpc-port", str(up_port))
        send(relay_port, REQUESTS[half:])
        truth = Truth(*GRPC_FIXTURES)
        deadline = time.monotonic() + 90
        n = 0
        while (n := stored_events(up_db, tmp_path / f"poll-{n}")) != len(truth.events):
            assert time.monotonic() < deadline, f"upstream holds {n} of {len(truth.events)}"
            time.sleep(0.3)
        relay_out, _ = stop(relay)
        relay = None
        up_out, _ = stop(upstream)
        upstream = None
    finally:
        for proc in (relay, upstream):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    expected = {
        "events": len(truth.events),
        "cost": round(truth.cost(), 9),
        "spans": len(truth.spans),
        "points": truth.data_points,
        "duplicates": 0,
    }
    assert totals(relay_db) == expected
    assert totals(up_db) == expected
    deliveries = int(re.search(r"stopped after \d+s; (\d+) exports", up_out)[1])
    if crash:
        assert deliveries >= len(REQUESTS)  # at least once (a crash may resend a few)
    else:
        assert deliveries == len(REQUESTS)  # exactly once
        assert f"{len(REQUESTS)} delivered" in relay_out
    assert "up to date" in relay_out
    assert not list(Path(f"{relay_db}.journal").glob("*.ctj"))
