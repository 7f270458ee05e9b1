// Package templates renders the console's pages. Components take the view
// models below and nothing else: no stores, no services, no I/O. The web
// package builds the view models.
package templates

// Areas of the console, one per navigation entry. The value is also the
// suffix of the nav link's data-testid ("nav-" + area).
const (
	AreaOverview    = "overview"
	AreaConsumers   = "consumers"
	AreaQueues      = "queues"
	AreaDeadLetters = "dead-letters"
	AreaTraces      = "traces"
	AreaAlerts      = "alerts"
	AreaExport      = "export"
	AreaAdmin       = "admin"
)

// NavItem is one entry of the left navigation.
type NavItem struct {
	Area, Label, Href string
}

// NavItems returns the navigation in display order.
func NavItems() []NavItem {
	return []NavItem{
		{AreaOverview, "Overview", "/"},
		{AreaConsumers, "Consumers", "/consumers"},
		{AreaQueues, "Queues", "/queues"},
		{AreaDeadLetters, "Dead letters", "/dead-letters"},
		{AreaTraces, "Traces", "/traces"},
		{AreaAlerts, "Alerts", "/alerts"},
		{AreaExport, "Export", "/export"},
		{AreaAdmin, "Admin", "/admin"},
	}
}

// Page is what the layout needs around every page.
type Page struct {
	Title        string
	Area         string // highlighted navigation entry
	User, Role   string
	Version      string // of the console binary
	AssetVersion string // cache-busting query for static files
	// Refresh makes app.js reload the panel every 5 s.
	Refresh bool
}

// Rate is a per-second rate that may not be known yet.
type Rate struct {
	PerSec float64
	Known  bool
}

// ClusterStatus says how fresh the data of a cluster is.
type ClusterStatus struct {
	Name string
	// State is "ok", "unreachable" or "connecting" (not polled yet).
	State      string
	Error      string // set when unreachable
	Since      string // "3m ago": since when unreachable
	UpdatedAgo string // age of the data shown
	HasData    bool
}

// Overview is the landing page.
type Overview struct {
	Clusters []ClusterCard
}

// ClusterCard is one cluster on the overview.
type ClusterCard struct {
	Status     ClusterStatus
	Brokers    int
	TopicCount int
	Messages   int64
	Rate       Rate // all topics together
	Topics     []TopicRow
	Groups     []GroupRow // by lag, largest first
}

// TopicRow is a topic in a table.
type TopicRow struct {
	Cluster, Name, Href string
	Partitions          int
	Messages            int64
	Rate                Rate
	IsDLQ               bool
	Error               string
}

// GroupRow is a consumer group in a table.
type GroupRow struct {
	Cluster, Name, Href string
	State               string
	Members             int
	TotalLag            int64
	Rate                Rate // consumption
	Error               string
}

// TopicDetail is /topics/:cluster/:topic.
type TopicDetail struct {
	Status     ClusterStatus
	Name       string
	IsDLQ      bool
	Messages   int64
	Rate       Rate
	Error      string
	Partitions []PartitionRow
	Groups     []TopicGroupRow
}

// PartitionRow is one partition of a topic.
type PartitionRow struct {
	Partition int32
	Leader    int32
	Low, High int64
	Messages  int64
	Error     string
}

// TopicGroupRow is a group consuming the topic, with its lag on it.
type TopicGroupRow struct {
	Name, Href, State string
	Lag               int64
}

// Consumers is /consumers.
type Consumers struct {
	Sort     string // "lag" or "name"
	Clusters []ClusterStatus
	Groups   []GroupRow
}

// GroupDetail is /consumers/:cluster/:group.
type GroupDetail struct {
	Status     ClusterStatus
	Name       string
	State      string
	Protocol   string
	Members    int
	TotalLag   int64
	Rate       Rate
	Error      string
	Partitions []GroupPartitionRow
}

// GroupPartitionRow is the group's position on one partition.
type GroupPartitionRow struct {
	Topic, TopicHref string
	Partition        int32
	Committed        int64 // -1: nothing committed
	High             int64 // -1: unknown
	Lag              int64 // -1: unknown
	Member           string
	Error            string
}

// Placeholder is a page whose feature has not landed yet: it says what
// will appear there instead of showing made-up data.
type Placeholder struct {
	Heading string
	Summary string
	Coming  []string
}

// ErrorPage explains a failed request.
type ErrorPage struct {
	Status    int
	Title     string
	Message   string
	RequestID string
}
