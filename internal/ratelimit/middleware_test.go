package ratelimit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/httpapi"
)

// subjectFromHeader charges requests to the key named in X-Key (tests only).
func subjectFromHeader(r *http.Request) (Subject, bool) {
	k := r.Header.Get("X-Key")
	return Subject{KeyID: k, UserID: r.Header.Get("X-User"), Role: "user"}, k != ""
}

func TestMiddlewareHeaders(t *testing.T) {
	clk := newFakeClock()
	l := newLimiter(t, `
  default_max_tokens: 100
  roles:
    user: {requests_per_minute: 2, tokens_per_minute: 1000}
`, Options{Now: clk.Now})
	var settled int64
	h := l.Middleware(MiddlewareOptions{Subject: subjectFromHeader}, apierr.ShapeOpenAI)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(body) != 41 {
			t.Errorf("handler read %d bytes, want the whole body of 41", len(body))
		}
		settled = Settle(r.Context(), 31)
		io.WriteString(w, "ok")
	}))
	body := `{"model":"m","max_tokens":20,"n":1,"x":1}` // 41 bytes: 11 prompt + 20 completion
	do := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
		r.Header.Set("X-Key", "k1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := do()
	want := map[string]string{
		"X-Ratelimit-Limit-Requests":     "2",
		"X-Ratelimit-Remaining-Requests": "1",
		"X-Ratelimit-Reset-Requests":     "30s",
		"X-Ratelimit-Limit-Tokens":       "1000",
		"X-Ratelimit-Remaining-Tokens":   "969",
		"X-Ratelimit-Reset-Tokens":       "1.86s",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if w.Code != 200 || settled != 0 {
		t.Fatalf("status %d, settle difference %d (want 0: estimate 31, used 31)", w.Code, settled)
	}
	do()
	w = do()
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("third request: status %d", w.Code)
	}
	if got := w.Header().Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After %q, want 30", got)
	}
	if got := w.Header().Get("X-Ratelimit-Remaining-Requests"); got != "0" {
		t.Errorf("remaining on refusal %q", got)
	}
	if got := w.Header().Get("X-Ratelimit-Reset-Requests"); got != "1m0s" {
		t.Errorf("reset on refusal %q", got)
	}
	var e struct {
		Error struct{ Type, Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Type != "rate_limit_error" || e.Error.Code != "rate_limit_exceeded" {
		t.Errorf("body %s (%v)", w.Body, err)
	}
	// Without a subject the middleware stays out of the way.
	r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Header().Get("X-Ratelimit-Limit-Requests") != "" {
		t.Errorf("anonymous: %d %v", w.Code, w.Header())
	}
}

// TestMiddlewareBodyError passes a body-limit failure through to the handler unchanged.
func TestMiddlewareBodyError(t *testing.T) {
	l := newLimiter(t, "  roles:\n    user: {requests_per_minute: 5}\n", Options{})
	var got error
	h := l.Middleware(MiddlewareOptions{Subject: subjectFromHeader}, apierr.ShapeOpenAI)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, got = io.ReadAll(r.Body)
	}))
	r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(strings.Repeat("x", 100)))
	r.Header.Set("X-Key", "k")
	w := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(w, r.Body, 10)
	h.ServeHTTP(w, r)
	var mbe *http.MaxBytesError
	if !errors.As(got, &mbe) {
		t.Fatalf("handler saw %v, want the MaxBytesError", got)
	}
}

// TestConcurrencyReleasedOnCancel holds a slot with a request whose client goes away, and
// checks the slot comes back; then the same with a stream that ends normally.
func TestConcurrencyReleasedOnCancel(t *testing.T) {
	l := newLimiter(t, "  roles:\n    user: {concurrent: 1}\n", Options{})
	started := make(chan struct{}, 1)
	h := l.Middleware(MiddlewareOptions{Subject: subjectFromHeader}, apierr.ShapeOpenAI)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				io.WriteString(w, "data: "+string(rune('a'+i))+"\n\n")
				w.(http.Flusher).Flush()
			}
			io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		started <- struct{}{}
		<-r.Context().Done() // a long generation, until the client leaves
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(ctx context.Context, path string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
		req.Header.Set("X-Key", "k")
		return http.DefaultClient.Do(req)
	}
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := get(ctx, "/hold")
	if err != nil {
		t.Fatal(err)
	}
	<-started
	second, err := get(context.Background(), "/hold")
	if err != nil {
		t.Fatal(err)
	}
	second.Body.Close()
	if second.StatusCode != http.StatusTooManyRequests || second.Header.Get("Retry-After") != "1" {
		t.Fatalf("second concurrent request: %d Retry-After %q", second.StatusCode, second.Header.Get("Retry-After"))
	}
	cancel()
	resp.Body.Close()
	// The server notices the disconnect asynchronously: poll until the slot is free.
	for {
		r, err := get(context.Background(), "/stream")
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode == http.StatusTooManyRequests {
			r.Body.Close()
			time.Sleep(5 * time.Millisecond)
			continue
		}
		n := 0
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				n++
			}
		}
		r.Body.Close()
		if n != 4 {
			t.Fatalf("stream had %d events", n)
		}
		break
	}
	// The finished stream released its slot too (Finish runs before the response completes).
	r, err := get(context.Background(), "/stream")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("after the stream ended: status %d", r.StatusCode)
	}
}

func TestEstimateTokens(t *testing.T) {
	for _, c := range []struct {
		name       string
		policy     httpapi.Limit
		body       string
		completion int64 // the estimate less the prompt's quarter of the body
	}{
		{"empty", httpapi.LimitTokens, "", 0},
		{"default max", httpapi.LimitTokens, `{"model":"m"}`, 512},
		{"max_tokens", httpapi.LimitTokens, `{"max_tokens": 64 ,"model":"m"}`, 64},
		{"max_completion_tokens wins", httpapi.LimitTokens, `{"max_tokens":64,"max_completion_tokens":32}`, 32},
		{"n choices", httpapi.LimitTokens, `{"n":3,"max_tokens":10}`, 30},
		{"nested ignored", httpapi.LimitTokens, `{"messages":[{"content":"\"max_tokens\":5","max_tokens":7}],"x":{"n":9}}`, 512},
		{"string value", httpapi.LimitTokens, `{"max_tokens":"9"}`, 512},
		{"negative", httpapi.LimitTokens, `{"max_tokens":-9}`, 512},
		{"float", httpapi.LimitTokens, `{"max_tokens":9.5}`, 512},
		{"embeddings", httpapi.LimitPrompt, `{"input":"hello there","max_tokens":99}`, 0},
		{"not json", httpapi.LimitTokens, `hello`, 512},
	} {
		want := int64(len(c.body)+3)/4 + c.completion
		if c.body == "" {
			want = 0
		}
		if got := EstimateTokens(c.policy, []byte(c.body), 512); got != want {
			t.Errorf("%s: EstimateTokens = %d, want %d", c.name, got, want)
		}
	}
}

// FuzzScanTop checks the scanner against encoding/json on every valid JSON object.
func FuzzScanTop(f *testing.F) {
	for _, s := range []string{
		`{"max_tokens":5}`, `{"a":[1,{"b":"]"}],"n":2,"max_completion_tokens":3}`, `{"x":"\\\"","max_tokens":1}`,
		`{"max_tokens":1e3}`, `{"n":null,"max_tokens":true}`, `{}`, `[]`, `{"max_tokens":99999999999999999999}`,
		` { "n" : 4 } `, `{"a":{"max_tokens":4}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := scanTop(b)
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return // malformed input only has to not crash
		}
		want := func(k string) int64 {
			raw, ok := m[k]
			if !ok {
				return 0
			}
			var v int64
			if json.Unmarshal(raw, &v) != nil || v < 0 || v > 1<<62 || strings.ContainsAny(string(raw), ".eE-") {
				return 0
			}
			return v
		}
		// Duplicate keys: encoding/json keeps the last, and so does the scanner.
		if got.maxTokens != want("max_tokens") || got.maxCompletionTokens != want("max_completion_tokens") || got.n != want("n") {
			t.Errorf("scanTop(%q) = %+v; json says max_tokens=%d max_completion_tokens=%d n=%d",
				b, got, want("max_tokens"), want("max_completion_tokens"), want("n"))
		}
	})
}

func ExampleLimiter_Middleware() {
	l, _ := New(config.RateLimit{Roles: map[string]config.Limits{"user": {RequestsPerMinute: 1}}}, Options{})
	defer l.Close()
	h := l.Middleware(MiddlewareOptions{
		// The server charges the authenticated principal; here, a header names the key.
		Subject: func(r *http.Request) (Subject, bool) {
			k := r.Header.Get("X-Key")
			return Subject{KeyID: k, Role: "user"}, k != ""
		},
	}, apierr.ShapeOpenAI)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Settle(r.Context(), 42) // the upstream's usage.total_tokens
		io.WriteString(w, "ok")
	}))
	for range 2 {
		r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"max_tokens":16}`))
		r.Header.Set("X-Key", "key-1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d remaining=%s retry-after=%q\n", w.Code, w.Header().Get("X-Ratelimit-Remaining-Requests"), w.Header().Get("Retry-After"))
	}
	// Output:
	// 200 remaining=0 retry-after=""
	// 429 remaining=0 retry-after="60"
}
