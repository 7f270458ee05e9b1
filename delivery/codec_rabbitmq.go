package delivery

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RabbitMQ dead-lettering headers. x-death is an array of tables, one per
// (queue, reason), most recent first; delivery/rabbitmq hands it over as
// JSON. The x-first-death-* and x-last-death-* headers are plain strings.
const (
	rabbitXDeath            = "x-death"
	rabbitFirstDeathExch    = "x-first-death-exchange"
	rabbitFirstDeathQueue   = "x-first-death-queue"
	rabbitFirstDeathReason  = "x-first-death-reason"
	rabbitLastDeathExch     = "x-last-death-exchange"
	rabbitLastDeathQueue    = "x-last-death-queue"
	rabbitLastDeathReason   = "x-last-death-reason"
	rabbitFirstDeathPrefix  = "x-first-death-"
	rabbitLastDeathPrefix   = "x-last-death-"
	rabbitCodePrefix        = "RABBITMQ_"
	rabbitReasonRejected    = "rejected"
	rabbitReasonExpired     = "expired"
	rabbitReasonMaxLen      = "maxlen"
	rabbitReasonDeliveryLim = "delivery_limit"
)

// xDeath is one x-death table. Count and Time are decoded leniently: the
// count may arrive as a JSON number or a decimal string, the time as RFC
// 3339 text or epoch seconds (an AMQP timestamp).
type xDeath struct {
	Count       json.RawMessage `json:"count"`
	Exchange    string          `json:"exchange"`
	Queue       string          `json:"queue"`
	Reason      string          `json:"reason"`
	RoutingKeys []string        `json:"routing-keys"`
	Time        json.RawMessage `json:"time"`
}

func (d xDeath) count() int {
	var n json.Number
	if json.Unmarshal(d.Count, &n) == nil {
		if i, err := n.Int64(); err == nil && i > 0 && i < 1<<31 {
			return int(i)
		}
	}
	var s string
	if json.Unmarshal(d.Count, &s) == nil {
		if i := atoiDefault(s, 0); i > 0 {
			return i
		}
	}
	return 0
}

func (d xDeath) time() time.Time {
	var s string
	if json.Unmarshal(d.Time, &s) == nil {
		if t := parseTime(s); !t.IsZero() {
			return t
		}
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC()
		}
		return time.Time{}
	}
	var n json.Number
	if json.Unmarshal(d.Time, &n) == nil {
		if sec, err := n.Int64(); err == nil {
			return time.Unix(sec, 0).UTC()
		}
	}
	return time.Time{}
}

// decodeRabbitMQ reads x-death and the x-first-death-*/x-last-death-*
// headers. The origin is the queue, exchange and routing key of the first
// death; attempts is the number of times the message died in that queue
// (the sum of the counts of its x-death entries); the failure times are
// the earliest and latest x-death times (RabbitMQ keeps the time an entry
// was created when it bumps its count, so the last one is a lower bound);
// the vhost is the dead-letter queue's (Decode fills it: dead-lettering
// never leaves a vhost); the code is RABBITMQ_ + the
// first death's reason (REJECTED, EXPIRED, MAXLEN, DELIVERY_LIMIT).
func decodeRabbitMQ(h Headers, dl *DeadLetter) bool {
	raw, hasXDeath := h.Get(rabbitXDeath)
	if !hasXDeath && !hasHeaderPrefix(h, rabbitFirstDeathPrefix) && !hasHeaderPrefix(h, rabbitLastDeathPrefix) {
		return false
	}
	var deaths []xDeath
	if hasXDeath && json.Unmarshal(raw, &deaths) != nil {
		deaths = nil // keep what the other headers say
	}
	s := h.String
	queue, exch, reason := s(rabbitFirstDeathQueue), s(rabbitFirstDeathExch), s(rabbitFirstDeathReason)
	var first *xDeath
	if queue != "" {
		for i := range deaths {
			if deaths[i].Queue == queue && (reason == "" || deaths[i].Reason == reason) {
				first = &deaths[i]
				break
			}
		}
	}
	if first == nil && len(deaths) > 0 {
		// Entries are most recent first; without x-first-death-* (servers
		// before 3.8) the last entry is the oldest.
		first = &deaths[len(deaths)-1]
	}
	if first != nil {
		if queue == "" {
			queue = first.Queue
		}
		if exch == "" && !h.has(rabbitFirstDeathExch) {
			exch = first.Exchange
		}
		if reason == "" {
			reason = first.Reason
		}
	}
	if queue == "" {
		queue = s(rabbitLastDeathQueue)
		exch = s(rabbitLastDeathExch)
		reason = s(rabbitLastDeathReason)
	}
	count := 0
	for _, d := range deaths {
		if d.Queue == queue {
			count += d.count()
		}
		t := d.time()
		if t.IsZero() {
			continue
		}
		if dl.FirstFailureAt.IsZero() || t.Before(dl.FirstFailureAt) {
			dl.FirstFailureAt = t
		}
		if t.After(dl.LastFailureAt) {
			dl.LastFailureAt = t
		}
	}
	dl.Attempts = count
	dl.Origin = Location{
		Broker:    BrokerRabbitMQ,
		Exchange:  exch,
		Queue:     queue,
		Partition: -1,
		Offset:    -1,
	}
	if first != nil && first.Queue == queue && len(first.RoutingKeys) > 0 {
		dl.Origin.RoutingKey = first.RoutingKeys[0]
	}
	if reason != "" {
		dl.Error.Code = rabbitCodePrefix + strings.ToUpper(reason)
		dl.Error.Message = rabbitDeathMessage(reason, queue, count)
		dl.Error.Details = map[string]any{"reason": reason}
	}
	return true
}

// has reports whether key is present, even with an empty value (the
// default exchange is named "").
func (h Headers) has(key string) bool {
	_, ok := h.Get(key)
	return ok
}

// rabbitDeathMessage says in one line why RabbitMQ dead-lettered a message.
func rabbitDeathMessage(reason, queue string, count int) string {
	var msg string
	switch reason {
	case rabbitReasonRejected:
		msg = "rejected by consumer of queue " + queue
	case rabbitReasonExpired:
		msg = "expired in queue " + queue + " (message TTL)"
	case rabbitReasonMaxLen:
		msg = "dropped from queue " + queue + ": queue length limit exceeded"
	case rabbitReasonDeliveryLim:
		msg = "delivery limit exceeded in queue " + queue
	default:
		msg = "dead-lettered from queue " + queue + " (" + reason + ")"
	}
	if count > 1 {
		msg += fmt.Sprintf(" (%d times)", count)
	}
	return msg
}
