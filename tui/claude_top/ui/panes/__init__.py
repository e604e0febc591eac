"""UI panes."""
