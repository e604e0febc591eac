"""ClickHouse's HTTP interface in front of the engine in-process (chdb), for tests: enough of it
for clickhouse-connect (queries in the body or `query=`, `param_*` values, settings, `FORMAT`
in the query, basic auth or X-ClickHouse-User/Key, errors with X-ClickHouse-Exception-Code), so
the team source's real client and the real `claude-top` commands run against the real engine.
Not a server: one engine, one query at a time."""

from __future__ import annotations

import base64
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import clickhouse_rows as cr

_SETTINGS = {"prefer_column_name_to_alias"}
"""Settings the client sends that change what a query returns (the rest are transport)."""


class ClickHouseHTTP:
    """Listens on 127.0.0.1 (an ephemeral port); `users` maps a user to its password; in front
    of `session` (a chdb session; the process's by default)."""

    def __init__(self, users: dict[str, str] | None = None, session=None) -> None:
        self.session = session if session is not None else cr.session()
        self.users = users or {"default": ""}
        self.lock = threading.Lock()
        self.queries: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                server._handle(self)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ClickHouseHTTP:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _user(self, h: BaseHTTPRequestHandler, q: dict) -> tuple[str, str]:
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            return user, password
        return (
            h.headers.get("X-ClickHouse-User") or q.get("user") or "default",
            h.headers.get("X-ClickHouse-Key") or q.get("password") or "",
        )

    def _reply(self, h, status: int, body: bytes, headers: dict | None = None) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        u = urllib.parse.urlsplit(h.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n).decode() if n else ""
        if h.command == "GET" and u.path in ("/ping", "/") and not q.get("query"):
            return self._reply(h, 200, b"Ok.\n")
        user, password = self._user(h, q)
        if self.users.get(user) != password:
            msg = (
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is "
                "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)"
            ).encode()
            return self._reply(h, 401, msg, {"X-ClickHouse-Exception-Code": "516"})
        sql = "\n".join(x for x in (q.get("query", ""), body) if x)
        params = {k[6:]: v for k, v in q.items() if k.startswith("param_")}
        settings = {k: v for k, v in q.items() if k in _SETTINGS}
        with self.lock:
            self.queries.append(sql)
            try:
                for k, v in settings.items():
                    self.session.query(f"SET {k} = {v}")
                data = self.session.query(sql, "TabSeparated", params=params).bytes()
            except Exception as exc:
                text = str(exc).splitlines()[0].encode()
                return self._reply(h, 500, text, {"X-ClickHouse-Exception-Code": "1"})
        self._reply(h, 200, data, {"X-ClickHouse-Format": "Native"})
