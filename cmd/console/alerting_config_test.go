package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The alerting section is checked at start like every other: a target
// without a usable URL, two targets of one name, an interval out of range
// or a token file that is not there end the start with one line naming
// the setting; the environment sets the interval and the external URL.
func TestConfigValidateAlerting(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "am-token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := defaultConfig()
	c.Alerting.Alertmanagers = []AlertTarget{{URL: "http://am-1:9093", BearerTokenFile: tok}, {Name: "am2", URL: "https://am-2:9093"}}
	c.Alerting.Webhooks = []AlertTarget{{Name: "pager", URL: "http://hooks:8080/alert", Headers: map[string]string{"X-Org": "ops"}}}
	if err := c.Validate(); err != nil {
		t.Fatalf("a valid alerting section refused: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*Alerting)
		want   string
	}{
		"no scheme":        {func(a *Alerting) { a.Webhooks[0].URL = "hooks:8080" }, "alerting.webhooks[0]: url must be an http(s) URL"},
		"duplicate name":   {func(a *Alerting) { a.Webhooks[0].Name = "am2" }, `duplicate target name "am2"`},
		"interval too low": {func(a *Alerting) { a.Interval = Duration(100 * time.Millisecond) }, "alerting.interval 100ms must be between 1s and 10m"},
		"missing token":    {func(a *Alerting) { a.Alertmanagers[0].BearerTokenFile = tok + ".gone" }, "alerting.alertmanagers[0]: bearer_token_file"},
		"repeat < group":   {func(a *Alerting) { a.RepeatInterval = Duration(time.Second) }, "repeat_interval at least group_interval"},
		"bad external url": {func(a *Alerting) { a.ExternalURL = "console.example" }, "alerting.external_url must be an http(s) URL"},
		"header name":      {func(a *Alerting) { a.Webhooks[0].Headers = map[string]string{"X Org": "ops"} }, `"X Org" is not a header name`},
	} {
		bad := c
		bad.Alerting.Alertmanagers = append([]AlertTarget(nil), c.Alerting.Alertmanagers...)
		bad.Alerting.Webhooks = append([]AlertTarget(nil), c.Alerting.Webhooks...)
		tc.change(&bad.Alerting)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}

	env := map[string]string{"CONSOLE_ALERTING_INTERVAL": "30s", "CONSOLE_EXTERNAL_URL": "https://console.example"}
	c = defaultConfig()
	if err := c.loadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Alerting.Interval != Duration(30*time.Second) || c.Alerting.ExternalURL != "https://console.example" {
		t.Fatalf("from the environment: %+v", c.Alerting)
	}
	env["CONSOLE_ALERTING_INTERVAL"] = "soon"
	c = defaultConfig()
	if err := c.loadEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("CONSOLE_ALERTING_INTERVAL=soon accepted")
	}
}
