// Package browse reads a Kafka topic's records for the console's message
// browser. Browser is the type that matters: Read returns one page of a
// topic — the newest or oldest records, from an offset or from a time per
// partition (ListOffsetsAfterMilli), or the page before or after another
// (Page.Older, Page.Newer: a cursor of one position per partition) — with a
// direct (non-group) consume, so browsing never moves a consumer group's
// offsets. Where each rule lives:
//   - what a request may ask, and its defaults: Query and Query.validate
//     (query.go);
//   - paging: a cursor names a position in every partition read, and a
//     page takes a prefix of each partition in offset order, merged by
//     timestamp, so that the next page starts exactly where this one
//     stopped (cursor.go, read.go);
//   - the tenant filter, and PII masking (payload fields, keys, envelope
//     metadata) before any filter or search looks at a record, so a masked
//     value is never found: message.go.
package browse

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
)

// Masker hides PII in a record: the payload and metadata fields of an
// envelope (or of a bare payload whose type a header names) and the key.
// eventType is the type from the record's headers, "" when unknown (an
// envelope's own type wins). *access.Masker implements it; each method
// returns its input unchanged when nothing in it is PII.
type Masker interface {
	MaskMessage(eventType string, value []byte) ([]byte, int)
	MaskKey(eventType string, key []byte) ([]byte, bool)
}

// Options configures a Browser. The zero value browses no cluster.
type Options struct {
	// Clients are the clusters' clients by cluster name. They are used for
	// metadata and as the template of a short-lived consuming client, so
	// they must not be group consumers.
	Clients map[string]*kgo.Client
	// Client, when set, is asked for clusters not in Clients.
	Client func(cluster string) (*kgo.Client, error)
	// Masker masks values and keys unless Query.RevealPII allows the
	// tenant; nil masks nothing.
	Masker Masker
	// Timeout bounds one Read call; default 5s.
	Timeout time.Duration
}

// Browser reads pages of a topic's records.
type Browser struct {
	opts Options
}

// New returns a Browser.
func New(opts Options) (*Browser, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	for name, cl := range opts.Clients {
		if cl == nil {
			return nil, fmt.Errorf("browse: nil client for cluster %q", name)
		}
	}
	return &Browser{opts: opts}, nil
}

func (b *Browser) client(cluster string) (*kgo.Client, error) {
	if cl, ok := b.opts.Clients[cluster]; ok {
		return cl, nil
	}
	if b.opts.Client != nil {
		cl, err := b.opts.Client(cluster)
		if err != nil {
			return nil, err
		}
		if cl != nil {
			return cl, nil
		}
	}
	return nil, delivery.Errorf(delivery.ENOTFOUND, "cluster %q is not configured", cluster)
}
