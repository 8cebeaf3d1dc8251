package local

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
)

// TestEnginePanicOverHTTP makes a kernel of the model's forward pass panic during a real
// HTTP request: the client gets a 500 with code engine_error (or, once a stream has begun,
// an error event with that code), never the panic's text, and the server goes on serving the
// next requests.
func TestEnginePanicOverHTTP(t *testing.T) {
	var armed atomic.Bool
	b, err := openWith(config.Backend{Type: "local", Name: "stories", Path: "../../../models/stories260K.gguf", Model: "stories260k",
		ContextLength: 512, Parallel: 2, Threads: 2}, func(int) {
		if armed.CompareAndSwap(true, false) {
			panic("injected kernel fault")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	// The server relays the backend's answer as the gateway's router does, flushing a stream
	// as it comes.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		op := backend.OpChat
		if r.URL.Path == "/v1/completions" {
			op = backend.OpCompletion
		}
		resp, err := b.Do(r.Context(), &backend.Request{Op: op, Body: body, Stream: strings.Contains(string(body), `"stream":true`)})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(ts.Close)
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(ts.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	const chatBody = `{"model":"stories260k","max_tokens":8,"temperature":0,"messages":[{"role":"user","content":"Once upon a time"}]`
	const complBody = `{"model":"stories260k","max_tokens":8,"temperature":0,"prompt":"Once upon a time"`

	armed.Store(true)
	status, out := post("/v1/chat/completions", chatBody+`}`)
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if status != http.StatusInternalServerError || json.Unmarshal([]byte(out), &e) != nil || e.Error.Code != "engine_error" ||
		strings.Contains(out, "injected") {
		t.Fatalf("answer during the panic: %d %s", status, out)
	}
	if status, out := post("/v1/chat/completions", chatBody+`}`); status != 200 || !strings.Contains(out, `"finish_reason":"length"`) {
		t.Fatalf("answer after the panic: %d %s", status, out)
	}

	// Streamed: once the stream has begun, the client is told by an error event with the
	// same code, and the stream ends without [DONE]. Streamed with n > 1 too (the other
	// generation path).
	armed.Store(true)
	status, out = post("/v1/completions", complBody+`,"stream":true}`)
	if status != http.StatusOK || !strings.Contains(out, `"code":"engine_error"`) || strings.Contains(out, "[DONE]") || strings.Contains(out, "injected") {
		t.Fatalf("stream during the panic: %d %s", status, out)
	}
	armed.Store(true)
	status, out = post("/v1/completions", complBody+`,"n":2,"stream":true}`)
	if status != http.StatusOK || !strings.Contains(out, `"code":"engine_error"`) || strings.Contains(out, "[DONE]") || strings.Contains(out, "injected") {
		t.Fatalf("n=2 stream during the panic: %d %s", status, out)
	}
	for _, extra := range []string{``, `,"n":2`} {
		if status, out := post("/v1/completions", complBody+extra+`,"stream":true}`); status != 200 || !strings.Contains(out, "[DONE]") || strings.Contains(out, "error") {
			t.Fatalf("stream after the panic: %d %s", status, out)
		}
	}
}
