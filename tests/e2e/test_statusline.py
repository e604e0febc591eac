"""End to end: the real Claude Code, interactive in tmux, signed in as a Claude.ai subscriber
(`CLAUDE_CODE_OAUTH_TOKEN`, any value) against the scripted API, whose replies carry the plan's
`anthropic-ratelimit-unified-*` headers. `claude-top setup --write` points its telemetry and its
status line at a `claude-top serve` (chaining a status line already set, which records what
Claude Code piped in). Two prompts are typed; then the percentages claude-top shows must be what
the API sent, and each window's cost the sum of the `api_request` records.

Expected values come from what the scripted API sent (headers, usage) and the list prices of the
model, never from claude-top.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loopback import LoopThread, Tripwire
from scripted_api import FinalText, RateLimits, ScriptedApi, Usage
from test_claude_code import PRICE_PER_MTOK, claude_bin, claude_top_cmd, free_port  # noqa: F401

pytestmark = pytest.mark.e2e

MODEL = "claude-sonnet-4-5"
S = 10**9
FIVE_HOUR = (0.25, 0.4)
SEVEN_DAY = (0.1, 0.12)
REPLY = Usage(1000, 50, 4000, 200)
PROMPTS = ("say hello", "say it again")
PREVIOUS_LINE = "PREV-LINE"
WAIT_S = 90
LISTENING = re.compile(r"OTLP/gRPC on 127\.0\.0\.1:(\d+), OTLP/HTTP on http://127\.0\.0\.1:(\d+)")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def request_cost(u: Usage) -> float:
    p_in, p_out, p_read, p_write = PRICE_PER_MTOK[MODEL]
    return (
        u.input_tokens * p_in
        + u.output_tokens * p_out
        + u.cache_read_tokens * p_read
        + u.cache_creation_tokens * p_write
    ) / 1e6


class Tmux:
    """A private tmux server (its own socket) running one command in a 120x40 window."""

    def __init__(self, socket_dir: Path, script: Path) -> None:
        self.socket = str(socket_dir / "tmux.sock")
        self._run("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "40", str(script))

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", "e2e")

    def type(self, text: str) -> None:
        self._run("send-keys", "-t", "e2e", "-l", text)
        time.sleep(0.3)
        self._run("send-keys", "-t", "e2e", "Enter")

    def kill(self) -> None:
        self._run("kill-server")


def wait_for(what: str, check, timeout: float = WAIT_S, screen=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    shown = f"\nscreen:\n{screen()}" if screen else ""
    pytest.fail(f"timed out waiting for {what}{shown}")


def status(port: int, env: dict, *extra: str) -> tuple[int, dict]:
    done = subprocess.run(
        [*claude_top_cmd(), "status", "--http-port", str(port), "--json", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout else {}


@pytest.fixture(scope="module")
def interactive(claude_bin, tmp_path_factory, request):  # noqa: F811
    if shutil.which("tmux") is None:
        pytest.skip("tmux is needed to run Claude Code interactively")
    tmp = tmp_path_factory.mktemp("statusline")
    home, work = tmp / "home", tmp / "work"
    (home / ".claude").mkdir(parents=True)
    work.mkdir()
    now = int(time.time())
    limits = RateLimits(FIVE_HOUR, SEVEN_DAY, now + 2 * 3600 + 1234, now + 4 * 86400 + 5678)
    loop = LoopThread()
    request.addfinalizer(loop.close)
    api = ScriptedApi([FinalText("Hello from the e2e plan.", REPLY)], rate_limits=limits)
    tripwire = Tripwire()
    for server in (api, tripwire):
        loop.call(server.start())
        request.addfinalizer(lambda server=server: loop.call(server.stop()))

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("ANTHROPIC", "CLAUDE", "OTEL_", "XDG_", "NODE_", "TMUX"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_RUNTIME_DIR=str(tmp / "run"),
    )
    (tmp / "run").mkdir()

    db = tmp / "claude-top.duckdb"
    log = tmp / "serve.log"
    with open(log, "wb") as fh:
        serve = subprocess.Popen(
            [*claude_top_cmd(), "serve", "--db", str(db), "--grpc-port", "0", "--http-port", "0"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    request.addfinalizer(lambda: serve.poll() is None and serve.kill())
    m = wait_for("serve to listen", lambda: LISTENING.search(log.read_text()), 60)
    grpc_port, http_port = int(m[1]), int(m[2])

    # the user's own status line, which must keep working; it also records what it was given
    samples = tmp / "samples.jsonl"
    recorder = f"cat >> {shlex.quote(str(samples))}; echo >> {shlex.quote(str(samples))}; "
    recorder += f"echo {PREVIOUS_LINE}"
    settings = home / ".claude" / "settings.json"
    settings.write_text(json.dumps({"statusLine": {"type": "command", "command": recorder}}))
    setup = subprocess.run(
        [
            *claude_top_cmd(),
            "setup",
            "--write",
            "--settings",
            str(settings),
            "--grpc-port",
            str(grpc_port),
            "--http-port",
            str(http_port),
            "--statusline-command",
            shlex.join(claude_top_cmd()),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert setup.returncode == 0, setup.stderr
    installed = json.loads(settings.read_text())
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "theme": "dark",
                "numStartups": 3,
                "projects": {str(work): {"hasTrustDialogAccepted": True, "allowedTools": []}},
            }
        )
    )
    claude_env = {
        **env,
        "ANTHROPIC_BASE_URL": api.base_url,
        "CLAUDE_CODE_OAUTH_TOKEN": "e2e-any-value",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "HTTP_PROXY": tripwire.url,
        "HTTPS_PROXY": tripwire.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "TERM": "xterm-256color",
    }
    script = tmp / "run-claude.sh"
    script.write_text(
        "#!/bin/sh\n"
        + "".join(f"export {k}={shlex.quote(v)}\n" for k, v in claude_env.items())
        + f"cd {shlex.quote(str(work))}\n"
        + f"exec {shlex.quote(str(claude_bin))} --model {MODEL}\n"
    )
    script.chmod(0o755)
    tmux = Tmux(tmp, script)
    request.addfinalizer(tmux.kill)

    def screen() -> str:
        return ANSI.sub("", tmux.screen())

    wait_for("the status line", lambda: PREVIOUS_LINE in screen(), screen=screen)
    shown = []
    for i, prompt in enumerate(PROMPTS):
        tmux.type(prompt)
        want = round(FIVE_HOUR[i] * 100)
        wait_for(
            f"claude-top to show 5h {want}% after prompt {i + 1}",
            lambda want=want: (
                status(http_port, env)[1].get("five_hour")
                and status(http_port, env)[1]["five_hour"]["used_percentage"] == want
            ),
            screen=screen,
        )
        wait_for(f"the status line to say 5h {want}%", lambda w=want: f"5h {w}%" in screen(),
                 screen=screen)  # fmt: skip
        shown.append(screen())
    answered = len(api.answered())
    wait_for(  # the api_request records come in Claude Code's next log export (1 s)
        "claude-top to hold every api_request",
        lambda: status(http_port, env)[1]["five_hour"]["requests"] == answered,
        screen=screen,
    )
    time.sleep(1.5)  # and a status-line update still on its way
    at = int(time.time())
    live_code, live = status(http_port, env, "--at", str(at))
    tmux.type("/exit")
    time.sleep(2)
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(60) == 0, log.read_text()
    file_code, from_file = status(free_port(), env, "--db", str(db), "--at", str(at))
    events = subprocess.run(
        [*claude_top_cmd(), "export", "--db", str(db), "--out", str(tmp / "export")],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert events.returncode == 0
    return {
        "api": api,
        "limits": limits,
        "tripwire": tripwire,
        "live": (live_code, live),
        "file": (file_code, from_file),
        "shown": shown,
        "samples": [json.loads(x) for x in samples.read_text().splitlines() if x.strip()],
        "settings": installed,
        "export": tmp / "export",
        "at": at,
    }


def test_claude_code_ran_as_a_subscriber_offline(interactive):
    api = interactive["api"]
    # interactive 2.1.328 looks for a newer release (downloads.claude.ai) and at github.com
    # whatever DISABLE_AUTOUPDATER says; the tripwire answers nothing, and nothing else (no
    # request of the conversation) tries to leave
    hosts = {a.split()[1] for a in interactive["tripwire"].attempts}
    assert hosts <= {"downloads.claude.ai:443", "github.com:443"}, hosts
    answered = api.answered()
    assert [r.kind for r in answered] == ["main", "main"], api.summary()
    assert all(r.headers for r in answered)


def test_setup_installed_the_status_line_chaining_the_previous_one(interactive):
    command = interactive["settings"]["statusLine"]["command"]
    assert " statusline --http-port " in command and " --chain " in command
    for screen in interactive["shown"]:
        assert PREVIOUS_LINE in screen  # the user's own line is still shown


def test_claude_code_piped_the_plan_limits_the_api_sent(interactive):
    limits = interactive["limits"]
    # (the recorder runs once per update, in the background: its lines may land out of order)
    windows = [s["rate_limits"] for s in interactive["samples"] if "rate_limits" in s]
    assert windows, interactive["samples"]
    for key, sent, reset in (
        ("five_hour", FIVE_HOUR, limits.five_hour_reset),
        ("seven_day", SEVEN_DAY, limits.seven_day_reset),
    ):
        assert {w[key]["resets_at"] for w in windows} == {reset}
        assert {w[key]["used_percentage"] for w in windows} == {round(u * 100) for u in sent}


def test_claude_top_shows_what_the_api_sent_and_the_exact_cost(interactive):
    limits = interactive["limits"]
    code, doc = interactive["live"]
    assert code == 0
    assert interactive["file"] == interactive["live"]
    answered = interactive["api"].answered()
    cost = sum(request_cost(r.usage) for r in answered)
    for key, sent, reset, length in (
        ("five_hour", FIVE_HOUR, limits.five_hour_reset, 5 * 3600),
        ("seven_day", SEVEN_DAY, limits.seven_day_reset, 7 * 86400),
    ):
        w = doc[key]
        assert w["source"] == "official"
        assert w["used_percentage"] == round(sent[-1] * 100)
        assert (w["resets_at"], w["window_start"]) == (reset, reset - length)
        assert w["requests"] == len(answered)
        assert w["cost_usd"] == pytest.approx(cost, rel=1e-9)
        assert w["input_tokens"] == sum(r.usage.input_tokens for r in answered)
        assert w["stale"] is False and w["expired"] is False
    # the exact sum of the api_request records claude-top holds
    import csv

    with open(interactive["export"] / "events.csv", newline="") as fh:
        recorded = [
            float(json.loads(e["attributes"])["cost_usd"])
            for e in csv.DictReader(fh)
            if e["name"] == "claude_code.api_request"
        ]
    assert len(recorded) == len(answered)
    assert doc["five_hour"]["cost_usd"] == round(sum(recorded), 9)
    # two samples at two costs: the forecast is calibrated on them
    five = doc["five_hour"]
    assert five["calibration_samples"] >= 2 and five["forecast"] == "ok"
    assert five["projected_percentage_at_reset"] > round(FIVE_HOUR[-1] * 100)
    assert doc["sessions_active"] >= 1
    assert doc["statusline"]["rejected"] == 0


def test_the_status_line_showed_claude_tops_line(interactive):
    for i, screen in enumerate(interactive["shown"]):
        assert f"5h {round(FIVE_HOUR[i] * 100)}%" in screen
        assert f"7d {round(SEVEN_DAY[i] * 100)}%" in screen


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
