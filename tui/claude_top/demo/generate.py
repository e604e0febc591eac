"""The scripted sessions: each turn from prompt to response, a session's turns and think times,
the session continued by a second process, and all the sessions of one seed."""

from __future__ import annotations

import math
import random
import uuid

from claude_top.demo.catalog import MS, NS, PROFILES, PROMPTS, RESPONSES, TOOL_WEIGHTS
from claude_top.demo.llm import llm_request
from claude_top.demo.process import Export, Process
from claude_top.demo.tools import tool_call
from claude_top.demo.turn import Turn


def _interaction(turn: Turn, features: set[str]) -> int:
    """One prompt: the user_prompt event, rounds of API and tool calls, the assistant_response
    event and the interaction span over them; returns its end time."""
    rng, profile = turn.rng, turn.p.profile
    t0 = turn.t
    prompt = rng.choice(PROMPTS)
    shown = prompt if profile.prompts_logged else "<REDACTED>"
    prompt_attrs = [
        ("prompt_length", str(len(prompt))),
        ("prompt", shown),
    ]
    if profile.prompts_logged:
        prompt_attrs.append(("prompt_text", prompt))
    prompt_attrs.append(("message.uuid", str(uuid.UUID(int=rng.getrandbits(128), version=4))))
    turn.event(t0, "user_prompt", prompt_attrs)
    turn.t += turn.ms(20, 120)
    rounds = rng.choices((0, 1, 2, 3, 4, 5), (15, 25, 25, 20, 10, 5))[0]
    if features & {"bash_failure", "subagent"}:
        rounds = max(rounds, 1)
    planned: list[list[str]] = []
    for _ in range(rounds):
        k = rng.choices((1, 2, 3), (60, 30, 10))[0]
        planned.append(rng.choices(list(TOOL_WEIGHTS), list(TOOL_WEIGHTS.values()), k=k))
    if (
        rounds
        and profile.model != "claude-haiku-4-5"
        and ("subagent" in features or rng.random() < 0.08)
    ):
        planned[0].insert(0, "Task")
    if "bash_failure" in features:
        planned[0].append("Bash!")
    for i in range(rounds + 1):
        last = i == rounds
        retry = ("retry" in features and i == 0) or rng.random() < 0.04
        llm_request(turn, turn.root_id, profile.model, last, retry)
        if last:
            break
        for tool in planned[i]:
            tool_call(turn, tool, turn.root_id)
    end = turn.t + turn.ms(1, 5)
    response = rng.choice(RESPONSES)
    turn.event(
        turn.t,
        "assistant_response",
        [
            ("response_length", len(response)),
            ("response", response),
            ("message.uuid", str(uuid.UUID(int=rng.getrandbits(128), version=4))),
            ("model", profile.model),
            ("query_source", "repl_main_thread"),
        ],
    )
    turn.p.interactions += 1
    dur_ms = (end - t0) // MS
    turn.span(
        "claude_code.interaction",
        turn.root_id,
        None,
        t0,
        end,
        [
            ("gen_ai.operation.name", "invoke_agent"),
            ("user_prompt", shown),
            ("user_prompt_length", len(prompt)),
            ("interaction.sequence", turn.p.interactions),
            ("parent.source", "none"),
            ("queued_sends", 0),
            ("interaction.duration_ms", dur_ms),
        ],
    )
    turn.p.add_delta(end, "claude_code.active_time.total", (("type", "cli"),), dur_ms / 1000)
    turn.flush()
    return end


class _Session:
    """One Claude Code session: its profile, RNG, processes and turn schedule."""

    def __init__(self, index: int, seed: int, user_id: str, start_ns: int) -> None:
        self.index = index
        self.rng = random.Random(f"claude-top-demo:{seed}:{index}")
        self.profile = PROFILES[index % len(PROFILES)]
        self.user_id = user_id
        self.session_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.context = 14_000 + self.rng.randrange(6000)
        self.continues = index % len(PROFILES) == 2
        self.turns_left = 2 if self.continues else self.rng.randint(5, 14)
        self.turns_done = 0
        self.processes: list[Process] = []
        self.process = self.start_process(start_ns, "fresh")
        self.next_turn_ns = start_ns + self.rng.randint(800, 4000) * MS
        self.ended_ns: int | None = None
        self.replaced = False

    def start_process(self, t: int, start_type: str) -> Process:
        """A new process: startup events, session.count. A continuing process reports its
        startup under a fresh id before it adopts the continued session's id (as 2.1.328 does)."""
        proc = Process(self.profile, self.user_id, self.session_id, len(self.processes) + 1, t)
        self.processes.append(proc)
        startup_sid = self.session_id
        if start_type == "continue":
            startup_sid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        events: list[tuple] = [
            (
                t,
                "managed_settings_resolved",
                [
                    ("managed_settings.trigger", "startup"),
                    ("managed_settings.sources", []),
                    ("managed_settings.source_behavior", "first-wins"),
                    ("managed_settings.helper.state", "none"),
                    ("managed_settings.helper.applied", "none"),
                ],
                None,
                None,
                proc.note("event", "claude_code.managed_settings_resolved", startup_sid),
            )
        ]
        for i, plugin in enumerate(("cc-plugin-agents-md", "cc-plugin-privacy", "cc-plugin-lsp")):
            events.append(
                (
                    t + (35 + i) * MS,
                    "plugin_loaded",
                    [
                        ("plugin.name", plugin),
                        ("marketplace.name", "builtin"),
                        ("plugin.scope", "default-bundle"),
                        ("enabled_via", "default-enable"),
                        ("plugin_id_hash", self.rng.randbytes(8).hex()),
                        ("has_hooks", True),
                        ("has_mcp", False),
                        ("host_owned_mcp", False),
                        ("skill_path_count", 0),
                        ("command_path_count", 0),
                        ("agent_path_count", 0),
                        ("safe_mode", "false"),
                    ],
                    None,
                    None,
                    proc.note("event", "claude_code.plugin_loaded", startup_sid),
                )
            )
        proc.add_events(events, startup_sid)
        proc.add_delta(
            t + 40 * MS,
            "claude_code.session.count",
            (("start_type", start_type),),
            1.0,
            startup_sid,
        )
        return proc

    def features(self) -> set[str]:
        """What the first turns must show, so a short demo (or test) sees every shape."""
        if self.turns_done or self.index >= len(PROFILES) or len(self.processes) > 1:
            return set()
        return [{"bash_failure"}, {"subagent"}, {"retry"}, set()][self.index]

    def next_turn(self) -> int:
        """Generate the next turn at `next_turn_ns`; schedule what follows."""
        t0 = self.next_turn_ns
        turn = Turn(self.process, self.rng, self.context, t0)
        end = _interaction(turn, self.features())
        self.context = turn.context
        self.turns_done += 1
        self.turns_left -= 1
        think = self.rng.lognormvariate(math.log(6000), 0.6)
        typing = min(think, self.rng.uniform(1500, 8000))
        think_ns = int(min(max(think, 2000), 40_000) * MS)
        if self.turns_left > 0:
            self.next_turn_ns = end + think_ns
            self.process.add_delta(
                self.next_turn_ns,
                "claude_code.active_time.total",
                (("type", "user"),),
                typing / 1000,
            )
            return end
        self.process.exit_ns = end + 400 * MS
        if self.continues and len(self.processes) == 1:
            t = self.process.exit_ns + int(self.rng.uniform(4, 12) * NS)
            self.process = self.start_process(t, "continue")
            self.turns_left = self.rng.randint(3, 8)
            self.next_turn_ns = t + self.rng.randint(1500, 5000) * MS
        else:
            self.next_turn_ns = math.inf  # type: ignore[assignment]
            self.ended_ns = self.process.exit_ns
        return end


class Script:
    """All the sessions of one seed: turns generated up to a virtual time, and the export requests
    due by then. A session that ends is replaced by a new one a little later."""

    def __init__(self, seed: int, start_ns: int, sessions: int) -> None:
        rng = random.Random(f"claude-top-demo:{seed}")
        self.seed = seed
        self._user_id = rng.randbytes(32).hex()
        self._sessions: list[_Session] = []
        self._next_index = 0
        for i in range(sessions):
            self._new_session(start_ns + int(i * rng.uniform(0.5, 2.5) * NS))

    def _new_session(self, t: int) -> _Session:
        s = _Session(self._next_index, self.seed, self._user_id, t)
        self._next_index += 1
        self._sessions.append(s)
        return s

    def generate(self, upto: int) -> None:
        """Generate every turn that starts by `upto`; replace sessions that ended."""
        progress = True
        while progress:
            progress = False
            for s in list(self._sessions):
                while s.next_turn_ns <= upto:
                    s.next_turn()
                    progress = True
                if s.ended_ns is not None and not s.replaced:
                    s.replaced = True
                    self._new_session(s.ended_ns + int(s.rng.uniform(5, 20) * NS))
                    progress = True

    def due(self, upto: int, final: bool = False) -> list[Export]:
        """Requests for everything due by `upto` (everything generated when `final`)."""
        procs = [p for s in self._sessions for p in s.processes if not p.finished]
        return [export for proc in procs for export in proc.take_due(upto, final)]
