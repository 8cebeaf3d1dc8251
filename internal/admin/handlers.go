package admin

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/store"
)

// CreateUserRequest is the body of POST /v1/admin/users.
type CreateUserRequest struct {
	// ID defaults to a new "usr_…" id. Set it to a JWT subject to give that token's user keys
	// and a usage history under the same id.
	ID    string `json:"id,omitempty"`
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	// Role defaults to "user".
	Role string `json:"role,omitempty"`
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) error {
	var req CreateUserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Name) == "" {
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "name", Message: "name is required"}
	}
	if req.Role == "" {
		req.Role = auth.RoleUser
	}
	if err := a.checkRole(req.Role); err != nil {
		return err
	}
	if err := a.checkGrant(r, req.Role); err != nil {
		return err
	}
	if req.ID == "" {
		req.ID = store.NewID("usr")
	}
	u, err := a.st.CreateUser(r.Context(), store.User{ID: req.ID, Name: req.Name, Email: req.Email, Role: req.Role})
	if err != nil {
		return storeError(err, "user")
	}
	setTarget(r, u.ID)
	return httpapi.WriteData(w, r, http.StatusCreated, u)
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	p, err := listParams(r)
	if err != nil {
		return err
	}
	page, err := a.st.ListUsers(r.Context(), p)
	if err != nil {
		return storeError(err, "user")
	}
	return httpapi.WriteData(w, r, http.StatusOK, page)
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.st.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return storeError(err, "user")
	}
	return httpapi.WriteData(w, r, http.StatusOK, u)
}

// UpdateUserRequest is the body of PATCH /v1/admin/users/{id}; absent fields are unchanged.
type UpdateUserRequest struct {
	Name     *string `json:"name,omitempty"`
	Email    *string `json:"email,omitempty"`
	Role     *string `json:"role,omitempty"`
	Disabled *bool   `json:"disabled,omitempty"`
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request) error {
	var req UpdateUserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Role != nil {
		if err := a.checkRole(*req.Role); err != nil {
			return err
		}
		if err := a.checkGrant(r, *req.Role); err != nil {
			return err
		}
	}
	if req.Name != nil && strings.TrimSpace(*req.Name) == "" {
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "name", Message: "name cannot be empty"}
	}
	u, err := a.st.UpdateUser(r.Context(), store.UpdateUserParams{ID: r.PathValue("id"),
		Name: req.Name, Email: req.Email, Role: req.Role, Disabled: req.Disabled})
	if err != nil {
		return storeError(err, "user")
	}
	if req.Disabled != nil {
		a.keysChanged(r)
	}
	return httpapi.WriteData(w, r, http.StatusOK, u)
}

// disableUser disables a user; their keys stop working on every replica at the next key
// refresh (the store marks them changed). PATCH with "disabled": false enables them again.
func (a *API) disableUser(w http.ResponseWriter, r *http.Request) error {
	yes := true
	u, err := a.st.UpdateUser(r.Context(), store.UpdateUserParams{ID: r.PathValue("id"), Disabled: &yes})
	if err != nil {
		return storeError(err, "user")
	}
	a.keysChanged(r)
	return httpapi.WriteData(w, r, http.StatusOK, u)
}

// CreateKeyRequest is the body of POST /v1/admin/keys.
type CreateKeyRequest struct {
	// UserID owns the key; it must name an existing user. Empty: a key of no user.
	UserID string `json:"user_id,omitempty"`
	Name   string `json:"name,omitempty"`
	// Role defaults to the user's role, or "user" for a key of no user.
	Role string `json:"role,omitempty"`
	// Models is the allow-list; empty allows every model.
	Models []string `json:"models,omitempty"`
	// ExpiresAt (RFC 3339) or ExpiresIn (a Go duration such as "720h") sets an expiry;
	// neither means the key does not expire.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	ExpiresIn string     `json:"expires_in,omitempty"`
}

// CreatedKey is the answer to POST /v1/admin/keys: the stored key and, this one time, its
// secret.
type CreatedKey struct {
	store.Key
	// Secret is the key itself. It is not stored and cannot be shown again.
	Secret string `json:"secret"`
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) error {
	var req CreateKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	role := req.Role
	if req.UserID != "" {
		u, err := a.st.GetUser(ctx, req.UserID)
		if err != nil {
			if err := storeError(err, "user"); apierr.KindOf(err) == apierr.NotFound {
				return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeUnknownUser, Param: "user_id", Message: "no such user"}
			}
			return storeError(err, "user")
		}
		if u.Disabled {
			return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeUserDisabled, Param: "user_id", Message: "the user is disabled"}
		}
		if role == "" {
			role = u.Role
		}
	}
	if role == "" {
		role = auth.RoleUser
	}
	if err := a.checkRole(role); err != nil {
		return err
	}
	if err := a.checkGrant(r, role); err != nil {
		return err
	}
	var expires time.Time
	switch {
	case req.ExpiresAt != nil && req.ExpiresIn != "":
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "expires_in", Message: "give expires_at or expires_in, not both"}
	case req.ExpiresAt != nil:
		expires = *req.ExpiresAt
	case req.ExpiresIn != "":
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "expires_in", Message: "expires_in must be a positive duration such as 720h"}
		}
		expires = a.now().Add(d)
	}
	if !expires.IsZero() && !expires.After(a.now()) {
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "expires_at", Message: "the expiry is in the past"}
	}
	for _, m := range req.Models {
		if strings.TrimSpace(m) == "" {
			return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "models", Message: "model names cannot be empty"}
		}
	}
	secret := auth.NewKey()
	k, err := a.st.CreateKey(ctx, store.Key{
		ID: store.NewID("key"), Prefix: auth.DisplayPrefix(secret), Hash: auth.HashKey(secret),
		UserID: req.UserID, Role: role, Name: req.Name, Models: req.Models, ExpiresAt: expires,
	})
	if err != nil {
		return storeError(err, "key")
	}
	setTarget(r, k.ID)
	// Refresh this replica's key cache now, so the new key works here at once (others pick it
	// up at their next refresh).
	a.keysChanged(r)
	return httpapi.WriteData(w, r, http.StatusCreated, CreatedKey{Key: k, Secret: secret})
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := listParams(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	revoked, _ := strconv.ParseBool(q.Get("include_revoked"))
	page, err := a.st.ListKeys(r.Context(), store.ListKeysParams{ListParams: p, UserID: q.Get("user_id"), IncludeRevoked: revoked})
	if err != nil {
		return storeError(err, "key")
	}
	return httpapi.WriteData(w, r, http.StatusOK, page)
}

// revokeKey revokes a key. It stops working on every replica at their next key refresh.
func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) error {
	k, err := a.st.RevokeKey(r.Context(), r.PathValue("id"))
	if err != nil {
		return storeError(err, "key")
	}
	a.keysChanged(r)
	return httpapi.WriteData(w, r, http.StatusOK, k)
}

// UsageAnswer is the answer to the usage queries: a page of records and the totals of every
// record the filter matches.
type UsageAnswer struct {
	Totals store.UsageTotals   `json:"totals"`
	Items  []store.UsageRecord `json:"items"`
	Next   string              `json:"next,omitempty"`
	// Filter echoes the filter applied.
	Filter map[string]string `json:"filter"`
}

func (a *API) usage(w http.ResponseWriter, r *http.Request, f store.UsageFilter) error {
	var err error
	if f.From, err = timeParam(r, "from"); err != nil {
		return err
	}
	if f.To, err = timeParam(r, "to"); err != nil {
		return err
	}
	p, err := listParams(r)
	if err != nil {
		return err
	}
	totals, err := a.st.UsageTotals(r.Context(), f)
	if err != nil {
		return storeError(err, "usage")
	}
	page, err := a.st.ListUsage(r.Context(), store.UsageQuery{UsageFilter: f, ListParams: p})
	if err != nil {
		return storeError(err, "usage")
	}
	filter := map[string]string{}
	for k, v := range map[string]string{"key_id": f.KeyID, "user_id": f.UserID, "model": f.Model} {
		if v != "" {
			filter[k] = v
		}
	}
	if !f.From.IsZero() {
		filter["from"] = f.From.UTC().Format(time.RFC3339)
	}
	if !f.To.IsZero() {
		filter["to"] = f.To.UTC().Format(time.RFC3339)
	}
	if page.Items == nil {
		page.Items = []store.UsageRecord{}
	}
	return httpapi.WriteData(w, r, http.StatusOK, UsageAnswer{Totals: totals, Items: page.Items, Next: page.Next, Filter: filter})
}

func (a *API) queryUsage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	return a.usage(w, r, store.UsageFilter{KeyID: q.Get("key_id"), UserID: q.Get("user_id"), Model: q.Get("model")})
}

func (a *API) queryAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	aq := store.AuditQuery{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Result: q.Get("result")}
	var err error
	if aq.From, err = timeParam(r, "from"); err != nil {
		return err
	}
	if aq.To, err = timeParam(r, "to"); err != nil {
		return err
	}
	if aq.ListParams, err = listParams(r); err != nil {
		return err
	}
	page, err := a.st.ListAudit(r.Context(), aq)
	if err != nil {
		return storeError(err, "audit")
	}
	if page.Items == nil {
		page.Items = []store.AuditRecord{}
	}
	return httpapi.WriteData(w, r, http.StatusOK, page)
}

// self returns the caller's principal for the /v1/me routes, which make no sense without one.
func self(r *http.Request) (*auth.Principal, error) {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		return nil, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeNoPrincipal, Message: "authentication is off: there is no caller to describe"}
	}
	return p, nil
}

// myKeys lists the caller's own keys (a JWT user's keys too, by user id).
func (a *API) myKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := self(r)
	if err != nil {
		return err
	}
	lp, err := listParams(r)
	if err != nil {
		return err
	}
	if p.UserID == "" || p.Method == auth.MethodAdminKey {
		return httpapi.WriteData(w, r, http.StatusOK, store.Page[store.Key]{Items: []store.Key{}})
	}
	page, err := a.st.ListKeys(r.Context(), store.ListKeysParams{ListParams: lp, UserID: p.UserID})
	if err != nil {
		return storeError(err, "key")
	}
	if page.Items == nil {
		page.Items = []store.Key{}
	}
	return httpapi.WriteData(w, r, http.StatusOK, page)
}

// myUsage reads the caller's own usage: by user when the principal has a user, otherwise by
// key.
func (a *API) myUsage(w http.ResponseWriter, r *http.Request) error {
	f, err := selfUsageFilter(r)
	if err != nil {
		return err
	}
	return a.usage(w, r, f)
}

// noUsage is a key id no record has: the bootstrap admin key has no usage of its own.
const noUsage = "\x00none"

// selfUsageFilter selects the caller's own usage records: by user when the principal has a
// user, otherwise by key.
func selfUsageFilter(r *http.Request) (store.UsageFilter, error) {
	p, err := self(r)
	if err != nil {
		return store.UsageFilter{}, err
	}
	f := store.UsageFilter{Model: r.URL.Query().Get("model")}
	switch {
	case p.UserID != "" && p.Method != auth.MethodAdminKey:
		f.UserID = p.UserID
	case p.KeyID != "":
		f.KeyID = p.KeyID
	default:
		f.KeyID = noUsage
	}
	return f, nil
}
