-- exporter/clickhouseexporter/internal/sqltemplates/traces_id_ts_lookup_mv.sql
-- opentelemetry-collector-contrib commit 57b29d74154d72320747c8dd2a0b4a1629a39187
CREATE MATERIALIZED VIEW IF NOT EXISTS "otel"."otel_traces_trace_id_ts_mv"
TO "otel"."otel_traces_trace_id_ts"
AS SELECT
              TraceId,
              min(Timestamp) as Start,
              max(Timestamp) as End
   FROM "otel"."otel_traces"
   WHERE TraceId != ''
   GROUP BY TraceId
