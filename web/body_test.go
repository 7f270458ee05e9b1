package web

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/delivery"

	"github.com/andybalholm/brotli"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// zeros returns n zero bytes compressed by each coding of codings in
// turn: a decompression bomb.
func zeros(t *testing.T, n int64, codings ...string) []byte {
	t.Helper()
	var cur io.Reader = io.LimitReader(zeroReader{}, n)
	var out []byte
	for _, coding := range codings {
		var buf bytes.Buffer
		var w io.WriteCloser
		switch coding {
		case "gzip":
			w, _ = gzip.NewWriterLevel(&buf, gzip.BestCompression)
		case "deflate":
			w, _ = zlib.NewWriterLevel(&buf, zlib.BestCompression)
		case "br":
			w = brotli.NewWriterLevel(&buf, brotli.BestSpeed)
		}
		if _, err := io.Copy(w, cur); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		out = buf.Bytes()
		cur = bytes.NewReader(out)
	}
	return out
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// The attack of the report: 300 MB of zeros, gzip'd twice, is under a
// kilobyte. Built once for the tests of this file.
var (
	bombOnce              sync.Once
	stackedBomb, gzipBomb []byte
)

func bombs(t *testing.T) (stacked, single []byte) {
	t.Helper()
	bombOnce.Do(func() {
		gzipBomb = zeros(t, 300<<20, "gzip")
		stackedBomb = zeros(t, 300<<20, "gzip", "gzip")
	})
	return stackedBomb, gzipBomb
}

// allocated runs f and returns the bytes this process allocated meanwhile:
// what a bomb costs the console, measured rather than assumed. The server
// runs in this process, so its decoding counts.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// rawPost sends body as is over a real connection, with headers.
func rawPost(t *testing.T, target string, body []byte, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// The Go client would otherwise ask for, and transparently undo, a
	// compressed response; the body is ours to encode.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// errorCode reads the platform error contract, failing when the body is
// not one.
func errorCode(t *testing.T, r response) (code string, details map[string]any) {
	t.Helper()
	var body struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("status %d: not the error contract: %.300s", r.status, r.body)
	}
	return body.Error.Code, body.Error.Details
}

// A signed-in viewer's 1 KB "gzip, gzip" body of 300 MB zeros, and a
// single gzip of the same, are refused before they are inflated: the
// console allocates a few megabytes, not the bomb's hundreds.
func TestDecompressionBombsAreRefusedWithinTheLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.withJobs(t) // the jobs API reads its body
	base := serve(t, e)
	stacked, single := bombs(t)
	if len(stacked) > 2048 {
		t.Fatalf("the stacked bomb is %d bytes; the attack used under 1 KB", len(stacked))
	}
	vera := e.as(t, "vera")
	session := (&http.Cookie{Name: sessionCookie, Value: vera.cookies[sessionCookie]}).String()
	const budget = 64 << 20 // limit 4 MiB; the bomb is 300 MiB

	for _, tc := range []struct {
		name     string
		body     []byte
		encoding string
		status   int
		code     string
	}{
		{"stacked gzip, gzip", stacked, "gzip, gzip", http.StatusUnsupportedMediaType, delivery.EUNSUPPORTED},
		{"single gzip", single, "gzip", http.StatusRequestEntityTooLarge, delivery.ETOOLARGE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			n := allocated(func() {
				r = rawPost(t, base+"/api/v1/dlq/jobs", tc.body, "Content-Type", "application/json",
					"Content-Encoding", tc.encoding, "Cookie", session, csrfHeader, vera.csrf)
			})
			t.Logf("%s: %d-byte body, %.1f MiB allocated while answering", tc.name, len(tc.body), float64(n)/(1<<20))
			if n > budget {
				t.Errorf("answering allocated %.0f MiB; the limit is 4 MiB, so the bomb was inflated", float64(n)/(1<<20))
			}
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d: %.300s", r.status, tc.status, r.body)
			}
			if code, _ := errorCode(t, r); code != tc.code {
				t.Errorf("code = %s, want %s", code, tc.code)
			}
		})
	}

	// Forms are read by the CSRF check before any handler: the login form
	// is the one anyone can reach.
	t.Run("login form", func(t *testing.T) {
		var r response
		n := allocated(func() {
			r = rawPost(t, base+"/login", single, "Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", "gzip")
		})
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413: %.300s", r.status, r.body)
		}
		if n > budget {
			t.Errorf("answering allocated %.0f MiB", float64(n)/(1<<20))
		}
	})

	// Every coding the console decodes holds the limit; what it does not
	// decode is refused rather than passed on.
	for _, coding := range []string{"deflate", "br"} {
		t.Run(coding, func(t *testing.T) {
			r := rawPost(t, base+"/api/v1/dlq/jobs", zeros(t, 32<<20, coding), "Content-Type", "application/json",
				"Content-Encoding", coding, "Cookie", session, csrfHeader, vera.csrf)
			if r.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status = %d, want 413: %.300s", r.status, r.body)
			}
		})
	}
	for _, enc := range []string{"compress", "zstd", "gzip, identity, deflate"} {
		r := rawPost(t, base+"/api/v1/dlq/jobs", []byte(`{}`), "Content-Type", "application/json",
			"Content-Encoding", enc, "Cookie", session, csrfHeader, vera.csrf)
		if r.status != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Encoding %q: status = %d, want 415", enc, r.status)
		}
	}
	// A plain body over the limit is refused as well.
	r := rawPost(t, base+"/api/v1/dlq/jobs", bytes.Repeat([]byte(" "), 5<<20), "Content-Type", "application/json",
		"Cookie", session, csrfHeader, vera.csrf)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("5 MiB plain body: status = %d, want 413", r.status)
	}
}

// The OTLP receiver takes larger bodies (8 MiB by default), still counted
// after decompression: the report's 101 KB gzip that inflated to ~100 MB
// is refused within the limit.
func TestOTLPBombIsRefusedWithinTheLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	base := serve(t, e)
	tok, err := e.store.CreateToken(context.Background(), "admin", "exporter", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bomb := zeros(t, 100<<20, "gzip")
	var r response
	n := allocated(func() {
		r = rawPost(t, base+"/v1/metrics", bomb, "Content-Type", "application/x-protobuf", "Content-Encoding", "gzip",
			"Authorization", "Bearer "+tok)
	})
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413: %.300s", r.status, r.body)
	}
	code, details := errorCode(t, r)
	if code != delivery.ETOOLARGE || details["limit_bytes"] != float64(8<<20) {
		t.Errorf("error = %s %v, want ETOOLARGE with limit_bytes 8 MiB", code, details)
	}
	t.Logf("%d-byte gzip of 100 MiB: %.1f MiB allocated while answering", len(bomb), float64(n)/(1<<20))
	if n > 64<<20 {
		t.Errorf("answering allocated %.0f MiB; the limit is 8 MiB", float64(n)/(1<<20))
	}
}

// Compressed bodies within the limit are decoded once and reach the
// handler: a real OTLP exporter with gzip, and a gzip'd JSON call.
func TestCompressedBodiesWithinTheLimitAreServed(t *testing.T) {
	e := newEnv(t, envOptions{})
	base := serve(t, e)
	ctx := context.Background()
	tok, err := e.store.CreateToken(ctx, "admin", "exporter", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(base+"/v1/metrics"),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression),
		otlpmetrichttp.WithHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	c, _ := mp.Meter("test").Int64Counter("event.processed")
	c.Add(ctx, 3)
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("gzip'd export refused: %v", err)
	}
	mp.Shutdown(ctx) //nolint:errcheck // flushed above

	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	json.NewEncoder(zw).Encode(map[string]string{"user": "vera", "name": "gzip'd"}) //nolint:errcheck // into memory
	zw.Close()
	r := rawPost(t, base+"/api/v1/admin/tokens", buf.Bytes(), "Content-Type", "application/json", "Content-Encoding", "gzip",
		"Authorization", "Bearer "+tok)
	if r.status != http.StatusCreated || !strings.Contains(r.body, `"token":"sy_`) {
		t.Fatalf("gzip'd JSON: status %d: %.300s", r.status, r.body)
	}

	// A gzip'd login form is read after decoding too (the CSRF check
	// finds its token).
	c2 := e.anon()
	m := csrfInputRE.FindStringSubmatch(c2.get(t, "/login").body)
	form := url.Values{"username": {"vera"}, "password": {viewerPassword}, "_csrf": {m[1]}}
	buf.Reset()
	zw = gzip.NewWriter(&buf)
	zw.Write([]byte(form.Encode())) //nolint:errcheck // into memory
	zw.Close()
	var cookies []string
	for k, v := range c2.cookies {
		cookies = append(cookies, k+"="+v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", &buf)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Cookie", strings.Join(cookies, "; "))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("gzip'd login form: status %d, want 303", resp.StatusCode)
	}
}

// BenchmarkGzipBody decodes a gzip'd 1 MiB JSON export as limitBody does
// (streaming, held to the OTLP limit) beside a bare gzip.Reader read to
// the end into a buffer sized the same way: what the bomb guard costs a
// body within the limit.
func BenchmarkGzipBody(b *testing.B) {
	var plain bytes.Buffer
	for i := 0; plain.Len() < 1<<20; i++ {
		fmt.Fprintf(&plain, `{"name":"event.processed","attributes":{"service":"billing-%d","tenant":"t%d"},"value":%d},`, i%40, i%4, i)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(plain.Bytes()) //nolint:errcheck // into memory
	zw.Close()
	body := z.Bytes()
	b.Run("switchyard", func(b *testing.B) {
		b.SetBytes(int64(plain.Len()))
		for b.Loop() {
			out, err := decodeBody("gzip", body, 8<<20)
			if err != nil || len(out) != plain.Len() {
				b.Fatalf("%d bytes, %v", len(out), err)
			}
		}
	})
	b.Run("bare-gzip", func(b *testing.B) {
		b.SetBytes(int64(plain.Len()))
		for b.Loop() {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			// Sized as limitBody sizes it, so that only the limit differs.
			buf := bytes.NewBuffer(make([]byte, 0, 4*len(body)))
			if _, err := buf.ReadFrom(zr); err != nil || buf.Len() != plain.Len() {
				b.Fatalf("%d bytes, %v", buf.Len(), err)
			}
		}
	})
}
