package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/redrive"
)

const dlqUsage = `usage: console dlq <command> [flags]

commands:
  redrive | quarantine | discard | restore   start a job (or plan it with --dry-run)
      --ids 1,2,3 | --group N | --filter 'status=dead&destination=orders.dlq&q=timeout'
      --reason TEXT  --rate N  --canary N --canary-window 30s  --destination kafka:<cluster>/<topic>
      --force  --publish-quarantine  --dry-run  --wait
  jobs [--running]         list jobs, newest first
  job ID                   show a job's progress and the first page of its ledger
  cancel ID                cancel a running job

Every command calls the console's API: --url (CONSOLE_URL, default http://127.0.0.1:8080)
with a token from --token or CONSOLE_TOKEN (console token create --user NAME). --json prints
the API's JSON instead of text.`

// dlqClient calls the console's dead-letter job API with a token.
type dlqClient struct {
	base, token string
	http        *http.Client
}

// do sends body (when not nil) as JSON and decodes the answer into out;
// an error answer becomes an error with the platform's code and message.
func (c *dlqClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("console at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e delivery.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s: %s", e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("console answered %s", resp.Status)
	}
	if out != nil {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = data
			return nil
		}
		return json.Unmarshal(data, out)
	}
	return nil
}

type dlqFlags struct {
	fs         *flag.FlagSet
	url, token *string
	jsonOut    *bool
}

func newDLQFlags(name string, getenv func(string) string) dlqFlags {
	fs := flag.NewFlagSet("dlq "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := getenv("CONSOLE_URL")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	return dlqFlags{fs: fs,
		url:     fs.String("url", def, "console URL (CONSOLE_URL)"),
		token:   fs.String("token", getenv("CONSOLE_TOKEN"), "API token (CONSOLE_TOKEN)"),
		jsonOut: fs.Bool("json", false, "print the API's JSON"),
	}
}

func (f dlqFlags) client() (*dlqClient, error) {
	if *f.token == "" {
		return nil, usageError{"dlq: an API token is required: --token or CONSOLE_TOKEN (console token create --user NAME)"}
	}
	if u, err := url.Parse(*f.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Sprintf("dlq: --url %q is not an http(s) URL", *f.url)}
	}
	return &dlqClient{base: *f.url, token: *f.token, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// runDLQ is `console dlq …`.
func runDLQ(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageError{dlqUsage}
	}
	switch cmd := args[0]; cmd {
	case "redrive", "quarantine", "discard", "restore":
		return runDLQJob(ctx, redrive.Action(cmd), args[1:], stdout, getenv)
	case "jobs":
		f := newDLQFlags("jobs", getenv)
		running := f.fs.Bool("running", false, "only jobs still running")
		if err := f.fs.Parse(args[1:]); err != nil {
			return usageError{"dlq jobs: " + err.Error()}
		}
		c, err := f.client()
		if err != nil {
			return err
		}
		path := "/api/v1/dlq/jobs"
		if *running {
			path += "?running=1"
		}
		var raw json.RawMessage
		if err := c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
			return err
		}
		if *f.jsonOut {
			_, err := fmt.Fprintln(stdout, string(raw))
			return err
		}
		var out struct {
			Jobs []redrive.Job `json:"jobs"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		if len(out.Jobs) == 0 {
			fmt.Fprintln(stdout, "no jobs")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tACTION\tSTATE\tDONE\tFAILED\tTOTAL\tACTOR\tREASON")
		for _, j := range out.Jobs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", j.ID, j.Action, j.State, j.Done, j.Failed, j.Total, j.Actor, oneLine(j.Reason, 60))
		}
		return tw.Flush()
	case "job", "cancel":
		f := newDLQFlags(cmd, getenv)
		id, rest := splitName(args[1:])
		if err := f.fs.Parse(rest); err != nil {
			return usageError{"dlq " + cmd + ": " + err.Error()}
		}
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			return usageError{fmt.Sprintf("usage: console dlq %s ID", cmd)}
		}
		c, err := f.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if cmd == "cancel" {
			err = c.do(ctx, http.MethodPost, "/api/v1/dlq/jobs/"+id+"/cancel", struct{}{}, &raw)
		} else {
			err = c.do(ctx, http.MethodGet, "/api/v1/dlq/jobs/"+id, nil, &raw)
		}
		if err != nil {
			return err
		}
		if *f.jsonOut {
			_, err := fmt.Fprintln(stdout, string(raw))
			return err
		}
		var j redrive.Job
		if err := json.Unmarshal(raw, &j); err != nil {
			return err
		}
		printJob(stdout, j)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, dlqUsage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown dlq command %q\n%s", cmd, dlqUsage)}
	}
}

func runDLQJob(ctx context.Context, action redrive.Action, args []string, stdout io.Writer, getenv func(string) string) error {
	f := newDLQFlags(string(action), getenv)
	ids := f.fs.String("ids", "", "entry ids, comma-separated")
	group := f.fs.Int64("group", 0, "failure group id")
	filter := f.fs.String("filter", "", "entries filter as a query string (status, broker, cluster, destination, event_type, error_code, tenant, from, to, group, q)")
	reason := f.fs.String("reason", "", "why (kept in the audit log; required to start)")
	rate := f.fs.Float64("rate", 0, "messages per second (default 50)")
	canary := f.fs.Int("canary", 0, "send the first N, wait --canary-window, stop if any dead-letters again")
	window := f.fs.Duration("canary-window", 0, "how long to watch the canary (default 30s)")
	dest := f.fs.String("destination", "", "redrive elsewhere: kafka:<cluster>/<topic> or rabbitmq:<vhost>/<queue>")
	force := f.fs.Bool("force", false, "start although another job runs on a destination")
	pubQ := f.fs.Bool("publish-quarantine", false, "quarantine: also publish to <topic>.quarantine")
	dry := f.fs.Bool("dry-run", false, "print the plan only")
	wait := f.fs.Bool("wait", false, "wait until the job ends, printing progress")
	if err := f.fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("dlq %s: %v\n%s", action, err, dlqUsage)}
	}
	sel, err := parseSelector(*ids, *group, *filter)
	if err != nil {
		return usageError{fmt.Sprintf("dlq %s: %v", action, err)}
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	req := redrive.Request{Action: action, Selector: sel, Rate: *rate, DryRun: *dry, Canary: *canary, CanaryWindow: *window,
		Target: *dest, Reason: *reason, Force: *force, PublishQuarantine: *pubQ}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/api/v1/dlq/jobs", req, &raw); err != nil {
		return err
	}
	if *dry {
		if *f.jsonOut {
			_, err := fmt.Fprintln(stdout, string(raw))
			return err
		}
		var out struct {
			Plan redrive.Plan `json:"plan"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		printPlan(stdout, out.Plan)
		return nil
	}
	var j redrive.Job
	if err := json.Unmarshal(raw, &j); err != nil {
		return err
	}
	if !*wait {
		if *f.jsonOut {
			_, err := fmt.Fprintln(stdout, string(raw))
			return err
		}
		printJob(stdout, j)
		return nil
	}
	for !j.Finished() {
		if !*f.jsonOut {
			fmt.Fprintf(stdout, "job %d %s: %d of %d done, %d failed, %.0f msgs/s\n", j.ID, j.State, j.Done, j.Total, j.Failed, j.CurrentRate)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting; job %d goes on (console dlq cancel %d stops it)", j.ID, j.ID)
		case <-time.After(time.Second):
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/dlq/jobs/"+strconv.FormatInt(j.ID, 10), nil, &raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &j); err != nil {
			return err
		}
	}
	if *f.jsonOut {
		_, err := fmt.Fprintln(stdout, string(raw))
		return err
	}
	printJob(stdout, j)
	if j.State != dlqstore.JobCompleted || j.Failed > 0 {
		return fmt.Errorf("job %d ended %s with %d failed", j.ID, j.State, j.Failed)
	}
	return nil
}

// parseSelector reads exactly one of --ids, --group and --filter.
func parseSelector(ids string, group int64, filter string) (redrive.Selector, error) {
	var sel redrive.Selector
	n := 0
	if ids != "" {
		n++
		for _, s := range strings.Split(ids, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil || id <= 0 {
				return sel, fmt.Errorf("--ids: %q is not an entry id", s)
			}
			sel.IDs = append(sel.IDs, id)
		}
	}
	if group != 0 {
		n++
		sel.Group = group
	}
	if filter != "" {
		n++
		q, err := url.ParseQuery(filter)
		if err != nil {
			return sel, fmt.Errorf("--filter: %v", err)
		}
		// The fields a job's filter has, as the API takes them: limit and
		// cursor page a list, and anything else is a typo to refuse.
		for k := range q {
			if !dlqstore.FilterField(k) {
				return sel, fmt.Errorf("--filter: unknown field %q", k)
			}
		}
		f, err := dlqstore.ParseValues(q)
		if err != nil {
			return sel, fmt.Errorf("--filter %s", delivery.ErrorMessage(err))
		}
		sel.Filter = &f
	}
	if n != 1 {
		return sel, errors.New("give exactly one of --ids, --group or --filter")
	}
	return sel, nil
}

func printPlan(w io.Writer, p redrive.Plan) {
	noun := "entries"
	if p.Count == 1 {
		noun = "entry"
	}
	fmt.Fprintf(w, "%s would act on %d %s", p.Action, p.Count, noun)
	if p.EstimatedTime > 0 {
		fmt.Fprintf(w, " (about %s at %g msgs/s", p.EstimatedTime, p.Rate)
		if p.Canary > 0 && p.CanaryWindow > 0 {
			fmt.Fprintf(w, ", including a %s wait after a canary of %d", p.CanaryWindow, p.Canary)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
	for _, t := range p.Targets {
		fmt.Fprintf(w, "  %6d  %s\n", t.Count, t.Target)
	}
	for _, s := range p.Sample {
		fmt.Fprintf(w, "  sample entry %d → %s: %s\n", s.EntryID, s.Target, oneLine(s.ErrorMessage, 80))
		for _, h := range s.HeadersAdded {
			fmt.Fprintf(w, "      + %s: %s\n", h.Key, oneLine(string(h.Value), 80))
		}
		for _, k := range s.HeadersRemoved {
			fmt.Fprintf(w, "      - %s\n", k)
		}
	}
	for _, x := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
}

func printJob(w io.Writer, j redrive.Job) {
	fmt.Fprintf(w, "job %d: %s %s by %s — %d of %d done, %d failed, %d cancelled, %d remaining\n",
		j.ID, j.Action, j.State, j.Actor, j.Done, j.Total, j.Failed, j.Cancelled, j.Remaining)
	if j.Error != "" {
		fmt.Fprintf(w, "  %s\n", j.Error)
	}
	if !j.Finished() && j.ETA > 0 {
		fmt.Fprintf(w, "  %.0f msgs/s, about %s left\n", j.CurrentRate, j.ETA)
	}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// commandClient is the API client of the flags for another command that
// shares dlq's flags and client (alerts, export), its usage errors naming
// that command.
func commandClient(name string, f dlqFlags) (*dlqClient, error) {
	c, err := f.client()
	if ue, ok := err.(usageError); ok {
		return nil, usageError{name + strings.TrimPrefix(ue.msg, "dlq")}
	}
	return c, err
}
