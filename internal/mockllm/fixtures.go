package mockllm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Fixtures is the fixture mode of the mock: chat completions answered with canned text instead
// of generated words, for tests that need a model to say something exact (broken code, then a
// fix). Each fixture has a marker and a list of answers. A request whose messages contain the
// marker gets the fixture's answers in sequence, one per request (the last one repeats); a
// fixture with an empty marker matches every request no other fixture matches. Requests that
// match nothing, and every other route, go to the wrapped mock.
//
// A fixture file is YAML (or JSON):
//
//	fixtures:
//	  - marker: "FIXTURE broken-then-fixed"
//	    answers:
//	      - "```go\nfunc f( {\n```"
//	      - "```go\nfunc f() {}\n```"
//	    finish_reason: stop    # optional, per fixture; "length" simulates a cut-off
type Fixtures struct {
	Fixtures []Fixture `yaml:"fixtures" json:"fixtures"`
}

// Fixture is one marker with its answers.
type Fixture struct {
	Marker       string   `yaml:"marker" json:"marker"`
	Answers      []string `yaml:"answers" json:"answers"`
	FinishReason string   `yaml:"finish_reason" json:"finish_reason"`
}

// ParseFixtures decodes a fixture file strictly (unknown keys are an error).
func ParseFixtures(data []byte) (*Fixtures, error) {
	var f Fixtures
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("mockllm: fixture file is empty")
		}
		return nil, fmt.Errorf("mockllm: fixtures: %w", err)
	}
	if len(f.Fixtures) == 0 {
		return nil, errors.New("mockllm: fixtures: no fixtures")
	}
	for i, x := range f.Fixtures {
		if len(x.Answers) == 0 {
			return nil, fmt.Errorf("mockllm: fixtures[%d] (%q) has no answers", i, x.Marker)
		}
	}
	return &f, nil
}

// LoadFixtures reads a fixture file.
func LoadFixtures(path string) (*Fixtures, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseFixtures(data)
}

// FixtureHandler answers chat completions from f and passes everything else to next.
type FixtureHandler struct {
	f      *Fixtures
	next   http.Handler
	itl    time.Duration
	apiKey string

	mu     sync.Mutex
	served map[int]int // fixture index → answers served
}

// WithFixtures wraps the mock s in fixture mode. Chunks of a streamed fixture answer are
// paced by s's ITL.
func WithFixtures(s *Server, f *Fixtures) *FixtureHandler {
	o := s.Options()
	return &FixtureHandler{f: f, next: s, itl: o.ITL, apiKey: o.APIKey, served: map[int]int{}}
}

// ServeHTTP implements http.Handler.
func (h *FixtureHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" ||
		(h.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+h.apiKey) {
		h.next.ServeHTTP(w, r) // the mock answers other routes and refuses bad keys
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil || len(body) > maxBodyBytes {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	var req struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h.next.ServeHTTP(w, r)
		return
	}
	var all strings.Builder
	for _, m := range req.Messages {
		var s string
		if json.Unmarshal(m.Content, &s) == nil {
			all.WriteString(s)
		} else {
			all.Write(m.Content)
		}
		all.WriteByte('\n')
	}
	idx := h.match(all.String())
	if idx < 0 {
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h.next.ServeHTTP(w, r)
		return
	}
	fx := h.f.Fixtures[idx]
	h.mu.Lock()
	n := h.served[idx]
	h.served[idx] = n + 1
	h.mu.Unlock()
	text := fx.Answers[min(n, len(fx.Answers)-1)]
	finish := fx.FinishReason
	if finish == "" {
		finish = "stop"
	}
	promptTokens := len(strings.Fields(all.String()))
	completionTokens := len(strings.Fields(text))
	usage := map[string]int{"prompt_tokens": promptTokens, "completion_tokens": completionTokens, "total_tokens": promptTokens + completionTokens}
	id := fmt.Sprintf("chatcmpl-fixture-%d-%d", idx, n)
	created := time.Now().Unix()
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]string{"role": "assistant", "content": text}, "finish_reason": finish}},
			"usage":   usage})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	chunk := func(delta map[string]string, fin any) map[string]any {
		return map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": fin}}}
	}
	send(chunk(map[string]string{"role": "assistant"}, nil))
	for _, piece := range splitPieces(text) {
		if h.itl > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(h.itl):
			}
		}
		send(chunk(map[string]string{"content": piece}, nil))
	}
	send(chunk(map[string]string{}, finish))
	last := map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model, "choices": []any{}, "usage": usage}
	send(last)
	fmt.Fprint(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}

// match returns the fixture for a request's text: the first whose marker it contains, else
// the first with an empty marker, else -1.
func (h *FixtureHandler) match(text string) int {
	fallback := -1
	for i, x := range h.f.Fixtures {
		if x.Marker == "" {
			if fallback < 0 {
				fallback = i
			}
			continue
		}
		if strings.Contains(text, x.Marker) {
			return i
		}
	}
	return fallback
}

// splitPieces cuts text into word-sized stream chunks that concatenate back to text.
func splitPieces(text string) []string {
	var out []string
	for len(text) > 0 {
		i := strings.IndexAny(text[1:], " \n")
		if i < 0 {
			out = append(out, text)
			break
		}
		out = append(out, text[:i+1])
		text = text[i+1:]
	}
	return out
}
