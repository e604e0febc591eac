"""The pinned Gemini CLI and Codex CLI for the end-to-end tests: find them, or npm-install them
into `.e2e/` beside Claude Code (see `claude_cli.py`, the same pattern).

Run as a script (`python3 tests/e2e/agent_clis.py`) it installs whichever is missing and prints
the binaries' paths; `.ci/run` does that before the tests. Standard library only.

`@google/gemini-cli` is a Node.js program (`bin/gemini`); `@openai/codex` is a Node launcher
(`bin/codex.js`) for the native binary of a platform package (`@openai/codex-linux-x64`, ...).
`CLAUDE_TOP_E2E_GEMINI=/path/to/gemini` / `CLAUDE_TOP_E2E_CODEX=/path/to/codex` point the tests
at other copies of the same versions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".e2e"


class AgentMissing(RuntimeError):
    """A pinned CLI is not here and could not be installed; the message says why."""


@dataclass(frozen=True)
class Pinned:
    """One agent's npm package at the version the tests were written against."""

    name: str
    package: str
    version: str
    command: str
    env_override: str

    def version_of(self, binary: Path) -> str | None:
        """What `--version` says ("0.61.0", "codex-cli 0.169.0" -> "0.169.0"), or None."""
        try:
            out = subprocess.run(
                [str(binary), "--version"],
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        words = out.stdout.split()
        return words[-1] if out.returncode == 0 and words else None

    def find(self) -> Path | None:
        """`$<override>`, else the copy in `.e2e/`; None if absent. Raises AgentMissing when the
        override names a missing or other version."""
        override = os.environ.get(self.env_override)
        if override:
            version = self.version_of(Path(override))
            if version != self.version:
                found = version or f"not a runnable {self.command}"
                raise AgentMissing(
                    f"${self.env_override}={override} is {found}, the tests need {self.version}"
                )
            return Path(override)
        path = CACHE / "node_modules" / ".bin" / self.command
        if path.exists() and self.version_of(path) == self.version:
            return path
        return None

    def install(self) -> Path:
        """`npm install` the pinned package into `.e2e/` (git-ignored); the binary's path."""
        npm = shutil.which("npm")
        spec = f"{self.package}@{self.version}"
        if npm is None:
            raise AgentMissing(
                f"{self.name} {self.version} is not in {CACHE} and npm is not on PATH; install "
                f"Node.js/npm, or run: npm install --no-save --prefix .e2e {spec}"
            )
        CACHE.mkdir(exist_ok=True)
        cmd = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(CACHE)]
        # the packages already there stay: `npm install --no-save` would remove what it is not
        # told to install
        keep = [p for p in pinned_specs() if p != spec]
        print(f"installing the pinned {self.name}:", " ".join([*cmd[1:], spec]), file=sys.stderr)
        try:
            done = subprocess.run([*cmd, spec, *keep], capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired as exc:
            raise AgentMissing(f"npm install timed out after {exc.timeout}s") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            raise AgentMissing(f"npm install failed (exit {done.returncode}):\n{tail}")
        path = self.find()
        if path is None:
            raise AgentMissing(
                f"npm installed {spec} into {CACHE}, but no runnable {self.version} "
                f"{self.command} is there"
            )
        return path

    def ensure(self) -> Path:
        """The pinned CLI, installed first if it is missing. Raises AgentMissing."""
        return self.find() or self.install()


GEMINI = Pinned("Gemini CLI", "@google/gemini-cli", "0.61.0", "gemini", "CLAUDE_TOP_E2E_GEMINI")
CODEX = Pinned("Codex CLI", "@openai/codex", "0.169.0", "codex", "CLAUDE_TOP_E2E_CODEX")


def pinned_specs() -> list[str]:
    """Every npm package `.e2e/` holds for the tests (Claude Code's too, so an install of one
    never removes another)."""
    from claude_cli import CLAUDE_CODE_VERSION, PACKAGE

    return [f"{PACKAGE}@{CLAUDE_CODE_VERSION}", *(f"{p.package}@{p.version}" for p in AGENTS)]


AGENTS = (GEMINI, CODEX)


def main() -> int:
    failed = 0
    for agent in AGENTS:
        try:
            print(agent.ensure())
        except AgentMissing as exc:
            print(f"agent_clis: {exc}", file=sys.stderr)
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main())
