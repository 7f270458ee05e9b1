package templates

// The Export page's view model: downloads of the generated Grafana
// dashboards and the Prometheus files, and the push to a Grafana.

// Export is the Export page.
type Export struct {
	// Pins are the values the form pins (as typed); the download links
	// carry them.
	Pins ExportPins
	// PinsError says why the pins were refused (the links then carry
	// none).
	PinsError string
	// Dashboards are the generated dashboards, each a download.
	Dashboards       []ExportDashboard
	ProvisioningHref string
	// Rules: RulesOff when alerting is not configured; otherwise the
	// rule file's links, how many rules it holds and the rules it leaves
	// out with the reason.
	RulesOff        bool
	RulesHref       string
	RulesJSONHref   string
	RecommendedHref string
	Exported        int
	Unexportable    []ExportUnexportable
	// ScrapeHref downloads the scrape job shown in Scrape.
	ScrapeHref string
	Scrape     string
	// Push is the push form; Results its outcome per dashboard (Pushed
	// when the form was sent).
	Push    ExportPushForm
	Pushed  bool
	Results []ExportPushResult
}

// ExportPins are the pin form's fields.
type ExportPins struct {
	Cluster, Group, Tenant, ConsoleURL string
}

// ExportDashboard is one dashboard's download.
type ExportDashboard struct {
	UID, Title, File, Href string
}

// ExportUnexportable is a rule the rule file leaves out, and why.
type ExportUnexportable struct {
	RuleID       int64
	Name, Reason string
	Href         string
}

// ExportPushForm is the push form as sent, without the token: it is never
// put back into the page.
type ExportPushForm struct {
	URL, FolderUID string
	Error          string
	Errors         map[string]string
}

// Err is the reason for a field, or "".
func (f ExportPushForm) Err(field string) string { return f.Errors[field] }

// ExportPushResult is Grafana's answer for one dashboard.
type ExportPushResult struct {
	UID, Title string
	OK         bool
	Version    int64
	URL        string
	Error      string
	API        string
}
