package templates

import (
	"net/url"
	"strconv"
)

// Href links the table's page with sort and page changed, keeping the
// filter and the range.
func (t Table) Href(sort string, page int) string {
	q := url.Values{}
	if t.Q != "" {
		q.Set("q", t.Q)
	}
	if sort != "" {
		q.Set("sort", sort)
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	if t.Range != "" {
		q.Set("range", t.Range)
	}
	if len(q) == 0 {
		return t.Path
	}
	return t.Path + "?" + q.Encode()
}

// statusClass is the badge colour of a Burrow status.
func statusClass(s string) string {
	switch s {
	case "OK":
		return "badge ok"
	case "WARN":
		return "badge warn"
	case "":
		return "badge"
	}
	return "badge bad"
}

func pct(r float64) string {
	if r < 0 {
		return "—"
	}
	return Percent(r)
}

func lagSeconds(v float64, known bool) string {
	if !known {
		return "—"
	}
	return Seconds(v)
}

func fmtFloat(v float64) string { return FormatValue(v, UnitMessages) }

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
