package auth

import (
	"github.com/open-autoglm/autoglm/internal/apierr"
)

// Identity is what work done later on a caller's behalf (a batch) keeps of its principal,
// to act as that principal again, after a restart too. It holds no secret.
type Identity struct {
	Method Method   `json:"method"`
	UserID string   `json:"user_id,omitempty"`
	KeyID  string   `json:"key_id,omitempty"`
	Role   string   `json:"role,omitempty"`
	Models []string `json:"models,omitempty"`
}

// Identity returns what p's deferred work keeps of it.
func (p *Principal) Identity() Identity {
	return Identity{Method: p.Method, UserID: p.UserID, KeyID: p.KeyID, Role: p.Role, Models: p.Models}
}

// PrincipalOf returns the principal of id as it stands now: an API key's current principal
// (refused when the key has since been revoked, disabled or expired), the admin key's while
// the server still has one, or, for a JWT that was verified when the work was submitted, a
// principal with the token's role and allow-list.
func (a *Authenticator) PrincipalOf(id Identity) (*Principal, error) {
	gone := &apierr.Error{Kind: apierr.Unauthenticated, Code: apierr.CodeInvalidAPIKey,
		Message: "the credential this work was submitted with is no longer valid"}
	switch id.Method {
	case MethodAdminKey:
		if !a.hasAdmin {
			return nil, gone
		}
		return a.admin, nil
	case MethodJWT:
		if a.jwt == nil || !a.roles.Has(id.Role) {
			return nil, gone
		}
		return &Principal{Method: MethodJWT, UserID: id.UserID, Role: id.Role,
			Models: append([]string(nil), id.Models...), perms: a.roles.sets[id.Role]}, nil
	case MethodAPIKey:
		a.mu.RLock()
		h, ok := a.byID[id.KeyID]
		ck := a.byHash[h]
		a.mu.RUnlock()
		if !ok || ck == nil || !ck.key.Active(a.now()) {
			return nil, gone
		}
		return ck.principal, nil
	}
	return nil, gone
}
