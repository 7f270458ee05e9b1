package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"switchyard/alerting"
	"switchyard/delivery"
	"switchyard/tsdb"
)

const alertsUsage = `usage: console alerts <command> [flags]

commands:
  list [--state firing|pending|silenced]    the alerts you may see: severity, rule, labels, state, since
  silence --match 'group="orders"' [--match …] --for 2h --comment TEXT
                                            mute the alerts every matcher selects; prints the silence's id
  silence --expire ID                       end a silence now

Matchers are PromQL's: name="value", name!="value", name=~"regex", name!~"regex"; name the rule
with alertname="…". Every command calls the console's API: --url (CONSOLE_URL, default
http://127.0.0.1:8080) with a token from --token or CONSOLE_TOKEN (console token create --user
NAME). --json prints the API's JSON instead of text.`

// matchFlags collects repeated --match matchers, checked as they come.
type matchFlags []string

func (m *matchFlags) String() string { return strings.Join(*m, ", ") }

func (m *matchFlags) Set(v string) error {
	if _, err := tsdb.ParseMatcher(v); err != nil {
		return fmt.Errorf("%s", delivery.ErrorMessage(err))
	}
	*m = append(*m, strings.TrimSpace(v))
	return nil
}

// runAlerts is `console alerts …`: the alerting API with a token, as
// `console dlq` does for dead-letter jobs (the same flags and client).
func runAlerts(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageError{alertsUsage}
	}
	switch cmd := args[0]; cmd {
	case "list":
		return runAlertsList(ctx, args[1:], stdout, getenv)
	case "silence":
		return runAlertsSilence(ctx, args[1:], stdout, getenv)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, alertsUsage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown alerts command %q\n%s", cmd, alertsUsage)}
	}
}

func runAlertsList(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	f := newDLQFlags("list", getenv)
	state := f.fs.String("state", "", "firing, pending or silenced (default: all)")
	if err := f.fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("alerts list: %v\n%s", err, alertsUsage)}
	}
	if !slices.Contains([]string{"", "firing", "pending", "silenced"}, *state) {
		return usageError{fmt.Sprintf("alerts list: --state %q: want firing, pending or silenced", *state)}
	}
	c, err := commandClient("alerts", f)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {"1000"}}
	if *state != "" {
		q.Set("state", *state)
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/alerts?"+q.Encode(), nil, &raw); err != nil {
		return err
	}
	if *f.jsonOut {
		_, err := fmt.Fprintln(stdout, string(raw))
		return err
	}
	var page alerting.AlertPage
	if err := json.Unmarshal(raw, &page); err != nil {
		return err
	}
	if len(page.Alerts) == 0 {
		fmt.Fprintln(stdout, "no alerts")
		return nil
	}
	printAlerts(stdout, page, time.Now())
	return nil
}

// printAlerts is the list as a table, most recent first as the API sorts
// it, with the counts and a note when the list was cut.
func printAlerts(w io.Writer, page alerting.AlertPage, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tRULE\tLABELS\tSTATE\tSINCE")
	for _, a := range page.Alerts {
		st := string(a.State)
		if len(a.Silenced) > 0 {
			ids := make([]string, len(a.Silenced))
			for i, id := range a.Silenced {
				ids[i] = "#" + strconv.FormatInt(id, 10)
			}
			st += " (silenced by " + strings.Join(ids, ", ") + ")"
		}
		since := a.ActiveAt
		if a.State == alerting.StateFiring && !a.FiredAt.IsZero() {
			since = a.FiredAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Severity, a.RuleName, oneLine(alertLabelsText(a.Labels), 100), st, sinceText(now, since))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d firing, %d pending, %d silenced\n", page.Counts.Firing, page.Counts.Pending, page.Counts.Silenced)
	if page.Total > len(page.Alerts) {
		fmt.Fprintf(w, "showing %d of %d: narrow with --state, or use --json and the API's offset\n", len(page.Alerts), page.Total)
	}
}

// alertLabelsText is an alert's labels but alertname and severity (the
// table's own columns): group="orders", cluster="prod".
func alertLabelsText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "alertname" && k != "severity" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = tsdb.Matcher{Label: k, Op: tsdb.MatchEqual, Value: m[k]}.String()
	}
	return strings.Join(parts, ", ")
}

// sinceText is how long ago t was, to the second below a minute and to
// the minute above: "42s ago", "1h5m ago".
func sinceText(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t).Round(time.Second)
	s := d.String()
	if d >= time.Minute {
		s = strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	return s + " ago (" + t.UTC().Format(time.RFC3339) + ")"
}

func runAlertsSilence(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	f := newDLQFlags("silence", getenv)
	var matchers matchFlags
	f.fs.Var(&matchers, "match", `a matcher, such as 'group="orders"' (repeatable; every one must hold)`)
	dur := f.fs.String("for", "", "how long, such as 30m, 2h or 1d")
	comment := f.fs.String("comment", "", "why (required; shown beside the silence)")
	expire := f.fs.Int64("expire", 0, "end the silence of this id now")
	if err := f.fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("alerts silence: %v\n%s", err, alertsUsage)}
	}
	if *expire != 0 {
		if len(matchers) > 0 || *dur != "" || *comment != "" {
			return usageError{"alerts silence: --expire takes no --match, --for or --comment"}
		}
		if *expire < 0 {
			return usageError{"alerts silence: --expire wants a silence id"}
		}
		c, err := commandClient("alerts", f)
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(ctx, http.MethodDelete, "/api/v1/alerts/silences/"+strconv.FormatInt(*expire, 10), nil, &raw); err != nil {
			return err
		}
		if *f.jsonOut {
			_, err := fmt.Fprintln(stdout, string(raw))
			return err
		}
		fmt.Fprintf(stdout, "silence %d expired\n", *expire)
		return nil
	}
	var problems []string
	if len(matchers) == 0 {
		problems = append(problems, `--match is required, such as --match 'alertname="Lag"'`)
	}
	if d, err := alerting.ParseDuration(*dur); err != nil || d <= 0 {
		problems = append(problems, "--for wants a duration such as 30m, 2h or 1d")
	}
	if strings.TrimSpace(*comment) == "" {
		problems = append(problems, "--comment is required: say why, so the next person knows")
	}
	if len(problems) > 0 {
		return usageError{"alerts silence: " + strings.Join(problems, "; ")}
	}
	c, err := commandClient("alerts", f)
	if err != nil {
		return err
	}
	body := map[string]any{"matchers": []string(matchers), "duration": *dur, "comment": *comment}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/api/v1/alerts/silences", body, &raw); err != nil {
		return err
	}
	if *f.jsonOut {
		_, err := fmt.Fprintln(stdout, string(raw))
		return err
	}
	var sil alerting.Silence
	if err := json.Unmarshal(raw, &sil); err != nil {
		return err
	}
	fmt.Fprintln(stdout, sil.ID)
	return nil
}
