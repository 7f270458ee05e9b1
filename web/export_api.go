package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.yaml.in/yaml/v3"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/delivery"
	"switchyard/grafana"
)

// The export API: the console's alert rules as a Prometheus rule file,
// the platform's recommended rules, the generated Grafana dashboards and
// their provisioning file, a prometheus.yml scrape job for /metrics, and
// the push of the dashboards to a Grafana. Every route needs export
// (granted somewhere); the alerting service keeps the rule file to the
// rules the caller may view. The Export page (export.go) links to these
// downloads and runs the same push.

// exportPinParams are the dashboard variables a download may pin, and the
// rule file's filter of the same names.
var exportPinParams = []string{"cluster", "group", "tenant"}

// exportRuleParams are the query parameters of the rule file.
var exportRuleParams = append(slices.Clone(exportPinParams), "rule", "format")

// exportDashboardParams are those of one dashboard's download.
var exportDashboardParams = append(slices.Clone(exportPinParams), "console_url")

// maxPinLen bounds a pinned value (characters).
const maxPinLen = 200

// exportPins are the values a download pins, and the console URL panel
// links point to ("" → the dashboards' own ${console_url} variable).
type exportPins struct {
	Cluster, Group, Tenant, ConsoleURL string
}

// pinsOf reads the pins of v (query or form). Errors: EINVALID with a
// reason per field.
func pinsOf(v url.Values) (exportPins, error) {
	p := exportPins{Cluster: strings.TrimSpace(v.Get("cluster")), Group: strings.TrimSpace(v.Get("group")),
		Tenant: strings.TrimSpace(v.Get("tenant")), ConsoleURL: strings.TrimSpace(v.Get("console_url"))}
	fe := alerting.FieldErrors{}
	for _, f := range []struct{ name, v string }{{"cluster", p.Cluster}, {"group", p.Group}, {"tenant", p.Tenant}} {
		if len([]rune(f.v)) > maxPinLen {
			fe.Add(f.name, "at most %d characters", maxPinLen)
		}
	}
	if p.ConsoleURL != "" {
		if err := checkHTTPURL(p.ConsoleURL); err != "" {
			fe.Add("console_url", "%s", err)
		}
		p.ConsoleURL = strings.TrimRight(p.ConsoleURL, "/")
	}
	return p, fe.Err("export")
}

// checkHTTPURL is why u is not an absolute http(s) URL without
// credentials, or "".
func checkHTTPURL(u string) string {
	if len(u) > 2000 {
		return "at most 2000 characters"
	}
	pu, err := url.Parse(u)
	switch {
	case err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "":
		return "want an absolute http or https URL, such as https://grafana.example.com"
	case pu.User != nil:
		return "must not carry a user or password: the token goes in its own field"
	case pu.RawQuery != "" || pu.Fragment != "":
		return "must not carry a query or a fragment"
	}
	return ""
}

// grafanaOptions pins the dashboard variables of p.
func (p exportPins) grafanaOptions() grafana.Options {
	o := grafana.Options{ConsoleURL: p.ConsoleURL}
	for _, f := range []struct{ name, v string }{{"cluster", p.Cluster}, {"group", p.Group}, {"tenant", p.Tenant}} {
		if f.v != "" {
			if o.Pins == nil {
				o.Pins = map[string][]string{}
			}
			o.Pins[f.name] = []string{f.v}
		}
	}
	return o
}

// filter is the rule file's filter of the same pins.
func (p exportPins) filter() alerting.ExportFilter {
	return alerting.ExportFilter{Cluster: p.Cluster, Group: p.Group, Tenant: p.Tenant}
}

// query is p as the download links carry it; withConsole adds the
// console URL (the dashboards read it, the rule file does not).
func (p exportPins) query(withConsole bool) url.Values {
	q := url.Values{}
	for _, f := range []struct{ name, v string }{{"cluster", p.Cluster}, {"group", p.Group}, {"tenant", p.Tenant}} {
		if f.v != "" {
			q.Set(f.name, f.v)
		}
	}
	if withConsole && p.ConsoleURL != "" {
		q.Set("console_url", p.ConsoleURL)
	}
	return q
}

// attachment names the file a download is saved as.
func attachment(c *fiber.Ctx, contentType, file string) {
	c.Set(fiber.HeaderContentType, contentType)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+file+`"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
}

const (
	yamlType        = "text/yaml; charset=utf-8"
	rulesFile       = "switchyard-rules.yml"
	recommendedFile = "switchyard-recommended-rules.yml"
	scrapeFile      = "prometheus.yml"
	provisionFile   = "dashboards.yaml"
)

// handleAPIExportRules is the caller's rules as a Prometheus rule file
// (YAML), or with ?format=json the export with the rules left out.
// Filters: cluster, group, tenant (rules that pin them with an equality
// matcher), rule (one rule's id).
func (s *Server) handleAPIExportRules(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	q := queryOf(c)
	pins, err := pinsOf(q)
	if err != nil {
		return s.fail(c, err)
	}
	f := pins.filter()
	if v := strings.TrimSpace(q.Get("rule")); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return s.fail(c, fieldsError("export", map[string]string{"rule": "want a rule id"}))
		}
		f.RuleID = id
	}
	format := strings.TrimSpace(q.Get("format"))
	if format != "" && format != "yaml" && format != "json" {
		return s.fail(c, fieldsError("export", map[string]string{"format": "want yaml (default) or json"}))
	}
	exp, err := svc.ExportRules(c.UserContext(), alertCaller(c), f)
	if err != nil {
		return s.fail(c, err)
	}
	if format == "json" {
		exp.Unexportable = orEmpty(exp.Unexportable)
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(exp)
	}
	b, err := exp.YAML()
	if err != nil {
		return s.fail(c, err)
	}
	attachment(c, yamlType, rulesFile)
	return c.Send(b)
}

// handleAPIExportRecommended is the platform's recommended recording and
// alerting rules: the same for everyone, they need no console evaluator.
func (s *Server) handleAPIExportRecommended(c *fiber.Ctx) error {
	b, err := alerting.RecommendedRules().YAML()
	if err != nil {
		return s.fail(c, fmt.Errorf("recommended rules: %w", err))
	}
	attachment(c, yamlType, recommendedFile)
	return c.Send(b)
}

// apiDashboard is one generated dashboard in the list.
type apiDashboard struct {
	UID   string `json:"uid"`
	Title string `json:"title"`
	File  string `json:"file"`
}

// dashboards generates the dashboards for p.
func dashboards(p exportPins) ([]grafana.Dashboard, error) {
	ds, err := grafana.Dashboards(p.grafanaOptions())
	if err != nil {
		return nil, fmt.Errorf("generate dashboards: %w", err)
	}
	return ds, nil
}

// handleAPIExportDashboards lists the generated dashboards.
func (s *Server) handleAPIExportDashboards(c *fiber.Ctx) error {
	ds, err := dashboards(exportPins{})
	if err != nil {
		return s.fail(c, err)
	}
	out := make([]apiDashboard, len(ds))
	for i, d := range ds {
		out[i] = apiDashboard{UID: d.UID, Title: d.Title, File: d.File}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// handleAPIExportDashboard is one dashboard's JSON, its variables pinned
// by cluster, group and tenant, its links to console_url.
func (s *Server) handleAPIExportDashboard(c *fiber.Ctx) error {
	pins, err := pinsOf(queryOf(c))
	if err != nil {
		return s.fail(c, err)
	}
	ds, err := dashboards(pins)
	if err != nil {
		return s.fail(c, err)
	}
	uid := param(c, "uid")
	uids := make([]string, len(ds))
	for i, d := range ds {
		if d.UID == uid {
			attachment(c, fiber.MIMEApplicationJSONCharsetUTF8, d.File)
			return c.Send(d.JSON)
		}
		uids[i] = d.UID
	}
	return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "no dashboard %q: the dashboards are %s", truncateText(uid, 60), strings.Join(uids, ", ")))
}

// handleAPIExportProvisioning is Grafana's dashboards provisioning file.
func (s *Server) handleAPIExportProvisioning(c *fiber.Ctx) error {
	attachment(c, yamlType, provisionFile)
	return c.Send(grafana.Provisioning())
}

// scrapeTokenFile is where the scrape job reads its token: never the
// token itself in the file.
const scrapeTokenFile = "/etc/prometheus/switchyard.token"

// scrapeConfig is the part of prometheus.yml the scrape job fills.
type scrapeConfig struct {
	ScrapeConfigs []scrapeJob `yaml:"scrape_configs"`
}

type scrapeJob struct {
	JobName        string `yaml:"job_name"`
	ScrapeInterval string `yaml:"scrape_interval"`
	MetricsPath    string `yaml:"metrics_path"`
	Scheme         string `yaml:"scheme"`
	Authorization  struct {
		Type            string `yaml:"type"`
		CredentialsFile string `yaml:"credentials_file"`
	} `yaml:"authorization"`
	StaticConfigs []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
}

// consoleURL is the console's address as users reach it: the external
// URL when configured (alerting.external_url), else this request's.
func (s *Server) consoleURL(c *fiber.Ctx) string {
	if s.externalURL != "" {
		return s.externalURL
	}
	return strings.Clone(c.BaseURL())
}

// scrapeJobYAML is a prometheus.yml with the scrape job of the console
// at base: bearer auth from a credentials file, every 15 s.
func scrapeJobYAML(base string) ([]byte, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("scrape job: console URL %q: %w", base, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("scrape job: console URL %q has no host", base)
	}
	job := scrapeJob{JobName: "switchyard", ScrapeInterval: "15s", MetricsPath: strings.TrimRight(u.Path, "/") + "/metrics", Scheme: u.Scheme}
	job.Authorization.Type, job.Authorization.CredentialsFile = "Bearer", scrapeTokenFile
	job.StaticConfigs = append(job.StaticConfigs, struct {
		Targets []string `yaml:"targets"`
	}{Targets: []string{u.Host}})
	var buf bytes.Buffer
	buf.WriteString("# A Prometheus scrape job for the Switchyard console's /metrics, generated by the console.\n" +
		"# /metrics needs the token of a scraper in " + scrapeTokenFile + ":\n" +
		"#   console user add prometheus --role scraper\n" +
		"#   console token create --user prometheus --name prometheus --ttl 8760h > " + scrapeTokenFile + "\n" +
		"# Load the exported rules with rule_files: [switchyard-rules.yml].\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(scrapeConfig{ScrapeConfigs: []scrapeJob{job}}); err != nil {
		return nil, fmt.Errorf("scrape job: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("scrape job: %w", err)
	}
	return buf.Bytes(), nil
}

// handleAPIExportScrape is the prometheus.yml scrape job for this console.
func (s *Server) handleAPIExportScrape(c *fiber.Ctx) error {
	b, err := scrapeJobYAML(s.consoleURL(c))
	if err != nil {
		return s.fail(c, err)
	}
	attachment(c, yamlType, scrapeFile)
	return c.Send(b)
}

// The push to Grafana: per request at most grafanaTimeout, the whole push
// at most pushDeadline, so that a slow Grafana gives results, never a
// hung page.
const (
	grafanaTimeout = 10 * time.Second
	pushDeadline   = 45 * time.Second
	maxTokenLen    = 4096
)

// folderUIDRE is what Grafana accepts as a folder uid.
var folderUIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)

// pushRequest is a push: where, with which token, into which folder, and
// the dashboards' pins.
type pushRequest struct {
	URL       string `json:"url"`
	Token     string `json:"token"`
	FolderUID string `json:"folder_uid"`
	Cluster   string `json:"cluster"`
	Group     string `json:"group"`
	Tenant    string `json:"tenant"`
	// ConsoleURL is where the pushed dashboards' links point; default
	// the console's own address.
	ConsoleURL string `json:"console_url"`
}

// check validates the request; the reasons never repeat the token.
func (in *pushRequest) check() (exportPins, error) {
	in.URL, in.FolderUID = strings.TrimSpace(in.URL), strings.TrimSpace(in.FolderUID)
	in.Token = strings.TrimSpace(in.Token)
	fe := alerting.FieldErrors{}
	switch {
	case in.URL == "":
		fe.Add("url", "required: Grafana's address, such as https://grafana.example.com")
	default:
		if why := checkHTTPURL(in.URL); why != "" {
			fe.Add("url", "%s", why)
		}
	}
	switch {
	case in.Token == "":
		fe.Add("token", "required: a Grafana service-account token (role Editor)")
	case len(in.Token) > maxTokenLen:
		fe.Add("token", "at most %d characters", maxTokenLen)
	case strings.IndexFunc(in.Token, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		fe.Add("token", "a token is printable ASCII without spaces")
	}
	if in.FolderUID != "" && !folderUIDRE.MatchString(in.FolderUID) {
		fe.Add("folder_uid", "a folder uid is 1 to 40 letters, digits, - or _ (the last part of the folder's URL)")
	}
	pins, err := pinsOf(url.Values{"cluster": {in.Cluster}, "group": {in.Group}, "tenant": {in.Tenant}, "console_url": {in.ConsoleURL}})
	for k, v := range fieldErrorsOf(err) {
		fe[k] = v
	}
	if err := fe.Err("push"); err != nil {
		return exportPins{}, err
	}
	return pins, nil
}

// pushDashboards generates the dashboards of in and pushes them to its
// Grafana: a result per dashboard, never an error for what Grafana
// answered. The push is audited (grafana.push: where, the folder, the
// outcomes; never the token). Errors: EINVALID (Details["fields"]).
func (s *Server) pushDashboards(c *fiber.Ctx, in pushRequest) ([]grafana.PushResult, error) {
	pins, err := in.check()
	if err != nil {
		return nil, err
	}
	if pins.ConsoleURL == "" {
		pins.ConsoleURL = s.consoleURL(c)
	}
	ds, err := dashboards(pins)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), pushDeadline)
	defer cancel()
	res := grafana.Push(ctx, grafana.PushOptions{URL: in.URL, Token: in.Token, FolderUID: in.FolderUID, Timeout: grafanaTimeout}, ds)
	if s.audit != nil {
		outcome, failed := access.OutcomeSuccess, 0
		for _, r := range res {
			if !r.OK {
				failed++
			}
		}
		if failed > 0 {
			outcome = access.OutcomeFailure
		}
		ev := s.auditEvent(c, principal(c), "grafana.push", in.URL, outcome)
		ev.Details = map[string]any{"folder_uid": in.FolderUID, "dashboards": len(res), "failed": failed, "pins": pins.query(false).Encode()}
		if aerr := s.audit.Append(c.UserContext(), ev); aerr != nil {
			return nil, fmt.Errorf("audit grafana push: %w", aerr)
		}
	}
	return res, nil
}

// apiPushResult is Grafana's answer for one dashboard.
type apiPushResult struct {
	UID     string `json:"uid"`
	Title   string `json:"title"`
	OK      bool   `json:"ok"`
	Version int64  `json:"version,omitempty"`
	URL     string `json:"url,omitempty"`
	Error   string `json:"error,omitempty"`
	API     string `json:"api,omitempty"`
}

// apiPush is a push's results, and how many failed.
type apiPush struct {
	Results []apiPushResult `json:"results"`
	Failed  int             `json:"failed"`
}

// handleAPIExportGrafana pushes the dashboards to a Grafana: 200 with a
// result per dashboard even when Grafana refused some (the results say
// why); 400 for a request that cannot be sent.
func (s *Server) handleAPIExportGrafana(c *fiber.Ctx) error {
	var in pushRequest
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "body must be {url, token, folder_uid, cluster, group, tenant, console_url}: %s", jsonProblem(err)))
	}
	res, err := s.pushDashboards(c, in)
	if err != nil {
		return s.fail(c, err)
	}
	out := apiPush{Results: make([]apiPushResult, len(res))}
	for i, r := range res {
		out.Results[i] = apiPushResult{UID: r.UID, Title: r.Title, OK: r.OK, Version: r.Version, URL: r.URL, Error: r.Error, API: r.API}
		if !r.OK {
			out.Failed++
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}
