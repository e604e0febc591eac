"""`claude-top setup`: the settings that point a coding agent at claude-top, printed or merged
into its own file (timestamped backup first, idempotent, never touches a file it cannot parse):
Claude Code's `env` block of `~/.claude/settings.json`, Gemini CLI's `telemetry` block of
`~/.gemini/settings.json`, Codex CLI's `[otel]` table of `~/.codex/config.toml`."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import shutil
import stat
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from claude_top.core.connect import endpoint_host, env_block, shell_exports

DEFAULT_SETTINGS = Path("~/.claude/settings.json")
INTERVALS = (
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_LOGS_EXPORT_INTERVAL",
    "OTEL_TRACES_EXPORT_INTERVAL",
)
"""A user's choice, kept by `--write` unless asked to replace it (`replace_intervals`): shorter
intervals keep the view live, longer ones send less."""
TOOL_DETAILS = "OTEL_LOG_TOOL_DETAILS"
USER_PROMPTS = "OTEL_LOG_USER_PROMPTS"
# Per-signal variables override the generic endpoint/protocol for that signal.
_SIGNAL_OVERRIDES = tuple(
    f"OTEL_EXPORTER_OTLP_{signal}_{what}"
    for signal in ("TRACES", "METRICS", "LOGS")
    for what in ("ENDPOINT", "PROTOCOL")
)
_INDENT_RE = re.compile(r"\n([ \t]+)\S")


class SettingsError(Exception):
    """The settings file cannot be merged safely (left unchanged)."""


def settings_env(
    bind: str = "127.0.0.1",
    grpc_port: int = 4317,
    http_port: int = 4318,
    protocol: str = "grpc",
    *,
    tool_details: bool = False,
    user_prompts: bool = False,
) -> dict[str, str]:
    """The env block for Claude Code, plus the optional detail switches when asked for."""
    env = env_block(bind, grpc_port, http_port, protocol)
    if tool_details:
        env[TOOL_DETAILS] = "1"
    if user_prompts:
        env[USER_PROMPTS] = "1"
    return env


def instructions(env: dict[str, str], settings_path: Path = DEFAULT_SETTINGS) -> str:
    """What `claude-top setup` prints: shell exports, the settings.json block, and notes."""
    endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    protocol = env["OTEL_EXPORTER_OTLP_PROTOCOL"]
    block = json.dumps({"env": env}, indent=2)
    optional = [
        f"  {TOOL_DETAILS}=1   tool commands, file paths and MCP names in tool events and spans",
        f"  {USER_PROMPTS}=1   prompt text instead of <REDACTED>",
    ]
    return "\n".join(
        [
            f"# Point Claude Code at claude-top: OTLP {protocol} to {endpoint}",
            "",
            "# Either in your shell (~/.bashrc, ~/.zshrc) before starting claude:",
            shell_exports(env),
            "",
            f'# or in the "env" block of {settings_path} (`claude-top setup --write` merges it):',
            block,
            "",
            "Notes:",
            "- CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 turns on traces (beta): the span-tree view.",
            "- Short export intervals (metrics 10 s, events and spans 1 s) keep the view live.",
            "- Optional, off by default for privacy (add them with --log-tool-details /",
            "  --log-user-prompts, or by hand):",
            *optional,
            "- Telemetry is switched on from user settings (~/.claude/settings.json), managed",
            "  settings or the environment: project settings (.claude/settings.json in a repo)",
            "  cannot enable it.",
            "- Export is fail-silent: start claude-top first, then (re)start claude; running",
            "  sessions keep the settings they started with.",
        ]
    )


def _indent(text: str) -> str | int:
    m = _INDENT_RE.search(text)
    if m is None:
        return 2
    ws = m.group(1)
    return "\t" if "\t" in ws else len(ws)


def parse_settings(text: str, where: str = "settings") -> dict:
    """The settings object; raises SettingsError unless it is a JSON object with an object env.

    An empty (or whitespace-only) file counts as `{}`.
    """
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        col = getattr(exc, "colno", None)
        at = f" (line {line}, column {col}: {exc.msg})" if line is not None else f" ({exc})"
        raise SettingsError(f"{where} is not valid JSON{at}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{where}: the top level is a {_kind(data)}, not a JSON object")
    env = data.get("env", {})
    if not isinstance(env, dict):
        raise SettingsError(f'{where}: "env" is a {_kind(env)}, not a JSON object')
    return data


def _kind(value: object) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def merge_settings(
    text: str | None, env: dict[str, str], where: str = "settings", transform=None
) -> str | None:
    """`text` with `env` merged into its "env" object (and `transform(settings)` applied, such
    as installing the status line); None when nothing would change.

    Every other key (and every other env key) is kept in place; new env keys are appended. The
    file's indentation is kept (two spaces when it has none). Raises SettingsError.
    """
    data = parse_settings(text or "", where)
    merged = dict(data)
    merged["env"] = {**data.get("env", {}), **env}
    if transform is not None:
        merged = transform(merged)
    if merged == data:
        return None
    return json.dumps(merged, indent=_indent(text or ""), ensure_ascii=False) + "\n"


@dataclass
class WriteResult:
    """What `write_settings` did."""

    path: Path
    changed: bool
    created: bool = False
    backup: Path | None = None
    diff: str = ""
    overrides: dict[str, str] = field(default_factory=dict)
    kept: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Intervals the file already set otherwise: key -> (its value, the one suggested)."""


def backup_path(path: Path, now: float | None = None) -> Path:
    """`settings.json.bak-YYYYmmdd-HHMMSS` beside `path`, numbered if that name is taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    candidate = path.with_name(f"{path.name}.bak-{stamp}")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak-{stamp}-{n}")
        n += 1
    return candidate


def _atomic_write(target: Path, text: str, mode: int | None) -> None:
    tmp = target.with_name(f".{target.name}.claude-top-{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_settings(
    path: Path,
    env: dict[str, str],
    now: float | None = None,
    transform=None,
    *,
    replace_intervals: bool = False,
) -> WriteResult:
    """Merge `env` into the settings file at `path` (created with its folder when missing).

    Export intervals the file already sets are kept (`kept` says which) unless
    `replace_intervals`. A changed existing file is backed up first; an unchanged one is not
    touched. A file that is not a JSON object (or whose "env" is not one) raises SettingsError
    and is left unchanged. Raises OSError when the file cannot be read or written.
    """

    kept: dict[str, tuple[str, str]] = {}

    def merge(original: str | None, where: str) -> str | None:
        theirs = parse_settings(original or "", where).get("env", {})
        kept.update(
            (k, (str(theirs[k]), env[k]))
            for k in INTERVALS
            if k in env and k in theirs and str(theirs[k]) != env[k] and not replace_intervals
        )
        wanted = {k: theirs[k] if k in kept else v for k, v in env.items()}
        return merge_settings(original, wanted, where=where, transform=transform)

    result = write_merged(path, merge, now)
    result.kept = kept
    written = Path(path).expanduser()
    text = written.read_text(encoding="utf-8-sig") if written.exists() else ""
    merged_env = parse_settings(text, str(path)).get("env", {})
    result.overrides = {k: str(merged_env[k]) for k in _SIGNAL_OVERRIDES if k in merged_env}
    return result


def write_merged(
    path: Path, merge: Callable[[str | None, str], str | None], now: float | None = None
) -> WriteResult:
    """Write `merge(original text or None, path)` to `path` (created with its folder when
    missing); `merge` returns None when nothing would change and raises SettingsError for a
    file it cannot merge safely (then nothing is written). A changed existing file is backed up
    first, the new one written atomically with the old one's mode; the diff is returned."""
    path = Path(path).expanduser()
    target = path.resolve() if path.is_symlink() else path
    exists = target.exists()
    original = target.read_text(encoding="utf-8-sig") if exists else None
    new_text = merge(original, str(path))
    if new_text is None:
        return WriteResult(path, changed=False)
    backup = None
    mode = None
    if exists:
        backup = backup_path(path, now)
        shutil.copy2(target, backup)
        mode = stat.S_IMODE(target.stat().st_mode)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(target, new_text, mode)
    diff = "".join(
        difflib.unified_diff(
            (original or "").splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"{path} (before)" if exists else "/dev/null",
            tofile=str(path),
        )
    )
    return WriteResult(path, changed=True, created=not exists, backup=backup, diff=diff)


# --- other agents --------------------------------------------------------------------------

AGENTS = ("claude", "gemini", "codex")
GEMINI_SETTINGS = Path("~/.gemini/settings.json")
CODEX_CONFIG = Path("~/.codex/config.toml")
_CODEX_EXPORTERS = {"exporter": "logs", "trace_exporter": "traces", "metrics_exporter": "metrics"}


def default_path(agent: str) -> Path:
    """The file `setup --write` merges into for `agent` (Codex's honours $CODEX_HOME)."""
    if agent == "gemini":
        return GEMINI_SETTINGS
    if agent == "codex":
        home = os.environ.get("CODEX_HOME")
        return Path(home) / "config.toml" if home else CODEX_CONFIG
    return DEFAULT_SETTINGS


def _endpoint(bind: str, grpc_port: int, http_port: int, protocol: str) -> str:
    port = grpc_port if protocol == "grpc" else http_port
    return f"http://{endpoint_host(bind)}:{port}"


def gemini_telemetry(
    bind: str = "127.0.0.1",
    grpc_port: int = 4317,
    http_port: int = 4318,
    protocol: str = "grpc",
    *,
    log_prompts: bool = False,
) -> dict:
    """Gemini CLI's `telemetry` settings: OTLP to claude-top, traces on. Its `http` protocol
    posts OTLP/JSON to /v1/traces, /v1/logs, /v1/metrics under the endpoint."""
    return {
        "enabled": True,
        "target": "local",
        "otlpEndpoint": _endpoint(bind, grpc_port, http_port, protocol),
        "otlpProtocol": "grpc" if protocol == "grpc" else "http",
        "traces": True,
        "logPrompts": log_prompts,
    }


def gemini_env(telemetry: dict) -> dict[str, str]:
    """The same settings as Gemini CLI's environment variables (they win over the file)."""
    names = {
        "enabled": "GEMINI_TELEMETRY_ENABLED",
        "target": "GEMINI_TELEMETRY_TARGET",
        "otlpEndpoint": "GEMINI_TELEMETRY_OTLP_ENDPOINT",
        "otlpProtocol": "GEMINI_TELEMETRY_OTLP_PROTOCOL",
        "traces": "GEMINI_TELEMETRY_TRACES_ENABLED",
        "logPrompts": "GEMINI_TELEMETRY_LOG_PROMPTS",
    }
    return {
        env: str(telemetry[key]).lower() if isinstance(telemetry[key], bool) else telemetry[key]
        for key, env in names.items()
    }


def merge_gemini(text: str | None, telemetry: dict, where: str = "settings") -> str | None:
    """`text` (Gemini CLI's settings.json) with `telemetry` merged into its "telemetry" object;
    None when nothing would change. Every other key is kept. Raises SettingsError."""
    data = parse_settings(text or "", where)
    block = data.get("telemetry", {})
    if not isinstance(block, dict):
        raise SettingsError(f'{where}: "telemetry" is a {_kind(block)}, not a JSON object')
    merged = {**data, "telemetry": {**block, **telemetry}}
    if merged == data:
        return None
    return json.dumps(merged, indent=_indent(text or ""), ensure_ascii=False) + "\n"


def gemini_instructions(telemetry: dict, path: Path = GEMINI_SETTINGS) -> str:
    """What `claude-top setup --agent gemini` prints."""
    return "\n".join(
        [
            f"# Point Gemini CLI at claude-top: OTLP {telemetry['otlpProtocol']} to "
            f"{telemetry['otlpEndpoint']}",
            "",
            f"# In {path} (`claude-top setup --agent gemini --write` merges it):",
            json.dumps({"telemetry": telemetry}, indent=2),
            "",
            "# or in your shell before starting gemini:",
            shell_exports(gemini_env(telemetry)),
            "",
            "Notes:",
            "- GEMINI_TELEMETRY_* variables win over the file, and so does",
            "  OTEL_EXPORTER_OTLP_ENDPOINT (Claude Code's, if exported in the same shell) when",
            "  otlpEndpoint is not set: keep both pointing at this claude-top.",
            "- Gemini CLI reports no cost: claude-top estimates it from its price table for the",
            "  models the table lists (marked ~ and cost_source=estimate), else shows ?.",
            "- logPrompts sends the prompt text (off unless --log-user-prompts).",
            "- Start claude-top first, then gemini; a running gemini keeps its settings.",
        ]
    )


def codex_otel(
    bind: str = "127.0.0.1",
    grpc_port: int = 4317,
    http_port: int = 4318,
    protocol: str = "grpc",
    *,
    log_user_prompt: bool = False,
) -> dict:
    """Codex CLI's `[otel]` table: logs (its events), traces and metrics to claude-top."""
    base = _endpoint(bind, grpc_port, http_port, protocol)
    out: dict = {}
    for key, signal in _CODEX_EXPORTERS.items():
        if protocol == "grpc":
            out[key] = {"otlp-grpc": {"endpoint": base}}
        else:
            wire = "json" if protocol == "http/json" else "binary"
            out[key] = {"otlp-http": {"endpoint": f"{base}/v1/{signal}", "protocol": wire}}
    out["log_user_prompt"] = log_user_prompt
    return out


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string is a JSON string


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def codex_table(otel: dict) -> str:
    """The `[otel]` table as TOML text."""
    return "[otel]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in otel.items())


_TABLE_RE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")


def merge_codex(text: str | None, otel: dict, where: str = "config.toml") -> str | None:
    """`text` (Codex's config.toml) with the keys of `otel` set in its `[otel]` table, every
    other line kept as it was (the table's other keys, comments, other tables); the table is
    appended when missing. None when nothing would change. Raises SettingsError for a file
    that is not TOML, or whose `otel` is written in a way this cannot merge line by line
    (dotted keys, sub-tables, multi-line values): then it is left for a hand edit."""
    original = text or ""
    try:
        doc = tomllib.loads(original)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{where} is not valid TOML ({exc})") from None
    current = doc.get("otel", {})
    if not isinstance(current, dict):
        raise SettingsError(f'{where}: "otel" is not a table')
    if all(current.get(k) == v for k, v in otel.items()):
        return None
    lines = original.splitlines(keepends=True)
    headers = [(i, m.group(1)) for i, ln in enumerate(lines) if (m := _TABLE_RE.match(ln))]
    starts = [i for i, name in headers if name.replace(" ", "") == "otel"]
    if not starts:
        sep = "" if not original or original.endswith("\n") else "\n"
        new_text = original + sep + ("\n" if original.strip() else "") + codex_table(otel)
    else:
        start = starts[0]
        end = next((i for i, _ in headers if i > start), len(lines))
        ours = {f"{k} = {_toml_value(v)}\n": k for k, v in otel.items()}
        keep: list[str] = []
        for ln in lines[start + 1 : end]:
            m = _KEY_RE.match(ln)
            if m and m.group(1).strip('"') in otel:
                continue
            keep.append(ln)
        while keep and not keep[-1].strip():
            keep.pop()
        body = [*keep, *ours]
        tail = lines[end:]
        new_text = "".join([*lines[: start + 1], *body, *(["\n"] if tail else []), *tail])
    try:
        merged = tomllib.loads(new_text).get("otel", {})
    except tomllib.TOMLDecodeError:
        merged = None
    if not isinstance(merged, dict) or any(merged.get(k) != v for k, v in otel.items()):
        raise SettingsError(
            f"{where}: its [otel] settings are written in a form claude-top cannot merge "
            "line by line; set them by hand (`claude-top setup --agent codex` prints them)"
        )
    return new_text


def codex_instructions(otel: dict, path: Path = CODEX_CONFIG) -> str:
    """What `claude-top setup --agent codex` prints."""
    first = next(iter(otel["exporter"].values()))
    kind = next(iter(otel["exporter"]))
    return "\n".join(
        [
            f"# Point Codex CLI at claude-top: {kind} to {first['endpoint']}",
            "",
            f"# In {path} (`claude-top setup --agent codex --write` merges it):",
            codex_table(otel).rstrip("\n"),
            "",
            "Notes:",
            "- Codex reads this file only (the user's, or $CODEX_HOME/config.toml), not the",
            "  OTEL_* environment; project .codex/config.toml files cannot set [otel].",
            "- exporter is the logs exporter: Codex's events (requests, tokens, tools) travel",
            "  there; trace_exporter gives the span tree, metrics_exporter its metrics.",
            "- Codex reports no cost: claude-top estimates it from its price table (marked ~",
            "  and cost_source=estimate).",
            "- log_user_prompt sends the prompt text (off unless --log-user-prompts).",
            "- Start claude-top first, then codex; a running codex keeps its settings.",
        ]
    )
