package codecomplete_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/open-autoglm/autoglm/internal/backend/local"
	"github.com/open-autoglm/autoglm/internal/codecomplete"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
)

// startGateway serves a synthetic coder model (with Qwen2.5-Coder's FIM tokens) and the
// stories demo model (without) behind a gateway with the code completion route.
func startGateway(t *testing.T) string {
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
	srv := server.New(cfg.Server, reg, slog.New(slog.NewTextHandler(io.Discard, nil)), codecomplete.Routes(reg)...)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

type envelope struct {
	Code    any                 `json:"code"`
	Success bool                `json:"success"`
	Data    codecomplete.Result `json:"data"`
	Message string              `json:"message"`
}

func post(t *testing.T, url, body string) (int, envelope) {
	t.Helper()
	resp, err := http.Post(url+"/v1/code/complete", "application/json", strings.NewReader(body))
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
	url := startGateway(t)
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
