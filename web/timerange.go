package web

import (
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchyard/delivery"
	"switchyard/sqldb"
	"switchyard/web/templates"
)

// timeRange is the window a dashboard page shows, chosen with ?range= and
// carried in every dashboard link so that a view can be shared.
type timeRange struct {
	Key      string // "1h"
	Explicit bool   // the request named it (links then carry it)
	From, To time.Time
	Step     time.Duration
}

// ranges are the picker's choices, in display order.
var ranges = []struct {
	key string
	d   time.Duration
}{
	{"15m", 15 * time.Minute}, {"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour},
}

// defaultRange is the range of every page that shows time — dashboards,
// charts and the dead-letter trends alike — when the request names none.
// One hour: what is happening now, at a step fine enough to see a
// spike; a longer look is one click on the picker away.
const defaultRange = "1h"

// niceSteps are the chart resolutions; stepFor picks the finest that keeps
// a chart at 300 points or fewer (120–300 for every range of the picker).
var niceSteps = []time.Duration{
	5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

const maxChartPoints = 300

func stepFor(d time.Duration) time.Duration {
	for _, s := range niceSteps {
		if d/s <= maxChartPoints {
			return s
		}
	}
	return niceSteps[len(niceSteps)-1]
}

// parseRange reads ?range=; "" is the default. Errors are EINVALID.
func parseRange(key string, now time.Time) (timeRange, error) {
	explicit := key != ""
	if !explicit {
		key = defaultRange
	}
	i := slices.IndexFunc(ranges, func(r struct {
		key string
		d   time.Duration
	}) bool {
		return r.key == key
	})
	if i < 0 {
		return timeRange{}, delivery.Errorf(delivery.EINVALID, "range must be one of 15m, 1h, 6h, 24h or 7d")
	}
	d := ranges[i].d
	return timeRange{Key: key, Explicit: explicit, From: now.Add(-d), To: now, Step: stepFor(d)}, nil
}

// query is the "range=…" to append to dashboard links; "" for the default
// range so that plain links stay plain.
func (tr timeRange) query() string {
	if !tr.Explicit {
		return ""
	}
	return "range=" + url.QueryEscape(tr.Key)
}

// with appends the range to an internal link.
func (tr timeRange) with(href string) string {
	q := tr.query()
	if q == "" {
		return href
	}
	if strings.Contains(href, "?") {
		return href + "&" + q
	}
	return href + "?" + q
}

// picker builds the range links of a page at path, keeping its other
// query parameters (filter, sort) but not the page number.
func (tr timeRange) picker(path string, query url.Values) templates.RangePicker {
	p := templates.RangePicker{Current: tr.Key}
	for _, r := range ranges {
		q := url.Values{}
		for k, v := range query {
			if k != "range" && k != "page" {
				q[k] = v
			}
		}
		q.Set("range", r.key)
		p.Options = append(p.Options, templates.RangeOption{Key: r.key, Href: path + "?" + q.Encode(), Current: r.key == tr.Key})
	}
	return p
}

// parseTime reads an API time: RFC 3339 or Unix seconds (fractions
// allowed), as every store's reader does (sqldb.ParseQueryTime). Errors
// are EINVALID.
func parseTime(name, v string) (time.Time, error) { return sqldb.ParseQueryTime(name, v) }

// inRange refuses a time the stores cannot hold, naming the parameter.
func inRange(name string, t time.Time) (time.Time, error) { return sqldb.CheckTime(name, t) }

// parseStep reads an API step: a Go duration (90s, 1m30s), a Prometheus
// one (1d, 1w, 1y, also combined: 1d12h) or plain seconds. Errors are
// EINVALID.
func parseStep(v string) (time.Duration, error) {
	bad := delivery.Errorf(delivery.EINVALID, "step %q: want a duration such as 15s, 5m, 1h or 1d", v)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f <= 0 || math.IsNaN(f) || f > 1e9 {
			return 0, bad
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return 0, bad
		}
		return d, nil
	}
	// Prometheus: a sequence of <int><unit>, units y w d h m s ms.
	units := map[string]time.Duration{
		"y": 365 * 24 * time.Hour, "w": 7 * 24 * time.Hour, "d": 24 * time.Hour,
		"h": time.Hour, "m": time.Minute, "s": time.Second, "ms": time.Millisecond,
	}
	var total time.Duration
	rest := v
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return 0, bad
		}
		n, _ := strconv.Atoi(rest[:i])
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		u, ok := units[rest[:j]]
		if !ok {
			return 0, bad
		}
		total += time.Duration(n) * u
		rest = rest[j:]
	}
	if total <= 0 {
		return 0, bad
	}
	return total, nil
}

func itoa32(n int32) string { return strconv.Itoa(int(n)) }
