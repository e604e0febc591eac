"""`c` copies the connect settings (and a span's attributes) where the user can paste them, and
says where: tmux's paste buffer inside tmux (whose default `set-clipboard external` drops the
terminal escape Textual copies with), else a file named in the message."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from uihelpers import make_app, settle

from claude_top.core.store.database import Store

SETTINGS_FILE = "claude-top-settings.sh"
"""In the export folder."""
SIZES = [(120, 40), (80, 24)]


@pytest.fixture
def empty_store():
    store = Store.open(":memory:")
    yield store
    store.close()


@pytest.fixture
def tmux_server(tmp_path, monkeypatch):
    """A tmux server of its own (default options: set-clipboard external), as $TMUX."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    sock = tmp_path / "tmux.sock"
    subprocess.run(
        ["tmux", "-S", str(sock), "-f", "/dev/null", "new-session", "-d", "sleep 600"], check=True
    )
    monkeypatch.setenv("TMUX", f"{sock},0,0")
    yield sock
    subprocess.run(["tmux", "-S", str(sock), "kill-server"], check=False)


def _notes(app) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.mark.parametrize("size", SIZES, ids=["120x40", "80x24"])
async def test_c_in_tmux_fills_tmux_s_paste_buffer(empty_store, tmux_server, tmp_path, size):
    app = make_app(empty_store, export_dir=tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert app.main.empty
        await pilot.press("c")
        await pilot.pause()
        shell = app.main.query_one("#connect").shell_text
    buffer = subprocess.run(
        ["tmux", "-S", str(tmux_server), "show-buffer"], capture_output=True, text=True
    ).stdout
    assert buffer == shell + "\n"
    assert "export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317" in buffer
    assert _notes(app) == ["connect settings copied into tmux's paste buffer (prefix ] pastes it)"]
    assert not (tmp_path / SETTINGS_FILE).exists()


@pytest.mark.parametrize("size", SIZES, ids=["120x40", "80x24"])
async def test_c_without_a_clipboard_writes_a_file_and_says_so(
    empty_store, tmp_path, monkeypatch, size
):
    for name in ("TMUX", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    app = make_app(empty_store, export_dir=tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause()
        shell = app.main.query_one("#connect").shell_text
    written = tmp_path / SETTINGS_FILE
    assert written.read_text() == shell + "\n"
    assert written.stat().st_mode & 0o777 == 0o600
    assert _notes(app) == [
        f"connect settings written to {written} (no tmux or clipboard tool here to copy it with)"
    ]
