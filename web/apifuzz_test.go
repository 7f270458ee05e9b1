package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// queryParams is every query parameter a handler of the console reads,
// on any route; each is tried on every route, so that a handler that
// starts reading one is covered without a change here.
var queryParams = []string{
	"q", "from", "to", "range", "cursor", "limit", "status", "broker", "cluster", "destination", "event_type",
	"error_code", "tenant", "group", "before", "after_seq", "partition", "name", "step", "agg", "sort", "state",
	"page", "next", "since", "until", "user", "actor", "action", "outcome", "resource", "running", "edit", "v",
}

// hostileValues are what a careless script or a hostile insider sends.
var hostileValues = []string{
	"", " ", "a\x00b", "\x00", "\x1b[31m", "\xff\xfe", strings.Repeat("a", 5000),
	"-1", "0", "99999999999999999999", "1e309", "NaN", "-Inf",
	"9999-12-31T00:00:00Z", "1000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "253402300800", "-62135596800",
	"' OR 1=1 --", `"unterminated`, "*", "a*", "NOT", "(", "status:dead", "<script>", "../../etc/passwd", "1,2,,3",
}

// apiGetRoutes are the paths of the GET routes of the JSON API with their
// path parameters filled with values that exist in the test env.
func apiGetRoutes(e *env) []string {
	var out []string
	for _, rt := range apiGets(e) {
		out = append(out, rt.Path)
	}
	return out
}

// apiGets are the GET routes of the JSON API, Path filled in as by
// apiGetRoutes.
func apiGets(e *env) []Route {
	var out []Route
	for _, rt := range Routes() {
		if rt.Method != fiber.MethodGet || !strings.HasPrefix(rt.Path, "/api/") {
			continue
		}
		p := rt.Path
		for k, v := range map[string]string{
			":cluster": testCluster, ":topic": url.PathEscape(envTopic), ":group": testGroup, ":vhost": "%2F",
			":queue": matrixQueue, ":id": strconv.FormatInt(firstID(e), 10), ":name": "vera",
		} {
			p = strings.ReplaceAll(p, k, v)
		}
		rt.Path = p
		out = append(out, rt)
	}
	return out
}

// A query parameter a GET route of the API does not read is a 400 in the
// error contract naming it — ?code=X is not a filter by error code, and a
// list left unfiltered by a typo would look like an answer — while every
// parameter the route's list names is never refused as unknown.
func TestUnknownQueryParametersAreRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok, err := e.store.CreateToken(context.Background(), "admin", "params", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, rawQuery string) response {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL = &url.URL{Path: path, RawQuery: rawQuery}
		req.RequestURI = ""
		req.Header.Set("Authorization", "Bearer "+tok)
		return e.do(t, req)
	}
	routes := apiGets(e)
	if len(routes) < 10 {
		t.Fatalf("only %d GET API routes", len(routes))
	}
	for _, rt := range routes {
		t.Run(rt.Name, func(t *testing.T) {
			for _, raw := range []string{"code=X", "limit=5&code=X", "error_codes=X&q="} {
				known := apiQueryParams[rt.Name]
				if slices.Contains(known, "limit") == false && strings.HasPrefix(raw, "limit") {
					continue
				}
				r := get(rt.Path, raw)
				checkContract(t, rt.Path+"?"+raw, r)
				unknown, _, _ := strings.Cut(raw[strings.LastIndex(raw, "&")+1:], "=")
				if strings.HasPrefix(raw, "error_codes") {
					unknown = "error_codes"
				}
				if r.status != http.StatusBadRequest || !strings.Contains(r.body, "unknown query parameter "+unknown) {
					t.Errorf("?%s: status %d, %.300s; want 400 naming %s", raw, r.status, r.body, unknown)
				}
			}
			for _, name := range apiQueryParams[rt.Name] {
				r := get(rt.Path, url.QueryEscape(name)+"=")
				checkContract(t, rt.Path+"?"+name+"=", r)
				if strings.Contains(r.body, "unknown query parameter") {
					t.Errorf("?%s= refused as unknown: %.300s", name, r.body)
				}
			}
		})
	}
	// The dead-letter list as an operator would mistype it.
	r := get("/api/v1/dlq/entries", "code=UPSTREAM_TIMEOUT")
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "error_code") {
		t.Errorf("?code=: status %d, %.300s; want 400 that names error_code among the parameters", r.status, r.body)
	}
}

func firstID(e *env) int64 {
	var id int64
	for _, v := range e.dlqIDs {
		if id == 0 || v < id {
			id = v
		}
	}
	return id
}

// checkContract fails unless r is a success or a 4xx in the platform
// error contract: never a 500, never an HTML page from the API.
func checkContract(t *testing.T, what string, r response) {
	t.Helper()
	if r.status >= 500 {
		t.Errorf("%s: status %d: %.300s", what, r.status, r.body)
		return
	}
	if r.status < 400 {
		return
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Errorf("%s: status %d is not the error contract: %.300s", what, r.status, r.body)
	}
}

// FuzzAPIQuery sends arbitrary query strings to every GET route of the
// API as an admin: whatever arrives, the answer is a success or a 4xx in
// the error contract. The seeds — every parameter any handler reads, with
// every hostile value, on every route — run in `make test`;
// `go test -tags sqlite_fts5 -fuzz FuzzAPIQuery ./web/` searches further.
func FuzzAPIQuery(f *testing.F) {
	e := newEnv(f, envOptions{})
	tok, err := e.store.CreateToken(context.Background(), "admin", "fuzz", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	routes := apiGetRoutes(e)
	for i := range routes {
		for _, name := range queryParams {
			for _, v := range hostileValues {
				f.Add(uint8(i), url.QueryEscape(name)+"="+url.QueryEscape(v))
			}
		}
		// Malformed escapes and separators, raw.
		for _, raw := range []string{"q=%zz", "q=%", "from=%FF", "q=a;b", "=x", "&&&", "q", "cursor=" + strings.Repeat("A", 5000)} {
			f.Add(uint8(i), raw)
		}
	}
	f.Fuzz(func(t *testing.T, i uint8, rawQuery string) {
		path := routes[int(i)%len(routes)]
		if len(rawQuery) > 8000 || strings.ContainsFunc(rawQuery, func(r rune) bool { return r <= ' ' || r == '#' || r >= 0x7f }) {
			return // not a request line a client can send
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL = &url.URL{Path: path, RawQuery: rawQuery}
		req.RequestURI = ""
		req.Header.Set("Authorization", "Bearer "+tok)
		checkContract(t, path+"?"+truncateText(rawQuery, 80), e.do(t, req))
	})
}

// Requests fasthttp refuses before any route sees them — a query past the
// read buffer — answer in the error contract too, with their own 4xx. A
// 5,000-character cursor is read and refused by the store as a 400.
func TestOversizedRequestsAnswerInTheContract(t *testing.T) {
	e := newEnv(t, envOptions{})
	base := serve(t, e)
	tok, err := e.store.CreateToken(context.Background(), "admin", "long", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) response {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return response{status: resp.StatusCode, header: resp.Header, body: b.String()}
	}
	r := get("/api/v1/dlq/entries?cursor=" + strings.Repeat("a", 5000))
	if r.status != http.StatusBadRequest {
		t.Errorf("5,000-character cursor: status %d, want 400", r.status)
	}
	checkContract(t, "5,000-character cursor", r)
	if len(r.body) > 1000 {
		t.Errorf("the error echoes the whole cursor (%d bytes)", len(r.body))
	}
	r = get("/api/v1/dlq/entries?cursor=" + strings.Repeat("a", 40_000))
	if r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("40,000-character query: status %d, want 431", r.status)
	}
	checkContract(t, "40,000-character query", r)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("40,000-character query: Content-Type %q, want JSON", ct)
	}
}
