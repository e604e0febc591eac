"""What Claude Code's transcript lines hold, read from where the last read of a file stopped.

One JSON object a line. The lines that matter for usage (Claude Code 2.1.328):

- `assistant`: one API response, or one content block of it: a response with several blocks
  is written as several lines with the same `message.id` / `requestId` and the same
  `message.usage`, so a request is keyed by its request id (the message id when there is
  none) and counted once. `<synthetic>` messages (errors Claude Code writes itself) are no
  request. `tool_use` blocks start tool calls.
- `user`: a prompt (`promptId`, text content) or tool results (`tool_result` blocks with
  `tool_use_id`, `is_error`; `permissionDecision` says who allowed the call).
- `cost-state`: the session's cumulative cost per model (`modelUsage.<model>.costUSD`), no
  timestamp: it takes the latest time of the lines before it in its file.

Lines are read in bounded pieces (a line over MAX_LINE_BYTES is skipped without being held);
only lines whose text names a type that matters are parsed in full. A last line without its
newline is read but not passed (the next read takes it whole, once it is complete). What
cannot be used is counted by reason, with file and line kept for `--verbose`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

MAX_LINE_BYTES = 16 << 20
"""Longer lines are skipped (and counted), never held whole."""
CHUNK = 1 << 20
"""Files are read this much at a time."""
TOOL_VALUE_CHARS = 400
"""Each string of a tool call's input is kept to this many characters."""
PROBLEMS_KEPT = 2000
SYNTHETIC_MODEL = "<synthetic>"
NOT_PROMPTS = (
    "[Request interrupted by user",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<local-command-caveat>",
)
"""User text lines that are Claude Code's own notes, not something the user asked."""

KNOWN_TYPES = frozenset(
    {
        "user",
        "assistant",
        "system",
        "attachment",
        "summary",
        "progress",
        "queue-operation",
        "api-request",
        "api-request-shape",
        "api-request-blob",
        "tools-used",
        "last-prompt",
        "cost-state",
        "atis-latch",
        "mode",
        "permission-mode",
        "file-history-snapshot",
        "custom-title",
        "ai-title",
        "agent-name",
        "agent-setting",
        "tag",
        "pr-link",
        "worktree-state",
        "content-replacement",
        "marble-origami-commit",
        "marble-origami-snapshot",
    }
)
"""Every line type Claude Code writes that claude-top knows; others are counted as unknown."""
_PARSED_TYPES = frozenset({"user", "assistant", "cost-state"})
_COMPACT, _SPACED = (
    tuple(
        f'"type":{sp}"{t}"'.encode()
        for t in ("assistant", "user", "attachment", "system", "progress")
    )
    for sp in ("", " ")
)
"""Line types as they appear in a line's text: the first two are read, the rest are not."""
_TYPE_PREFIXES = (b'{"type":"', b'{"type": "')
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TRANSCRIPT, OTHER = "transcript", "other"
_TRANSCRIPT_KEYS = frozenset({"type", "sessionId", "parentUuid", "uuid"})
_OTLP_KEYS = frozenset(
    {"resourceSpans", "resourceLogs", "resourceMetrics", "resource_spans", "resource_logs",
     "resource_metrics"}
)  # fmt: skip


def parse_time(text: Any) -> int | None:
    """An ISO-8601 timestamp as unix nanoseconds (None if it is not one)."""
    if not isinstance(text, str):
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    d = dt - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000


def _int(x: Any) -> int | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, float) and x == x and abs(x) < 2**62:
        return int(x)
    return None


def _str(x: Any) -> str | None:
    return x if isinstance(x, str) and x else None


def ids_from_path(path: str) -> tuple[str | None, str | None]:
    """(session id, subagent id) a transcript's path names: `<session>.jsonl`, or
    `<session>/subagents/agent-<id>.jsonl`."""
    p = Path(path)
    stem = p.stem
    if p.parent.name == "subagents":
        agent = stem.removeprefix("agent-") if stem.startswith("agent-") else stem
        return p.parent.parent.name or None, agent or None
    return stem or None, None


@dataclass
class FileState:
    """How far a file has been read: what a later read starts from (kept in
    `transcript_files`). `last_time_ns` and `prompt_id` carry what the lines after the offset
    inherit (the time a cost-state line takes, the prompt an assistant line belongs to)."""

    path: str
    size: int = 0
    mtime_ns: int = 0
    inode: int = 0
    offset: int = 0
    lines: int = 0
    last_time_ns: int | None = None
    prompt_id: str | None = None
    session_id: str | None = None
    skipped: int = 0
    kind: str | None = None
    """`transcript`, or `other` for a `.jsonl` file that is not one (never read again)."""

    def same_file(self, st: os.stat_result) -> bool:
        """The file on disk is the one read before (same inode, not shorter)."""
        return st.st_ino == self.inode and st.st_size >= self.offset

    def unchanged(self, st: os.stat_result) -> bool:
        return self.same_file(st) and st.st_size == self.size and st.st_mtime_ns == self.mtime_ns


@dataclass
class Facts:
    """What lines held, keyed so a line read twice (or a message written as several lines)
    counts once: requests by (session, request key), prompts by (session, prompt id), tool
    calls by (session, tool_use id), cost-state totals by (session, file, line, model)."""

    requests: dict[tuple[str, str], list] = field(default_factory=dict)
    prompts: dict[tuple[str, str], tuple] = field(default_factory=dict)
    tools: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    costs: dict[tuple[str, str, int, str], tuple] = field(default_factory=dict)
    sessions: dict[str, list] = field(default_factory=dict)
    """session -> [first_ns, last_ns, cwd, version]"""
    skipped: Counter = field(default_factory=Counter)
    problems: list[tuple[str, int, str]] = field(default_factory=list)
    others: list[tuple[str, str]] = field(default_factory=list)
    """Files that are not transcripts, and what they look like."""
    lines: int = 0
    bytes: int = 0

    def __len__(self) -> int:
        return len(self.requests) + len(self.prompts) + len(self.tools) + len(self.costs)

    def session_ids(self) -> set[str]:
        """Every session a fact here belongs to."""
        out = set(self.sessions)
        for facts in (self.requests, self.prompts, self.tools, self.costs):
            out.update(k[0] for k in facts)
        return out

    def skip(self, path: str, line: int, reason: str) -> None:
        self.skipped[reason] += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append((path, line, reason))

    def _session(self, sid: str, t: int | None, cwd: str | None, version: str | None) -> None:
        s = self.sessions.get(sid)
        if s is None:
            self.sessions[sid] = [t, t, cwd, version]
            return
        if t is not None:
            s[0] = t if s[0] is None else min(s[0], t)
            s[1] = t if s[1] is None else max(s[1], t)
        s[2] = cwd or s[2]
        s[3] = version or s[3]


REQUEST_COLUMNS = (
    "session_id",
    "request_key",
    "request_id",
    "message_id",
    "agent_id",
    "is_sidechain",
    "time_ns",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "prompt_id",
    "cwd",
    "version",
    "file",
    "line",
)
PROMPT_COLUMNS = ("session_id", "prompt_id", "time_ns", "text", "cwd", "file", "line")
TOOL_COLUMNS = (
    "session_id",
    "tool_use_id",
    "name",
    "input",
    "use_ns",
    "result_ns",
    "is_error",
    "prompt_id",
    "agent_id",
    "request_key",
    "decision",
    "decision_source",
)
COST_COLUMNS = ("session_id", "file", "line", "model", "cost_usd", "time_ns")
_R = {c: i for i, c in enumerate(REQUEST_COLUMNS)}
_TOKENS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_tokens", "cache_read_input_tokens"),
    ("cache_creation_tokens", "cache_creation_input_tokens"),
)


class Redaction:
    """What `--redact` keeps out of the database, applied to transcript text as to telemetry
    (`core.sources.otlp.redact`): prompts, commands and paths in a tool's input, the cwd."""

    def __init__(self, kinds: frozenset[str] = frozenset()) -> None:
        from claude_top.core.sources.otlp.redact import REDACTED, Redactor

        self.kinds = frozenset(kinds)
        self.redacted = REDACTED
        self.tools = Redactor(self.kinds) if self.kinds else None

    def prompt(self, text: str) -> str:
        return self.redacted if "prompts" in self.kinds else text

    def path(self, text: str | None) -> str | None:
        return self.redacted if text is not None and "paths" in self.kinds else text

    def tool_input(self, text: str) -> str:
        return self.tools.tool_arguments(text) if self.tools else text


def _shorten(node: Any) -> Any:
    """A tool's input with long strings cut (it is shown, not replayed)."""
    if isinstance(node, str):
        return node if len(node) <= TOOL_VALUE_CHARS else node[:TOOL_VALUE_CHARS] + "…"
    if isinstance(node, dict):
        return {k: _shorten(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_shorten(v) for v in node[:50]]
    return node


class LineReader:
    """Reads transcript files into `Facts`, from each file's `FileState` on."""

    def __init__(self, facts: Facts, redaction: Redaction | None = None) -> None:
        self.facts = facts
        self.redaction = redaction or Redaction()

    # -- files --------------------------------------------------------------------------------

    def read(
        self, path: str, state: FileState, budget: int | None = None
    ) -> tuple[FileState, bool, bool]:
        """Read `path` from `state` on (from the start if another file is there now); returns
        the new state, whether the end was reached (False: `budget` bytes were read first) and
        whether the file was another one than `state` describes. Raises OSError if the file
        cannot be read.

        The file is read in CHUNK pieces; only the lines that name a type that matters are
        copied out of them to be parsed."""
        session, agent = ids_from_path(path)
        facts = self.facts
        with open(path, "rb", buffering=0) as fh:
            st = os.fstat(fh.fileno())
            replaced = state.offset > 0 and not state.same_file(st)
            state = FileState(path, inode=st.st_ino) if not state.same_file(st) else replace(state)
            state.size, state.mtime_ns, state.inode = st.st_size, st.st_mtime_ns, st.st_ino
            if state.kind == OTHER:
                state.offset = st.st_size
                return state, True, replaced
            fh.seek(state.offset)
            buf, pos, done, eof = b"", 0, 0, False
            while budget is None or done < budget:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if eof:
                        break
                    if len(buf) - pos > MAX_LINE_BYTES:  # never held whole: skipped
                        n, rest = self._skip_long(fh, len(buf) - pos)
                        if n is None:  # still being written: skipped once complete
                            buf, pos, eof = b"", 0, True
                            break
                        state.lines += 1
                        state.offset += n
                        done += n
                        state.skipped += 1
                        facts.lines += 1
                        facts.skip(path, state.lines, f"line longer than {_size()}")
                        buf, pos = rest, 0
                        continue
                    more = fh.read(CHUNK)
                    if not more:
                        eof = True
                        continue
                    buf, pos = buf[pos:] + more, 0
                    continue
                end = nl + 1
                if end - pos > MAX_LINE_BYTES + 1:
                    state.lines += 1
                    state.offset += end - pos
                    done += end - pos
                    state.skipped += 1
                    facts.lines += 1
                    facts.skip(path, state.lines, f"line longer than {_size()}")
                    pos = end
                    continue
                if state.kind is None and end - pos > 1:
                    state.kind = self._kind(buf[pos:end], path)
                    if state.kind == OTHER:
                        state.offset = st.st_size
                        return state, True, replaced
                state.lines += 1
                state.offset += end - pos
                done += end - pos
                facts.lines += 1
                if not self._line(buf, pos, end, path, state.lines, state, session, agent):
                    state.skipped += 1
                pos = end
            facts.bytes += done
            if eof and pos < len(buf) and state.kind is not None:
                # the last line, without its newline yet: taken if it is whole JSON, and read
                # again once complete (the same facts, kept once)
                tail = replace(state)
                self._line(buf, pos, len(buf), path, state.lines + 1, tail, session, agent, True)
            at_end = eof or (pos >= len(buf) and not fh.read(1))
        if not at_end:
            state.size = -1  # a later scan reads on
        return state, at_end, replaced

    def _kind(self, first: bytes, path: str) -> str:
        """Whether the file is a transcript, from its first line."""
        doc, _ = _loads(first)
        if doc is None or _TRANSCRIPT_KEYS & doc.keys():
            return TRANSCRIPT  # a bad first line is counted as such, line by line
        if _OTLP_KEYS & doc.keys():
            why = "OTLP JSON lines, not a transcript (`claude-top import FILE` reads it)"
        else:
            why = "not a Claude Code transcript (its first line has no type or sessionId)"
        self.facts.others.append((path, why))
        return OTHER

    @staticmethod
    def _skip_long(fh, read: int) -> tuple[int | None, bytes]:
        """Read past the rest of an over-long line: its length and what follows it in the
        last piece read, or None at the end of the file before its newline."""
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                return None, b""
            nl = chunk.find(b"\n")
            if nl >= 0:
                return read + nl + 1, chunk[nl + 1 :]
            read += len(chunk)

    # -- lines --------------------------------------------------------------------------------

    def _line(
        self,
        buf: bytes,
        s: int,
        e: int,
        path: str,
        lineno: int,
        state: FileState,
        session: str | None,
        agent: str | None,
        tail: bool = False,
    ) -> bool:
        """Take the facts of the line `buf[s:e]`; False if it was skipped (and counted, unless
        `tail`)."""
        if buf.startswith(_TYPE_PREFIXES, s):
            start = buf.index(b'"', s + 8, e) + 1
            end = buf.find(b'"', start, e)
            line_type = buf[start:end].decode("utf-8", "replace") if end > 0 else None
            if line_type in KNOWN_TYPES and line_type not in _PARSED_TYPES:
                return True
        else:
            markers = _COMPACT if buf.find(b'"type":"', s, e) >= 0 else _SPACED
            if (
                buf.find(markers[0], s, e) < 0
                and buf.find(markers[1], s, e) < 0
                and any(buf.find(m, s, e) >= 0 for m in markers[2:])
            ):
                return True
        raw = buf[s:e]
        doc, problem = _loads(raw)
        if doc is None:
            if not tail and raw.strip():
                self.facts.skip(path, lineno, problem)
            return not raw.strip()
        if problem and not tail:  # read from where a later object starts
            self.facts.skip(path, lineno, problem)
        t = doc.get("type")
        if t == "assistant":
            return self._assistant(doc, path, lineno, state, session, agent, tail)
        if t == "user":
            return self._user(doc, path, lineno, state, session, agent)
        if t == "cost-state":
            return self._cost(doc, path, lineno, state, session)
        if t in KNOWN_TYPES:
            return True
        if not tail:
            what = f"unknown type {t!r}" if isinstance(t, str) else "no type"
            self.facts.skip(path, lineno, what)
        return False

    def _common(self, doc: dict, state: FileState, session: str | None) -> tuple:
        sid = _str(doc.get("sessionId")) or state.session_id or session
        t = parse_time(doc.get("timestamp"))
        if t is not None and (state.last_time_ns is None or t > state.last_time_ns):
            state.last_time_ns = t
        state.session_id = sid
        cwd = self.redaction.path(_str(doc.get("cwd")))
        return sid, t, cwd

    def _assistant(self, doc, path, lineno, state, session, agent, tail) -> bool:
        sid, t, cwd = self._common(doc, state, session)
        msg = doc.get("message")
        skip = None
        if not isinstance(msg, dict):
            skip = "assistant line without a message"
        elif msg.get("model") == SYNTHETIC_MODEL:
            return True  # Claude Code's own note (an error shown as a reply): no API request
        elif not isinstance(msg.get("usage"), dict):
            skip = "assistant line without usage"
        elif sid is None:
            skip = "line without a session id"
        if skip is None and t is None:
            t = state.last_time_ns
            if t is None:
                skip = "assistant line without a timestamp"
        rid = _str(doc.get("requestId"))
        mid = _str(msg.get("id")) if isinstance(msg, dict) else None
        key = rid or (f"msg:{mid}" if mid else None)
        if skip is None and key is None:
            skip = "assistant line without requestId or message.id"
        if skip is not None:
            if not tail:
                self.facts.skip(path, lineno, skip)
            return False
        usage = msg["usage"]
        agent_id = _str(doc.get("agentId")) or agent
        sidechain = bool(doc.get("isSidechain")) or agent is not None
        prompt = _str(doc.get("promptId")) or state.prompt_id
        version = _str(doc.get("version"))
        model = _str(msg.get("model"))
        tokens = [_int(usage.get(src)) for _, src in _TOKENS]
        f = self.facts
        k = (sid, key)
        have = f.requests.get(k)
        if have is None:
            f.requests[k] = [
                sid, key, rid, mid, agent_id, sidechain, t, model, *tokens, prompt, cwd,
                version, path, lineno,
            ]  # fmt: skip
        else:  # another content block of the same response: same usage, counted once
            for (col, _), v in zip(_TOKENS, tokens, strict=True):
                i = _R[col]
                if v is not None and (have[i] is None or v > have[i]):
                    have[i] = v
            if t < have[_R["time_ns"]]:
                have[_R["time_ns"]] = t
        f._session(sid, t, cwd, version)
        content = msg.get("content")
        if isinstance(content, list):
            for block in content:
                if not isinstance(block, dict) or block.get("type") != "tool_use":
                    continue
                tid = _str(block.get("id"))
                if tid is None:
                    continue
                tool = f.tools.setdefault((sid, tid), {})
                tool.update(
                    name=_str(block.get("name")),
                    input=self._tool_input(block.get("input")),
                    use_ns=t,
                    agent_id=agent_id,
                    request_key=key,
                )
                tool.setdefault("prompt_id", prompt)
        return True

    def _tool_input(self, value: Any) -> str | None:
        if value is None:
            return None
        text = orjson.dumps(_shorten(value), option=orjson.OPT_SORT_KEYS).decode()
        return self.redaction.tool_input(text)

    def _user(self, doc, path, lineno, state, session, agent) -> bool:
        sid, t, cwd = self._common(doc, state, session)
        msg = doc.get("message")
        content = msg.get("content") if isinstance(msg, dict) else None
        pid = _str(doc.get("promptId"))
        if pid is not None:
            state.prompt_id = pid
        if sid is None or t is None:
            return True  # nothing countable without them
        f = self.facts
        agent_id = _str(doc.get("agentId")) or agent
        texts: list[str] = []
        results = False
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for block in content:
                if not isinstance(block, dict):
                    continue
                kind = block.get("type")
                if kind == "text" and isinstance(block.get("text"), str):
                    texts.append(block["text"])
                elif kind == "tool_result" and (tid := _str(block.get("tool_use_id"))):
                    results = True
                    decision = doc.get("permissionDecision")
                    decision = decision if isinstance(decision, dict) else {}
                    tool = f.tools.setdefault((sid, tid), {})
                    tool.update(
                        result_ns=t,
                        is_error=block.get("is_error") is True,
                        decision=_str(decision.get("decision")),
                        decision_source=_str(decision.get("source")),
                    )
                    if pid is not None:
                        tool["prompt_id"] = pid
                    tool.setdefault("agent_id", agent_id)
        text = "\n".join(texts)
        if (
            results
            or not text
            or doc.get("isMeta")
            or doc.get("isSidechain")
            or agent is not None
            or doc.get("isCompactSummary")
            or doc.get("isVisibleInTranscriptOnly")
            or text.startswith(NOT_PROMPTS)
        ):
            return True
        if pid is None:  # before prompt ids: the line's own id stands for it
            uuid = _str(doc.get("uuid"))
            if uuid is None:
                return True
            pid = f"uuid:{uuid}"
            state.prompt_id = pid
        if (sid, pid) not in f.prompts:
            f.prompts[(sid, pid)] = (sid, pid, t, self.redaction.prompt(text), cwd, path, lineno)
        f._session(sid, t, cwd, _str(doc.get("version")))
        return True

    def _cost(self, doc, path, lineno, state, session) -> bool:
        sid = _str(doc.get("sessionId")) or state.session_id or session
        usage = doc.get("modelUsage")
        if sid is None or not isinstance(usage, dict):
            self.facts.skip(path, lineno, "cost-state line without a session or modelUsage")
            return False
        t = parse_time(doc.get("timestamp")) or state.last_time_ns
        for model, u in usage.items():
            cost = u.get("costUSD") if isinstance(u, dict) else None
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                self.facts.costs[(sid, path, lineno, model)] = (
                    sid, path, lineno, model, float(cost), t,
                )  # fmt: skip
        return True


def _loads(raw: bytes) -> tuple[dict | None, str]:
    """The line's JSON object (None if there is none) and what was wrong with the line.

    JSON that orjson refuses but JavaScript writes (a lone surrogate escape, from a string cut
    mid-character) and bytes that are not UTF-8 are read with the standard library. A line
    that starts with the remains of one never finished (a crash mid-write) is read from where
    the next object starts, and the remains are reported."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            doc = _clean(json.loads(raw.decode("utf-8", "replace")))
        except ValueError:
            doc = _after_remains(raw)
            if doc is None:
                return None, _why(raw)
            return doc, "unfinished line (followed by a whole one)"
    if not isinstance(doc, dict):
        return None, "not a JSON object"
    return doc, ""


def _clean(node: Any) -> Any:
    """Strings without lone surrogates (U+FFFD instead): they cannot be stored as UTF-8."""
    if isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            return node.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return node
    if isinstance(node, dict):
        return {_clean(k): _clean(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _after_remains(raw: bytes) -> dict | None:
    start = raw.find(b'{"', 1)
    tries = 0
    while start > 0 and tries < 8:
        try:
            doc = orjson.loads(raw[start:])
        except orjson.JSONDecodeError:
            start = raw.find(b'{"', start + 1)
            tries += 1
            continue
        return doc if isinstance(doc, dict) else None
    return None


def _size() -> str:
    n = MAX_LINE_BYTES
    return f"{n >> 20} MB" if n >= 1 << 20 else f"{n >> 10} kB"


def _why(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 and not JSON"
    return "malformed JSON"
