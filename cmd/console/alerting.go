package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/alerting/notify"
	"switchyard/collector"
	"switchyard/tsdb"
)

// startAlerting builds the alert evaluator, its notifiers and the service
// the pages and API use, and has goRun start them: the console's own
// /metrics families are recorded into the history (so rules can read
// them), the evaluator runs every alerting.interval, and the dispatcher
// sends on its own goroutines.
func (m *Main) startAlerting(runCtx context.Context, db *sql.DB, store *tsdb.Store, reg *prometheus.Registry,
	scope func() collector.ScopeOptions) (*alerting.Service, error) {
	c := m.Config.Alerting
	ast := alerting.NewStore(db, nil)
	var targets []notify.Target
	add := func(kind notify.Kind, ts []AlertTarget) error {
		for _, t := range ts {
			nt := notify.Target{Name: t.targetName(), Kind: kind, URL: t.URL, Timeout: time.Duration(t.Timeout), Headers: t.Headers}
			if t.BearerTokenFile != "" {
				b, err := os.ReadFile(t.BearerTokenFile)
				if err != nil {
					return fmt.Errorf("alerting target %s: bearer_token_file: %w", nt.Name, err)
				}
				nt.BearerToken = strings.TrimSpace(string(b))
			}
			targets = append(targets, nt)
		}
		return nil
	}
	if err := add(notify.KindAlertmanager, c.Alertmanagers); err != nil {
		return nil, err
	}
	if err := add(notify.KindWebhook, c.Webhooks); err != nil {
		return nil, err
	}
	external := strings.TrimRight(c.ExternalURL, "/")
	if external == "" {
		external = "http://" + displayAddr(m.ln.Addr().String())
	}
	disp, err := notify.New(notify.Options{
		Targets: targets, GroupWait: time.Duration(c.GroupWait), GroupInterval: time.Duration(c.GroupInterval),
		RepeatInterval: time.Duration(c.RepeatInterval), ResendDelay: time.Duration(c.ResendDelay), Interval: time.Duration(c.Interval),
		ExternalURL: external, Store: ast, Registerer: reg, Logger: m.logger.With("component", "notify"),
		Link: func(r *alerting.Rule, a *alerting.Alert) string { return alerting.Links(r.ID, a.Labels)[0].URL },
	})
	if err != nil {
		return nil, err
	}
	eval, err := alerting.NewEvaluator(alerting.EvaluatorOptions{
		Store: ast, History: store, Notifier: disp, Interval: time.Duration(c.Interval), ResendDelay: time.Duration(c.ResendDelay),
		Registerer: reg, Logger: m.logger.With("component", "alerting"),
	})
	if err != nil {
		return nil, err
	}
	if err := eval.Load(runCtx); err != nil {
		return nil, err
	}
	svc, err := alerting.NewService(alerting.ServiceOptions{
		Store: ast, Evaluator: eval, History: store, Policy: access.Policy{}, Audit: m.audit, ScopeOptions: scope,
		Targets: disp.Targets, SyncSilences: disp.SyncSilences, RawRetention: time.Duration(m.Config.History.RawRetention),
	})
	if err != nil {
		return nil, err
	}
	rec, err := collector.NewRegistryHistory(collector.RegistryHistoryOptions{
		Gatherer: reg, Store: store, Families: collector.RecordedFamilies, Interval: time.Duration(m.Config.PollInterval),
		Logger: m.logger.With("component", "history"),
	})
	if err != nil {
		return nil, err
	}
	m.goRun(runCtx, "registry-history", rec.Run)
	m.goRun(runCtx, "notify", disp.Run)
	m.goRun(runCtx, "alerting", eval.Run)
	// Silences mirrored at start (and by the service on every change), so
	// an Alertmanager that restarted empty gets them back.
	m.goRun(runCtx, "silence-sync", func(ctx context.Context) error {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			if ss, err := ast.ListSilences(ctx, alerting.SilenceFilter{}); err == nil {
				disp.SyncSilences(ss)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	return svc, nil
}
