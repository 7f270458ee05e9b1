// Package alerting will hold the alert rule model, evaluator, notifiers and
// the Prometheus rule export (alerting issue).
package alerting
