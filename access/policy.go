package access

import (
	"fmt"
	"slices"
	"strings"

	"switchyard/delivery"
)

// Action is what a request wants to do. Every web route names exactly one.
type Action string

// The actions of the console.
const (
	ActionView             Action = "view"              // see pages, lag, counts, topics, queues, groups
	ActionReadPayload      Action = "read_payload"      // see message bodies and headers
	ActionReadPII          Action = "read_pii"          // see fields classified as PII unmasked
	ActionRedrive          Action = "redrive"           // republish dead letters to their source
	ActionRedriveElsewhere Action = "redrive_elsewhere" // republish to another topic or queue
	ActionEdit             Action = "edit"              // change a payload before redriving
	ActionQuarantine       Action = "quarantine"        // move entries to quarantine
	ActionDiscard          Action = "discard"           // drop entries for good
	ActionManageAlerts     Action = "manage_alerts"     // create and change alert rules
	ActionExport           Action = "export"            // download data and rules
	ActionAdmin            Action = "admin"             // users, tokens, roles, bindings, audit
	ActionIngest           Action = "ingest"            // push service metrics over OTLP (POST /v1/metrics)
	ActionScrape           Action = "scrape"            // read the console's Prometheus metrics (GET /metrics)
)

// Actions returns every action, for tests that walk the policy matrix.
func Actions() []Action {
	return []Action{
		ActionView, ActionReadPayload, ActionReadPII, ActionRedrive, ActionRedriveElsewhere,
		ActionEdit, ActionQuarantine, ActionDiscard, ActionManageAlerts, ActionExport, ActionAdmin,
		ActionIngest, ActionScrape,
	}
}

// ValidAction reports whether a is one of Actions().
func ValidAction(a Action) bool { return slices.Contains(Actions(), a) }

// Built-in roles. Custom roles live in the roles table (Store.SaveRole).
// The scraper role is for Prometheus: /metrics carries every tenant's
// totals, so reading it is a permission of its own that no viewer or
// operator has, and a scrape token can do nothing else.
const (
	RoleScraper  = "scraper"
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

// Roles returns the built-in roles in increasing order of power.
func Roles() []string { return []string{RoleScraper, RoleViewer, RoleOperator, RoleAdmin} }

// BuiltInRole returns the actions of a built-in role and whether name is one.
func BuiltInRole(name string) ([]Action, bool) {
	switch strings.ToLower(name) {
	case RoleScraper:
		return []Action{ActionScrape}, true
	case RoleViewer:
		return []Action{ActionView}, true
	case RoleOperator:
		return []Action{ActionView, ActionReadPayload, ActionRedrive, ActionQuarantine, ActionDiscard, ActionExport}, true
	case RoleAdmin:
		return Actions(), true
	}
	return nil, false
}

// Principal is who a request acts as, with everything the policy needs
// resolved at authentication.
type Principal struct {
	User      string   `json:"user"`
	Groups    []string `json:"groups,omitempty"` // from the trusted proxy
	Method    string   `json:"method"`           // MethodSession, MethodToken, MethodProxy
	SessionID string   `json:"-"`                // opaque id of the session row, never the cookie value
	CSRFToken string   `json:"-"`                // the session's CSRF token (sessions only)
	Grants    []Grant  `json:"grants,omitempty"` // bindings for the user and groups, roles expanded
}

// Authentication methods recorded in Principal.Method.
const (
	MethodSession = "session"
	MethodToken   = "token"
	MethodProxy   = "proxy"
	// MethodCLI marks audit records of offline commands (console user add).
	MethodCLI = "cli"
)

// Grant is one role binding as it applies to a principal.
type Grant struct {
	Binding   int64    `json:"binding"`
	Subject   string   `json:"subject"` // "user:alice" or "group:ops"
	Role      string   `json:"role"`
	Actions   []Action `json:"actions"`
	Resources []string `json:"resources"` // glob patterns, see MatchResource
	Tenants   []string `json:"tenants"`   // "*" = all tenants
}

func (g Grant) has(a Action) bool { return slices.Contains(g.Actions, a) }

func (g Grant) matches(name string) bool {
	for _, pat := range g.Resources {
		if MatchResource(pat, name) {
			return true
		}
	}
	return false
}

func (g Grant) allTenants() bool { return slices.Contains(g.Tenants, "*") }

func (g Grant) tenantOK(t string) bool {
	return t == "" || g.allTenants() || slices.Contains(g.Tenants, t)
}

// MatchResource reports whether the glob pattern matches the resource name
// as a whole, in the console's one glob syntax (delivery.MatchGlob): "*"
// matches any sequence of characters, "/" included, so "kafka:prod/*"
// covers prod's topics and its consumer groups ("kafka:prod/group/…")
// alike, and "kafka:*/group/billing" covers the billing group on every
// cluster. "?" matches exactly one character. Every other character
// matches itself; there are no classes or escapes. Matching is
// case-sensitive, as broker names are.
func MatchResource(pattern, name string) bool { return delivery.MatchGlob(pattern, name) }

// Policy decides every request: the web layer calls Authorize once per
// request with the route's action and resource, and filters lists with Can
// and Scope; handlers never check permissions themselves. It is pure over
// Principal.Grants (no I/O) and its zero value is ready to use.
//
// A grant allows (a, r) when its role has a, one of its resource patterns
// matches r.Name, and r.Tenant is "" or among its tenants (or it has "*").
// r.Name "*" means "no specific resource": a route that lists things. It is
// allowed when any grant has the action (restricted to grants covering
// r.Tenant when that is set); the list is then filtered item by item with
// Can, or by tenant with Scope.
type Policy struct{}

// Authorize returns nil when p may do a on r, an delivery.EUNAUTHORIZED error when p
// is nil, and an delivery.EFORBIDDEN error otherwise. Unknown actions are denied.
func (pol Policy) Authorize(p *Principal, a Action, r Resource) error {
	if p == nil {
		return delivery.Errorf(delivery.EUNAUTHORIZED, "authentication required")
	}
	if pol.Can(p, a, r) {
		return nil
	}
	if r.Name == "" || r.Name == "*" {
		return delivery.Errorf(delivery.EFORBIDDEN, "you may not %s here", a)
	}
	return delivery.Errorf(delivery.EFORBIDDEN, "you may not %s %s", a, r.Name)
}

// Can reports whether p may do a on r; see Policy.
func (Policy) Can(p *Principal, a Action, r Resource) bool {
	if p == nil {
		return false
	}
	for _, g := range p.Grants {
		if !g.has(a) || !g.tenantOK(r.Tenant) {
			continue
		}
		if r.Name == "*" || g.matches(r.Name) {
			return true
		}
	}
	return false
}

// Scope is the set of tenants a principal may see for an action.
type Scope struct {
	All     bool     `json:"all"`
	Tenants []string `json:"tenants,omitempty"` // sorted, without duplicates
}

// Allows reports whether an entry of tenant may be shown. Entries without a
// tenant ("") are allowed whenever the scope is not empty, as Authorize
// allows tenant-less resources to any matching grant.
func (s Scope) Allows(tenant string) bool {
	if s.All {
		return true
	}
	if tenant == "" {
		return len(s.Tenants) > 0
	}
	_, found := slices.BinarySearch(s.Tenants, tenant)
	return found
}

// Empty reports whether the scope allows nothing.
func (s Scope) Empty() bool { return !s.All && len(s.Tenants) == 0 }

// Scope returns the tenants whose entries p may see for a on resourceName,
// the union over grants that have a and match resourceName ("*" = any
// grant with a, whatever its patterns: a list across resources is then
// narrowed per item with Can).
func (Policy) Scope(p *Principal, a Action, resourceName string) Scope {
	var s Scope
	if p == nil {
		return s
	}
	for _, g := range p.Grants {
		if !g.has(a) || (resourceName != "*" && !g.matches(resourceName)) {
			continue
		}
		if g.allTenants() {
			return Scope{All: true}
		}
		s.Tenants = append(s.Tenants, g.Tenants...)
	}
	slices.Sort(s.Tenants)
	s.Tenants = slices.Compact(s.Tenants)
	return s
}

// Decision is the answer for one action in Explain.
type Decision struct {
	Action  Action `json:"action"`
	Allowed bool   `json:"allowed"`
	Because string `json:"because"`
}

// Explain says, for every action, whether p may do it on r and why, in one
// line each: the first grant that allows it, or what is missing.
func (pol Policy) Explain(p *Principal, r Resource) []Decision {
	out := make([]Decision, 0, len(Actions()))
	for _, a := range Actions() {
		out = append(out, explainOne(p, a, r))
	}
	return out
}

func explainOne(p *Principal, a Action, r Resource) Decision {
	d := Decision{Action: a}
	if p == nil {
		d.Because = "not authenticated"
		return d
	}
	where := r.Name
	if where == "*" || where == "" {
		where = "any resource"
	}
	var wrongTenant, wrongResource []Grant
	for _, g := range p.Grants {
		if !g.has(a) {
			continue
		}
		resOK := r.Name == "*" || g.matches(r.Name)
		switch {
		case resOK && g.tenantOK(r.Tenant):
			d.Allowed = true
			d.Because = fmt.Sprintf("granted by role %s via %s on %s, tenants %s",
				g.Role, g.Subject, strings.Join(g.Resources, " "), strings.Join(g.Tenants, " "))
			return d
		case resOK:
			wrongTenant = append(wrongTenant, g)
		default:
			wrongResource = append(wrongResource, g)
		}
	}
	switch {
	case len(wrongTenant) > 0:
		var ts []string
		for _, g := range wrongTenant {
			ts = append(ts, g.Tenants...)
		}
		slices.Sort(ts)
		d.Because = fmt.Sprintf("%s on %s is granted only for tenants %s, not %s",
			a, where, strings.Join(slices.Compact(ts), " "), r.Tenant)
	case len(wrongResource) > 0:
		var rs []string
		for _, g := range wrongResource {
			rs = append(rs, g.Resources...)
		}
		slices.Sort(rs)
		d.Because = fmt.Sprintf("no binding grants %s on %s (only on %s)", a, where, strings.Join(slices.Compact(rs), " "))
	default:
		d.Because = fmt.Sprintf("no binding grants %s", a)
	}
	return d
}

// Rule is one grant's reach for an action, for filtering lists in a store's
// query rather than after it: a row is visible when its resource matches one
// of Resources (MatchResource globs) and its tenant is among Tenants (nil
// means every tenant, untenanted rows included).
type Rule struct {
	Resources []string
	Tenants   []string
}

// Rules returns the rules under which p may do a; none for nil p or when no
// grant has the action. Stores turn them into SQL (GlobSQL) so that counts
// and aggregates are computed only over what p may see.
func (Policy) Rules(p *Principal, a Action) []Rule {
	if p == nil {
		return nil
	}
	var out []Rule
	for _, g := range p.Grants {
		if !g.has(a) {
			continue
		}
		r := Rule{Resources: slices.Clone(g.Resources)}
		if !g.allTenants() {
			r.Tenants = slices.Clone(g.Tenants)
		}
		out = append(out, r)
	}
	return out
}

// GlobSQL turns a resource pattern into an SQLite GLOB pattern with the same
// meaning: '*' and '?' are shared; '[' would open a character class in GLOB
// and is matched literally instead.
func GlobSQL(pattern string) string {
	return strings.ReplaceAll(pattern, "[", "[[]")
}
