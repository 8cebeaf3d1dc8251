package openai_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/backend/openai"
	"github.com/open-autoglm/autoglm/internal/config"
)

// TestDoDropsClientCredentials: whatever client headers a request carries, the upstream gets
// the backend's key, organization and project, and none of the client's credentials.
func TestDoDropsClientCredentials(t *testing.T) {
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = io.WriteString(w, `{}`)
	}))
	defer up.Close()
	c, err := openai.New(config.Backend{Type: "openai", BaseURL: up.URL + "/v1", APIKey: "sk-op", Organization: "org-op", Project: "proj-op",
		Headers: map[string]string{"X-Team": "search"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(context.Background(), &backend.Request{Op: backend.OpChat, Body: []byte(`{}`), Header: http.Header{
		"Authorization":        {"Bearer client"},
		"Openai-Organization":  {"org-client"},
		"Openai-Project":       {"proj-client"},
		"Openai-Beta":          {"x"},
		"Cookie":               {"a=b"},
		"X-Api-Key":            {"k"},
		"Anthropic-Version":    {"2023-06-01"},
		"X-Amz-Security-Token": {"t"},
		"User-Agent":           {"ua/1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := map[string]string{
		"Authorization": "Bearer sk-op", "Openai-Organization": "org-op", "Openai-Project": "proj-op", "X-Team": "search",
		"Openai-Beta": "", "Cookie": "", "X-Api-Key": "", "Anthropic-Version": "", "X-Amz-Security-Token": "", "User-Agent": "ua/1",
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("upstream %s = %q, want %q", k, got.Get(k), v)
		}
	}
}

func TestClientHeaderRefused(t *testing.T) {
	for name, refused := range map[string]bool{
		"authorization": true, "Proxy-Authorization": true, "COOKIE": true, "api-key": true, "X-API-Key": true,
		"OpenAI-Organization": true, "openai-project": true, "Anthropic-Beta": true, "X-Goog-Api-Key": true,
		"Ocp-Apim-Subscription-Key": true, "X-Amz-Date": true,
		"User-Agent": false, "X-Trace-Id": false, "Accept": false, "X-Openai-Like": false, "Content-Type": false,
	} {
		if openai.ClientHeaderRefused(name) != refused {
			t.Errorf("ClientHeaderRefused(%q) = %v, want %v", name, !refused, refused)
		}
	}
	// It runs for every header of every request: a canonical name costs no lower-cased copy.
	if n := testing.AllocsPerRun(100, func() { openai.ClientHeaderRefused("User-Agent") }); n != 0 {
		t.Errorf("ClientHeaderRefused allocates %v times per call, want 0", n)
	}
}

// BenchmarkClientDo is one non-streamed request through the backend client (request building,
// headers, the direct upstream path), one at a time; its allocs/op, unlike its time, holds on a
// busy machine. The in-process upstream's own allocations are in the figure too.
func BenchmarkClientDo(b *testing.B) {
	answer := []byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"sixteen tokens of answer text here"},"finish_reason":"stop"}],"usage":{"prompt_tokens":16,"completion_tokens":16,"total_tokens":32}}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer up.Close()
	c, err := openai.New(config.Backend{Name: "b", BaseURL: up.URL + "/v1", APIKey: "sk-backend"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"the quick brown fox jumps over a lazy dog"}],"max_tokens":16}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(ctx, &backend.Request{Op: backend.OpChat, Body: body})
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}

// TestRedirectIsAnError: an upstream that answers with a redirect is not followed (the
// request, with the backend's key, is not sent to wherever it points) and is a clear error,
// both for requests and for the health probe.
func TestRedirectIsAnError(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = io.WriteString(w, `{}`)
	}))
	defer other.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer up.Close()
	c, err := openai.New(config.Backend{Name: "b", BaseURL: up.URL + "/v1", APIKey: "sk-backend"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Do(context.Background(), &backend.Request{Op: backend.OpChat, Body: []byte(`{}`)})
	if !errors.Is(err, openai.ErrRedirect) || !strings.Contains(err.Error(), "307") {
		t.Fatalf("Do: %v, want ErrRedirect with its status", err)
	}
	if err := c.Probe(context.Background()); !errors.Is(err, openai.ErrRedirect) {
		t.Fatalf("Probe: %v, want ErrRedirect", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect was followed %d times", n)
	}
}
