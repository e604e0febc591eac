"""The pinned Claude Code CLI for the end-to-end tests: find it, or npm-install it into `.e2e/`.

Run as a script (`python3 tests/e2e/claude_cli.py`) it installs the CLI when it is missing and
prints the binary's path; `.ci/run` does that before the tests. Standard library only.

The npm package `@anthropic-ai/claude-code` carries the native binary in a platform package
(`@anthropic-ai/claude-code-linux-x64`, ...), which runs without Node; its postinstall only
copies that binary over `bin/claude.exe`, so the platform package's binary is used directly.
`CLAUDE_TOP_E2E_CLAUDE=/path/to/claude` points the tests at another copy of the same version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CLAUDE_CODE_VERSION = "2.1.328"
PACKAGE = "@anthropic-ai/claude-code"
REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".e2e"
ENV_OVERRIDE = "CLAUDE_TOP_E2E_CLAUDE"


class ClaudeMissing(RuntimeError):
    """The pinned CLI is not here and could not be installed; the message says why."""


def _candidates() -> list[Path]:
    modules = CACHE / "node_modules" / "@anthropic-ai"
    exe = "claude.exe" if sys.platform == "win32" else "claude"
    found = sorted(modules.glob(f"claude-code-*/{exe}"))
    found += [modules / "claude-code" / "bin" / "claude.exe"]
    return found


def version_of(binary: Path) -> str | None:
    """What `claude --version` says ("2.1.328 (Claude Code)" -> "2.1.328"), or None."""
    try:
        out = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "DISABLE_AUTOUPDATER": "1"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    words = out.stdout.split()
    return words[0] if out.returncode == 0 and words else None


def find_claude() -> Path | None:
    """The pinned CLI: `$CLAUDE_TOP_E2E_CLAUDE`, else the copy in `.e2e/`; None if absent.

    Raises ClaudeMissing when `$CLAUDE_TOP_E2E_CLAUDE` names a missing or other version.
    """
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        version = version_of(Path(override))
        if version != CLAUDE_CODE_VERSION:
            raise ClaudeMissing(
                f"${ENV_OVERRIDE}={override} is {version or 'not a runnable claude'}, "
                f"the tests need {CLAUDE_CODE_VERSION}"
            )
        return Path(override)
    for path in _candidates():
        runnable = path.is_file() and os.access(path, os.X_OK)
        if runnable and version_of(path) == CLAUDE_CODE_VERSION:
            return path
    return None


def install_claude() -> Path:
    """`npm install` the pinned package into `.e2e/` (git-ignored); the binary's path."""
    npm = shutil.which("npm")
    if npm is None:
        raise ClaudeMissing(
            f"Claude Code {CLAUDE_CODE_VERSION} is not in {CACHE} and npm is not on PATH; "
            f"install Node.js/npm, or run: npm install --no-save --prefix .e2e "
            f"{PACKAGE}@{CLAUDE_CODE_VERSION}"
        )
    CACHE.mkdir(exist_ok=True)
    cmd = [
        npm,
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--prefix",
        str(CACHE),
        f"{PACKAGE}@{CLAUDE_CODE_VERSION}",
        *_other_agents(),  # `npm install --no-save` removes what it is not told to install
    ]
    print("installing the pinned Claude Code CLI:", " ".join(cmd[1:]), file=sys.stderr)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise ClaudeMissing(f"npm install timed out after {exc.timeout}s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise ClaudeMissing(f"npm install failed (exit {done.returncode}):\n{tail}")
    path = find_claude()
    if path is None:
        raise ClaudeMissing(
            f"npm installed {PACKAGE}@{CLAUDE_CODE_VERSION} into {CACHE}, but no runnable "
            f"{CLAUDE_CODE_VERSION} binary is there (no platform package for this machine?)"
        )
    return path


def _other_agents() -> list[str]:
    """The other pinned CLIs `.e2e/` holds (Gemini CLI, Codex CLI: `agent_clis.py`)."""
    from agent_clis import AGENTS

    return [f"{a.package}@{a.version}" for a in AGENTS]


def ensure_claude() -> Path:
    """The pinned CLI, installed first if it is missing. Raises ClaudeMissing."""
    return find_claude() or install_claude()


def main() -> int:
    try:
        path = ensure_claude()
    except ClaudeMissing as exc:
        print(f"claude_cli: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
