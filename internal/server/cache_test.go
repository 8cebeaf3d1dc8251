package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

const cacheCfg = "cache:\n  enabled: true\n"

func chatCalls(m *mockllm.Server) int64 { return m.Stats().Requests["POST /v1/chat/completions"] }

func TestCacheHitMissBypass(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 6})
	g := startGateway(t, oneModel(mockURL, "")+cacheCfg, nil)
	req := `{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"cache me"}]}`

	resp, first := post(t, g.URL+"/v1/chat/completions", req)
	if resp.Header.Get("X-AutoGLM-Cache") != "miss" || resp.StatusCode != 200 {
		t.Fatalf("first: %d %q", resp.StatusCode, resp.Header.Get("X-AutoGLM-Cache"))
	}
	// The same request, differently written and through the alias's canonical name.
	resp, second := post(t, g.URL+"/v1/chat/completions", `{"messages":[{"content":"cache me","role":"user"}],"model":"glm-4-flash","temperature":0.0}`)
	if resp.Header.Get("X-AutoGLM-Cache") != "hit" || !bytes.Equal(first, second) {
		t.Fatalf("second: %q, same body %v", resp.Header.Get("X-AutoGLM-Cache"), bytes.Equal(first, second))
	}
	if n := chatCalls(mock); n != 1 {
		t.Errorf("upstream called %d times, want 1", n)
	}

	// A streamed request is answered from the cached document as SSE.
	c := api.NewClient(g.URL+"/v1", nil)
	var text strings.Builder
	var usage *api.Usage
	err := c.ChatStream(context.Background(), &api.ChatCompletionRequest{Model: "glm4", Temperature: ptr(0.0),
		Messages: []api.Message{{Role: "user", Content: api.Text("cache me")}}, StreamOptions: &api.StreamOptions{IncludeUsage: true}},
		func(ch *api.ChatCompletionChunk) error {
			for _, x := range ch.Choices {
				text.WriteString(x.Delta.Content)
			}
			if ch.Usage != nil {
				usage = ch.Usage
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var doc api.ChatCompletion
	_ = json.Unmarshal(first, &doc)
	if text.String() != doc.Choices[0].Message.Content.String() || usage == nil || usage.CompletionTokens != 6 {
		t.Errorf("replayed stream %q usage %+v, want %q", text.String(), usage, doc.Choices[0].Message.Content.String())
	}
	if n := chatCalls(mock); n != 1 {
		t.Errorf("streamed hit reached the upstream (%d calls)", n)
	}

	// Bypasses: sampled requests, Cache-Control: no-store.
	for _, tc := range []struct{ body, cc string }{
		{`{"model":"glm4","temperature":0.8,"messages":[{"role":"user","content":"cache me"}]}`, ""},
		{`{"model":"glm4","messages":[{"role":"user","content":"cache me"}]}`, ""},
		{req, "no-store"},
	} {
		resp, _ := post(t, g.URL+"/v1/chat/completions", tc.body, "Cache-Control", tc.cc)
		if resp.Header.Get("X-AutoGLM-Cache") != "bypass" {
			t.Errorf("%s (cc %q): %q, want bypass", tc.body, tc.cc, resp.Header.Get("X-AutoGLM-Cache"))
		}
	}
	// no-cache refetches and refreshes the entry.
	before := chatCalls(mock)
	resp, _ = post(t, g.URL+"/v1/chat/completions", req, "Cache-Control", "no-cache")
	if resp.Header.Get("X-AutoGLM-Cache") != "miss" || chatCalls(mock) != before+1 {
		t.Errorf("no-cache: %q, calls %d→%d", resp.Header.Get("X-AutoGLM-Cache"), before, chatCalls(mock))
	}
}

func ptr[T any](v T) *T { return &v }

func TestCacheStoresStreamedAnswers(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 5})
	g := startGateway(t, oneModel(mockURL, "")+cacheCfg, nil)
	streamReq := `{"model":"glm4","temperature":0,"stream":true,"messages":[{"role":"user","content":"s"}]}`
	resp, b := post(t, g.URL+"/v1/chat/completions", streamReq)
	if resp.Header.Get("X-AutoGLM-Cache") != "miss" || !bytes.HasSuffix(b, []byte("data: [DONE]\n\n")) {
		t.Fatalf("streamed miss: %q %s", resp.Header.Get("X-AutoGLM-Cache"), b)
	}
	resp, b = post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"s"}]}`)
	var doc api.ChatCompletion
	if resp.Header.Get("X-AutoGLM-Cache") != "hit" || json.Unmarshal(b, &doc) != nil || len(strings.Fields(doc.Choices[0].Message.Content.String())) != 5 {
		t.Errorf("non-stream after streamed miss: %q %s", resp.Header.Get("X-AutoGLM-Cache"), b)
	}
	if n := chatCalls(mock); n != 1 {
		t.Errorf("upstream called %d times", n)
	}
}

// TestCacheCoalescing sends 100 identical requests at once to a slow upstream: it sees one.
func TestCacheCoalescing(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 3, TTFT: 300 * time.Millisecond})
	g := startGateway(t, oneModel(mockURL, "")+cacheCfg, nil)
	body := `{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"together"}]}`
	var wg sync.WaitGroup
	bodies := make([][]byte, 100)
	statuses := make([]int, 100)
	for i := range 100 {
		wg.Go(func() {
			resp, err := http.Post(g.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			statuses[i] = resp.StatusCode
			bodies[i], _ = io.ReadAll(resp.Body)
		})
	}
	wg.Wait()
	for i := range 100 {
		if statuses[i] != 200 || !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("request %d: %d %s", i, statuses[i], bodies[i])
		}
	}
	if n := chatCalls(mock); n != 1 {
		t.Errorf("100 identical concurrent requests reached the upstream %d times, want 1", n)
	}
}

func TestCacheWarmup(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 4})
	g := startGateway(t, oneModel(mockURL, "")+cacheCfg, nil)
	file := filepath.Join(t.TempDir(), "warmup.jsonl")
	lines := "# preload\n" +
		`{"path":"/v1/chat/completions","body":{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"w1"}]}}` + "\n\n" +
		`{"path":"/v1/embeddings","body":{"model":"glm4","input":"w2"}}` + "\n"
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := g.oa.Warmup(context.Background(), file, 1<<20)
	if err != nil || n != 2 {
		t.Fatalf("warmup: %d, %v", n, err)
	}
	calls := mock.Stats().Requests
	resp, _ := post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"w1"}]}`)
	resp2, _ := post(t, g.URL+"/v1/embeddings", `{"model":"glm4","input":"w2"}`)
	if resp.Header.Get("X-AutoGLM-Cache") != "hit" || resp2.Header.Get("X-AutoGLM-Cache") != "hit" {
		t.Errorf("after warm-up: %q %q", resp.Header.Get("X-AutoGLM-Cache"), resp2.Header.Get("X-AutoGLM-Cache"))
	}
	if fmt.Sprint(mock.Stats().Requests) != fmt.Sprint(calls) {
		t.Error("warmed requests reached the upstream again")
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	_ = os.WriteFile(bad, []byte(`{"path":"/v1/models","body":{}}`), 0o600)
	if _, err := g.oa.Warmup(context.Background(), bad, 1<<20); err == nil {
		t.Error("a non-cacheable path in the warm-up file was accepted")
	}
}

// TestCacheRedisShared runs two gateways (replicas) on one Redis: the second answers the
// first's request from the shared tier.
func TestCacheRedisShared(t *testing.T) {
	addr := testenv.RedisAddr(t)
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 4})
	cfg := oneModel(mockURL, "") + fmt.Sprintf("cache:\n  enabled: true\n  redis:\n    addr: %s\n    prefix: \"autoglm:test:%d:\"\n", addr, time.Now().UnixNano())
	a := startGateway(t, cfg, nil)
	b := startGateway(t, cfg, nil)
	body := `{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"shared"}]}`
	resp, first := post(t, a.URL+"/v1/chat/completions", body)
	if resp.Header.Get("X-AutoGLM-Cache") != "miss" {
		t.Fatalf("replica a: %q", resp.Header.Get("X-AutoGLM-Cache"))
	}
	resp, second := post(t, b.URL+"/v1/chat/completions", body)
	if resp.Header.Get("X-AutoGLM-Cache") != "hit" || !bytes.Equal(first, second) {
		t.Errorf("replica b: %q", resp.Header.Get("X-AutoGLM-Cache"))
	}
	if n := chatCalls(mock); n != 1 {
		t.Errorf("upstream called %d times across replicas", n)
	}
}
