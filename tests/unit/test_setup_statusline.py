"""`claude-top setup --write` installs `claude-top statusline` as Claude Code's status line,
chaining the user's previous command (same input, its output first), keeping the object's other
keys; a re-run is a no-op; backup and diff as for the env block."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from claude_top.cli import main
from claude_top.core.sources.statusline.install import install, parse_ours, statusline_command

BASE = "claude-top"
OURS = "claude-top statusline --http-port 4318"


def setup(capsys, path, *args: str) -> tuple[int, str]:
    code = main(["setup", "--write", "--settings", str(path), "--statusline-command", BASE, *args])
    out, _ = capsys.readouterr()
    return code, out


def backups(path) -> list:
    return sorted(path.parent.glob(path.name + ".bak-*"))


def test_a_new_file_gets_the_status_line(capsys, tmp_path):
    path = tmp_path / "settings.json"
    assert setup(capsys, path)[0] == 0
    assert json.loads(path.read_text())["statusLine"] == {"type": "command", "command": OURS}


def test_a_previous_command_is_chained_and_its_keys_kept(capsys, tmp_path):
    path = tmp_path / "settings.json"
    previous = """printf '%s' "$(jq -r .model.id)" # it's mine"""
    original = {"statusLine": {"type": "command", "command": previous, "padding": 2}}
    path.write_text(json.dumps(original, indent=2))
    code, out = setup(capsys, path)
    assert code == 0
    line = json.loads(path.read_text())["statusLine"]
    assert line == {
        "type": "command",
        "command": f"{OURS} --chain {shlex.quote(previous)}",
        "padding": 2,
    }
    assert parse_ours(line["command"]) == {"chain": previous, "http_port": "4318"}
    assert shlex.split(line["command"])[-1] == previous  # what the shell hands the shim
    [backup] = backups(path)
    assert json.loads(backup.read_text()) == original
    assert f'-    "command": {json.dumps(previous)},' in out
    assert f"your previous one still runs, shown first: {previous}" in out


def test_running_it_again_changes_nothing(capsys, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"statusLine": {"type": "command", "command": "~/bin/line"}}))
    setup(capsys, path)
    text = path.read_text()
    code, out = setup(capsys, path)
    assert code == 0 and path.read_text() == text
    assert "nothing changed" in out
    assert len(backups(path)) == 1
    assert "--chain" not in parse_ours(json.loads(text)["statusLine"]["command"])["chain"]


def test_another_port_keeps_the_chain(capsys, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"statusLine": {"type": "command", "command": "~/bin/line"}}))
    setup(capsys, path)
    setup(capsys, path, "--http-port", "5000")
    command = json.loads(path.read_text())["statusLine"]["command"]
    assert command == "claude-top statusline --http-port 5000 --chain '~/bin/line'"


def test_no_statusline_leaves_it_alone(capsys, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"statusLine": {"type": "command", "command": "~/bin/line"}}))
    setup(capsys, path, "--no-statusline")
    assert json.loads(path.read_text())["statusLine"]["command"] == "~/bin/line"


def test_a_kind_it_does_not_know_is_left_alone():
    settings = {"statusLine": {"type": "widget", "name": "x"}}
    assert install(settings, BASE, 4318) == settings


@pytest.mark.parametrize(
    ("command", "ours"),
    [
        ("claude-top statusline", {"chain": None, "http_port": None}),
        (
            "/opt/venv/bin/claude-top statusline --http-port 4400",
            {"chain": None, "http_port": "4400"},
        ),
        ("python3 -m claude_top.cli statusline --chain 'a b'", {"chain": "a b", "http_port": None}),
        ("ccusage statusline", None),
        ("my-claude-top-fork statusline", None),
        ("unbalanced 'quote", None),
    ],
)
def test_what_counts_as_ours(command, ours):
    assert parse_ours(command) == ours


def test_the_printed_instructions_show_the_block(capsys):
    assert main(["setup", "--statusline-command", BASE]) == 0
    out, _ = capsys.readouterr()
    block = json.loads(out[out.index('{\n  "statusLine"') :])
    assert block == {"statusLine": {"type": "command", "command": OURS}}


def test_the_installed_command_runs_the_chain_through_a_shell(tmp_path):
    """The command string as Claude Code runs it (sh -c): the chain arrives intact."""
    previous = """printf '%s\\n' "it's $HOME" """
    command = statusline_command("printf '%s|'", 4318, previous)
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert done.stdout.split("|")[:-1] == ["statusline", "--http-port", "4318", "--chain", previous]
