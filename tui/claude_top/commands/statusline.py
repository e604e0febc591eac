"""`claude-top statusline`: the command Claude Code's `statusLine` runs after each update.

It reads the sample Claude Code pipes in, hands it to the running claude-top over loopback
(`POST /claude-top/v1/statusline` on its OTLP/HTTP port) and prints one short line, for example
`5h 61% ↻3h12m · 7d 38% · $0.04 · ctx 1%`. Standard library only, and within BUDGET_S of
starting: Claude Code never waits on it for long, and it never fails the status line (whatever
happens it prints a line and exits 0).

- No claude-top answering (or answering too slowly): the sample is appended to the spool file of
  that port (`core.sources.statusline.spool`) with the time it arrived; the next claude-top
  listening there takes it in.
- A token: `--token`, else $CLAUDE_TOP_TOKEN, else (when claude-top answers 401 or speaks TLS)
  what its instance file beside the default database says.
- `--chain CMD` (what `claude-top setup --write` installs when a status line was already set):
  CMD runs with the same input, in parallel, and its output is printed first. If it takes longer
  than the budget, its output of the previous update is shown instead (kept per session), and it
  finishes in the background for the next one.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import sys
import time
from pathlib import Path

API_PREFIX = "/claude-top/v1"
"""`core.instance.API_PREFIX` (not imported: it pulls urllib and ssl in, 20 ms)."""
BUDGET_S = 0.28
"""From the process's start to the printed line (when the start cannot be read: from here)."""
CHAIN_KILL_AFTER_S = 60.0
"""A chained command still running this long after it started is stopped."""
DEFAULT_PORT = 4318
STDIN_MAX = 1 << 20
NEAR, HIGH = 80.0, 95.0


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds - _age_s()

    def left(self, floor: float = 0.0) -> float:
        return max(floor, self.at - time.monotonic())


def _age_s() -> float:
    """How long this process has run: interpreter start-up and imports (0 where unknown, or
    past a second: then this is not a fresh `claude-top statusline` but a caller in-process)."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            started = int(fh.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/uptime", "rb") as fh:
            uptime = float(fh.read().split()[0])
        age = uptime - started / os.sysconf("SC_CLK_TCK")
        return age if 0 <= age < 1 else 0.0
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def read_stdin(stream, deadline: _Deadline) -> bytes:
    """Everything on stdin until EOF (Claude Code closes it), or what came before the budget."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a file (tests): read it whole
        return stream.read(STDIN_MAX)
    chunks: list[bytes] = []
    size = 0
    while size < STDIN_MAX:
        try:
            ready, _, _ = select.select([fd], [], [], deadline.left(0.01))
        except (OSError, ValueError):  # not selectable (Windows): read it whole
            return stream.read(STDIN_MAX)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


# --- the line ----------------------------------------------------------------------------------


def _countdown(seconds: float) -> str:
    s = max(0, int(seconds))
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m" if s >= 60 else f"{s}s"


def _pct(value: float) -> str:
    return f"{value:.0f}%"


def _colour(text: str, pct: float, colour: bool) -> str:
    if not colour or pct < NEAR:
        return text
    return f"\x1b[{31 if pct >= HIGH else 33}m{text}\x1b[0m"


def compose_line(data: bytes, now_s: float, colour: bool = False, note: str = "") -> str:
    """One short line from the sample itself: the windows' percentages and resets, the
    session's cost, its context window (any part that is missing or invalid is left out)."""
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return "claude-top" + (f" · {note}" if note else "")
    parts: list[str] = []
    limits = doc.get("rate_limits")
    for key, label in (("five_hour", "5h"), ("seven_day", "7d")):
        w = limits.get(key) if isinstance(limits, dict) else None
        if not isinstance(w, dict):
            continue
        pct, resets = w.get("used_percentage"), w.get("resets_at")
        if not _is_number(pct) or not 0 <= pct <= 100:
            continue
        text = f"{label} {_pct(pct)}"
        if _is_number(resets) and resets > now_s and key == "five_hour":
            text += f" ↻{_countdown(resets - now_s)}"
        parts.append(_colour(text, pct, colour))
    cost = doc.get("cost")
    total = cost.get("total_cost_usd") if isinstance(cost, dict) else None
    if _is_number(total) and total >= 0:
        parts.append(f"${total:.2f}")
    ctx = doc.get("context_window")
    used = ctx.get("used_percentage") if isinstance(ctx, dict) else None
    if _is_number(used) and 0 <= used <= 100:
        parts.append(_colour(f"ctx {_pct(used)}", used, colour))
    if note:
        parts.append(note)
    return " · ".join(parts) or "claude-top"


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x == x


# --- handing it over ---------------------------------------------------------------------------


class _Target:
    """Where the running claude-top listens: host, port, scheme, token, certificate."""

    def __init__(self, host: str, port: int, token: str | None) -> None:
        self.host, self.port, self.token = host, port, token
        self.tls_cert: str | None = None
        self.https = False

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def from_instance(self) -> bool:
        """Take the scheme, token and certificate from the instance file of the default
        database when it is this port's; False when there is none."""
        try:
            found = _default_instance()
        except Exception:
            return False
        if found is None or not found.http.rstrip("/").endswith(f":{self.port}"):
            return False
        self.https = found.http.startswith("https:")
        self.tls_cert = found.tls_cert
        self.token = found.token
        return True


def _default_instance():
    """The instance file beside the default database (None: absent, or its process gone)."""
    import platformdirs

    from claude_top.core.instance import read_instance

    db = Path(platformdirs.user_data_dir("claude-top", appauthor=False)) / "claude-top.duckdb"
    return read_instance(str(db))


def post(target: _Target, body: bytes, timeout: float) -> int:
    """POST the envelopes; the HTTP status. Raises OSError (ConnectionRefusedError when
    nothing listens, TimeoutError when it is too slow)."""
    headers = [
        f"POST {API_PREFIX}/statusline HTTP/1.1",
        f"Host: {target.host_header}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if target.token:
        headers.append(f"Authorization: Bearer {target.token}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
    deadline = time.monotonic() + timeout
    with socket.create_connection((target.host, target.port), timeout=timeout) as sock:
        if target.https:
            import ssl

            ctx = ssl.create_default_context(cafile=target.tls_cert)
            ctx.check_hostname = False
            sock = ctx.wrap_socket(sock)
        sock.sendall(request)
        reply = b""
        while b"\r\n" not in reply:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    words = reply.split(b"\r\n", 1)[0].split()
    if len(words) < 2 or not words[0].startswith(b"HTTP/") or not words[1].isdigit():
        raise OSError("not an HTTP answer")
    return int(words[1])


def hand_over(
    target: _Target, data: bytes, received_ns: int, deadline: _Deadline
) -> tuple[str, bool]:
    """Send one sample: ("", False) once claude-top has stored it (or counted it as invalid),
    else a short note on why not and whether to spool it (not when claude-top refused it)."""
    text = data.decode("utf-8", "replace")
    body = json.dumps({"samples": [{"received_ns": received_ns, "text": text}]}).encode()
    note, keep = "claude-top off", True
    for attempt in range(2):
        try:
            status = post(target, body, deadline.left(0.02))
        except ConnectionRefusedError:
            return note, keep
        except TimeoutError:
            status, note = 0, "claude-top slow"
        except OSError:  # reset, or TLS spoken back: its instance file says more
            status, note = 0, "claude-top off"
        if 200 <= status < 300:
            return "", False
        if status in (401, 403):
            note, keep = "claude-top: token?", False
        elif status:
            note, keep = f"claude-top: HTTP {status}", status >= 500
        if attempt or status not in (0, 401) or not target.from_instance():
            return note, keep
    return note, keep


def spool(port: int, data: bytes, received_ns: int) -> bool:
    """Keep the sample for the next claude-top on `port`; False if it could not be written."""
    from claude_top.core.sources.statusline.spool import append_spool, spool_path

    try:
        item = {"received_ns": received_ns, "text": data.decode("utf-8", "replace")}
        append_spool(spool_path(port), item)
    except OSError:
        return False
    return True


# --- the chained command -----------------------------------------------------------------------


def _chain_dir() -> Path:
    """Where chained commands' outputs are kept: this user's runtime directory."""
    import tempfile

    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        path = Path(runtime) / "claude-top"
    else:
        uid = os.getuid() if hasattr(os, "getuid") else 0
        path = Path(tempfile.gettempdir()) / f"claude-top-{uid}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


_WRAP = 'sh -c "$1" > "$2" 2>/dev/null; mv -f "$2" "$3"'
"""Runs the chained command with its output in a file, renamed when it is complete: a later
shim tells a finished run by the name alone (no process to look for, none to reap)."""


class Chain:
    """The previous status-line command, run with the same input beside the hand-over."""

    def __init__(self, command: str, data: bytes) -> None:
        import hashlib
        import subprocess

        session = ""
        with contextlib.suppress(ValueError, AttributeError):
            session = str(json.loads(data).get("session_id") or "")
        self.key = hashlib.sha256(f"{command}\0{session}".encode()).hexdigest()[:16]
        self.dir = _chain_dir()
        self.cache = self.dir / f"chain-{self.key}.out"
        self._collect_finished()
        stem = f"chain-{self.key}.{os.getpid()}-{time.time_ns()}"
        self.tmp, self.done = self.dir / f"{stem}.tmp", self.dir / f"{stem}.done"
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", _WRAP, "claude-top-chain", command, str(self.tmp), str(self.done)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.mark = self.dir / f"{stem}.pid"  # its process group, to stop it if it is stuck
        with contextlib.suppress(OSError):
            self.mark.write_text(str(self.proc.pid))
        with contextlib.suppress(OSError):  # a command that does not read its input
            self.proc.stdin.write(data)
            self.proc.stdin.close()

    def _collect_finished(self) -> None:
        """Outputs of earlier runs that finished after their shim gave up: the newest becomes
        the cached output. A run still going after CHAIN_KILL_AFTER_S is stopped."""
        now = time.time()
        for mark in self.dir.glob(f"chain-{self.key}.*.pid"):
            stem = mark.name.removesuffix(".pid")
            if (self.dir / f"{stem}.done").exists():
                _unlink(mark)
            elif now - _mtime(mark) > CHAIN_KILL_AFTER_S:
                with contextlib.suppress(OSError, ValueError):
                    os.killpg(int(mark.read_text()), 9)
                _unlink(mark)
                _unlink(self.dir / f"{stem}.tmp")
        done = sorted(self.dir.glob(f"chain-{self.key}.*.done"), key=_mtime)
        if done:
            with contextlib.suppress(OSError):
                os.replace(done[-1], self.cache)
            for old in done[:-1]:
                _unlink(old)

    def output(self, deadline: _Deadline) -> str:
        """What it printed, if it finished within the budget; else what it printed last time."""
        import subprocess

        try:
            self.proc.wait(timeout=deadline.left())
        except subprocess.TimeoutExpired:
            try:
                return self.cache.read_text(errors="replace")
            except OSError:
                return ""
        _unlink(self.mark)
        try:
            text = self.done.read_text(errors="replace")
        except OSError:
            return ""
        with contextlib.suppress(OSError):
            os.replace(self.done, self.cache)
        return text


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# --- the command -------------------------------------------------------------------------------


def run_statusline(args, stdin=None, stdout=None, clock=time.time_ns) -> int:
    """Hand the sample over and print the line; always exits 0."""
    deadline = _Deadline(args.budget_ms / 1000 if args.budget_ms else BUDGET_S)
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout
    line = "claude-top"
    prefix = ""
    try:
        data = read_stdin(stdin, deadline)
        received_ns = clock()
        chain = None
        if args.chain:
            try:
                chain = Chain(args.chain, data)
            except OSError:
                chain = None
        port = args.http_port or DEFAULT_PORT
        token = args.token or os.environ.get("CLAUDE_TOP_TOKEN") or None
        note, keep = hand_over(_Target(args.host, port, token), data, received_ns, deadline)
        if keep and not spool(port, data, received_ns):
            note += " (sample lost)"
        colour = not os.environ.get("NO_COLOR")
        line = compose_line(data, clock() / 1e9, colour, note)
        if chain is not None:
            prefix = chain.output(deadline).rstrip("\n")
    except Exception:  # never fail the status line
        if os.environ.get("CLAUDE_TOP_DEBUG"):
            import traceback

            traceback.print_exc()
    with contextlib.suppress(Exception):
        stdout.write((prefix + "\n" if prefix else "") + line + "\n")
        stdout.flush()
    return 0
