"""OTLP gRPC and HTTP receivers: decode, hand off to the store writer, acknowledge. No UI."""
