package redrive

import (
	"fmt"

	"switchyard/dlqstore"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics; nil records nothing.
type metrics struct {
	items    *prometheus.CounterVec
	finished *prometheus.CounterVec
}

// newMetrics registers switchyard_dlq_job_items_total{action,outcome},
// switchyard_dlq_jobs_finished_total{action,state} and
// switchyard_dlq_jobs_paused (jobs a broker outage holds up) with reg.
func newMetrics(reg prometheus.Registerer, paused func() float64) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_dlq_job_items_total",
			Help: "Dead-letter entries a job has finished with, by action and outcome (sent, failed, cancelled).",
		}, []string{"action", "outcome"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_dlq_jobs_finished_total",
			Help: "Dead-letter jobs that ended, by action and final state (completed, cancelled, canary_failed, failed).",
		}, []string{"action", "state"}),
	}
	pausedGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchyard_dlq_jobs_paused",
		Help: "Dead-letter jobs a broker outage holds up right now (they retry their batch with backoff).",
	}, paused)
	for _, c := range []prometheus.Collector{m.items, m.finished, pausedGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register redrive metrics: %w", err)
		}
	}
	// Every action's series exist from the start at 0, so that a rate
	// over them and the exported dashboards' panels have a series before
	// the first job ends, and increase() counts the first one.
	for _, a := range []Action{ActionRedrive, ActionEditRedrive, ActionQuarantine, ActionDiscard, ActionRestore} {
		for _, o := range []dlqstore.ItemState{dlqstore.ItemSent, dlqstore.ItemFailed, dlqstore.ItemCancelled} {
			m.items.WithLabelValues(string(a), string(o))
		}
		for _, st := range []dlqstore.JobState{dlqstore.JobCompleted, dlqstore.JobCancelled, dlqstore.JobCanaryFailed, dlqstore.JobFailed} {
			m.finished.WithLabelValues(string(a), string(st))
		}
	}
	return m, nil
}

func (m *metrics) item(action Action, outcome dlqstore.ItemState, n int) {
	if m == nil || n == 0 {
		return
	}
	m.items.WithLabelValues(string(action), string(outcome)).Add(float64(n))
}

func (m *metrics) ended(action Action, state dlqstore.JobState) {
	if m == nil {
		return
	}
	m.finished.WithLabelValues(string(action), string(state)).Inc()
}
