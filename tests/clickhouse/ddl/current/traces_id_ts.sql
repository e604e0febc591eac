-- exporter/clickhouseexporter/internal/sqltemplates/traces_id_ts_lookup_table.sql
-- opentelemetry-collector-contrib commit 1b08503058e58c68b9175b4d0663d0aaf16b5398
CREATE TABLE IF NOT EXISTS "otel"."otel_traces_trace_id_ts" (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = AggregatingMergeTree()
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
