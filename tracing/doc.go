// Package tracing will hold the OTLP trace receiver, the span store and
// trace assembly. Until the tracing issue lands, the console's own spans
// are exported by cmd/console when OTEL_EXPORTER_OTLP_ENDPOINT is set.
package tracing
