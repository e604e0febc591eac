"""End to end: the real Claude Code CLI, offline, sending its telemetry to `claude-top serve`.

Once per OTLP protocol, `claude -p` (the pinned npm release, see `claude_cli.py`) runs in a
temporary HOME and working directory against a scripted Messages API on loopback
(`scripted_api.py`): Bash that succeeds, Bash that fails, Read, then a final text turn, with one
overloaded (529) reply retried on the way. Its metrics, events and beta traces go to a
`claude-top serve` subprocess; after a SIGTERM, `claude-top export` writes the CSVs checked here.

The expected values come from what the scripted API returned (usage per reply, the tools it
asked for, which of them must fail), never from claude-top.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from claude_cli import CLAUDE_CODE_VERSION, ClaudeMissing, ensure_claude
from loopback import HTTP2_PREFACE, LoopThread, Tripwire, Wiretap
from scripted_api import FinalText, Recorded, ScriptedApi, Step, ToolCall, Usage

from claude_top.core.connect import PROTOCOLS, env_block

pytestmark = pytest.mark.e2e

MODEL = "claude-sonnet-4-5"
# USD per million tokens: input, output, cache read, cache write (5 minutes). Checked by hand
# against the fixtures: basic.grpc's 1200/80/5000/300 tokens cost 0.007425.
PRICE_PER_MTOK = {"claude-sonnet-4-5": (3.0, 15.0, 0.30, 3.75)}
PROMPT = "Run the e2e checks: echo, list a missing directory, read notes.txt."
ECHO = "echo hello-e2e"
FAILING = "ls /nonexistent-e2e-dir"
NOTES = "e2e notes line\n"
FINAL = "All e2e steps done."
OVERLOAD_STEP = 1  # the failing Bash's turn is answered 529 first, then retried
CLAUDE_TIMEOUT_S = 90
QUIET_TIMEOUT_S = 10

SPAN_INTERACTION = "claude_code.interaction"
SPAN_LLM = "claude_code.llm_request"
SPAN_TOOL = "claude_code.tool"
SPAN_BLOCKED = "claude_code.tool.blocked_on_user"
SPAN_EXECUTION = "claude_code.tool.execution"


def build_script(work: Path) -> list[Step]:
    """The main conversation; every turn's usage is distinct, so each reply is recognisable."""
    return [
        ToolCall("Bash", {"command": ECHO, "description": "say hello"}, Usage(1000, 50, 4000, 200)),
        ToolCall(
            "Bash",
            {"command": FAILING, "description": "list a missing dir"},
            Usage(1111, 61, 4100, 211),
            fails=True,
        ),
        ToolCall("Read", {"file_path": str(work / "notes.txt")}, Usage(1222, 72, 4200, 222)),
        FinalText(FINAL, Usage(1333, 83, 4300, 233)),
    ]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The pinned CLI, npm-installed into `.e2e/` when missing; in CI its absence is a failure."""
    try:
        return ensure_claude()
    except ClaudeMissing as exc:
        if in_ci():
            pytest.fail(f"CI needs Claude Code {CLAUDE_CODE_VERSION}: {exc}", pytrace=False)
        pytest.skip(f"Claude Code {CLAUDE_CODE_VERSION} unavailable: {exc}")


# --- processes ----------------------------------------------------------------------------------


def claude_top_cmd() -> list[str]:
    """The `claude-top` command of the Python running the tests."""
    script = Path(sys.executable).parent / "claude-top"
    if script.exists():
        return [str(script)]
    found = shutil.which("claude-top")
    return [found] if found else [sys.executable, "-m", "claude_top.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Serve:
    proc: subprocess.Popen
    grpc_port: int
    http_port: int
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def start_serve(db: Path, log: Path) -> Serve:
    """`claude-top serve` on free ports; returns once it says it listens."""
    for _attempt in range(3):
        grpc_port, http_port = free_port(), free_port()
        cmd = [*claude_top_cmd(), "serve", "--db", str(db)]
        cmd += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
        with open(log, "wb") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        serve = Serve(proc, grpc_port, http_port, log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "OTLP/gRPC on" in serve.text():
                return serve
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        code = proc.poll()
        if code is None:
            proc.kill()
            proc.wait()
            pytest.fail(f"claude-top serve did not start in 30 s:\n{serve.text()}")
        if "in use" not in serve.text():
            pytest.fail(f"claude-top serve exited {code}:\n{serve.text()}")
    pytest.fail(f"claude-top serve found no free ports:\n{serve.text()}")


_OPEN_STATES = {"01", "02", "03", "04", "05", "08", "09", "0B"}  # all but LISTEN/TIME_WAIT/CLOSE


def _open_connections(ports: set[int]) -> int:
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port in ports and fields[3] in _OPEN_STATES:
                n += 1
    return n


def wait_quiet(ports: set[int]) -> None:
    """Poll until no exporter connection to serve is open: all Claude Code sent is handled.

    Claude Code flushes its telemetry when it exits and serve acknowledges only committed
    exports; this covers an exporter that exits without waiting for the acknowledgement.
    (Linux: reads /proc/net/tcp; elsewhere the check finds nothing and returns at once.)
    """
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while _open_connections(ports) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _open_connections(ports) == 0, "exporter connections still open after 10 s"


def claude_env(
    home: Path, api: ScriptedApi, tripwire: Tripwire, taps: dict[str, Wiretap], protocol: str
) -> dict[str, str]:
    """A hermetic environment: temp HOME, loopback API, telemetry on, nothing phoning home."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("ANTHROPIC", "CLAUDE", "OTEL_", "XDG_", "NODE_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy")
    }
    env = {
        **keep,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "ANTHROPIC_BASE_URL": api.base_url,
        "ANTHROPIC_API_KEY": "dummy",
        # without this 2.1.328 dials api.anthropic.com:443 several times per run
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        # anything else that tries to leave the machine lands on the tripwire
        "HTTP_PROXY": tripwire.url,
        "HTTPS_PROXY": tripwire.url,
        "http_proxy": tripwire.url,
        "https_proxy": tripwire.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "OTEL_LOG_TOOL_DETAILS": "1",
        "OTEL_LOG_USER_PROMPTS": "1",
    }
    # what `claude-top serve` prints for this protocol (metrics, events, beta traces, short
    # intervals), pointed at the wiretaps in front of serve's ports
    env.update(env_block("127.0.0.1", taps["grpc"].port, taps["http"].port, protocol))
    return env


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Run:
    """One protocol's run: what the API saw and answered, and what claude-top exported."""

    protocol: str
    script: list[Step]
    api: ScriptedApi
    tripwire: Tripwire
    taps: dict[str, Wiretap]
    work: Path
    claude_stdout: str
    serve_log: str
    session_id: str
    sessions: list[dict[str, str]]
    models: list[dict[str, str]]
    tools: list[dict[str, str]]
    spans: list[dict[str, str]]
    events: list[dict[str, str]]
    snapshot: dict

    def main_replies(self) -> list[Recorded]:
        return self.api.main_replies()

    def tool_replies(self) -> list[tuple[Recorded, ToolCall]]:
        return [
            (r, step)
            for r in self.main_replies()
            if isinstance(step := self.script[r.step], ToolCall)
        ]

    def usages(self) -> list[Usage]:
        return [r.usage for r in self.api.answered()]

    def events_named(self, name: str) -> list[dict]:
        return [
            {**e, "attrs": json.loads(e["attributes"])}
            for e in self.events
            if e["name"] == f"claude_code.{name}"
        ]


def _session_id(api: ScriptedApi) -> str:
    ids = set()
    for r in api.requests:
        meta = (r.body or {}).get("metadata") or {}
        if "user_id" in meta:
            ids.add(json.loads(meta["user_id"])["session_id"])
    assert len(ids) == 1, f"requests carried session ids {ids}"
    return ids.pop()


@pytest.fixture(scope="module", params=PROTOCOLS)
def run(request, claude_bin: Path, tmp_path_factory) -> Run:
    protocol = request.param
    tmp = tmp_path_factory.mktemp(re.sub(r"\W", "-", protocol))
    home, work, out = tmp / "home", tmp / "work", tmp / "export"
    home.mkdir()
    work.mkdir()
    (work / "notes.txt").write_text(NOTES)
    script = build_script(work)
    loop = LoopThread()
    request.addfinalizer(loop.close)
    api = ScriptedApi(script, overload_step=OVERLOAD_STEP)
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
    taps = {"grpc": Wiretap(serve.grpc_port), "http": Wiretap(serve.http_port)}
    for tap in taps.values():
        loop.call(tap.start())
        request.addfinalizer(lambda tap=tap: loop.call(tap.stop()))

    cmd = [str(claude_bin), "-p", PROMPT, "--model", MODEL, "--allowedTools", "Bash,Read"]
    try:
        claude = subprocess.run(
            cmd,
            cwd=work,
            env=claude_env(home, api, tripwire, taps, protocol),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLAUDE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"claude -p ran over {exc.timeout}s; API requests:\n{api.summary()}")
    assert claude.returncode == 0, (
        f"claude exited {claude.returncode}\nstdout: {claude.stdout}\nstderr: {claude.stderr}\n"
        f"API requests:\n{api.summary()}"
    )
    wait_quiet({serve.grpc_port, serve.http_port, *(t.port for t in taps.values())})
    serve.proc.send_signal(signal.SIGTERM)
    assert serve.proc.wait(timeout=60) == 0, serve.text()

    export = subprocess.run(
        [*claude_top_cmd(), "export", "--db", str(db), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert export.returncode == 0, export.stderr
    return Run(
        protocol=protocol,
        script=script,
        api=api,
        tripwire=tripwire,
        taps=taps,
        work=work,
        claude_stdout=claude.stdout,
        serve_log=serve.text(),
        session_id=_session_id(api),
        sessions=read_csv(out / "sessions.csv"),
        models=read_csv(out / "models.csv"),
        tools=read_csv(out / "tools.csv"),
        spans=read_csv(out / "spans.csv"),
        events=read_csv(out / "events.csv"),
        snapshot=json.loads((out / "snapshot.json").read_text()),
    )


# --- the run itself -----------------------------------------------------------------------------


def test_claude_code_ran_the_script_offline(run: Run):
    """The scenario really happened: every turn asked for, tools run, nothing else dialled."""
    assert run.tripwire.attempts == []
    assert run.claude_stdout.strip() == FINAL
    # 2.1.328 makes no side requests (title, count_tokens) with these settings; if a later
    # release does, the expectations below need their shape, so say so plainly
    assert {r.kind for r in run.api.requests} == {"main", "overloaded"}, run.api.summary()
    statuses = [(r.kind, r.step, r.status) for r in run.api.requests if r.step is not None]
    assert statuses == [
        ("main", 0, 200),
        ("overloaded", 1, 529),
        ("main", 1, 200),
        ("main", 2, 200),
        ("main", 3, 200),
    ]
    assert {r.model for r in run.api.answered()} == {MODEL}
    # the results Claude Code sent back: the tools really ran, on this machine
    results = {}
    for r in run.main_replies():
        for msg in r.body["messages"]:
            for block in msg["content"] if isinstance(msg["content"], list) else []:
                if block.get("type") == "tool_result":
                    content = block["content"]
                    if isinstance(content, list):
                        content = "".join(c.get("text", "") for c in content)
                    results[block["tool_use_id"]] = (content, bool(block.get("is_error")))
    (echo, echo_err), (ls, ls_err), (read, read_err) = (
        results[r.tool_use_id] for r, _ in run.tool_replies()
    )
    assert echo.startswith("hello-e2e") and not echo_err
    assert "nonexistent-e2e-dir" in ls and ls_err
    assert NOTES.strip() in read and not read_err


def test_exporters_spoke_the_protocol(run: Run):
    """What crossed the wire: HTTP/2 for grpc, else one POST per export with its content type."""
    stopped = re.search(r"claude-top serve: stopped after \d+s; (\d+) exports", run.serve_log)
    assert stopped, run.serve_log
    grpc, http = run.taps["grpc"].streams, run.taps["http"].streams
    if run.protocol == "grpc":
        assert http == []
        assert grpc and all(bytes(s).startswith(HTTP2_PREFACE) for s in grpc)
        return
    assert grpc == []
    requests = run.taps["http"].http_requests()
    ctype = {"http/protobuf": "application/x-protobuf", "http/json": "application/json"}
    assert {path for path, _ in requests} == {"/v1/traces", "/v1/metrics", "/v1/logs"}
    assert {c for _, c in requests} == {ctype[run.protocol]}
    assert len(requests) == int(stopped.group(1))


def test_serve_printed_its_settings_and_export_its_counts(run: Run):
    assert "export OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in run.serve_log
    counts = {name: n for name, n in run.snapshot["counts"].items()}
    assert counts == {
        "sessions.csv": len(run.sessions),
        "models.csv": len(run.models),
        "tools.csv": len(run.tools),
        "spans.csv": len(run.spans),
        "events.csv": len(run.events),
    }


# --- what claude-top made of it -----------------------------------------------------------------


def test_sessions_csv(run: Run):
    usages = run.usages()
    tools = run.tool_replies()
    assert len(run.sessions) == 1
    (s,) = run.sessions
    assert s["session_id"] == run.session_id
    assert int(s["prompts"]) == 1
    assert int(s["api_requests"]) == len(usages) == len(run.script)
    assert int(s["input_tokens"]) == sum(u.input_tokens for u in usages)
    assert int(s["output_tokens"]) == sum(u.output_tokens for u in usages)
    assert int(s["cache_read_tokens"]) == sum(u.cache_read_tokens for u in usages)
    assert int(s["cache_creation_tokens"]) == sum(u.cache_creation_tokens for u in usages)
    assert int(s["tool_calls"]) == len(tools) == 3
    assert int(s["tool_errors"]) == sum(step.fails for _, step in tools) == 1
    assert s["models"] == MODEL


def test_models_csv(run: Run):
    usages = run.usages()
    assert [m["model"] for m in run.models] == [MODEL]
    (m,) = run.models
    assert int(m["api_requests"]) == len(usages)
    inp = sum(u.input_tokens for u in usages)
    read = sum(u.cache_read_tokens for u in usages)
    creation = sum(u.cache_creation_tokens for u in usages)
    assert int(m["input_tokens"]) == inp
    assert int(m["output_tokens"]) == sum(u.output_tokens for u in usages)
    assert int(m["cache_read_tokens"]) == read
    assert int(m["cache_creation_tokens"]) == creation
    # written to 0.01 %
    assert float(m["cache_hit_ratio"]) == pytest.approx(read / (inp + read + creation), abs=5e-5)


def test_tools_csv(run: Run):
    expected: Counter[str] = Counter(step.name for _, step in run.tool_replies())
    errors: Counter[str] = Counter(step.name for _, step in run.tool_replies() if step.fails)
    assert {t["tool_name"]: int(t["calls"]) for t in run.tools} == dict(expected)
    assert {t["tool_name"]: int(t["errors"]) for t in run.tools} == {
        name: errors[name] for name in expected
    }
    durations: dict[str, list[float]] = {}
    for e in run.events_named("tool_result"):
        durations.setdefault(e["attrs"]["tool_name"], []).append(float(e["attrs"]["duration_ms"]))
    for t in run.tools:
        ms = durations[t["tool_name"]]
        assert float(t["total_ms"]) == pytest.approx(sum(ms))
        assert float(t["max_ms"]) == max(ms)


def test_cost_is_the_sum_of_api_request_costs(run: Run):
    api_requests = run.events_named("api_request")
    costs = [float(e["attrs"]["cost_usd"]) for e in api_requests]
    assert len(costs) == len(run.usages())
    total = sum(costs)
    assert float(run.sessions[0]["cost_usd"]) == pytest.approx(total, rel=1e-12)
    assert float(run.models[0]["cost_usd"]) == pytest.approx(total, rel=1e-12)
    # the claude_code.cost.usage metric agrees (reconciliation column)
    assert float(run.sessions[0]["metric_cost_usd"]) == pytest.approx(total, rel=1e-9)
    # and each request costs its tokens at the model's list price
    p_in, p_out, p_read, p_write = PRICE_PER_MTOK[MODEL]
    for e in api_requests:
        a = e["attrs"]
        price = (
            int(a["input_tokens"]) * p_in
            + int(a["output_tokens"]) * p_out
            + int(a["cache_read_tokens"]) * p_read
            + int(a["cache_creation_tokens"]) * p_write
        ) / 1e6
        assert float(a["cost_usd"]) == pytest.approx(price, rel=1e-9)


def test_api_request_events_carry_the_returned_usage(run: Run):
    got = sorted(
        (
            int(e["attrs"]["input_tokens"]),
            int(e["attrs"]["output_tokens"]),
            int(e["attrs"]["cache_read_tokens"]),
            int(e["attrs"]["cache_creation_tokens"]),
        )
        for e in run.events_named("api_request")
    )
    want = sorted(
        (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_creation_tokens)
        for u in run.usages()
    )
    assert got == want
    assert {e["model"] for e in run.events_named("api_request")} == {MODEL}
    assert {e["session_id"] for e in run.events} == {run.session_id}
    results = {e["tool_use_id"]: e["success"] for e in run.events_named("tool_result")}
    assert results == {
        r.tool_use_id: ("false" if step.fails else "true") for r, step in run.tool_replies()
    }


def _attrs(span: dict) -> dict:
    return json.loads(span["attributes"])


def test_span_tree(run: Run):
    """interaction -> llm_request x N and tool x M; each tool -> blocked_on_user + execution."""
    spans = run.spans
    main = run.main_replies()
    tools = run.tool_replies()
    assert len({s["trace_id"] for s in spans}) == 1
    assert {s["session_id"] for s in spans} == {run.session_id}
    (root,) = [s for s in spans if not s["parent_span_id"]]
    assert root["name"] == SPAN_INTERACTION
    assert _attrs(root)["user_prompt"] == PROMPT
    children: dict[str, list[dict]] = {}
    for s in spans:
        children.setdefault(s["parent_span_id"], []).append(s)
    under_root = Counter(s["name"] for s in children[root["span_id"]])
    assert under_root == {SPAN_LLM: len(main), SPAN_TOOL: len(tools)}
    assert len(spans) == 1 + len(main) + 3 * len(tools)

    # llm_request spans, oldest first: one per answered turn, with its usage and attempt
    llm = [s for s in spans if s["name"] == SPAN_LLM]
    assert [
        (
            int(s["input_tokens"]),
            int(s["output_tokens"]),
            int(s["cache_read_tokens"]),
            int(s["cache_creation_tokens"]),
        )
        for s in llm
    ] == [
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.usage.cache_read_tokens,
            r.usage.cache_creation_tokens,
        )
        for r in main
    ]
    assert [int(s["attempt"]) for s in llm] == [2 if r.step == OVERLOAD_STEP else 1 for r in main]
    assert {s["model"] for s in llm} == {MODEL}
    assert all(s["success"] == "true" for s in llm)

    # tool spans: the tools asked for, each blocked_on_user (accepted by config) + execution
    by_id = {s["tool_use_id"]: s for s in spans if s["name"] == SPAN_TOOL}
    assert set(by_id) == {r.tool_use_id for r, _ in tools}
    for r, step in tools:
        tool = by_id[r.tool_use_id]
        assert tool["tool_name"] == step.name
        detail = _attrs(tool)
        if step.name == "Bash":
            assert detail["full_command"] == step.input["command"]
        else:
            assert detail["file_path"] == step.input["file_path"]
        kids = {s["name"]: s for s in children[tool["span_id"]]}
        assert sorted(kids) == [SPAN_BLOCKED, SPAN_EXECUTION]
        assert _attrs(kids[SPAN_BLOCKED])["decision"] == "accept"
        execution = kids[SPAN_EXECUTION]
        assert execution["status"] == ("ERROR" if step.fails else "UNSET")
        assert execution["success"] == ("false" if step.fails else "true")
    leaves = {s["span_id"] for s in spans if s["name"] in (SPAN_BLOCKED, SPAN_EXECUTION)}
    assert not leaves & set(children)
