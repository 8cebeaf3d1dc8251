package openai

import (
	"context"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/cache"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/router"
)

// Routes returns the OpenAI-compatible routes (and Anthropic's Messages API) served by h.
func (h *Handler) Routes() []httpapi.Route {
	oa, an := apierr.ShapeOpenAI, apierr.ShapeAnthropic
	return []httpapi.Route{
		{Method: "POST", Pattern: "/v1/chat/completions", Shape: oa, Permission: auth.ModelsUse, Handler: h.ChatCompletions, OnLoop: true},
		{Method: "POST", Pattern: "/v1/completions", Shape: oa, Permission: auth.ModelsUse, Handler: h.Completions, OnLoop: true},
		{Method: "POST", Pattern: "/v1/embeddings", Shape: oa, Permission: auth.ModelsUse, Limit: httpapi.LimitPrompt, Handler: h.Embeddings, OnLoop: true},
		{Method: "GET", Pattern: "/v1/models", Shape: oa, Permission: auth.ModelsList, Handler: h.ListModels, OnLoop: true},
		{Method: "GET", Pattern: "/v1/models/{id...}", Shape: oa, Permission: auth.ModelsList, Handler: h.GetModel},
		// The Responses API; each caller reads and deletes only its own stored responses.
		{Method: "POST", Pattern: "/v1/responses", Shape: oa, Permission: auth.ModelsUse, Handler: h.Responses},
		{Method: "GET", Pattern: "/v1/responses/{id}", Shape: oa, Permission: auth.ModelsUse, Handler: h.GetResponse},
		{Method: "DELETE", Pattern: "/v1/responses/{id}", Shape: oa, Permission: auth.ModelsUse, Handler: h.DeleteResponse},
		{Method: "GET", Pattern: "/v1/responses/{id}/input_items", Shape: oa, Permission: auth.ModelsUse, Handler: h.ResponseInputItems},
		// The Anthropic Messages API.
		{Method: "POST", Pattern: "/v1/messages", Shape: an, Permission: auth.ModelsUse, Handler: h.Messages},
		{Method: "POST", Pattern: "/v1/messages/count_tokens", Shape: an, Permission: auth.ModelsUse, Handler: h.CountMessageTokens},
	}
}

// The default caller scopes, from the request's principal (internal/auth). Without a
// principal (authentication off) every caller is the same one and sees every model.

// ownerOf names the owner of stored responses: the caller's user, so that a user's keys
// share them and no one else reads them; a key without a user owns its own.
func ownerOf(ctx context.Context) string {
	p, ok := auth.FromContext(ctx)
	if !ok || p == nil {
		return ""
	}
	if p.UserID != "" {
		return "user:" + p.UserID
	}
	return "key:" + p.KeyID
}

// modelVisible shows a model to a caller whose allow-list names the model or one of its
// aliases, the way authorization lets it use the model.
func modelVisible(ctx context.Context, m *router.Model) bool {
	p, ok := auth.FromContext(ctx)
	if !ok || p == nil || p.AllowsModel(m.Name) {
		return true
	}
	for _, a := range m.Aliases {
		if p.AllowsModel(a) {
			return true
		}
	}
	return false
}

// cacheOwner names the caller for the response cache.
func cacheOwner(ctx context.Context) cache.Owner {
	p, ok := auth.FromContext(ctx)
	if !ok || p == nil {
		return cache.Owner{}
	}
	return cache.Owner{UserID: p.UserID, KeyID: p.KeyID}
}
