// Package codeapi serves the code checker over HTTP: POST /v1/code/check answers the
// diagnostics of package codecheck for code a client already has. Nothing is executed.
package codeapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/server"
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
func Routes(c *codecheck.Checker, stats *codecheck.Stats) []server.Route {
	h := &handler{c: c, stats: stats}
	return []server.Route{{Method: "POST", Pattern: "/v1/code/check", Shape: apierr.ShapeEnvelope, Handler: h.check}}
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
		var tooLarge *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return apierr.New(apierr.Invalid, "invalid_body", "the request body is empty")
		case errors.As(err, &tooLarge):
			return apierr.New(apierr.TooLarge, "body_too_large", "the request body is too large")
		}
		return apierr.New(apierr.Invalid, "invalid_body", "the request body is not valid JSON for this route: "+err.Error())
	}
	if dec.More() {
		return apierr.New(apierr.Invalid, "invalid_body", "the request body holds more than one JSON value")
	}
	if strings.TrimSpace(req.Language) == "" {
		return apierr.New(apierr.Invalid, "invalid_language", "language is required")
	}
	if len(req.Language) > 32 {
		return apierr.New(apierr.Invalid, "invalid_language", "language is longer than 32 bytes")
	}
	if req.Code == "" {
		return apierr.New(apierr.Invalid, "invalid_code", "code is required")
	}
	if len(req.Code) > codecheck.MaxCodeBytes {
		return apierr.New(apierr.TooLarge, "code_too_large", fmt.Sprintf("code is larger than %d bytes", codecheck.MaxCodeBytes))
	}
	res := h.c.Check(r.Context(), codecheck.Request{Language: req.Language, Code: req.Code, FinishReason: req.FinishReason})
	h.stats.ObserveCheck(res)
	return server.WriteData(w, r, http.StatusOK, res)
}
