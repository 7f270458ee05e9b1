package grafana

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// PushOptions says where Push sends the dashboards.
type PushOptions struct {
	URL, Token, FolderUID string
	Timeout               time.Duration // per request, default 10s
	HTTPClient            *http.Client
	// Namespace of the /apis dashboard API ("" → "default", Grafana's
	// namespace of organisation 1; Grafana Cloud uses "stacks-<id>").
	Namespace string
}

// PushResult is Grafana's answer for one dashboard.
type PushResult struct {
	UID, Title string
	OK         bool
	Version    int64
	URL        string // absolute, from Grafana's answer
	Error      string
	API        string // "dashboards/db" or "dashboard.grafana.app"
}

// The two APIs Push speaks.
const (
	APILegacy = "dashboards/db"
	APIApps   = "dashboard.grafana.app"
)

// DefaultPushTimeout bounds each request when PushOptions.Timeout is zero.
const DefaultPushTimeout = 10 * time.Second

// Push sends dashboards to a Grafana with a service-account token, into a
// folder, overwriting what is there. When Grafana offers the
// Kubernetes-style API (Grafana 12+: GET /apis/dashboard.grafana.app lists a
// v1 or v1beta1 version) it uses that, else POST /api/dashboards/db. Every
// dashboard gets its own result, with Grafana's version and URL or the
// error Grafana gave; a failure never reports OK. The token goes only into
// the Authorization header: it is never logged nor put in a result.
func Push(ctx context.Context, o PushOptions, ds []Dashboard) []PushResult {
	p, err := newPusher(o)
	out := make([]PushResult, len(ds))
	for i, d := range ds {
		out[i] = PushResult{UID: d.UID, Title: d.Title, API: APILegacy}
	}
	if err != nil {
		return failAll(out, err.Error())
	}
	version, err := p.discover(ctx)
	if err != nil {
		return failAll(out, p.scrub(err.Error()))
	}
	for i, d := range ds {
		if ctx.Err() != nil {
			out[i].Error = "cancelled before this dashboard was sent"
			continue
		}
		var r pushed
		if version != "" {
			out[i].API = APIApps
			r, err = p.pushApps(ctx, version, d)
		} else {
			r, err = p.pushLegacy(ctx, d)
		}
		if err != nil {
			out[i].Error = p.scrub(err.Error())
			continue
		}
		out[i].OK, out[i].Version, out[i].URL = true, r.version, r.url
	}
	return out
}

func failAll(rs []PushResult, msg string) []PushResult {
	for i := range rs {
		rs[i].Error = msg
	}
	return rs
}

type pusher struct {
	base      *url.URL
	token     string
	folder    string
	namespace string
	timeout   time.Duration
	client    *http.Client
}

type pushed struct {
	version int64
	url     string
}

func newPusher(o PushOptions) (*pusher, error) {
	u, err := url.Parse(strings.TrimSpace(o.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("Grafana URL must be an absolute http(s) URL")
	}
	if u.User != nil {
		return nil, errors.New("Grafana URL must not carry credentials; give a service-account token")
	}
	if strings.TrimSpace(o.Token) == "" {
		return nil, errors.New("a Grafana service-account token is required")
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/"
	u.RawQuery, u.Fragment = "", ""
	p := &pusher{base: u, token: o.Token, folder: o.FolderUID, namespace: o.Namespace, timeout: o.Timeout, client: o.HTTPClient}
	if p.namespace == "" {
		p.namespace = "default"
	}
	if p.timeout <= 0 {
		p.timeout = DefaultPushTimeout
	}
	if p.client == nil {
		p.client = &http.Client{}
	}
	return p, nil
}

// scrub keeps the token out of any message, should a server or transport
// ever echo it.
func (p *pusher) scrub(msg string) string {
	if p.token != "" {
		msg = strings.ReplaceAll(msg, p.token, "[token]")
	}
	return msg
}

// answer is one HTTP exchange with Grafana.
type answer struct {
	status int
	body   []byte
}

// do sends one request under its own timeout. Transport errors become a
// message a user can act on; the request's URL is named, never its header.
func (p *pusher) do(ctx context.Context, method, path string, body any) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := p.base.ResolveReference(&url.URL{Path: strings.TrimPrefix(path, "/")})
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return answer{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return answer{}, fmt.Errorf("Grafana did not answer within %s", p.timeout)
		case ctx.Err() != nil:
			return answer{}, errors.New("cancelled while waiting for Grafana")
		}
		return answer{}, fmt.Errorf("Grafana at %s is unreachable: %s", p.base.Host, transportReason(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return answer{}, fmt.Errorf("Grafana did not answer within %s", p.timeout)
		}
		return answer{}, fmt.Errorf("read Grafana's answer: %s", transportReason(err))
	}
	return answer{status: resp.StatusCode, body: b}, nil
}

// transportReason is the innermost error's text, without the URL the
// url.Error wrapper repeats.
func transportReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// discover returns the /apis dashboard version to use, or "" for the legacy
// API. A Grafana before 12 answers 404 (or its HTML app page); only a
// Kubernetes APIGroup listing v1 or v1beta1 selects the new API, whose
// dashboard spec is the classic JSON model the SDK builds (v2 is a
// different schema).
func (p *pusher) discover(ctx context.Context) (string, error) {
	a, err := p.do(ctx, http.MethodGet, "apis/dashboard.grafana.app", nil)
	if err != nil {
		return "", err
	}
	if a.status == http.StatusUnauthorized {
		return "", errors.New(tokenRefused)
	}
	if a.status != http.StatusOK {
		return "", nil
	}
	var g struct {
		Kind     string `json:"kind"`
		Versions []struct {
			Version string `json:"version"`
		} `json:"versions"`
	}
	if json.Unmarshal(a.body, &g) != nil || g.Kind != "APIGroup" {
		return "", nil
	}
	offered := map[string]bool{}
	for _, v := range g.Versions {
		offered[v.Version] = true
	}
	for _, v := range []string{"v1", "v1beta1"} {
		if offered[v] {
			return v, nil
		}
	}
	return "", nil
}

const tokenRefused = "Grafana refused the token (401): check the service-account token and that it has not expired"

// pushLegacy is POST /api/dashboards/db with overwrite on; Grafana answers
// {"id","uid","url":"/d/<uid>/<slug>","status":"success","version"}.
func (p *pusher) pushLegacy(ctx context.Context, d Dashboard) (pushed, error) {
	body := map[string]any{
		"dashboard": json.RawMessage(d.JSON),
		"folderUid": p.folder,
		"overwrite": true,
		"message":   "switchyard export",
	}
	a, err := p.do(ctx, http.MethodPost, "api/dashboards/db", body)
	if err != nil {
		return pushed{}, err
	}
	if a.status != http.StatusOK {
		return pushed{}, p.refusal(a)
	}
	var r struct {
		URL     string `json:"url"`
		Version int64  `json:"version"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(a.body, &r); err != nil || r.URL == "" {
		return pushed{}, errors.New("Grafana answered 200 without a dashboard URL; not counted as saved")
	}
	return pushed{version: r.Version, url: p.absolute(r.URL)}, nil
}

// pushApps writes through /apis/dashboard.grafana.app/<version>: PUT on the
// dashboard's name (its UID) replaces it whatever its resourceVersion
// (overwrite), and when Grafana answers 404 (no such dashboard yet) a POST
// to the collection creates it. The answer's metadata.generation is the
// dashboard's version; the URL is Grafana's /d/<uid> page.
func (p *pusher) pushApps(ctx context.Context, version string, d Dashboard) (pushed, error) {
	coll := "apis/dashboard.grafana.app/" + version + "/namespaces/" + url.PathEscape(p.namespace) + "/dashboards"
	obj := map[string]any{
		"apiVersion": "dashboard.grafana.app/" + version,
		"kind":       "Dashboard",
		"metadata": map[string]any{
			"name":        d.UID,
			"annotations": map[string]string{"grafana.app/folder": p.folder, "grafana.app/message": "switchyard export"},
		},
		"spec": json.RawMessage(d.JSON),
	}
	a, err := p.do(ctx, http.MethodPut, coll+"/"+url.PathEscape(d.UID), obj)
	if err != nil {
		return pushed{}, err
	}
	if a.status == http.StatusNotFound {
		if a, err = p.do(ctx, http.MethodPost, coll, obj); err != nil {
			return pushed{}, err
		}
	}
	if a.status != http.StatusOK && a.status != http.StatusCreated {
		return pushed{}, p.refusal(a)
	}
	var r struct {
		Metadata struct {
			Name       string `json:"name"`
			Generation int64  `json:"generation"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(a.body, &r); err != nil || r.Metadata.Name == "" {
		return pushed{}, fmt.Errorf("Grafana answered %d without the saved dashboard; not counted as saved", a.status)
	}
	return pushed{version: r.Metadata.Generation, url: p.absolute("d/" + url.PathEscape(r.Metadata.Name))}, nil
}

// refusal turns Grafana's error answer (legacy {"message","status"} or a
// Kubernetes Status {"message","reason","code"}) into the user's message.
func (p *pusher) refusal(a answer) error {
	var e struct {
		Message string `json:"message"`
		Status  string `json:"status"`
	}
	_ = json.Unmarshal(a.body, &e)
	msg := strings.TrimSpace(e.Message)
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	said := ""
	if msg != "" {
		said = ": Grafana says " + msg
	}
	switch {
	case a.status == http.StatusUnauthorized:
		return errors.New(tokenRefused)
	case a.status == http.StatusForbidden:
		return errors.New("Grafana forbids this (403): the service account needs the Editor role or dashboards:write on the folder" + said)
	case a.status == http.StatusPreconditionFailed || a.status == http.StatusConflict:
		return errors.New("the dashboard changed in Grafana meanwhile (" + fmt.Sprint(a.status) + " version conflict); not overwritten" + said)
	case a.status == http.StatusNotFound || strings.Contains(strings.ToLower(msg), "folder not found"):
		return fmt.Errorf("folder %q not found in Grafana (%d)%s", p.folder, a.status, said)
	case msg != "":
		return fmt.Errorf("Grafana answered %d: %s", a.status, msg)
	}
	return fmt.Errorf("Grafana answered %d", a.status)
}

// absolute resolves a URL from Grafana's answer (which carries Grafana's
// sub-path, "/grafana/d/uid/slug") against the base URL.
func (p *pusher) absolute(ref string) string {
	r, err := url.Parse(ref)
	if err != nil {
		return ""
	}
	return p.base.ResolveReference(r).String()
}
