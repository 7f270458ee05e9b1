package notify

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's series. A notification here is one request:
// a webhook payload, a batch of up to 64 alerts posted to an Alertmanager,
// or a silence created or expired there.
type metrics struct {
	notifications *prometheus.CounterVec // attempts, by target and kind
	failed        *prometheus.CounterVec // failed attempts
	queueLength   *prometheus.GaugeVec
	dropped       *prometheus.CounterVec
	up            *prometheus.GaugeVec
	duration      *prometheus.HistogramVec
}

// newMetrics registers the dispatcher's metrics with reg (nil: none). A
// collector already registered, by an earlier dispatcher of the same
// process, is reused.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_alert_notifications_total",
			Help: "Requests made to notification targets (webhook payloads, Alertmanager alert batches and silences), retries included.",
		}, []string{"target", "kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_alert_notifications_failed_total",
			Help: "Requests to notification targets that failed (error status, timeout or connection error).",
		}, []string{"target", "kind"}),
		queueLength: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_alert_notification_queue_length",
			Help: "Entries waiting for a notification target: alerts for an Alertmanager, payloads for a webhook.",
		}, []string{"target"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_alert_notification_dropped_total",
			Help: "Queue entries dropped because a notification target's queue was full.",
		}, []string{"target"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_alert_target_up",
			Help: "0 while the last request to a notification target failed, else 1.",
		}, []string{"target"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_alert_notification_duration_seconds",
			Help:    "Duration of requests to notification targets.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"target"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.notifications = register(reg, m.notifications, &err)
	m.failed = register(reg, m.failed, &err)
	m.queueLength = register(reg, m.queueLength, &err)
	m.dropped = register(reg, m.dropped, &err)
	m.up = register(reg, m.up, &err)
	m.duration = register(reg, m.duration, &err)
	return m, err
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}
