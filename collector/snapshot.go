// Package collector polls the brokers the console watches. KafkaSource takes
// one consistent-enough ClusterSnapshot of a Kafka cluster (brokers, topics
// with watermarks, consumer groups with lag) in a handful of batched admin
// requests; Poller keeps the latest snapshot of every cluster and derives
// rates from consecutive snapshots. History, lag in seconds and RabbitMQ
// sources build on these.
//
// Which topics and queues are dead-letter queues is not decided here: the
// sources mark them with delivery.DLQMatcher over the configured patterns
// (KafkaOptions and RabbitOptions.DLQPatterns), the matcher the indexer
// uses, and a snapshot answers for names it does not list
// (ClusterSnapshot.IsDLQTopic, RabbitSnapshot.IsDLQQueue). A principal's
// view of the series is built with access's resource names (scope.go).
package collector

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
)

// ClusterSnapshot is the state of one Kafka cluster at TakenAt.
type ClusterSnapshot struct {
	Cluster    string    `json:"cluster"`
	ClusterID  string    `json:"cluster_id,omitempty"`
	TakenAt    time.Time `json:"taken_at"`
	Controller int32     `json:"controller"`
	Brokers    []Broker  `json:"brokers"`
	Topics     []Topic   `json:"topics"` // sorted by name, internal topics left out
	Groups     []Group   `json:"groups"` // sorted by name
	// dlq is the source's dead-letter matcher (KafkaOptions.DLQPatterns),
	// kept so that IsDLQTopic can judge names the snapshot does not list.
	dlq delivery.DLQMatcher
}

// Broker is one broker of the cluster.
type Broker struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack,omitempty"`
}

// Topic is one topic with its partitions' watermarks.
type Topic struct {
	Name       string      `json:"name"`
	Partitions []Partition `json:"partitions"` // sorted by number
	// Messages is the sum over partitions of High-Low: what the topic
	// currently retains (compaction can make it an over-estimate).
	Messages int64 `json:"messages"`
	// IsDLQ: the name matches the source's dead-letter patterns.
	IsDLQ bool   `json:"is_dlq"`
	Error string `json:"error,omitempty"`
}

// Partition holds one partition's watermarks; -1 when unknown (Error set).
type Partition struct {
	Partition int32 `json:"partition"`
	Leader    int32 `json:"leader"`
	Low       int64 `json:"low"`
	High      int64 `json:"high"`
	// Rate is messages/s produced since the previous snapshot, -1 until
	// two snapshots exist (filled by the Poller).
	Rate  float64 `json:"rate"`
	Error string  `json:"error,omitempty"`
}

// Group is one classic consumer group.
type Group struct {
	Name         string           `json:"name"`
	State        string           `json:"state"`
	ProtocolType string           `json:"protocol_type"`
	Protocol     string           `json:"protocol"`
	Members      int              `json:"members"`
	Partitions   []GroupPartition `json:"partitions"` // sorted by topic, partition
	TotalLag     int64            `json:"total_lag"`
	Error        string           `json:"error,omitempty"`
	// Filled by the Poller's evaluator (Burrow's rules): the group's
	// status (OK, WARN or ERR) with the deciding partition's reason, the
	// share of partitions whose window is complete, and the partition with
	// the most lag in seconds.
	Status          Status  `json:"status"`
	Reason          string  `json:"reason,omitempty"`
	Complete        float64 `json:"complete"`
	MaxLagSeconds   float64 `json:"max_lag_seconds"`
	MaxLagTopic     string  `json:"max_lag_topic,omitempty"`
	MaxLagPartition int32   `json:"max_lag_partition"`
}

// GroupPartition is a group's position on one partition.
type GroupPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the committed offset, -1 if the group has not committed
	// on this assigned partition yet.
	Committed int64 `json:"committed"`
	High      int64 `json:"high"`
	// Lag is max(0, High-Committed); without a commit it counts from the
	// low watermark. -1 when it cannot be computed (Error set).
	Lag    int64  `json:"lag"`
	Member string `json:"member,omitempty"` // client id of the assigned member
	Error  string `json:"error,omitempty"`
	// LagSeconds is how far behind the committed offset is in time
	// (interpolated over the partition's high-watermark history); valid
	// only when LagSecondsKnown. Status and Reason are Burrow's verdict.
	LagSeconds      float64 `json:"lag_seconds"`
	LagSecondsKnown bool    `json:"lag_seconds_known"`
	Status          Status  `json:"status"`
	Reason          string  `json:"reason,omitempty"`
}

// Topic returns the topic named name, if the snapshot has it.
func (s ClusterSnapshot) Topic(name string) (Topic, bool) {
	i := sort.Search(len(s.Topics), func(i int) bool { return s.Topics[i].Name >= name })
	if i < len(s.Topics) && s.Topics[i].Name == name {
		return s.Topics[i], true
	}
	return Topic{}, false
}

// Group returns the group named name, if the snapshot has it.
func (s ClusterSnapshot) Group(name string) (Group, bool) {
	i := sort.Search(len(s.Groups), func(i int) bool { return s.Groups[i].Name >= name })
	if i < len(s.Groups) && s.Groups[i].Name == name {
		return s.Groups[i], true
	}
	return Group{}, false
}

// IsDLQTopic reports whether a topic of this cluster holds dead letters:
// whether its name matches the source's dead-letter patterns, the same
// verdict as Topic.IsDLQ, also for topics the snapshot does not list (a
// deleted topic's history). A snapshot not taken by a source uses
// delivery.DefaultDLQPatterns.
func (s ClusterSnapshot) IsDLQTopic(name string) bool { return s.dlq.Match(name) }

// KafkaSource snapshots one Kafka cluster.
type KafkaSource struct {
	name   string
	client *kgo.Client
	adm    *kadm.Client
	dlq    delivery.DLQMatcher
}

// KafkaOptions configures a KafkaSource; the zero value marks topics with
// the default dead-letter patterns.
type KafkaOptions struct {
	// DLQPatterns mark the topics whose names match them as dead-letter
	// topics (Topic.IsDLQ): the console's dlq.patterns, so that the
	// dashboards mark what the indexer indexes. Nil means
	// delivery.DefaultDLQPatterns; syntax of delivery.MatchGlob.
	DLQPatterns []string
}

// NewKafkaSource returns a source named name over client. The caller owns
// client and closes it after the source is no longer used.
func NewKafkaSource(name string, client *kgo.Client, opts KafkaOptions) (*KafkaSource, error) {
	if name == "" {
		return nil, errors.New("kafka source: empty name")
	}
	if client == nil {
		return nil, fmt.Errorf("kafka source %s: nil client", name)
	}
	dlq, err := delivery.NewDLQMatcher(opts.DLQPatterns, nil)
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: %w", name, err)
	}
	return &KafkaSource{name: name, client: client, adm: kadm.NewClient(client), dlq: dlq}, nil
}

// Name is the cluster's name in the console.
func (s *KafkaSource) Name() string { return s.name }

// Ping checks that a broker of the cluster answers.
func (s *KafkaSource) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx); err != nil {
		return fmt.Errorf("kafka %s: %w", s.name, err)
	}
	return nil
}

// Snapshot takes a snapshot in six batched requests (metadata, start and end
// offsets of all topics, list+describe groups, fetch all groups' offsets),
// whatever the number of partitions. Failing to reach the cluster is an
// error; a topic or group that cannot be read carries its own Error.
func (s *KafkaSource) Snapshot(ctx context.Context) (ClusterSnapshot, error) {
	snap := ClusterSnapshot{Cluster: s.name, dlq: s.dlq}
	md, err := s.adm.Metadata(ctx)
	if err != nil {
		return snap, fmt.Errorf("kafka %s: metadata: %w", s.name, err)
	}
	snap.ClusterID, snap.Controller = md.Cluster, md.Controller
	for _, b := range md.Brokers {
		var rack string
		if b.Rack != nil {
			rack = *b.Rack
		}
		snap.Brokers = append(snap.Brokers, Broker{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: rack})
	}
	sort.Slice(snap.Brokers, func(i, j int) bool { return snap.Brokers[i].ID < snap.Brokers[j].ID })

	md.Topics.FilterInternal()
	var names []string
	for _, name := range md.Topics.Names() {
		if !strings.HasPrefix(name, "__") { // __consumer_offsets, __transaction_state, ...
			names = append(names, name)
		}
	}

	var starts, ends kadm.ListedOffsets
	if len(names) > 0 {
		if starts, err = s.adm.ListStartOffsets(ctx, names...); !partial(err) {
			return snap, fmt.Errorf("kafka %s: list start offsets: %w", s.name, err)
		}
		if ends, err = s.adm.ListEndOffsets(ctx, names...); !partial(err) {
			return snap, fmt.Errorf("kafka %s: list end offsets: %w", s.name, err)
		}
	}
	for _, name := range names {
		snap.Topics = append(snap.Topics, topicOf(md.Topics[name], starts, ends, s.dlq))
	}

	// DescribeGroups without names lists every classic group first.
	described, err := s.adm.DescribeGroups(ctx)
	if !partial(err) {
		return snap, fmt.Errorf("kafka %s: describe groups: %w", s.name, err)
	}
	fetched := s.adm.FetchManyOffsets(ctx, described.Names()...)
	for _, g := range described.Sorted() {
		snap.Groups = append(snap.Groups, groupOf(g, fetched[g.Group], starts, ends))
	}
	return snap, nil
}

// partial reports whether err still leaves a usable answer: nil, or shard
// errors from some brokers only (the missing parts show up per partition).
func partial(err error) bool {
	if err == nil {
		return true
	}
	var se *kadm.ShardErrors
	return errors.As(err, &se) && !se.AllFailed
}

func topicOf(d kadm.TopicDetail, starts, ends kadm.ListedOffsets, dlq delivery.DLQMatcher) Topic {
	t := Topic{Name: d.Topic, IsDLQ: dlq.Match(d.Topic)}
	if d.Err != nil {
		t.Error = d.Err.Error()
	}
	for _, pd := range d.Partitions.Sorted() {
		p := Partition{Partition: pd.Partition, Leader: pd.Leader, Low: -1, High: -1, Rate: -1}
		lo, okLo := starts.Lookup(d.Topic, pd.Partition)
		hi, okHi := ends.Lookup(d.Topic, pd.Partition)
		switch {
		case pd.Err != nil:
			p.Error = pd.Err.Error()
		case !okLo || !okHi:
			p.Error = "offsets not listed"
		case lo.Err != nil:
			p.Error = lo.Err.Error()
		case hi.Err != nil:
			p.Error = hi.Err.Error()
		default:
			p.Low, p.High = lo.Offset, hi.Offset
			t.Messages += max(0, p.High-p.Low)
		}
		t.Partitions = append(t.Partitions, p)
	}
	return t
}

func groupOf(d kadm.DescribedGroup, f kadm.FetchOffsetsResponse, starts, ends kadm.ListedOffsets) Group {
	g := Group{
		Name: d.Group, State: d.State, ProtocolType: d.ProtocolType, Protocol: d.Protocol,
		Members: len(d.Members),
	}
	switch {
	case d.Err != nil:
		g.Error = d.Err.Error()
		return g
	case f.Err != nil:
		g.Error = f.Err.Error()
		return g
	}
	// kadm computes lag from data already fetched in batches; it counts an
	// uncommitted assigned partition from the low watermark.
	for _, l := range kadm.CalculateGroupLagWithStartOffsets(d, f.Fetched, starts, ends).Sorted() {
		if strings.HasPrefix(l.Topic, "__") {
			continue
		}
		if l.Member == nil && l.Commit.At < 0 {
			// An offset fetch may answer -1 ("no commit") for partitions
			// the group never touched; unassigned and uncommitted, they
			// are not the group's business.
			continue
		}
		gp := GroupPartition{Topic: l.Topic, Partition: l.Partition, Committed: l.Commit.At, High: -1, Lag: -1}
		if l.Member != nil {
			gp.Member = l.Member.ClientID
		}
		if l.End.Err == nil {
			gp.High = l.End.Offset
		}
		if l.Err != nil {
			gp.Error = l.Err.Error()
		} else {
			gp.Lag = max(0, l.Lag)
			g.TotalLag += gp.Lag
		}
		g.Partitions = append(g.Partitions, gp)
	}
	return g
}
