"""Transcript trees derived from the real fixtures, for what the captured runs do not show.

The captured transcripts (Claude Code 2.1.328) have one content block per assistant message
and no subagent. These cases are built from their real lines, changed only where the case
needs it, and say so:

- `multi_block`: every assistant message written as several lines, one per content block
  (a thinking block and a text block first, then the original block), each line with the same
  `message.id`, `requestId` and `usage`, as Claude Code writes a multi-block response.
- `with_subagent`: the request that calls a given tool, and the user line holding its result,
  moved to `<session>/subagents/agent-<id>.jsonl` with `isSidechain: true` and `agentId`, as
  a subagent's lines are written.

Either way the requests, tokens, tool calls and cost-state totals are the run's own, so the
run's OTLP capture stays the truth.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from truth import FIXTURES

SUBAGENT_ID = "a7c3e9f1d2b4"


def _dumps(d: dict) -> str:
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False)


def copy_set(folder: str, dst: Path) -> Path:
    """A copy of a fixture set's projects folder under `dst`."""
    out = dst / "projects"
    shutil.copytree(Path(FIXTURES, folder), out)
    return out


def multi_block(folder: str, dst: Path) -> Path:
    """The set with each assistant message written one content block a line."""
    out = copy_set(folder, dst)
    for path in sorted(out.rglob("*.jsonl")):
        lines = []
        for line in path.read_text().splitlines():
            d = json.loads(line)
            if d.get("type") != "assistant":
                lines.append(line)
                continue
            for i, block in enumerate(
                [
                    {"type": "thinking", "thinking": "", "signature": "c2lnbmF0dXJl"},
                    {"type": "text", "text": "Working on it."},
                ]
            ):
                extra = json.loads(line)
                extra["message"]["content"] = [block]
                extra["uuid"] = f"{d['uuid'][:-4]}b{i:03d}"
                lines.append(_dumps(extra))
            lines.append(line)
        path.write_text("\n".join(lines) + "\n")
    return out


def with_subagent(folder: str, dst: Path, tool: str = "Read") -> Path:
    """The set with the request calling `tool` (and its result) moved to a subagent's file."""
    out = copy_set(folder, dst)
    (main,) = [p for p in out.rglob("*.jsonl") if p.parent.name != "subagents"]
    kept, moved, tool_ids = [], [], set()
    for line in main.read_text().splitlines():
        d = json.loads(line)
        content = (d.get("message") or {}).get("content")
        blocks = content if isinstance(content, list) else []
        calls = {b["id"] for b in blocks if b.get("type") == "tool_use" and b["name"] == tool}
        results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if d.get("type") == "assistant" and calls and not tool_ids:
            tool_ids |= calls
        elif not (d.get("type") == "user" and results & tool_ids):
            kept.append(line)
            continue
        d["isSidechain"] = True
        d["agentId"] = SUBAGENT_ID
        moved.append(_dumps(d))
    assert moved, f"no {tool} call in {folder}"
    sub = main.parent / main.stem / "subagents" / f"agent-{SUBAGENT_ID}.jsonl"
    sub.parent.mkdir(parents=True)
    sub.write_text("\n".join(moved) + "\n")
    (sub.parent / f"agent-{SUBAGENT_ID}.meta.json").write_text('{"agentType":"general-purpose"}')
    main.write_text("\n".join(kept) + "\n")
    return out
