"""Idle cost of the UI: CPU with no traffic, and memory with 1M spans on screen.

Runs the real `claude-top --db PATH` (receivers + UI) in a pseudo-terminal of 120x40, drains
what it draws, and reads its process tree's CPU time and memory from /proc.

1. No traffic, empty database: CPU of the process tree over `--seconds` (the connect screen).
2. No traffic, the 1M-span / 1M-event database of bench/queries.py (built if missing, copied so
   the original stays untouched), time window `--window` ("all": `t` pressed twice from 24h;
   the rows span the 7 days before the database was built): CPU over `--seconds`, then RSS of
   the main process and of the decode workers. The decode workers are spawned at the first
   indexed export, so one small export (512 spans over gRPC) is sent at the end and RSS
   measured again.

    python bench/idle.py [--seconds 60] [--db /tmp/claude-top-bench-1m.duckdb] [--size 120x40]
                         [--window all]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from claude_top.core.queries import WINDOWS
from claude_top.ui.app import DEFAULT_WINDOW
from ingest import TRACE_METHOD, free_port, make_batches, tree, wait_listening

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class UI:
    """`claude-top --db PATH` in a pseudo-terminal whose output is drained and counted."""

    def __init__(self, db: str, cols: int, rows: int) -> None:
        self.grpc_port = free_port()
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "claude_top.cli", "--db", db,
             "--grpc-port", str(self.grpc_port), "--http-port", str(free_port())],
            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self.master = master
        self.bytes_out = 0
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        wait_listening(self.grpc_port, self.proc)

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.bytes_out += len(chunk)

    def press(self, keys: str) -> None:
        for k in keys:
            os.write(self.master, k.encode())
            time.sleep(0.3)

    def pids(self) -> list[int]:
        return tree(self.proc.pid)

    def workers(self) -> list[int]:
        return [p for p in self.pids()[1:] if "spawn_main" in cmdline(p)]

    def measure_cpu(self, seconds: float) -> tuple[float, float]:
        """CPU % of one core used by the process tree over `seconds`, and bytes drawn per s."""
        pids0 = self.pids()
        before = {p: cpu_s(p) for p in pids0}
        out0 = self.bytes_out
        t = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t
        used = sum(cpu_s(p) - before.get(p, 0.0) for p in self.pids())
        return 100 * used / elapsed, (self.bytes_out - out0) / elapsed

    def stop(self) -> None:
        self.press("q")
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        os.close(self.master)


def send_one(port: int) -> None:
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        channel.unary_unary(TRACE_METHOD)(make_batches(512, 512)[0], timeout=30)


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to measure CPU")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after start-up first")
    ap.add_argument("--db", default="/tmp/claude-top-bench-1m.duckdb", help="1M-row bench DB")
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows if the DB must be built")
    ap.add_argument("--size", default="120x40", help="terminal size, COLSxROWS")
    ap.add_argument("--window", default="all", choices=WINDOWS, help="time window shown")
    args = ap.parse_args()
    cols, rows = (int(x) for x in args.size.split("x"))
    print(f"machine              {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        ui = UI(os.path.join(tmp, "empty.duckdb"), cols, rows)
        try:
            time.sleep(args.settle)
            cpu, drawn = ui.measure_cpu(args.seconds)
            rss = status_kb(ui.proc.pid, "VmRSS")
        finally:
            ui.stop()
        print(f"empty database       CPU {cpu:.2f} % of one core over {args.seconds:.0f} s "
              f"(process tree), RSS {mb(rss)}, {drawn:,.0f} bytes/s drawn")  # fmt: skip

        if not os.path.exists(args.db):
            from claude_top.core.store import Store
            from queries import build

            store = Store.open(args.db)
            build(store, args.rows, time.time_ns())
            store.close()
        db = os.path.join(tmp, "1m.duckdb")
        shutil.copy(args.db, db)
        ui = UI(db, cols, rows)
        try:
            time.sleep(2)
            presses = (WINDOWS.index(args.window) - WINDOWS.index(DEFAULT_WINDOW)) % len(WINDOWS)
            ui.press("t" * presses)
            time.sleep(args.settle)
            cpu, drawn = ui.measure_cpu(args.seconds)
            main_rss = status_kb(ui.proc.pid, "VmRSS")
            main_hwm = status_kb(ui.proc.pid, "VmHWM")
            before = ui.workers()
            send_one(ui.grpc_port)
            time.sleep(5)
            after_rss = status_kb(ui.proc.pid, "VmRSS")
            workers = [(p, status_kb(p, "VmRSS")) for p in ui.workers()]
        finally:
            ui.stop()
        print(f"1M spans + 1M events, window {args.window}: CPU {cpu:.2f} % of one core over "
              f"{args.seconds:.0f} s, {drawn:,.0f} bytes/s drawn")  # fmt: skip
        print(f"  RSS main process   {mb(main_rss)} (peak {mb(main_hwm)}); decode workers: "
              f"{len(before) or 'none'} spawned while idle")  # fmt: skip
        print(
            f"  after one export   main {mb(after_rss)}; decode workers "
            + (", ".join(mb(kb) for _, kb in workers) or "none")
        )


if __name__ == "__main__":
    main()
