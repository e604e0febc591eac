"""`claude-top setup --write`: make `claude-top statusline` the status-line command of a
Claude Code settings file, chaining the one already there.

There is one `statusLine` per settings file. When another command is set, ours takes its place
and runs it (`--chain CMD`: same input, its output shown first), so the user's line keeps
working; the object's other keys (`padding`) are kept. When ours is already set, only its port
is brought up to date (its chain kept), so running setup again changes nothing.
"""

from __future__ import annotations

import shlex
import shutil
import sys


def claude_top_command() -> str:
    """How Claude Code should start claude-top: the `claude-top` on PATH (absolute), else this
    Python running the module."""
    found = shutil.which("claude-top")
    if found:
        return shlex.quote(found)
    return f"{shlex.quote(sys.executable)} -m claude_top.cli"


def statusline_command(base: str, http_port: int, chain: str | None = None) -> str:
    """`<base> statusline --http-port N [--chain 'CMD']`."""
    command = f"{base} statusline --http-port {int(http_port)}"
    if chain:
        command += f" --chain {shlex.quote(chain)}"
    return command


def parse_ours(command: str) -> dict | None:
    """The options of a `claude-top statusline` command line ({"chain", "http_port"}); None
    when it is someone else's."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    try:
        at = words.index("statusline")
    except ValueError:
        return None
    before = words[:at]
    ours = any(w.rsplit("/", 1)[-1] == "claude-top" for w in before) or "claude_top.cli" in before
    if not ours:
        return None
    out: dict = {"chain": None, "http_port": None}
    rest = words[at + 1 :]
    for i, w in enumerate(rest[:-1]):
        if w == "--chain":
            out["chain"] = rest[i + 1]
        elif w == "--http-port":
            out["http_port"] = rest[i + 1]
    return out


def install(settings: dict, base: str, http_port: int) -> dict:
    """`settings` with claude-top's status line in it, chaining any other command."""
    current = settings.get("statusLine")
    line = dict(current) if isinstance(current, dict) else {}
    if line.get("type", "command") != "command":
        return settings  # a kind of status line this claude-top does not know: left alone
    previous = line.get("command")
    chain = None
    if isinstance(previous, str) and previous.strip():
        ours = parse_ours(previous)
        chain = ours["chain"] if ours is not None else previous
    line["type"] = "command"
    line["command"] = statusline_command(base, http_port, chain)
    return {**settings, "statusLine": line}
