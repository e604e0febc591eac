"""The Textual UI."""
