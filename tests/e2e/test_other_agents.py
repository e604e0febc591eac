"""End to end: the real Gemini CLI and Codex CLI, offline, sending their telemetry to
`claude-top serve` with the settings `claude-top setup --agent gemini|codex --write` wrote.

Each runs headless (`gemini -p ... --yolo`, `codex exec ...`; the pinned npm releases, see
`agent_clis.py`) in a temporary HOME against a scripted API on loopback (`gemini_api.py`,
`codex_api.py`): a shell command that succeeds, a call the agent reports as failed, a file
read, and a final text. What reaches the outside world lands on a tripwire proxy. After a
SIGTERM, `claude-top export` writes the CSVs checked here.

The expected values come from what the scripted API returned (usage per reply, the tools it
asked for, which of them must fail), never from claude-top.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_clis import CODEX, GEMINI, AgentMissing, Pinned
from loopback import LoopThread, Tripwire
from test_claude_code import claude_top_cmd, in_ci, read_csv, start_serve, wait_quiet

pytestmark = pytest.mark.e2e

FINAL = "All e2e steps done."
PROMPT = "Run the e2e checks: echo, read notes.txt, then the failing call."
NOTES = "e2e notes line\n"
AGENT_TIMEOUT_S = 120
_STRIP = ("GEMINI", "GOOGLE", "CODEX", "OPENAI", "OTEL_", "XDG_", "CLAUDE", "ANTHROPIC")


def binary(agent: Pinned) -> Path:
    try:
        return agent.ensure()
    except AgentMissing as exc:
        if in_ci():
            pytest.fail(f"CI needs {agent.name} {agent.version}: {exc}", pytrace=False)
        pytest.skip(f"{agent.name} {agent.version} unavailable: {exc}")


def hermetic_env(home: Path, tripwire: Tripwire, **extra: str) -> dict[str, str]:
    """A temporary HOME, no agent or OTel settings from the caller, every proxy a tripwire."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(_STRIP)
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy")
    }
    env.update(
        HOME=str(home),
        HTTP_PROXY=tripwire.url,
        HTTPS_PROXY=tripwire.url,
        http_proxy=tripwire.url,
        https_proxy=tripwire.url,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        **extra,
    )
    return env


@dataclass
class Run:
    """One agent's run: what its API answered, what setup wrote, what claude-top exported."""

    protocol: str
    api: object
    tripwire: Tripwire
    stdout: str
    stderr: str
    setup_out: str
    settings: Path
    sessions: list[dict[str, str]]
    models: list[dict[str, str]]
    tools: list[dict[str, str]]
    spans: list[dict[str, str]]
    events: list[dict[str, str]]
    trees: dict[str, list]
    """Each working session's turns' span trees (as the drilldown shows them), by session."""

    def kind(self, kind: str) -> list[dict]:
        return [
            {**e, "attrs": json.loads(e["attributes"])} for e in self.events if e["kind"] == kind
        ]

    def role(self, role: str) -> list[dict]:
        return [s for s in self.spans if s["role"] == role]


def run_agent(request, tmp_path_factory, agent: str, api, prepare, command) -> Run:
    """serve, `setup --agent <agent> --write` in a temp HOME, the agent, export."""
    protocol = request.param
    tmp = tmp_path_factory.mktemp(agent + "-" + re.sub(r"\W", "-", protocol))
    home, work, out = tmp / "home", tmp / "home" / "project", tmp / "export"
    work.mkdir(parents=True)
    (work / "notes.txt").write_text(NOTES)
    loop = LoopThread()
    request.addfinalizer(loop.close)
    tripwire = Tripwire()
    for server in (api, tripwire):
        loop.call(server.start())
        request.addfinalizer(lambda server=server: loop.call(server.stop()))
    db = tmp / "claude-top.duckdb"
    serve = start_serve(db, tmp / "serve.log")

    def stop_serve() -> None:
        if serve.proc.poll() is None:
            serve.proc.kill()
            serve.proc.wait()

    request.addfinalizer(stop_serve)
    env, settings = prepare(home, work, api, tripwire)
    setup = subprocess.run(
        [
            *claude_top_cmd(),
            *("setup", "--agent", agent, "--write", "--log-user-prompts"),
            *("--protocol", protocol, "--grpc-port", str(serve.grpc_port)),
            *("--http-port", str(serve.http_port)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert setup.returncode == 0, setup.stderr
    try:
        done = subprocess.run(
            command,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=AGENT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{agent} ran over {exc.timeout}s; API requests:\n{api.summary()}")
    assert done.returncode == 0, (
        f"{agent} exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}\n"
        f"API requests:\n{api.summary()}"
    )
    wait_quiet({serve.grpc_port, serve.http_port})
    serve.proc.send_signal(signal.SIGTERM)
    assert serve.proc.wait(timeout=60) == 0, serve.text()
    export = subprocess.run(
        [*claude_top_cmd(), "export", "--db", str(db), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert export.returncode == 0, export.stderr
    sessions = [s for s in read_csv(out / "sessions.csv") if s["agent"] == agent_name(agent)]
    return Run(
        protocol=protocol,
        api=api,
        tripwire=tripwire,
        stdout=done.stdout,
        stderr=done.stderr,
        setup_out=setup.stdout,
        settings=settings,
        sessions=sessions,
        models=read_csv(out / "models.csv"),
        tools=read_csv(out / "tools.csv"),
        spans=read_csv(out / "spans.csv"),
        events=read_csv(out / "events.csv"),
        trees=span_trees(db, [s["session_id"] for s in sessions if int(s["prompts"])]),
    )


def span_trees(db: Path, session_ids: list[str]) -> dict[str, list]:
    """The drilldown's trees of each session's turns, read from the stopped serve's file."""
    from claude_top.core import queries as Q
    from claude_top.core.store.database import Store

    store = Store.open(db, read_only=True)
    try:
        cur = store.cursor()
        return {
            sid: [Q.span_tree(cur, sid, t["key"]) for t in Q.turns(cur, sid)] for sid in session_ids
        }
    finally:
        store.close()


def shape(node, depth: int = 0):
    """(depth, kind, is_error) of a tree's nodes, depth first."""
    yield depth, node.kind, node.is_error
    for child in node.children:
        yield from shape(child, depth + 1)


def agent_name(agent: str) -> str:
    return {"gemini": "gemini-cli", "codex": "codex"}[agent]


def work_session(run: Run) -> dict[str, str]:
    """The one session with a prompt or a request (start-up telemetry alone is folded)."""
    working = [s for s in run.sessions if int(s["prompts"]) or int(s["api_requests"])]
    assert len(working) == 1, run.sessions
    return working[0]


# --- Gemini CLI ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gemini_bin() -> Path:
    return binary(GEMINI)


@pytest.fixture(scope="module", params=["grpc", "http/json"])
def gemini(request, gemini_bin, tmp_path_factory) -> Run:
    from gemini_api import FinalText, GeminiApi, ToolCall, Usage

    work_dir: list[Path] = []

    def script(work: Path):
        return [
            ToolCall("run_shell_command", {"command": "echo hello-e2e"}, Usage(1500, 60, 1000, 12)),
            ToolCall(
                "read_file", {"file_path": str(work / "notes.txt")}, Usage(1611, 61, 1100, 13)
            ),
            ToolCall("read_file", {"file_path": "/etc/hostname"}, Usage(1722, 62, 1200, 14), True),
            FinalText(FINAL, Usage(1833, 63, 1300, 15)),
        ]

    api = GeminiApi([])

    def prepare(home: Path, work: Path, api, tripwire):
        work_dir.append(work)
        api.script = script(work)
        settings = home / ".gemini" / "settings.json"
        settings.parent.mkdir(parents=True)
        settings.write_text(
            json.dumps(
                {
                    "security": {"auth": {"selectedType": "gemini-api-key"}},
                    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
                    "privacy": {"usageStatisticsEnabled": False},
                },
                indent=2,
            )
        )
        (home / ".gemini" / "trustedFolders.json").write_text(
            json.dumps({str(work): "TRUST_FOLDER"})
        )
        env = hermetic_env(
            home, tripwire, GEMINI_API_KEY="dummy", GOOGLE_GEMINI_BASE_URL=api.base_url
        )
        return env, settings

    return run_agent(
        request,
        tmp_path_factory,
        "gemini",
        api,
        prepare,
        [str(gemini_bin), "-p", PROMPT, "--yolo"],
    )


def test_gemini_ran_the_script_offline_with_the_settings_setup_wrote(gemini: Run):
    assert gemini.tripwire.attempts == []
    assert gemini.stdout.strip() == FINAL
    assert [r.step for r in gemini.api.main_replies()] == [0, 1, 2, 3]
    settings = json.loads(gemini.settings.read_text())
    assert settings["security"] == {"auth": {"selectedType": "gemini-api-key"}}  # kept
    telemetry = settings["telemetry"]
    assert telemetry["enabled"] is True and telemetry["traces"] is True
    assert telemetry["otlpProtocol"] == ("grpc" if gemini.protocol == "grpc" else "http")
    assert "+++" in gemini.setup_out  # the diff it showed


def test_gemini_session_counts_what_its_api_answered(gemini: Run):
    s = work_session(gemini)
    usages = [r.usage for r in gemini.api.answered()]
    tools = [step for step in gemini.api.script if hasattr(step, "name")]
    assert int(s["api_requests"]) == len(usages)  # the router's calls included
    assert int(s["input_tokens"]) == sum(u.prompt - u.cached for u in usages)
    assert int(s["cache_read_tokens"]) == sum(u.cached for u in usages)
    assert int(s["output_tokens"]) == sum(u.candidates + u.thoughts for u in usages)
    assert int(s["cache_creation_tokens"]) == 0
    assert int(s["tool_calls"]) == len(tools) == 3
    assert int(s["tool_errors"]) == sum(t.fails for t in tools) == 1
    assert int(s["prompts"]) == 1
    models = Counter(r.model for r in gemini.api.answered())
    assert {m["model"]: int(m["api_requests"]) for m in gemini.models} == dict(models)


def test_gemini_events_tools_and_spans(gemini: Run):
    got = sorted(
        (int(e["input_tokens"]), int(e["output_tokens"]), int(e["cache_read_tokens"]))
        for e in gemini.kind("api_request")
    )
    want = sorted(
        (u.prompt - u.cached, u.candidates + u.thoughts, u.cached)
        for u in (r.usage for r in gemini.api.answered())
    )
    assert got == want
    (prompt,) = gemini.kind("user_prompt")
    assert prompt["attrs"]["prompt"] == PROMPT  # logPrompts, from setup --log-user-prompts
    tools = {t["tool_name"]: (int(t["calls"]), int(t["errors"])) for t in gemini.tools}
    assert tools == {"run_shell_command": (1, 0), "read_file": (2, 1)}
    results = gemini.kind("tool_result")
    durations = {t["tool_name"]: float(t["total_ms"]) for t in gemini.tools}
    for name, total in durations.items():
        ms = [float(e["attrs"]["duration_ms"]) for e in results if e["tool_name"] == name]
        assert total == pytest.approx(sum(ms))
    assert len(gemini.role("llm_request")) == len(gemini.api.answered())
    # a tool_call span for each call that ran; the one refused (outside the workspace) has none
    assert sorted(s["tool_name"] for s in gemini.role("tool")) == ["read_file", "run_shell_command"]
    assert {s["agent"] for s in gemini.spans} == {"gemini-cli"}


# --- Codex CLI ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    return binary(CODEX)


@pytest.fixture(scope="module", params=["grpc", "http/protobuf", "http/json"])
def codex(request, codex_bin, tmp_path_factory) -> Run:
    from codex_api import CodexApi, FinalText, ToolCall, Usage

    api = CodexApi([])

    def prepare(home: Path, work: Path, api, tripwire):
        echo = json.dumps({"cmd": "echo hello-e2e"})
        cat = json.dumps({"cmd": f"cat {work / 'notes.txt'}"})
        api.script = [
            ToolCall("exec_command", echo, Usage(2000, 70, 1500, 20)),
            ToolCall("exec_command", cat, Usage(2111, 71, 1600, 21)),
            ToolCall("no_such_tool", json.dumps({"x": 1}), Usage(2222, 72, 1700, 22), True),
            FinalText(FINAL, Usage(2333, 73, 1800, 23)),
        ]
        codex_home = home / ".codex"
        codex_home.mkdir(parents=True)
        config = codex_home / "config.toml"
        config.write_text(
            'model = "gpt-5-codex"\n'
            'model_provider = "fake"\n'
            'approval_policy = "never"\n'
            'sandbox_mode = "danger-full-access"\n'
            "\n"
            "[model_providers.fake]\n"
            'name = "fake"\n'
            f'base_url = "{api.base_url}"\n'
            'env_key = "FAKE_API_KEY"\n'
            'wire_api = "responses"\n'
            "\n"
            "[features]\n"
            "plugins = false\n"  # else it syncs plugin catalogs from github.com and chatgpt.com
            "\n"
            "[analytics]\n"
            "enabled = false\n"
        )
        env = hermetic_env(home, tripwire, CODEX_HOME=str(codex_home), FAKE_API_KEY="dummy")
        return env, config

    return run_agent(
        request,
        tmp_path_factory,
        "codex",
        api,
        prepare,
        [str(codex_bin), "exec", "--skip-git-repo-check", PROMPT],
    )


def test_codex_ran_the_script_offline_with_the_settings_setup_wrote(codex: Run):
    assert codex.tripwire.attempts == []
    assert codex.stdout.strip() == FINAL
    assert [r.step for r in codex.api.answered()] == [0, 1, 2, 3]
    config = tomllib.loads(codex.settings.read_text())
    assert config["model_providers"]["fake"]["wire_api"] == "responses"  # kept
    otel = config["otel"]
    assert set(otel) == {"exporter", "trace_exporter", "metrics_exporter", "log_user_prompt"}
    kind = "otlp-grpc" if codex.protocol == "grpc" else "otlp-http"
    assert {next(iter(otel[k])) for k in ("exporter", "trace_exporter")} == {kind}


def test_codex_session_counts_what_its_api_answered(codex: Run):
    s = work_session(codex)
    (session_id,) = re.findall(r"^session id: (\S+)$", codex.stderr, re.M)
    assert s["session_id"] == session_id  # its conversation.id
    usages = [r.usage for r in codex.api.answered()]
    tools = [step for step in codex.api.script if hasattr(step, "name")]
    assert int(s["api_requests"]) == len(usages) == 4
    assert int(s["input_tokens"]) == sum(u.input_tokens - u.cached_tokens for u in usages)
    assert int(s["cache_read_tokens"]) == sum(u.cached_tokens for u in usages)
    assert int(s["output_tokens"]) == sum(u.output_tokens for u in usages)
    assert int(s["cache_creation_tokens"]) == 0
    assert int(s["tool_calls"]) == len(tools) == 3
    assert int(s["tool_errors"]) == sum(t.fails for t in tools) == 1
    assert int(s["prompts"]) == 1
    assert s["cost_source"] == "estimate" and float(s["cost_usd"]) > 0


def test_codex_events_tools_and_span_tree(codex: Run):
    got = sorted(
        (int(e["input_tokens"]), int(e["output_tokens"]), int(e["cache_read_tokens"]))
        for e in codex.kind("api_request")
    )
    want = sorted(
        (u.input_tokens - u.cached_tokens, u.output_tokens, u.cached_tokens)
        for u in (r.usage for r in codex.api.answered())
    )
    assert got == want
    (prompt,) = codex.kind("user_prompt")
    assert prompt["attrs"]["prompt"] == PROMPT  # log_user_prompt, from setup
    results = {e["tool_use_id"]: e["success"] for e in codex.kind("tool_result")}
    assert results == {
        r.call_id: ("false" if step.fails else "true") for r, step in codex.api.tool_replies()
    }
    tools = {t["tool_name"]: (int(t["calls"]), int(t["errors"])) for t in codex.tools}
    assert tools == {"exec_command": (2, 0), "no_such_tool": (1, 1)}
    # the folded turn: one turn span, one model request a reply, a tool span a dispatched call.
    # Codex 0.169.0 exits once `codex.exec` ends; when its session task outlives that (seen
    # under load), `session_loop` and `session_task.turn` are never exported and their children
    # arrive orphaned. The tree then roots the turn at its prompt (the drill-down test).
    turn_spans = codex.role("interaction")
    received = {s["span_id"] for s in codex.spans}
    orphaned = [
        s for s in codex.spans if s["parent_span_id"] and s["parent_span_id"] not in received
    ]
    assert len(turn_spans) == (0 if orphaned else 1)
    assert len(codex.role("llm_request")) == len(codex.api.answered())
    dispatched = [r.call_id for r, _ in codex.api.tool_replies()]  # the unknown tool's too
    assert sorted(s["tool_use_id"] for s in codex.role("tool")) == sorted(dispatched)
    # every api_request belongs to the turn of its prompt
    assert {e["prompt_id"] for e in codex.kind("api_request")} == {prompt["prompt_id"]}


def test_codex_turn_drills_down_to_turn_request_tool(codex: Run):
    """Codex's hundreds of internal spans folded: turn -> sampling request -> tool ->
    execution, one request per reply, the failed call marked."""
    (trees,) = codex.trees.values()
    ((roots, source),) = trees
    assert source == "spans"
    (root,) = roots
    assert len(codex.spans) > 100  # what was folded away
    nodes = list(shape(root))
    assert nodes[0] == (0, "interaction", False)
    assert [k for _, k, _ in nodes].count("llm_request") == len(codex.api.answered())
    assert [k for _, k, _ in nodes].count("tool") == len(codex.api.tool_replies())
    assert all(d == 1 for d, k, _ in nodes if k == "llm_request")
    assert all(d == 2 for d, k, _ in nodes if k == "tool")
    failed = [k for _, k, err in nodes if err]
    assert failed and set(failed) <= {"tool", "execution"}
    assert f'"{PROMPT[:40]}' in root.label


def test_gemini_turn_drills_down_from_its_prompt(gemini: Run):
    (trees,) = gemini.trees.values()
    ((roots, source),) = trees
    (root,) = roots
    assert source == "spans" and root.kind == "interaction"
    kinds = Counter(c.kind for c in root.children)
    assert kinds == {"llm_request": len(gemini.api.answered()), "tool": 3}
    assert sum(n.is_error for n in root.walk()) == 1
