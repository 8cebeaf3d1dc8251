package plugin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/open-autoglm/autoglm/internal/backend/openai"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/plugin"
	_ "github.com/open-autoglm/autoglm/internal/plugin/standard"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// upstream is an OpenAI-compatible model server that records what it receives and answers
// with a set text (or the last user message / prompt, echoed), streamed in small pieces.
type upstream struct {
	mu     sync.Mutex
	bodies []map[string]any
	reply  string
	piece  int           // stream piece size in bytes; default 3
	gap    time.Duration // pause between stream pieces
}

func (u *upstream) setReply(s string) {
	u.mu.Lock()
	u.reply = s
	u.mu.Unlock()
}

// last returns the last body received.
func (u *upstream) last(t *testing.T) map[string]any {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.bodies) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return u.bodies[len(u.bodies)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.bodies)
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	u.mu.Lock()
	u.bodies = append(u.bodies, body)
	text, piece, gap := u.reply, u.piece, u.gap
	u.mu.Unlock()
	if piece <= 0 {
		piece = 3
	}
	chat := strings.HasSuffix(r.URL.Path, "/chat/completions")
	if text == "" {
		if chat {
			msgs, _ := body["messages"].([]any)
			for _, m := range msgs {
				if mm, _ := m.(map[string]any); mm["role"] == "user" {
					text, _ = mm["content"].(string)
				}
			}
		} else {
			text, _ = body["prompt"].(string)
		}
	}
	model, _ := body["model"].(string)
	if stream, _ := body["stream"].(bool); !stream {
		var doc map[string]any
		if chat {
			doc = map[string]any{"id": "c1", "object": "chat.completion", "model": model,
				"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text}, "finish_reason": "stop"}},
				"usage":   map[string]any{"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}
		} else {
			doc = map[string]any{"id": "c1", "object": "text_completion", "model": model,
				"choices": []any{map[string]any{"index": 0, "text": text, "finish_reason": "stop"}},
				"usage":   map[string]any{"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		fl.Flush()
	}
	choice := func(content any, finish any) map[string]any {
		if chat {
			d := map[string]any{}
			if content != nil {
				d["content"] = content
			}
			return map[string]any{"index": 0, "delta": d, "finish_reason": finish}
		}
		if content == nil {
			content = ""
		}
		return map[string]any{"index": 0, "text": content, "finish_reason": finish}
	}
	obj := "chat.completion.chunk"
	if !chat {
		obj = "text_completion"
	}
	for i := 0; i < len(text); i += piece {
		send(map[string]any{"id": "c1", "object": obj, "model": model, "choices": []any{choice(text[i:min(i+piece, len(text))], nil)}})
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	send(map[string]any{"id": "c1", "object": obj, "model": model, "choices": []any{choice(nil, "stop")}})
	if so, _ := body["stream_options"].(map[string]any); so["include_usage"] == true {
		send(map[string]any{"id": "c1", "object": obj, "model": model, "choices": []any{},
			"usage": map[string]any{"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// gateway is a server on loopback with the plugin chain of its configuration.
type gateway struct {
	URL     string
	up      *upstream
	manager *plugin.Manager
	reg     *router.Registry
	logs    *testenv.LogBuffer
}

// models is the model section every test gateway serves: glm-4 and glm-small, both on the
// test upstream.
const models = `
models:
  - name: glm-4
    backends:
      - type: openai
        base_url: ${UP}
        model: up-glm-4
  - name: glm-small
    backends:
      - type: openai
        base_url: ${UP}
        model: up-glm-small
`

func parseConfig(t testing.TB, yamlCfg, upURL string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yamlCfg), func(k string) (string, bool) {
		if k == "UP" {
			return upURL, true
		}
		return "", false
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// startGateway serves models plus pluginsYAML (a "plugins:" section) until the test ends.
func startGateway(t testing.TB, pluginsYAML string) *gateway {
	t.Helper()
	return startGatewayWith(t, &upstream{}, pluginsYAML)
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func startGatewayWith(t testing.TB, up *upstream, pluginsYAML string) *gateway {
	t.Helper()
	ts := httptest.NewServer(up)
	t.Cleanup(ts.Close)
	cfg := parseConfig(t, models+pluginsYAML, ts.URL+"/v1")
	g := serveConfig(t, cfg)
	g.up = up
	return g
}

func serveConfig(t testing.TB, cfg *config.Config) *gateway {
	t.Helper()
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	logs := &testenv.LogBuffer{}
	log := telemetry.NewLogger(logs, telemetry.ParseLevel("debug"))
	m := plugin.NewManager(plugin.Options{Registry: reg, Logger: log, Metrics: plugin.NewMetrics()})
	if err := m.Load(context.Background(), cfg.Plugins); err != nil {
		t.Fatalf("plugins: %v", err)
	}
	t.Cleanup(m.Close)
	reg.SetHook(m)
	srv := server.NewWith(cfg.Server, reg, log, server.Options{Routes: openai.New(reg, openai.Options{Logger: log}).Routes()})
	// Registered first, so it runs after the server has stopped.
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	return &gateway{URL: "http://" + testenv.ServeLoopback(t, srv.Serve), manager: m, reg: reg, logs: logs}
}

// call posts body to path and returns the status and the decoded answer.
func (g *gateway) call(t *testing.T, path, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", g.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// stream posts a streamed request and returns the status and the text of every chunk joined.
func (g *gateway) stream(t *testing.T, path, body string) (int, string, []string) {
	t.Helper()
	resp, err := http.Post(g.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	var text strings.Builder
	var pieces []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
				Text string `json:"text"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(d), &ch); err != nil {
			t.Fatalf("chunk %q: %v", d, err)
		}
		for _, c := range ch.Choices {
			text.WriteString(c.Delta.Content + c.Text)
			if c.Delta.Content+c.Text != "" {
				pieces = append(pieces, c.Delta.Content+c.Text)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return resp.StatusCode, text.String(), pieces
}

// answerText is a chat completion's or completion's first choice's text.
func answerText(t *testing.T, doc map[string]any) string {
	t.Helper()
	ch, _ := doc["choices"].([]any)
	if len(ch) == 0 {
		t.Fatalf("no choices in %v", doc)
	}
	c := ch[0].(map[string]any)
	if m, ok := c["message"].(map[string]any); ok {
		s, _ := m["content"].(string)
		return s
	}
	s, _ := c["text"].(string)
	return s
}

// messages returns the role and content of each message an upstream body holds.
func messages(body map[string]any) [][2]string {
	var out [][2]string
	msgs, _ := body["messages"].([]any)
	for _, m := range msgs {
		mm := m.(map[string]any)
		r, _ := mm["role"].(string)
		c, _ := mm["content"].(string)
		out = append(out, [2]string{r, c})
	}
	return out
}

func errorCode(doc map[string]any) (code, msg string) {
	e, _ := doc["error"].(map[string]any)
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return code, msg
}

// streamNoT is stream for use off the test goroutine: it reports errors as text.
func (g *gateway) streamNoT(body string) (int, string, error) {
	resp, err := http.Post(g.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var text strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		_ = json.Unmarshal([]byte(d), &ch)
		for _, c := range ch.Choices {
			text.WriteString(c.Delta.Content)
		}
	}
	return resp.StatusCode, text.String(), sc.Err()
}

// httpPost posts body and returns the whole answer as text.
func httpPost(url, body string) (string, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
