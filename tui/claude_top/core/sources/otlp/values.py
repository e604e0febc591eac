"""Attribute values as the typed columns want them: senders disagree on types (Claude Code
sends `"42"` and `"true"`), so numbers and booleans are coerced, and what cannot be read is None."""

from __future__ import annotations

import json
import math
from typing import Any

INT64_MAX = (1 << 63) - 1
_INT64_MAX = INT64_MAX


def to_int(x: Any) -> int | None:
    """Coerce an attribute to int: ints, integral floats and numeric strings."""
    if x is None or isinstance(x, bool):
        return None if x is None else int(x)
    if isinstance(x, int):
        return x if -_INT64_MAX <= x <= _INT64_MAX else None
    if isinstance(x, float):
        return int(x) if math.isfinite(x) and abs(x) <= _INT64_MAX else None
    if isinstance(x, str):
        try:
            return to_int(int(x))
        except ValueError:
            try:
                return to_int(float(x))
            except ValueError:
                return None
    return None


def to_float(x: Any) -> float | None:
    """Coerce an attribute to a finite float."""
    if x is None or isinstance(x, bool):
        return None
    if isinstance(x, int | float):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, str):
        try:
            f = float(x)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def to_bool(x: Any) -> bool | None:
    """Coerce an attribute to bool: bools, "true"/"false", 1/0."""
    if isinstance(x, bool):
        return x
    if isinstance(x, str):
        s = x.strip().lower()
        if s in ("true", "1", "yes"):
            return True
        if s in ("false", "0", "no"):
            return False
        return None
    if isinstance(x, int | float):
        return bool(x)
    return None


def to_str(x: Any) -> str | None:
    if x is None:
        return None
    if isinstance(x, str):
        return x
    return json.dumps(x, ensure_ascii=False)


def count(x: Any) -> int | None:
    """A token count, strictly: a non-negative whole number (int, integral float or numeric
    string); None for anything else (missing, negative, fractional, text, bool)."""
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, str):
        s = x.strip()
        if s.isascii() and s.isdigit():
            x = int(s)
        else:
            try:
                x = float(s)
            except ValueError:
                return None
    if isinstance(x, float):
        if not math.isfinite(x) or not x.is_integer():
            return None
        x = int(x)
    if isinstance(x, int) and 0 <= x <= INT64_MAX:
        return x
    return None
