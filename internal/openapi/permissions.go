package openapi

import (
	"sort"

	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/httpapi"
)

// routePermissions is what the document says each route ("METHOD pattern", as registered)
// needs: its x-permission and security. The routes carry their own permission
// (httpapi.Route.Permission); a test of the composed server (cmd/autoglm) fails when a route
// and this table disagree or a route is missing here, so the document cannot drift.
var routePermissions = map[string]httpapi.Permission{
	"GET /healthz": auth.Public,
	"GET /readyz":  auth.Public,
	// The API description (internal/openapi): it tells no more than the public docs.
	"GET /openapi.json": auth.Public,

	"GET /v1/models":            auth.ModelsList,
	"GET /v1/models/{id...}":    auth.ModelsList,
	"POST /v1/chat/completions": auth.ModelsUse,
	"POST /v1/completions":      auth.ModelsUse,
	"POST /v1/embeddings":       auth.ModelsUse,
	"POST /v1/code/complete":    auth.ModelsUse,

	// The Responses API; each caller reads and deletes only its own stored responses.
	"POST /v1/responses":                 auth.ModelsUse,
	"GET /v1/responses/{id}":             auth.ModelsUse,
	"DELETE /v1/responses/{id}":          auth.ModelsUse,
	"GET /v1/responses/{id}/input_items": auth.ModelsUse,

	// Files and the Batch API; each caller sees only its own files and batches, and each
	// line of a batch runs as the caller that created it.
	"POST /v1/files":               auth.ModelsUse,
	"GET /v1/files":                auth.ModelsUse,
	"GET /v1/files/{id}":           auth.ModelsUse,
	"GET /v1/files/{id}/content":   auth.ModelsUse,
	"DELETE /v1/files/{id}":        auth.ModelsUse,
	"POST /v1/batches":             auth.ModelsUse,
	"GET /v1/batches":              auth.ModelsUse,
	"GET /v1/batches/{id}":         auth.ModelsUse,
	"POST /v1/batches/{id}/cancel": auth.ModelsUse,

	// The Anthropic Messages API.
	"POST /v1/messages":              auth.ModelsUse,
	"POST /v1/messages/count_tokens": auth.ModelsUse,

	"GET /v1/me/keys":  auth.SelfKeys,
	"GET /v1/me/usage": auth.SelfUsage,
	// The console's description of the caller: open to all, it answers "anonymous" without a
	// credential, so that the console can ask before signing in.
	"GET /v1/me":               auth.Public,
	"GET /v1/me/usage/summary": auth.SelfUsage,

	// The console: static files, public; everything it shows comes from the routes above.
	"GET /{$}":          auth.Public,
	"GET /ui/{path...}": auth.Public,

	"GET /v1/admin/backends": auth.AdminBackends,
	"GET /v1/admin/engine":   auth.AdminBackends,

	"POST /v1/admin/users":              auth.AdminUsers,
	"GET /v1/admin/users":               auth.AdminUsers,
	"GET /v1/admin/users/{id}":          auth.AdminUsers,
	"PATCH /v1/admin/users/{id}":        auth.AdminUsers,
	"POST /v1/admin/users/{id}/disable": auth.AdminUsers,

	"POST /v1/admin/keys":        auth.AdminKeys,
	"GET /v1/admin/keys":         auth.AdminKeys,
	"DELETE /v1/admin/keys/{id}": auth.AdminKeys,

	"GET /v1/admin/usage":         auth.AdminUsage,
	"GET /v1/admin/usage/summary": auth.AdminUsage,
	"GET /v1/admin/audit":         auth.AdminAudit,

	"GET /debug/pprof/{name...}": auth.AdminDebug,
	"GET /metrics":               auth.MetricsRead,

	// The node's model store in the model hub's layout (internal/modelstore).
	"GET /hub/{path...}": auth.ModelsPull,

	// Asynchronous tasks use models; each caller sees only its own tasks (admins see all).
	"POST /v1/generate/code":         auth.ModelsUse,
	"POST /v1/tasks":                 auth.ModelsUse,
	"GET /v1/tasks":                  auth.ModelsUse,
	"GET /v1/task/{task_id}":         auth.ModelsUse,
	"POST /v1/task/{task_id}/cancel": auth.ModelsUse,
	"GET /v1/task/{task_id}/events":  auth.ModelsUse,
	"GET /v1/task/{task_id}/ws":      auth.ModelsUse,

	// Checking code runs no model and executes nothing.
	"POST /v1/code/check": auth.CodeCheck,

	// The gRPC API (autoglm.v1.InferenceService) serves each call as an in-process request
	// to the HTTP route it mirrors, which needs models.use (ListModels: models.list) and is
	// rate-limited there. Its own routes are open so that the checks and the rate-limit
	// charge happen once, on the request whose JSON body they can read.
	"POST /autoglm.v1.InferenceService/Chat":       auth.Public,
	"POST /autoglm.v1.InferenceService/ChatStream": auth.Public,
	"POST /autoglm.v1.InferenceService/Complete":   auth.Public,
	"POST /autoglm.v1.InferenceService/Embed":      auth.Public,
	"POST /autoglm.v1.InferenceService/ListModels": auth.Public,

	// The gRPC conventions: the standard health service (what gRPC probes call, without a
	// credential) and server reflection, which tells no more than the published .proto files.
	"POST /grpc.health.v1.Health/Check":                                   auth.Public,
	"POST /grpc.health.v1.Health/Watch":                                   auth.Public,
	"POST /grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      auth.Public,
	"POST /grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": auth.Public,
}

// Routes returns every route the document describes as "METHOD pattern", sorted.
func Routes() []string {
	keys := make([]string, 0, len(routePermissions))
	for k := range routePermissions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Permission returns what the document says a route needs. HEAD is looked up as GET.
func Permission(method, pattern string) (httpapi.Permission, bool) {
	if method == "HEAD" {
		method = "GET"
	}
	p, ok := routePermissions[method+" "+pattern]
	return p, ok
}
