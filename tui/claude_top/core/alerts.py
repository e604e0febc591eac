"""Alerts when a plan window or a budget crosses a threshold (80 % and 95 % unless configured):
which crossings are new (`crossings`), remembered in `limit_alerts` so each alerts once, across
restarts too (`check`), and the ways to tell the user that need no UI: the `--alert-command`
(the alert as JSON on stdin), `notify-send`, and the escape sequences terminals show as desktop
notifications. The UI adds its header colour and bell (`ui.limits`); `serve` runs these alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import asdict, dataclass

from claude_top.core.budgets import FULL_PCT, LimitSettings
from claude_top.core.format import NS_PER_S
from claude_top.core.queries.limits import Limits, Window, limits
from claude_top.core.store.database import Store, transaction

COMMAND_TIMEOUT_S = 30


@dataclass(frozen=True)
class Alert:
    """One window or budget crossing one threshold."""

    key: str
    window: str
    label: str
    source: str
    threshold: float
    used_percentage: float
    resets_at: int | None
    window_start: int | None
    cost_usd: float
    limit_usd: float | None
    level: str  # "warning" or "error"
    at: int

    @property
    def message(self) -> str:
        what = f"{self.label} budget" if self.source == "budget" else f"{self.label} limit"
        text = f"{what} at {self.used_percentage:.0f}% (crossed {self.threshold:g}%)"
        if self.resets_at is not None:
            left = max(0, self.resets_at - self.at)
            text += f", resets in {left // 3600}h{left % 3600 // 60:02d}m"
        return text

    def to_json(self) -> dict:
        return {**asdict(self), "message": self.message}


def level_of(pct: float | None, thresholds: tuple[float, ...]) -> str | None:
    """ "error" at the highest threshold (or 100 %), "warning" at any other; None below."""
    if pct is None or not thresholds or pct < min(thresholds):
        return None
    return "error" if pct >= min(max(thresholds), FULL_PCT) else "warning"


def _live(w: Window, now_ns: int) -> bool:
    return w.used_percentage is not None and not w.gone(now_ns) and not w.stale(now_ns)


def crossings(state: Limits, thresholds: tuple[float, ...], fired: set[str]) -> list[Alert]:
    """The new crossings: for each live window, the highest threshold it is at or past that has
    not alerted yet in this window (the lower ones it jumped past count as given)."""
    out = []
    now_s = state.now_ns // NS_PER_S
    for w in state.windows:
        if not _live(w, state.now_ns):
            continue
        edge = w.resets_at if w.resets_at is not None else w.window_start
        passed = [t for t in sorted(thresholds) if w.used_percentage >= t]
        keys = [f"{w.name}@{edge}:{t:g}" for t in passed]
        if not passed or keys[-1] in fired:
            continue
        out.append(
            Alert(
                keys[-1],
                w.name,
                w.label,
                w.source,
                passed[-1],
                round(w.used_percentage, 3),
                w.resets_at,
                w.window_start,
                w.spent.cost_usd,
                w.limit_usd,
                level_of(w.used_percentage, thresholds) or "warning",
                now_s,
            )
        )
        fired.update(keys)
    return out


def fired_keys(cur) -> set[str]:
    return {r[0] for r in cur.execute("SELECT uid FROM limit_alerts").fetchall()}


def remember(store: Store, alerts: list[Alert], thresholds: tuple[float, ...]) -> None:
    """Store the alerts given (and the lower thresholds each jumped past) in one transaction."""
    rows = []
    for a in alerts:
        base = a.key.rsplit(":", 1)[0]
        for t in thresholds:
            if t <= a.threshold:
                rows.append((f"{base}:{t:g}", a.at * NS_PER_S, json.dumps(a.to_json())))
    if not rows:
        return
    with store.reading() as cur, transaction(cur):
        cur.executemany("INSERT OR IGNORE INTO limit_alerts VALUES (?, ?, ?)", rows)


def check(store: Store, settings: LimitSettings, now_ns: int) -> tuple[Limits, list[Alert]]:
    """The limits as of `now_ns` and the crossings not alerted before (now remembered)."""
    with store.reading() as cur:
        state = limits(cur, settings, now_ns)
        fired = fired_keys(cur)
    new = crossings(state, settings.alert_at, fired)
    if new and not store.read_only:
        remember(store, new, settings.alert_at)
    return state, new


# --- telling the user --------------------------------------------------------------------------


def run_command(command: str, alert: Alert, on_error=None) -> threading.Thread:
    """Run the alert command (in a shell) with the alert as JSON on stdin, in a thread;
    `on_error(message)` hears when it fails."""

    def run() -> None:
        try:
            done = subprocess.run(
                command,
                shell=True,
                input=json.dumps(alert.to_json()).encode(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=COMMAND_TIMEOUT_S,
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            if on_error:
                on_error(f"alert command failed: {exc}")
            return
        if done.returncode != 0 and on_error:
            err = done.stderr.decode(errors="replace").strip().splitlines()
            on_error(f"alert command exited {done.returncode}: {err[-1] if err else ''}")

    thread = threading.Thread(target=run, name="claude-top-alert", daemon=True)
    thread.start()
    return thread


def notify_send(alert: Alert) -> bool:
    """A desktop notification through `notify-send` where a desktop session is reachable."""
    exe = shutil.which("notify-send")
    session = any(
        os.environ.get(k) for k in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY")
    )
    if exe is None or not session:
        return False
    urgency = "critical" if alert.level == "error" else "normal"
    try:
        subprocess.Popen(
            [exe, "-a", "claude-top", "-u", urgency, "claude-top", alert.message],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return False
    return True


def terminal_notification(title: str, body: str, env=None) -> str | None:
    """The escape sequence this terminal shows as a desktop notification (None when it is not
    known to): OSC 99 for kitty, OSC 777 for foot, urxvt and Ghostty, OSC 9 for iTerm2, WezTerm
    and Windows Terminal; wrapped for tmux's passthrough inside tmux."""
    env = os.environ if env is None else env
    clean = " ".join(f"{title}: {body}".replace(";", ",").split())
    program = env.get("TERM_PROGRAM", "")
    term = env.get("TERM", "")
    if env.get("KITTY_WINDOW_ID"):
        seq = f"\x1b]99;;{clean}\x1b\\"
    elif program == "ghostty" or term.startswith(("foot", "rxvt")):
        seq = f"\x1b]777;notify;{title};{clean}\x1b\\"
    elif program in ("iTerm.app", "WezTerm") or env.get("WT_SESSION"):
        seq = f"\x1b]9;{clean}\x1b\\"
    else:
        return None
    if env.get("TMUX"):
        seq = "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return seq
