package collector

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"switchyard/delivery"
)

// RabbitSource reads one RabbitMQ cluster through its management HTTP API:
// per queue its backlog, consumers and rates, and whether it is a
// dead-letter queue; per node its alarms. A snapshot costs three requests
// whatever the number of queues (queues, bindings, nodes), plus two per
// watched vhost beyond the first.
type RabbitSource struct {
	name   string
	base   *url.URL // without credentials
	user   string
	pass   string
	vhosts []string // sorted; empty: all
	client *http.Client
	dlq    delivery.DLQMatcher
}

// RabbitOptions configures a RabbitSource; the zero value watches every
// vhost with a 10 s request timeout and marks queues with the default
// dead-letter patterns.
type RabbitOptions struct {
	// VHosts limits the snapshot to these vhosts: their queues and
	// bindings are asked for per vhost, so that a console watching one
	// vhost of a shared broker neither downloads nor shows the others.
	// A vhost that does not exist has no queues.
	VHosts []string
	// Client is the HTTP client; default one with a 10 s timeout.
	Client *http.Client
	// DLQPatterns mark the queues whose names match them as dead-letter
	// queues (Queue.IsDLQ), besides the dead-letter targets of other
	// queues: the console's dlq.patterns, so that the dashboards mark, and
	// the indexer takes into custody, what the configuration names. Nil
	// means delivery.DefaultDLQPatterns; syntax of delivery.MatchGlob.
	DLQPatterns []string
}

// NewRabbitSource returns a source for the management API at managementURL
// (http[s]://user:pass@host:15672). Credentials in the URL are used for basic
// auth and never appear in errors.
func NewRabbitSource(name, managementURL string, opts RabbitOptions) (*RabbitSource, error) {
	u, err := url.Parse(managementURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rabbitmq %s: management url must be http(s)://user:pass@host:port", name)
	}
	dlq, err := delivery.NewDLQMatcher(opts.DLQPatterns, nil)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq %s: %w", name, err)
	}
	s := &RabbitSource{name: name, client: opts.Client, dlq: dlq}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	u.User = nil
	u.Path = strings.TrimSuffix(u.Path, "/")
	s.base = u
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	s.vhosts = slices.Compact(slices.Sorted(slices.Values(opts.VHosts)))
	return s, nil
}

// Name is the cluster name the source was given.
func (s *RabbitSource) Name() string { return s.name }

// RabbitSnapshot is the state of one RabbitMQ cluster at TakenAt.
type RabbitSnapshot struct {
	Cluster string       `json:"cluster"`
	TakenAt time.Time    `json:"taken_at"`
	Nodes   []RabbitNode `json:"nodes"`
	Queues  []Queue      `json:"queues"` // sorted by vhost, name
	// dlq is the source's dead-letter matcher (RabbitOptions.DLQPatterns),
	// kept so that IsDLQQueue can judge names the snapshot does not list.
	dlq delivery.DLQMatcher
}

// IsDLQQueue reports whether a queue of this cluster holds dead letters:
// Queue.IsDLQ for a queue the snapshot lists (its name matches the
// source's dead-letter patterns, or another queue dead-letters into it),
// else whether its name matches the patterns (a deleted queue's history).
// A snapshot not taken by a source uses delivery.DefaultDLQPatterns.
func (s RabbitSnapshot) IsDLQQueue(vhost, name string) bool {
	i, found := slices.BinarySearchFunc(s.Queues, [2]string{vhost, name}, func(q Queue, k [2]string) int {
		return cmp.Or(cmp.Compare(q.VHost, k[0]), cmp.Compare(q.Name, k[1]))
	})
	if found {
		return s.Queues[i].IsDLQ
	}
	return s.dlq.Match(name)
}

// RabbitNode is one node and its resource alarms.
type RabbitNode struct {
	Name      string `json:"name"`
	Running   bool   `json:"running"`
	MemAlarm  bool   `json:"mem_alarm"`
	DiskAlarm bool   `json:"disk_alarm"`
}

// Alarmed reports whether the node is down or raising an alarm.
func (n RabbitNode) Alarmed() bool { return !n.Running || n.MemAlarm || n.DiskAlarm }

// Queue is one queue's backlog and traffic.
type Queue struct {
	VHost     string `json:"vhost"`
	Name      string `json:"name"`
	Type      string `json:"type"`  // classic, quorum, stream
	State     string `json:"state"` // running, idle, flow, down…
	Ready     int64  `json:"ready"`
	Unacked   int64  `json:"unacked"`
	Total     int64  `json:"total"`
	Consumers int    `json:"consumers"`
	// Utilisation is the share of time consumers could take deliveries
	// (0..1), -1 when the broker does not know (no consumers).
	Utilisation   float64 `json:"consumer_utilisation"`
	PublishRate   float64 `json:"publish_rate"`
	DeliverRate   float64 `json:"deliver_rate"`
	AckRate       float64 `json:"ack_rate"`
	RedeliverRate float64 `json:"redeliver_rate"`
	// DeadLetterExchange and DeadLetterRoutingKey are this queue's own
	// x-dead-letter-* arguments (where its rejects go).
	DeadLetterExchange   string `json:"dead_letter_exchange,omitempty"`
	DeadLetterRoutingKey string `json:"dead_letter_routing_key,omitempty"`
	// DeadLetterQueues are the queues of the same vhost those arguments
	// route this queue's rejects to (the reverse of DLQOf).
	DeadLetterQueues []string `json:"dead_letter_queues,omitempty"`
	// IsDLQ is true when the name matches the source's dead-letter
	// patterns or another queue dead-letters into it; DLQOf names those
	// queues.
	IsDLQ bool     `json:"is_dlq"`
	DLQOf []string `json:"dlq_of,omitempty"`
}

// mgmtQueue is the part of /api/queues the console reads.
type mgmtQueue struct {
	Name                   string         `json:"name"`
	VHost                  string         `json:"vhost"`
	Type                   string         `json:"type"`
	State                  string         `json:"state"`
	MessagesReady          int64          `json:"messages_ready"`
	MessagesUnacknowledged int64          `json:"messages_unacknowledged"`
	Messages               int64          `json:"messages"`
	Consumers              int            `json:"consumers"`
	ConsumerUtilisation    *float64       `json:"consumer_utilisation"`
	Arguments              map[string]any `json:"arguments"`
	MessageStats           mgmtStats      `json:"message_stats"`
	EffectivePolicy        map[string]any `json:"effective_policy_definition"`
}

type mgmtRate struct {
	Rate float64 `json:"rate"`
}

type mgmtStats struct {
	Publish    mgmtRate `json:"publish_details"`
	DeliverGet mgmtRate `json:"deliver_get_details"`
	Ack        mgmtRate `json:"ack_details"`
	Redeliver  mgmtRate `json:"redeliver_details"`
}

type mgmtBinding struct {
	Source          string `json:"source"`
	VHost           string `json:"vhost"`
	Destination     string `json:"destination"`
	DestinationType string `json:"destination_type"`
	RoutingKey      string `json:"routing_key"`
}

type mgmtNode struct {
	Name          string `json:"name"`
	Running       bool   `json:"running"`
	MemAlarm      bool   `json:"mem_alarm"`
	DiskFreeAlarm bool   `json:"disk_free_alarm"`
}

// Snapshot reads queues, bindings and nodes.
func (s *RabbitSource) Snapshot(ctx context.Context) (RabbitSnapshot, error) {
	snap := RabbitSnapshot{Cluster: s.name, TakenAt: time.Now().UTC(), dlq: s.dlq}
	qs, bs, err := s.queuesAndBindings(ctx)
	if err != nil {
		return snap, err
	}
	var ns []mgmtNode
	if err := s.get(ctx, "/api/nodes", &ns); err != nil {
		return snap, err
	}
	for _, n := range ns {
		snap.Nodes = append(snap.Nodes, RabbitNode{Name: n.Name, Running: n.Running, MemAlarm: n.MemAlarm, DiskAlarm: n.DiskFreeAlarm})
	}
	snap.Queues = s.queues(qs, bs)
	return snap, nil
}

// queuesAndBindings reads every vhost's queues and bindings, or those of
// the watched vhosts one by one.
func (s *RabbitSource) queuesAndBindings(ctx context.Context) ([]mgmtQueue, []mgmtBinding, error) {
	var qs []mgmtQueue
	var bs []mgmtBinding
	if len(s.vhosts) == 0 {
		if err := s.get(ctx, "/api/queues", &qs); err != nil {
			return nil, nil, err
		}
		if err := s.get(ctx, "/api/bindings", &bs); err != nil {
			return nil, nil, err
		}
		return qs, bs, nil
	}
	for _, v := range s.vhosts {
		esc := url.PathEscape(v)
		var vq []mgmtQueue
		var vb []mgmtBinding
		err := s.get(ctx, "/api/queues/"+esc, &vq)
		if err == nil {
			err = s.get(ctx, "/api/bindings/"+esc, &vb)
		}
		var se *statusError
		switch {
		case errors.As(err, &se) && se.code == http.StatusNotFound:
			continue // no such vhost (yet): no queues
		case err != nil:
			return nil, nil, err
		}
		qs, bs = append(qs, vq...), append(bs, vb...)
	}
	return qs, bs, nil
}

// queues converts the management view and works out which queues are
// dead-letter targets: a queue's x-dead-letter-exchange/-routing-key (or
// the same keys of its policy) route its rejects through the default
// exchange straight to a queue, or through a named exchange to the queues
// bound to it with that key (or any key, for fanout-like bindings with "").
func (s *RabbitSource) queues(qs []mgmtQueue, bs []mgmtBinding) []Queue {
	out := make([]Queue, 0, len(qs))
	index := map[[2]string]int{}
	for _, q := range qs {
		if len(s.vhosts) > 0 && !slices.Contains(s.vhosts, q.VHost) {
			continue
		}
		x := Queue{
			VHost: q.VHost, Name: q.Name, Type: q.Type, State: q.State,
			Ready: q.MessagesReady, Unacked: q.MessagesUnacknowledged, Total: q.Messages, Consumers: q.Consumers,
			Utilisation: -1,
			PublishRate: q.MessageStats.Publish.Rate, DeliverRate: q.MessageStats.DeliverGet.Rate,
			AckRate: q.MessageStats.Ack.Rate, RedeliverRate: q.MessageStats.Redeliver.Rate,
			IsDLQ: s.dlq.Match(q.Name),
		}
		if q.ConsumerUtilisation != nil {
			x.Utilisation = *q.ConsumerUtilisation
		}
		x.DeadLetterExchange, x.DeadLetterRoutingKey = dlxOf(q.Arguments, q.EffectivePolicy)
		index[[2]string{q.VHost, q.Name}] = len(out)
		out = append(out, x)
	}
	for j, q := range out {
		for _, target := range dlxTargets(q, bs) {
			if i, ok := index[[2]string{q.VHost, target}]; ok {
				out[i].IsDLQ = true
				out[i].DLQOf = append(out[i].DLQOf, q.Name)
				out[j].DeadLetterQueues = append(out[j].DeadLetterQueues, target)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].VHost != out[j].VHost {
			return out[i].VHost < out[j].VHost
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func dlxOf(args, policy map[string]any) (exchange, key string) {
	str := func(m map[string]any, k string) (string, bool) {
		v, ok := m[k].(string)
		return v, ok
	}
	ex, okEx := str(args, "x-dead-letter-exchange")
	rk, _ := str(args, "x-dead-letter-routing-key")
	if !okEx {
		ex, okEx = str(policy, "dead-letter-exchange")
		if rk == "" {
			rk, _ = str(policy, "dead-letter-routing-key")
		}
	}
	if okEx && ex == "" && rk == "" {
		// The default exchange with no key: rejects go to a queue named
		// like their original routing key, which cannot be known here.
		return "", ""
	}
	return ex, rk
}

// dlxTargets returns the names of the queues that q's dead letters reach.
func dlxTargets(q Queue, bs []mgmtBinding) []string {
	if q.DeadLetterExchange == "" {
		if q.DeadLetterRoutingKey != "" {
			return []string{q.DeadLetterRoutingKey}
		}
		return nil
	}
	var out []string
	for _, b := range bs {
		if b.VHost != q.VHost || b.Source != q.DeadLetterExchange || b.DestinationType != "queue" {
			continue
		}
		if q.DeadLetterRoutingKey == "" || b.RoutingKey == q.DeadLetterRoutingKey || b.RoutingKey == "#" || b.RoutingKey == "" {
			out = append(out, b.Destination)
		}
	}
	return out
}

// Ping checks that the management API answers with the credentials.
func (s *RabbitSource) Ping(ctx context.Context) error {
	var v struct {
		RabbitMQVersion string `json:"rabbitmq_version"`
	}
	return s.get(ctx, "/api/overview", &v)
}

// statusError is a management API answer other than 200.
type statusError struct {
	source, path string
	code         int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("rabbitmq %s management %s: status %d", e.source, e.path, e.code)
}

// get fetches one management API path (escaped: a vhost "/" is "%2F") into
// v. Errors name the path and the status, never the credentials.
func (s *RabbitSource) get(ctx context.Context, path string, v any) error {
	u := *s.base
	u.RawPath = u.EscapedPath() + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("rabbitmq %s: %w", s.name, err)
	}
	if s.user != "" {
		req.SetBasicAuth(s.user, s.pass)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("rabbitmq %s management %s: %w", s.name, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return &statusError{source: s.name, path: path, code: resp.StatusCode}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(v); err != nil {
		return fmt.Errorf("rabbitmq %s management %s: decode: %w", s.name, path, err)
	}
	return nil
}
