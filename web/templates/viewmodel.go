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
	// Badge is a small count after the label ("12": open dead letters).
	Badge string
}

// NavItems returns the navigation in display order.
func NavItems() []NavItem {
	return []NavItem{
		{Area: AreaOverview, Label: "Overview", Href: "/"},
		{Area: AreaConsumers, Label: "Consumers", Href: "/consumers"},
		{Area: AreaQueues, Label: "Queues", Href: "/queues"},
		{Area: AreaDeadLetters, Label: "Dead letters", Href: "/dead-letters"},
		{Area: AreaTraces, Label: "Traces", Href: "/traces"},
		{Area: AreaAlerts, Label: "Alerts", Href: "/alerts"},
		{Area: AreaExport, Label: "Export", Href: "/export"},
		{Area: AreaAdmin, Label: "Admin", Href: "/admin"},
	}
}

// Page is what the layout needs around every page.
type Page struct {
	Title        string
	Area         string // highlighted navigation entry
	User         string // "" on the login page and anonymous error pages
	CanLogout    bool   // signed in with a session (not a token or the proxy)
	Nav          []NavItem
	CSRF         string // token of every form and of app.js requests
	Flash        string // message of the previous redirect
	Version      string // of the console binary
	AssetVersion string // cache-busting query for static files
	// Refresh makes app.js reload the panel every 5 s.
	Refresh bool
	// RangeQuery ("range=6h", or "") is appended to the dashboard links
	// of the navigation so that the chosen time range follows the user.
	RangeQuery string
}

// RangePicker is the time range choice of a dashboard page.
type RangePicker struct {
	Current string
	Options []RangeOption
}

// RangeOption is one choice, linking to the same page with that range.
type RangeOption struct {
	Key, Href string
	Current   bool
}

// Table is the filter, sort and paging state of a long table; the rows
// themselves live next to it. Links keep the range.
type Table struct {
	Path  string // page the links point at
	Range string // "" or the explicit range key
	Q     string
	Sort  string
	Sorts []string // the sort keys offered
	Page  int      // 1-based
	Pages int
	Total int // rows after filtering
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
	// Stale is set when the data shown is older than three poll
	// intervals: the values are the last good ones, not current.
	Stale bool
	// Kind is "kafka" or "rabbitmq".
	Kind string
}

// Overview is the landing page.
type Overview struct {
	// Firing is the head: the firing alerts the principal may see; nil
	// when none fire or alerting is off.
	Firing   *FiringHead
	Range    RangePicker
	Clusters []ClusterCard
	Rabbit   []RabbitCard
	Services Services
}

// Services is the services' own event metrics over the range.
type Services struct {
	HasData bool
	// Scoped: the principal sees only some tenants or destinations; the
	// figures add up those only.
	Scoped bool
	Total  ServiceRow
	Rows   []ServiceRow // per service, worst failure ratio first
	Rates  Chart        // processed and failed per second
}

// ServiceRow is one service's (or all services') figures over the range.
type ServiceRow struct {
	Service           string
	Processed, Failed float64 // increase over the range
	// FailureRatio is failed / (processed + failed); NaN without events.
	FailureRatio  float64
	P50, P95, P99 float64 // seconds; NaN when unknown
	AlertOn       []AlertOn
}

// RabbitCard is one RabbitMQ cluster on the overview.
type RabbitCard struct {
	Status    ClusterStatus
	Queues    int
	Messages  int64
	Publish   Rate // all visible queues
	DLQRate   Rate // publish rate into dead-letter queues
	Alarms    []string
	Chart     Chart // publish rate
	DLQChart  Chart
	QueuesRef string
	AlertOn   []AlertOn // when unreachable
}

// ClusterCard is one cluster on the overview.
type ClusterCard struct {
	Status     ClusterStatus
	Brokers    int
	TopicCount int
	Messages   int64
	Rate       Rate // all topics together
	Topics     []TopicRow
	TopicTable Table
	// Groups are the worst-lagging groups: by status severity, then lag
	// in seconds, then lag; at most ten.
	Groups       []GroupRow
	GroupCount   int
	DLQRate      Rate
	Throughput   Chart
	DLQChart     Chart
	ConsumersRef string
	AlertOn      []AlertOn // when unreachable
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
	Status, Reason      string // Burrow's verdict: OK, WARN, ERR
	LagSeconds          float64
	LagSecondsKnown     bool
	Stale               bool
}

// TopicDetail is /topics/:cluster/:topic.
type TopicDetail struct {
	Range      RangePicker
	Chart      Chart
	Status     ClusterStatus
	Name       string
	IsDLQ      bool
	Messages   int64
	Rate       Rate
	Error      string
	Partitions []PartitionRow
	Groups     []TopicGroupRow
	// MessagesHref links the message browser; "" when the user may not
	// read payloads.
	MessagesHref string
	// DeadLetters is set on a DLQ topic's page with a dead-letter index.
	DeadLetters *DLQHere
}

// PartitionRow is one partition of a topic.
type PartitionRow struct {
	Partition int32
	Leader    int32
	Low, High int64
	Messages  int64
	Rate      Rate
	Error     string
}

// TopicGroupRow is a group consuming the topic, with its lag on it.
type TopicGroupRow struct {
	Name, Href, State string
	Lag               int64
	LagSeconds        float64
	LagSecondsKnown   bool
	Status, Reason    string // worst partition of the topic
}

// Consumers is /consumers.
type Consumers struct {
	Sort     string // name, lag, lag-seconds, status
	Range    RangePicker
	Table    Table
	Clusters []ClusterStatus
	Groups   []GroupRow // the current page
}

// GroupDetail is /consumers/:cluster/:group.
type GroupDetail struct {
	Range              RangePicker
	Charts             []Chart
	Verdict            string // OK, WARN, ERR
	Reason             string
	Complete           float64 // share of partitions with a full window, 0..1
	MaxLagSeconds      float64
	MaxLagSecondsKnown bool
	MaxLagWhere        string // "topic/partition"
	Status             ClusterStatus
	Name               string
	State              string
	Protocol           string
	Members            int
	TotalLag           int64
	Rate               Rate
	Error              string
	Partitions         []GroupPartitionRow
	// Traces are the group's recent traces; nil without a span store.
	Traces  *GroupTraces
	AlertOn []AlertOn
}

// GroupPartitionRow is the group's position on one partition.
type GroupPartitionRow struct {
	Topic, TopicHref string
	Partition        int32
	Committed        int64 // -1: nothing committed
	High             int64 // -1: unknown
	Lag              int64 // -1: unknown
	LagSeconds       float64
	LagSecondsKnown  bool
	Status, Reason   string
	Member           string
	Error            string
}

// Queues is /queues.
type Queues struct {
	Range    RangePicker
	Table    Table
	Clusters []ClusterStatus
	Alarms   []string // "rabbit@node1: memory alarm"
	Rows     []QueueRow
}

// QueueRow is one RabbitMQ queue.
type QueueRow struct {
	Cluster, VHost, Name, Href string
	Type, State                string
	Ready, Unacked, Total      int64
	Consumers                  int
	Utilisation                float64 // 0..1, -1 unknown
	Publish, Deliver           Rate
	Ack, Redeliver             Rate
	IsDLQ                      bool
	DLQOf                      []string
	Stale                      bool
	AlertOn                    []AlertOn
}

// QueueDetail is /queues/:cluster/:vhost/:queue.
type QueueDetail struct {
	Range  RangePicker
	Status ClusterStatus
	Alarms []string
	Queue  QueueRow
	Charts []Chart
	// Where this queue's rejects go: its x-dead-letter-* arguments (or
	// its policy's) and the queues they reach.
	DeadLetterExchange, DeadLetterRoutingKey string
	DeadLetterQueues                         []QueueLink
	// DeadLetters is set on a DLQ queue's page with a dead-letter index.
	DeadLetters *DLQHere
}

// ErrorPage explains a failed request.
type ErrorPage struct {
	Status    int
	Title     string
	Message   string
	RequestID string
}

// Login is the sign-in form.
type Login struct {
	User  string
	Next  string
	Error string
}

// HeaderRow is one record header.
type HeaderRow struct{ Key, Value string }

// AdminHome is /admin.
type AdminHome struct {
	Users, ActiveTokens, Roles, Bindings int
}

// Users is /admin/users.
type Users struct {
	Rows    []UserRow
	NewName string
	Error   string
}

// UserRow is one user.
type UserRow struct {
	Name, Created, LastLogin string
	Disabled                 bool
}

// Tokens is /admin/tokens, and the result page of issuing one.
type Tokens struct {
	Rows   []TokenRow
	Users  []string
	Form   TokenForm
	Error  string
	Issued *IssuedToken
}

// TokenForm is the issue form's input.
type TokenForm struct{ User, Name, TTL string }

// TokenRow is one API token.
type TokenRow struct {
	ID                                     int64
	User, Name, Created, Expires, LastUsed string
	State                                  string // active, expired, revoked
}

// IssuedToken is shown once, right after issuing.
type IssuedToken struct{ User, Name, Plaintext, Expires string }

// Roles is /admin/roles.
type Roles struct {
	Rows    []RoleRow
	Actions []string
	Form    RoleForm
	Error   string
}

// RoleRow is one role.
type RoleRow struct {
	Name    string
	Actions []string
	BuiltIn bool
}

// RoleForm creates or edits a custom role.
type RoleForm struct {
	Name    string
	Actions map[string]bool
	Editing bool
}

// Bindings is /admin/bindings.
type Bindings struct {
	Rows  []BindingRow
	Roles []string
	Form  BindingForm
	Error string
}

// BindingRow is one role binding.
type BindingRow struct {
	ID                 int64
	Subject, Role      string
	Resources, Tenants []string
	Created            string
}

// BindingForm is the add-binding form's input. Proxy is the "SSO
// identity" checkbox: the subject is a group or user of the trusted proxy
// that the console cannot look up.
type BindingForm struct {
	Subject, Role, Resources, Tenants string
	Proxy                             bool
}

// Check is /admin/check: what a user may do on a resource.
type Check struct {
	User, Resource, Tenant string
	Ran                    bool
	Rows                   []DecisionRow
	Error                  string
}

// DecisionRow is one action's answer.
type DecisionRow struct {
	Action  string
	Allowed bool
	Because string
}

// Audit is /admin/audit.
type Audit struct {
	Actor, Action, Outcome, Resource, Since, Until string
	Rows                                           []AuditRow
	OlderHref, ExportHref                          string
	Error                                          string
}

// AuditRow is one audit record.
type AuditRow struct {
	ID                                        int64
	Time, Actor, Method, SourceIP, Action     string
	Resource, Tenant, Outcome, Reason, Detail string
}
