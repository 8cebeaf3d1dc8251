package auth

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Permission names one thing a role may do.
type Permission string

// The permissions. A route needs exactly one (see RoutePermission).
const (
	// Public needs no credential at all (health checks).
	Public Permission = "public"
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

// routePermissions is the one table from route ("METHOD pattern", as registered with the
// server) to the permission it needs. HEAD is answered as GET. Every route the server
// registers must be here: an unmapped route is refused to everyone, and the server's tests
// fail on one.
var routePermissions = map[string]Permission{
	"GET /healthz": Public,
	"GET /readyz":  Public,
	// The API description (internal/openapi): it tells no more than the public docs.
	"GET /openapi.json": Public,

	"GET /v1/models":            ModelsList,
	"GET /v1/models/{id...}":    ModelsList,
	"POST /v1/chat/completions": ModelsUse,
	"POST /v1/completions":      ModelsUse,
	"POST /v1/embeddings":       ModelsUse,
	"POST /v1/code/complete":    ModelsUse,

	// The Responses API; each caller reads and deletes only its own stored responses.
	"POST /v1/responses":                 ModelsUse,
	"GET /v1/responses/{id}":             ModelsUse,
	"DELETE /v1/responses/{id}":          ModelsUse,
	"GET /v1/responses/{id}/input_items": ModelsUse,

	// Files and the Batch API; each caller sees only its own files and batches, and each
	// line of a batch runs as the caller that created it.
	"POST /v1/files":               ModelsUse,
	"GET /v1/files":                ModelsUse,
	"GET /v1/files/{id}":           ModelsUse,
	"GET /v1/files/{id}/content":   ModelsUse,
	"DELETE /v1/files/{id}":        ModelsUse,
	"POST /v1/batches":             ModelsUse,
	"GET /v1/batches":              ModelsUse,
	"GET /v1/batches/{id}":         ModelsUse,
	"POST /v1/batches/{id}/cancel": ModelsUse,

	// The Anthropic Messages API.
	"POST /v1/messages":              ModelsUse,
	"POST /v1/messages/count_tokens": ModelsUse,

	"GET /v1/me/keys":  SelfKeys,
	"GET /v1/me/usage": SelfUsage,
	// The console's description of the caller: open to all, it answers "anonymous" without a
	// credential, so that the console can ask before signing in.
	"GET /v1/me":               Public,
	"GET /v1/me/usage/summary": SelfUsage,

	// The console: static files, public; everything it shows comes from the routes above.
	"GET /{$}":          Public,
	"GET /ui/{path...}": Public,

	"GET /v1/admin/backends": AdminBackends,
	"GET /v1/admin/engine":   AdminBackends,

	"POST /v1/admin/users":              AdminUsers,
	"GET /v1/admin/users":               AdminUsers,
	"GET /v1/admin/users/{id}":          AdminUsers,
	"PATCH /v1/admin/users/{id}":        AdminUsers,
	"POST /v1/admin/users/{id}/disable": AdminUsers,

	"POST /v1/admin/keys":        AdminKeys,
	"GET /v1/admin/keys":         AdminKeys,
	"DELETE /v1/admin/keys/{id}": AdminKeys,

	"GET /v1/admin/usage":         AdminUsage,
	"GET /v1/admin/usage/summary": AdminUsage,
	"GET /v1/admin/audit":         AdminAudit,

	"GET /debug/pprof/{name...}": AdminDebug,
	"GET /metrics":               MetricsRead,

	// The node's model store in the model hub's layout (internal/modelstore).
	"GET /hub/{path...}": ModelsPull,

	// Asynchronous tasks use models; each caller sees only its own tasks (admins see all).
	"POST /v1/generate/code":         ModelsUse,
	"POST /v1/tasks":                 ModelsUse,
	"GET /v1/tasks":                  ModelsUse,
	"GET /v1/task/{task_id}":         ModelsUse,
	"POST /v1/task/{task_id}/cancel": ModelsUse,
	"GET /v1/task/{task_id}/events":  ModelsUse,
	"GET /v1/task/{task_id}/ws":      ModelsUse,

	// Checking code runs no model and executes nothing.
	"POST /v1/code/check": CodeCheck,

	// The gRPC API (autoglm.v1.InferenceService) serves each call as an in-process request
	// to the HTTP route it mirrors, which needs models.use (ListModels: models.list) and is
	// rate-limited there. Its own routes are open so that the checks and the rate-limit
	// charge happen once, on the request whose JSON body they can read.
	"POST /autoglm.v1.InferenceService/Chat":       Public,
	"POST /autoglm.v1.InferenceService/ChatStream": Public,
	"POST /autoglm.v1.InferenceService/Complete":   Public,
	"POST /autoglm.v1.InferenceService/Embed":      Public,
	"POST /autoglm.v1.InferenceService/ListModels": Public,

	// The gRPC conventions: the standard health service (what gRPC probes call, without a
	// credential) and server reflection, which tells no more than the published .proto files.
	"POST /grpc.health.v1.Health/Check":                                   Public,
	"POST /grpc.health.v1.Health/Watch":                                   Public,
	"POST /grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      Public,
	"POST /grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Public,
}

// Routes returns every route of the permission table as "METHOD pattern", sorted: the
// server's whole HTTP surface, for the API description and the tests that keep it complete.
func Routes() []string {
	keys := make([]string, 0, len(routePermissions))
	for k := range routePermissions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// RoutePermission returns the permission a route needs. method is the route's registered
// method (HEAD is looked up as GET); pattern is its ServeMux pattern without the method.
func RoutePermission(method, pattern string) (Permission, bool) {
	if method == "HEAD" {
		method = "GET"
	}
	p, ok := routePermissions[method+" "+pattern]
	return p, ok
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
