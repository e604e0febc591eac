"""`claude-top status`: plan limits, budgets and today's cost, once, for scripts, tmux and CI.

Asks the running claude-top (`GET /claude-top/v1/status` on its OTLP/HTTP port: `--http-port`,
else the instance file beside `--db`, else 4318); when none answers, reads the database
read-only. Both give the same JSON (`core.queries.limits.Limits.to_json`). Exit codes, as
Claude-Code-Usage-Monitor uses them: 0 ok, 10 near a limit, 11 limit reached, 20 indeterminate
(stale), 30 no data (or no database to read).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

from claude_top.core.budgets import SettingsError, settings_from_args
from claude_top.core.format import NS_PER_S, cost
from claude_top.core.instance import API_PREFIX, read_instance
from claude_top.core.queries.limits import LEVEL_EXIT

ASK_TIMEOUT_S = 10.0
EXIT_NO_DATA = LEVEL_EXIT["no_data"]


def _countdown(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m"
    return f"{s}s"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}%"


class _Asked(Exception):
    """The running claude-top said no (a message for stderr)."""


def ask(url: str, token: str | None, tls_cert: str | None, query: dict) -> dict | None:
    """The status from a claude-top at `url` (its base address); None when nothing (or no
    claude-top) answers there. Raises _Asked when it refuses."""
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    full = f"{url}{API_PREFIX}/status"
    if query:
        full += "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(full)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=tls_cert)
        context.check_hostname = False
    try:
        with urllib.request.urlopen(req, timeout=ASK_TIMEOUT_S, context=context) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise _Asked(f"claude-top at {url} refused: wrong or missing --token") from None
        return None  # 404: something else listens there
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and "level" in doc else None


def from_instance(args, db_path: str, query: dict) -> dict | None:
    import os

    token = args.token or os.environ.get("CLAUDE_TOP_TOKEN") or None
    if args.http_port is None:
        found = read_instance(db_path)
        if found is not None:
            doc = ask(found.http, token or found.token, found.tls_cert, query)
            if doc is not None:
                return doc
    port = args.http_port or 4318
    host = f"[{args.host}]" if ":" in args.host else args.host
    doc = ask(f"http://{host}:{port}", token, None, query)
    if doc is None and token is None:
        found = read_instance(db_path)
        if found is not None and found.http.endswith(f":{port}"):
            doc = ask(found.http, found.token, found.tls_cert, query)
    return doc


def from_database(db_path: str, settings, now_ns: int) -> dict:
    """The status read from the database file (no claude-top runs on it). Raises StoreError."""
    from claude_top.core.queries.limits import limits
    from claude_top.core.store.database import Store

    store = Store.open(db_path, read_only=True)
    try:
        with store.reading() as cur:
            return limits(cur, settings, now_ns).to_json(now_ns, settings.near_pct)
    finally:
        store.close()


def human(doc: dict) -> str:
    """Lines for a person: each window, then today."""
    now = doc["now"]
    lines = []
    windows = [(k, doc.get(k)) for k in ("five_hour", "seven_day", "spend_limit")]
    windows += [(f"budget {k}", w) for k, w in (doc.get("budgets") or {}).items()]
    seen = set()
    for name, w in windows:
        if not w or id(w) in seen:
            continue
        seen.add(id(w))
        label = {"five_hour": "5h", "seven_day": "7d", "spend_limit": "spend"}.get(name, name)
        if w["source"] == "budget":
            label = f"budget {w['limit_usd']:g}$ " + (
                label.removeprefix("budget ") if name.startswith("budget") else label
            )
        if w["expired"]:
            lines.append(
                f"{label}: window reset at {_clock(w['resets_at'])}; next not reported yet"
            )
            continue
        src = w["source"]
        if w["sampled_at"] is not None:
            src += f" · {_countdown(w['age_s'])} ago" + (" (stale)" if w["stale"] else "")
        reset = "" if w["resets_at"] is None else (
            f" · resets in {_countdown(w['resets_at'] - now)} ({_clock(w['resets_at'])})"
        )  # fmt: skip
        lines.append(
            f"{label} {_pct(w['used_percentage'])} ({src}){reset} · {cost(w['cost_usd'])} in "
            f"{w['requests']} requests"
        )
        if w["forecast"] == "ok":
            eta = w["eta_full"]
            full = f"full in {_countdown(eta - now)}" if eta else "not full before the reset"
            lo, hi = w["projected_range"] or (None, None)
            span = f" ({_pct(lo)}-{_pct(hi)})" if lo != hi else ""
            lines.append(
                f"  burn ${w['burn_usd_per_hour']:.2f}/h"
                + (f", {w['burn_pct_per_hour']:.1f}%/h" if w["burn_pct_per_hour"] else "")
                + f" · at the reset ~{_pct(w['projected_percentage_at_reset'])}{span} · {full}"
            )
        else:
            lines.append(f"  forecast: {w['forecast']}")
    t = doc["today"]
    lines.append(
        f"today {cost(t['cost_usd'])} in {t['requests']} requests · "
        f"{doc['sessions_active']} active session{'' if doc['sessions_active'] == 1 else 's'}"
    )
    if not any(w for _, w in windows):
        lines.insert(0, "no plan limits yet (no status-line sample with rate_limits, no budget)")
    return "\n".join(lines)


def _clock(epoch_s: int | None) -> str:
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s).strftime("%a %H:%M")


def tmux(doc: dict) -> str:
    """One short line for tmux's status-right (#[fg=...] colours past the thresholds)."""
    now = doc["now"]
    parts = []
    for key, label in (("five_hour", "5h"), ("seven_day", "7d")):
        w = doc.get(key)
        if not w or w["expired"] or w["used_percentage"] is None:
            continue
        text = f"{label} {_pct(w['used_percentage'])}"
        if w["stale"]:
            text += "?"
        if key == "five_hour" and w["resets_at"]:
            text += f" ↻{_countdown(w['resets_at'] - now)}"
        pct = w["used_percentage"]
        if pct >= 95:
            text = f"#[fg=red]{text}#[default]"
        elif pct >= 80:
            text = f"#[fg=yellow]{text}#[default]"
        parts.append(text)
    parts.append(f"{cost(doc['today']['cost_usd'])} today")
    return " · ".join(parts)


def run_status(args, db_path: str) -> int:
    """Print the status (human, --json or --tmux); the exit code says the level."""
    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        print(f"claude-top status: {exc}", file=sys.stderr)
        return 2
    now_ns = int(args.at * NS_PER_S) if args.at is not None else time.time_ns()
    query = {}
    if args.at is not None:
        query["at"] = args.at
    if args.budget:
        query["budget"] = args.budget
    if args.alert_at:
        query["alert_at"] = args.alert_at
    try:
        doc = from_instance(args, db_path, query)
    except _Asked as exc:
        print(f"claude-top status: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    if doc is None:
        from claude_top.core.store.database import StoreError

        try:
            doc = from_database(db_path, settings, now_ns)
        except StoreError as exc:
            print(f"claude-top status: {exc}", file=sys.stderr)
            return EXIT_NO_DATA
    if args.json:
        print(json.dumps(doc, indent=2))
    elif args.tmux:
        print(tmux(doc))
    else:
        print(human(doc))
    return int(doc.get("exit_code", EXIT_NO_DATA))
