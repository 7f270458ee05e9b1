package web

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/access"
)

// metrics are the web's own HTTP metrics. Routes are labelled by their
// name in the route table ("topic.show"), never by raw path, so that the
// label set stays bounded.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// ingest counts the OTLP exports services push, by the account that
	// sent them and how they ended (countIngest): their record, since a
	// service's routine push is not an operator's mutation to audit.
	ingest *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_http_requests_total",
			Help: "HTTP requests served by the console, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_otlp_ingest_requests_total",
			Help: "OTLP exports received (metrics and traces, HTTP and gRPC), by the account that sent them and outcome (success, partial, denied, failure).",
		}, []string{"account", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.ingest} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register http metrics: %w", err)
		}
	}
	return m, nil
}

// metricsResource is the console resource /metrics is checked on (action
// scrape).
const metricsResource = access.ConsoleMetrics

// metricsOpen: /metrics is public only when the configuration says so
// (metrics.auth "none"); the route table asks it once, at registration.
func (s *Server) metricsOpen() bool { return s.metricsPublic }
