"""`claude-top setup`: the settings that point Claude Code at claude-top, printed or merged into
`~/.claude/settings.json` (timestamped backup first, idempotent, never touches a file it cannot
parse)."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from claude_top.core.connect import env_block, shell_exports

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
    path = Path(path).expanduser()
    target = path.resolve() if path.is_symlink() else path
    exists = target.exists()
    original = target.read_text(encoding="utf-8-sig") if exists else None
    theirs = parse_settings(original or "", str(path)).get("env", {})
    kept = {
        k: (str(theirs[k]), env[k])
        for k in INTERVALS
        if k in env and k in theirs and str(theirs[k]) != env[k] and not replace_intervals
    }
    env = {k: theirs[k] if k in kept else v for k, v in env.items()}
    new_text = merge_settings(original, env, where=str(path), transform=transform)
    merged_env = parse_settings(new_text or original or "", str(path)).get("env", {})
    overrides = {k: str(merged_env[k]) for k in _SIGNAL_OVERRIDES if k in merged_env}
    if new_text is None:
        return WriteResult(path, changed=False, overrides=overrides, kept=kept)
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
    return WriteResult(
        path,
        changed=True,
        created=not exists,
        backup=backup,
        diff=diff,
        overrides=overrides,
        kept=kept,
    )
