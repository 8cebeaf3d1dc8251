package ratelimit

import (
	"net/http"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/jsonscan"
	"github.com/open-autoglm/autoglm/internal/reqbody"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// MiddlewareOptions connect the limit stage to the rest of the server.
type MiddlewareOptions struct {
	// Subject says who a request is charged to; false leaves the request unlimited (as when
	// authentication is off). Required.
	Subject func(r *http.Request) (Subject, bool)
}

// Stage returns the limit stage for routes of each limit policy (httpapi.Route.Limit). The
// stage reads a POST body to estimate its tokens (EstimateTokens), admits the request and
// sets the x-ratelimit-* headers (on refusals too). A refusal is returned as an
// *apierr.Error with RetryAfter set, for the server to render in the route's shape. An
// admitted request's Ticket is in its context for the handler to settle (Settle); when the
// handler returns — the response is complete, the stream has ended, or the client went away —
// the ticket is finished: the token buckets are corrected and the concurrency slot is freed.
func (l *Limiter) Stage(o MiddlewareOptions) func(httpapi.Limit) httpapi.Stage {
	return func(policy httpapi.Limit) httpapi.Stage {
		return func(next httpapi.HandlerFunc) httpapi.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) error {
				subj, ok := o.Subject(r)
				if !ok {
					return next(w, r)
				}
				var body []byte
				if r.Method == http.MethodPost && r.Body != nil && r.Body != http.NoBody {
					var err error
					body, err = readBody(r)
					if err != nil {
						return next(w, r)
					}
				}
				t, st, err := l.Admit(r.Context(), Request{Subject: subj, Tokens: EstimateTokens(policy, body, l.limits.Load().DefaultMaxTokens)})
				st.SetHeaders(w.Header())
				if err != nil {
					return err
				}
				sw := &statusWriter{ResponseWriter: w}
				defer func() { t.Finish(sw.status != 0 && sw.status < 400) }()
				return next(sw, r.WithContext(WithTicket(r.Context(), t)))
			}
		}
	}
}

// Middleware is the stage of a LimitTokens route as net/http middleware, for handlers outside
// a server's route table: refusals are answered in shape, with the request's trace id.
func (l *Limiter) Middleware(o MiddlewareOptions, shape apierr.Shape) func(http.Handler) http.Handler {
	stage := l.Stage(o)(httpapi.LimitTokens)
	return func(next http.Handler) http.Handler {
		h := stage(func(w http.ResponseWriter, r *http.Request) error {
			next.ServeHTTP(w, r)
			return nil
		})
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				apierr.Write(w, shape, telemetry.TraceID(r.Context()), err)
			}
		})
	}
}

// readBody reads the whole body once for every stage (package reqbody). When reading fails
// (the body limit, a broken connection), the replay left in r.Body ends with the same error,
// so the handler meets the failure where it would have.
func readBody(r *http.Request) ([]byte, error) { return reqbody.Read(r) }

// statusWriter notes the response status, to decide whether an unsettled reservation is kept.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush lets handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// EstimateTokens is the reservation for a request: a quarter of the body's bytes for the
// prompt (about four bytes per token in English), plus the completion's bound — max_tokens
// (or max_completion_tokens), defaultMax when the request sets neither, times n choices. A
// route of policy httpapi.LimitPrompt (embeddings) has no completion. Only the top level of the JSON body is scanned, without
// decoding it, so the estimate costs a pass over the bytes and no allocations.
func EstimateTokens(policy httpapi.Limit, body []byte, defaultMax int64) int64 {
	if len(body) == 0 {
		return 0
	}
	prompt := int64(len(body)+3) / 4
	if policy == httpapi.LimitPrompt {
		return prompt
	}
	f := scanTop(body)
	completion := defaultMax
	switch {
	case f.maxCompletionTokens > 0:
		completion = f.maxCompletionTokens
	case f.maxTokens > 0:
		completion = f.maxTokens
	}
	if f.n > 1 {
		completion *= min(f.n, 128)
	}
	return prompt + completion
}

// topFields are the top-level numbers the estimate needs; 0 when absent or not a positive
// integer.
type topFields struct {
	maxTokens, maxCompletionTokens, n int64
}

// scanTop reads the top-level members of a JSON object, skipping every value but the three
// numbers it looks for. Malformed input yields whatever was found before the fault.
func scanTop(b []byte) topFields {
	var f topFields
	_ = jsonscan.EachMember(b, func(key, val []byte) error {
		var dst *int64
		switch string(key[1 : len(key)-1]) {
		case "max_tokens":
			dst = &f.maxTokens
		case "max_completion_tokens":
			dst = &f.maxCompletionTokens
		case "n":
			dst = &f.n
		}
		if dst != nil {
			*dst = parseInt(val)
		}
		return nil
	})
	return f
}

// parseInt reads the non-negative decimal integer v is; 0 when it is not one (negative,
// fractional or exponent forms count as none).
func parseInt(v []byte) int64 {
	var n int64
	j := 0
	for ; j < len(v) && v[j] >= '0' && v[j] <= '9'; j++ {
		if n > (1<<62)/10 {
			return 0
		}
		n = n*10 + int64(v[j]-'0')
	}
	if j < len(v) && (v[j] == '.' || v[j] == 'e' || v[j] == 'E') {
		return 0
	}
	return n
}
