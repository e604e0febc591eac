"""Copying text where the user can paste it, and saying where it went.

Textual copies with OSC 52, which a terminal may ignore, and tmux does by default
(`set-clipboard external`): inside tmux the text also goes into tmux's paste buffer (`-w` also
hands it to the outer terminal); else to the system clipboard when a tool for it exists. When
none of that can be confirmed, the text is also written to a file, and the message says where.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TOOL_TIMEOUT_S = 3.0
TMUX_LOAD = (["tmux", "load-buffer", "-w", "-"], ["tmux", "load-buffer", "-"])
"""tmux 3.2+ also hands the buffer to the outer terminal (-w); older ones only keep it."""


def _run(argv: list[str], text: str) -> bool:
    try:
        done = subprocess.run(
            argv,
            input=text.encode(),
            stdout=subprocess.DEVNULL,  # xclip stays behind to serve the selection
            stderr=subprocess.DEVNULL,
            timeout=TOOL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _clipboard_tools() -> list[tuple[str, list[str]]]:
    """The system clipboard's command-line tools this session can use, best first."""
    tools: list[tuple[str, list[str]]] = []
    if sys.platform == "darwin":
        tools.append(("pbcopy", ["pbcopy"]))
    if os.environ.get("WAYLAND_DISPLAY"):
        tools.append(("wl-copy", ["wl-copy"]))
    if os.environ.get("DISPLAY"):
        tools.append(("xclip", ["xclip", "-selection", "clipboard"]))
        tools.append(("xsel", ["xsel", "--clipboard", "--input"]))
    return [(name, argv) for name, argv in tools if shutil.which(argv[0])]


def copy_text(app, text: str, fallback: Path) -> str:
    """Copy `text` (OSC 52, then tmux's buffer or the system clipboard; `fallback` when neither
    can be confirmed); returns a sentence saying where it went."""
    app.copy_to_clipboard(text)
    in_tmux = bool(os.environ.get("TMUX")) and shutil.which("tmux") is not None
    if in_tmux and any(_run(argv, text) for argv in TMUX_LOAD):
        return "copied into tmux's paste buffer (prefix ] pastes it)"
    for name, argv in _clipboard_tools():
        if _run(argv, text):
            return f"copied to the clipboard ({name})"
    try:
        fd = os.open(fallback, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return f"sent to the terminal (OSC 52, if it accepts it); cannot write {fallback}: {reason}"
    return f"written to {fallback} (no tmux or clipboard tool here to copy it with)"
