package collector_test

import (
	"os"
	"strings"
	"testing"

	"switchyard/collector"
)

// The README's metric list is the contract users build dashboards and alerts
// on: every exported series must be in it.
func TestREADMEListsEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, nh := range collector.MetricNames() {
		if !strings.Contains(string(b), "`"+nh[0]+"`") {
			t.Errorf("README does not list %s", nh[0])
		}
	}
}
