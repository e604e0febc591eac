"""How numbers, durations and ages read (on screen, in tree labels, in one-line status): short,
fixed precision, no clocks."""

from __future__ import annotations

NS_PER_S = 1_000_000_000


def cost(usd: float | None) -> str:
    """US dollars to 4 decimals (the precision Claude Code reports), 2 from $100."""
    if usd is None:
        return "-"
    return f"${usd:.2f}" if usd >= 100 else f"${usd:.4f}"


ESTIMATE_MARK = "~"
"""Before a cost estimated from the price table (no agent reported it)."""
_ESTIMATED = ("estimate", "mixed")


def cost_of(usd: float | None, source: str | None) -> str:
    """A cost as `cost` shows it, marked `~` when (partly) estimated, `?` when no request of
    it has a price (`source` is a session's or model's `cost_source`)."""
    if source == "none":
        return "?"
    text = cost(usd)
    return ESTIMATE_MARK + text if source in _ESTIMATED and usd is not None else text


def short_agent(agent: str | None) -> str:
    """`claude-code` -> `claude`, `gemini-cli` -> `gemini`; others as they are named."""
    if not agent:
        return "-"
    return {"claude-code": "claude", "gemini-cli": "gemini"}.get(agent, agent)


_SUFFIXES = (("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12))


def count(n: int | float | None) -> str:
    """An integer count: exact below a thousand, else three significant digits and a suffix
    (3.71k, 13.8k, 100k, 1.09M): one format at every size, at most 5 characters."""
    if n is None:
        return "-"
    n = int(n)
    sign, n = ("-" if n < 0 else ""), abs(n)
    if n < 1000:
        return f"{sign}{n}"
    for suffix, size in _SUFFIXES:
        v = n / size
        for decimals, below in ((2, 10), (1, 100), (0, 1000)):
            if round(v, decimals) < below:
                return f"{sign}{v:.{decimals}f}{suffix}"
    return f"{sign}{n / 1e12:.0f}T"


def percent(ratio: float | None) -> str:
    """A 0..1 ratio as a whole percentage."""
    if ratio is None:
        return "-"
    return f"{ratio * 100:.0f}%"


def duration_ms(ms: float | None) -> str:
    """Milliseconds: `850ms`, `1.24s`, `3m05s`."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.2f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def age(then_ns: int | None, now_ns: int) -> str:
    """How long ago: `now`, `42s`, `5m`, `3h`, `2d`."""
    if not then_ns:
        return "-"
    s = max(0, (now_ns - then_ns) // NS_PER_S)
    if s < 1:
        return "now"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def short_model(model: str) -> str:
    """`claude-sonnet-4-5` -> `sonnet-4-5`."""
    return model.removeprefix("claude-")


def short_id(session_id: str) -> str:
    """The first 8 characters of an id (a UUID's first group)."""
    return session_id[:8]


def one_line(text: object, width: int) -> str:
    """Collapse whitespace and cut to `width` characters with an ellipsis."""
    if not text:
        return ""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def plural(n: int, noun: str) -> str:
    """`1 prompt`, `2 prompts` (the count compact as in `count`)."""
    return f"{count(n)} {noun}{'' if n == 1 else 's'}"
