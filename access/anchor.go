package access

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"switchyard/delivery"
)

// AnchorMessage is the log message of an anchor line; ReadAnchors picks
// such lines out of a JSON log.
const AnchorMessage = "audit chain anchor"

// Anchor is the audit chain's head as seen at some moment — row Seq had
// hash Hash — kept where the database's writer cannot rewrite it (the
// console's log, an anchor file elsewhere). A chain rewritten or cut
// after the anchor was taken no longer has that row with that hash, and
// Verify says so.
type Anchor struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// String is the form ParseAnchor reads: "SEQ:HASH".
func (a Anchor) String() string { return strconv.FormatInt(a.Seq, 10) + ":" + a.Hash }

var anchorRE = regexp.MustCompile(`^([1-9][0-9]*):([0-9a-f]{64})$`)

// ParseAnchor reads "SEQ:HASH" (a row id and its 64-hex-digit hash).
// Errors: delivery.EINVALID.
func ParseAnchor(s string) (Anchor, error) {
	m := anchorRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return Anchor{}, delivery.Errorf(delivery.EINVALID, "anchor %q must be SEQ:HASH, a row id and its 64-hex-digit hash", s)
	}
	seq, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return Anchor{}, delivery.Errorf(delivery.EINVALID, "anchor %q: row id out of range", s)
	}
	return Anchor{Seq: seq, Hash: m[2]}, nil
}

// ReadAnchors reads the anchors of an anchor file or of the console's
// JSON log: each line is either "SEQ:HASH" or a JSON object with "msg":
// "audit chain anchor", "seq" and "hash" (an anchor file's lines and the
// log's anchor lines both are); every other line of a log is skipped. A line that
// claims to be an anchor and does not parse is an error, and so is a
// reader without any anchor. Errors: delivery.EINVALID, or the read error.
func ReadAnchors(r io.Reader) ([]Anchor, error) {
	var out []Anchor
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			if a, err := ParseAnchor(line); err == nil {
				out = append(out, a)
			}
			continue
		}
		var rec struct {
			Msg  string          `json:"msg"`
			Seq  json.RawMessage `json:"seq"`
			Hash string          `json:"hash"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != AnchorMessage {
			continue // another log line
		}
		a, err := ParseAnchor(string(rec.Seq) + ":" + rec.Hash)
		if err != nil {
			return nil, delivery.Errorf(delivery.EINVALID, "line %d: %s", n, delivery.ErrorMessage(err))
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read anchors: %w", err)
	}
	if len(out) == 0 {
		return nil, delivery.Errorf(delivery.EINVALID, "no anchors found (want lines SEQ:HASH or the log's %q lines)", AnchorMessage)
	}
	return out, nil
}

// AnchorOptions configure an Anchorer.
type AnchorOptions struct {
	Audit AuditLog // required
	// Logger receives each anchor as an info line with msg AnchorMessage
	// and the attributes seq and hash. Nil discards (then File is the
	// only record).
	Logger *slog.Logger
	// File, when set, gets each anchor appended as a JSON line and
	// synced. It must be somewhere the database's writer cannot rewrite:
	// outside the data dir (cmd/console enforces that).
	File string
	// Interval is how often the head is anchored while it moves; default
	// DefaultAnchorInterval.
	Interval time.Duration
}

// DefaultAnchorInterval is how often a moving audit chain head is anchored
// unless configured otherwise (the console's auth.audit_anchor_interval).
const DefaultAnchorInterval = 5 * time.Minute

// Anchorer writes the audit chain's head out of the database: every
// Interval while the chain grows (Run), and whenever its owner asks
// (Anchor: at start, and at shutdown once the last request is done).
type Anchorer struct {
	opts AnchorOptions
	mu   sync.Mutex
	last Anchor
}

// NewAnchorer returns an Anchorer. Errors: delivery.EINVALID (no Audit, a negative
// interval).
func NewAnchorer(o AnchorOptions) (*Anchorer, error) {
	if o.Audit == nil {
		return nil, delivery.Errorf(delivery.EINVALID, "anchorer: no audit log")
	}
	if o.Interval < 0 {
		return nil, delivery.Errorf(delivery.EINVALID, "anchorer: negative interval")
	}
	if o.Interval == 0 {
		o.Interval = DefaultAnchorInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Anchorer{opts: o}, nil
}

// Run anchors the head every Interval when it moved, until ctx ends.
// Failures are logged and retried at the next tick: anchoring must not
// stop the console.
func (x *Anchorer) Run(ctx context.Context) error {
	t := time.NewTicker(x.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := x.Anchor(ctx, false); err != nil && ctx.Err() == nil {
				x.opts.Logger.Warn("audit chain anchor failed", "err", err)
			}
		}
	}
}

// Anchor reads the chain head and, when it differs from the last anchor
// written (or always is true), logs it and appends it to the file. An
// empty log has nothing to anchor. It returns the head.
func (x *Anchorer) Anchor(ctx context.Context, always bool) (Anchor, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	h, err := x.opts.Audit.Head(ctx)
	if err != nil || h.Seq == 0 || (h == x.last && !always) {
		return h, err
	}
	now := time.Now().UTC()
	attrs := []any{"seq", h.Seq, "hash", h.Hash}
	if id := x.opts.Audit.KeyID(); id != "" {
		attrs = append(attrs, "key_id", id)
	}
	if x.opts.File != "" {
		if err := appendAnchor(x.opts.File, now, h, x.opts.Audit.KeyID()); err != nil {
			return h, err
		}
	}
	x.opts.Logger.Info(AnchorMessage, attrs...)
	x.last = h
	return h, nil
}

// appendAnchor appends one JSON line to the anchor file and syncs it, so
// that an anchor reported as written survives a crash.
func appendAnchor(path string, now time.Time, h Anchor, keyID string) error {
	line, err := json.Marshal(struct {
		Time  string `json:"time"`
		Msg   string `json:"msg"`
		Seq   int64  `json:"seq"`
		Hash  string `json:"hash"`
		KeyID string `json:"key_id,omitempty"`
	}{now.Format(time.RFC3339Nano), AnchorMessage, h.Seq, h.Hash, keyID})
	if err != nil {
		return fmt.Errorf("anchor file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("anchor file: %w", err)
	}
	_, werr := f.Write(append(line, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("anchor file %s: %w", path, err)
	}
	return nil
}
