package dlq

import (
	"context"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/indexer"
)

// Source is a dead-letter topic or queue being indexed, as a caller may
// see it. The indexer's own counters (Indexed, Duplicates, Lag,
// LastIndexedAt) span every tenant of the source, so they are kept only
// for a caller who may view every tenant there (AllTenants) and zero
// otherwise; Entries and LastEntry are the caller's, counted in the store
// over their scope.
type Source struct {
	indexer.SourceStatus
	AllTenants bool
	Entries    int
	LastEntry  time.Time
}

// Sources lists the sources the caller may view — their names and lag are
// as telling as the entries — and whether the indexers are known at all
// (false: no indexer reports to this service).
func (s *Service) Sources(ctx context.Context, c Caller) ([]Source, bool, error) {
	if s.indexers == nil {
		return nil, false, nil
	}
	scope := s.scope(c)
	counts, err := load(ctx, s.cache, func() string { return "sources|" + scopeKey(scope) }, func(ctx context.Context) ([]dlqstore.SourceCount, error) {
		return s.store.SourceCounts(ctx, scope)
	})
	if err != nil {
		return nil, true, err
	}
	type key struct{ broker, cluster, destination string }
	mine := map[key]Source{}
	for _, sc := range counts {
		mine[key{sc.Broker, sc.Cluster, sc.Destination}] = Source{Entries: sc.Count, LastEntry: sc.LastSeen}
	}
	var out []Source
	for _, st := range s.indexers.Status() {
		r := access.KafkaTopic(st.Cluster, st.Destination)
		if st.Broker == delivery.BrokerRabbitMQ {
			r = access.RabbitQueue(st.VHost, st.Destination)
		}
		if !s.policy.Can(c.P, access.ActionView, r) {
			continue
		}
		src := mine[key{st.Broker, st.Cluster, st.Destination}]
		src.SourceStatus = st
		if src.AllTenants = s.policy.Scope(c.P, access.ActionView, r.Name).All; !src.AllTenants {
			src.Indexed, src.Duplicates, src.Lag, src.LastIndexedAt = 0, 0, 0, time.Time{}
		}
		out = append(out, src)
	}
	return out, true, nil
}
