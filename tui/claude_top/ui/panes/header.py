"""The header line: endpoints, database, ingest rate, age of the last export, window, state,
and how far the first import of Claude Code's transcripts is.

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
DB_PRIORITY = 62
"""The database path goes before the ingest rate; when it is too long it is shortened in the
middle (its file name kept) rather than left out."""
TEAM_PRIORITY = 66
"""The team view's source; where it does not fit, "team view" alone says what is shown."""


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
    alert: tuple[str, str] | None = None
    """(text, "warning" or "error") while a plan window or budget is past an alert threshold."""
    relay: object | None = None
    """The relay's `receiver.forward.RelayStatus`, when forwarding."""
    source: str | None = None
    """A team's source the panes read (its label), instead of this process's store."""
    attached_pid: int | None = None
    """The pid of the `claude-top serve` this UI reads through (None: it is the receiver)."""
    attached_lost: bool = False
    agent: str | None = None
    importing: float | None = None
    """How far the first import of Claude Code's transcripts is (None: not importing)."""


def _home(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home) :] if home != "/" and path.startswith(home + "/") else path


def _relay_parts(app, relay) -> list[tuple[int, Text]]:
    """The relay's state: up to date, lag (exports, age of the oldest), failing and why;
    exports the upstream rejected and ones given up past the journal's bounds."""
    if relay is None:
        return []
    out: list[tuple[int, Text]] = []
    lag = ""
    if relay.lag_exports:
        age = f" {fmt.duration_ms(relay.lag_s * 1000)}" if relay.lag_s is not None else ""
        lag = f"lag {fmt.count(relay.lag_exports)}{age}"
    if relay.state == "failing":
        error = fmt.one_line(relay.error, 48)
        out.append((83, Text(f"relay ✗ {lag}: {error}", style=theme_style(app, "error"))))
    elif lag:
        out.append((83, Text(f"relay {lag}", style=theme_style(app, "warning"))))
    else:
        out.append((55, Text("relay ✓", style=theme_style(app, "success"))))
    lost = []
    if relay.rejected:
        lost.append(f"{fmt.count(relay.rejected)} rejected")
    if relay.dropped:
        lost.append(f"{fmt.count(relay.dropped)} given up")
    if lost:
        out.append((84, Text("relay " + ", ".join(lost), style=theme_style(app, "error"))))
    return out


def shorten_path(path: str, width: int) -> str | None:
    """`path` in at most `width` cells, cut in the middle (`/tmp/cla…/demo.duckdb`); its file
    name is kept whole, so None when even `…/name` does not fit."""
    if len(path) <= width:
        return path
    head, _, name = path.rpartition("/")
    tail = "…/" + name
    if len(tail) > width:
        return None
    return head[: width - len(tail)] + tail


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
        level = state.alert[1] if state.alert else None
        self.set_class(level == "warning", "-warning")
        self.set_class(level == "error", "-error")
        shown = [(text.plain, text.style) for _, text in self.parts()]
        if shown != self._shown:
            self._shown = shown
            self.refresh()

    def parts(self) -> list[tuple[int, Text]]:
        """(priority, text) pieces in display order; lower priority is dropped first."""
        s = self.state
        app = self.app
        out: list[tuple[int, Text]] = [(100, Text("claude-top", style=theme_style(app, "bold")))]
        if s.attached_pid is not None:
            if s.attached_lost:
                lost = f"✗ serve pid {s.attached_pid} gone"
                out.append((97, Text(lost, style=theme_style(app, "error"))))
            else:
                out.append((88, Text(f"attached to pid {s.attached_pid}")))
        if s.source and not s.endpoints:
            team = Text(f"team view {s.source}", style=theme_style(app, "accent"))
            out.append((TEAM_PRIORITY, team))
        elif s.endpoints:
            grpc = s.endpoints.get("grpc", "")
            http = s.endpoints.get("http", "").removeprefix("http://")
            host = grpc.rpartition(":")[0]
            if host and http.startswith(host + ":"):
                http = http[len(host) :]
            out.append((65, Text(f"grpc {grpc} http {http}")))
        else:
            out.append((65, Text("not listening", style=theme_style(app, "warning"))))
        if s.db_path and not s.source:
            out.append((DB_PRIORITY, Text(f"db {_home(s.db_path)}")))
        out += _relay_parts(app, s.relay)
        if s.rate is not None:
            out.append((60, Text(f"{s.rate:.1f} ev/s")))
        if s.backlog:
            out.append(
                (75, Text(f"indexing {fmt.count(s.backlog)}", style=theme_style(app, "warning")))
            )
        if s.index_errors:
            errors = f"✗ {fmt.count(s.index_errors)} not indexed"
            out.append((85, Text(errors, style=theme_style(app, "error"))))
        if s.importing is not None:
            done = f"{s.importing * 100:.0f}%"
            out.append(
                (78, Text(f"importing transcripts {done}", style=theme_style(app, "warning")))
            )
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
        if s.alert:
            out.append((97, Text(s.alert[0], style=theme_style(app, "bold"))))
        return out

    def render(self) -> Text:
        parts = self.parts()
        chosen: set[int] = set()
        width = self.size.width

        def line(indices) -> Text:
            return Text(SEP).join(parts[i][1] for i in sorted(indices))

        for i in sorted(range(len(parts)), key=lambda i: -parts[i][0]):
            if line(chosen | {i}).cell_len + 1 <= width or not chosen:
                chosen.add(i)
            elif parts[i][0] == TEAM_PRIORITY:  # where the source does not fit: what it is
                short = Text("team view", style=parts[i][1].style)
                if line(chosen).cell_len + len(SEP) + short.cell_len + 1 <= width:
                    parts[i] = (TEAM_PRIORITY, short)
                    chosen.add(i)
            elif parts[i][0] == DB_PRIORITY and self.state.db_path:
                room = width - 1 - line(chosen).cell_len - len(SEP) - len("db ")
                path = shorten_path(_home(self.state.db_path), room)
                if path is not None:
                    parts[i] = (DB_PRIORITY, Text(f"db {path}"))
                    chosen.add(i)
        out = Text(" ") + line(chosen)
        out.no_wrap = True
        out.overflow = "ellipsis"
        return out
