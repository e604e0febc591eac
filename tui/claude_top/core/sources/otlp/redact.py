"""`--redact prompts,commands,paths`: blank sensitive attribute values in a parsed OTLP request.

Runs when an export is accepted, before its bytes are journalled, so redacted text never
reaches the database. Values become the string `<REDACTED>` (what Claude Code itself sends
for a prompt when OTEL_LOG_USER_PROMPTS is off); the lengths and sizes beside them are kept.

The keys come from Claude Code 2.1.328's captures and its monitoring reference:

- prompts: `prompt` / `prompt_text` (user_prompt event), `user_prompt` (interaction span),
  `response` (assistant_response event), the GenAI message attributes, and the text a model
  writes through a tool (`content`, `old_string`, `new_string`, `prompt` in `tool_input`).
- commands: `full_command` and `command`, also inside `tool_input` / `tool_parameters`.
  `bash_argv0` / `bash_command` (the program's name alone, `ls`) are kept unless they hold a
  whole command line.
- paths: `file_path`, `path`, `notebook_path`, `cwd`, also inside `tool_input` /
  `tool_parameters`. Free text (a command line, an error message) that mentions a path is
  covered by `commands`, not `paths`.

`tool_input` and `tool_parameters` are JSON strings: their keys are redacted one by one; one
that does not parse (Claude Code truncates long inputs) is redacted whole.
"""

from __future__ import annotations

import json
from typing import Any

REDACTED = "<REDACTED>"
KINDS = ("prompts", "commands", "paths")

# attribute keys whose value is replaced, per kind (at any depth of a kvlist or tool input)
_KEYS: dict[str, frozenset[str]] = {
    "prompts": frozenset(
        {
            "prompt",
            "prompt_text",
            "user_prompt",
            "response",
            "content",
            "old_string",
            "new_string",
            "new_source",
            "gen_ai.prompt",
            "gen_ai.completion",
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
        }
    ),
    "commands": frozenset({"full_command", "command"}),
    "paths": frozenset({"file_path", "path", "notebook_path", "cwd"}),
}
# redacted only when they hold more than a program name
_PROGRAM_KEYS = frozenset({"bash_argv0", "bash_command"})
# JSON strings holding a tool's arguments
_TOOL_ARGUMENTS = frozenset({"tool_input", "tool_parameters", "gen_ai.tool.call.arguments"})


def parse_kinds(text: str) -> frozenset[str]:
    """`prompts,commands` -> the kinds; ValueError naming the valid ones for anything else."""
    kinds = {k.strip().lower() for k in text.split(",") if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown or not kinds:
        what = f"unknown kind {', '.join(map(repr, unknown))}" if unknown else "nothing given"
        raise ValueError(f"{what}: choose from {', '.join(KINDS)} (comma-separated)")
    return frozenset(kinds)


class Redactor:
    """Redacts the chosen kinds in place; `request(...)` says whether anything changed."""

    def __init__(self, kinds: frozenset[str] | set[str]) -> None:
        self.kinds = frozenset(kinds)
        self.keys = frozenset().union(*(_KEYS[k] for k in self.kinds))
        self.programs = "commands" in self.kinds

    # -- protobuf messages ----------------------------------------------------------------

    def request(self, signal: str, request) -> bool:
        """Redact every attribute list of an Export*ServiceRequest; True if anything changed."""
        changed = False
        if signal == "traces":
            for rs in request.resource_spans:
                changed |= self._resource_scopes(rs, rs.scope_spans)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        changed |= self.attributes(span.attributes)
                        for ev in span.events:
                            changed |= self.attributes(ev.attributes)
                        for link in span.links:
                            changed |= self.attributes(link.attributes)
        elif signal == "logs":
            for rl in request.resource_logs:
                changed |= self._resource_scopes(rl, rl.scope_logs)
                for sl in rl.scope_logs:
                    for rec in sl.log_records:
                        changed |= self.attributes(rec.attributes)
                        if rec.HasField("body"):
                            changed |= self._nested(rec.body)
        else:
            for rm in request.resource_metrics:
                changed |= self._resource_scopes(rm, rm.scope_metrics)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data")
                        if kind is None:
                            continue
                        for point in getattr(metric, kind).data_points:
                            changed |= self.attributes(point.attributes)
                            for ex in getattr(point, "exemplars", ()):
                                changed |= self.attributes(ex.filtered_attributes)
        return changed

    def _resource_scopes(self, resource_x, scopes) -> bool:
        changed = self.attributes(resource_x.resource.attributes)
        for s in scopes:
            changed |= self.attributes(s.scope.attributes)
        return changed

    def attributes(self, kvs) -> bool:
        """Redact a repeated KeyValue in place."""
        changed = False
        for kv in kvs:
            changed |= self._key_value(kv.key, kv.value)
        return changed

    def _key_value(self, key: str, value) -> bool:
        which = value.WhichOneof("value")
        if key in self.keys or (self.programs and key in _PROGRAM_KEYS and _is_command(value)):
            if which is None or (which == "string_value" and value.string_value == REDACTED):
                return False
            value.string_value = REDACTED
            return True
        if key in _TOOL_ARGUMENTS and which == "string_value":
            text = self.tool_arguments(value.string_value)
            if text != value.string_value:
                value.string_value = text
                return True
            return False
        return self._nested(value)

    def _nested(self, value) -> bool:
        which = value.WhichOneof("value")
        if which == "kvlist_value":
            return self.attributes(value.kvlist_value.values)
        if which == "array_value":
            changed = False
            for item in value.array_value.values:
                changed |= self._nested(item)
            return changed
        return False

    # -- tool arguments (JSON text) -------------------------------------------------------

    def tool_arguments(self, text: str) -> str:
        """A tool's JSON arguments with the chosen keys redacted; unparseable text as a whole."""
        if not text or text == REDACTED:
            return text
        try:
            doc = json.loads(text)
        except ValueError:
            return REDACTED
        if not isinstance(doc, dict | list):
            return REDACTED
        if not self._json(doc):
            return text
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    def _json(self, node: Any) -> bool:
        changed = False
        if isinstance(node, dict):
            for key, value in node.items():
                if key in self.keys or (
                    self.programs and key in _PROGRAM_KEYS and not _is_program(value)
                ):
                    if value not in (REDACTED, None, ""):
                        node[key] = REDACTED
                        changed = True
                elif isinstance(value, dict | list):
                    changed |= self._json(value)
        elif isinstance(node, list):
            for item in node:
                if isinstance(item, dict | list):
                    changed |= self._json(item)
        return changed


def _is_program(value: Any) -> bool:
    """A bare program name (`ls`, `git`), not a command line."""
    return isinstance(value, str) and not any(c.isspace() for c in value)


def _is_command(value) -> bool:
    which = value.WhichOneof("value")
    return which is not None and not (which == "string_value" and _is_program(value.string_value))
