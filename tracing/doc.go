// Package tracing receives OTLP spans and tells a message's story from
// them: producer, broker, each consumer attempt, the dead letter and the
// redrive, joined across traces by span links.
//
// Store is the span store, its own SQLite file (traces.db) so that trace
// volume never slows the dead-letter index: Write is the ingest path,
// Spans and LinkingTraces feed trace assembly, Search (with the caller's
// access.TenantScope applied in its SQL) feeds the search and correlation
// pages, and Retain keeps it to an age and a size. DecodeRequest and
// FromOTLP turn an OTLP request into Spans, flagging (never dropping)
// what is wrong with them; Derive fills the fields the store indexes.
//
// Assemble lays a story out as the trace page draws it (the tree across
// span links, clock skew corrected, time in the broker, retry backoff,
// the critical path); Service is the one caller of the store's reads for a
// principal: the tenant and resource scope (in the search's query),
// redacted spans on a trace, masked attributes. Receiver (fed by the
// OTLP/HTTP handler in web/ and by GRPCServer) stores what services
// export and hands it to a Forwarder; LocalExporter writes the console's
// own spans into the same store.
package tracing
