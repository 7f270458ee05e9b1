package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"switchyard/alerting"
	"switchyard/internal/testenv"
	"switchyard/tsdb"
)

// gettableAlert and gettableSilence are the parts of API v2's answers the
// test reads.
type gettableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
	Status       struct {
		State      string   `json:"state"`
		SilencedBy []string `json:"silencedBy"`
	} `json:"status"`
}

type gettableSilence struct {
	ID        string `json:"id"`
	CreatedBy string `json:"createdBy"`
	Comment   string `json:"comment"`
	Matchers  []struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		IsRegex bool   `json:"isRegex"`
		IsEqual bool   `json:"isEqual"`
	} `json:"matchers"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
}

func getJSON[T any](t *testing.T, u string) T {
	t.Helper()
	var out T
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return out
}

func findAlert(as []gettableAlert, labels map[string]string) (gettableAlert, bool) {
	for _, a := range as {
		if mapsEqual(a.Labels, labels) {
			return a, true
		}
	}
	return gettableAlert{}, false
}

func findSilence(ss []gettableSilence, comment string) []gettableSilence {
	var out []gettableSilence
	for _, s := range ss {
		if s.Comment == comment {
			out = append(out, s)
		}
	}
	return out
}

// TestAlertmanager: through the Dispatcher, an alert fires in the real
// Alertmanager, is silenced there by a console silence, resolves, and the
// silence is expired there when it ends in the console.
func TestAlertmanager(t *testing.T) {
	am := testenv.Alertmanager(t)
	st := openStore(t, filepath.Join(t.TempDir(), "console.db"))
	h := start(t, Options{Now: time.Now, Store: st, Targets: []Target{{Name: "team-am", Kind: KindAlertmanager, URL: am}}})
	ctx := context.Background()

	r := rule(7, "Consumer lag")
	now := time.Now()
	a := firing(r, now.Add(-time.Minute), "cluster", "prod", "group", "orders")
	a.Annotations["runbook_url"] = "https://runbooks.test/lag"

	// 1. Firing: shows with our labels, annotations, link and an endsAt
	//    ahead (so Alertmanager resolves it itself if we go quiet).
	h.d.Notify(now, []alerting.Notification{notif(r, a)})
	var got gettableAlert
	testenv.WaitFor(t, "the alert in Alertmanager", func() bool {
		var ok bool
		got, ok = findAlert(getJSON[[]gettableAlert](t, am+"/api/v2/alerts"), a.Labels)
		return ok
	})
	if !mapsEqual(got.Annotations, a.Annotations) {
		t.Errorf("annotations %v, want %v", got.Annotations, a.Annotations)
	}
	if got.GeneratorURL != "http://console.test/alerts/rules/7" {
		t.Errorf("generatorURL %q", got.GeneratorURL)
	}
	// Alertmanager keeps milliseconds.
	if d := got.EndsAt.Sub(now.Add(4 * time.Minute)); !got.EndsAt.After(time.Now()) || d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("endsAt %v, want 4×resend delay after %v", got.EndsAt, now)
	}
	if d := got.StartsAt.Sub(a.FiredAt); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("startsAt %v, want the firing time %v", got.StartsAt, a.FiredAt)
	}
	if got.Status.State != "active" {
		t.Errorf("state %q, want active", got.Status.State)
	}
	// The webhook payload's fingerprint is Alertmanager's own.
	if got.Fingerprint != labelsFingerprint(a.Labels) {
		t.Errorf("Alertmanager's fingerprint %s, ours %s", got.Fingerprint, labelsFingerprint(a.Labels))
	}

	// 2. A console silence is mirrored: the alert shows suppressed by it.
	s1 := alerting.Silence{
		ID:        11,
		Matchers:  []tsdb.Matcher{{Label: "cluster", Op: tsdb.MatchEqual, Value: "prod"}, {Label: "group", Op: tsdb.MatchRegexp, Value: "ord.*"}},
		CreatedBy: "alice",
		Comment:   "orders maintenance",
		StartsAt:  now.Add(-time.Minute),
		EndsAt:    now.Add(time.Hour),
	}
	h.d.SyncSilences([]alerting.Silence{s1})
	var remote gettableSilence
	testenv.WaitFor(t, "the silence in Alertmanager", func() bool {
		ss := findSilence(getJSON[[]gettableSilence](t, am+"/api/v2/silences"), s1.Comment)
		if len(ss) == 1 {
			remote = ss[0]
		}
		return len(ss) == 1
	})
	if remote.CreatedBy != "alice via switchyard" || remote.Status.State != "active" {
		t.Errorf("remote silence %+v, want created by alice via switchyard, active", remote)
	}
	wantMatchers := fmt.Sprintf("%+v", []struct {
		Name, Value      string
		IsRegex, IsEqual bool
	}{{"cluster", "prod", false, true}, {"group", "ord.*", true, true}})
	if got := fmt.Sprintf("%+v", remote.Matchers); got != wantMatchers {
		t.Errorf("matchers %s, want %s", got, wantMatchers)
	}
	testenv.WaitFor(t, "the alert suppressed", func() bool {
		got, _ = findAlert(getJSON[[]gettableAlert](t, am+"/api/v2/alerts"), a.Labels)
		return got.Status.State == "suppressed"
	})
	if !slices.Equal(got.Status.SilencedBy, []string{remote.ID}) {
		t.Errorf("silencedBy %v, want [%s]", got.Status.SilencedBy, remote.ID)
	}
	testenv.WaitFor(t, "the mirror recorded", func() bool {
		rs, err := st.RemoteSilences(ctx)
		return err == nil && len(rs) == 1 && rs[0] == alerting.RemoteSilence{Target: "team-am", SilenceID: 11, RemoteID: remote.ID}
	})

	// Syncing again does not copy it twice; a pending silence is copied
	// as pending. (Syncs run in order: once s2 is there, the repeat of s1
	// is done.)
	s2 := alerting.Silence{ID: 12, Matchers: []tsdb.Matcher{{Label: "cluster", Op: tsdb.MatchNotEqual, Value: "prod"}},
		CreatedBy: "bob", Comment: "tonight's upgrade", StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour)}
	h.d.SyncSilences([]alerting.Silence{s1})
	h.d.SyncSilences([]alerting.Silence{s1, s2})
	testenv.WaitFor(t, "the pending silence in Alertmanager", func() bool {
		ss := findSilence(getJSON[[]gettableSilence](t, am+"/api/v2/silences"), s2.Comment)
		return len(ss) == 1 && ss[0].Status.State == "pending"
	})
	if n := len(findSilence(getJSON[[]gettableSilence](t, am+"/api/v2/silences"), s1.Comment)); n != 1 {
		t.Errorf("silence copied %d times, want once", n)
	}

	// 3. Silenced alerts are still sent to Alertmanagers (it mutes them),
	//    and the resolve reaches it: the alert is no longer active there.
	resolvedAt := time.Now()
	h.d.Notify(resolvedAt, []alerting.Notification{notif(r, silenced(resolved(a, resolvedAt), 11))})
	testenv.WaitFor(t, "the alert resolved in Alertmanager", func() bool {
		_, ok := findAlert(getJSON[[]gettableAlert](t, am+"/api/v2/alerts?active=true"), a.Labels)
		return !ok
	})

	// 4. s1 ends in the console: its copy is expired. s2 vanishes (pruned):
	//    expired too, even though someone expired it there already.
	s1.EndsAt = time.Now()
	h.d.SyncSilences([]alerting.Silence{s1, s2})
	testenv.WaitFor(t, "the ended silence expired in Alertmanager", func() bool {
		return getJSON[gettableSilence](t, am+"/api/v2/silence/"+remote.ID).Status.State == "expired"
	})
	s2remote := findSilence(getJSON[[]gettableSilence](t, am+"/api/v2/silences"), s2.Comment)[0]
	req, _ := http.NewRequest(http.MethodDelete, am+"/api/v2/silence/"+s2remote.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("expire s2 by hand: %v %v", err, resp)
	}
	resp.Body.Close()
	h.d.SyncSilences(nil)
	testenv.WaitFor(t, "every mirror record gone", func() bool {
		rs, err := st.RemoteSilences(ctx)
		return err == nil && len(rs) == 0
	})
	if got := getJSON[gettableSilence](t, am+"/api/v2/silence/"+s2remote.ID).Status.State; got != "expired" {
		t.Errorf("s2 is %s in Alertmanager, want expired", got)
	}
	if s := h.status(t, "team-am"); s.ConsecutiveFailures != 0 || s.Failed != 0 || s.Sent == 0 {
		t.Errorf("target status %+v, want requests and no failures", s)
	}
}

// TestAlertmanagerResend: Prometheus's resend rules: a firing alert is
// sent at once, then again only once ResendDelay has passed; a resolve is
// sent at once; pending alerts never.
func TestAlertmanagerResend(t *testing.T) {
	var mu sync.Mutex
	var batches [][]postableAlert
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b []postableAlert
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || r.URL.Path != "/am/api/v2/alerts" {
			t.Errorf("POST %s: %v", r.URL.Path, err)
		}
		mu.Lock()
		batches = append(batches, b)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, b := range batches {
			n += len(b)
		}
		return n
	}
	h := start(t, Options{Targets: []Target{{Name: "am", Kind: KindAlertmanager, URL: srv.URL + "/am/"}}})
	r := rule(1, "Lag")
	a := firing(r, t0, "group", "a")
	p := firing(r, t0, "group", "p")
	p.State, p.FiredAt = alerting.StatePending, time.Time{}

	steps := []struct {
		at     time.Duration
		alerts []alerting.Alert
		sent   int // alerts sent in total so far
	}{
		{0, []alerting.Alert{a, p}, 1},
		{15 * time.Second, []alerting.Alert{a, p}, 1},
		{60 * time.Second, []alerting.Alert{a}, 1}, // resend delay not yet passed (strictly)
		{75 * time.Second, []alerting.Alert{a}, 2},
		{90 * time.Second, []alerting.Alert{resolved(a, t0.Add(90*time.Second))}, 3},
		{105 * time.Second, []alerting.Alert{resolved(a, t0.Add(90*time.Second))}, 3},
	}
	for _, s := range steps {
		at := t0.Add(s.at)
		h.clock.Set(at)
		h.d.Notify(at, []alerting.Notification{notif(r, s.alerts...)})
		h.waitIdle(t)
		if got := count(); got != s.sent {
			t.Fatalf("at +%s: %d alerts sent in total, want %d", s.at, got, s.sent)
		}
	}
	last := batches[len(batches)-1][0]
	if !last.EndsAt.Equal(t0.Add(90*time.Second)) || last.Labels["group"] != "a" {
		t.Errorf("resolve sent as %+v, want endsAt at the resolve", last)
	}
	first := batches[0][0]
	if !first.EndsAt.Equal(t0.Add(4*time.Minute)) || !first.StartsAt.Equal(t0) {
		t.Errorf("first send %+v, want startsAt %v and endsAt 4m later", first, t0)
	}
}
