"""`claude-top setup`: the printed settings, and `--write` against temp settings files (missing,
empty, existing keys, invalid JSON, re-run, symlinked). The status line it also installs is
checked in `test_setup_statusline.py`; tests here that compare whole files leave it out."""

from __future__ import annotations

import json
import os
import re
import shlex

import pytest

from claude_top.cli import main
from claude_top.core.connect import env_block
from claude_top.core.setup import SettingsError, merge_settings, write_settings

GRPC_ENV = {
    "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_TRACES_EXPORTER": "otlp",
    "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
    "OTEL_METRIC_EXPORT_INTERVAL": "10000",
    "OTEL_LOGS_EXPORT_INTERVAL": "1000",
    "OTEL_TRACES_EXPORT_INTERVAL": "1000",
}


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["setup", *args])
    out, err = capsys.readouterr()
    return code, out, err


def exports(out: str) -> dict[str, str]:
    """The `export K=V` lines, values unquoted as a shell would."""
    return {k: shlex.split(v)[0] for k, v in re.findall(r"^export (\w+)=(.+)$", out, re.M)}


def backups(path) -> list:
    return sorted(path.parent.glob(path.name + ".bak-*"))


def test_prints_exports_and_the_settings_block(capsys):
    code, out, _ = run(capsys)
    assert code == 0
    assert exports(out) == GRPC_ENV
    block = json.loads(out[out.index("{\n") : out.index("\n}\n") + 2])
    assert block == {"env": GRPC_ENV}
    for text in ("OTEL_LOG_TOOL_DETAILS=1", "OTEL_LOG_USER_PROMPTS=1", "project settings"):
        assert text in out


@pytest.mark.parametrize(
    ("args", "protocol", "endpoint"),
    [
        (["--protocol", "http/json", "--http-port", "5000"], "http/json", "http://127.0.0.1:5000"),
        (["--protocol", "http/protobuf"], "http/protobuf", "http://127.0.0.1:4318"),
        (["--grpc-port", "4400", "--bind", "0.0.0.0"], "grpc", "http://127.0.0.1:4400"),
        (["--bind", "::1"], "grpc", "http://[::1]:4317"),
    ],
)
def test_ports_bind_and_protocol_in_effect(capsys, args, protocol, endpoint):
    code, out, _ = run(capsys, *args)
    assert code == 0
    env = exports(out)
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == protocol
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint


def test_optional_switches_are_added_when_asked(capsys):
    _, out, _ = run(capsys, "--log-tool-details", "--log-user-prompts")
    assert exports(out) == {**GRPC_ENV, "OTEL_LOG_TOOL_DETAILS": "1", "OTEL_LOG_USER_PROMPTS": "1"}


def test_write_creates_a_missing_file_and_its_folder(capsys, tmp_path):
    path = tmp_path / "home" / ".claude" / "settings.json"
    code, out, _ = run(capsys, "--write", "--no-statusline", "--settings", str(path))
    assert code == 0
    assert path.read_text() == json.dumps({"env": GRPC_ENV}, indent=2) + "\n"
    assert backups(path) == []
    assert "--- /dev/null" in out and f"+++ {path}" in out
    assert '+    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",' in out
    assert f"created {path}" in out


def test_write_merges_into_existing_keys_with_a_backup(capsys, tmp_path):
    path = tmp_path / "settings.json"
    original = {
        "model": "opus",
        "permissions": {"allow": ["Bash(ls:*)"], "deny": []},
        "env": {"FOO": "bar", "OTEL_METRIC_EXPORT_INTERVAL": "60000"},
        "statusLine": {"type": "command", "command": "~/bin/status"},
    }
    original_text = json.dumps(original, indent=2) + "\n"
    path.write_text(original_text)
    code, out, _ = run(capsys, "--write", "--no-statusline", "--settings", str(path))
    assert code == 0
    merged = json.loads(path.read_text())
    assert list(merged) == ["model", "permissions", "env", "statusLine"]
    assert {k: v for k, v in merged.items() if k != "env"} == {
        k: v for k, v in original.items() if k != "env"
    }
    assert merged["env"] == {"FOO": "bar", **GRPC_ENV, "OTEL_METRIC_EXPORT_INTERVAL": "60000"}
    assert list(merged["env"])[:2] == ["FOO", "OTEL_METRIC_EXPORT_INTERVAL"]
    assert path.read_text() == json.dumps(merged, indent=2) + "\n"
    [backup] = backups(path)
    assert backup.read_text() == original_text
    assert f"backup: {backup}" in out
    changed = [line for line in out.splitlines() if line.startswith(("+", "-"))]
    assert not any('"OTEL_METRIC_EXPORT_INTERVAL": "10000"' in line for line in changed)
    assert '"FOO": "bar"' not in "".join(changed)
    assert (
        "kept your OTEL_METRIC_EXPORT_INTERVAL=60000 (claude-top suggests 10000 for a live view; "
        "--set-intervals replaces it)"
    ) in out


def test_set_intervals_replaces_the_file_s_intervals(capsys, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"env": {"OTEL_METRIC_EXPORT_INTERVAL": "60000"}}, indent=2) + "\n")
    code, out, _ = run(capsys, "--write", "--set-intervals", "--settings", str(path))
    assert code == 0
    assert json.loads(path.read_text())["env"] == GRPC_ENV
    assert '-    "OTEL_METRIC_EXPORT_INTERVAL": "60000"' in out
    assert '+    "OTEL_METRIC_EXPORT_INTERVAL": "10000",' in out
    assert "kept your" not in out


def test_rerun_changes_nothing_and_writes_no_backup(capsys, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{\n  "model": "sonnet"\n}\n')
    assert run(capsys, "--write", "--settings", str(path))[0] == 0
    text, stat = path.read_bytes(), path.stat()
    assert len(backups(path)) == 1
    code, out, _ = run(capsys, "--write", "--settings", str(path))
    assert code == 0
    assert "nothing changed" in out
    assert "---" not in out
    assert path.read_bytes() == text
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert len(backups(path)) == 1


def test_a_changed_port_is_written_on_rerun(capsys, tmp_path):
    path = tmp_path / "settings.json"
    run(capsys, "--write", "--settings", str(path))
    code, out, _ = run(
        capsys, "--write", "--settings", str(path), "--protocol", "http/json", "--http-port", "4999"
    )
    assert code == 0
    env = json.loads(path.read_text())["env"]
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/json"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4999"
    assert '-    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",' in out
    assert len(backups(path)) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{\n  "env": {\n    "A": "1",\n  }\n}\n', "not valid JSON (line 4, column 3"),
        ("{'env': {}}", "not valid JSON (line 1"),
        ("[1, 2]", "the top level is a list, not a JSON object"),
        ('"settings"', "the top level is a string, not a JSON object"),
        ('{"env": ["A=1"]}', '"env" is a list, not a JSON object'),
        ('{"env": null}', '"env" is a null, not a JSON object'),
    ],
)
def test_refuses_a_file_it_cannot_merge(capsys, tmp_path, text, message):
    path = tmp_path / "settings.json"
    path.write_text(text)
    code, out, err = run(capsys, "--write", "--settings", str(path))
    assert code == 2
    assert message in err and "left it unchanged" in err and str(path) in err
    assert out == ""
    assert path.read_text() == text
    assert backups(path) == []


def test_an_empty_file_counts_as_an_empty_object(capsys, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("")
    code, _, _ = run(capsys, "--write", "--no-statusline", "--settings", str(path))
    assert code == 0
    assert json.loads(path.read_text()) == {"env": GRPC_ENV}
    [backup] = backups(path)
    assert backup.read_text() == ""


def test_keeps_the_file_indentation_and_mode(capsys, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"model": "opus", "env": {"A": "1"}}, indent=4) + "\n")
    os.chmod(path, 0o600)
    assert run(capsys, "--write", "--settings", str(path))[0] == 0
    data = json.loads(path.read_text())
    assert path.read_text() == json.dumps(data, indent=4) + "\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_writes_through_a_symlink(capsys, tmp_path):
    target = tmp_path / "dotfiles" / "claude-settings.json"
    target.parent.mkdir()
    target.write_text('{"model": "opus"}\n')
    link = tmp_path / "settings.json"
    link.symlink_to(target)
    assert run(capsys, "--write", "--no-statusline", "--settings", str(link))[0] == 0
    assert link.is_symlink()
    assert json.loads(target.read_text()) == {"model": "opus", "env": GRPC_ENV}
    [backup] = backups(link)
    assert backup.read_text() == '{"model": "opus"}\n'


def test_mentions_per_signal_overrides(capsys, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"env": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}}')
    code, out, _ = run(capsys, "--write", "--settings", str(path))
    assert code == 0
    assert "note: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://collector:4317" in out


def test_merge_is_idempotent_and_unwritable_is_an_error(tmp_path):
    env = env_block()
    once = merge_settings('{"a": 1}', env)
    assert once is not None
    assert merge_settings(once, env) is None
    with pytest.raises(SettingsError):
        merge_settings("{", env)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(OSError):
        write_settings(not_a_folder / ".claude" / "settings.json", env)
    assert not_a_folder.read_text() == "x"


def test_an_unwritable_place_is_a_clear_error(capsys, tmp_path):
    blocker = tmp_path / "home"
    blocker.write_text("a file where the folder should be")
    path = blocker / ".claude" / "settings.json"
    code, out, err = run(capsys, "--write", "--settings", str(path))
    assert code == 2
    assert err.startswith(f"claude-top setup: cannot update {path}: ")
    assert out == ""


# --- Gemini CLI and Codex CLI ------------------------------------------------------------

GEMINI_TELEMETRY = {
    "enabled": True,
    "target": "local",
    "otlpEndpoint": "http://127.0.0.1:4317",
    "otlpProtocol": "grpc",
    "traces": True,
    "logPrompts": False,
}
GRPC = {"otlp-grpc": {"endpoint": "http://127.0.0.1:4317"}}
CODEX_OTEL = {
    "exporter": GRPC,
    "trace_exporter": GRPC,
    "metrics_exporter": GRPC,
    "log_user_prompt": False,
}


def toml_block(out: str) -> dict:
    import tomllib

    start = out.index("[otel]\n")
    return tomllib.loads(out[start : out.index("\n\n", start)])


def test_prints_gemini_clis_telemetry_block_and_its_environment(capsys):
    code, out, _ = run(capsys, "--agent", "gemini")
    assert code == 0
    block = json.loads(out[out.index("{\n") : out.index("\n}\n") + 2])
    assert block == {"telemetry": GEMINI_TELEMETRY}
    assert exports(out) == {
        "GEMINI_TELEMETRY_ENABLED": "true",
        "GEMINI_TELEMETRY_TARGET": "local",
        "GEMINI_TELEMETRY_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        "GEMINI_TELEMETRY_OTLP_PROTOCOL": "grpc",
        "GEMINI_TELEMETRY_TRACES_ENABLED": "true",
        "GEMINI_TELEMETRY_LOG_PROMPTS": "false",
    }
    _, out, _ = run(capsys, "--agent", "gemini", "--protocol", "http/json", "--log-user-prompts")
    block = json.loads(out[out.index("{\n") : out.index("\n}\n") + 2])["telemetry"]
    assert (block["otlpProtocol"], block["otlpEndpoint"], block["logPrompts"]) == (
        "http",
        "http://127.0.0.1:4318",
        True,
    )


def test_write_merges_gemini_clis_telemetry_keeping_the_rest(capsys, tmp_path):
    path = tmp_path / ".gemini" / "settings.json"
    path.parent.mkdir()
    original = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "telemetry": {"enabled": False, "outfile": "/tmp/t.log"},
    }
    path.write_text(json.dumps(original, indent=2) + "\n")
    code, out, _ = run(capsys, "--agent", "gemini", "--write", "--settings", str(path))
    assert code == 0
    merged = json.loads(path.read_text())
    assert merged == {
        "security": original["security"],
        "telemetry": {"outfile": "/tmp/t.log", **GEMINI_TELEMETRY},
    }
    assert '-    "enabled": false,' in out and "note: telemetry.outfile" in out
    assert len(backups(path)) == 1
    code, out, _ = run(capsys, "--agent", "gemini", "--write", "--settings", str(path))
    assert "nothing changed" in out and len(backups(path)) == 1
    path.write_text('{"telemetry": true}')
    code, _, err = run(capsys, "--agent", "gemini", "--write", "--settings", str(path))
    assert code == 2 and '"telemetry" is a boolean' in err


def test_prints_codex_clis_otel_table(capsys):
    code, out, _ = run(capsys, "--agent", "codex")
    assert code == 0
    assert toml_block(out) == {"otel": CODEX_OTEL}
    _, out, _ = run(
        capsys, "--agent", "codex", "--protocol", "http/protobuf", "--http-port", "5000"
    )
    otel = toml_block(out)["otel"]
    assert otel["trace_exporter"] == {
        "otlp-http": {"endpoint": "http://127.0.0.1:5000/v1/traces", "protocol": "binary"}
    }
    assert otel["exporter"]["otlp-http"]["endpoint"] == "http://127.0.0.1:5000/v1/logs"


def test_write_merges_codex_clis_otel_table_line_by_line(capsys, tmp_path, monkeypatch):
    home = tmp_path / "codex-home"
    home.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(home))
    path = home / "config.toml"
    original = (
        'model = "o3"  # mine\n'
        "\n"
        "[otel]\n"
        'environment = "dev"\n'
        'exporter = "none"\n'
        "\n"
        "[profiles.fast]\n"
        'model = "gpt-5-mini"\n'
    )
    path.write_text(original)
    code, out, _ = run(capsys, "--agent", "codex", "--write", "--log-user-prompts")
    assert code == 0
    text = path.read_text()
    assert text == (
        'model = "o3"  # mine\n'
        "\n"
        "[otel]\n"
        'environment = "dev"\n'
        'exporter = { otlp-grpc = { endpoint = "http://127.0.0.1:4317" } }\n'
        'trace_exporter = { otlp-grpc = { endpoint = "http://127.0.0.1:4317" } }\n'
        'metrics_exporter = { otlp-grpc = { endpoint = "http://127.0.0.1:4317" } }\n'
        "log_user_prompt = true\n"
        "\n"
        "[profiles.fast]\n"
        'model = "gpt-5-mini"\n'
    )
    [backup] = backups(path)
    assert backup.read_text() == original
    assert '-exporter = "none"' in out and "Restart codex" in out
    assert "nothing changed" in run(capsys, "--agent", "codex", "--write", "--log-user-prompts")[1]
    # a file without the table gets it appended; a missing one is created
    path.write_text('model = "o3"')
    run(capsys, "--agent", "codex", "--write")
    assert path.read_text().startswith('model = "o3"\n\n[otel]\nexporter = {')
    path.unlink()
    run(capsys, "--agent", "codex", "--write")
    assert toml_block(path.read_text() + "\n") == {"otel": CODEX_OTEL}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model = \n", "is not valid TOML"),
        ('otel = "on"\n', '"otel" is not a table'),
        ('otel.exporter = "none"\n', "cannot merge line by line"),
        ('[otel.exporter.otlp-grpc]\nendpoint = "x"\n', "cannot merge line by line"),
    ],
)
def test_refuses_a_codex_config_it_cannot_merge(capsys, tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text)
    code, out, err = run(capsys, "--agent", "codex", "--write", "--settings", str(path))
    assert (code, out) == (2, "")
    assert message in err and "left it unchanged" in err
    assert path.read_text() == text and backups(path) == []


def test_tool_details_are_claude_codes_only(capsys):
    code, _, err = run(capsys, "--agent", "codex", "--log-tool-details")
    assert code == 2 and "Claude Code's only" in err
