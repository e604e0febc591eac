"""JSON for what crosses the control API, round-tripping what the queries return: datetimes,
arrays of durations, span trees, filters, the limits and cost history (with the settings
they are asked with), bytes and decimals come back as they went.

A value JSON cannot hold is written as `{"$t": kind, "v": value}`; a dict that happens to have a
"$t" key is written as a tagged list of pairs, so nothing is read back as something else.
"""

from __future__ import annotations

import dataclasses
import json
from array import array
from datetime import datetime
from decimal import Decimal
from typing import Any

from claude_top.core.budgets import LimitSettings
from claude_top.core.queries.filters import Filter
from claude_top.core.queries.history import CostHistory
from claude_top.core.queries.limits import Forecast, Limits, SessionGauge, Spent, Window
from claude_top.core.queries.spantree import TreeNode

TAG = "$t"
_RECORDS = {
    cls.__name__: cls
    for cls in (Limits, Window, Spent, Forecast, SessionGauge, CostHistory, LimitSettings)
}
"""The dataclasses that cross whole, by name (their tuples come back as tuples)."""
CONTENT_TYPE = "application/json"


def _tagged(kind: str, value: Any) -> dict:
    return {TAG: kind, "v": value}


def _plain(obj: Any) -> Any:
    """`obj` with every value JSON cannot hold tagged."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        if TAG in obj:
            return _tagged("dict", [[str(k), _plain(v)] for k, v in obj.items()])
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, datetime):
        return _tagged("datetime", obj.isoformat())
    if isinstance(obj, array):
        return _tagged("array", [obj.typecode, obj.tolist()])
    if isinstance(obj, TreeNode):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return _tagged("tree", _plain(fields))
    if isinstance(obj, Filter):
        return _tagged("filter", dataclasses.asdict(obj))
    if type(obj).__name__ in _RECORDS and type(obj) is _RECORDS[type(obj).__name__]:
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        tuples = [k for k, v in fields.items() if isinstance(v, tuple)]
        return _tagged("record", [type(obj).__name__, _plain(fields), tuples])
    if isinstance(obj, bytes):
        return _tagged("bytes", obj.hex())
    if isinstance(obj, Decimal):
        return _tagged("decimal", str(obj))
    if isinstance(obj, set | frozenset):
        return _tagged("set", [_plain(v) for v in obj])
    raise TypeError(f"cannot send a {type(obj).__name__} over the control API")


def _revive(doc: dict) -> Any:
    kind = doc.get(TAG)
    if kind is None or set(doc) != {TAG, "v"}:
        return doc
    value = doc["v"]
    if kind == "dict":
        return dict(value)
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "array":
        typecode, items = value
        return array(typecode, items)
    if kind == "tree":
        return TreeNode(**value)
    if kind == "filter":
        return Filter(**value)
    if kind == "record":
        name, fields, tuples = value
        for k in tuples:
            fields[k] = tuple(fields[k])
        return _RECORDS[name](**fields)
    if kind == "bytes":
        return bytes.fromhex(value)
    if kind == "decimal":
        return Decimal(value)
    if kind == "set":
        return set(value)
    raise ValueError(f"unknown tagged value {kind!r}")


def dumps(obj: Any) -> bytes:
    """`obj` as JSON bytes (UTF-8)."""
    return json.dumps(_plain(obj), separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    """What `dumps` was given."""
    return json.loads(data, object_hook=_revive)
