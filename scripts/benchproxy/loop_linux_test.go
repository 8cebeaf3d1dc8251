//go:build linux

package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// TestLoopRelays sends what the bench sends through the event-loop floor, both ways of
// waiting: non-streamed answers (framed by Content-Length) several times on one keep-alive
// connection, a streamed one (chunked) and a GET.
func TestLoopRelays(t *testing.T) {
	mock := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 8}))
	defer mock.Close()
	upstream := strings.TrimPrefix(mock.URL, "http://")
	for _, mode := range []struct {
		raw  bool
		idle time.Duration
	}{{false, 0}, {true, 0}, {true, time.Millisecond}} {
		raw := mode.raw
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		errs := make(chan error, 1)
		go func() { errs <- serveLoops(addr, upstream, 1, raw, mode.idle) }()
		base := "http://" + addr + "/v1"
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
		var resp *http.Response
		for range 50 { // until the loop listens
			if resp, err = client.Get(base + "/models"); err == nil {
				break
			}
			select {
			case err := <-errs:
				t.Fatalf("raw=%v: the loops stopped: %v", raw, err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		if err != nil {
			t.Fatalf("raw=%v: GET /models: %v", raw, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"object":"list"`) {
			t.Fatalf("raw=%v: GET /models: %d %s", raw, resp.StatusCode, body)
		}
		for i := range 5 {
			resp, err := client.Post(base+"/chat/completions", "application/json",
				strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":8}`))
			if err != nil {
				t.Fatalf("raw=%v: request %d: %v", raw, i, err)
			}
			var out struct {
				Choices []struct {
					Message struct{ Content string }
				}
				Usage struct {
					CompletionTokens int `json:"completion_tokens"`
				}
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || len(out.Choices) != 1 || out.Choices[0].Message.Content == "" || out.Usage.CompletionTokens != 8 {
				t.Fatalf("raw=%v: request %d: status %d, %+v, %v", raw, i, resp.StatusCode, out, err)
			}
		}
		resp, err = client.Post(base+"/chat/completions", "application/json",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":8,"stream":true}`))
		if err != nil {
			t.Fatalf("raw=%v: stream: %v", raw, err)
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || strings.Count(string(body), "data: ") < 9 || !strings.HasSuffix(strings.TrimSpace(string(body)), "data: [DONE]") {
			t.Fatalf("raw=%v: stream: %d %q %v", raw, resp.StatusCode, body, err)
		}
	}
}
