package codecomplete_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/admin/admintest"
	"github.com/open-autoglm/autoglm/internal/auth"
	_ "github.com/open-autoglm/autoglm/internal/backend/local"
	"github.com/open-autoglm/autoglm/internal/codecomplete"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
)

// outcome is what the usage hook was told, with the key that made the request.
type outcome struct {
	openai.Outcome
	KeyID string
}

type gateway struct {
	URL string
	key string // a key of role "user" when auth is on

	mu       sync.Mutex
	outcomes []outcome
}

func (g *gateway) recorded() []outcome {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]outcome(nil), g.outcomes...)
}

// startGateway serves a synthetic coder model (with Qwen2.5-Coder's FIM tokens) and the
// stories demo model (without) behind a gateway with the code completion route, run through
// the gateway's own completions handler as `autoglm serve` wires it. With withAuth,
// authentication is on and the gateway has one key.
func startGateway(t *testing.T, withAuth bool) *gateway {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.Write(&buf, synth.Spec{Arch: "qwen2", Dim: 32, Layers: 1, Heads: 2, FFN: 32, Vocab: 600, Seed: 9,
		Specials: []string{"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"}}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "coder.gguf")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`models:
  - name: coder
    backends: [{type: local, path: "`+p+`", parallel: 2, threads: 1}]
  - name: stories
    backends: [{type: local, path: ../../models/stories260K.gguf, context_length: 512, threads: 1}]
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	g := &gateway{}
	oa := openai.New(reg, openai.Options{Logger: slog.New(slog.DiscardHandler),
		OnDone: func(ctx context.Context, o openai.Outcome) {
			rec := outcome{Outcome: o}
			if p, ok := auth.FromContext(ctx); ok && p != nil {
				rec.KeyID = p.KeyID
			}
			g.mu.Lock()
			g.outcomes = append(g.outcomes, rec)
			g.mu.Unlock()
		}})
	opts := server.Options{Routes: append(oa.Routes(), codecomplete.Routes(oa.Completions)...)}
	if withAuth {
		cfg.Auth.Enabled = true
		st := admintest.NewStore()
		a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st), AdminKey: "test-admin-key"})
		if err != nil {
			t.Fatal(err)
		}
		g.key = auth.NewKey()
		if _, err := st.CreateKey(context.Background(), store.Key{ID: "key_cc", Prefix: auth.DisplayPrefix(g.key),
			Hash: auth.HashKey(g.key), Role: "user"}); err != nil {
			t.Fatal(err)
		}
		if err := a.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		opts.Auth = a
	}
	srv := server.NewWith(cfg.Server, reg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	g.URL = ts.URL
	return g
}

type envelope struct {
	Code    any                 `json:"code"`
	Success bool                `json:"success"`
	Data    codecomplete.Result `json:"data"`
	Message string              `json:"message"`
}

func post(t *testing.T, url, body string) (int, envelope) {
	t.Helper()
	return postKey(t, url, body, "")
}

func postKey(t *testing.T, url, body, key string) (int, envelope) {
	t.Helper()
	resp, err := send(url, body, key)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e envelope
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
	return resp.StatusCode, e
}

func TestCodeComplete(t *testing.T) {
	url := startGateway(t, false).URL
	status, e := post(t, url, `{"model":"coder","prefix":"def add(a, b):\n    return ","suffix":"\n","language":"python","max_tokens":5,"temperature":0}`)
	if status != 200 || !e.Success || e.Data.Language != "python" || e.Data.Usage.CompletionTokens == 0 || e.Data.FinishReason == "" {
		t.Fatalf("%d %+v", status, e)
	}
	// The same request on the OpenAI route (prompt + suffix) gives the same text: one path.
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(
		`{"model":"coder","prompt":"def add(a, b):\n    return ","suffix":"\n","max_tokens":5,"temperature":0}`))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Choices []struct{ Text string } `json:"choices"`
		Usage   struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if len(c.Choices) != 1 || c.Choices[0].Text != e.Data.Completion || c.Usage.PromptTokens != e.Data.Usage.PromptTokens {
		t.Errorf("OpenAI route %+v, native %+v", c, e.Data)
	}

	for _, tc := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"model":"stories","prefix":"a","suffix":"b"}`, 400, "fill-in-the-middle"},
		{`{"model":"nope","prefix":"a"}`, 404, "does not exist"},
		{`{"model":"coder"}`, 400, "prefix or suffix"},
		{`{"model":"coder","prefix":"a","language":"c c"}`, 400, "language"},
		{`{"model":"coder","prefix":"a","extra":1}`, 400, "unknown field"},
	} {
		status, e := post(t, url, tc.body)
		if status != tc.status || e.Success || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s: %d %+v", tc.body, status, e)
		}
	}
}

func send(url, body, key string) (*http.Response, error) {
	req, err := http.NewRequest("POST", url+"/v1/code/complete", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return http.DefaultClient.Do(req)
}

// TestCodeCompleteAccounted checks that a code completion is accounted as a completion: the
// usage hook (usage records, model metrics, quotas) is told its model, tokens and caller, for
// an answer and for a stream; the stream's events add up to the same completion.
func TestCodeCompleteAccounted(t *testing.T) {
	g := startGateway(t, true)
	if status, e := post(t, g.URL, `{"model":"coder","prefix":"x"}`); status != http.StatusUnauthorized || e.Success {
		t.Fatalf("no key: %d %+v", status, e)
	}
	body := `{"model":"coder","prefix":"def add(a, b):\n    return ","suffix":"\n","max_tokens":6,"temperature":0`
	status, e := postKey(t, g.URL, body+`}`, g.key)
	if status != 200 || !e.Success || e.Data.Usage.CompletionTokens == 0 {
		t.Fatalf("%d %+v", status, e)
	}
	out := g.recorded()
	if len(out) != 1 {
		t.Fatalf("outcomes %+v", out)
	}
	o := out[0]
	if o.Model != "coder" || o.KeyID != "key_cc" || o.Status != 200 || o.Stream || o.Usage.Estimated ||
		o.Usage.PromptTokens != int64(e.Data.Usage.PromptTokens) || o.Usage.CompletionTokens != int64(e.Data.Usage.CompletionTokens) {
		t.Errorf("outcome %+v, answer usage %+v", o, e.Data.Usage)
	}

	resp, err := send(g.URL, body+`,"stream":true}`, g.key)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	var text strings.Builder
	var done *codecomplete.Result
	for _, ev := range strings.Split(strings.TrimSpace(string(raw)), "\n\n") {
		name, data, _ := strings.Cut(ev, "\ndata: ")
		switch strings.TrimPrefix(name, "event: ") {
		case "delta":
			var d struct{ Completion string }
			if err := json.Unmarshal([]byte(data), &d); err != nil || done != nil {
				t.Fatalf("delta %q after done %v: %v", data, done != nil, err)
			}
			text.WriteString(d.Completion)
		case "done":
			done = new(codecomplete.Result)
			if err := json.Unmarshal([]byte(data), done); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("event %q in %s", ev, raw)
		}
	}
	if done == nil || done.Completion != e.Data.Completion || text.String() != done.Completion ||
		done.Usage.PromptTokens != e.Data.Usage.PromptTokens || done.Usage.CompletionTokens != e.Data.Usage.CompletionTokens || done.FinishReason != e.Data.FinishReason {
		t.Fatalf("stream %q done %+v, answer %+v", text.String(), done, e.Data)
	}
	out = g.recorded()
	if len(out) != 2 {
		t.Fatalf("outcomes %+v", out)
	}
	if o := out[1]; !o.Stream || o.KeyID != "key_cc" || o.Usage.Estimated || o.Usage.CompletionTokens != int64(e.Data.Usage.CompletionTokens) {
		t.Errorf("stream outcome %+v", o)
	}

	// An error before the stream starts is an envelope error, as without stream.
	if status, e := postKey(t, g.URL, `{"model":"stories","prefix":"a","suffix":"b","stream":true}`, g.key); status != 400 || !strings.Contains(e.Message, "fill-in-the-middle") {
		t.Errorf("%d %+v", status, e)
	}
}
