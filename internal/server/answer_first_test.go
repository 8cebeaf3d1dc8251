package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// TestAnswerBeforeAccounting: a client has the whole answer before the gateway's accounting
// of it runs, so usage records and metrics never delay the client. The accounting here waits
// until the client has read the answer to its end (or 5 s); the client must be the one that
// ends the wait, non-streamed and streamed, with and without response compression offered,
// and for a stream whose end comes from the upstream on its own, after its last event.
func TestAnswerBeforeAccounting(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 4})
	// An upstream whose stream's end comes on its own, 30 ms after its last event.
	lateEnd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"+
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n"+
			"data: [DONE]\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(30 * time.Millisecond)
	}))
	t.Cleanup(lateEnd.Close)
	cfg, err := config.Parse([]byte(oneModel(mockURL, "  - name: late-end\n    backends:\n      - type: openai\n        base_url: "+lateEnd.URL+"/v1\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t, cfg)
	received := make(chan struct{}, 1)
	byClient := make(chan bool, 1)
	onDone := func(context.Context, openai.Outcome) {
		select {
		case <-received:
			byClient <- true
		case <-time.After(5 * time.Second):
			byClient <- false
		}
	}
	srv, _ := newServer(cfg.Server, reg, telemetry.NewLogger(io.Discard, slog.LevelWarn), server.Options{}, openai.Options{OnDone: onDone})
	addr := testenv.ServeLoopback(t, srv.Serve)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, tc := range []struct {
		name, body, encoding string
	}{
		{"non-streamed", `{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`, ""},
		{"non-streamed, gzip offered", `{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`, "gzip"},
		{"streamed", `{"model":"glm4","stream":true,"messages":[{"role":"user","content":"hi"}]}`, ""},
		{"streamed, gzip offered", `{"model":"glm4","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "gzip"},
		{"streamed, its end arriving on its own", `{"model":"late-end","stream":true,"messages":[{"role":"user","content":"hi"}]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			select { // a token left by an earlier case that failed
			case <-received:
			default:
			}
			req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.encoding != "" {
				req.Header.Set("Accept-Encoding", tc.encoding)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || len(b) == 0 {
				t.Fatalf("status %d, %d bytes, %v", resp.StatusCode, len(b), err)
			}
			received <- struct{}{}
			if !<-byClient {
				t.Errorf("the answer (%d bytes, Content-Encoding %q) reached the client only after the accounting ran",
					len(b), resp.Header.Get("Content-Encoding"))
			}
		})
	}
}
