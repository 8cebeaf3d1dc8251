package mockllm

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// route identifies what a request asked for; the counters in [Stats] are
// kept per route.
type route uint8

const (
	routeOther route = iota
	routeChat
	routeCompletions
	routeEmbeddings
	routeModels
	routeModel
	routeStats
	routeReset
	numRoutes
)

// routeNames are the keys of [Stats.Requests].
var routeNames = [numRoutes]string{
	routeOther:       "other",
	routeChat:        "POST /v1/chat/completions",
	routeCompletions: "POST /v1/completions",
	routeEmbeddings:  "POST /v1/embeddings",
	routeModels:      "GET /v1/models",
	routeModel:       "GET /v1/models/{id}",
	routeStats:       "GET /mock/stats",
	routeReset:       "POST /mock/reset",
}

// Header values shared by every response. net/http only reads them.
var (
	hdrJSON    = []string{"application/json"}
	hdrSSE     = []string{"text/event-stream"}
	hdrNoCache = []string{"no-cache"}
	hdrNo      = []string{"no"}
)

// Server is the mock upstream. It is safe for concurrent use; create it with
// [New] and serve it with any net/http server.
type Server struct {
	opt      Options
	auth     []byte // "Bearer <key>", nil when no key is required
	seed     uint64 // mixed Options.Seed
	models   []byte // body of GET /v1/models
	modelDoc map[string][]byte
	pool     sync.Pool // *state

	seq   atomic.Uint64 // response ids
	draws atomic.Uint64 // failure draws so far

	requests         [numRoutes]atomic.Int64
	status           [600]atomic.Int64
	inFlight         atomic.Int64
	streamsStarted   atomic.Int64
	streamsCompleted atomic.Int64
	streamsCanceled  atomic.Int64
	canceled         atomic.Int64
	failures         atomic.Int64

	mu         sync.Mutex // guards the last* fields
	lastRoute  string
	lastBody   []byte
	lastHeader http.Header
}

// Stats is a snapshot of what a [Server] has seen since it was created or
// last reset. Counters of a request are updated before its handler returns,
// so a test that cancels a stream may have to poll until the count moves.
type Stats struct {
	// Requests counts requests by route ("POST /v1/chat/completions", ...;
	// "other" for unknown paths and wrong methods). Zero counts are omitted.
	Requests map[string]int64 `json:"requests"`
	// Status counts responses by HTTP status code.
	Status map[int]int64 `json:"status"`
	// InFlight is the number of /v1 requests being served now.
	InFlight int64 `json:"in_flight"`
	// StreamsStarted counts SSE responses begun (headers sent).
	StreamsStarted int64 `json:"streams_started"`
	// StreamsCompleted counts streams that wrote "data: [DONE]".
	StreamsCompleted int64 `json:"streams_completed"`
	// StreamsCanceled counts streams cut short because the client went away.
	StreamsCanceled int64 `json:"streams_canceled"`
	// Canceled counts non-stream requests whose client went away while the
	// answer was being delayed.
	Canceled int64 `json:"canceled"`
	// Failures counts injected 500 answers.
	Failures int64 `json:"failures"`
	// LastRoute, LastBody and LastHeader describe the last /v1 request,
	// recorded before authentication and decoding, so a test can check what
	// a gateway forwarded even when the mock rejected it.
	LastRoute  string      `json:"last_route"`
	LastBody   string      `json:"last_body"`
	LastHeader http.Header `json:"last_header"`
}

// New returns a Server for opt, with defaults applied and out-of-range
// values clamped (see [Options.WithDefaults]).
func New(opt Options) *Server {
	opt = opt.WithDefaults()
	s := &Server{opt: opt, seed: mix(uint64(opt.Seed)), modelDoc: make(map[string][]byte)}
	if opt.APIKey != "" {
		s.auth = []byte("Bearer " + opt.APIKey)
	}
	// The model list is fixed, so its documents are built once. "created"
	// is a fixed date so that answers are reproducible.
	list := []byte(`{"object":"list","data":[`)
	for i, id := range opt.Models {
		doc := appendString([]byte(`{"id":`), id)
		doc = append(doc, `,"object":"model","created":1700000000,"owned_by":"mockllm"}`...)
		if i > 0 {
			list = append(list, ',')
		}
		list = append(list, doc...)
		s.modelDoc[id] = doc
	}
	s.models = append(list, "]}"...)
	s.pool.New = func() any { return new(state) }
	return s
}

// Options returns the options in effect, with defaults applied.
func (s *Server) Options() Options {
	o := s.opt
	o.Models = append([]string(nil), o.Models...)
	return o
}

// Stats returns a snapshot of the counters and the last request.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:         make(map[string]int64),
		Status:           make(map[int]int64),
		InFlight:         s.inFlight.Load(),
		StreamsStarted:   s.streamsStarted.Load(),
		StreamsCompleted: s.streamsCompleted.Load(),
		StreamsCanceled:  s.streamsCanceled.Load(),
		Canceled:         s.canceled.Load(),
		Failures:         s.failures.Load(),
	}
	for i := range s.requests {
		if n := s.requests[i].Load(); n != 0 {
			st.Requests[routeNames[i]] = n
		}
	}
	for code := range s.status {
		if n := s.status[code].Load(); n != 0 {
			st.Status[code] = n
		}
	}
	s.mu.Lock()
	st.LastRoute = s.lastRoute
	st.LastBody = string(s.lastBody)
	st.LastHeader = s.lastHeader.Clone()
	s.mu.Unlock()
	return st
}

// Reset zeroes every counter except InFlight, forgets the last request and
// restarts the failure draws and response ids, so that the server behaves
// as if new.
func (s *Server) Reset() {
	for i := range s.requests {
		s.requests[i].Store(0)
	}
	for i := range s.status {
		s.status[i].Store(0)
	}
	for _, c := range []*atomic.Int64{&s.streamsStarted, &s.streamsCompleted, &s.streamsCanceled, &s.canceled, &s.failures} {
		c.Store(0)
	}
	s.seq.Store(0)
	s.draws.Store(0)
	s.mu.Lock()
	s.lastRoute, s.lastBody, s.lastHeader = "", nil, nil
	s.mu.Unlock()
}

func routeOf(r *http.Request) route {
	var rt route
	method := http.MethodPost
	switch p := r.URL.Path; p {
	case "/v1/chat/completions":
		rt = routeChat
	case "/v1/completions":
		rt = routeCompletions
	case "/v1/embeddings":
		rt = routeEmbeddings
	case "/v1/models":
		rt, method = routeModels, http.MethodGet
	case "/mock/stats":
		rt, method = routeStats, http.MethodGet
	case "/mock/reset":
		rt = routeReset
	default:
		if len(p) > len("/v1/models/") && strings.HasPrefix(p, "/v1/models/") {
			rt, method = routeModel, http.MethodGet
		}
	}
	if r.Method != method {
		return routeOther
	}
	return rt
}

// ServeHTTP implements [http.Handler]. The request's header map is kept (not
// copied) as the last request's; callers that invoke ServeHTTP directly must
// not modify it afterwards.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := routeOf(r)
	s.requests[rt].Add(1)
	switch rt {
	case routeStats:
		s.serveStats(w)
		return
	case routeReset:
		s.Reset()
		s.writeStatus(w, http.StatusNoContent)
		return
	case routeOther:
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			s.record(r, rt, nil)
		}
		s.writeError(w, http.StatusNotFound, "invalid_request_error", "Unknown request URL: "+r.Method+" "+r.URL.Path+".", "", "unknown_url")
		return
	}

	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	st := s.pool.Get().(*state)
	defer s.put(st)

	// The body is read before the key is checked so that Stats shows what
	// a client sent even when the mock refused it.
	var err error
	st.body, err = readBody(r, st.body[:0])
	s.record(r, rt, st.body)
	if s.auth != nil && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), s.auth) != 1 {
		s.writeError(w, http.StatusUnauthorized, "invalid_request_error", "Incorrect API key provided.", "", "invalid_api_key")
		return
	}
	if err != nil {
		if errors.Is(err, errTooLarge) {
			s.writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "The request body is too large.", "", "")
			return
		}
		s.writeError(w, http.StatusBadRequest, "invalid_request_error", "Could not read the request body.", "", "")
		return
	}

	var k kind
	switch rt {
	case routeModels:
		s.writeBody(w, s.models)
		return
	case routeModel:
		id := strings.TrimPrefix(r.URL.Path, "/v1/models/")
		if doc, ok := s.modelDoc[id]; ok {
			s.writeBody(w, doc)
			return
		}
		s.writeError(w, http.StatusNotFound, "invalid_request_error", "The model '"+id+"' does not exist", "model", "model_not_found")
		return
	case routeChat:
		k = kindChat
	case routeCompletions:
		k = kindCompletion
	case routeEmbeddings:
		k = kindEmbedding
	}

	st.req = request{inputs: st.req.inputs[:0]}
	if err := st.p.parse(k, st.body, &st.req); err != nil {
		var br *badRequest
		errors.As(err, &br)
		s.writeError(w, http.StatusBadRequest, "invalid_request_error", br.msg, br.param, "")
		return
	}
	if s.fail() {
		s.failures.Add(1)
		s.writeError(w, http.StatusInternalServerError, "server_error", "The server had an error while processing your request (injected by mockllm).", "", "")
		return
	}
	if k == kindEmbedding {
		s.embed(w, st)
		return
	}
	if k == kindChat && s.opt.ToolCalls {
		if name, args, ok := toolCallFor(st.body); ok {
			s.toolAnswer(w, st, name, args)
			return
		}
	}
	s.generate(w, r, st, k)
}

// fail draws whether this request gets an injected failure.
func (s *Server) fail() bool {
	if s.opt.FailRate <= 0 {
		return false
	}
	x := mix(s.seed ^ mix(s.draws.Add(1)))
	return float64(x>>11)/(1<<53) < s.opt.FailRate
}

// record keeps the request as the last one seen. The header map is kept by
// reference: net/http never touches it after the handler starts.
func (s *Server) record(r *http.Request, rt route, body []byte) {
	s.mu.Lock()
	s.lastRoute = routeNames[rt]
	if rt == routeOther {
		s.lastRoute = r.Method + " " + r.URL.Path
	}
	s.lastBody = append(s.lastBody[:0], body...)
	s.lastHeader = r.Header
	s.mu.Unlock()
}

func (s *Server) serveStats(w http.ResponseWriter) {
	b, err := json.Marshal(s.Stats())
	if err != nil { // cannot happen: Stats has only plain fields
		s.writeError(w, http.StatusInternalServerError, "server_error", err.Error(), "", "")
		return
	}
	s.writeBody(w, b)
}

func (s *Server) writeStatus(w http.ResponseWriter, code int) {
	s.status[code].Add(1)
	w.WriteHeader(code)
}

// writeBody answers 200 with a JSON body.
func (s *Server) writeBody(w http.ResponseWriter, b []byte) {
	w.Header()["Content-Type"] = hdrJSON
	s.writeStatus(w, http.StatusOK)
	w.Write(b)
}

// writeError answers in OpenAI's error shape; empty param and code are null.
func (s *Server) writeError(w http.ResponseWriter, status int, typ, msg, param, code string) {
	b := make([]byte, 0, 128+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"param":`...)
	b = appendNullable(b, param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, code)
	b = append(b, "}}\n"...)
	w.Header()["Content-Type"] = hdrJSON
	s.writeStatus(w, status)
	w.Write(b)
}

var errTooLarge = errors.New("request body too large")

// readBody reads the whole body into buf, stopping at maxBodyBytes.
func readBody(r *http.Request, buf []byte) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return buf, nil
	}
	cl := r.ContentLength
	if cl > maxBodyBytes {
		return buf, errTooLarge
	}
	if cl > 0 && int64(cap(buf)) < cl {
		buf = make([]byte, 0, cl)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case len(buf) > maxBodyBytes:
			return buf, errTooLarge
		case err == io.EOF || (cl > 0 && int64(len(buf)) == cl):
			return buf, nil
		case err != nil:
			return buf, err
		}
	}
}

// wait sleeps for d unless ctx ends first; it reports whether ctx is still
// live. *t is created on first use and reused by later calls of one handler.
// With no delay it only checks ctx.Err, which (unlike Done) allocates
// nothing.
func wait(ctx context.Context, t **time.Timer, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	select {
	case <-ctx.Done():
		(*t).Stop()
		return false
	case <-(*t).C:
		return true
	}
}
