"""OTLP/JSON conversion alone: records/s from JSON bytes to the parsed request, in one thread.

Compares, on the same bodies (bench/ingest.py's Claude-Code-shaped exports as OTLP/JSON):

- json_format: what `decode.parse_json` did before core.otlp_json: json.loads, hex ids
  rewritten to base64, protobuf's pure-Python `json_format.ParseDict`;
- otlp_json: `decode.parse_json` now (orjson, the wire encoding, the C parser);
- protobuf: parsing the same requests' protobuf bytes, the ceiling of a Python receiver.

Each figure is the best of `--repeat` passes over the bodies.

    python bench/json_convert.py [--records 20480] [--batch 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import SIGNALS, UNIT, make_batches, to_json_bodies

ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


def json_format_parse(signal_: str, body: bytes):
    """parse_json as it was (json_format after rewriting the hex ids to base64)."""
    from google.protobuf import json_format

    from claude_top.core.sources.otlp.decode import REQUEST_TYPES

    def rewrite(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ID_KEYS and isinstance(value, str):
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                elif isinstance(value, dict | list):
                    rewrite(value)
        elif isinstance(node, list):
            for item in node:
                if isinstance(item, dict | list):
                    rewrite(item)

    doc = json.loads(body)
    rewrite(doc)
    return json_format.ParseDict(doc, REQUEST_TYPES[signal_](), ignore_unknown_fields=True)


def rate(fn, bodies: list[bytes], records: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for body in bodies:
            fn(body)
        best = min(best, time.perf_counter() - t)
    return records / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=20480)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from claude_top.core.sources.otlp.decode import REQUEST_TYPES, parse_json

    print(f"machine  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the run")
    print(f"{'signal':8} {'unit':14} {'kB/export':>9} {'json_format/s':>14} {'otlp_json/s':>12} "
          f"{'speed-up':>8} {'protobuf/s':>11}")  # fmt: skip
    for signal_ in SIGNALS:
        pb = make_batches(args.records, args.batch, signal_=signal_)
        bodies = to_json_bodies(pb, signal_)
        for body in bodies[:2]:
            assert parse_json(signal_, body)[1] == json_format_parse(signal_, body)
        old = rate(partial(json_format_parse, signal_), bodies, args.records, args.repeat)
        new = rate(partial(parse_json, signal_), bodies, args.records, args.repeat)
        ceiling = rate(REQUEST_TYPES[signal_].FromString, pb, args.records, args.repeat)
        kb = sum(map(len, bodies)) / len(bodies) / 1e3
        print(f"{signal_:8} {UNIT[signal_]:14} {kb:9.0f} {old:14,.0f} {new:12,.0f} "
              f"{new / old:7.1f}x {ceiling:11,.0f}")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} after the run")


if __name__ == "__main__":
    main()
