package delivery

import (
	"net/url"
	"strconv"
	"strings"
)

// Redrive provenance headers beside HeaderRedriveCount and HeaderRedriveJob.
const (
	// HeaderRedrivePrefix starts every redrive provenance header.
	HeaderRedrivePrefix = HeaderPrefix + "redrive."
	// HeaderRedriveFrom is where the dead-letter record was that the
	// message was redriven from (LocationString of DeadLetter.DLQ).
	HeaderRedriveFrom = "switchyard.redrive.from"
	// HeaderRedriveOrigin is where the message was when it first failed
	// (LocationString of DeadLetter.Origin), when that is known.
	HeaderRedriveOrigin = "switchyard.redrive.origin"
)

// LocationString names a location in one line: Kafka
// "kafka:<cluster>/<topic>/<partition>@<offset>" (partition and offset
// left out when unknown), RabbitMQ "rabbitmq:<cluster>/<vhost>/<queue>"
// with the vhost path-escaped ("rabbitmq:main/%2F/notify").
// A location without a broker is taken as Kafka when it has a topic and as
// RabbitMQ when it has a queue; one with neither is "".
func LocationString(l Location) string {
	broker := l.Broker
	if broker == "" {
		switch {
		case l.Topic != "":
			broker = BrokerKafka
		case l.Queue != "":
			broker = BrokerRabbitMQ
		default:
			return ""
		}
	}
	var b strings.Builder
	b.WriteString(broker)
	b.WriteByte(':')
	b.WriteString(l.Cluster)
	b.WriteByte('/')
	if broker == BrokerRabbitMQ {
		b.WriteString(url.PathEscape(l.VHost)) // the default vhost "/" reads %2F, as in the management API
		b.WriteByte('/')
		b.WriteString(l.Queue)
		return b.String()
	}
	b.WriteString(l.Topic)
	if l.Partition >= 0 {
		b.WriteByte('/')
		b.WriteString(strconv.FormatInt(int64(l.Partition), 10))
	}
	if l.Offset >= 0 {
		b.WriteByte('@')
		b.WriteString(strconv.FormatInt(l.Offset, 10))
	}
	return b.String()
}

// ParseLocation reads a LocationString back: the broker, cluster and topic
// with partition and offset (-1 when left out) of a Kafka location, the
// broker, cluster, vhost and queue of a RabbitMQ one. A re-failed
// message's HeaderRedriveFrom names the dead-letter record it was
// redriven from this way. Errors: EINVALID for anything LocationString
// does not write.
func ParseLocation(s string) (Location, error) {
	bad := func() (Location, error) {
		return Location{}, Errorf(EINVALID, "location %q: want kafka:<cluster>/<topic>[/<partition>][@<offset>] or rabbitmq:<cluster>/<vhost>/<queue>", s)
	}
	broker, rest, ok := strings.Cut(s, ":")
	if !ok {
		return bad()
	}
	cluster, path, ok := strings.Cut(rest, "/")
	if !ok || path == "" {
		return bad()
	}
	l := Location{Broker: broker, Cluster: cluster, Partition: -1, Offset: -1}
	switch broker {
	case BrokerRabbitMQ:
		vhost, queue, ok := strings.Cut(path, "/")
		v, err := url.PathUnescape(vhost)
		if !ok || queue == "" || err != nil {
			return bad()
		}
		l.VHost, l.Queue = v, queue
		return l, nil
	case BrokerKafka:
		// A topic holds no '/' nor '@' (Kafka allows [a-zA-Z0-9._-]).
		if i := strings.LastIndexByte(path, '@'); i >= 0 {
			off, err := strconv.ParseInt(path[i+1:], 10, 64)
			if err != nil || off < 0 {
				return bad()
			}
			l.Offset, path = off, path[:i]
		}
		topic, part, hasPart := strings.Cut(path, "/")
		if hasPart {
			p, err := strconv.ParseInt(part, 10, 32)
			if err != nil || p < 0 {
				return bad()
			}
			l.Partition = int32(p)
		}
		if topic == "" {
			return bad()
		}
		l.Topic = topic
		return l, nil
	}
	return bad()
}

// RedriveHeaders returns the headers of dl redriven by job jobID: dl's
// headers minus every dead-letter header of any format (IsDeadLetterHeader)
// and minus earlier redrive provenance (HeaderRedrivePrefix), followed by
// the new provenance: HeaderRedriveJob, HeaderRedriveCount (dl.RedriveCount
// + 1), HeaderRedriveFrom (dl.DLQ) and, when the origin names a topic or
// queue, HeaderRedriveOrigin. added is that new provenance; removed lists
// the distinct keys taken out, in first-seen order. A key can be in both,
// e.g. HeaderRedriveCount of a message redriven before.
func RedriveHeaders(dl DeadLetter, jobID int64) (out Headers, added Headers, removed []string) {
	drop := func(k string) bool { return IsDeadLetterHeader(k) || strings.HasPrefix(k, HeaderRedrivePrefix) }
	out = make(Headers, 0, len(dl.Headers)+4)
	seen := make(map[string]bool)
	for _, h := range dl.Headers {
		if !drop(h.Key) {
			out = append(out, h)
			continue
		}
		if !seen[h.Key] {
			seen[h.Key] = true
			removed = append(removed, h.Key)
		}
	}
	add := func(k, v string) {
		added = append(added, Header{Key: k, Value: []byte(v)})
	}
	add(HeaderRedriveJob, strconv.FormatInt(jobID, 10))
	add(HeaderRedriveCount, strconv.Itoa(dl.RedriveCount+1))
	if from := LocationString(dl.DLQ); from != "" {
		add(HeaderRedriveFrom, from)
	}
	if dl.Origin.Destination() != "" {
		add(HeaderRedriveOrigin, LocationString(dl.Origin))
	}
	return append(out, added...), added, removed
}
