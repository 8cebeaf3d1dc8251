package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// APIKey is an API key as the admin API describes it. Secret is set only in the answer to
// [Client.CreateKey]: the server keeps a hash, never the key itself.
type APIKey struct {
	ID     string `json:"id"`
	Prefix string `json:"prefix"`
	UserID string `json:"user_id,omitempty"`
	Role   string `json:"role"`
	Name   string `json:"name,omitempty"`
	// Models is the allow-list; empty allows every model.
	Models       []string  `json:"models,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	UserDisabled bool      `json:"user_disabled,omitempty"`
	Secret       string    `json:"secret,omitempty"`
}

// CreateKeyRequest is the body of POST /v1/admin/keys.
type CreateKeyRequest struct {
	// UserID names the owner, an existing user; empty makes a key of no user.
	UserID string `json:"user_id,omitempty"`
	Name   string `json:"name,omitempty"`
	// Role defaults to the user's role, or "user".
	Role   string   `json:"role,omitempty"`
	Models []string `json:"models,omitempty"`
	// ExpiresIn is a Go duration such as "720h"; ExpiresAt an absolute time. At most one.
	ExpiresIn string     `json:"expires_in,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// KeyPage is one page of a key listing; pass Next as the cursor of the following call.
type KeyPage struct {
	Items []APIKey `json:"items"`
	Next  string   `json:"next,omitempty"`
}

// ListKeysOptions select keys.
type ListKeysOptions struct {
	UserID         string
	IncludeRevoked bool
	Cursor         string
	Limit          int
}

// CreateKey creates an API key through the admin API. The answer's Secret is the only copy
// of the key: show or store it now.
func (c *Client) CreateKey(ctx context.Context, req *CreateKeyRequest) (*APIKey, error) {
	var k APIKey
	if err := c.native(ctx, http.MethodPost, "/v1/admin/keys", req, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ListKeys lists one page of API keys, newest first.
func (c *Client) ListKeys(ctx context.Context, opt ListKeysOptions) (*KeyPage, error) {
	q := url.Values{}
	if opt.UserID != "" {
		q.Set("user_id", opt.UserID)
	}
	if opt.IncludeRevoked {
		q.Set("include_revoked", "true")
	}
	if opt.Cursor != "" {
		q.Set("cursor", opt.Cursor)
	}
	if opt.Limit > 0 {
		q.Set("limit", strconv.Itoa(opt.Limit))
	}
	path := "/v1/admin/keys"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p KeyPage
	if err := c.native(ctx, http.MethodGet, path, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// RevokeKey revokes the key with the id. Revoking a revoked key is not an error.
func (c *Client) RevokeKey(ctx context.Context, id string) (*APIKey, error) {
	var k APIKey
	if err := c.native(ctx, http.MethodDelete, "/v1/admin/keys/"+url.PathEscape(id), nil, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// native calls a native route and decodes the envelope's data into out. Refusals come back
// as *StatusError, like everywhere else in the client.
func (c *Client) native(ctx context.Context, method, path string, in, out any) error {
	return c.nativeWith(ctx, method, path, nil, in, out)
}

// nativeWith is native with extra request headers.
func (c *Client) nativeWith(ctx context.Context, method, path string, hdr http.Header, in, out any) error {
	var env Envelope
	if err := c.callWith(ctx, method, path, hdr, in, &env); err != nil {
		return err
	}
	if !env.Success {
		return &StatusError{Code: env.Code, Message: env.Message, TraceID: env.TraceID}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("api: decode %s data: %w", path, err)
	}
	return nil
}
