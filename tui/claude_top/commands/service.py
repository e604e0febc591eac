"""`claude-top service install|uninstall`: run `claude-top serve` in the background, started with
the user's session, so telemetry is received while no UI is open (a UI attaches to it).

On Linux a systemd user unit (`~/.config/systemd/user/claude-top.service`), on macOS a launchd
agent (`~/Library/LaunchAgents/dev.claude-top.serve.plist`). `--now` also starts (or stops) it.
"""

from __future__ import annotations

import argparse
import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import claude_top
from claude_top.commands.common import EXIT_OK, EXIT_USAGE, age_option, fail

UNIT_NAME = "claude-top.service"
AGENT_LABEL = "dev.claude-top.serve"
MANAGERS = ("systemd", "launchd")


def default_manager() -> str:
    return "launchd" if sys.platform == "darwin" else "systemd"


def unit_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user" / UNIT_NAME


def agent_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{AGENT_LABEL}.plist"


def serve_command(args: argparse.Namespace, db_path: str) -> list[str]:
    """The `claude-top serve` command line the service runs (this Python, this package)."""
    argv = [sys.executable, "-m", "claude_top.cli", "serve", "--db", str(Path(db_path).absolute())]
    argv += ["--grpc-port", str(args.grpc_port), "--http-port", str(args.http_port)]
    if args.retention:
        argv += ["--retention", age_option(args.retention)]
    return argv


def _package_path() -> str | None:
    """Where this claude_top is imported from, when Python would not find it by itself (a
    source checkout on PYTHONPATH): the service needs it too."""
    root = str(Path(claude_top.__file__).resolve().parent.parent)
    return root if root in os.environ.get("PYTHONPATH", "").split(os.pathsep) else None


def _systemd_word(word: str) -> str:
    """One ExecStart word, quoted for systemd (and its % specifiers escaped)."""
    word = word.replace("%", "%%")
    if word and not any(c in word for c in " \t\"\\'"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit(argv: list[str], python_path: str | None) -> str:
    """The systemd user unit that runs `argv`."""
    lines = [
        "[Unit]",
        "Description=claude-top: OpenTelemetry receiver for Claude Code",
        "",
        "[Service]",
        "ExecStart=" + " ".join(_systemd_word(w) for w in argv),
        "Restart=on-failure",
        "RestartSec=5",
        "UMask=0077",
    ]
    if python_path:
        lines.append(f"Environment={_systemd_word('PYTHONPATH=' + python_path)}")
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def launchd_agent(argv: list[str], python_path: str | None) -> bytes:
    """The launchd agent (a plist) that runs `argv` at login and again if it fails."""
    logs = Path.home() / "Library" / "Logs" / "claude-top.log"
    agent: dict = {
        "Label": AGENT_LABEL,
        "ProgramArguments": argv,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "Umask": 0o077,
        "StandardOutPath": str(logs),
        "StandardErrorPath": str(logs),
    }
    if python_path:
        agent["EnvironmentVariables"] = {"PYTHONPATH": python_path}
    return plistlib.dumps(agent)


def _commands(manager: str, install: bool) -> list[list[str]]:
    """What starts (or stops) the installed service now."""
    if manager == "systemd":
        if install:
            return [
                ["systemctl", "--user", "daemon-reload"],
                ["systemctl", "--user", "enable", "--now", "claude-top"],
            ]
        return [["systemctl", "--user", "disable", "--now", "claude-top"]]
    domain = f"gui/{os.getuid()}"
    if install:
        return [["launchctl", "bootstrap", domain, str(agent_path())]]
    return [["launchctl", "bootout", f"{domain}/{AGENT_LABEL}"]]


def _run_now(commands: list[list[str]]) -> int:
    if shutil.which(commands[0][0]) is None:
        return fail("service", f"{commands[0][0]} is not on PATH; run by hand: " + _shown(commands))
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip()
            return fail("service", f"`{' '.join(command)}` failed ({done.returncode}): {why}")
        print(f"ran: {' '.join(command)}")
    return EXIT_OK


def _shown(commands: list[list[str]]) -> str:
    return " && ".join(" ".join(c) for c in commands)


def run_service(args: argparse.Namespace, db_path: str) -> int:
    """Install or uninstall the background `serve`; returns the exit code."""
    manager = args.manager or default_manager()
    path = unit_path() if manager == "systemd" else agent_path()
    if args.action == "uninstall":
        if args.now:
            _run_now(_commands(manager, install=False))  # stopped or not, the file goes
        try:
            path.unlink()
        except FileNotFoundError:
            print(f"no claude-top service at {path}; nothing removed")
            return EXIT_OK
        except OSError as exc:
            return fail("service", f"cannot remove {path}: {exc.strerror or exc}")
        print(f"removed {path}")
        if not args.now:
            print("if it is running, stop it: " + _shown(_commands(manager, install=False)))
        return EXIT_OK
    argv = serve_command(args, db_path)
    python_path = _package_path()
    if manager == "systemd":
        content = systemd_unit(argv, python_path).encode()
    else:
        content = launchd_agent(argv, python_path)
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    except OSError as exc:
        return fail("service", f"cannot write {path}: {exc.strerror or exc}")
    print(f"{'replaced' if existed else 'wrote'} {path}: runs {' '.join(argv)}")
    commands = _commands(manager, install=True)
    if args.now:
        return _run_now(commands)
    print("start it now and at every login: " + _shown(commands))
    return EXIT_OK if path.exists() else EXIT_USAGE
