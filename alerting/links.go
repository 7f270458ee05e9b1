package alerting

import (
	"net/url"
	"strconv"

	"switchyard/dlqstore"
)

// RuleURL is the console path of a rule's page.
func RuleURL(id int64) string { return "/alerts/rules/" + strconv.FormatInt(id, 10) }

// Links are the console pages of what an alert is about, read off its
// labels, most specific first: the consumer group, the queue, the
// dead-letter group or destination, the topic, the service's failing
// traces, the cluster; the rule's page always comes last.
func Links(ruleID int64, labels map[string]string) []Link {
	var out []Link
	cluster := labels["cluster"]
	esc := url.PathEscape
	if g := labels["group"]; g != "" && cluster != "" {
		out = append(out, Link{Label: "consumer group " + g, URL: "/consumers/" + esc(cluster) + "/" + esc(g)})
	}
	if q := labels["queue"]; q != "" && cluster != "" && labels["vhost"] != "" {
		out = append(out, Link{Label: "queue " + q, URL: "/queues/" + esc(cluster) + "/" + esc(labels["vhost"]) + "/" + esc(q)})
	}
	if id, err := strconv.ParseInt(labels["dlq_group"], 10, 64); err == nil && id > 0 {
		f := dlqstore.Filter{GroupID: id}
		out = append(out, Link{Label: "dead-letter group " + labels["dlq_group"], URL: "/dead-letters/entries?" + f.Values().Encode()})
	}
	if d := labels["destination"]; d != "" && labels["broker"] != "" {
		f := dlqstore.Filter{Broker: labels["broker"], Cluster: cluster, Destination: d}
		out = append(out, Link{Label: "dead letters of " + d, URL: "/dead-letters/entries?" + f.Values().Encode()})
	}
	if t := labels["topic"]; t != "" && cluster != "" {
		out = append(out, Link{Label: "topic " + t, URL: "/topics/" + esc(cluster) + "/" + esc(t)})
	}
	if svc := labels["service"]; svc != "" {
		v := url.Values{"service": {svc}, "status": {"error"}}
		out = append(out, Link{Label: "failing traces of " + svc, URL: "/traces?" + v.Encode()})
	}
	return append(out, Link{Label: "rule", URL: RuleURL(ruleID)})
}

// GeneratorURL is the link sent with an alert to Alertmanager and
// webhooks: base (the console's external URL) and the page of what the
// alert is about, else the rule's page.
func GeneratorURL(base string, ruleID int64, labels map[string]string) string {
	return base + Links(ruleID, labels)[0].URL
}
