// Package notify delivers the evaluator's alerts: to Alertmanagers through
// their API v2 (alerts re-sent while firing, endsAt on resolve, the
// console's silences mirrored), and to webhooks with Alertmanager's webhook
// payload, grouped as an Alertmanager route groups them (group_wait,
// group_interval, repeat_interval).
//
// The Dispatcher is the one type that matters. Notify and SyncSilences only
// hand work over: every target has its own goroutine and bounded queue, so
// that a hung or failing target (timeouts, retries with backoff) never
// delays an evaluation or another target. What a webhook group last told its
// receiver is persisted through a StateStore, so that a restart neither
// repeats an unchanged group nor forgets one.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/alerting"
	"switchyard/delivery"
)

// Kind is the protocol a target speaks.
type Kind string

// The kinds of target.
const (
	// KindAlertmanager is an Alertmanager's API v2: alerts are posted to
	// /api/v2/alerts, silences mirrored to /api/v2/silences.
	KindAlertmanager Kind = "alertmanager"
	// KindWebhook receives Alertmanager's webhook payload (version 4),
	// so that receivers written for Alertmanager work unchanged.
	KindWebhook Kind = "webhook"
)

// Target is one place notifications go.
type Target struct {
	// Name is unique; it labels the target's metrics and names it on the
	// Alerts page (letters, digits, '_', '.', '-').
	Name string
	Kind Kind
	// URL is an Alertmanager's base URL (http://host:9093) or the
	// webhook's URL. Credentials in it are taken as BasicAuth and never
	// shown.
	URL string
	// Timeout bounds each request; default 10s.
	Timeout time.Duration
	// BearerToken, or User and Password, are sent as the Authorization
	// header. They, and Headers' values, never reach logs, errors or the
	// page.
	BearerToken    string
	User, Password string
	Headers        map[string]string
}

// Options configure a Dispatcher. The zero value of every field is a safe
// default.
type Options struct {
	Targets []Target
	// Webhook grouping, with Alertmanager's route defaults: GroupWait 30s,
	// GroupInterval 5m, RepeatInterval 4h. A group is a rule and the values
	// of its GroupBy labels.
	GroupWait, GroupInterval, RepeatInterval time.Duration
	// ResendDelay is how often a firing alert is re-sent to Alertmanagers
	// (Prometheus's --rules.alert.resend-delay, default 1m); Interval is
	// the evaluation interval (default 15s). Together they make the endsAt
	// of a firing alert, so that Alertmanager resolves it by itself when
	// the console stops sending it.
	ResendDelay, Interval time.Duration
	// ExternalURL is the console's base URL, for generatorURL and the
	// webhook payload's externalURL.
	ExternalURL string
	// Link returns the console page of what an alert is about: an
	// absolute URL, or a path that ExternalURL is put in front of. Nil
	// links to the rule's page, ExternalURL + "/alerts/rules/<id>".
	Link func(r *alerting.Rule, a *alerting.Alert) string
	// Retries is the attempts per send beyond the first: default 3,
	// negative for none. Backoff 1s, 2s, 4s… capped at 30s, ±20% jitter.
	Retries int
	// QueueSize bounds each target's queue (alerts for an Alertmanager,
	// payloads for a webhook); default 1000. When it is full the oldest
	// entry is dropped and counted.
	QueueSize int
	// Store keeps the webhook groups' and the mirrored silences' state
	// across restarts; nil keeps none.
	Store      StateStore
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
	// HTTPClient sends every request; default a client with no global
	// timeout (each request has its target's Timeout).
	HTTPClient *http.Client
}

// StateStore persists what the dispatcher must not forget across restarts.
// *alerting.Store satisfies it. Errors are internal ones.
type StateStore interface {
	LoadGroups(ctx context.Context) ([]alerting.GroupState, error)
	SaveGroup(ctx context.Context, g alerting.GroupState) error
	DeleteGroup(ctx context.Context, target, key string) error
	RemoteSilences(ctx context.Context) ([]alerting.RemoteSilence, error)
	SetRemoteSilence(ctx context.Context, r alerting.RemoteSilence) error
	DeleteRemoteSilence(ctx context.Context, target string, silenceID int64) error
}

// Defaults of Options.
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
	DefaultResendDelay    = time.Minute
	DefaultInterval       = 15 * time.Second
	DefaultTimeout        = 10 * time.Second
	DefaultRetries        = 3
	DefaultQueueSize      = 1000
)

// storeTimeout bounds each write of notifier state, which also happens
// during shutdown.
const storeTimeout = 5 * time.Second

// tickEvery is how often Run looks for webhook groups that are due. Group
// timers are kept in Now's time; this only bounds how late a flush can be.
const tickEvery = time.Second

// Dispatcher sends the evaluator's alerts to every target. It implements
// alerting.Notifier.
type Dispatcher struct {
	opts    Options
	now     func() time.Time
	log     *slog.Logger
	client  *http.Client
	metrics *metrics
	backoff func(attempt int) time.Duration
	// tick is tickEvery; tests set 0 to drive flush themselves, so that
	// what a flush at a time returns is all that time sends.
	tick time.Duration

	targets []*target // in configuration order
	ams     []*target
	hooks   []*target
	persist *persister

	// mu guards lastSent: when each alert (rule id and fingerprint) was
	// last handed to the Alertmanagers (the evaluator's copies of the
	// alerts do not learn of our sends, so the dispatcher keeps
	// Prometheus's LastSentAt itself); and hookCache, what the webhooks
	// need of each alert, with hookSeq counting the Notify calls.
	mu        sync.Mutex
	lastSent  map[alertKey]time.Time
	hookCache map[alertKey]*derived
	hookSeq   uint64

	running atomic.Bool
	// loaded is closed once Run has restored the persisted state; no
	// group is flushed and no silence mirrored before, so that a restart
	// cannot repeat what was already sent.
	loaded chan struct{}
}

var (
	_ alerting.Notifier = (*Dispatcher)(nil)
	_ StateStore        = (*alerting.Store)(nil)
)

type alertKey struct {
	rule int64
	fp   string
}

func keyOf(r *alerting.Rule, a *alerting.Alert) alertKey {
	fp := a.Fingerprint
	if fp == "" {
		fp = alerting.Fingerprint(a.Labels)
	}
	return alertKey{rule: r.ID, fp: fp}
}

var targetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// New validates opts and returns a Dispatcher; Run starts it. Errors are
// EINVALID with the reason per field in Details["fields"].
func New(opts Options) (*Dispatcher, error) {
	opts, targets, err := validate(opts)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("notify metrics: %w", err)
	}
	d := &Dispatcher{
		opts:      opts,
		now:       opts.Now,
		log:       opts.Logger,
		client:    opts.HTTPClient,
		metrics:   m,
		backoff:   backoff,
		tick:      tickEvery,
		lastSent:  map[alertKey]time.Time{},
		hookCache: map[alertKey]*derived{},
		loaded:    make(chan struct{}),
	}
	d.persist = newPersister(opts.Store, d.log)
	for _, tc := range targets {
		t := newTarget(d, tc)
		d.targets = append(d.targets, t)
		if tc.cfg.Kind == KindAlertmanager {
			d.ams = append(d.ams, t)
		} else {
			d.hooks = append(d.hooks, t)
		}
	}
	return d, nil
}

// configured is a target as validated: credentials taken out of its URL.
type configured struct {
	cfg     Target
	display string // the URL without credentials or query values
}

func validate(o Options) (Options, []configured, error) {
	fields := map[string]string{}
	names := map[string]int{}
	var targets []configured
	for i, t := range o.Targets {
		f := fmt.Sprintf("targets[%d].", i)
		switch {
		case t.Name == "":
			fields[f+"name"] = "is required"
		case !targetName.MatchString(t.Name):
			fields[f+"name"] = "must be 1 to 64 letters, digits, '_', '.' or '-'"
		default:
			if j, ok := names[t.Name]; ok {
				fields[f+"name"] = fmt.Sprintf("is the name of targets[%d] too", j)
			}
			names[t.Name] = i
		}
		if t.Kind != KindAlertmanager && t.Kind != KindWebhook {
			fields[f+"kind"] = `must be "alertmanager" or "webhook"`
		}
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
			fields[f+"url"] = "must be an absolute http or https URL"
		} else {
			if u.User != nil {
				if t.User != "" || t.BearerToken != "" {
					fields[f+"url"] = "has credentials and so does the target"
				}
				t.User = u.User.Username()
				t.Password, _ = u.User.Password()
				u.User = nil
			}
			u.Fragment = ""
			t.URL = u.String()
		}
		if t.Timeout < 0 {
			fields[f+"timeout"] = "must not be negative"
		} else if t.Timeout == 0 {
			t.Timeout = DefaultTimeout
		}
		if t.BearerToken != "" && (t.User != "" || t.Password != "") {
			fields[f+"bearer_token"] = "is set together with user and password; choose one"
		}
		if t.Password != "" && t.User == "" {
			fields[f+"user"] = "is required with a password"
		}
		for k := range t.Headers {
			switch {
			case k == "" || strings.ContainsAny(k, " \t\r\n:"):
				fields[f+"headers"] = fmt.Sprintf("header name %q is not valid", k)
			case strings.EqualFold(k, "Authorization") && (t.BearerToken != "" || t.User != ""):
				fields[f+"headers"] = "Authorization is set by bearer_token or user; not both"
			}
		}
		for _, v := range t.Headers {
			if strings.ContainsAny(v, "\r\n") {
				fields[f+"headers"] = "header values must not contain line breaks"
			}
		}
		c := configured{cfg: t}
		if u != nil {
			c.display = displayURL(u)
		}
		targets = append(targets, c)
	}
	dur := func(name string, v *time.Duration, def time.Duration) {
		switch {
		case *v < 0:
			fields[name] = "must not be negative"
		case *v == 0:
			*v = def
		}
	}
	dur("group_wait", &o.GroupWait, DefaultGroupWait)
	dur("group_interval", &o.GroupInterval, DefaultGroupInterval)
	dur("repeat_interval", &o.RepeatInterval, DefaultRepeatInterval)
	dur("resend_delay", &o.ResendDelay, DefaultResendDelay)
	dur("interval", &o.Interval, DefaultInterval)
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	switch {
	case o.QueueSize < 0:
		fields["queue_size"] = "must not be negative"
	case o.QueueSize == 0:
		o.QueueSize = DefaultQueueSize
	}
	if o.ExternalURL != "" {
		u, err := url.Parse(o.ExternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fields["external_url"] = "must be an absolute http or https URL"
		}
		o.ExternalURL = strings.TrimRight(o.ExternalURL, "/")
	}
	if len(fields) > 0 {
		e := delivery.Errorf(delivery.EINVALID, "notification settings are not valid")
		e.Details = map[string]any{"fields": fields}
		return o, nil, e
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	return o, targets, nil
}

// displayURL is u as the page shows it: no credentials, and query values
// (where webhook URLs often carry a token) replaced.
func displayURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			q[k] = []string{"redacted"}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// Run sends until ctx is done. It first restores the persisted state, then
// starts a goroutine per target, one for flushing webhook groups and one
// for persisting; it returns once they have all stopped. An error means the
// state could not be loaded.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("notify: dispatcher already running")
	}
	if err := d.load(ctx); err != nil {
		return err
	}
	close(d.loaded)
	pctx, stopPersist := context.WithCancel(context.WithoutCancel(ctx))
	persisted := make(chan struct{})
	go func() {
		defer close(persisted)
		d.persist.run(pctx)
	}()
	var wg sync.WaitGroup
	for _, t := range d.targets {
		wg.Go(func() { t.run(ctx) })
	}
	if d.tick > 0 {
		wg.Go(func() {
			tick := time.NewTicker(d.tick)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					d.flush(d.now())
				}
			}
		})
	}
	wg.Wait()
	stopPersist()
	<-persisted
	return nil
}

// load restores the webhook groups' last notifications and the mirrored
// silences' remote ids. State of targets no longer configured is deleted:
// nothing would ever use it.
func (d *Dispatcher) load(ctx context.Context) error {
	st := d.opts.Store
	if st == nil {
		for _, t := range d.hooks {
			t.wh.restore(nil)
		}
		return nil
	}
	gs, err := st.LoadGroups(ctx)
	if err != nil {
		return fmt.Errorf("load notification groups: %w", err)
	}
	rs, err := st.RemoteSilences(ctx)
	if err != nil {
		return fmt.Errorf("load mirrored silences: %w", err)
	}
	byName := map[string]*target{}
	for _, t := range d.targets {
		byName[t.cfg.Name] = t
	}
	perTarget := map[string][]alerting.GroupState{}
	for _, g := range gs {
		if t := byName[g.Target]; t != nil && t.wh != nil {
			perTarget[g.Target] = append(perTarget[g.Target], g)
			continue
		}
		if err := st.DeleteGroup(ctx, g.Target, g.Key); err != nil {
			d.log.Warn("delete notification group of a removed target", "target", g.Target, "err", err)
		}
	}
	for _, t := range d.hooks {
		t.wh.restore(perTarget[t.cfg.Name])
	}
	for _, r := range rs {
		if t := byName[r.Target]; t != nil && t.am != nil {
			t.am.remote[r.SilenceID] = r.RemoteID
			continue
		}
		if err := st.DeleteRemoteSilence(ctx, r.Target, r.SilenceID); err != nil {
			d.log.Warn("delete mirrored silence of a removed target", "target", r.Target, "err", err)
		}
	}
	return nil
}

// Notify takes the alerts of the evaluation at `at`: every rule's firing
// alerts and its recently resolved ones (inactive with ResolvedAt). ns is
// the complete set of that evaluation: a webhook alert no longer in it is
// taken as resolved at `at`. Notify never blocks on a target: it queues
// the alerts that Alertmanagers need now, and updates the webhook groups in
// memory.
func (d *Dispatcher) Notify(at time.Time, ns []alerting.Notification) {
	if len(d.ams) > 0 {
		if batch := d.dueAlerts(at, ns); len(batch) > 0 {
			for _, t := range d.ams {
				t.pushAlerts(batch)
			}
		}
	}
	if len(d.hooks) > 0 {
		in := d.webhookAlerts(at, ns)
		for _, t := range d.hooks {
			t.wh.update(at, in)
		}
	}
}

// SyncSilences mirrors the console's silences to every Alertmanager
// target: those active or pending that have no remote copy yet are created
// there (createdBy "<user> via switchyard"), the remote copies of those
// that ended or vanished are expired. It only hands the list over: call it
// whenever silences change, and now and then (a mirror that failed is
// retried at the next call).
func (d *Dispatcher) SyncSilences(ss []alerting.Silence) {
	for _, t := range d.ams {
		t.am.setSilences(ss)
		t.signal()
	}
}

// Targets returns every target's health, in configuration order.
func (d *Dispatcher) Targets() []alerting.TargetStatus {
	out := make([]alerting.TargetStatus, 0, len(d.targets))
	for _, t := range d.targets {
		out = append(out, t.snapshot())
	}
	return out
}

// flush sends what webhook groups due at now have to say. Run calls it
// every tickEvery with Now; tests call it with the time they set. It
// returns how many notifications it queued.
func (d *Dispatcher) flush(now time.Time) int {
	select {
	case <-d.loaded:
	default:
		return 0
	}
	n := 0
	for _, t := range d.hooks {
		notes := t.wh.flush(now)
		t.pushNotes(notes)
		n += len(notes)
	}
	return n
}

// link is the generatorURL of an alert.
func (d *Dispatcher) link(r *alerting.Rule, a *alerting.Alert) string {
	if d.opts.Link == nil {
		return d.opts.ExternalURL + alerting.RuleURL(r.ID)
	}
	l := d.opts.Link(r, a)
	if strings.HasPrefix(l, "/") {
		return d.opts.ExternalURL + l
	}
	return l
}
