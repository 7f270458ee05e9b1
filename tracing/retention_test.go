package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Spans older than MaxAge go, with their links and the resources only
// they used; younger ones stay.
func TestRetainByAge(t *testing.T) {
	now := storeT0.Add(72 * time.Hour)
	s := openSpanStore(t, Options{MaxAge: 24 * time.Hour, Now: func() time.Time { return now }})
	old := spanAt(1, 1, "retired-service", now.Add(-25*time.Hour), time.Millisecond)
	old.Links = []Link{{TraceID: tid(2), SpanID: sid(2)}}
	edge := spanAt(2, 2, "orders", now.Add(-24*time.Hour+time.Second), time.Millisecond)
	young := spanAt(3, 3, "orders", now.Add(-time.Hour), time.Millisecond)
	var older []Span
	for i := range 12000 { // more than one deletion chunk
		older = append(older, spanAt(10+i, 1, "orders", now.Add(-30*time.Hour-time.Duration(i)*time.Second), time.Millisecond))
	}
	mustWrite(t, s, older...)
	mustWrite(t, s, old, edge, young)

	ctx := context.Background()
	n, err := s.Retain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(older))+1 {
		t.Errorf("deleted %d, want %d", n, len(older)+1)
	}
	st, _ := s.Stats(ctx)
	if st.Spans != 2 || !st.Oldest.Equal(edge.Start) {
		t.Errorf("left %d spans from %v, want 2 from %v", st.Spans, st.Oldest, edge.Start)
	}
	if got, _ := s.LinkingTraces(ctx, []TraceID{tid(2)}, 0); len(got) != 0 {
		t.Errorf("a deleted span still links: %v", got)
	}
	var links, resources int
	s.DB().QueryRow(`SELECT COUNT(*) FROM span_links`).Scan(&links)
	s.DB().QueryRow(`SELECT COUNT(*) FROM resources`).Scan(&resources)
	if links != 0 || resources != 1 {
		t.Errorf("%d links and %d resources left, want 0 and 1 (orders)", links, resources)
	}
	// A new span of the retired service gets its resource back.
	mustWrite(t, s, spanAt(4, 4, "retired-service", now, time.Millisecond))
	got, _, _ := s.Spans(ctx, []TraceID{tid(4)}, 0)
	if len(got) != 1 || got[0].Service != "retired-service" || len(got[0].ResourceAttrs) != 2 {
		t.Errorf("span written after its resource was retained: %+v", got)
	}
	if n, err := s.Retain(ctx); n != 0 || err != nil {
		t.Errorf("second Retain deleted %d, %v", n, err)
	}
}

// Beyond MaxBytes the oldest spans go first until the file is under the
// cap, and the file itself shrinks.
func TestRetainBySize(t *testing.T) {
	s := openSpanStore(t, Options{Now: func() time.Time { return storeT0.Add(24 * time.Hour) }})
	ctx := context.Background()
	pad := strings.Repeat("x", 400)
	for b := range 10 {
		var batch []Span
		for i := range 2000 {
			n := b*2000 + i
			batch = append(batch, spanAt(n, 1, "orders", storeT0.Add(time.Duration(n)*time.Second), time.Millisecond,
				Attr{"payload", pad}, Attr{"n", fmt.Sprint(n)}))
		}
		// Written newest batch first: age, not row order, decides.
		mustWrite(t, s, batch...)
	}
	full, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.opts.MaxBytes = full.Bytes / 2
	n, err := s.Retain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes > s.opts.MaxBytes {
		t.Errorf("%d bytes after retention, cap %d", st.Bytes, s.opts.MaxBytes)
	}
	if n == 0 || st.Spans != full.Spans-n || st.Spans < full.Spans/4 {
		t.Errorf("deleted %d of %d, %d left: want about half deleted", n, full.Spans, st.Spans)
	}
	if want := storeT0.Add(time.Duration(n) * time.Second); !st.Oldest.Equal(want) || !st.Newest.Equal(full.Newest) {
		t.Errorf("left spans from %v to %v, want the newest: from %v to %v", st.Oldest, st.Newest, want, full.Newest)
	}
}

// RunRetention retains until its context ends, and returns then.
func TestRunRetention(t *testing.T) {
	now := storeT0
	s := openSpanStore(t, Options{MaxAge: time.Hour, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	mustWrite(t, s, spanAt(1, 1, "orders", now.Add(-2*time.Hour), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.RunRetention(ctx, 10*time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := s.Stats(context.Background())
		if err == nil && st.Spans == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expired span is still there")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunRetention did not return after its context ended")
	}
}
