// Package codecomplete is the native code-completion API, POST /v1/code/complete: the code
// before and after the cursor in, the code for the gap out. It sends an OpenAI completions
// request with "suffix" through the model registry, so a local code model fills the middle
// with its fill-in-the-middle tokens (and an upstream that supports suffix does the same).
package codecomplete

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/wire"
)

// Request is the body of POST /v1/code/complete.
type Request struct {
	Model string `json:"model"`
	// Prefix is the code before the cursor, Suffix the code after it. One must be set.
	Prefix string `json:"prefix"`
	Suffix string `json:"suffix"`
	// Language names the code's language ("go", "python"); it is echoed back and recorded,
	// and does not change the prompt.
	Language    string   `json:"language,omitempty"`
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	Stop        api.Stop `json:"stop,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
}

// Result is the data of a successful answer.
type Result struct {
	Completion   string    `json:"completion"`
	FinishReason string    `json:"finish_reason"`
	Model        string    `json:"model"`
	Language     string    `json:"language,omitempty"`
	Usage        api.Usage `json:"usage"`
}

// DefaultMaxTokens is used when a request sets none.
const DefaultMaxTokens = 128

var languageRe = regexp.MustCompile(`^[A-Za-z0-9+#._-]{1,32}$`)

// Routes returns the route, which answers in the native envelope.
func Routes(reg *router.Registry) []server.Route {
	h := &handler{reg: reg}
	return []server.Route{{Method: "POST", Pattern: "/v1/code/complete", Shape: apierr.ShapeEnvelope, Handler: h.complete}}
}

type handler struct{ reg *router.Registry }

func invalid(param, msg string) error {
	return &apierr.Error{Kind: apierr.Invalid, Code: "invalid_request", Param: param, Message: msg}
}

func (h *handler) complete(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return apierr.From(err)
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return invalid("", "the body is not a valid code completion request: "+trim(err.Error()))
	}
	switch {
	case req.Model == "":
		return invalid("model", "model is required")
	case req.Prefix == "" && req.Suffix == "":
		return invalid("prefix", "prefix or suffix is required")
	case req.Language != "" && !languageRe.MatchString(req.Language):
		return invalid("language", "language must be 1-32 letters, digits or +#._-")
	case req.MaxTokens < 0 || req.MaxTokens > 8192:
		return invalid("max_tokens", "max_tokens must be between 1 and 8192")
	}
	if req.MaxTokens == 0 {
		req.MaxTokens = DefaultMaxTokens
	}
	m, ok := h.reg.Lookup(req.Model)
	if !ok {
		return &apierr.Error{Kind: apierr.NotFound, Code: "model_not_found", Param: "model", Message: fmt.Sprintf("the model %q does not exist", req.Model)}
	}
	cr := api.CompletionRequest{Model: req.Model, Prompt: api.TextInput(req.Prefix), Suffix: req.Suffix, MaxTokens: req.MaxTokens,
		Temperature: req.Temperature, Stop: req.Stop, Seed: req.Seed}
	out, err := json.Marshal(cr)
	if err != nil {
		return err
	}
	fields, err := wire.Peek(out)
	if err != nil {
		return err
	}
	resp, _, err := h.reg.Do(r.Context(), m, &router.Request{Op: backend.OpCompletion, Body: out, Fields: fields})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return apierr.Wrap(apierr.Upstream, err, "the model's answer was cut off")
	}
	if resp.StatusCode/100 != 2 {
		var e api.ErrorResponse
		msg := fmt.Sprintf("the model answered %d", resp.StatusCode)
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		kind := apierr.Upstream
		if resp.StatusCode/100 == 4 {
			kind = apierr.Invalid
		}
		code := "upstream_status"
		if e.Error.Code != "" {
			code = e.Error.Code
		}
		return &apierr.Error{Kind: kind, Code: code, Message: msg}
	}
	var c api.Completion
	if err := json.Unmarshal(data, &c); err != nil || len(c.Choices) == 0 {
		return apierr.New(apierr.Upstream, "bad_upstream_answer", "the model sent a malformed completion")
	}
	res := Result{Completion: c.Choices[0].Text, FinishReason: string(c.Choices[0].FinishReason), Model: req.Model, Language: req.Language}
	if c.Usage != nil {
		res.Usage = *c.Usage
	}
	return server.WriteData(w, r, http.StatusOK, res)
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}
