"""How SQL reaches a ClickHouse: a team's server over HTTP (clickhouse-connect), or the engine
in-process (chdb: the tests and the benchmark). Both take `{name:Type}` parameters, bound by
the server, and return rows as dicts with the same Python types."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from claude_top.core.queries.reader import SourceUnavailable

SETTINGS = {"prefer_column_name_to_alias": 1}
"""An aggregate's alias never shadows the column it reads (`sum(x) AS x`)."""
DEFAULT_HTTP_PORT = 8123
DEFAULT_HTTPS_PORT = 8443


class ClickHouseError(SourceUnavailable):
    """A query or connection failed; the message says what failed, in words a user can act on."""


class QueryRunner(Protocol):
    """Runs one read-only query; rows as dicts keyed by column name."""

    database: str

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]: ...

    def command(self, sql: str) -> None:
        """A statement that returns nothing (only `claude-top team-tables` writes)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class ClickHouseURL:
    """`clickhouse://[user[:password]@]host[:port]/database` (`clickhouses://` for TLS)."""

    host: str
    port: int
    database: str
    user: str = "default"
    password: str = ""
    secure: bool = False
    tables: tuple[tuple[str, str], ...] = ()
    """Table names other than the exporter's defaults: `?logs=...&traces=...&metrics=...`
    (`metrics` is the prefix of `_sum`, ...)."""

    @classmethod
    def parse(cls, url: str) -> ClickHouseURL:
        """Raises ValueError naming what is wrong with the URL."""
        u = urlsplit(url)
        if u.scheme not in ("clickhouse", "clickhouses", "http", "https"):
            raise ValueError(
                f"--source {_safe(url)}: expected clickhouse://[user[:password]@]host[:8123]"
                "/database (clickhouses:// for TLS)"
            )
        if not u.hostname:
            raise ValueError(f"--source {_safe(url)}: no host")
        try:
            port = u.port
        except ValueError:
            raise ValueError(f"--source {_safe(url)}: the port is not a number") from None
        secure = u.scheme in ("clickhouses", "https")
        database = unquote(u.path.strip("/")) or "default"
        if "/" in database:
            raise ValueError(f"--source {_safe(url)}: the path must be one database name")
        query = parse_qs(u.query)
        unknown = sorted(set(query) - {"logs", "traces", "metrics"})
        if unknown:
            raise ValueError(
                f"--source {_safe(url)}: unknown option {unknown[0]!r} (logs, traces, metrics "
                "name the tables)"
            )
        return cls(
            host=u.hostname,
            port=port or (DEFAULT_HTTPS_PORT if secure else DEFAULT_HTTP_PORT),
            database=database,
            user=unquote(u.username) if u.username else "default",
            password=unquote(u.password) if u.password else "",
            secure=secure,
            tables=tuple((k, v[-1]) for k, v in sorted(query.items())),
        )

    def label(self) -> str:
        """The URL without the password (for the header and messages)."""
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


def _safe(url: str) -> str:
    """A URL with its password masked."""
    u = urlsplit(url)
    if u.password:
        return url.replace(":" + u.password + "@", ":***@", 1)
    return url


class HttpRunner:
    """A ClickHouse server over its HTTP interface, through clickhouse-connect."""

    def __init__(self, url: ClickHouseURL, connect_timeout_s: float = 5.0) -> None:
        self.url = url
        self.database = url.database
        self._local = threading.local()
        self._connect_timeout_s = connect_timeout_s
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        # its errors come back to us as exceptions: never printed over the UI
        quiet = logging.getLogger("clickhouse_connect")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False

    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            try:
                import clickhouse_connect
            except ImportError as exc:  # pragma: no cover - a runtime dependency
                raise ClickHouseError(
                    "the clickhouse-connect package is missing: pip install clickhouse-connect"
                ) from exc
            u = self.url
            try:
                client = clickhouse_connect.get_client(
                    host=u.host,
                    port=u.port,
                    username=u.user,
                    password=u.password,
                    database=u.database,
                    secure=u.secure,
                    connect_timeout=self._connect_timeout_s,
                    send_receive_timeout=60,
                    autogenerate_session_id=False,
                    settings=SETTINGS,
                )
            except Exception as exc:
                raise ClickHouseError(_explain(exc, u)) from exc
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        client = self._client()
        try:
            result = client.query(sql, parameters=params or {})
        except Exception as exc:
            raise ClickHouseError(_explain(exc, self.url)) from exc
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def command(self, sql: str) -> None:
        client = self._client()
        try:
            client.command(sql)
        except Exception as exc:
            raise ClickHouseError(_explain(exc, self.url)) from exc

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            with contextlib.suppress(Exception):  # closing what may already be gone
                c.close()


def _explain(exc: Exception, url: ClickHouseURL) -> str:
    """One line on what failed talking to the server."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = str(exc).lower()
    if "authentication" in low or "code: 516" in low or "password" in low:
        return f"wrong user or password for {url.user!r} ({text})"
    if "code: 81" in low or "unknown_database" in low:
        return f"there is no database {url.database!r} ({text})"
    if "connection refused" in low or "failed to establish" in low or "max retries" in low:
        return f"cannot connect to {url.host}:{url.port} (is ClickHouse's HTTP interface there?)"
    if "timed out" in low or "timeout" in low:
        return f"no answer in time from {url.host}:{url.port} ({text})"
    return text


def _floats(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return value


def _param_text(value: Any) -> str:
    """A query parameter as ClickHouse reads it from text (arrays as literals)."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_literal(v) for v in value) + "]"
    return str(value)


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


class ChdbRunner:
    """The ClickHouse engine in-process (chdb), on a session directory; for tests and bench."""

    def __init__(self, session, database: str = "default") -> None:
        self.session = session
        self.database = database
        self._lock = threading.Lock()
        for name, value in {**SETTINGS, "output_format_json_quote_64bit_integers": 0}.items():
            session.query(f"SET {name} = {value}")  # 64-bit integers as numbers, as the server's

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        import orjson

        text = {k: _param_text(v) for k, v in (params or {}).items()}
        with self._lock:  # one chdb connection: one query at a time
            try:
                result = self.session.query(sql, "JSONCompact", params=text)
            except Exception as exc:
                raise ClickHouseError(f"chdb: {str(exc).splitlines()[0]}") from exc
        raw = result.bytes()
        if not raw:
            return []
        doc = orjson.loads(raw)
        names = [m["name"] for m in doc["meta"]]
        floats = [i for i, m in enumerate(doc["meta"]) if "Float" in m["type"]]
        rows = doc["data"]
        for row in rows:  # JSON writes 65.0 as 65: give floats back as floats, as the server
            for i in floats:
                row[i] = _floats(row[i])
        return [dict(zip(names, row, strict=True)) for row in rows]

    def command(self, sql: str) -> None:
        with self._lock:
            try:
                self.session.query(sql)
            except Exception as exc:
                raise ClickHouseError(f"chdb: {str(exc).splitlines()[0]}") from exc

    def close(self) -> None:
        pass
