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
