"""A tool call: its tool, blocked_on_user and execution spans, decision and result events and
code-edit deltas; the input each tool is given; and the subagent a Task tool runs."""

from __future__ import annotations

import random
from typing import Any

from claude_top.demo.catalog import (
    BASH,
    FILES,
    GLOBS,
    GREPS,
    LANGUAGES,
    MS,
    SUBAGENT_TOOLS,
    TOOLS,
    URLS,
    BashCommand,
)
from claude_top.demo.llm import llm_request
from claude_top.demo.process import compact_json
from claude_top.demo.turn import Turn


def tool_call(
    turn: Turn,
    name: str,
    parent: bytes,
    agent: tuple[str, str] | None = None,
    under_task: str | None = None,
) -> None:
    """A tool call: tool span, blocked_on_user and execution spans, decision/result events."""
    rng = turn.rng
    force_fail = name.endswith("!")
    name = name.rstrip("!")
    spec = TOOLS[name]
    tool_use_id = "toolu_" + rng.randbytes(10).hex()
    tool_span, blocked_span, exec_span = turn.span_id(), turn.span_id(), turn.span_id()
    start = turn.t
    # permission: the config allows most; sometimes a human is asked
    if spec.asks and agent is None and rng.random() < 0.25:
        source, wait = "user_temporary", turn.lognormal_ms(2500, 0.7, 120_000)
    else:
        source, wait = "config", turn.lognormal_ms(8, 0.6, 200)
    blocked_end = start + wait * MS
    span_attrs: list[tuple[str, Any]] = []
    params: dict | None = None
    detail, tool_input, error_type, error, fail_p = _tool_input(rng, turn.p.profile.project, name)
    if name == "Bash":
        cmd: BashCommand = detail
        span_attrs = [
            ("full_command", cmd.command),
            ("bash_command_class", cmd.command_class),
            ("bash_argv0", cmd.command.split()[0]),
        ]
        params = {
            "bash_command": cmd.command.split()[0],
            "full_command": cmd.command,
            "description": cmd.description,
        }
        exec_ms = turn.lognormal_ms(cmd.median_ms, cmd.sigma)
    elif name == "Task":
        exec_ms = 0
    else:
        if isinstance(detail, str):
            span_attrs = [("file_path", detail)]
        exec_ms = turn.lognormal_ms(spec.median_ms, spec.sigma)
    failed = force_fail or rng.random() < fail_p
    tag = [] if agent is None else [("agent_id", agent[0]), ("parent_agent_id", agent[1])]
    decision = [
        ("decision", "accept"),
        ("source", source),
        ("tool_name", name),
        ("tool_use_id", tool_use_id),
        ("tool_source", "builtin"),
    ]
    if params is not None:
        decision.append(("tool_parameters", compact_json(params)))
    decision.append(("permission_mode", "default"))
    turn.event(blocked_end, "tool_decision", decision, blocked_span)
    if name in ("Edit", "Write", "NotebookEdit"):
        turn.p.add_delta(
            blocked_end,
            "claude_code.code_edit_tool.decision",
            (
                ("decision", "accept"),
                ("source", source),
                ("tool_name", name),
                ("language", _language(str(detail))),
            ),
            1.0,
        )
    turn.span(
        "claude_code.tool.blocked_on_user",
        blocked_span,
        tool_span,
        start,
        blocked_end,
        [("duration_ms", wait), ("decision", "accept"), ("source", source), *tag],
        under_task=under_task,
        agent_id=None if agent is None else agent[0],
    )
    exec_start = blocked_end + turn.ms(0.2, 2)
    agent_id = ""
    if name == "Task":
        turn.t = exec_start
        agent_id = "a" + rng.randbytes(8).hex()
        _subagent(turn, tool_span, agent_id)
        exec_end = turn.t
        exec_ms = (exec_end - exec_start) // MS
    else:
        exec_end = exec_start + exec_ms * MS
    exec_attrs: list[tuple[str, Any]] = [
        ("tool_use_id", tool_use_id),
        ("gen_ai.tool.call.id", tool_use_id),
        ("duration_ms", exec_ms),
        ("success", not failed),
    ]
    if failed:
        exec_attrs += [
            ("error.type", "tool_error"),
            ("error", error),
            ("error_class", error_type),
        ]
    turn.span(
        "claude_code.tool.execution",
        exec_span,
        tool_span,
        exec_start,
        exec_end,
        [*exec_attrs, *tag],
        error=error if failed else None,
        under_task=under_task,
        agent_id=None if agent is None else agent[0],
    )
    result = [
        ("tool_name", name),
        ("tool_use_id", tool_use_id),
        ("success", "false" if failed else "true"),
        ("duration_ms", str(exec_ms)),
    ]
    if failed:
        result += [("error_type", error_type), ("error", error)]
    if params is not None:
        result.append(("tool_parameters", compact_json(params)))
    result += [
        ("tool_input", tool_input),
        ("tool_input_size_bytes", str(len(tool_input.encode()))),
    ]
    if not failed:
        result.append(("tool_result_size_bytes", str(turn.lognormal_ms(900, 1.2, 400_000))))
    turn.event(
        exec_end,
        "tool_result",
        result,
        tool=name,
        success=not failed,
        duration_ms=exec_ms,
    )
    if name in ("Edit", "Write") and not failed:
        model = turn.p.profile.model
        added = rng.randrange(1, 60)
        removed = 0 if name == "Write" else rng.randrange(0, 30)
        for kind, n in (("added", added), ("removed", removed)):
            turn.p.add_delta(
                exec_end,
                "claude_code.lines_of_code.count",
                (("type", kind), ("model", model)),
                float(n),
            )
    end = exec_end + turn.ms(1, 8)
    turn.span(
        "claude_code.tool",
        tool_span,
        parent,
        start,
        end,
        [
            ("tool_name", name),
            ("tool_name_safe", name),
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", name),
            *span_attrs,
            ("tool_use_id", tool_use_id),
            ("gen_ai.tool.call.id", tool_use_id),
            ("duration_ms", (end - start) // MS),
            *tag,
        ],
        under_task=under_task,
        agent_id=None if agent is None else agent[0],
        **({"task_agent": agent_id} if name == "Task" else {}),
    )
    turn.t = end + turn.ms(1, 15)


def _tool_input(rng: random.Random, project: str, name: str) -> tuple[Any, str, str, str, float]:
    """(detail, tool_input JSON, error_type, error, failure probability) for one call."""
    spec = TOOLS[name]
    if name == "Bash":
        cmd = rng.choice(BASH)
        ti = compact_json({"command": cmd.command, "description": cmd.description})
        return cmd, ti, "ShellError", "Shell command failed", cmd.fail
    if name in ("Read", "Edit", "Write", "NotebookEdit"):
        if name == "NotebookEdit":
            path = f"{project}/notebooks/latency.ipynb"
            ti = {"notebook_path": path, "new_source": "df.describe()"}
        else:
            path = f"{project}/{rng.choice(FILES)}"
            ti = {"file_path": path}
            if name == "Edit":
                ti |= {"old_string": "timeout=5", "new_string": "timeout=30"}
            elif name == "Write":
                ti |= {"content": "# notes\n"}
        error = "String to replace not found in file." if name == "Edit" else "Tool failed"
        return path, compact_json(ti), "ToolError", error, spec.fail
    if name == "Glob":
        return None, compact_json({"pattern": rng.choice(GLOBS)}), "ToolError", "", spec.fail
    if name == "Grep":
        return None, compact_json({"pattern": rng.choice(GREPS)}), "ToolError", "", spec.fail
    if name == "WebFetch":
        ti = compact_json({"url": rng.choice(URLS), "prompt": "summarise the relevant section"})
        return None, ti, "ToolError", "Request failed with status code 503", spec.fail
    if name == "WebSearch":
        return None, compact_json({"query": "duckdb group commit"}), "ToolError", "", spec.fail
    if name == "TodoWrite":
        ti = compact_json({"todos": [{"content": "write tests", "status": "in_progress"}]})
        return None, ti, "ToolError", "", spec.fail
    if name == "BashOutput":
        return None, compact_json({"bash_id": "bash_1"}), "ToolError", "", spec.fail
    ti = compact_json(
        {
            "description": "search the codebase",
            "prompt": "find every caller of export_snapshot and summarise",
            "subagent_type": "general-purpose",
        }
    )
    return None, ti, "ToolError", "Agent failed", spec.fail


def _subagent(turn: Turn, task_span: bytes, agent_id: str) -> None:
    """A Task tool's subagent: its own llm_request and tool spans under the Task tool span."""
    rng = turn.rng
    model = "claude-haiku-4-5" if rng.random() < 0.6 else "claude-sonnet-4-5"
    agent = (agent_id, turn.p.session_id)
    start = turn.t
    uses = 0
    tokens = 0
    saved_context = turn.context
    turn.context = 9_000 + rng.randrange(3000)
    n_rounds = rng.randint(2, 4)
    for i in range(n_rounds + 1):
        last = i == n_rounds
        tokens += llm_request(turn, task_span, model, last, False, agent, task_span.hex())
        if last:
            break
        k = rng.choices((1, 2), (70, 30))[0]
        for tool in rng.choices(list(SUBAGENT_TOOLS), list(SUBAGENT_TOOLS.values()), k=k):
            tool_call(turn, tool, task_span, agent, task_span.hex())
            uses += 1
    turn.context = saved_context
    turn.event(
        turn.t,
        "subagent_completed",
        [
            ("agent_type", "general-purpose"),
            ("agent_id", agent_id),
            ("model", model),
            ("total_tokens", tokens),
            ("total_tool_uses", uses),
            ("duration_ms", (turn.t - start) // MS),
        ],
    )


def _language(path: str) -> str:
    ext = path.rsplit(".", 1)[-1] if "." in path else ""
    return LANGUAGES.get(ext, "Plain text")
