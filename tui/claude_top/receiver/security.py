"""Who may send: loopback by default, a bearer token or an explicit --insecure beyond it; TLS.

The token is checked on every export (`authorization: Bearer TOKEN`, gRPC metadata or HTTP
header) with a constant-time comparison.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import ssl
from pathlib import Path

_ANY = {"", "0.0.0.0", "::"}


def is_loopback(bind: str) -> bool:
    """True if `bind` only listens on this machine (127.0.0.0/8, ::1, a name resolving there)."""
    host = bind.strip().strip("[]")
    if host in _ANY:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if host.lower() == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def host_allowed(host: str | None, bind: str) -> bool:
    """Whether a request's `Host` names this machine: localhost, a loopback address or the bind
    name itself, with any port (no Host at all: not a browser, which always sends one)."""
    if host is None:
        return True
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    if name in ("localhost", bind.strip().strip("[]").lower()):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def token_problem(token: str) -> str | None:
    """Why a token cannot be used (it must travel as an HTTP header and gRPC metadata)."""
    if not token:
        return "--token must not be empty"
    if any(not (0x21 <= ord(c) <= 0x7E) for c in token):
        return "--token may only hold printable ASCII without spaces"
    return None


def listen_problem(
    bind: str,
    token: str | None,
    insecure: bool,
    tls_cert: str | None,
    tls_key: str | None,
) -> str | None:
    """A one-line reason to refuse these listen options, or None."""
    if token is not None and (problem := token_problem(token)):
        return problem
    if bool(tls_cert) != bool(tls_key):
        return "--tls-cert and --tls-key go together: give both (PEM files) or neither"
    if tls_cert and tls_key:
        try:
            server_tls_context(tls_cert, tls_key)
        except (OSError, ssl.SSLError) as exc:
            return f"cannot use --tls-cert {tls_cert} / --tls-key {tls_key}: {_tls_reason(exc)}"
    if token is None and not insecure and not is_loopback(bind):
        return (
            f"refusing to listen on {bind or 'every address'} without a token: anyone who can "
            "reach it could write telemetry; add --token TOKEN (senders then need "
            "authorization: Bearer TOKEN), or --insecure to allow it anyway"
        )
    return None


def _tls_reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"not a matching PEM certificate and private key ({exc.reason or exc})"
    return exc.strerror or str(exc)


def server_tls_context(cert: str, key: str) -> ssl.SSLContext:
    """The HTTP listener's TLS context. Raises OSError or ssl.SSLError."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def read_pem(cert: str, key: str) -> tuple[bytes, bytes]:
    """(private key, certificate chain) bytes for grpc.ssl_server_credentials."""
    return Path(key).read_bytes(), Path(cert).read_bytes()


def bearer_matches(header: str | None, token: str) -> bool:
    """Does an `authorization` value carry this bearer token? (scheme case-insensitive; a
    sender that did not percent-decode OTEL_EXPORTER_OTLP_HEADERS sends `Bearer%20TOKEN`)"""
    if not header:
        return False
    value = header.strip()
    scheme, sep, credentials = value.partition(" ")
    if not sep:
        scheme, sep, credentials = value.partition("%20")
    if not sep or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())
