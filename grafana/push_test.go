package grafana

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/testenv"
)

const secret = "glsa_s3cr3t-token-value"

type recorded struct {
	Method, Path, Auth string
	Body               map[string]any
}

// fakeGrafana answers as Grafana's HTTP API does (a recorded contract:
// Grafana itself cannot run here). Shapes follow Grafana's docs: POST
// /api/dashboards/db → {"id","uid","url":"/d/<uid>/<slug>","status":
// "success","version"}; errors → {"message"} (412 adds "status":
// "version-mismatch"); Grafana 12+ serves GET /apis/dashboard.grafana.app as
// a Kubernetes APIGroup and dashboards as objects whose metadata.generation
// is the version; before 12 that path is 404.
type fakeGrafana struct {
	t       *testing.T
	apps    bool                                                          // offer /apis (Grafana 12+)
	answer  func(w http.ResponseWriter, r *http.Request, uid string) bool // override; true = answered
	mu      sync.Mutex
	reqs    []recorded
	exists  map[string]int64
	release chan struct{}
}

func newFake(t *testing.T, apps bool) (*fakeGrafana, *httptest.Server) {
	f := &fakeGrafana{t: t, apps: apps, exists: map[string]int64{}, release: make(chan struct{})}
	srv := httptest.NewServer(f)
	t.Cleanup(func() { close(f.release); srv.Close() })
	return f, srv
}

func (f *fakeGrafana) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeGrafana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization")}
	_ = json.Unmarshal(b, &rec.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	f.mu.Unlock()
	if rec.Auth != "Bearer "+secret {
		writeJSON(w, 401, map[string]any{"message": "Unauthorized"})
		return
	}
	uid := ""
	if d, ok := rec.Body["dashboard"].(map[string]any); ok {
		uid, _ = d["uid"].(string)
	}
	if m, ok := rec.Body["metadata"].(map[string]any); ok {
		uid, _ = m["name"].(string)
	}
	if f.answer != nil && f.answer(w, r, uid) {
		return
	}
	const coll = "/apis/dashboard.grafana.app/v1/namespaces/default/dashboards"
	switch {
	case r.URL.Path == "/apis/dashboard.grafana.app":
		if !f.apps {
			writeJSON(w, 404, map[string]any{"message": "Not found"})
			return
		}
		writeJSON(w, 200, map[string]any{"kind": "APIGroup", "apiVersion": "v1", "name": "dashboard.grafana.app",
			"versions": []map[string]string{
				{"groupVersion": "dashboard.grafana.app/v1beta1", "version": "v1beta1"},
				{"groupVersion": "dashboard.grafana.app/v1", "version": "v1"},
				{"groupVersion": "dashboard.grafana.app/v2beta1", "version": "v2beta1"},
			},
			"preferredVersion": map[string]string{"groupVersion": "dashboard.grafana.app/v1beta1", "version": "v1beta1"}})
	case r.Method == http.MethodPost && r.URL.Path == "/api/dashboards/db":
		f.mu.Lock()
		f.exists[uid]++
		v := f.exists[uid]
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"id": 7, "uid": uid, "url": "/d/" + uid + "/slug", "status": "success", "version": v, "slug": "slug"})
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, coll+"/"):
		f.mu.Lock()
		v, ok := f.exists[uid]
		if ok {
			f.exists[uid] = v + 1
		}
		f.mu.Unlock()
		if !ok {
			writeJSON(w, 404, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
				"message": `dashboards.dashboard.grafana.app "` + uid + `" not found`})
			return
		}
		writeJSON(w, 200, map[string]any{"kind": "Dashboard", "metadata": map[string]any{"name": uid, "generation": v + 1, "resourceVersion": "1758777451428472"}})
	case r.Method == http.MethodPost && r.URL.Path == coll:
		f.mu.Lock()
		f.exists[uid] = 1
		f.mu.Unlock()
		writeJSON(w, 201, map[string]any{"kind": "Dashboard", "metadata": map[string]any{"name": uid, "generation": 1}})
	default:
		writeJSON(w, 404, map[string]any{"message": "Not found"})
	}
}

// push runs Push and fails the test if it does not return within limit.
func push(t *testing.T, o PushOptions, ds []Dashboard, limit time.Duration) []PushResult {
	t.Helper()
	done := make(chan []PushResult, 1)
	go func() { done <- Push(context.Background(), o, ds) }()
	select {
	case rs := <-done:
		for _, r := range rs {
			if strings.Contains(r.Error, secret) || strings.Contains(r.URL, secret) {
				t.Errorf("%s: the token leaked into the result: %+v", r.UID, r)
			}
		}
		return rs
	case <-time.After(limit):
		t.Fatalf("Push did not return within %s", limit)
		return nil
	}
}

func TestPushLegacySavesEachDashboard(t *testing.T) {
	f, srv := newFake(t, false)
	ds := mustDashboards(t, Options{})
	rs := push(t, PushOptions{URL: srv.URL, Token: secret, FolderUID: "ops"}, ds, 10*time.Second)
	for i, r := range rs {
		want := srv.URL + "/d/" + ds[i].UID + "/slug"
		if !r.OK || r.Version != 1 || r.URL != want || r.API != APILegacy || r.Error != "" {
			t.Errorf("result %d = %+v, want OK version 1 at %s via %s", i, r, want, APILegacy)
		}
	}
	var posts int
	for _, q := range f.requests() {
		if q.Auth != "Bearer "+secret {
			t.Errorf("%s %s sent Authorization %q, want the Bearer token", q.Method, q.Path, q.Auth)
		}
		if q.Path != "/api/dashboards/db" {
			continue
		}
		posts++
		if q.Body["overwrite"] != true || q.Body["folderUid"] != "ops" || q.Body["message"] != "switchyard export" {
			t.Errorf("POST body = %v, want overwrite, folderUid ops and the message", q.Body)
		}
	}
	if posts != len(ds) {
		t.Errorf("%d POSTs, want %d", posts, len(ds))
	}
}

func TestPushRefusedToken(t *testing.T) {
	_, srv := newFake(t, false)
	rs := push(t, PushOptions{URL: srv.URL, Token: "wrong-" + secret, FolderUID: "ops"}, mustDashboards(t, Options{}), 10*time.Second)
	for _, r := range rs {
		if r.OK || !strings.Contains(r.Error, "refused the token") {
			t.Errorf("%s = %+v, want not OK, token refused", r.UID, r)
		}
		if strings.Contains(r.Error, "wrong-") {
			t.Errorf("%s: the token is in the error: %s", r.UID, r.Error)
		}
	}
}

func TestPushVersionConflictAndMissingFolder(t *testing.T) {
	f, srv := newFake(t, false)
	f.answer = func(w http.ResponseWriter, r *http.Request, uid string) bool {
		switch uid {
		case uidServices:
			writeJSON(w, 412, map[string]any{"message": "The dashboard has been changed by someone else", "status": "version-mismatch"})
			return true
		case uidRabbitMQ:
			writeJSON(w, 404, map[string]any{"message": "folder not found"})
			return true
		}
		return false
	}
	rs := push(t, PushOptions{URL: srv.URL, Token: secret, FolderUID: "ops"}, mustDashboards(t, Options{}), 10*time.Second)
	for _, r := range rs {
		switch r.UID {
		case uidServices:
			if r.OK || r.Version != 0 || !strings.Contains(r.Error, "changed in Grafana meanwhile") {
				t.Errorf("412: %+v, want a version conflict, not done", r)
			}
		case uidRabbitMQ:
			if r.OK || !strings.Contains(r.Error, `folder "ops" not found`) {
				t.Errorf("404: %+v, want folder not found", r)
			}
		default:
			if !r.OK {
				t.Errorf("%s failed beside the others: %+v", r.UID, r)
			}
		}
	}
}

func TestPushSlowGrafanaTimesOut(t *testing.T) {
	f, srv := newFake(t, false)
	f.answer = func(w http.ResponseWriter, r *http.Request, uid string) bool {
		if r.URL.Path != "/api/dashboards/db" {
			return false
		}
		select { // hold the answer until the client gives up
		case <-r.Context().Done():
		case <-f.release:
		}
		return true
	}
	ds := mustDashboards(t, Options{})[:2]
	start := time.Now()
	rs := push(t, PushOptions{URL: srv.URL, Token: secret, Timeout: 200 * time.Millisecond}, ds, 10*time.Second)
	for _, r := range rs {
		if r.OK || r.Error != "Grafana did not answer within 200ms" {
			t.Errorf("%s = %+v, want timed out", r.UID, r)
		}
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Push took %s for two timeouts of 200ms", el)
	}
}

func TestPushUnreachableGrafana(t *testing.T) {
	addr := testenv.FreeAddr(t) // nothing listens there
	rs := push(t, PushOptions{URL: "http://" + addr, Token: secret}, mustDashboards(t, Options{}), 15*time.Second)
	for _, r := range rs {
		if r.OK || !strings.Contains(r.Error, "unreachable") {
			t.Errorf("%s = %+v, want unreachable", r.UID, r)
		}
	}
}

// Grafana 12+: the /apis discovery answer selects the dashboard.grafana.app
// API, version v1; a new dashboard is created by POST after PUT's 404, an
// existing one replaced by PUT.
func TestPushChoosesAppsAPI(t *testing.T) {
	f, srv := newFake(t, true)
	f.exists[uidOverview] = 4 // already in Grafana
	ds := mustDashboards(t, Options{})
	rs := push(t, PushOptions{URL: srv.URL + "/", Token: secret, FolderUID: "ops"}, ds, 10*time.Second)
	for i, r := range rs {
		wantV := int64(1)
		if r.UID == uidOverview {
			wantV = 5
		}
		if !r.OK || r.API != APIApps || r.Version != wantV || r.URL != srv.URL+"/d/"+ds[i].UID {
			t.Errorf("%s = %+v, want OK via %s, version %d", r.UID, r, APIApps, wantV)
		}
	}
	var legacy, puts, posts int
	for _, q := range f.requests() {
		switch {
		case q.Path == "/api/dashboards/db":
			legacy++
		case q.Method == http.MethodPut:
			puts++
			md, _ := q.Body["metadata"].(map[string]any)
			ann, _ := md["annotations"].(map[string]any)
			spec, _ := q.Body["spec"].(map[string]any)
			if q.Body["apiVersion"] != "dashboard.grafana.app/v1" || ann["grafana.app/folder"] != "ops" || spec["uid"] != md["name"] {
				t.Errorf("PUT %s body: apiVersion %v, annotations %v, spec uid %v", q.Path, q.Body["apiVersion"], ann, spec["uid"])
			}
		case q.Method == http.MethodPost:
			posts++
		}
	}
	if legacy != 0 || puts != len(ds) || posts != len(ds)-1 {
		t.Errorf("legacy %d, PUT %d, POST %d; want 0, %d, %d", legacy, puts, posts, len(ds), len(ds)-1)
	}
}
