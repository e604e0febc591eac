"""The header line: endpoints, database, ingest rate, age of the last export, window, state.

Parts are taken most useful first while they fit the width, so the line never wraps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from claude_top.core import format as fmt
from claude_top.ui.panes.table import theme_style

SEP = " │ "


@dataclass
class HeaderState:
    """What the header shows; the app fills it in, the header only draws it."""

    endpoints: dict[str, str] | None = None
    db_path: str = ""
    rate: float | None = None
    backlog: int = 0
    index_errors: int = 0
    last_export_ns: int | None = None
    now_ns: int = 0
    window: str = "all"
    text: str = ""
    paused: bool = False
    agent: str | None = None


def _home(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home) :] if home != "/" and path.startswith(home + "/") else path


class HeaderBar(Widget):
    """One line of status across the top of the main view."""

    DEFAULT_CSS = """
    HeaderBar { height: 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.state = HeaderState()
        self._shown: list[tuple[str, object]] | None = None

    def update(self, state: HeaderState) -> None:
        """Show `state`; repaint only if the line's text or colours change (it is asked four
        times a second, and a repaint costs more than building the parts)."""
        self.state = state
        shown = [(text.plain, text.style) for _, text in self.parts()]
        if shown != self._shown:
            self._shown = shown
            self.refresh()

    def parts(self) -> list[tuple[int, Text]]:
        """(priority, text) pieces in display order; lower priority is dropped first."""
        s = self.state
        app = self.app
        out: list[tuple[int, Text]] = [(100, Text("claude-top", style=theme_style(app, "bold")))]
        if s.endpoints:
            grpc = s.endpoints.get("grpc", "")
            http = s.endpoints.get("http", "").removeprefix("http://")
            host = grpc.rpartition(":")[0]
            if host and http.startswith(host + ":"):
                http = http[len(host) :]
            out.append((65, Text(f"grpc {grpc} http {http}")))
        else:
            out.append((65, Text("not listening", style=theme_style(app, "warning"))))
        if s.db_path:
            out.append((10, Text(f"db {_home(s.db_path)}")))
        if s.rate is not None:
            out.append((60, Text(f"{s.rate:.1f} ev/s")))
        if s.backlog:
            out.append(
                (75, Text(f"indexing {fmt.count(s.backlog)}", style=theme_style(app, "warning")))
            )
        if s.index_errors:
            errors = f"✗ {fmt.count(s.index_errors)} not indexed"
            out.append((85, Text(errors, style=theme_style(app, "error"))))
        last = "never" if not s.last_export_ns else fmt.age(s.last_export_ns, s.now_ns) + " ago"
        last = "just now" if last == "now ago" else last
        out.append((70, Text(f"last export {last}")))
        out.append((90, Text(f"window {s.window}", style=theme_style(app, "accent"))))
        if s.agent:
            out.append((82, Text(f"agent {s.agent}", style=theme_style(app, "accent"))))
        if s.text:
            out.append((80, Text(f'filter "{s.text}"', style=theme_style(app, "accent"))))
        if s.paused:
            out.append((95, Text("❚❚ PAUSED", style=theme_style(app, "warning"))))
        return out

    def render(self) -> Text:
        parts = self.parts()
        chosen: set[int] = set()

        def line(indices) -> Text:
            return Text(SEP).join(parts[i][1] for i in sorted(indices))

        for i in sorted(range(len(parts)), key=lambda i: -parts[i][0]):
            if line(chosen | {i}).cell_len + 1 <= self.size.width or not chosen:
                chosen.add(i)
        out = Text(" ") + line(chosen)
        out.no_wrap = True
        out.overflow = "ellipsis"
        return out
