package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// BenchmarkListener sends chats one at a time over one keep-alive connection to the whole
// gateway served on loopback, by each HTTP/1.1 server (server.http1), non-streamed and
// streamed: what the server side adds to a request with the chain in front
// (go test -run '^$' -bench Listener -benchmem ./internal/server; alternate with -count).
func BenchmarkListener(b *testing.B) {
	up := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 16}))
	defer up.Close()
	for _, mode := range []string{"lean", "net"} {
		for _, stream := range []bool{false, true} {
			name := mode
			if stream {
				name += "/stream"
			}
			b.Run(name, func(b *testing.B) {
				cfg, err := config.Parse([]byte("server: {http1: "+mode+"}\n"+oneModel(up.URL+"/v1", "")), func(string) (string, bool) { return "", false })
				if err != nil {
					b.Fatal(err)
				}
				reg, err := router.New(cfg.Models)
				if err != nil {
					b.Fatal(err)
				}
				defer reg.Close()
				log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
				srv := server.NewWith(cfg.Server, reg, log, server.Options{Routes: openai.New(reg, openai.Options{Logger: log}).Routes()})
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- srv.Serve(ctx, ln) }()
				defer func() { cancel(); <-done }()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
				defer client.CloseIdleConnections()
				body := `{"model":"glm4","messages":[{"role":"user","content":"the quick brown fox"}],"max_tokens":16`
				if stream {
					body += `,"stream":true`
				}
				body += "}"
				url := "http://" + ln.Addr().String() + "/v1/chat/completions"
				b.ReportAllocs()
				for b.Loop() {
					resp, err := client.Post(url, "application/json", strings.NewReader(body))
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatal(resp.Status)
					}
				}
			})
		}
	}
}
