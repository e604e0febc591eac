"""`claude-top service install|uninstall`: the systemd user unit or launchd agent it writes (and
that the unit's command really starts a receiver), and that uninstall removes it."""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import claude_top
from claude_top.cli import main

PACKAGE_ROOT = str(Path(claude_top.__file__).resolve().parent.parent)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("PYTHONPATH", PACKAGE_ROOT)
    return tmp_path / "home"


def test_install_writes_a_systemd_user_unit_and_uninstall_removes_it(home, tmp_path, capsys):
    db = tmp_path / "my data" / "ct.duckdb"
    code = main(
        ["service", "install", "--db", str(db), "--grpc-port", "4417", "--retention", "30d"]
    )
    assert code == 0
    unit = home / ".config" / "systemd" / "user" / "claude-top.service"
    assert unit.read_text() == "\n".join(
        [
            "[Unit]",
            "Description=claude-top: OpenTelemetry receiver for Claude Code",
            "",
            "[Service]",
            f'ExecStart={sys.executable} -m claude_top.cli serve --db "{db}" --grpc-port 4417 '
            "--http-port 4318 --retention 30d",
            "Restart=on-failure",
            "RestartSec=5",
            "UMask=0077",
            f"Environment=PYTHONPATH={PACKAGE_ROOT}",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )
    out = capsys.readouterr().out
    assert f"wrote {unit}" in out
    assert (
        "start it now and at every login: systemctl --user daemon-reload && "
        "systemctl --user enable --now claude-top"
    ) in out
    assert main(["service", "uninstall"]) == 0
    assert not unit.exists()
    assert f"removed {unit}" in capsys.readouterr().out
    assert main(["service", "uninstall"]) == 0
    assert "nothing removed" in capsys.readouterr().out


def test_the_unit_s_command_starts_a_receiver_on_the_database(home, tmp_path):
    """What systemd would run (ExecStart, unquoted as systemd does) serves the database."""
    db = tmp_path / "100% data" / "ct.duckdb"
    db.parent.mkdir()
    assert (
        main(["service", "install", "--db", str(db), "--grpc-port", "0", "--http-port", "0"]) == 0
    )
    unit = (home / ".config" / "systemd" / "user" / "claude-top.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M)[1]
    env = re.search(r"^Environment=(.*)$", unit, re.M)[1]
    argv = shlex.split(exec_start.replace("%%", "%"))
    name, _, value = env.partition("=")
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, name: value},
    )
    try:
        first = proc.stdout.readline().decode()
        assert first.startswith("claude-top serve: OTLP/gRPC on 127.0.0.1:")
        assert (
            f"database: {db} (" in proc.stdout.readline().decode() + proc.stdout.readline().decode()
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert db.exists()


def test_install_writes_a_launchd_agent_on_macos(home, tmp_path, capsys):
    db = tmp_path / "ct.duckdb"
    assert main(["service", "install", "--manager", "launchd", "--db", str(db)]) == 0
    plist = home / "Library" / "LaunchAgents" / "dev.claude-top.serve.plist"
    agent = plistlib.loads(plist.read_bytes())
    assert agent == {
        "Label": "dev.claude-top.serve",
        "ProgramArguments": [
            sys.executable,
            "-m",
            "claude_top.cli",
            "serve",
            "--db",
            str(db),
            "--grpc-port",
            "4317",
            "--http-port",
            "4318",
        ],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "Umask": 0o077,
        "StandardOutPath": str(home / "Library" / "Logs" / "claude-top.log"),
        "StandardErrorPath": str(home / "Library" / "Logs" / "claude-top.log"),
        "EnvironmentVariables": {"PYTHONPATH": PACKAGE_ROOT},
    }
    assert f"launchctl bootstrap gui/{os.getuid()} {plist}" in capsys.readouterr().out
    assert main(["service", "uninstall", "--manager", "launchd"]) == 0
    assert not plist.exists()


def test_now_without_systemctl_says_what_to_run(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["service", "install", "--now", "--db", str(tmp_path / "ct.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "claude-top service: systemctl is not on PATH; run by hand: systemctl --user" in err
    assert (home / ".config" / "systemd" / "user" / "claude-top.service").exists()
