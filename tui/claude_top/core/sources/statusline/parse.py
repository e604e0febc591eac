"""One status-line sample: validate what Claude Code piped to its `statusLine` command and turn
it into a `statusline_samples` row, keeping what is valid and naming what is not.

A sample that is not a JSON object is rejected whole (`SampleRejected`). Inside one, each field
is checked on its own and a bad one is dropped with a note in `problems`: a percentage that is
not a number in 0..100, a `resets_at` that is not epoch seconds (an ISO string, milliseconds)
or has already passed when the sample arrived (Claude Code drops such a window itself), a
count that is not a whole number, a string that is not one. Schema:
`claude-code-statusline.md` beside the fixtures.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from claude_top.core.schema import STATUSLINE_SAMPLES

MAX_SAMPLE_BYTES = 256 * 1024
"""A real sample is 2-3 kB; anything far larger is not one."""
EPOCH_MIN_S = 946_684_800  # 2000-01-01
EPOCH_MAX_S = 4_102_444_800  # 2100-01-01
WINDOWS = ("five_hour", "seven_day")
"""The rate-limit windows with a fixed length (`spend_limit` has a period instead)."""
WINDOW_S = {"five_hour": 5 * 3600, "seven_day": 7 * 86400}
SPEND_PERIODS = ("daily", "weekly", "monthly")
PATH_FIELDS = ("cwd", "project_dir", "transcript_path")
VIA_LIVE = "live"
VIA_SPOOL = "spool"


class SampleRejected(ValueError):
    """Nothing in the sample can be stored; the message says why."""


@dataclass
class Sample:
    """A validated sample: the typed columns, the raw JSON, and what was dropped."""

    received_ns: int
    values: dict[str, Any]
    raw: str
    problems: list[str] = field(default_factory=list)

    @property
    def uid(self) -> bytes:
        """The same sample arriving twice (a spool replayed again) is stored once."""
        h = hashlib.blake2b(digest_size=16)
        h.update(str(self.received_ns).encode())
        h.update(self.raw.encode())
        return h.digest()

    def row(self, via: str = VIA_LIVE) -> tuple:
        """The `statusline_samples` row, in the table's column order."""
        values = {
            **self.values,
            "uid": self.uid,
            "received_ns": self.received_ns,
            "via": via,
            "problems": "; ".join(self.problems) or None,
            "raw": self.raw,
        }
        return tuple(values.get(name) for name, _ in STATUSLINE_SAMPLES)

    def window(self, name: str) -> tuple[float | None, int | None]:
        """(used_percentage, resets_at) of a rate-limit window, as stored."""
        prefix = {"five_hour": "five_hour", "seven_day": "seven_day", "spend_limit": "spend"}[name]
        return self.values.get(f"{prefix}_pct"), self.values.get(f"{prefix}_resets_at")


class _Checker:
    """Reads typed values out of the sample, noting each one it has to drop."""

    def __init__(self, received_s: float) -> None:
        self.received_s = received_s
        self.problems: list[str] = []

    def drop(self, where: str, value: Any, why: str) -> None:
        shown = json.dumps(value)[:40] if not isinstance(value, str) else repr(value[:40])
        self.problems.append(f"{where}={shown}: {why}")

    def obj(self, doc: dict, key: str, where: str) -> dict:
        value = doc.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.drop(where, value, "not an object")
            return {}
        return value

    def text(self, doc: dict, key: str, where: str) -> str | None:
        value = doc.get(key)
        if value is None or isinstance(value, str):
            return value
        self.drop(where, value, "not a string")
        return None

    def number(self, doc: dict, key: str, where: str, lo: float = 0.0, hi: float = math.inf):
        value = doc.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.drop(where, value, "not a number")
            return None
        if not math.isfinite(value) or not lo <= value <= hi:
            bound = f"{lo:g}..{hi:g}" if math.isfinite(hi) else f">= {lo:g}"
            self.drop(where, value, f"outside {bound}")
            return None
        return float(value)

    def count(self, doc: dict, key: str, where: str) -> int | None:
        value = self.number(doc, key, where)
        if value is None:
            return None
        if value != int(value):
            self.drop(where, doc.get(key), "not a whole number")
            return None
        return int(value)

    def flag(self, doc: dict, key: str, where: str) -> bool | None:
        value = doc.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.drop(where, value, "not true or false")
        return None

    def epoch(self, doc: dict, key: str, where: str, *, future: bool = False) -> int | None:
        """Epoch seconds; with `future`, a time that has passed when the sample arrived is
        dropped too."""
        value = doc.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            self.drop(where, value, "not epoch seconds (a string)")
            return None
        bad = isinstance(value, bool) or not isinstance(value, int | float)
        if bad or not math.isfinite(value):
            self.drop(where, value, "not epoch seconds")
            return None
        if not EPOCH_MIN_S <= value < EPOCH_MAX_S:
            why = "milliseconds, not epoch seconds" if value >= EPOCH_MAX_S else "not epoch seconds"
            self.drop(where, value, why)
            return None
        if future and value <= self.received_s:
            self.drop(where, value, "already passed when the sample arrived")
            return None
        return int(value)


def _rate_limit(c: _Checker, limits: dict, name: str) -> tuple[float | None, int | None, dict]:
    """A window's (used_percentage, resets_at, the object); both dropped when either is bad,
    since a percentage belongs to the window its reset time names."""
    where = f"rate_limits.{name}"
    w = c.obj(limits, name, where)
    if not w:
        return None, None, w
    before = len(c.problems)
    pct = c.number(w, "used_percentage", f"{where}.used_percentage", 0.0, 100.0)
    resets = c.epoch(w, "resets_at", f"{where}.resets_at", future=True)
    if pct is None or resets is None:
        if len(c.problems) == before:
            missing = "used_percentage" if pct is None else "resets_at"
            c.problems.append(f"{where}: no {missing}")
        return None, None, w
    return pct, resets, w


def parse_sample(text: str | bytes, received_ns: int) -> Sample:
    """Validate one sample (the bytes Claude Code wrote to the command's stdin) that arrived at
    `received_ns`. Raises SampleRejected when it is not a JSON object."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SampleRejected(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if len(text) > MAX_SAMPLE_BYTES:
        raise SampleRejected(f"{len(text)} characters: larger than a status-line sample")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SampleRejected(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SampleRejected(f"a JSON {type(doc).__name__}, not an object")
    c = _Checker(received_ns / 1e9)
    v: dict[str, Any] = {}
    v["session_id"] = c.text(doc, "session_id", "session_id")
    v["prompt_id"] = c.text(doc, "prompt_id", "prompt_id")
    v["version"] = c.text(doc, "version", "version")
    v["cwd"] = c.text(doc, "cwd", "cwd")
    v["transcript_path"] = c.text(doc, "transcript_path", "transcript_path")
    model = c.obj(doc, "model", "model")
    v["model"] = c.text(model, "id", "model.id")
    v["model_name"] = c.text(model, "display_name", "model.display_name")
    ws = c.obj(doc, "workspace", "workspace")
    v["project_dir"] = c.text(ws, "project_dir", "workspace.project_dir") or c.text(
        ws, "current_dir", "workspace.current_dir"
    )

    limits = c.obj(doc, "rate_limits", "rate_limits")
    for name in WINDOWS:
        v[f"{name}_pct"], v[f"{name}_resets_at"], _ = _rate_limit(c, limits, name)
    pct, resets, spend = _rate_limit(c, limits, "spend_limit")
    v["spend_pct"], v["spend_resets_at"] = pct, resets
    if spend and pct is not None:
        v["spend_used_usd"] = c.number(spend, "used_usd", "rate_limits.spend_limit.used_usd")
        v["spend_limit_usd"] = c.number(spend, "limit_usd", "rate_limits.spend_limit.limit_usd")
        period = c.text(spend, "period", "rate_limits.spend_limit.period")
        if period is not None and period not in SPEND_PERIODS:
            c.drop("rate_limits.spend_limit.period", period, "not daily, weekly or monthly")
            period = None
        v["spend_period"] = period

    ctx = c.obj(doc, "context_window", "context_window")
    v["context_used_pct"] = c.number(
        ctx, "used_percentage", "context_window.used_percentage", 0.0, 100.0
    )
    v["context_window_size"] = c.count(ctx, "context_window_size", "context_window.size")
    v["total_input_tokens"] = c.count(ctx, "total_input_tokens", "context_window.total_input")
    v["total_output_tokens"] = c.count(ctx, "total_output_tokens", "context_window.total_output")
    usage = c.obj(ctx, "current_usage", "context_window.current_usage")
    if usage:
        parts = [
            c.count(usage, k, f"context_window.current_usage.{k}")
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        ]
        v["context_tokens"] = sum(p for p in parts if p is not None)

    cache = c.obj(doc, "prompt_cache", "prompt_cache")
    v["cache_warm"] = c.flag(cache, "warm", "prompt_cache.warm")
    v["cache_ttl"] = c.text(cache, "ttl", "prompt_cache.ttl")
    v["cache_expires_at"] = c.epoch(cache, "expires_at", "prompt_cache.expires_at")
    v["cache_hit_ratio"] = c.number(cache, "hit_ratio", "prompt_cache.hit_ratio", 0.0, 1.0)

    cost = c.obj(doc, "cost", "cost")
    v["cost_usd"] = c.number(cost, "total_cost_usd", "cost.total_cost_usd")
    v["duration_ms"] = c.number(cost, "total_duration_ms", "cost.total_duration_ms")
    v["api_duration_ms"] = c.number(cost, "total_api_duration_ms", "cost.total_api_duration_ms")
    v["lines_added"] = c.count(cost, "total_lines_added", "cost.total_lines_added")
    v["lines_removed"] = c.count(cost, "total_lines_removed", "cost.total_lines_removed")
    return Sample(received_ns, v, text, c.problems)


def redact_paths(sample: Sample) -> Sample:
    """The sample without the paths it names (`--redact paths`): the path columns emptied and
    the path fields of the raw JSON replaced, as the OTLP redaction does."""
    from claude_top.core.sources.otlp.redact import REDACTED

    values = dict(sample.values)
    for key in PATH_FIELDS:
        if values.get(key) is not None:
            values[key] = REDACTED
    doc = json.loads(sample.raw)
    for key in ("cwd", "transcript_path"):
        if isinstance(doc.get(key), str):
            doc[key] = REDACTED
    ws = doc.get("workspace")
    if isinstance(ws, dict):
        for key in ("current_dir", "project_dir"):
            if isinstance(ws.get(key), str):
                ws[key] = REDACTED
        if isinstance(ws.get("added_dirs"), list):
            ws["added_dirs"] = [REDACTED for _ in ws["added_dirs"]]
    raw = json.dumps(doc, separators=(",", ":"))
    return Sample(sample.received_ns, values, raw, sample.problems)
