package web

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/grafana"
	"switchyard/web/templates"
)

// The Export page: the generated Grafana dashboards, the Prometheus rule
// file (with the rules it leaves out and why), the recommended rules and
// a prometheus.yml scrape job to download — pinned to a cluster, group or
// tenant when the form asks — and a form that pushes the dashboards to a
// Grafana with a service-account token, showing Grafana's answer per
// dashboard. The token is used for that one push: never stored, logged
// or shown again. The downloads are the export API's (export_api.go).

// handleExport is the Export page.
func (s *Server) handleExport(c *fiber.Ctx) error {
	q := queryOf(c)
	pins, err := pinsOf(q)
	vm := templates.Export{}
	if err != nil {
		// The page still offers everything, unpinned, with the reason.
		vm.PinsError = reasonsText(err)
		vm.Pins = templates.ExportPins{Cluster: q.Get("cluster"), Group: q.Get("group"), Tenant: q.Get("tenant"), ConsoleURL: q.Get("console_url")}
		pins = exportPins{}
	} else {
		if pins.ConsoleURL == "" {
			pins.ConsoleURL = s.consoleURL(c)
		}
		vm.Pins = templates.ExportPins(pins)
	}
	if err := s.exportPage(c, &vm, pins); err != nil {
		return s.fail(c, err)
	}
	if vm.PinsError != "" {
		c.Status(fiber.StatusBadRequest)
	}
	return s.render(c, templates.Page{Title: "Export", Area: templates.AreaExport}, templates.ExportView(vm))
}

// exportPage fills the downloads of pins into vm.
func (s *Server) exportPage(c *fiber.Ctx, vm *templates.Export, pins exportPins) error {
	ds, err := dashboards(pins)
	if err != nil {
		return err
	}
	dq := pins.query(true)
	for _, d := range ds {
		vm.Dashboards = append(vm.Dashboards, templates.ExportDashboard{UID: d.UID, Title: d.Title, File: d.File,
			Href: withQuery("/api/v1/export/dashboards/"+d.UID, dq)})
	}
	vm.ProvisioningHref = "/api/v1/export/dashboards/provisioning"
	vm.RecommendedHref = "/api/v1/export/prometheus-rules/recommended"
	vm.ScrapeHref = "/api/v1/export/prometheus-scrape"
	scrape, err := scrapeJobYAML(s.consoleURL(c))
	if err != nil {
		return err
	}
	vm.Scrape = string(scrape)
	if s.alerts == nil {
		vm.RulesOff = true
		return nil
	}
	rq := pins.query(false)
	vm.RulesHref = withQuery("/api/v1/export/prometheus-rules", rq)
	jq := cloneValues(rq)
	jq.Set("format", "json")
	vm.RulesJSONHref = withQuery("/api/v1/export/prometheus-rules", jq)
	exp, err := s.alerts.ExportRules(c.UserContext(), alertCaller(c), pins.filter())
	if err != nil {
		return err
	}
	for _, g := range exp.File.Groups {
		vm.Exported += len(g.Rules)
	}
	for _, u := range exp.Unexportable {
		vm.Unexportable = append(vm.Unexportable, templates.ExportUnexportable{RuleID: u.RuleID, Name: u.Name, Reason: u.Reason, Href: ruleHref(u.RuleID)})
	}
	return nil
}

// handleExportGrafana is the page's push form: the dashboards (pinned as
// the page was) go to the Grafana of the form, and the page shows the
// result per dashboard. A form that cannot be sent shows again with the
// reasons (400); the token field always comes back empty.
func (s *Server) handleExportGrafana(c *fiber.Ctx) error {
	v := formValues(c)
	in := pushRequest{URL: v.Get("url"), Token: v.Get("token"), FolderUID: v.Get("folder_uid"),
		Cluster: v.Get("cluster"), Group: v.Get("group"), Tenant: v.Get("tenant"), ConsoleURL: v.Get("console_url")}
	res, err := s.pushDashboards(c, in)
	vm := templates.Export{Push: templates.ExportPushForm{URL: in.URL, FolderUID: in.FolderUID}}
	pins, perr := pinsOf(v)
	if perr != nil {
		pins = exportPins{}
	}
	if pins.ConsoleURL == "" {
		pins.ConsoleURL = s.consoleURL(c)
	}
	vm.Pins = templates.ExportPins(pins)
	status := fiber.StatusOK
	if err != nil {
		msg, shown := formError(err)
		if !shown {
			return s.fail(c, err)
		}
		vm.Push.Error, vm.Push.Errors = msg, fieldErrorsOf(err)
		status = statusOf(delivery.ErrorCode(err))
	} else {
		vm.Pushed = true
		vm.Results = pushResultsOf(res)
	}
	if err := s.exportPage(c, &vm, pins); err != nil {
		return s.fail(c, err)
	}
	c.Status(status)
	return s.render(c, templates.Page{Title: "Export", Area: templates.AreaExport}, templates.ExportView(vm))
}

func pushResultsOf(res []grafana.PushResult) []templates.ExportPushResult {
	out := make([]templates.ExportPushResult, len(res))
	for i, r := range res {
		out[i] = templates.ExportPushResult{UID: r.UID, Title: r.Title, OK: r.OK, Version: r.Version, URL: r.URL, Error: r.Error, API: r.API}
	}
	return out
}

// reasonsText is an error's reasons per field on one line ("console_url:
// want an absolute http or https URL"), or its message.
func reasonsText(err error) string {
	fields := fieldErrorsOf(err)
	if len(fields) == 0 {
		return delivery.ErrorMessage(err)
	}
	parts := make([]string, 0, len(fields))
	for _, k := range sortedLabelNames(fields) {
		parts = append(parts, k+": "+fields[k])
	}
	return strings.Join(parts, "; ")
}
