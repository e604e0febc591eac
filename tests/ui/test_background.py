"""`run_app(..., background=)`: a coroutine beside the UI once the receivers listen (the demo)."""

from __future__ import annotations

import asyncio

from uihelpers import make_app, settle

from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
from claude_top.demo.sender import DemoSender
from claude_top.receiver.server import ReceiverConfig, Receivers


def _receivers(store: Store) -> tuple[StoreWriter, Receivers]:
    writer = StoreWriter(store, decode_in_worker=False)
    return writer, Receivers(writer, ReceiverConfig(grpc_port=0, http_port=0))


async def test_runs_once_the_receivers_listen_and_is_cancelled_before_they_stop(ui_store):
    writer, rx = _receivers(ui_store)
    log: list = []
    start, stop = rx.start, rx.stop

    async def logged_start() -> None:
        await start()
        log.append(("receivers started", rx.grpc_port))

    async def logged_stop(grace: float = 1.0) -> None:
        log.append("receivers stopping")
        await stop(grace)

    rx.start, rx.stop = logged_start, logged_stop

    async def background(receivers) -> None:
        log.append(("background", receivers.grpc_port))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.append("background cancelled")
            raise

    app = make_app(ui_store, writer=writer, receivers=rx, background=background)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        port = rx.grpc_port
        assert port
        assert log == [("receivers started", port), ("background", port)]
        assert not app._background_task.done()
        await pilot.press("q")
    assert log[2:] == ["background cancelled", "receivers stopping"]
    assert app._background_task.cancelled()
    assert app.background_error is None
    assert app.return_code == 0


async def test_a_failing_background_task_is_reported_and_the_ui_keeps_running(ui_store):
    async def background(receivers) -> None:
        assert receivers is None
        raise RuntimeError("sender gave up")

    app = make_app(ui_store, background=background)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.background_error == "RuntimeError: sender gave up"
        assert [(n.severity, n.message) for n in app._notifications] == [
            ("error", "background task stopped: RuntimeError: sender gave up")
        ]
        await pilot.press("t")
        assert app.window == "15m"
        await pilot.press("q")
    assert app.return_code == 0


async def test_the_demo_sender_feeds_the_ui_through_the_receivers(tmp_path):
    path = tmp_path / "ct.duckdb"
    store = Store.open(path)
    writer, rx = _receivers(store)
    senders: list[DemoSender] = []

    def feed(receivers):
        sender = DemoSender(f"127.0.0.1:{receivers.grpc_port}", seed=7, speed=60, history_s=90)
        senders.append(sender)
        return sender.run(tick=0.1, drain=False)

    app = make_app(store, writer=writer, receivers=rx, background=feed)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            table = app.main.table("sessions")
            for _ in range(200):
                ledger = senders[0].ledger.sessions  # acknowledged; it keeps sending
                sent = {sid for sid, s in ledger.items() if s.prompts or s.api_requests}
                if len(sent) >= 4:
                    break
                await pilot.pause(0.05)
            else:
                raise AssertionError("the demo sent fewer than four sessions in 10 s")
            for _ in range(600):
                if sent <= set(table.rows_by_key):
                    break
                await pilot.pause(0.05)
            else:
                missing = sent - set(table.rows_by_key)
                raise AssertionError(f"acknowledged sessions never showed: {sorted(missing)}")
            await pilot.press("q")
        assert app._background_task.cancelled()
    finally:
        store.close()
    # What was acknowledged in the last moments may still be journalled: the next start
    # indexes it. Then every event the sender saw acknowledged is stored (a request cancelled
    # at quit may have been stored without the sender seeing its acknowledgement).
    store = Store.open(path)
    writer = StoreWriter(store, decode_in_worker=False)
    try:
        assert writer.sync(30)
        cur = store.cursor()
        stored = dict(cur.execute("SELECT session_id, count(*) FROM events GROUP BY 1").fetchall())
        cur.close()
        acked = {sid: t.events for sid, t in senders[0].ledger.sessions.items() if t.events}
        assert sent <= set(acked)
        assert {sid: n for sid, n in acked.items() if stored.get(sid, 0) < n} == {}
    finally:
        writer.close()
        store.close()
