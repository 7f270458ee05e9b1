package collector

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	metrics "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"switchyard/delivery"
)

// ServiceMetrics receives the services' event metrics over OTLP/HTTP
// (what delivery.Telemetry exports: event.processed, event.failed and
// event.processing.duration) and keeps their current cumulative values,
// with the latest exemplar (trace id) of each series. It is a
// prometheus.Collector, so /metrics re-exports them as
// event_processed_total, event_failed_total and
// event_processing_duration_seconds with exemplars, and Samples feeds the
// time-series store.
//
// Only the attributes the platform standard names become labels; anything
// else is dropped, and beyond MaxSeries new series are refused and counted,
// so a misbehaving service cannot blow up the console's memory.
type ServiceMetrics struct {
	maxSeries int
	now       func() time.Time
	dropped   prometheus.Counter
	ignored   prometheus.Counter

	mu     sync.Mutex
	series map[string]*svcSeries
}

// DefaultMaxServiceSeries is the default cap on service-metric series
// (the console's otlp.max_series).
const DefaultMaxServiceSeries = 10000

// ServiceMetricsOptions configures ServiceMetrics; the zero value caps at
// DefaultMaxServiceSeries.
type ServiceMetricsOptions struct {
	MaxSeries  int
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Exported metric names (Prometheus convention for the OTLP names).
const (
	PromEventProcessed = "event_processed_total"
	PromEventFailed    = "event_failed_total"
	PromEventDuration  = "event_processing_duration_seconds"
)

// labelOf maps OTLP attribute keys to label names; other attributes are
// dropped. service comes from the resource's service.name.
var labelOf = map[string]string{
	delivery.AttrEventType: "event_type",
	delivery.AttrSystem:    "messaging_system",
	delivery.AttrDest:      "destination",
	delivery.AttrConsumer:  "consumer",
	delivery.AttrErrorCode: "error_code",
	delivery.AttrTenant:    "tenant",
}

// ServiceLabelNames is the label set of the service metrics, in order.
var ServiceLabelNames = []string{"service", "event_type", "messaging_system", "destination", "consumer", "tenant", "error_code"}

type svcExemplar struct {
	value   float64
	traceID string
	at      time.Time
}

type svcSeries struct {
	name   string // PromEvent*
	labels []string
	// counters
	value float64
	// histograms
	bounds  []float64
	buckets []uint64 // per bound, not cumulative; len(bounds)+1
	sum     float64
	count   uint64
	ex      *svcExemplar
	updated time.Time
	// fresh: a point arrived since History last recorded the series
	// (FreshPoints).
	fresh bool
}

// NewServiceMetrics returns an empty receiver state.
func NewServiceMetrics(opts ServiceMetricsOptions) (*ServiceMetrics, error) {
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxServiceSeries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &ServiceMetrics{
		maxSeries: opts.MaxSeries, now: opts.Now, series: map[string]*svcSeries{},
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_otlp_dropped_series_total",
			Help: "OTLP data points refused because the service-metric series cap was reached."}),
		ignored: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_otlp_ignored_points_total",
			Help: "OTLP data points of metrics the console does not keep (only event.* metrics are kept)."}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{m.dropped, m.ignored, m} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register service metrics: %w", err)
			}
		}
	}
	return m, nil
}

// ErrBadOTLP marks a request body that is not an OTLP metrics export.
var ErrBadOTLP = errors.New("malformed OTLP metrics request")

// IngestResult says what one export did.
type IngestResult struct {
	Accepted int // data points kept
	Ignored  int // points of metrics the console does not keep
	Rejected int // points refused by the series cap or invalid
}

// Ingest decodes an OTLP/HTTP metrics export body (protobuf, or JSON when
// json is true) and applies it. A malformed body returns an error wrapping
// ErrBadOTLP and changes nothing.
func (m *ServiceMetrics) Ingest(body []byte, isJSON bool) (IngestResult, error) {
	req := &colmetrics.ExportMetricsServiceRequest{}
	var err error
	if isJSON {
		err = unmarshalOTLPJSON(body, req)
	} else {
		err = proto.Unmarshal(body, req)
	}
	if err != nil {
		return IngestResult{}, fmt.Errorf("%w: %v", ErrBadOTLP, err)
	}
	var res IngestResult
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		service := attrString(rm.GetResource().GetAttributes(), "service.name")
		for _, sm := range rm.GetScopeMetrics() {
			for _, met := range sm.GetMetrics() {
				m.ingestMetric(service, met, now, &res)
			}
		}
	}
	return res, nil
}

func (m *ServiceMetrics) ingestMetric(service string, met *metrics.Metric, now time.Time, res *IngestResult) {
	switch met.GetName() {
	case delivery.MetricProcessed, delivery.MetricFailed:
		sum := met.GetSum()
		if sum == nil {
			res.Rejected += countPoints(met)
			return
		}
		name := PromEventProcessed
		if met.GetName() == delivery.MetricFailed {
			name = PromEventFailed
		}
		delta := sum.GetAggregationTemporality() == metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
		for _, dp := range sum.GetDataPoints() {
			v := dp.GetAsDouble()
			if _, ok := dp.GetValue().(*metrics.NumberDataPoint_AsInt); ok {
				v = float64(dp.GetAsInt())
			}
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				res.Rejected++
				continue
			}
			s := m.seriesFor(name, service, dp.GetAttributes(), now)
			if s == nil {
				res.Rejected++
				continue
			}
			if delta {
				s.value += v
			} else {
				s.value = v
			}
			if ex := latestExemplar(dp.GetExemplars()); ex != nil {
				s.ex = ex
			}
			res.Accepted++
		}
	case delivery.MetricDuration:
		h := met.GetHistogram()
		if h == nil {
			res.Rejected += countPoints(met)
			return
		}
		delta := h.GetAggregationTemporality() == metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
		for _, dp := range h.GetDataPoints() {
			bounds := dp.GetExplicitBounds()
			counts := dp.GetBucketCounts()
			if len(counts) != len(bounds)+1 || !sort.Float64sAreSorted(bounds) {
				res.Rejected++
				continue
			}
			s := m.seriesFor(PromEventDuration, service, dp.GetAttributes(), now)
			if s == nil {
				res.Rejected++
				continue
			}
			if !delta || !slices.Equal(s.bounds, bounds) {
				if !slices.Equal(s.bounds, bounds) {
					s.buckets = make([]uint64, len(counts))
				}
				s.bounds = append([]float64(nil), bounds...)
				copy(s.buckets, counts)
				s.sum, s.count = dp.GetSum(), dp.GetCount()
			} else {
				for i, c := range counts {
					s.buckets[i] += c
				}
				s.sum += dp.GetSum()
				s.count += dp.GetCount()
			}
			if ex := latestExemplar(dp.GetExemplars()); ex != nil {
				s.ex = ex
			}
			res.Accepted++
		}
	default:
		n := countPoints(met)
		res.Ignored += n
		m.ignored.Add(float64(n))
	}
}

// seriesFor finds or creates a series; nil when the cap refuses a new one.
func (m *ServiceMetrics) seriesFor(name, service string, attrs []*common.KeyValue, now time.Time) *svcSeries {
	vals := map[string]string{"service": service}
	for _, kv := range attrs {
		if l, ok := labelOf[kv.GetKey()]; ok {
			vals[l] = anyString(kv.GetValue())
		}
	}
	labels := make([]string, len(ServiceLabelNames))
	for i, l := range ServiceLabelNames {
		labels[i] = vals[l]
	}
	if name != PromEventFailed {
		labels[len(labels)-1] = "" // error_code belongs to failures only
	}
	key := name + "\xff" + strings.Join(labels, "\xff")
	s, ok := m.series[key]
	if !ok {
		if len(m.series) >= m.maxSeries {
			m.dropped.Inc()
			return nil
		}
		s = &svcSeries{name: name, labels: labels}
		m.series[key] = s
	}
	s.updated, s.fresh = now, true
	return s
}

// Describe is empty: the series set changes at run time (an unchecked collector).
func (m *ServiceMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect emits every series with its latest exemplar.
func (m *ServiceMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	descs := map[string]*prometheus.Desc{}
	desc := func(name string) *prometheus.Desc {
		if d, ok := descs[name]; ok {
			return d
		}
		help := map[string]string{
			PromEventProcessed: "Events handled successfully, as reported by the services over OTLP.",
			PromEventFailed:    "Events whose handling failed for good, as reported by the services over OTLP.",
			PromEventDuration:  "Time to handle one event, as reported by the services over OTLP.",
		}[name]
		labels := ServiceLabelNames
		if name != PromEventFailed {
			labels = labels[:len(labels)-1]
		}
		d := prometheus.NewDesc(name, help, labels, nil)
		descs[name] = d
		return d
	}
	for _, s := range m.series {
		labels := s.labels
		if s.name != PromEventFailed {
			labels = labels[:len(labels)-1]
		}
		var metric prometheus.Metric
		var err error
		if s.name == PromEventDuration {
			cum := map[float64]uint64{}
			var run uint64
			for i, b := range s.bounds {
				run += s.buckets[i]
				cum[b] = run
			}
			metric, err = prometheus.NewConstHistogram(desc(s.name), s.count, s.sum, cum, labels...)
		} else {
			metric, err = prometheus.NewConstMetric(desc(s.name), prometheus.CounterValue, s.value, labels...)
		}
		if err != nil {
			continue
		}
		if s.ex != nil && s.ex.traceID != "" {
			if withEx, err := prometheus.NewMetricWithExemplars(metric, prometheus.Exemplar{
				Value: s.ex.value, Labels: prometheus.Labels{"trace_id": s.ex.traceID}, Timestamp: s.ex.at,
			}); err == nil {
				metric = withEx
			}
		}
		ch <- metric
	}
}

// ServicePoint is the current value of one service series, for the
// time-series store: counters as Value; histograms as cumulative bucket
// counts per upper bound (+Inf last), Sum and Count.
type ServicePoint struct {
	Name    string
	Labels  map[string]string
	Value   float64
	Bounds  []float64
	Buckets []uint64 // cumulative, len(Bounds)+1
	Sum     float64
	Count   uint64
	TraceID string // latest exemplar
}

// Points returns every series' current value.
func (m *ServiceMetrics) Points() []ServicePoint { return m.points(false) }

// FreshPoints returns the current value of the series that received a
// point since the previous call, for History alone to record: a series
// whose service did not export since is left out rather than repeated, so
// a missed export is a missing sample (a gap in its rate), not a flat
// stretch of 0/s followed by a spike.
func (m *ServiceMetrics) FreshPoints() []ServicePoint { return m.points(true) }

func (m *ServiceMetrics) points(fresh bool) []ServicePoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ServicePoint, 0, len(m.series))
	for _, s := range m.series {
		if fresh {
			if !s.fresh {
				continue
			}
			s.fresh = false
		}
		p := ServicePoint{Name: s.name, Labels: map[string]string{}, Value: s.value, Sum: s.sum, Count: s.count}
		for i, l := range ServiceLabelNames {
			if s.labels[i] != "" {
				p.Labels[l] = s.labels[i]
			}
		}
		if s.name == PromEventDuration {
			p.Bounds = append([]float64(nil), s.bounds...)
			var run uint64
			for _, c := range s.buckets {
				run += c
				p.Buckets = append(p.Buckets, run)
			}
		}
		if s.ex != nil {
			p.TraceID = s.ex.traceID
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func latestExemplar(exs []*metrics.Exemplar) *svcExemplar {
	var best *metrics.Exemplar
	for _, e := range exs {
		if len(e.GetTraceId()) == 16 && (best == nil || e.GetTimeUnixNano() > best.GetTimeUnixNano()) {
			best = e
		}
	}
	if best == nil {
		return nil
	}
	v := best.GetAsDouble()
	if _, ok := best.GetValue().(*metrics.Exemplar_AsInt); ok {
		v = float64(best.GetAsInt())
	}
	return &svcExemplar{value: v, traceID: hex.EncodeToString(best.GetTraceId()), at: time.Unix(0, int64(best.GetTimeUnixNano())).UTC()}
}

func countPoints(met *metrics.Metric) int {
	switch d := met.GetData().(type) {
	case *metrics.Metric_Sum:
		return len(d.Sum.GetDataPoints())
	case *metrics.Metric_Gauge:
		return len(d.Gauge.GetDataPoints())
	case *metrics.Metric_Histogram:
		return len(d.Histogram.GetDataPoints())
	case *metrics.Metric_ExponentialHistogram:
		return len(d.ExponentialHistogram.GetDataPoints())
	case *metrics.Metric_Summary:
		return len(d.Summary.GetDataPoints())
	}
	return 0
}

func attrString(kvs []*common.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return anyString(kv.GetValue())
		}
	}
	return ""
}

func anyString(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *common.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *common.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	}
	return ""
}

// unmarshalOTLPJSON decodes OTLP/JSON, whose trace and span ids are hex
// strings (not protobuf-JSON's base64): they are rewritten before protojson
// reads the message.
func unmarshalOTLPJSON(body []byte, req *colmetrics.ExportMetricsServiceRequest) error {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return err
	}
	hexToBase64(doc)
	fixed, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(fixed, req)
}

func hexToBase64(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			switch k {
			case "traceId", "spanId", "trace_id", "span_id":
				if s, ok := val.(string); ok {
					if b, err := hex.DecodeString(s); err == nil {
						x[k] = base64.StdEncoding.EncodeToString(b)
					}
				}
			default:
				hexToBase64(val)
			}
		}
	case []any:
		for _, e := range x {
			hexToBase64(e)
		}
	}
}
