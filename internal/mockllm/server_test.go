package mockllm

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// do calls s.ServeHTTP directly and returns the recorded response.
func do(t testing.TB, s http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

type chatCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Text         string `json:"text"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageJSON `json:"usage"`
}

type usageJSON struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageJSON `json:"usage"`
}

type errorJSON struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// events splits an SSE body into its data payloads, checking that every
// event is exactly one "data: " line followed by a blank line.
func events(t testing.TB, body string) []string {
	t.Helper()
	if !strings.HasSuffix(body, "\n\n") {
		t.Fatalf("stream does not end with a blank line: %q", body)
	}
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("malformed event %q", ev)
		}
		out = append(out, data)
	}
	return out
}

const chatBody = `{"model":"gpt-x","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"tell me a story about a cat"}]}`

func TestChat(t *testing.T) {
	s := New(Options{})
	w := do(t, s, "POST", "/v1/chat/completions", chatBody)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", w.Code, w.Header().Get("Content-Type"))
	}
	c := decode[chatCompletion](t, w.Body.Bytes())
	if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Model != "gpt-x" || c.Created == 0 {
		t.Errorf("head = %+v", c)
	}
	if len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" || c.Choices[0].FinishReason != "stop" {
		t.Fatalf("choices = %+v", c.Choices)
	}
	if n := len(strings.Fields(c.Choices[0].Message.Content)); n != 16 {
		t.Errorf("content has %d words, want 16: %q", n, c.Choices[0].Message.Content)
	}
	// 2 words in the system message, 7 in the user message.
	if diff := cmp.Diff(&usageJSON{9, 16, 25}, c.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func TestMaxTokens(t *testing.T) {
	s := New(Options{Tokens: 10})
	for _, tc := range []struct {
		field  string
		want   int
		finish string
	}{
		{`"max_tokens":3`, 3, "length"},
		{`"max_completion_tokens":4`, 4, "length"},
		{`"max_tokens":10`, 10, "stop"},
		{`"max_tokens":50`, 10, "stop"},
		{`"max_tokens":null`, 10, "stop"},
	} {
		body := `{"model":"m",` + tc.field + `,"messages":[{"role":"user","content":"hi"}]}`
		c := decode[chatCompletion](t, do(t, s, "POST", "/v1/chat/completions", body).Body.Bytes())
		got := len(strings.Fields(c.Choices[0].Message.Content))
		if got != tc.want || c.Choices[0].FinishReason != tc.finish || c.Usage.CompletionTokens != tc.want {
			t.Errorf("%s: %d tokens, finish %q, usage %+v; want %d, %q", tc.field, got, c.Choices[0].FinishReason, c.Usage, tc.want, tc.finish)
		}
	}
}

func TestDeterminism(t *testing.T) {
	text := func(s *Server, body string) string {
		c := decode[chatCompletion](t, do(t, s, "POST", "/v1/chat/completions", body).Body.Bytes())
		return c.Choices[0].Message.Content
	}
	a, b, other := New(Options{Seed: 7}), New(Options{Seed: 7}), New(Options{Seed: 8})
	base := text(a, chatBody)
	if got := text(b, chatBody); got != base {
		t.Errorf("same seed and request gave %q and %q", base, got)
	}
	if got := text(a, chatBody); got != base {
		t.Errorf("repeating a request changed the text: %q then %q", base, got)
	}
	// The model name, whitespace and unrelated fields do not change the text.
	same := `{ "messages" : [{"content":"be brief","role":"system"},{"role":"user","content":"tell me a story about a cat"}], "model":"renamed", "user":"u1"}`
	if got := text(a, same); got != base {
		t.Errorf("equivalent request gave %q, want %q", got, base)
	}
	for name, got := range map[string]string{
		"other seed":    text(other, chatBody),
		"other prompt":  text(a, strings.Replace(chatBody, "cat", "dog", 1)),
		"moved text":    text(a, `{"model":"m","messages":[{"role":"system","content":"be brief tell"},{"role":"user","content":"me a story about a cat"}]}`),
		"request seed":  text(a, strings.Replace(chatBody, `{`, `{"seed":3,`, 1)),
		"escaped equal": text(a, strings.Replace(chatBody, "cat", `c\u0061t`, 1)),
	} {
		if name == "escaped equal" {
			if got != base {
				t.Errorf("%s: got %q, want %q", name, got, base)
			}
			continue
		}
		if got == base {
			t.Errorf("%s: text did not change: %q", name, got)
		}
	}
}

func TestChatStreamLayout(t *testing.T) {
	s := New(Options{Tokens: 3})
	body := `{"model":"m\"1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi there"}]}`
	w := do(t, s, "POST", "/v1/chat/completions", body)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/event-stream" || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("status %d, header %v", w.Code, w.Header())
	}
	evs := events(t, w.Body.String())
	if len(evs) != 5 {
		t.Fatalf("got %d events, want 3 tokens + usage + [DONE]:\n%s", len(evs), w.Body)
	}
	first := decode[chunk](t, []byte(evs[0]))
	words := make([]string, 3)
	for i := range words {
		c := decode[chunk](t, []byte(evs[i]))
		words[i] = c.Choices[0].Delta.Content
	}
	// The exact bytes of every event, given the id, timestamp and words.
	head := fmt.Sprintf(`{"id":%q,"object":"chat.completion.chunk","created":%d,"model":"m\"1","choices":[`, first.ID, first.Created)
	want := []string{
		head + `{"index":0,"delta":{"role":"assistant","content":"` + words[0] + `"},"logprobs":null,"finish_reason":null}]}`,
		head + `{"index":0,"delta":{"content":"` + words[1] + `"},"logprobs":null,"finish_reason":null}]}`,
		head + `{"index":0,"delta":{"content":"` + words[2] + `"},"logprobs":null,"finish_reason":"stop"}]}`,
		head + `],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}`,
		`[DONE]`,
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(words[1], " ") || strings.HasPrefix(words[0], " ") {
		t.Errorf("words %q: want a space before every word but the first", words)
	}
	// The same request without streaming produces the same text.
	c := decode[chatCompletion](t, do(t, s, "POST", "/v1/chat/completions", strings.Replace(body, `"stream":true`, `"stream":false`, 1)).Body.Bytes())
	if got := strings.Join(words, ""); got != c.Choices[0].Message.Content {
		t.Errorf("stream text %q != non-stream text %q", got, c.Choices[0].Message.Content)
	}
	st := s.Stats()
	if st.StreamsStarted != 1 || st.StreamsCompleted != 1 || st.StreamsCanceled != 0 {
		t.Errorf("stream counters = %+v", st)
	}
}

func TestStreamWithoutUsage(t *testing.T) {
	s := New(Options{Tokens: 2})
	for _, opts := range []string{``, `"stream_options":null,`, `"stream_options":{"include_usage":false},`} {
		w := do(t, s, "POST", "/v1/chat/completions", `{"model":"m","stream":true,`+opts+`"messages":[{"role":"user","content":"x"}]}`)
		evs := events(t, w.Body.String())
		if len(evs) != 3 || evs[2] != "[DONE]" || strings.Contains(w.Body.String(), "usage") {
			t.Errorf("%s: events %q", opts, evs)
		}
	}
}

func TestChoices(t *testing.T) {
	s := New(Options{Tokens: 4})
	c := decode[chatCompletion](t, do(t, s, "POST", "/v1/chat/completions", `{"model":"m","n":3,"messages":[{"role":"user","content":"x"}]}`).Body.Bytes())
	if len(c.Choices) != 3 || c.Usage.CompletionTokens != 12 {
		t.Fatalf("choices %+v usage %+v", c.Choices, c.Usage)
	}
	for i, ch := range c.Choices {
		if ch.Index != i {
			t.Errorf("choice %d has index %d", i, ch.Index)
		}
	}
	if c.Choices[0].Message.Content == c.Choices[1].Message.Content {
		t.Errorf("choices 0 and 1 are equal: %q", c.Choices[0].Message.Content)
	}
	// Streamed: one chunk per choice per token, each choice opening with its role.
	w := do(t, s, "POST", "/v1/chat/completions", `{"model":"m","n":2,"stream":true,"messages":[{"role":"user","content":"x"}]}`)
	evs := events(t, w.Body.String())
	if len(evs) != 2*4+1 {
		t.Fatalf("%d events", len(evs))
	}
	texts := make([]string, 2)
	for i, ev := range evs[:8] {
		ch := decode[chunk](t, []byte(ev))
		idx := ch.Choices[0].Index
		if idx != i%2 || (ch.Choices[0].Delta.Role == "assistant") != (i < 2) || (ch.Choices[0].FinishReason != nil) != (i >= 6) {
			t.Errorf("event %d: %s", i, ev)
		}
		texts[idx] += ch.Choices[0].Delta.Content
	}
	if texts[0] != c.Choices[0].Message.Content || texts[1] != c.Choices[1].Message.Content {
		t.Errorf("streamed choices %q, want %q and %q", texts, c.Choices[0].Message.Content, c.Choices[1].Message.Content)
	}
}

func TestCompletions(t *testing.T) {
	s := New(Options{Tokens: 5})
	for _, tc := range []struct {
		prompt        string
		choices, ptok int
	}{
		{`"one two three"`, 1, 3},
		{`["one two", "three"]`, 2, 3},
		{`[1, 2, 3, 4]`, 1, 4},
		{`[[1, 2], [3]]`, 2, 3},
	} {
		w := do(t, s, "POST", "/v1/completions", `{"model":"c","prompt":`+tc.prompt+`,"max_tokens":4}`)
		c := decode[chatCompletion](t, w.Body.Bytes())
		if w.Code != 200 || c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") || len(c.Choices) != tc.choices {
			t.Fatalf("%s: %d %s", tc.prompt, w.Code, w.Body)
		}
		if diff := cmp.Diff(&usageJSON{tc.ptok, 4 * tc.choices, tc.ptok + 4*tc.choices}, c.Usage); diff != "" {
			t.Errorf("%s: usage (-want +got):\n%s", tc.prompt, diff)
		}
		for i, ch := range c.Choices {
			if ch.Index != i || ch.FinishReason != "length" || len(strings.Fields(ch.Text)) != 4 {
				t.Errorf("%s: choice %+v", tc.prompt, ch)
			}
		}
	}
	w := do(t, s, "POST", "/v1/completions", `{"model":"c","prompt":"hi","stream":true,"max_tokens":2,"stream_options":{"include_usage":true}}`)
	evs := events(t, w.Body.String())
	first := decode[chunk](t, []byte(evs[0]))
	head := fmt.Sprintf(`{"id":%q,"object":"text_completion","created":%d,"model":"c","choices":[`, first.ID, first.Created)
	w1, w2 := first.Choices[0].Text, decode[chunk](t, []byte(evs[1])).Choices[0].Text
	want := []string{
		head + `{"text":"` + w1 + `","index":0,"logprobs":null,"finish_reason":null}]}`,
		head + `{"text":"` + w2 + `","index":0,"logprobs":null,"finish_reason":"length"}]}`,
		head + `],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`,
		"[DONE]",
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

type embeddingResponse struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string    `json:"model"`
	Usage usageJSON `json:"usage"`
}

func vectors(t *testing.T, r embeddingResponse) [][]float32 {
	t.Helper()
	var out [][]float32
	for _, d := range r.Data {
		var v []float32
		var s string
		if json.Unmarshal(d.Embedding, &s) == nil {
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil || len(raw)%4 != 0 {
				t.Fatalf("bad base64 embedding %q: %v", s, err)
			}
			for i := 0; i < len(raw); i += 4 {
				v = append(v, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
			}
		} else if err := json.Unmarshal(d.Embedding, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestEmbeddings(t *testing.T) {
	s := New(Options{EmbeddingDim: 12})
	embed := func(body string) ([][]float32, embeddingResponse) {
		t.Helper()
		w := do(t, s, "POST", "/v1/embeddings", body)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
		r := decode[embeddingResponse](t, w.Body.Bytes())
		return vectors(t, r), r
	}
	batch, r := embed(`{"model":"e","input":["the cat","a dog ran","the cat"]}`)
	if r.Object != "list" || r.Model != "e" || len(batch) != 3 || r.Usage != (usageJSON{PromptTokens: 7, TotalTokens: 7}) {
		t.Fatalf("response %+v", r)
	}
	for i, v := range batch {
		if r.Data[i].Index != i || r.Data[i].Object != "embedding" || len(v) != 12 {
			t.Errorf("item %d: %+v len %d", i, r.Data[i], len(v))
		}
		var norm float64
		for _, x := range v {
			norm += float64(x) * float64(x)
		}
		if math.Abs(norm-1) > 1e-5 {
			t.Errorf("item %d has squared norm %v", i, norm)
		}
	}
	if !cmp.Equal(batch[0], batch[2]) || cmp.Equal(batch[0], batch[1]) {
		t.Errorf("equal inputs must embed equally and different ones differently: %v", batch)
	}
	single, _ := embed(`{"model":"e","input":"a dog ran"}`)
	if diff := cmp.Diff(batch[1], single[0]); diff != "" {
		t.Errorf("an input embeds differently alone and in a batch:\n%s", diff)
	}
	b64, _ := embed(`{"model":"e","input":"a dog ran","encoding_format":"base64"}`)
	if diff := cmp.Diff(single, b64); diff != "" {
		t.Errorf("base64 and float encodings differ:\n%s", diff)
	}
	dims, _ := embed(`{"model":"e","input":"a dog ran","dimensions":3}`)
	if len(dims[0]) != 3 {
		t.Errorf("dimensions 3 gave %d", len(dims[0]))
	}
	toks, r := embed(`{"model":"e","input":[[1,2,3],[4]]}`)
	if len(toks) != 2 || r.Usage.PromptTokens != 4 {
		t.Errorf("token inputs: %d vectors, usage %+v", len(toks), r.Usage)
	}
	flat, r := embed(`{"model":"e","input":[5,6]}`)
	if len(flat) != 1 || r.Usage.PromptTokens != 2 {
		t.Errorf("flat token input: %d vectors, usage %+v", len(flat), r.Usage)
	}
}

func TestModels(t *testing.T) {
	s := New(Options{Models: []string{"a", "org/b"}})
	w := do(t, s, "GET", "/v1/models", "")
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		OwnedBy string `json:"owned_by"`
		Created int64  `json:"created"`
	}
	got := decode[struct {
		Object string
		Data   []model
	}](t, w.Body.Bytes())
	want := []model{{"a", "model", "mockllm", 1700000000}, {"org/b", "model", "mockllm", 1700000000}}
	if w.Code != 200 || got.Object != "list" || !cmp.Equal(want, got.Data) {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	w = do(t, s, "GET", "/v1/models/org/b", "")
	if m := decode[model](t, w.Body.Bytes()); w.Code != 200 || m != want[1] {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	w = do(t, s, "GET", "/v1/models/nope", "")
	e := decode[errorJSON](t, w.Body.Bytes())
	if w.Code != 404 || e.Error.Code == nil || *e.Error.Code != "model_not_found" {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	if def := decode[struct{ Data []model }](t, do(t, New(Options{}), "GET", "/v1/models", "").Body.Bytes()); len(def.Data) != 1 || def.Data[0].ID != "mock-model" {
		t.Errorf("default models %+v", def)
	}
}

func TestErrors(t *testing.T) {
	s := New(Options{})
	for _, tc := range []struct {
		method, path, body string
		status             int
		param              string
	}{
		{"POST", "/v1/chat/completions", `{"model":`, 400, ""},
		{"POST", "/v1/chat/completions", `[1]`, 400, ""},
		{"POST", "/v1/chat/completions", ``, 400, ""},
		{"POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 400, "model"},
		{"POST", "/v1/chat/completions", `{"model":"m"}`, 400, "messages"},
		{"POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, 400, "messages"},
		{"POST", "/v1/chat/completions", `{"model":"m","messages":"hi"}`, 400, "messages"},
		{"POST", "/v1/chat/completions", `{"model":3,"messages":[{"role":"user","content":"x"}]}`, 400, "model"},
		{"POST", "/v1/chat/completions", `{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}`, 400, "stream"},
		{"POST", "/v1/chat/completions", `{"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]}`, 400, "max_tokens"},
		{"POST", "/v1/chat/completions", `{"model":"m","n":0,"messages":[{"role":"user","content":"x"}]}`, 400, "n"},
		{"POST", "/v1/completions", `{"model":"m","prompt":["a",1]}`, 400, "prompt"},
		{"POST", "/v1/completions", `{"model":"m","prompt":[]}`, 400, "prompt"},
		{"POST", "/v1/completions", `{"model":"m","prompt":"x","n":100}`, 200, ""},
		{"POST", "/v1/completions", `{"model":"m","prompt":["x","y"],"n":100}`, 400, "n"},
		{"POST", "/v1/embeddings", `{"model":"m","input":"x","encoding_format":"int8"}`, 400, "encoding_format"},
		{"POST", "/v1/embeddings", `{"model":"m","input":"x","dimensions":0}`, 400, "dimensions"},
		{"POST", "/v1/embeddings", `{"model":"m"}`, 400, "input"},
		{"GET", "/v1/chat/completions", ``, 404, ""},
		{"POST", "/v2/nothing", `{}`, 404, ""},
	} {
		w := do(t, s, tc.method, tc.path, tc.body)
		if w.Code != tc.status {
			t.Errorf("%s %s %s: status %d, want %d: %s", tc.method, tc.path, tc.body, w.Code, tc.status, w.Body)
			continue
		}
		if tc.status == 200 {
			continue
		}
		e := decode[errorJSON](t, w.Body.Bytes())
		if e.Error.Message == "" || e.Error.Type != "invalid_request_error" || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: error body %s", tc.method, tc.body, w.Body)
		}
		if got := ""; e.Error.Param != nil {
			if got = *e.Error.Param; got != tc.param {
				t.Errorf("%s: param %q, want %q", tc.body, got, tc.param)
			}
		} else if tc.param != "" {
			t.Errorf("%s: param null, want %q", tc.body, tc.param)
		}
	}
}

func TestAPIKey(t *testing.T) {
	s := New(Options{APIKey: "sk-test"})
	for _, tc := range []struct {
		hdr    []string
		status int
	}{
		{nil, 401},
		{[]string{"Authorization", "Bearer wrong"}, 401},
		{[]string{"Authorization", "sk-test"}, 401},
		{[]string{"Authorization", "Bearer sk-test"}, 200},
	} {
		for _, path := range []string{"/v1/models", "/v1/models/mock-model"} {
			w := do(t, s, "GET", path, "", tc.hdr...)
			if w.Code != tc.status {
				t.Errorf("%s with %q: %d, want %d", path, tc.hdr, w.Code, tc.status)
			}
			if tc.status == 401 {
				e := decode[errorJSON](t, w.Body.Bytes())
				if e.Error.Code == nil || *e.Error.Code != "invalid_api_key" {
					t.Errorf("401 body %s", w.Body)
				}
			}
		}
	}
	if w := do(t, s, "POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer x"); w.Code != 401 {
		t.Errorf("chat with a wrong key: %d", w.Code)
	}
	if got := s.Stats().LastHeader.Get("Authorization"); got != "Bearer x" {
		t.Errorf("last header records Authorization %q", got)
	}
	// The control routes are not guarded.
	if w := do(t, s, "GET", "/mock/stats", ""); w.Code != 200 {
		t.Errorf("stats without a key: %d", w.Code)
	}
}

func TestFailRate(t *testing.T) {
	pattern := func(seed int64) []bool {
		s := New(Options{FailRate: 0.25, Seed: seed, Tokens: 1})
		var out []bool
		for range 2000 {
			w := do(t, s, "POST", "/v1/chat/completions", chatBody)
			if w.Code == 500 {
				e := decode[errorJSON](t, w.Body.Bytes())
				if e.Error.Type != "server_error" {
					t.Fatalf("500 body %s", w.Body)
				}
			} else if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			out = append(out, w.Code == 500)
		}
		if got := s.Stats().Failures; got != int64(count(out)) {
			t.Errorf("Stats.Failures = %d, want %d", got, count(out))
		}
		return out
	}
	a := pattern(42)
	// 2000 draws at p=0.25: the standard deviation is about 19, so ±100 is
	// more than 5 sigma.
	if n := count(a); n < 400 || n > 600 {
		t.Errorf("%d of 2000 failed at rate 0.25", n)
	}
	if !cmp.Equal(a, pattern(42)) {
		t.Error("the same seed gave a different failure pattern")
	}
	if cmp.Equal(a, pattern(43)) {
		t.Error("another seed gave the same failure pattern")
	}
	s := New(Options{FailRate: 1})
	if w := do(t, s, "POST", "/v1/embeddings", `{"model":"e","input":"x"}`); w.Code != 500 {
		t.Errorf("embeddings at fail rate 1: %d", w.Code)
	}
	if w := do(t, s, "POST", "/v1/embeddings", `{bad`); w.Code != 400 {
		t.Errorf("bad JSON at fail rate 1: %d, want 400", w.Code)
	}
	if w := do(t, s, "GET", "/v1/models", ""); w.Code != 200 {
		t.Errorf("models at fail rate 1: %d", w.Code)
	}
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func TestStatsAndReset(t *testing.T) {
	s := New(Options{})
	body := `{"model":"rewritten","messages":[{"role":"user","content":"x"}],"vendor_extension":{"a":[1,2]}}`
	do(t, s, "POST", "/v1/chat/completions", body, "X-Custom", "v", "Authorization", "Bearer up")
	do(t, s, "POST", "/v1/chat/completions", `{bad`)
	do(t, s, "POST", "/v1/chat/completions", body, "X-Custom", "v", "Authorization", "Bearer up")
	do(t, s, "GET", "/v1/models", "")
	do(t, s, "DELETE", "/v1/models", "")

	w := do(t, s, "GET", "/mock/stats", "")
	got := decode[Stats](t, w.Body.Bytes())
	want := Stats{
		Requests: map[string]int64{
			"POST /v1/chat/completions": 3,
			"GET /v1/models":            1,
			"GET /mock/stats":           1,
			"other":                     1,
		},
		Status:    map[int]int64{200: 3, 400: 1, 404: 1},
		LastRoute: "DELETE /v1/models",
	}
	if diff := cmp.Diff(want, got, cmpIgnoreLast); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}

	s.Reset()
	do(t, s, "POST", "/v1/chat/completions", body, "X-Custom", "v", "Authorization", "Bearer up")
	st := s.Stats()
	if st.LastBody != body || st.LastRoute != "POST /v1/chat/completions" || st.LastHeader.Get("X-Custom") != "v" || st.LastHeader.Get("Authorization") != "Bearer up" {
		t.Errorf("last request: %q %q %v", st.LastRoute, st.LastBody, st.LastHeader)
	}
	if st.Requests["POST /v1/chat/completions"] != 1 || st.Status[200] != 1 {
		t.Errorf("after reset: %+v", st)
	}
	if w := do(t, s, "POST", "/mock/reset", ""); w.Code != 204 {
		t.Errorf("POST /mock/reset: %d", w.Code)
	}
	if st := s.Stats(); st.Requests["POST /v1/chat/completions"] != 0 || st.LastBody != "" {
		t.Errorf("after /mock/reset: %+v", st)
	}
}

var cmpIgnoreLast = cmp.FilterPath(func(p cmp.Path) bool {
	f := p.Last().String()
	return f == ".LastBody" || f == ".LastHeader"
}, cmp.Ignore())

// server starts s on a loopback listener for tests that need a real
// connection: timing and disconnects.
func server(t *testing.T, s *Server) *httptest.Server {
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func post(ctx context.Context, t *testing.T, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestTiming(t *testing.T) {
	const ttft, itl, tokens = 60 * time.Millisecond, 15 * time.Millisecond, 5
	ts := server(t, New(Options{TTFT: ttft, ITL: itl, Tokens: tokens}))
	stream := strings.Replace(chatBody, `{`, `{"stream":true,`, 1)

	start := time.Now()
	resp := post(context.Background(), t, ts.URL+"/v1/chat/completions", stream)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// Only lower bounds: a loaded machine may be arbitrarily slower.
	if got := time.Since(start); got < ttft {
		t.Errorf("first token after %v, want >= %v", got, ttft)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Fatal(err)
	}
	if got, want := time.Since(start), ttft+(tokens-1)*itl; got < want {
		t.Errorf("stream took %v, want >= %v", got, want)
	}

	start = time.Now()
	resp2 := post(context.Background(), t, ts.URL+"/v1/chat/completions", chatBody)
	io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if got, want := time.Since(start), ttft+(tokens-1)*itl; got < want || resp2.StatusCode != 200 {
		t.Errorf("non-stream answer after %v (status %d), want >= %v", got, resp2.StatusCode, want)
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCancel(t *testing.T) {
	s := New(Options{ITL: 20 * time.Millisecond, Tokens: 1000})
	ts := server(t, s)
	stream := strings.Replace(chatBody, `{`, `{"stream":true,`, 1)

	// Mid-stream: read one event, then go away.
	ctx, cancel := context.WithCancel(context.Background())
	resp := post(ctx, t, ts.URL+"/v1/chat/completions", stream)
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	waitFor(t, "the stream to be counted as canceled", func() bool { return s.Stats().StreamsCanceled == 1 })
	waitFor(t, "in-flight to drop", func() bool { return s.Stats().InFlight == 0 })
	if st := s.Stats(); st.StreamsCompleted != 0 || st.StreamsStarted != 1 {
		t.Errorf("stats %+v", st)
	}

	// Before the first token of a slow non-stream answer.
	s2 := New(Options{TTFT: time.Hour})
	ts2 := server(t, s2)
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts2.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		_, err := http.DefaultClient.Do(req)
		done <- err
	}()
	waitFor(t, "the request to arrive", func() bool { return s2.Stats().InFlight == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Error("canceled request succeeded")
	}
	waitFor(t, "the request to be counted as canceled", func() bool { return s2.Stats().Canceled == 1 })

	// Direct calls see their context's cancellation too.
	s3 := New(Options{TTFT: time.Hour})
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, "POST", "/v1/chat/completions", strings.NewReader(stream))
	w := httptest.NewRecorder()
	s3.ServeHTTP(w, r)
	if st := s3.Stats(); st.StreamsCanceled != 1 || strings.Contains(w.Body.String(), "data:") {
		t.Errorf("stats %+v body %q", st, w.Body)
	}
}

func TestOptions(t *testing.T) {
	o := Options{}.WithDefaults()
	if o.Tokens != 16 || o.EmbeddingDim != 8 || !cmp.Equal(o.Models, []string{"mock-model"}) {
		t.Errorf("defaults %+v", o)
	}
	if err := (Options{}).Validate(); err != nil {
		t.Error(err)
	}
	for _, bad := range []Options{{FailRate: 1.5}, {FailRate: math.NaN()}, {TTFT: -1}, {ITL: -1}, {Tokens: -1}, {EmbeddingDim: -1}, {Models: []string{""}}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	if got := New(Options{FailRate: 7}).Options().FailRate; got != 1 {
		t.Errorf("FailRate clamped to %v", got)
	}
}

func TestBodyTooLarge(t *testing.T) {
	s := New(Options{})
	r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(chatBody))
	r.ContentLength = maxBodyBytes + 1
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d: %s", w.Code, w.Body)
	}
	// Without a declared length the limit applies while reading.
	r = httptest.NewRequest("POST", "/v1/chat/completions", io.MultiReader(strings.NewReader(`{"model":"`), strings.NewReader(strings.Repeat("x", maxBodyBytes))))
	r.ContentLength = -1
	w = httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("unsized body: status %d", w.Code)
	}
}

// TestOpenAINulls: a chat answer's message carries "refusal": null and every choice
// "logprobs": null, as OpenAI's do.
func TestOpenAINulls(t *testing.T) {
	s := New(Options{Tokens: 3})
	var doc struct {
		Choices []struct {
			Message  map[string]json.RawMessage `json:"message"`
			Logprobs json.RawMessage            `json:"logprobs"`
		} `json:"choices"`
	}
	body := do(t, s, "POST", "/v1/chat/completions", chatBody).Body.Bytes()
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Choices) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	if string(doc.Choices[0].Message["refusal"]) != "null" || string(doc.Choices[0].Logprobs) != "null" {
		t.Errorf("answer lacks refusal/logprobs null: %s", body)
	}
}
