"""The relay: every acknowledged export also goes upstream, to the team's OpenTelemetry Collector.

Delivery runs from the ingest journal in a thread of its own: the body of each journalled
export (already validated, and redacted with `--redact`) is sent unchanged, in journal order,
over OTLP/gRPC or OTLP/HTTP protobuf. The last seq delivered is kept in `<db>.forward.json`
(written atomically, fsync'd), and the journal holds every record after it (`Journal.hold`),
so an upstream that is down, a crash or a restart loses nothing: at least once, exactly once
while nothing crashes. Retries back off, honouring the upstream's RetryInfo (gRPC) and
Retry-After (HTTP). A permanent rejection (an HTTP 4xx other than 408/429; a gRPC code the OTLP
spec does not call retryable) is counted and passed over. While the upstream is away, ingest and
the UI carry on; past the journal's bounds (`DEFAULT_MAX_BACKLOG_*`) the oldest undelivered
exports are given up, and counted.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import http.client
import json
import os
import random
import ssl
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from claude_top.core.schema import META_TABLE
from claude_top.core.sources.otlp.signals import SIGNALS
from claude_top.core.store.database import MEMORY, Store
from claude_top.core.store.journal import Entry, Journal, JournalError, read_body
from claude_top.core.store.writer import DEFAULT_MAX_BACKLOG_BYTES, DEFAULT_MAX_BACKLOG_ROWS

PROTOCOLS = ("grpc", "http/protobuf")
COMPRESSIONS = ("none", "gzip")
HEADERS_ENV = "CLAUDE_TOP_FORWARD_HEADERS"
"""Headers for the upstream in OTEL_EXPORTER_OTLP_HEADERS' format (`k=v,k2=v2`, values
percent-encoded), kept out of `ps` unlike `--forward-header`."""
STATE_SUFFIX = ".forward.json"
BATCH = 64
POLL_S = 0.1
SAVE_EVERY_S = 0.2
TIMEOUT_S = 10.0
BACKOFF_S = (0.5, 30.0)
MAX_SERVER_DELAY_S = 300.0
CLOSE_GRACE_S = 3.0

# gRPC codes the OTLP spec calls retryable (RESOURCE_EXHAUSTED only with RetryInfo)
_GRPC_RETRYABLE = {
    "CANCELLED",
    "DEADLINE_EXCEEDED",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNAVAILABLE",
    "DATA_LOSS",
}
_HTTP_RETRYABLE = {408, 429}


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardConfig:
    """Where to relay and how, after the OTel exporter's conventions: `endpoint` is the base
    URL (`http://host:4317` plain, `https://...` TLS; OTLP/HTTP appends `/v1/<signal>`)."""

    endpoint: str
    protocol: str = "grpc"
    headers: tuple[tuple[str, str], ...] = ()
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    compression: str = "none"
    timeout_s: float = TIMEOUT_S
    max_rows: int = DEFAULT_MAX_BACKLOG_ROWS
    max_bytes: int = DEFAULT_MAX_BACKLOG_BYTES

    @property
    def tls(self) -> bool:
        return urlsplit(self.endpoint).scheme == "https"

    @property
    def target(self) -> str:
        """host:port of the upstream (default port 4317 for gRPC, 4318 for HTTP)."""
        u = urlsplit(self.endpoint)
        port = u.port or (4317 if self.protocol == "grpc" else 4318)
        host = u.hostname or ""
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def describe(self) -> str:
        names = ", ".join(k for k, _ in self.headers)
        return (
            f"{self.endpoint} over {self.protocol}"
            + (" (gzip)" if self.compression == "gzip" else "")
            + (f", headers: {names}" if names else "")
        )

    @classmethod
    def parse(
        cls,
        endpoint: str,
        protocol: str = "grpc",
        headers: list[str] | None = None,
        env_headers: str | None = None,
        ca_file: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        compression: str = "none",
    ) -> ForwardConfig:
        """Check the options; raises ValueError saying what is wrong."""
        u = urlsplit(endpoint.strip())
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(
                f"--forward {endpoint!r}: give the collector's URL with its scheme, e.g. "
                "http://collector:4317 (plain) or https://collector:4317 (TLS)"
            )
        try:
            u.port  # noqa: B018 (a bad port raises here)
        except ValueError:
            raise ValueError(f"--forward {endpoint!r}: the port is not a number") from None
        if protocol not in PROTOCOLS:
            raise ValueError(f"--forward-protocol must be one of {', '.join(PROTOCOLS)}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"--forward-compression must be one of {', '.join(COMPRESSIONS)}")
        if protocol == "grpc" and u.path not in ("", "/"):
            raise ValueError(f"--forward {endpoint!r}: an OTLP/gRPC endpoint has no path")
        pairs: list[tuple[str, str]] = []
        for item in (env_headers or "").split(","):
            if item.strip():
                k, sep, v = item.partition("=")
                if not sep or not k.strip():
                    raise ValueError(f"${HEADERS_ENV}: {item!r} is not key=value")
                pairs.append((k.strip().lower(), unquote(v.strip())))
        for item in headers or ():
            k, sep, v = item.partition("=")
            if not sep or not k.strip():
                raise ValueError(f"--forward-header {item!r}: give it as KEY=VALUE")
            pairs.append((k.strip().lower(), v.strip()))
        for k, v in pairs:
            if any(not (0x21 <= ord(c) <= 0x7E) for c in k) or any(
                ord(c) < 0x20 or ord(c) == 0x7F for c in v
            ):
                raise ValueError(f"forward header {k!r}: only printable ASCII is allowed")
        if bool(client_cert) != bool(client_key):
            raise ValueError("--forward-client-cert and --forward-client-key go together")
        for flag, path in (
            ("--forward-ca", ca_file),
            ("--forward-client-cert", client_cert),
            ("--forward-client-key", client_key),
        ):
            if path and not os.access(path, os.R_OK):
                raise ValueError(f"{flag} {path}: cannot read it")
        if (ca_file or client_cert) and u.scheme != "https":
            raise ValueError("--forward-ca and client certificates need an https:// endpoint")
        return cls(
            endpoint=endpoint.strip().rstrip("/"),
            protocol=protocol,
            headers=tuple(pairs),
            ca_file=ca_file,
            client_cert=client_cert,
            client_key=client_key,
            compression=compression,
        )

    @classmethod
    def from_args(cls, args) -> ForwardConfig | None:
        """The relay of `claude-top [serve] --forward ...` options (None without --forward)."""
        endpoint = getattr(args, "forward", None)
        if not endpoint:
            return None
        return cls.parse(
            endpoint,
            protocol=getattr(args, "forward_protocol", None) or "grpc",
            headers=getattr(args, "forward_header", None),
            env_headers=os.environ.get(HEADERS_ENV),
            ca_file=getattr(args, "forward_ca", None),
            client_cert=getattr(args, "forward_client_cert", None),
            client_key=getattr(args, "forward_client_key", None),
            compression=getattr(args, "forward_compression", None) or "none",
        )


# --- sending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the upstream said to one export."""

    kind: str
    """"ok", "retry" (try again later) or "reject" (permanent: never sent again)."""
    error: str = ""
    delay_s: float | None = None
    """How long the upstream asked us to wait (RetryInfo, Retry-After)."""
    rejected_records: int = 0
    """Records the upstream refused in a partial success (the export counts as delivered)."""


def _partial(signal: str, body: bytes) -> tuple[int, str]:
    """(rejected records, message) of an Export*ServiceResponse (0 when unreadable)."""
    sig = SIGNALS[signal]
    try:
        response = sig.response.FromString(body)
    except Exception:
        return 0, ""
    if not response.HasField("partial_success"):
        return 0, ""
    p = response.partial_success
    return int(getattr(p, sig.rejected_field)), p.error_message


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message, for the few fields read here."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            value, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wt == 1:
            value, i = buf[i : i + 8], i + 8
        elif wt == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            return
        yield num, wt, value


RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def retry_info_delay(status_details: bytes) -> float | None:
    """The delay in a google.rpc.Status's RetryInfo detail (`grpc-status-details-bin`)."""
    try:
        for num, wt, detail in _fields(status_details):
            if num != 3 or wt != 2:
                continue
            parts = {n: v for n, w, v in _fields(detail) if w == 2}
            if parts.get(1, b"").decode(errors="replace") != RETRY_INFO:
                continue
            for n, w, duration in _fields(parts.get(2, b"")):
                if n == 1 and w == 2:
                    secs = {k: v for k, t, v in _fields(duration) if t == 0}
                    return secs.get(1, 0) + secs.get(2, 0) / 1e9
    except (IndexError, UnicodeDecodeError):
        return None
    return None


def retry_after_delay(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from an HTTP Retry-After (seconds, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value).timestamp()
        return max(0.0, when - (time.time() if now is None else now))
    return None


class GrpcSender:
    """OTLP/gRPC Export calls with the journalled bytes as they are."""

    def __init__(self, config: ForwardConfig) -> None:
        import grpc

        self.grpc = grpc
        self.config = config
        options = [("grpc.enable_retries", 0), ("grpc.max_receive_message_length", 4 << 20)]
        if config.tls:
            root = Path(config.ca_file).read_bytes() if config.ca_file else None
            key = Path(config.client_key).read_bytes() if config.client_key else None
            chain = Path(config.client_cert).read_bytes() if config.client_cert else None
            creds = grpc.ssl_channel_credentials(root, key, chain)
            self.channel = grpc.secure_channel(config.target, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(config.target, options=options)
        self.calls = {name: self.channel.unary_unary(s.method) for name, s in SIGNALS.items()}
        self.metadata = tuple(config.headers)
        self.compression = grpc.Compression.Gzip if config.compression == "gzip" else None

    def send(self, signal: str, body: bytes) -> Outcome:
        grpc = self.grpc
        try:
            response = self.calls[signal](
                body,
                timeout=self.config.timeout_s,
                metadata=self.metadata or None,
                compression=self.compression,
            )
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            name = code.name if code is not None else "UNKNOWN"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            delay = None
            for key, value in (exc.trailing_metadata() or ()) if hasattr(exc, "code") else ():
                if key == "grpc-status-details-bin" and isinstance(value, bytes):
                    delay = retry_info_delay(value)
            for key, value in (exc.initial_metadata() or ()) if hasattr(exc, "code") else ():
                if key == "retry-after" and delay is None:  # claude-top's own backpressure
                    delay = retry_after_delay(str(value))
            error = f"{name}: {details}"
            retry = name in _GRPC_RETRYABLE or (name == "RESOURCE_EXHAUSTED" and delay is not None)
            return Outcome("retry" if retry else "reject", error, delay)
        rejected, message = _partial(signal, response)
        return Outcome("ok", message, rejected_records=rejected)

    def close(self) -> None:
        self.channel.close()


class HttpSender:
    """OTLP/HTTP protobuf POSTs to `<endpoint>/v1/<signal>` on one kept-alive connection."""

    def __init__(self, config: ForwardConfig) -> None:
        self.config = config
        u = urlsplit(config.endpoint)
        self.base = u.path.rstrip("/")
        self.host = u.hostname or ""
        self.port = u.port or (443 if u.scheme == "https" else 4318)
        self.context: ssl.SSLContext | None = None
        if config.tls:
            self.context = ssl.create_default_context(cafile=config.ca_file)
            if config.client_cert:
                self.context.load_cert_chain(config.client_cert, config.client_key)
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            if self.context is not None:
                self.conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.config.timeout_s, context=self.context
                )
            else:
                self.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.config.timeout_s
                )
        return self.conn

    def send(self, signal: str, body: bytes) -> Outcome:
        headers = {"Content-Type": "application/x-protobuf", **dict(self.config.headers)}
        if self.config.compression == "gzip":
            body = gzip.compress(body, 6)
            headers["Content-Encoding"] = "gzip"
        try:
            conn = self._connection()
            conn.request("POST", f"{self.base}/v1/{signal}", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Outcome("retry", f"{type(exc).__name__}: {exc}")
        status = response.status
        if 200 <= status < 300:
            rejected, message = _partial(signal, data)
            return Outcome("ok", message, rejected_records=rejected)
        error = f"HTTP {status}: {_http_message(data, response.getheader('Content-Type'))}"
        if status in _HTTP_RETRYABLE or status >= 500:
            return Outcome("retry", error, retry_after_delay(response.getheader("Retry-After")))
        return Outcome("reject", error)

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def _http_message(data: bytes, ctype: str | None) -> str:
    """The message of an OTLP/HTTP error body (a google.rpc.Status), else its text."""
    if ctype and "protobuf" in ctype:
        with contextlib.suppress(IndexError, UnicodeDecodeError):
            for num, wt, value in _fields(data):
                if num == 2 and wt == 2:
                    return value.decode()[:300]
    if ctype and "json" in ctype:
        with contextlib.suppress(ValueError, AttributeError):
            return str(json.loads(data).get("message", ""))[:300]
    return data[:300].decode(errors="replace").strip() or "(no message)"


def make_sender(config: ForwardConfig):
    return GrpcSender(config) if config.protocol == "grpc" else HttpSender(config)


# --- the forwarded position ----------------------------------------------------------------


@dataclass
class ForwardState:
    """What survives a restart: the last seq delivered (or passed over) and the counts."""

    path: Path | None
    seq: int = 0
    store: str | None = None
    """The database's creation stamp: a state left by another database is not reused."""
    rejected: int = 0
    dropped: int = 0
    dropped_records: int = 0
    endpoint: str = ""

    @classmethod
    def load(cls, store: Store) -> ForwardState:
        """The state beside `store` (first use: start at what is already indexed, so exports
        acknowledged and not yet indexed are relayed too)."""
        stamp = _store_stamp(store)
        path = None if store.path == MEMORY else Path(store.path + STATE_SUFFIX)
        fresh = cls(path, store.indexed_seq(), stamp)
        if path is None or not path.exists():
            return fresh
        try:
            doc = json.loads(path.read_text())
            state = cls(
                path,
                int(doc["seq"]),
                doc.get("store"),
                int(doc.get("rejected", 0)),
                int(doc.get("dropped", 0)),
                int(doc.get("dropped_records", 0)),
                str(doc.get("endpoint", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return fresh
        return state if state.store == stamp else fresh

    def save(self) -> None:
        """Write atomically and durably (a crash leaves the old state or the new one)."""
        if self.path is None:
            return
        doc = {
            "seq": self.seq,
            "store": self.store,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "dropped_records": self.dropped_records,
            "endpoint": self.endpoint,
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(doc).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _store_stamp(store: Store) -> str | None:
    with store.reading() as cur:
        row = cur.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'created_ns'").fetchone()
    return row[0] if row else None


# --- the relay -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayStatus:
    """What the header and `serve` show about the relay."""

    endpoint: str
    lag_exports: int = 0
    lag_s: float | None = None
    """Age of the oldest export not delivered yet."""
    error: str | None = None
    """The latest problem: a failure being retried, a rejection, a record given up."""
    failing: bool = False
    """The upstream refuses or cannot be reached right now: retrying with backoff."""
    delivered: int = 0
    rejected: int = 0
    dropped: int = 0

    @property
    def state(self) -> str:
        if self.failing and self.lag_exports:
            return "failing"
        return "behind" if self.lag_exports else "up to date"

    def line(self) -> str:
        """One line for `serve` and the logs."""
        parts = [f"relay to {self.endpoint}: {self.state}"]
        if self.lag_exports:
            age = f", oldest {self.lag_s:.0f}s" if self.lag_s is not None else ""
            parts.append(f"{self.lag_exports} exports waiting{age}")
        parts.append(f"{self.delivered} delivered")
        if self.rejected:
            parts.append(f"{self.rejected} rejected by the upstream")
        if self.dropped:
            parts.append(f"{self.dropped} given up past the journal's bounds")
        if self.error:
            parts.append(f"last error: {self.error}")
        return "; ".join(parts)


@dataclass
class _Tally:
    """The undelivered exports' records and bytes, oldest first (for the bounds)."""

    first: int
    """The seq of `records[head]`."""
    records: array = field(default_factory=lambda: array("q"))
    sizes: array = field(default_factory=lambda: array("q"))
    head: int = 0
    rows: int = 0
    bytes: int = 0
    last: int = 0
    """The last seq counted."""

    def add(self, entries: list[Entry]) -> int:
        """Count new entries; returns how many seqs were missing before them (released)."""
        gap = 0
        for e in entries:
            while self.last + 1 < e.seq:  # a hole: counted as an empty export
                self.records.append(0)
                self.sizes.append(0)
                self.last += 1
                gap += 1
            self.records.append(e.records)
            self.sizes.append(e.length)
            self.rows += e.records
            self.bytes += e.length
            self.last = e.seq
        return gap

    def pop_until(self, seq: int) -> None:
        """Forget the exports up to `seq` (delivered or given up)."""
        while self.first <= seq and self.head < len(self.records):
            self.rows -= self.records[self.head]
            self.bytes -= self.sizes[self.head]
            self.head += 1
            self.first += 1
        self.first = max(self.first, seq + 1)
        if self.head > 4096 and self.head * 2 > len(self.records):
            del self.records[: self.head]
            del self.sizes[: self.head]
            self.head = 0


class Forwarder:
    """Relays journalled exports upstream from its own thread (`start`, `close`)."""

    def __init__(
        self,
        journal: Journal,
        config: ForwardConfig,
        state: ForwardState,
        *,
        sender=None,
        backoff_s: tuple[float, float] = BACKOFF_S,
        poll_s: float = POLL_S,
    ) -> None:
        self.journal = journal
        self.config = config
        self.state = state
        self.sender = sender
        self.backoff_s = backoff_s
        self.poll_s = poll_s
        if state.seq > journal.last_seq:  # the journal was reset under it
            state.seq = journal.last_seq
        state.endpoint = config.endpoint
        journal.hold(state.seq)
        self.delivered = 0
        """Exports the upstream accepted in this run."""
        self.attempts = 0
        """Sends tried in this run (retries included)."""
        self.rejected_records = 0
        self.error: str | None = None
        self.failures = 0
        self._oldest_ns: int | None = None
        self._tally = _Tally(state.seq + 1, last=state.seq)
        self._next_try = 0.0
        self._saved_seq = state.seq
        self._saved_at = 0.0
        self._stop = threading.Event()
        self._stop_by: float | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="claude-top-forward", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Deliver what the upstream takes within `grace_s`, save the position and stop; the
        rest waits in the journal for the next start."""
        self._stop_by = time.monotonic() + grace_s
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(grace_s + self.config.timeout_s + 1.0)
        self._save(force=True)

    # -- status -------------------------------------------------------------------------------

    def status(self) -> RelayStatus:
        lag = max(0, self.journal.last_seq - self.state.seq)
        oldest = self._oldest_ns
        lag_s = None
        if lag and oldest:
            lag_s = max(0.0, (time.time_ns() - oldest) / 1e9)
        return RelayStatus(
            endpoint=self.config.endpoint,
            lag_exports=lag,
            lag_s=lag_s,
            error=self.error,
            failing=self.failures > 0,
            delivered=self.delivered,
            rejected=self.state.rejected,
            dropped=self.state.dropped,
        )

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self.sender is None:
                self.sender = make_sender(self.config)
        except Exception as exc:  # a CA file that is not a certificate, ...
            self.error = f"cannot set up the relay: {exc}"
            return
        try:
            while True:
                self._count_new()
                self._enforce_bounds()
                last = self.journal.last_seq
                now = time.monotonic()
                if self._stop.is_set() and (
                    self.state.seq >= last or now >= (self._stop_by or 0) or self._next_try > now
                ):
                    break
                if self.state.seq >= last:
                    self._oldest_ns = None
                    self._save()
                    self._stop.wait(self.poll_s)
                    continue
                if now < self._next_try:
                    self._save()
                    self._stop.wait(min(self.poll_s * 5, self._next_try - now))
                    continue
                self._deliver(last)
                self._save()
        finally:
            with contextlib.suppress(Exception):
                self.sender.close()

    def _count_new(self) -> None:
        """Tally the exports journalled since the last look (headers only)."""
        t = self._tally
        last = self.journal.last_seq
        while t.last < last:
            entries = self.journal.read(t.last, last, 4096, reader="forward-tally")
            if not entries:
                break
            t.add(entries)

    def _enforce_bounds(self) -> None:
        """Past the journal's bounds, give up the oldest undelivered exports (counted)."""
        t, cfg = self._tally, self.config
        if t.rows <= cfg.max_rows and t.bytes <= cfg.max_bytes:
            return
        seq = self.state.seq
        while (t.rows > cfg.max_rows or t.bytes > cfg.max_bytes) and t.head < len(t.records):
            self.state.dropped += 1
            self.state.dropped_records += t.records[t.head]
            seq = t.first
            t.pop_until(seq)
        self._advance(seq)
        self._save(force=True)

    def _deliver(self, last: int) -> None:
        """Send the next exports in order, until one must be retried later."""
        entries = self.journal.read(self.state.seq, last, BATCH, reader="forward")
        if not entries:  # released under us (forwarding was off): given up
            self.state.dropped += last - self.state.seq
            self._advance(last)
            return
        if entries[0].seq > self.state.seq + 1:
            self.state.dropped += entries[0].seq - self.state.seq - 1
            self._advance(entries[0].seq - 1)
        for entry in entries:
            self._oldest_ns = entry.received_ns
            try:
                body = read_body(entry)
            except (OSError, JournalError) as exc:  # damaged on disk: cannot be sent
                self.error = f"journal record {entry.seq}: {exc}"
                self.state.dropped += 1
                self.state.dropped_records += entry.records
                self._advance(entry.seq)
                continue
            self.attempts += 1
            outcome = self.sender.send(entry.signal, body)
            if outcome.kind == "retry":
                self._failed(outcome)
                return
            self.failures = 0
            if outcome.kind == "reject":
                self.state.rejected += 1
                self.error = f"rejected: {outcome.error}"
            else:
                self.delivered += 1
                self.rejected_records += outcome.rejected_records
                if outcome.rejected_records:
                    self.error = f"{outcome.rejected_records} records refused: {outcome.error}"
            self._advance(entry.seq)
            if self._stop.is_set() and time.monotonic() >= (self._stop_by or 0):
                return

    def _failed(self, outcome: Outcome) -> None:
        self.failures += 1
        self.error = outcome.error or "failed"
        low, high = self.backoff_s
        delay = min(high, low * 2 ** min(self.failures - 1, 16)) * random.uniform(0.8, 1.2)
        if outcome.delay_s is not None:
            delay = min(MAX_SERVER_DELAY_S, max(0.0, outcome.delay_s))
        self._next_try = time.monotonic() + delay

    def _advance(self, seq: int) -> None:
        with self._lock:
            if seq <= self.state.seq:
                return
            self.state.seq = seq
            self._tally.pop_until(seq)
            self.journal.hold(seq)

    def _save(self, force: bool = False) -> None:
        """Persist the position: when it moved, at most every SAVE_EVERY_S unless forced."""
        with self._lock:
            if self.state.seq == self._saved_seq and not force:
                return
            now = time.monotonic()
            if not force and now - self._saved_at < SAVE_EVERY_S:
                return
            try:
                self.state.save()
            except OSError as exc:
                self.error = f"cannot save the relay position: {exc}"
                return
            self._saved_seq = self.state.seq
            self._saved_at = now


def open_relay(args, store: Store) -> tuple[ForwardConfig, ForwardState] | None:
    """The relay `args` ask for and where it stands (None without --forward). Raises
    ValueError for bad options."""
    config = ForwardConfig.from_args(args)
    if config is None:
        return None
    return config, ForwardState.load(store)
