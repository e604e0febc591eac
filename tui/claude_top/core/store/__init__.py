"""The database and its write path: journal, decode workers, one commit per batch, rollups."""
