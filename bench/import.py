"""Importing Claude Code's transcripts: a first import of a large history, a rescan of an
unchanged tree, a grown file, and how soon a line written to a followed file is indexed.

The history is generated from the fixtures' real transcript lines (all four runs), each copy
with fresh ids (sessions, requests, messages, tool calls, prompts, line uuids) and its times
moved on, so nothing dedupes: every second copy writes its assistant messages one content
block a line (a thinking block first, same message id, request id and usage), every fifth
moves a tool call into `<session>/subagents/agent-*.jsonl`. Kept in `--dir` (made once,
reused while its size matches).

1. `claude-top import DIR` on a new database, as a process: wall time and its peak RSS (from
   wait4), files, requests (checked against what the copies hold).
2. The same command again on the unchanged tree (a whole process: start, scan, exit).
3. In one process: loading the files' read states, then a rescan of the unchanged tree.
4. A grown file: lines appended to one transcript; the rescan reads only those.
5. Following: `TranscriptTail` on the tree; a new assistant line appended to a file, time until
   it is in the database (notifications; `--poll` for the polling fallback), `--follow` times.

    python bench/import.py [--size-mb 1024] [--dir /tmp/claude-top-bench-transcripts]
                           [--follow 20] [--poll]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from claude_top.core.store.database import Store
from claude_top.core.store.importer import TranscriptImporter
from claude_top.core.store.tail import TranscriptTail

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "claude-code-2.1.328"
SETS = (
    "transcripts/basic/projects",
    "transcripts/errors/projects",
    "transcripts/continued/projects",
    "statusline/limits/projects",
)
ID = re.compile(
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rb"|req_[0-9a-f]{24}|msg_[0-9a-f]{20}|toolu_[0-9a-f]{20}"
)
TIME = re.compile(rb'"timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z"')
PROJECTS = 40
SUBAGENT = "agent-b3nch0000000.jsonl"


def _dumps(d: dict) -> bytes:
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()


def templates() -> list[tuple[bytes, bytes | None, int]]:
    """(main file, subagent file or None, unique requests) of each variant of each run."""
    out = []
    for folder in SETS:
        for path in sorted((FIXTURES / folder).rglob("*.jsonl")):
            lines = path.read_bytes().splitlines()
            docs = [json.loads(x) for x in lines]
            requests = len({d["requestId"] for d in docs if d.get("type") == "assistant"})
            out.append((b"\n".join(lines) + b"\n", None, requests))
            multi = []
            for line, d in zip(lines, docs, strict=True):
                if d.get("type") == "assistant":
                    extra = json.loads(line)
                    extra["message"]["content"] = [{"type": "thinking", "thinking": ""}]
                    extra["uuid"] = extra["uuid"][:-4] + "b000"
                    multi.append(_dumps(extra))
                multi.append(line)
            out.append((b"\n".join(multi) + b"\n", None, requests))
            main, sub, moving = [], [], None
            for line, d in zip(lines, docs, strict=True):
                content = (d.get("message") or {}).get("content")
                blocks = content if isinstance(content, list) else []
                uses = [b["id"] for b in blocks if b.get("type") == "tool_use"]
                results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
                if moving is None and d.get("type") == "assistant" and uses:
                    moving = uses[0]
                elif not (moving and moving in results):
                    main.append(line)
                    continue
                d = dict(d, isSidechain=True, agentId="b3nch0000000")
                sub.append(_dumps(d))
            out.append((b"\n".join(main) + b"\n", b"\n".join(sub) + b"\n", requests))
    return out


def _fresh(old: bytes, copy: int) -> bytes:
    h = hashlib.blake2b(old + copy.to_bytes(4, "little"), digest_size=16).hexdigest()
    if old.startswith(b"req_"):
        return b"req_" + h[:24].encode()
    if old.startswith(b"msg_"):
        return b"msg_" + h[:20].encode()
    if old.startswith(b"toolu_"):
        return b"toolu_" + h[:20].encode()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}".encode()


def rewrite(data: bytes, copy: int, ids: dict[bytes, bytes]) -> bytes:
    shift = timedelta(minutes=7 * copy)
    data = ID.sub(lambda m: ids.setdefault(m.group(), _fresh(m.group(), copy)), data)

    def moved(m: re.Match) -> bytes:
        t = datetime.fromisoformat(m.group(1).decode()) - timedelta(days=400) + shift
        return b'"timestamp":"' + t.isoformat(timespec="milliseconds").encode() + b'Z"'

    return TIME.sub(moved, data)


def generate(root: Path, size: int) -> tuple[int, int]:
    """Copies of the templates under `root` until `size` bytes; (files, requests)."""
    marker = root / ".complete.json"
    if marker.exists():
        done = json.loads(marker.read_text())
        if done["size"] == size:
            return done["files"], done["requests"]
    if root.exists():
        subprocess.run(["rm", "-rf", str(root)], check=True)
    root.mkdir(parents=True)
    tpl = templates()
    written = files = requests = copy = 0
    started = time.monotonic()
    while written < size:
        main, sub, n = tpl[copy % len(tpl)]
        ids: dict[bytes, bytes] = {}
        data = rewrite(main, copy, ids)
        session = ID.search(data[data.index(b'"sessionId":"') :]).group().decode()
        folder = root / f"-home-u-bench-project-{copy % PROJECTS}"
        folder.mkdir(exist_ok=True)
        (folder / f"{session}.jsonl").write_bytes(data)
        written += len(data)
        files += 1
        if sub is not None:
            subfile = folder / session / "subagents" / SUBAGENT
            subfile.parent.mkdir(parents=True)
            extra = rewrite(sub, copy, ids)
            subfile.write_bytes(extra)
            written += len(extra)
            files += 1
        requests += n
        copy += 1
    marker.write_text(json.dumps({"size": size, "files": files, "requests": requests}))
    print(f"generated {files} files, {written / 1e6:.0f} MB in {time.monotonic() - started:.1f}s")
    return files, requests


def run_command(*args: str) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MB, stdout) of `claude-top ARGS` as a process."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_top.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CLAUDE_TOP_TRANSCRIPTS": "off"},
    )
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"claude-top {' '.join(args)} failed ({proc.returncode}):\n{out}")
    return time.monotonic() - started, usage.ru_maxrss // 1024, out


def count(store: Store, sql: str, params=()) -> int:
    with store.reading() as cur:
        return cur.execute(sql, params).fetchone()[0]


def follow(store: Store, root: Path, n: int, poll: bool) -> list[float]:
    """Seconds from a line written to it being in the database, `n` times."""
    tail = TranscriptTail(store, [root], notify=not poll, poll_s=1.0).start()
    while tail.first is None:
        time.sleep(0.05)
    files = sorted(root.rglob("*.jsonl"))
    line = next(x for x in files[0].read_bytes().splitlines() if b'"type":"assistant"' in x)
    out = []
    try:
        for i in range(n):
            rid = f"req_follow{i:014d}{time.time_ns() % 10**6:06d}"[:28]
            doc = json.loads(line)
            doc["requestId"] = rid
            doc["message"]["id"] = "msg_" + rid[4:24]
            target = files[(i * 7919) % len(files)]
            started = time.monotonic()
            with open(target, "ab") as fh:
                fh.write(_dumps(doc) + b"\n")
            while not count(
                store, "SELECT count(*) FROM transcript_requests WHERE request_key = ?", [rid]
            ):
                time.sleep(0.005)
                if time.monotonic() - started > 30:
                    raise SystemExit(f"line {i} never indexed")
            out.append(time.monotonic() - started)
            time.sleep(0.3)
    finally:
        tail.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument(
        "--dir", default=str(Path(tempfile.gettempdir()) / "claude-top-bench-transcripts")
    )
    ap.add_argument("--follow", type=int, default=20)
    ap.add_argument("--poll", action="store_true", help="follow by polling, not notifications")
    args = ap.parse_args()
    root = Path(args.dir)
    files, requests = generate(root / "projects", args.size_mb << 20)
    size = sum(p.stat().st_size for p in (root / "projects").rglob("*.jsonl"))
    print(f"history: {files} files, {size / 1e6:.0f} MB, {requests} API requests")
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.duckdb")
        wall, rss, out = run_command("import", "--db", db, str(root / "projects"))
        print(out.rstrip())
        print(
            f"1. first import: {wall:.1f}s wall ({size / 1e6 / wall:.0f} MB/s), peak RSS {rss} MB"
        )
        store = Store.open(db)
        stored = count(store, "SELECT count(*) FROM transcript_requests")
        rows = count(store, "SELECT count(*) FROM events WHERE kind = 'api_request'")
        store.close()
        assert stored == rows == requests, (stored, rows, requests)
        wall, rss, _ = run_command("import", "--db", db, str(root / "projects"))
        print(f"2. the command again on the unchanged tree: {wall:.2f}s wall, peak RSS {rss} MB")
        store = Store.open(db)
        importer = TranscriptImporter(store)
        started = time.monotonic()
        importer.states()
        loaded = time.monotonic() - started
        scans = []
        for _ in range(5):
            started = time.monotonic()
            report = importer.run([root / "projects"])
            scans.append(time.monotonic() - started)
            assert report.files_read == 0
        print(
            f"3. in one process: read states loaded in {loaded:.2f}s; rescan of the unchanged "
            f"tree ({report.files} files) {min(scans):.3f}-{max(scans):.3f}s over 5"
        )
        sizes = {p: p.stat().st_size for p in (root / "projects").rglob("*.jsonl")}
        target = sorted(sizes)[0]
        before = sizes[target]
        tail = target.read_bytes().splitlines(keepends=True)[-10:]
        grown = b"".join(ID.sub(lambda m: _fresh(m.group(), 999_999), x) for x in tail)
        with open(target, "ab") as fh:
            fh.write(grown)
        started = time.monotonic()
        report = importer.run([root / "projects"])
        print(
            f"4. a grown file: {report.files_read} file read, {report.bytes} bytes "
            f"({len(grown)} appended to {before}), {time.monotonic() - started:.3f}s"
        )
        if args.follow:
            lat = follow(store, root / "projects", args.follow, args.poll)
            how = "polling" if args.poll else "notifications"
            print(
                f"5. following ({how}): a written line indexed in p50 "
                f"{statistics.median(lat) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms "
                f"over {len(lat)}"
            )
        store.close()
        for path, n in sizes.items():  # the generated history as it was, for the next run
            if path.stat().st_size != n:
                os.truncate(path, n)


if __name__ == "__main__":
    main()
