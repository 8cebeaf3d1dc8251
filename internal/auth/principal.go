package auth

import (
	"context"
	"slices"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// Method says how a principal authenticated.
type Method string

// Authentication methods.
const (
	MethodAPIKey   Method = "api_key"
	MethodJWT      Method = "jwt"
	MethodAdminKey Method = "admin_key"
)

// AdminKeyUser is the user id of requests made with the bootstrap admin key.
const AdminKeyUser = "bootstrap-admin"

// Principal is an authenticated caller. Principals are shared between requests (one per
// cached key) and must not be modified.
type Principal struct {
	Method Method
	// UserID identifies the user: the key's owner or the token's user claim.
	UserID string
	// KeyID is the API key's id; empty for JWTs and the admin key.
	KeyID string
	// KeyPrefix is the API key's display prefix; empty for JWTs and the admin key.
	KeyPrefix string
	// Role is the role the principal acts with.
	Role string
	// Models is the model allow-list; empty means every model.
	Models []string
	perms  permSet
}

// Can reports whether the principal holds p. Public is held by everyone.
func (p *Principal) Can(perm Permission) bool {
	return perm == Public || p.perms.has(perm)
}

// AllowsModel reports whether model is on the principal's allow-list. An empty list, or an
// entry "*", allows every model.
func (p *Principal) AllowsModel(model string) bool {
	return len(p.Models) == 0 || slices.Contains(p.Models, model) || slices.Contains(p.Models, "*")
}

// CheckModel returns a PermissionDenied error when model is not on the allow-list.
func (p *Principal) CheckModel(model string) error {
	if p == nil || p.AllowsModel(model) {
		return nil
	}
	return &apierr.Error{Kind: apierr.PermissionDenied, Code: apierr.CodeModelNotAllowed, Param: "model",
		Message: "this credential may not use the model " + quote(model)}
}

// Authorize decides whether p may use a route that needs perm: nil for yes, Unauthenticated
// when there is no principal and the route is not public, PermissionDenied when the role
// lacks the permission.
func Authorize(p *Principal, perm Permission) error {
	if perm == Public {
		return nil
	}
	if p == nil {
		return &apierr.Error{Kind: apierr.Unauthenticated, Code: apierr.CodeMissingCredential,
			Message: "this route needs a credential: send \"Authorization: Bearer <key or token>\""}
	}
	if !p.Can(perm) {
		return &apierr.Error{Kind: apierr.PermissionDenied, Code: apierr.CodePermissionDenied,
			Message: "the role " + quote(p.Role) + " does not have the permission " + quote(string(perm))}
	}
	return nil
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of a request, if it authenticated.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(*Principal)
	return p, ok && p != nil
}

// quote quotes s for an error message, cut to a sane length.
func quote(s string) string {
	if len(s) > 128 {
		s = s[:128] + "…"
	}
	return "\"" + s + "\""
}
