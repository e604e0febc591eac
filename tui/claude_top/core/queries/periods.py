"""Calendar periods in local time (days, Monday weeks, months) as epoch boundaries, for the
budgets and the cost history. Computed from the platform's local time rules, so a day across a
daylight-saving change is 23 or 25 hours long, as the user lives it."""

from __future__ import annotations

from datetime import datetime, timedelta

PERIODS = ("day", "week", "month")


def _local(t_s: float) -> datetime:
    return datetime.fromtimestamp(t_s).astimezone()


def _at_midnight(d: datetime) -> float:
    """The epoch seconds of local midnight starting `d`'s date."""
    return datetime(d.year, d.month, d.day).astimezone().timestamp()


def period_start(period: str, t_s: float) -> int:
    """The start (epoch s) of the local day, week (Monday) or month holding `t_s`."""
    d = _local(t_s)
    if period == "week":
        d = d - timedelta(days=d.weekday())
    elif period == "month":
        d = d.replace(day=1)
    elif period != "day":
        raise ValueError(f"unknown period {period!r}")
    return int(_at_midnight(d))


def next_start(period: str, start_s: float) -> int:
    """The start of the period after the one starting at `start_s`."""
    d = _local(start_s)
    if period == "day":
        d = d + timedelta(days=1, hours=12)  # noon tomorrow: past any DST shift
    elif period == "week":
        d = d + timedelta(days=7, hours=12)
    elif period == "month":
        d = (d.replace(day=28) + timedelta(days=4)).replace(day=1, hour=12)
    else:
        raise ValueError(f"unknown period {period!r}")
    return period_start(period, d.timestamp())


def last_periods(period: str, n: int, now_s: float) -> list[tuple[int, int]]:
    """The last `n` periods up to and including the current one: (start, end) epoch seconds,
    oldest first."""
    starts = [period_start(period, now_s)]
    while len(starts) < n:
        starts.append(period_start(period, starts[-1] - 1))
    starts.reverse()
    return [(s, next_start(period, s)) for s in starts]


def label(period: str, start_s: float) -> str:
    """`2026-12-05`, `2026-W49` (ISO week), `2026-12`."""
    d = _local(start_s + 43200)  # noon: the period's own date whatever the DST shift
    if period == "day":
        return d.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = d.isocalendar()
        return f"{year}-W{week:02d}"
    return d.strftime("%Y-%m")
