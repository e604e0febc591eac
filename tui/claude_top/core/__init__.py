"""Data only: OTLP decoding, the DuckDB store, queries and export. Never imports textual."""
