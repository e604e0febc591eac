"""The running claude-top that owns a database, and how another process reaches it.

DuckDB lets one process hold a database file. While `claude-top` or `claude-top serve` runs, it
writes `<db>.instance.json` (readable by this user only): its pid, its OTLP/HTTP address and a
random key. Commands that need the database while it runs (`export`, `import`, a second UI)
read the file and ask the running instance over loopback, sending the key in
`X-Claude-Top-Key`: a web page in a browser cannot read the file, so it cannot drive them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import ssl
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from claude_top import __version__

KEY_HEADER = "X-Claude-Top-Key"
API_PREFIX = "/claude-top/v1"
SUFFIX = ".instance.json"
TIMEOUT_S = 30.0


class InstanceError(RuntimeError):
    """The running instance could not be asked; the message says why."""


@dataclass(frozen=True)
class Instance:
    """What a running claude-top writes beside its database."""

    pid: int
    http: str
    """Its OTLP/HTTP base address, e.g. `http://127.0.0.1:4318`."""
    key: str
    db: str
    version: str = __version__
    tls_cert: str | None = None
    token: str | None = None
    """The bearer token senders need (the file is this user's alone)."""

    def request(self, method: str, path: str, body: Any = None, timeout: float = TIMEOUT_S):
        """Call the instance's control API; returns the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        return json.loads(self.call(method, path, data, timeout) or b"null")

    def call(
        self, method: str, path: str, data: bytes | None = None, timeout: float = TIMEOUT_S
    ) -> bytes:
        """Call the control API with a JSON body already encoded; returns the answer's bytes.
        Raises InstanceError with the instance's message (or why it could not be reached)."""
        req = urllib.request.Request(self.http + API_PREFIX + path, data=data, method=method)
        req.add_header(KEY_HEADER, self.key)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        context = None
        if self.http.startswith("https:"):
            context = ssl.create_default_context(cafile=self.tls_cert)
            context.check_hostname = False  # a loopback address, certified by the file's cert
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("message")
            except ValueError:
                message = None
            raise InstanceError(message or f"HTTP {exc.code} from {self.http}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InstanceError(f"cannot reach the claude-top at {self.http}: {reason}") from None


def instance_path(db_path: str) -> Path:
    return Path(db_path + SUFFIX)


def new_key() -> str:
    return secrets.token_hex(16)


def write_instance(instance: Instance) -> Path:
    """Write the instance file (0600), replacing any stale one."""
    path = instance_path(instance.db)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(instance), fh)
    os.replace(tmp, path)
    return path


def remove_instance(instance: Instance) -> None:
    """Remove the instance file if it is still this instance's."""
    found = read_instance(instance.db, check_alive=False)
    if found is not None and found.key == instance.key:
        with contextlib.suppress(OSError):
            instance_path(instance.db).unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_instance(db_path: str, *, check_alive: bool = True) -> Instance | None:
    """The instance running on `db_path`, or None (no file, unreadable, or its process gone)."""
    try:
        doc = json.loads(instance_path(db_path).read_text())
        found = Instance(**doc)
    except (OSError, ValueError, TypeError):
        return None
    if check_alive and not _alive(found.pid):
        return None
    return found
