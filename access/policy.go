package access

// Action is what a request wants to do. Every web route names exactly one.
type Action string

// The actions of the console. The next issue refines them with resource
// patterns and tenants; the names stay.
const (
	ActionView             Action = "view"              // see pages, lag, counts
	ActionReadPayload      Action = "read_payload"      // see message bodies and headers
	ActionReadPII          Action = "read_pii"          // see fields classified as PII unmasked
	ActionRedrive          Action = "redrive"           // republish dead letters to their source
	ActionRedriveElsewhere Action = "redrive_elsewhere" // republish to another topic or queue
	ActionEdit             Action = "edit"              // change a payload before redriving
	ActionQuarantine       Action = "quarantine"        // move entries to quarantine
	ActionDiscard          Action = "discard"           // drop entries for good
	ActionManageAlerts     Action = "manage_alerts"     // create and change alert rules
	ActionExport           Action = "export"            // download data and rules
	ActionAdmin            Action = "admin"             // users, tokens, settings
)

// Actions returns every action, for tests that walk the policy matrix.
func Actions() []Action {
	return []Action{
		ActionView, ActionReadPayload, ActionReadPII, ActionRedrive, ActionRedriveElsewhere,
		ActionEdit, ActionQuarantine, ActionDiscard, ActionManageAlerts, ActionExport, ActionAdmin,
	}
}

// Roles.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

// Roles returns the roles in increasing order of power.
func Roles() []string { return []string{RoleViewer, RoleOperator, RoleAdmin} }

func validRole(r string) bool {
	for _, x := range Roles() {
		if r == x {
			return true
		}
	}
	return false
}

// Principal is who a request acts as, after authentication.
type Principal struct {
	User   string `json:"user"`
	Role   string `json:"role"`
	Method string `json:"method"` // MethodBasic or MethodToken; sessions come next
}

// Authentication methods recorded in Principal.Method.
const (
	MethodBasic = "basic"
	MethodToken = "token"
)

// Policy decides every request: the web layer calls Authorize once per
// request with the route's action and resource, and handlers never check
// permissions themselves. The zero value is ready to use.
//
// For now the decision depends on the role alone; resource is the name of
// what is touched ("kafka:<cluster>/<topic>", "admin", "*") so that the
// coming resource-pattern and tenant rules fit without changing callers.
type Policy struct{}

// Authorize returns nil when p may do action on resource, an EUNAUTHORIZED
// error when p is nil, and an EFORBIDDEN error otherwise. Unknown roles and
// unknown actions are denied.
func (Policy) Authorize(p *Principal, action Action, resource string) error {
	if p == nil {
		return Errorf(EUNAUTHORIZED, "authentication required")
	}
	if allowed(p.Role, action) {
		return nil
	}
	return Errorf(EFORBIDDEN, "role %q may not %s %s", p.Role, action, resource)
}

// allowed is the role × action table.
func allowed(role string, a Action) bool {
	switch role {
	case RoleAdmin:
		for _, x := range Actions() {
			if a == x {
				return true
			}
		}
	case RoleOperator:
		switch a {
		case ActionView, ActionReadPayload, ActionRedrive, ActionQuarantine, ActionDiscard, ActionExport:
			return true
		}
	case RoleViewer:
		return a == ActionView
	}
	return false
}
