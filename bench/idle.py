"""Idle cost of the UI: CPU with no traffic, and memory with 1M spans on screen.

Runs the real `claude-top --db PATH` (receivers + UI) in a pseudo-terminal of 120x40, drains
what it draws, and reads its process tree's CPU time and memory from /proc.

1. No traffic, empty database: CPU of the process tree over `--seconds` (the connect screen).
2. No traffic, the 1M-span / 1M-event database of bench/queries.py (built if missing, copied so
   the original stays untouched), time window "all" (`t` pressed twice from 24h): CPU over
   `--seconds`, then RSS of the main process and of the decode workers. The decode workers are
   spawned at the first indexed export, so one small export (512 spans over gRPC) is sent at the
   end and RSS sampled each second for 75 s after it (printed as a timeline, and its maximum).
3. With `--hold MINUTES`: the UI stays open that many minutes more, RSS printed each minute.

RSS is sampled each second while the CPU is measured: the median and the maximum are printed,
and at the end its split into anonymous memory (private: Python, DuckDB's buffers, malloc) and
pages of mapped files (the shared libraries' code, shared and reclaimable), with the libraries
that map the most. `bench/memory.py` attributes the anonymous part inside one process.

    python bench/idle.py [--seconds 60] [--db /tmp/claude-top-bench-1m.duckdb] [--size 120x40]
                         [--hold MINUTES]
"""

from __future__ import annotations

import argparse
import collections
import fcntl
import os
import pty
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import TRACE_METHOD, free_port, make_batches, tree, wait_listening

TICKS = os.sysconf("SC_CLK_TCK")
AFTER_EXPORT_S = 75
"""How long RSS is sampled (each second) after the export: past the idle checkpoint and the
decode workers' exit a minute after their last work."""
TIMELINE_S = (1, 5, 10, 15, 20, 30, 45, 60, 75)


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


def rollup_kb(pid: int) -> dict[str, int]:
    """/proc/PID/smaps_rollup as {field: kB}."""
    out: dict[str, int] = {}
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        key, value = line.split()[:2]
        out[key.rstrip(":")] = int(value)
    return out


def mapped_files_kb(pid: int, top: int = 3) -> list[tuple[str, int]]:
    """The files with the most resident pages mapped by `pid` (kB), biggest first."""
    per_file: collections.Counter[str] = collections.Counter()
    name = ""
    try:
        with open(f"/proc/{pid}/smaps") as fh:
            for line in fh:
                first = line.split(maxsplit=6)
                if not first[0].endswith(":"):  # a mapping's header line
                    name = first[5].strip() if len(first) > 5 else ""
                elif first[0] == "Rss:" and name.startswith("/"):
                    per_file[os.path.basename(name)] += int(first[1])
    except OSError:
        return []
    return per_file.most_common(top)


class Memory:
    """RSS samples of one process, and how its memory splits at the end."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self.anon = 0
        self.file_backed = 0
        self.files: list[tuple[str, int]] = []
        self.hwm = 0
        self.threads = 0

    def sample(self, pid: int) -> None:
        self.samples.append(status_kb(pid, "VmRSS"))

    def finish(self, pid: int) -> None:
        rollup = rollup_kb(pid)
        self.anon = rollup.get("Anonymous", 0)
        self.file_backed = max(0, rollup.get("Rss", 0) - self.anon)
        self.files = mapped_files_kb(pid)
        self.hwm = status_kb(pid, "VmHWM")
        self.threads = status_kb(pid, "Threads")

    @property
    def median(self) -> int:
        return int(statistics.median(self.samples)) if self.samples else 0

    def describe(self) -> str:
        libs = ", ".join(f"{_short(n)} {mb(kb)}" for n, kb in self.files)
        return (
            f"RSS median {mb(self.median)}, max {mb(max(self.samples, default=0))} (peak "
            f"{mb(self.hwm)}); at the end anonymous {mb(self.anon)} + mapped files "
            f"{mb(self.file_backed)} ({libs}); {self.threads} threads"
        )


def _short(filename: str) -> str:
    return filename.split(".cpython")[0].split(".so")[0]


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
             "--grpc-port", str(self.grpc_port), "--http-port", str(free_port()),
             "--no-transcripts"],  # this machine's own history would change the figures
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

    def measure(self, seconds: float) -> tuple[float, float, Memory]:
        """CPU % of one core used by the process tree over `seconds`, bytes drawn per s, and
        the main process's memory (RSS sampled each second)."""
        pids0 = self.pids()
        before = {p: cpu_s(p) for p in pids0}
        out0 = self.bytes_out
        memory = Memory()
        t = time.monotonic()
        while (left := t + seconds - time.monotonic()) > 0:
            time.sleep(min(1.0, left))
            memory.sample(self.proc.pid)
        elapsed = time.monotonic() - t
        used = sum(cpu_s(p) - before.get(p, 0.0) for p in self.pids())
        memory.finish(self.proc.pid)
        return 100 * used / elapsed, (self.bytes_out - out0) / elapsed, memory

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
    ap.add_argument("--hold", type=int, default=0, metavar="MINUTES",
                    help="keep the UI open this long after the export")  # fmt: skip
    args = ap.parse_args()
    cols, rows = (int(x) for x in args.size.split("x"))
    print(f"machine              {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        ui = UI(os.path.join(tmp, "empty.duckdb"), cols, rows)
        try:
            time.sleep(args.settle)
            cpu, drawn, memory = ui.measure(args.seconds)
        finally:
            ui.stop()
        print(f"empty database       CPU {cpu:.2f} % of one core over {args.seconds:.0f} s "
              f"(process tree), {drawn:,.0f} bytes/s drawn")  # fmt: skip
        print(f"  {memory.describe()}")

        if not os.path.exists(args.db):
            from claude_top.core.store.database import Store
            from queries import build

            store = Store.open(args.db)
            build(store, args.rows, time.time_ns())
            store.close()
        db = os.path.join(tmp, "1m.duckdb")
        shutil.copy(args.db, db)
        ui = UI(db, cols, rows)
        try:
            time.sleep(2)
            ui.press("tt")  # 24h -> 7d -> all
            time.sleep(args.settle)
            cpu, drawn, memory = ui.measure(args.seconds)
            before = ui.workers()
            print(f"1M spans + 1M events, window all: CPU {cpu:.2f} % of one core over "
                  f"{args.seconds:.0f} s, {drawn:,.0f} bytes/s drawn")  # fmt: skip
            print(f"  main process       {memory.describe()}")
            print(f"  decode workers     {len(before) or 'none'} spawned while idle")
            send_one(ui.grpc_port)
            t0 = time.monotonic()
            after = Memory()
            workers: list[int] = []
            for second in range(1, AFTER_EXPORT_S + 1):
                time.sleep(max(0.0, t0 + second - time.monotonic()))
                after.sample(ui.proc.pid)
                workers = [status_kb(p, "VmRSS") for p in ui.workers()] or workers
            after.finish(ui.proc.pid)
            timeline = ", ".join(f"{s} s {mb(after.samples[s - 1])}" for s in TIMELINE_S)
            print(f"  after one export   main RSS {timeline}; max {mb(max(after.samples))}")
            print(f"                     at {AFTER_EXPORT_S} s {after.describe()}")
            shown = ", ".join(f"RSS {mb(kb)}" for kb in workers) or "none"
            print(f"  decode workers     {shown} (while they lived)")
            for minute in range(2, args.hold + 2):  # the timeline covered the first
                time.sleep(max(0.0, t0 + 60 * minute - time.monotonic()))
                rss, anon = status_kb(ui.proc.pid, "VmRSS"), rollup_kb(ui.proc.pid)["Anonymous"]
                workers = [status_kb(p, "VmRSS") for p in ui.workers()]
                print(f"  {minute:3d} min after it  RSS {mb(rss)}, anon {mb(anon)}; decode workers "
                      f"{len(workers) or 'none'} ({mb(sum(workers))})", flush=True)  # fmt: skip
        finally:
            ui.stop()


if __name__ == "__main__":
    main()
