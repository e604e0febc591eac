"""The key footer, compact in narrow terminals so the main keys stay visible."""

from __future__ import annotations

from textual.events import Resize
from textual.widgets import Footer

COMPACT_BELOW = 100
PALETTE_HINT_FROM = 90


class KeysFooter(Footer):
    """Footer that tightens its spacing, and drops the ^p hint, when the terminal is narrow."""

    def on_resize(self, event: Resize) -> None:
        self.compact = event.size.width < COMPACT_BELOW
        palette = event.size.width >= PALETTE_HINT_FROM
        if palette != self.show_command_palette:
            self.show_command_palette = palette
            self.call_after_refresh(self.recompose)
