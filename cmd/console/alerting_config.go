package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"switchyard/alerting"
)

// Alerting configures the alert evaluator and where its notifications go.
type Alerting struct {
	// Interval is how often every rule is evaluated (default
	// alerting.DefaultInterval, 15s; CONSOLE_ALERTING_INTERVAL).
	Interval Duration `json:"interval"`
	// ResendDelay is how often a firing alert is re-sent to the
	// Alertmanagers (default 1m, Prometheus's --rules.alert.resend-delay).
	ResendDelay Duration `json:"resend_delay"`
	// ExternalURL is the console's address as its users reach it, for the
	// links sent with every alert (generatorURL); default the listen
	// address on localhost (CONSOLE_EXTERNAL_URL).
	ExternalURL string `json:"external_url"`
	// GroupWait, GroupInterval and RepeatInterval group webhook
	// notifications as Alertmanager's route does (defaults 30s, 5m, 4h).
	GroupWait      Duration `json:"group_wait"`
	GroupInterval  Duration `json:"group_interval"`
	RepeatInterval Duration `json:"repeat_interval"`
	// Alertmanagers receive every firing and resolved alert over their
	// API v2, and the console's silences mirrored.
	Alertmanagers []AlertTarget `json:"alertmanagers"`
	// Webhooks receive grouped notifications with Alertmanager's webhook
	// payload, so existing receivers work unchanged.
	Webhooks []AlertTarget `json:"webhooks"`
}

// AlertTarget is one Alertmanager or webhook.
type AlertTarget struct {
	Name string `json:"name"` // default: its host
	URL  string `json:"url"`
	// Timeout bounds one request (default 10s).
	Timeout Duration `json:"timeout"`
	// BearerTokenFile holds a token sent as "Authorization: Bearer …";
	// read at start, never logged. User and password belong in the URL.
	BearerTokenFile string            `json:"bearer_token_file"`
	Headers         map[string]string `json:"headers"`
}

func defaultAlerting() Alerting {
	return Alerting{Interval: Duration(alerting.DefaultInterval), ResendDelay: Duration(alerting.DefaultResendDelay),
		GroupWait: Duration(30 * time.Second), GroupInterval: Duration(5 * time.Minute), RepeatInterval: Duration(4 * time.Hour)}
}

// problems lists what is wrong with the alerting section.
func (a Alerting) problems() []error {
	var errs []error
	if a.Interval < Duration(time.Second) || a.Interval > Duration(10*time.Minute) {
		errs = append(errs, fmt.Errorf("alerting.interval %s must be between 1s and 10m", time.Duration(a.Interval)))
	}
	if a.ResendDelay < Duration(time.Second) {
		errs = append(errs, fmt.Errorf("alerting.resend_delay must be at least 1s"))
	}
	if a.GroupWait < 0 || a.GroupInterval < Duration(time.Second) || a.RepeatInterval < a.GroupInterval {
		errs = append(errs, fmt.Errorf("alerting: group_wait must not be negative, group_interval at least 1s, repeat_interval at least group_interval"))
	}
	if a.ExternalURL != "" {
		if u, err := url.Parse(a.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("alerting.external_url must be an http(s) URL"))
		}
	}
	names := map[string]bool{}
	for kind, ts := range map[string][]AlertTarget{"alertmanagers": a.Alertmanagers, "webhooks": a.Webhooks} {
		for i, t := range ts {
			u, err := url.Parse(t.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("alerting.%s[%d]: url must be an http(s) URL", kind, i))
				continue
			}
			name := t.targetName()
			if names[name] {
				errs = append(errs, fmt.Errorf("alerting.%s[%d]: duplicate target name %q (set name)", kind, i, name))
			}
			names[name] = true
			if t.Timeout < 0 {
				errs = append(errs, fmt.Errorf("alerting.%s[%d]: timeout must not be negative", kind, i))
			}
			for k := range t.Headers {
				if strings.TrimSpace(k) == "" || strings.ContainsAny(k, " \t\r\n:") {
					errs = append(errs, fmt.Errorf("alerting.%s[%d].headers: %q is not a header name", kind, i, k))
				}
			}
			if t.BearerTokenFile != "" {
				if _, err := os.Stat(t.BearerTokenFile); err != nil {
					errs = append(errs, fmt.Errorf("alerting.%s[%d]: bearer_token_file: %w", kind, i, err))
				}
			}
		}
	}
	return errs
}

// targetName is the target's name, or its host.
func (t AlertTarget) targetName() string {
	if t.Name != "" {
		return t.Name
	}
	if u, err := url.Parse(t.URL); err == nil {
		return u.Host
	}
	return t.URL
}
