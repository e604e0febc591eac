"""A turn's span tree: from its spans (with each llm_request's cost from its api_request event),
or rebuilt from its events when the session sent no spans."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from claude_top.core import format as fmt
from claude_top.core.names import (
    API_ERROR,
    API_REQUEST,
    BLOCKED_ON_USER,
    CLAUDE_CODE,
    INTERACTION,
    LLM_REQUEST,
    STATUS_ERROR,
    TOOL_DECISION,
    TOOL_EXECUTION,
    TOOL_RESULT,
    TOOL_SPAN,
    USER_PROMPT,
)
from claude_top.core.queries.filters import (
    as_datetime,
    dicts,
)
from claude_top.core.schema import COST_ESTIMATE, SOURCE_TRANSCRIPT

# --- span tree -----------------------------------------------------------------------------


@dataclass
class TreeNode:
    """One node of a turn's tree: a span, or an event standing in for one."""

    key: str
    name: str
    kind: str
    label: str
    duration_ms: float | None
    is_error: bool
    attributes: dict
    children: list[TreeNode] = field(default_factory=list)
    start_ns: int | None = None

    def walk(self):
        """This node and every descendant, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()


def _kind(name: str) -> str:
    short = name.removeprefix("claude_code.")
    return short.removeprefix("tool.") if short.startswith("tool.") else short


def _ms(ms: float | None) -> str:
    return "" if ms is None else fmt.duration_ms(ms)


def _join(*parts: Any) -> str:
    return "  ".join(str(x) for x in parts if x not in (None, ""))


def _tokens(inp: Any, out: Any) -> str | None:
    if inp is None and out is None:
        return None
    shown = ["?" if n is None else fmt.count(n) for n in (inp, out)]
    return f"{shown[0]}/{shown[1]} tok"


def _cost(c: float | None, estimated: bool = False) -> str | None:
    return None if c is None else (fmt.ESTIMATE_MARK if estimated else "") + fmt.cost(c)


def _label(kind: str, a: dict, duration_ms: float | None, is_error: bool, cost: Any) -> str:
    dur = _ms(duration_ms)
    if kind == "interaction":
        prompt = a.get("user_prompt", a.get("prompt"))
        return _join("interaction", dur, f'"{fmt.one_line(prompt, 60)}"' if prompt else None)
    if kind == "llm_request":
        attempt = a.get("attempt")
        head = "llm_request " + str(a.get("model") or "?")
        if attempt is not None and str(attempt) not in ("", "1", "0"):
            head += f" attempt {attempt}"
        if a.get("agent_id"):
            head += f" [agent {str(a['agent_id'])[:12]}]"
        tok = _tokens(a.get("input_tokens"), a.get("output_tokens"))
        err = (
            ("error: " + str(a.get("error") or a.get("status_code") or "failed"))
            if is_error
            else None
        )
        return _join(head, dur, tok, _cost(cost, a.get("cost_source") == COST_ESTIMATE), err)
    if kind == "tool":
        detail = a.get("full_command") or a.get("file_path") or a.get("mcp_server_name")
        return _join(f"tool {a.get('tool_name') or '?'}", dur, fmt.one_line(detail, 50) or None)
    if kind == "blocked_on_user":
        decision = a.get("decision")
        source = a.get("source")
        what = f" {decision} ({source})" if decision and source else f" {decision or ''}"
        return _join("blocked_on_user" + what.rstrip(), dur)
    if kind == "execution":
        state = "error: " + str(a.get("error") or "failed") if is_error else "ok"
        return _join("execution", dur, state)
    if kind == "event":
        return _join(str(a.get("event.name") or kind), dur, "error" if is_error else None)
    return _join(kind, dur, "error" if is_error else None)


def _loads(s: str | None) -> dict:
    if not s:
        return {}
    try:
        d = json.loads(s)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


TURN_MARGIN_NS = 60 * 10**9
"""Slack around a turn's known time range when reading its rows (clock skew between records)."""


def _between(col: str, span: tuple[int | None, int | None]) -> str:
    lo, hi = span
    if lo is None or hi is None:
        return "TRUE"
    return f"{col} BETWEEN {int(lo) - TURN_MARGIN_NS} AND {int(hi) + TURN_MARGIN_NS}"


def _turn_range(
    cur: duckdb.DuckDBPyConnection, session_id: str, key: str, traces: list[str]
) -> tuple[int | None, int | None]:
    """When a turn's rows were made, from the rollups: its prompt's events and its traces'
    spans. Reads of the rows are bounded by it, so DuckDB skips every row group outside."""
    return cur.execute(
        """
SELECT min(lo), max(hi) FROM (
  SELECT start_ns AS lo, end_ns AS hi FROM prompt_turns WHERE session_id = $s AND prompt_id = $k
  UNION ALL
  SELECT first_ns, start_ns + CAST(coalesce(duration_ms, 0) * 1e6 AS BIGINT)
  FROM trace_turns WHERE session_id = $s AND trace_id IN (SELECT unnest($t::VARCHAR[])))
""",
        {"s": session_id, "k": key, "t": traces},
    ).fetchone()


def turn_traces(
    cur: duckdb.DuckDBPyConnection, session_id: str, key: str, when: str = "TRUE"
) -> list[str]:
    """The trace ids of a turn (its events name them: those matching `when`), or the key
    itself for a turn known only by its spans."""
    rows = cur.execute(
        "SELECT DISTINCT trace_id FROM events WHERE session_id = $s AND prompt_id = $p "
        f"AND trace_id IS NOT NULL AND {when}",
        {"s": session_id, "p": key},
    ).fetchall()
    return [r[0] for r in rows] or [key]


def span_tree(
    cur: duckdb.DuckDBPyConnection, session_id: str, prompt_id: str
) -> tuple[list[TreeNode], str]:
    """The tree of one turn and where it came from: "spans", or "events" when no span exists
    ("transcript" when those events all come from Claude Code's transcript files).

    `prompt_id` is a turn's `key`: a prompt id, or a trace id for a turn known only by spans.
    """
    prompt_span = _turn_range(cur, session_id, prompt_id, [])
    traces = turn_traces(cur, session_id, prompt_id, _between("time_ns", prompt_span))
    span = _turn_range(cur, session_id, prompt_id, traces)
    span_rows = dicts(
        cur.execute(
            f"""
SELECT trace_id, span_id, parent_span_id, name, role, start_ns, end_ns, duration_ms, status_code,
  status_message, session_id, model, tool_name, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, success, attempt, agent_id, parent_agent_id, attributes, agent,
  tool_use_id
FROM spans WHERE trace_id IN (SELECT unnest($t::VARCHAR[])) AND {_between("start_ns", span)}
ORDER BY start_ns, span_id
""",
            {"t": traces},
        )
    )
    events = dicts(
        cur.execute(
            f"""
SELECT time_ns, model, cost_usd, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, duration_ms, attributes, name, trace_id, span_id, sequence, prompt_id,
  tool_name, tool_use_id, success, decision, error, attempt, uid, kind, source, cost_source
FROM events WHERE session_id = $s AND (prompt_id = $p OR (prompt_id IS NULL AND
  trace_id IN (SELECT unnest($t::VARCHAR[])))) AND {_between("time_ns", span)}
ORDER BY time_ns, sequence
""",
            {"s": session_id, "p": prompt_id, "t": traces},
        )
    )
    return build_tree(prompt_id, span_rows, events)


def build_tree(key: str, span_rows: list[dict], events: list[dict]) -> tuple[list[TreeNode], str]:
    """A turn's tree from its span rows (oldest first) and its events (in time order), with the
    columns `span_tree` reads, whichever store they came from."""
    if not span_rows:
        from_transcript = events and all(e.get("source") == SOURCE_TRANSCRIPT for e in events)
        return _tree_from_events(key, events), SOURCE_TRANSCRIPT if from_transcript else "events"
    if any(r.get("agent", CLAUDE_CODE) != CLAUDE_CODE for r in span_rows):
        return _other_agent_tree(key, span_rows, events), "spans"
    roots = _tree_from_spans(span_rows, [e for e in events if e["kind"] == API_REQUEST])
    if not any(r.kind == "interaction" for r in roots):
        roots = [_pending_root(key, events, roots)]
    return roots, "spans"


def _fold(rows: list[dict]) -> list[dict]:
    """Only the spans with a role in the turn, each under its nearest ancestor with one: another
    agent's internal spans (Codex sends hundreds a turn) folded away."""
    by_id = {r["span_id"]: r for r in rows}
    out = []
    for r in rows:
        if r["role"] is None:
            continue
        parent = r["parent_span_id"]
        seen: set[str] = set()
        while parent in by_id and by_id[parent]["role"] is None and parent not in seen:
            seen.add(parent)
            parent = by_id[parent]["parent_span_id"]
        out.append({**r, "parent_span_id": parent if parent in by_id else None})
    return out


def _other_agent_tree(key: str, rows: list[dict], events: list[dict]) -> list[TreeNode]:
    """Another agent's turn from its spans, folded to turn -> model request -> tool ->
    execution. Each model request shows its api_request event's tokens and cost; a tool whose
    call sent no span (Gemini CLI's rejected calls) is built from its events; an agent that
    sends no span for the whole turn gets a root built from the turn's prompt."""
    near: dict[str, set[str]] = {}  # a tool or execution span's id, its parent's, its children's
    by_parent: dict[str | None, list[dict]] = {}
    for r in rows:
        by_parent.setdefault(r["parent_span_id"], []).append(r)
    for r in rows:
        if r["role"] in (TOOL_SPAN, TOOL_EXECUTION):
            ids = {r["span_id"], r["parent_span_id"]}
            ids.update(c["span_id"] for c in by_parent.get(r["span_id"], ()))
            near[r["span_id"]] = {i for i in ids if i}
    tool_events = [e for e in events if e["kind"] == TOOL_RESULT]
    results: dict[str, dict] = {}
    for e in tool_events:
        for r in rows:
            if r["span_id"] in near and (
                e["span_id"] in near[r["span_id"]]
                or (e["tool_use_id"] and e["tool_use_id"] == r["tool_use_id"])
            ):
                results.setdefault(r["span_id"], e)
    folded = _fold(rows)
    roots = _tree_from_spans(folded, [e for e in events if e["kind"] == API_REQUEST], results)
    matched = {id(e) for e in results.values()}
    loose = [
        _tool_from_events(e["tool_use_id"] or f"uid:{e['uid'].hex()}", {"result": e})
        for e in tool_events
        if id(e) not in matched
    ]
    turn = next((r for r in roots if r.kind == INTERACTION), None)
    if turn is None:
        return [_turn_root(key, events, roots + loose)]
    prompt_ev = next((e for e in events if e["kind"] == USER_PROMPT), None)
    prompt = _loads(prompt_ev["attributes"]).get("prompt") if prompt_ev else None
    if prompt and "prompt" not in turn.attributes:
        turn.attributes["prompt"] = prompt
        turn.label = _label(INTERACTION, turn.attributes, turn.duration_ms, False, None)
    turn.children.extend(r for r in [*roots, *loose] if r is not turn)
    turn.children.sort(key=lambda n: (n.start_ns is None, n.start_ns or 0))
    return [turn]


def _turn_root(key: str, events: list[dict], children: list[TreeNode]) -> TreeNode:
    """The root of a turn whose agent sends no span for the whole turn: its prompt, from the
    first record to the last."""
    prompt_ev = next((e for e in events if e["kind"] == USER_PROMPT), None)
    attrs = {"prompt.id": key, **(_loads(prompt_ev["attributes"]) if prompt_ev else {})}
    starts = [c.start_ns for c in children if c.start_ns is not None]
    ends = [c.start_ns + int((c.duration_ms or 0) * 1e6) for c in children if c.start_ns]
    starts += [e["time_ns"] for e in events]
    ends += [e["time_ns"] for e in events]
    start = min(starts) if starts else None
    dur = (max(ends) - start) / 1e6 if start is not None else None
    children.sort(key=lambda n: (n.start_ns is None, n.start_ns or 0))
    return TreeNode(
        key=f"turn:{key}",
        name=INTERACTION,
        kind="interaction",
        label=_label("interaction", attrs, dur, False, None),
        duration_ms=dur,
        is_error=False,
        attributes=attrs,
        children=children,
        start_ns=start,
    )


def _pending_root(key: str, events: list[dict], children: list[TreeNode]) -> TreeNode:
    """Stands in for an interaction span not received yet (it is exported when the turn ends)."""
    prompt_ev = next((e for e in events if e["kind"] == USER_PROMPT), None)
    attrs = {"prompt.id": key, **(_loads(prompt_ev["attributes"]) if prompt_ev else {})}
    attrs["note"] = "interaction span not received yet (turn in progress?)"
    starts = [c.start_ns for c in children if c.start_ns is not None]
    ends = [
        c.start_ns + int((c.duration_ms or 0) * 1e6) for c in children if c.start_ns is not None
    ]
    dur = (max(ends) - min(starts)) / 1e6 if starts else None
    prompt = attrs.get("prompt")
    return TreeNode(
        key=f"turn:{key}",
        name=INTERACTION,
        kind="interaction",
        label=_join(
            "interaction (in progress)",
            _ms(dur),
            f'"{fmt.one_line(prompt, 60)}"' if prompt else None,
        ),
        duration_ms=dur,
        is_error=False,
        attributes=attrs,
        children=children,
        start_ns=min(starts) if starts else None,
    )


def _pair_costs(llm: list[dict], api: list[dict]) -> dict[str, dict]:
    """llm_request span -> its api_request event: same model and tokens, else same order."""
    out: dict[str, dict] = {}
    used: set[int] = set()
    tok = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")
    for s in llm:
        for i, e in enumerate(api):
            if i not in used and e["model"] == s["model"] and all(e[k] == s[k] for k in tok):
                out[s["span_id"]] = e
                used.add(i)
                break
    rest_s = [s for s in llm if s["span_id"] not in out]
    rest_e = [e for i, e in enumerate(api) if i not in used]
    if rest_s and len(rest_s) == len(rest_e):
        out.update({s["span_id"]: e for s, e in zip(rest_s, rest_e, strict=True)})
    return out


def _tree_from_spans(
    rows: list[dict], api: list[dict], results: dict[str, dict] | None = None
) -> list[TreeNode]:
    """Nodes of the spans as they nest. Another agent's spans (`results`: the tool_result
    event of a tool or execution span) take their typed model, tool and tokens, their
    request's tokens and their tool's outcome from their events."""
    paired = _pair_costs([r for r in rows if r["role"] == LLM_REQUEST], api)
    nodes: dict[str, TreeNode] = {}
    for r in rows:
        a = _loads(r["attributes"])
        kind = r["role"] or _kind(r["name"])
        is_error = r["status_code"] == STATUS_ERROR or r["success"] is False
        cost = None
        ev = paired.get(r["span_id"])
        if results is not None:
            for col in ("model", "tool_name", "attempt"):
                if r.get(col) is not None:
                    a.setdefault(col, r[col])
            if ev is not None:
                for col in ("input_tokens", "output_tokens", "cache_read_tokens"):
                    a.setdefault(col, ev[col])
            outcome = results.get(r["span_id"])
            if outcome is not None:
                a.setdefault("tool_name", outcome["tool_name"])
                for k, v in _tool_detail(_loads(outcome["attributes"])).items():
                    a.setdefault(k, v)
                if outcome["success"] is False:
                    is_error = True
                    a.setdefault("error", outcome["error"] or "failed")
        if ev is not None:
            cost = ev["cost_usd"]
            a.setdefault("cost_usd", cost)
            if ev.get("cost_source") is not None:
                a.setdefault("cost_source", ev["cost_source"])
        info = {
            "span.name": r["name"],
            "trace_id": r["trace_id"],
            "span_id": r["span_id"],
            "parent_span_id": r["parent_span_id"],
            "status_code": r["status_code"],
            "status_message": r["status_message"],
            "start": as_datetime(r["start_ns"]).isoformat() if r["start_ns"] else None,
        }
        nodes[r["span_id"]] = TreeNode(
            key=f"{r['trace_id']}:{r['span_id']}",
            name=r["name"],
            kind=kind,
            label=_label(kind, a, r["duration_ms"], is_error, cost),
            duration_ms=r["duration_ms"],
            is_error=is_error,
            attributes={**info, **a},
            start_ns=r["start_ns"],
        )
    roots: list[TreeNode] = []
    for r in rows:
        node = nodes[r["span_id"]]
        parent = nodes.get(r["parent_span_id"]) if r["parent_span_id"] else None
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent.children.append(node)
    return roots


def _event_node(e: dict, kind: str, name: str, start_ns: int | None, dur: float | None) -> TreeNode:
    a = _loads(e["attributes"])
    for col in ("model", "input_tokens", "output_tokens", "cost_source"):
        if e.get(col) is not None:  # another agent names them its own way
            a.setdefault(col, e[col])
    is_error = e["success"] is False or e["kind"] == API_ERROR
    return TreeNode(
        key=f"event:{e['uid'].hex()}",
        name=name,
        kind=kind,
        label=_label(kind, a, dur, is_error, e["cost_usd"]),
        duration_ms=dur,
        is_error=is_error,
        attributes={"event.name": e["name"], **a},
        start_ns=start_ns,
    )


def _minus(t: int, ms: float | None) -> int:
    return t - int(ms * 1e6) if ms is not None else t


def _tree_from_events(key: str, events: list[dict]) -> list[TreeNode]:
    """The span tree's shape rebuilt from one turn's events (traces not enabled)."""
    if not events:
        return []
    first, last = events[0]["time_ns"], events[-1]["time_ns"]
    prompt_ev = next((e for e in events if e["kind"] == USER_PROMPT), None)
    root_attrs = {"prompt.id": key, **(_loads(prompt_ev["attributes"]) if prompt_ev else {})}
    root_dur = (last - first) / 1e6
    root = TreeNode(
        key=f"turn:{key}",
        name=INTERACTION,
        kind="interaction",
        label=_label("interaction", root_attrs, root_dur, False, None),
        duration_ms=root_dur,
        is_error=False,
        attributes=root_attrs,
        start_ns=first,
    )
    tools: dict[str, dict[str, dict]] = {}
    order: list[tuple[int, TreeNode | str]] = []
    for e in events:
        name, kind = e["name"], e["kind"]
        if kind in (TOOL_DECISION, TOOL_RESULT):
            tid = e["tool_use_id"] or f"uid:{e['uid'].hex()}"
            if tid not in tools:
                tools[tid] = {}
                order.append((e["time_ns"], tid))
            tools[tid]["decision" if kind == TOOL_DECISION else "result"] = e
        elif kind in (API_REQUEST, API_ERROR):
            dur = e["duration_ms"]
            start = _minus(e["time_ns"], dur)
            order.append((start, _event_node(e, "llm_request", LLM_REQUEST, start, dur)))
        elif kind != USER_PROMPT:
            order.append((e["time_ns"], _event_node(e, "event", name, e["time_ns"], None)))
    for i, (t, item) in enumerate(order):
        if isinstance(item, str):
            node = _tool_from_events(item, tools[item])
            order[i] = (node.start_ns if node.start_ns is not None else t, node)
    order.sort(key=lambda x: x[0])
    root.children = [n for _, n in order if isinstance(n, TreeNode)]
    return [root]


def _tool_detail(attrs: dict) -> dict:
    """What a tool event says the call did: its command or file (Claude Code's tool_input /
    tool_parameters, Codex's arguments, Gemini CLI's function_args)."""
    detail: dict = {}
    for key in ("tool_input", "tool_parameters", "arguments", "function_args"):
        detail.update(_loads(attrs.get(key)))
    for key in ("command", "cmd"):
        if isinstance(detail.get(key), str):
            detail.setdefault("full_command", detail[key])
    return {k: detail[k] for k in ("full_command", "file_path") if detail.get(k)}


def _tool_from_events(tool_use_id: str, pair: dict[str, dict]) -> TreeNode:
    dec, res = pair.get("decision"), pair.get("result")
    base = res or dec
    assert base is not None
    attrs = {
        **_loads(dec["attributes"] if dec else None),
        **_loads(res["attributes"] if res else None),
    }
    attrs.pop("event.name", None)
    shown = _tool_detail(attrs)
    children: list[TreeNode] = []
    start = dec["time_ns"] if dec else _minus(res["time_ns"], res["duration_ms"])
    end = res["time_ns"] if res else dec["time_ns"]
    if dec is not None:
        children.append(_event_node(dec, "blocked_on_user", BLOCKED_ON_USER, dec["time_ns"], None))
    if res is not None:
        exec_start = _minus(res["time_ns"], res["duration_ms"])
        children.append(
            _event_node(res, "execution", TOOL_EXECUTION, exec_start, res["duration_ms"])
        )
    dur = (end - start) / 1e6 if res else None
    if (
        res is not None
        and res["duration_ms"] is not None
        and (dur is None or dur < res["duration_ms"])
    ):
        dur = res["duration_ms"]
    return TreeNode(
        key=f"tool:{tool_use_id}",
        name=TOOL_SPAN,
        kind="tool",
        label=_label("tool", {"tool_name": base["tool_name"], **shown}, dur, False, None),
        duration_ms=dur,
        is_error=False,
        attributes={"tool_use_id": tool_use_id, **attrs},
        children=children,
        start_ns=start,
    )
