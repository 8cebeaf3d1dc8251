// Package codeapi serves the code checker over HTTP: POST /v1/code/check answers the
// diagnostics of package codecheck for code a client already has. Nothing is executed.
package codeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/httpapi"
)

// Request is the body of POST /v1/code/check.
type Request struct {
	// Language is the code's language or fence tag (go, python, ts, sql, ...). Required.
	Language string `json:"language"`
	// Code is the source to check. Required, at most codecheck.MaxCodeBytes.
	Code string `json:"code"`
	// FinishReason, when the code came from a generation, is its finish_reason: "length"
	// marks the code as truncated.
	FinishReason string `json:"finish_reason,omitempty"`
}

// Routes returns the code-check route. stats, when not nil, counts every check.
func Routes(c *codecheck.Checker, stats *codecheck.Stats) []httpapi.Route {
	h := &handler{c: c, stats: stats}
	return []httpapi.Route{{Method: "POST", Pattern: "/v1/code/check", Shape: apierr.ShapeEnvelope, Permission: auth.CodeCheck, Handler: h.check}}
}

type handler struct {
	c     *codecheck.Checker
	stats *codecheck.Stats
}

func (h *handler) check(w http.ResponseWriter, r *http.Request) error {
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, codecheck.MaxCodeBytes+64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		// FromDecode words what is wrong; the decoder's own text stays in the cause.
		return apierr.FromDecode(err)
	}
	if dec.More() {
		return apierr.New(apierr.CodeInvalidJSON, "the request body holds more than one JSON value")
	}
	if strings.TrimSpace(req.Language) == "" {
		return apierr.New(apierr.CodeInvalidLanguage, "language is required")
	}
	if len(req.Language) > 32 {
		return apierr.New(apierr.CodeInvalidLanguage, "language is longer than 32 bytes")
	}
	if req.Code == "" {
		return apierr.New(apierr.CodeInvalidCode, "code is required")
	}
	if len(req.Code) > codecheck.MaxCodeBytes {
		return apierr.New(apierr.CodeCodeTooLarge, fmt.Sprintf("code is larger than %d bytes", codecheck.MaxCodeBytes))
	}
	res := h.c.Check(r.Context(), codecheck.Request{Language: req.Language, Code: req.Code, FinishReason: req.FinishReason})
	h.stats.ObserveCheck(res)
	return httpapi.WriteData(w, r, http.StatusOK, res)
}
