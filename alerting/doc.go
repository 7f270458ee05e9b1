// Package alerting evaluates alert rules over the console's history with
// Prometheus's semantics and keeps what they decide.
//
// A Rule (rule.go) reads the history store through Selectors; Eval and
// EvalRange (eval.go, rangeeval.go) compute it with the arithmetic of the
// PromQL expression PromQL renders for it, and Apply (state.go) moves its
// alerts through inactive, pending and firing exactly as Prometheus's
// alerting rule does. The Evaluator runs every rule each interval, keeps
// state and transitions in the Store (console.db) and hands alerts to a
// Notifier (package notify: Alertmanager API v2 and webhooks) without
// waiting for it. The Service is the one way in for pages, the API and the
// CLI: it decides who sees and writes which rule, alert and silence
// (collector.SeriesScope over the policy's rules), validates, previews
// drafts over history, and audits every change.
package alerting
