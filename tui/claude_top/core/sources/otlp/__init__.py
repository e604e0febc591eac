"""OTLP export requests (what the receivers accept): validation, decoding to rows, redaction."""
