package auth

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/open-autoglm/autoglm/internal/httpapi"
)

// Permission names one thing a role may do. It is the type a route names its permission with
// (httpapi.Route.Permission), so that each route states what it needs where it is registered.
type Permission = httpapi.Permission

// The permissions. A route needs exactly one (httpapi.Route.Permission).
const (
	// Public needs no credential at all (health checks).
	Public = httpapi.Public
	// ModelsList lists and describes models.
	ModelsList Permission = "models.list"
	// ModelsUse runs models (chat, completions, embeddings), limited to the principal's
	// model allow-list.
	ModelsUse Permission = "models.use"
	// SelfKeys lists the caller's own API keys.
	SelfKeys Permission = "self.keys"
	// SelfUsage reads the caller's own usage.
	SelfUsage Permission = "self.usage"
	// AdminUsers creates, lists, changes and disables users.
	AdminUsers Permission = "admin.users"
	// AdminKeys creates, lists and revokes anyone's API keys.
	AdminKeys Permission = "admin.keys"
	// AdminUsage reads everyone's usage.
	AdminUsage Permission = "admin.usage"
	// AdminAudit reads the audit log.
	AdminAudit Permission = "admin.audit"
	// AdminBackends reads the scheduling state of every backend.
	AdminBackends Permission = "admin.backends"
	// AdminDebug reads the runtime profiles (/debug/pprof/).
	AdminDebug Permission = "admin.debug"
	// MetricsRead reads the Prometheus metrics (/metrics). Give it to a scraper's role.
	MetricsRead Permission = "metrics.read"
	// ModelsPull downloads the node's stored model files (GET /hub/...), so that other
	// nodes pull from it. Give it to the role of the key other nodes use as HF_TOKEN.
	ModelsPull Permission = "models.pull"
	// CodeCheck checks code without running a model (POST /v1/code/check).
	CodeCheck Permission = "code.check"
)

// allPermissions lists every permission but Public, which no role needs to hold.
var allPermissions = []Permission{
	ModelsList, ModelsUse, SelfKeys, SelfUsage,
	AdminUsers, AdminKeys, AdminUsage, AdminAudit, AdminBackends, AdminDebug, MetricsRead,
	ModelsPull, CodeCheck, // appended: the order is the bit order of permSet
}

// Permissions returns every permission a role can hold.
func Permissions() []Permission { return slices.Clone(allPermissions) }

// Built-in role names.
const (
	RoleGuest = "guest"
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// builtinRoles is least privilege: a guest can only see which models exist; a user can run
// models (on its allow-list) and look at its own keys and usage; an admin can do everything.
var builtinRoles = map[string][]Permission{
	RoleGuest: {ModelsList},
	RoleUser:  {ModelsList, ModelsUse, SelfKeys, SelfUsage, CodeCheck},
	RoleAdmin: allPermissions,
}

// permSet is a set of permissions, as a bit mask over allPermissions.
type permSet uint32

func permBit(p Permission) permSet {
	i := slices.Index(allPermissions, p)
	if i < 0 {
		return 0
	}
	return 1 << i
}

func (s permSet) has(p Permission) bool {
	b := permBit(p)
	return b != 0 && s&b != 0
}

// Roles is the set of roles a server knows: the built-in ones and the configured custom ones.
// It is immutable and safe for concurrent use.
type Roles struct {
	sets map[string]permSet
}

// NewRoles builds the roles from the built-in ones and custom, the configuration's
// auth.roles (name → permission names). A custom role may not redefine a built-in one or
// name an unknown permission.
func NewRoles(custom map[string][]string) (*Roles, error) {
	rs := &Roles{sets: make(map[string]permSet, len(builtinRoles)+len(custom))}
	for name, perms := range builtinRoles {
		for _, p := range perms {
			rs.sets[name] |= permBit(p)
		}
	}
	names := make([]string, 0, len(custom))
	for name := range custom {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := builtinRoles[name]; ok {
			return nil, fmt.Errorf("auth.roles.%s: redefines the built-in role %q", name, name)
		}
		var set permSet
		for _, p := range custom[name] {
			b := permBit(Permission(p))
			if b == 0 {
				return nil, fmt.Errorf("auth.roles.%s: unknown permission %q (known: %s)", name, p, permissionList())
			}
			set |= b
		}
		rs.sets[name] = set
	}
	return rs, nil
}

func permissionList() string {
	s := make([]string, len(allPermissions))
	for i, p := range allPermissions {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// Has reports whether role exists.
func (rs *Roles) Has(role string) bool {
	_, ok := rs.sets[role]
	return ok
}

// Allows reports whether role holds p. Public is allowed to every role; an unknown role
// holds nothing else.
func (rs *Roles) Allows(role string, p Permission) bool {
	if p == Public {
		return true
	}
	return rs.sets[role].has(p)
}

// Names returns every role name, sorted.
func (rs *Roles) Names() []string {
	names := make([]string, 0, len(rs.sets))
	for n := range rs.sets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
