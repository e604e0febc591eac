"""Budgets and limit alerts: what a user sets (`--budget 5h=10,day=30,week=150,month=500`,
`--alert-at 80,95`, `--alert-command CMD`, or the same in `~/.config/claude-top/config.toml`).

Budgets are in US dollars and stand in for the official plan limits where Claude Code sends none
(API-key users): the 5-hour one runs in blocks as Claude's own window does (from the hour of the
first request after the previous block ended, for five hours); `day`, `week` (from Monday) and
`month` are calendar periods in local time.

    [budgets]
    5h = 10
    day = 30
    week = 150
    month = 500

    [alerts]
    at = [80, 95]         # percent of a window or budget; each crossing alerts once
    command = "notify.sh" # run with the alert as JSON on stdin
    bell = true
    desktop = true        # notify-send, or the terminal's own notification
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

BUDGET_PERIODS = ("5h", "day", "week", "month")
DEFAULT_ALERT_AT = (80.0, 95.0)
NEAR_PCT = 80.0
"""`claude-top status` exits 10 from here (and the first default alert)."""
FULL_PCT = 100.0


class SettingsError(ValueError):
    """A budget or alert setting cannot be used; the message says which and why."""


def parse_budgets(text: str) -> dict[str, float]:
    """`5h=10,day=30, week=150,month=500` -> {"5h": 10.0, ...} (dollars; `$` allowed)."""
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in BUDGET_PERIODS:
            raise SettingsError(
                f"bad budget {part.strip()!r}: use PERIOD=DOLLARS with PERIOD one of "
                f"{', '.join(BUDGET_PERIODS)}, e.g. 5h=10,day=30"
            )
        out[name] = _dollars(value, f"budget {name}")
    if not out:
        raise SettingsError("no budget given: use e.g. 5h=10,day=30,week=150,month=500")
    return out


def _dollars(value: object, what: str) -> float:
    try:
        amount = float(str(value).strip().lstrip("$"))
    except ValueError:
        raise SettingsError(f"{what}: {value!r} is not an amount in dollars") from None
    if not amount > 0 or amount != amount or amount == float("inf"):
        raise SettingsError(f"{what}: {value!r} must be more than zero dollars")
    return amount


def parse_thresholds(text: str | list) -> tuple[float, ...]:
    """`80,95` -> (80.0, 95.0): percentages above 0 (sorted, without repeats)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = set()
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            pct = float(str(item).strip().rstrip("%"))
        except ValueError:
            raise SettingsError(f"alert threshold {item!r} is not a percentage") from None
        if not 0 < pct <= 1000:
            raise SettingsError(f"alert threshold {item!r} must be above 0 (percent)")
        out.add(pct)
    if not out:
        raise SettingsError("no alert threshold given: use e.g. 80,95")
    return tuple(sorted(out))


@dataclass(frozen=True)
class LimitSettings:
    """Budgets and how alerts are given."""

    budgets: dict[str, float] = field(default_factory=dict)
    alert_at: tuple[float, ...] = DEFAULT_ALERT_AT
    alert_command: str | None = None
    bell: bool = True
    desktop: bool = True
    source: str = ""
    """Where they came from (the config file's path), for messages."""

    @property
    def near_pct(self) -> float:
        """Where a window counts as near its limit: the lowest alert threshold."""
        return min(self.alert_at, default=NEAR_PCT)


def config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("claude-top", appauthor=False)) / "config.toml"


def load_config(path: Path | None = None) -> LimitSettings:
    """The settings in the config file (`path`, else the user's); defaults when it is absent.
    Raises SettingsError naming the file."""
    path = path or config_path()
    if not path.is_file():
        return LimitSettings()
    where = str(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{where}: cannot read it ({exc})") from None
    budgets_doc = doc.get("budgets", {})
    alerts = doc.get("alerts", {})
    if not isinstance(budgets_doc, dict) or not isinstance(alerts, dict):
        raise SettingsError(f"{where}: [budgets] and [alerts] must be tables")
    budgets = {}
    for name, value in budgets_doc.items():
        if str(name).lower() not in BUDGET_PERIODS:
            raise SettingsError(
                f"{where}: unknown budget {name!r} (use {', '.join(BUDGET_PERIODS)})"
            )
        budgets[str(name).lower()] = _dollars(value, f"{where}: budget {name}")
    try:
        at = parse_thresholds(alerts["at"]) if "at" in alerts else DEFAULT_ALERT_AT
    except SettingsError as exc:
        raise SettingsError(f"{where}: {exc}") from None
    command = alerts.get("command")
    if command is not None and not isinstance(command, str):
        raise SettingsError(f"{where}: alerts.command must be a string")
    return LimitSettings(
        budgets=budgets,
        alert_at=at,
        alert_command=command or None,
        bell=bool(alerts.get("bell", True)),
        desktop=bool(alerts.get("desktop", True)),
        source=where,
    )


def settings_from_args(args) -> LimitSettings:
    """The config file's settings with the command line's over them (`--config`, `--budget`,
    `--alert-at`, `--alert-command`, `--no-bell`, `--no-desktop`). Raises SettingsError."""
    config = getattr(args, "config", None)
    settings = load_config(Path(config).expanduser() if config else None)
    budget = getattr(args, "budget", None)
    if budget:
        settings = replace(settings, budgets=parse_budgets(budget))
    alert_at = getattr(args, "alert_at", None)
    if alert_at:
        settings = replace(settings, alert_at=parse_thresholds(alert_at))
    command = getattr(args, "alert_command", None)
    if command:
        settings = replace(settings, alert_command=command)
    if getattr(args, "no_bell", False):
        settings = replace(settings, bell=False)
    if getattr(args, "no_desktop", False):
        settings = replace(settings, desktop=False)
    return settings
