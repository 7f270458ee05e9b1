package main

import (
	"strings"
	"testing"
)

// TestConfigValidateDLQPatterns: dlq.patterns are checked by the matcher
// the collector and the indexers use, so the start refuses exactly what
// they could not use, and accepts what they read (a '[' is a plain
// character in their glob syntax, not a class).
func TestConfigValidateDLQPatterns(t *testing.T) {
	c := defaultConfig()
	c.DLQ.Patterns = []string{"*.parked", "legacy[1].*", "*-dlq"}
	if err := c.Validate(); err != nil {
		t.Errorf("valid patterns refused: %v", err)
	}
	c.DLQ.Patterns = []string{"*.parked", ""}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `dlq: dead-letter patterns: pattern ""`) {
		t.Errorf("an empty pattern: got %v", err)
	}
}
