// Package admin is the management API: users, API keys, usage and the audit log under
// /v1/admin/, and the self-service routes under /v1/me/ through which a caller sees their own
// keys and usage. Every route answers in the native envelope.
//
// Every admin operation — reads included, and requests that authorization refused — writes an
// audit record: who (actor), what (action), to what (target), when, from where (client
// address) and the result ("ok", "denied" or "error"). Admin operations are rare, so the
// record is written synchronously; a failure to write it is logged, never hidden.
//
// Which role may call which route is decided before a handler runs, by the auth package's
// route table; handlers here only add the rules that need the request: a principal cannot
// create a key whose role holds a permission it does not hold itself.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// Store is what the admin API needs from the store.
type Store interface {
	store.Users
	store.Keys
	store.Usage
	store.Audit
	// Append writes audit (and usage) records; see store.Store. The API writes each audit
	// record once, without retrying, so it names no batch.
	Append(ctx context.Context, batch string, usage []store.UsageRecord, audit []store.AuditRecord) error
}

// Options configure the API.
type Options struct {
	Store Store
	// Roles are the roles keys and users may be given.
	Roles *auth.Roles
	// Logger receives audit write failures. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock of audit records. Default: time.Now.
	Now func() time.Time
	// KeysChanged, when set, is called after an operation that changes which keys work
	// (revocation, disabling a user), so that this replica's key cache catches up at once
	// instead of at its next refresh. Pass the authenticator's Refresh.
	KeysChanged func(ctx context.Context) error
}

// API serves the admin and self-service routes. It is safe for concurrent use.
type API struct {
	st      Store
	roles   *auth.Roles
	log     *slog.Logger
	now     func() time.Time
	changed func(ctx context.Context) error
}

// New returns the API over opts.Store.
func New(opts Options) *API {
	a := &API{st: opts.Store, roles: opts.Roles, log: opts.Logger, now: opts.Now, changed: opts.KeysChanged}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.roles == nil {
		a.roles, _ = auth.NewRoles(nil)
	}
	return a
}

// Routes returns the routes to register with the server. Each route's permission is in
// auth's route table.
func (a *API) Routes() []httpapi.Route {
	env := apierr.ShapeEnvelope
	routes := []httpapi.Route{
		{Method: "POST", Pattern: "/v1/admin/users", Shape: env, Permission: auth.AdminUsers, Handler: a.createUser},
		{Method: "GET", Pattern: "/v1/admin/users", Shape: env, Permission: auth.AdminUsers, Handler: a.listUsers},
		{Method: "GET", Pattern: "/v1/admin/users/{id}", Shape: env, Permission: auth.AdminUsers, Handler: a.getUser},
		{Method: "PATCH", Pattern: "/v1/admin/users/{id}", Shape: env, Permission: auth.AdminUsers, Handler: a.updateUser},
		{Method: "POST", Pattern: "/v1/admin/users/{id}/disable", Shape: env, Permission: auth.AdminUsers, Handler: a.disableUser},
		{Method: "POST", Pattern: "/v1/admin/keys", Shape: env, Permission: auth.AdminKeys, Handler: a.createKey},
		{Method: "GET", Pattern: "/v1/admin/keys", Shape: env, Permission: auth.AdminKeys, Handler: a.listKeys},
		{Method: "DELETE", Pattern: "/v1/admin/keys/{id}", Shape: env, Permission: auth.AdminKeys, Handler: a.revokeKey},
		{Method: "GET", Pattern: "/v1/admin/usage", Shape: env, Permission: auth.AdminUsage, Handler: a.queryUsage},
		{Method: "GET", Pattern: "/v1/admin/usage/summary", Shape: env, Permission: auth.AdminUsage, Handler: a.usageSummary},
		{Method: "GET", Pattern: "/v1/admin/audit", Shape: env, Permission: auth.AdminAudit, Handler: a.queryAudit},
		{Method: "GET", Pattern: "/v1/me/keys", Shape: env, Permission: auth.SelfKeys, Handler: a.myKeys},
		{Method: "GET", Pattern: "/v1/me/usage", Shape: env, Permission: auth.SelfUsage, Handler: a.myUsage},
		{Method: "GET", Pattern: "/v1/me/usage/summary", Shape: env, Permission: auth.SelfUsage, Handler: a.myUsageSummary},
	}
	for i, rt := range routes {
		if action, ok := actions[rt.Method+" "+rt.Pattern]; ok {
			routes[i].Handler = a.audited(action, rt.Handler)
		}
	}
	return routes
}

// actions names each admin route's operation in the audit log, both for requests a handler
// answered and for requests authorization refused before any handler ran.
var actions = map[string]string{
	"POST /v1/admin/users":              "user.create",
	"GET /v1/admin/users":               "user.list",
	"GET /v1/admin/users/{id}":          "user.get",
	"PATCH /v1/admin/users/{id}":        "user.update",
	"POST /v1/admin/users/{id}/disable": "user.disable",
	"POST /v1/admin/keys":               "key.create",
	"GET /v1/admin/keys":                "key.list",
	"DELETE /v1/admin/keys/{id}":        "key.revoke",
	"GET /v1/admin/usage":               "usage.query",
	"GET /v1/admin/usage/summary":       "usage.summary",
	"GET /v1/admin/audit":               "audit.query",
	"GET /v1/admin/backends":            "backends.read",
}

// auditTarget lets a handler name the target of its operation once it knows it (a created
// user's id, for example).
type auditTarget struct{ target string }

type targetKey struct{}

func setTarget(r *http.Request, target string) {
	if t, ok := r.Context().Value(targetKey{}).(*auditTarget); ok {
		t.target = target
	}
}

// audited wraps an admin handler so that it writes an audit record when it returns.
func (a *API) audited(action string, h httpapi.HandlerFunc) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		t := &auditTarget{target: r.PathValue("id")}
		r = r.WithContext(context.WithValue(r.Context(), targetKey{}, t))
		err := h(w, r)
		result := "ok"
		if err != nil {
			result = "error"
			if k := apierr.KindOf(err); k == apierr.PermissionDenied || k == apierr.Unauthenticated {
				result = "denied"
			}
		}
		a.record(r, action, t.target, result, err)
		return err
	}
}

// Denied is for server.Options.Denied: it audits admin requests that authorization refused.
// Other refusals (a model call without permission) are not admin operations and are left to
// the request log.
func (a *API) Denied(r *http.Request, p *auth.Principal, perm auth.Permission, err error) {
	if !strings.HasPrefix(string(perm), "admin.") {
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	action, ok := actions[method+" "+r.Pattern]
	if !ok {
		action = method + " " + r.URL.Path
	}
	a.recordFor(r, p, action, r.PathValue("id"), "denied", err)
}

func (a *API) record(r *http.Request, action, target, result string, err error) {
	p, _ := auth.FromContext(r.Context())
	a.recordFor(r, p, action, target, result, err)
}

func (a *API) recordFor(r *http.Request, p *auth.Principal, action, target, result string, err error) {
	details := map[string]any{"method": r.Method, "path": r.URL.Path, "trace_id": telemetry.TraceID(r.Context())}
	if p != nil {
		details["auth"] = string(p.Method)
		details["role"] = p.Role
		if p.UserID != "" {
			details["user_id"] = p.UserID
		}
	}
	if err != nil {
		e := apierr.From(err)
		details["error"] = e.PublicCode()
		details["message"] = e.PublicMessage()
	}
	raw, _ := json.Marshal(details)
	rec := store.AuditRecord{
		Time:       a.now(),
		Actor:      actorOf(p),
		Action:     action,
		Target:     target,
		ClientAddr: clientAddr(r),
		Result:     result,
		Details:    raw,
	}
	// The operation is done whatever happens to its record; do not let a canceled client
	// cut the record short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if werr := a.st.Append(ctx, "", nil, []store.AuditRecord{rec}); werr != nil {
		a.log.Error("audit: record not written", "action", action, "actor", rec.Actor, "target", target, "result", result, "err", werr)
	}
}

// actorOf names a principal in the audit log: its key id, its user id (JWT), "bootstrap" for
// the admin key, and "anonymous" when authentication is off.
func actorOf(p *auth.Principal) string {
	switch {
	case p == nil:
		return "anonymous"
	case p.Method == auth.MethodAdminKey:
		return "bootstrap"
	case p.KeyID != "":
		return p.KeyID
	}
	return p.UserID
}

func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// storeError maps the store's errors to the API's.
func storeError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		code := apierr.CodeNotFound
		switch what {
		case "user":
			code = apierr.CodeUserNotFound
		case "key":
			code = apierr.CodeKeyNotFound
		}
		return apierr.New(code, "no such "+what)
	case errors.Is(err, store.ErrConflict):
		code := apierr.CodeConflict
		switch what {
		case "user":
			code = apierr.CodeUserExists
		case "key":
			code = apierr.CodeKeyExists
		}
		return &apierr.Error{Kind: apierr.Conflict, Code: code, Message: "a " + what + " with that name or id exists", Err: err}
	case errors.Is(err, store.ErrInvalid):
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Message: strings.TrimPrefix(err.Error(), "store: "), Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apierr.From(err)
	}
	// Anything else is the database failing (down, restarting, its disk full): worth
	// retrying, so a 503 with Retry-After; the cause goes to the log only.
	return &apierr.Error{Kind: apierr.Unavailable, Code: apierr.CodeStoreUnavailable, RetryAfter: time.Second,
		Message: "the store is unavailable; retry shortly", Err: err}
}

// decode reads a JSON object body strictly: unknown fields are an error, so a typo does not
// silently do nothing.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apierr.FromDecode(err)
	}
	return nil
}

// listParams reads ?cursor= and ?limit=.
func listParams(r *http.Request) (store.ListParams, error) {
	q := r.URL.Query()
	p := store.ListParams{Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return p, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "limit", Message: "limit must be a positive integer"}
		}
		p.Limit = n
	}
	return p, nil
}

// timeParam reads an RFC 3339 time from the query; empty gives the zero time.
func timeParam(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: name,
			Message: name + " must be an RFC 3339 time such as 2026-01-02T15:04:05Z"}
	}
	return t, nil
}

func (a *API) checkRole(role string) error {
	if !a.roles.Has(role) {
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeUnknownRole, Param: "role",
			Message: "unknown role \"" + role + "\" (known: " + strings.Join(a.roles.Names(), ", ") + ")"}
	}
	return nil
}

// checkGrant refuses to give a role that holds a permission the caller lacks, so that a
// custom role allowed to manage keys cannot mint itself an admin key.
func (a *API) checkGrant(r *http.Request, role string) error {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		return nil // authentication is off: every caller is trusted
	}
	for _, perm := range auth.Permissions() {
		if a.roles.Allows(role, perm) && !p.Can(perm) {
			return &apierr.Error{Kind: apierr.PermissionDenied, Code: apierr.CodeRoleExceedsCaller, Param: "role",
				Message: "the role \"" + role + "\" has the permission \"" + string(perm) + "\", which this credential lacks"}
		}
	}
	return nil
}

// KeyFeed adapts the store's key changes to what auth's key cache reads.
func KeyFeed(k store.Keys) auth.KeyStore { return keyFeed{k} }

type keyFeed struct{ k store.Keys }

func (f keyFeed) KeysChangedSince(ctx context.Context, since time.Time) ([]auth.Key, error) {
	keys, _, err := f.k.KeysChangedSince(ctx, since)
	if err != nil {
		return nil, err
	}
	out := make([]auth.Key, len(keys))
	for i, k := range keys {
		out[i] = auth.Key{ID: k.ID, UserID: k.UserID, Name: k.Name, Role: k.Role, Prefix: k.Prefix, Hash: k.Hash,
			Models: k.Models, ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, Disabled: k.UserDisabled,
			CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt}
	}
	return out, nil
}

// keysChanged refreshes this replica's key cache after a change; other replicas catch up at
// their next refresh. A failed refresh only delays the change until the next one.
func (a *API) keysChanged(r *http.Request) {
	if a.changed == nil {
		return
	}
	if err := a.changed(r.Context()); err != nil {
		a.log.Warn("auth: key refresh after a change failed; the next periodic refresh will retry", "err", err)
	}
}
